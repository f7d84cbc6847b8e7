/**
 * What runs before every command's action (commander's preAction hook, and src/cli.ts's light
 * paths): any command may print a log line, a status or an event a key could
 * hide in, or start a child that must not inherit one, so the keys are registered first (with the
 * recorded processes of the stack it names, and of the local stack).
 */
export async function registerActionSecrets(o: { dataDir?: unknown; file?: unknown }): Promise<void> {
  const [{ registerStackSecrets }, { stigmerHome }] = await Promise.all([import('../stack/secrets.js'), import('../util/paths.js')]);
  const dataDirs = [stigmerHome()];
  if (typeof o.dataDir === 'string') dataDirs.push(o.dataDir);
  else if (typeof o.file === 'string') dataDirs.push((await import('../engine/stacks.js')).resolveStack({ file: o.file }).dataDir);
  registerStackSecrets({ dataDirs });
}
