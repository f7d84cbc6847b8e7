/**
 * ajv's error shape and its JSON-pointer paths, apart from the YAML helpers (yaml-source.ts), so a
 * reader of JSON (the state file) does not load the YAML library.
 */

/** One error of a precompiled ajv validator (the fields the readers use). */
export interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
  schemaPath?: string;
  parentSchema?: { description?: string };
  /** set on the errors of a `propertyNames` rule: the key that breaks it */
  propertyName?: string;
}

/** A precompiled ajv validator (dist/validators/*.js). */
export type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

/** Decode one JSON-pointer segment (`~1` is "/", `~0` is "~"). */
export function decodePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** An ajv `instancePath` ("/tasks/a~1b") as path segments (["tasks", "a/b"]). */
export function pointerPath(instancePath: string): string[] {
  return instancePath.split('/').slice(1).map(decodePointer);
}
