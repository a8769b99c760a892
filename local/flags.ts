/** `--name value` command-line flags with defaults; an unknown flag is an error that lists the known ones. */
export function parseFlags<T extends Record<string, string>>(argv: readonly string[], defaults: T): T {
  const flags: Record<string, string> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !(name in defaults)) {
      throw new Error(
        `Unknown argument "${arg}"; known: ${Object.keys(defaults)
          .map((k) => `--${k}`)
          .join(' ')}`,
      );
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    flags[name] = value;
    i++;
  }
  return flags as T;
}
