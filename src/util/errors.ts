/**
 * Errors a person caused and can fix. The CLI prints `message` (no stack trace) and exits with
 * `exitCode`. Anything else that reaches the top is a bug and is reported as an internal error.
 */
export const EXIT = {
  ok: 0,
  taskFailed: 1,
  usage: 2,
  sighup: 129,
  sigint: 130,
  sigterm: 143,
} as const;

export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}
