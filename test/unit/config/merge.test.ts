import { describe, expect, it } from 'vitest';
import { mergeConfig } from '../../../runtime/config/index.ts';

describe('mergeConfig', () => {
  it('merges objects recursively and replaces arrays and scalars', () => {
    const base = { a: { b: 1, c: [1, 2, 3] }, d: 'x' };
    expect(mergeConfig(base, { a: { c: [9] }, d: 'y', e: { f: true } })).toEqual({
      a: { b: 1, c: [9] },
      d: 'y',
      e: { f: true },
    });
  });

  it('removes keys set to null, at any depth', () => {
    expect(mergeConfig({ a: { b: 1, c: 2 }, d: 3 }, { a: { b: null }, d: null, e: null })).toEqual({
      a: { c: 2 },
    });
  });

  it('replaces a scalar with an object and an object with a scalar', () => {
    expect(mergeConfig({ a: 1, b: { c: 1 } }, { a: { x: 1 }, b: 2 })).toEqual({ a: { x: 1 }, b: 2 });
  });

  it('modifies neither input and shares no structure with them', () => {
    const base = { a: { b: [1] } };
    const patch = { a: { c: { d: 1 } } };
    const merged = mergeConfig(base, patch) as { a: { b: number[]; c: { d: number } } };
    merged.a.b.push(2);
    merged.a.c.d = 5;
    expect(base).toEqual({ a: { b: [1] } });
    expect(patch).toEqual({ a: { c: { d: 1 } } });
  });

  it('returns a non-object patch as the result', () => {
    expect(mergeConfig({ a: 1 }, [1, 2])).toEqual([1, 2]);
    expect(mergeConfig({ a: 1 }, 'x')).toBe('x');
  });

  it('keeps __proto__ as a plain key instead of changing the prototype', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const merged = mergeConfig({}, patch) as Record<string, unknown>;
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(merged)).toEqual(['__proto__', 'a']);
  });
});
