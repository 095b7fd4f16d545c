import { describe, expect, it } from 'vitest';
import { integerFlag } from '../../../runtime/cli/flags.ts';

describe('integerFlag', () => {
  it('answers the integer', () => {
    expect(integerFlag('runs', '3')).toBe(3);
    expect(integerFlag('seed', '0', 0)).toBe(0);
  });

  it.each([
    ['0', 1, '--runs must be a positive integer, not "0"'],
    ['2.5', 1, '--runs must be a positive integer, not "2.5"'],
    ['x', 1, '--runs must be a positive integer, not "x"'],
    ['-1', 0, '--runs must be an integer >= 0, not "-1"'],
  ])('refuses %s (min %i) naming the flag', (value, min, message) => {
    expect(() => integerFlag('runs', value, min)).toThrow(message);
  });
});
