/**
 * The options of a light path (src/cli.ts: a command run without commander), for the spellings
 * commander would read the same way: each value option at most once, as `-f value` or `--name value`,
 * and each flag at most once. Anything else (`--name=value`, an unknown option, a repeat, a missing
 * or empty value, a value that looks like an option, an argument) gives undefined, and the command
 * goes through commander, which says what is wrong (the tests compare the two that way).
 */
export function lightOptions(
  args: readonly string[],
  values: Readonly<Record<string, string>>,
  flags: Readonly<Record<string, string>> = {},
): Record<string, string | true> | undefined {
  const got: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (Object.hasOwn(flags, arg)) {
      const flag = flags[arg]!;
      if (Object.hasOwn(got, flag)) return undefined;
      got[flag] = true;
      continue;
    }
    const value = args[++i];
    if (!Object.hasOwn(values, arg) || value === undefined || value === '' || value.startsWith('-')) return undefined;
    const key = values[arg]!;
    if (Object.hasOwn(got, key)) return undefined;
    got[key] = value;
  }
  return got;
}
