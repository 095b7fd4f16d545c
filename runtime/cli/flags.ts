// Number flags of the CLI commands, refused with a sentence naming the flag and what it got.

/** `--flag`'s integer value, at least `min`. */
export function integerFlag(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    const wanted = min === 1 ? 'a positive integer' : `an integer >= ${min}`;
    throw new Error(`--${flag} must be ${wanted}, not "${value}"`);
  }
  return n;
}
