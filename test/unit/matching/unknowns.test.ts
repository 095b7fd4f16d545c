import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Gallery } from '../../../runtime/matching/gallery/index.ts';
import { GalleryError } from '../../../runtime/matching/gallery/records.ts';
import { parseUnknownId, type UnknownOptions, UnknownVisitors } from '../../../runtime/matching/unknowns.ts';
import { basis, crop, towards } from './helpers.ts';

const V1 = { name: 'facerec', version: '1.0.0' };
const OPTIONS: UnknownOptions = { maxUnknowns: 3, facesPerUnknown: 2, retentionDays: 1 };
const DAY = 86_400_000;

let dir: string;
let gallery: Gallery;
let unknowns: UnknownVisitors;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-unknowns-'));
  gallery = Gallery.open(join(dir, 'gallery.db'));
  unknowns = new UnknownVisitors(gallery);
});

afterEach(() => {
  gallery.close();
  rmSync(dir, { recursive: true, force: true });
});

const seen = (embedding: Float32Array, timeMs: number, quality = 0.5, byte = 1) =>
  unknowns.observe({ embedding, crop: crop(byte), quality, camera: 'door', timeMs }, V1, 0.9, OPTIONS);

describe('UnknownVisitors', () => {
  it('keeps one id for the same face, a new one for another, across a reopened gallery', () => {
    const first = seen(basis(0), 1000);
    expect(first).toMatch(/^unknown-\d+$/);
    expect(seen(towards(0, 0.97), 2000)).toBe(first);
    const other = seen(basis(20), 3000);
    expect(other).not.toBe(first);
    gallery.close();
    gallery = Gallery.open(join(dir, 'gallery.db'));
    unknowns = new UnknownVisitors(gallery);
    expect(seen(towards(0, 0.96, 5), 4000)).toBe(first);
    const listed = unknowns.list();
    expect(listed.map((u) => [u.id, u.visits, u.faces])).toEqual([
      [first, 3, 2],
      [other, 1, 1],
    ]);
  });

  it('keeps the best crops, forgets the unseen and the least seen first', () => {
    const a = seen(basis(0), 1000, 0.2, 1);
    seen(basis(0), 1001, 0.9, 2);
    seen(basis(0), 1002, 0.5, 3);
    expect(unknowns.crops(a).map((c) => c[0])).toEqual([2, 3]);
    const b = seen(basis(30), 1003);
    const c = seen(basis(60), 1004);
    seen(basis(60), 1005);
    // A fourth visitor: b (seen once, longest ago among the once-seen) goes.
    const d = seen(basis(90), 1006);
    expect(
      unknowns
        .list()
        .map((u) => u.id)
        .sort(),
    ).toEqual([a, c, d].sort());
    expect(unknowns.prune(OPTIONS, 1006 + DAY)).toBe(2);
    expect(unknowns.list().map((u) => u.id)).toEqual([d]);
    expect(b).not.toBe(a);
  });

  it('enrols a visitor under a name with their crops, and forgets the visitor', () => {
    const id = seen(basis(0), 1000);
    seen(towards(0, 0.99), 1001);
    expect(unknowns.enrollAs(id, 'carol', V1)).toEqual({ added: 2 });
    expect(gallery.list().map((p) => [p.name, p.embeddings])).toEqual([['carol', 2]]);
    expect(gallery.identify(basis(0), V1, 0.9).identity).toBe('carol');
    expect(unknowns.list()).toEqual([]);
    expect(() => unknowns.enrollAs(id, 'carol', V1)).toThrow(`no unknown visitor ${id}`);
    expect(() => unknowns.enrollAs('unknown-x', 'carol', V1)).toThrow(GalleryError);
    expect(() =>
      unknowns.enrollAs(seen(basis(40), 1), 'carol', { name: 'facerec', version: '2.0.0' }),
    ).toThrow(/not the running facerec@2.0.0/);
  });

  it('stores negatives against a person and scores faces against them', () => {
    gallery.enroll('alice', [{ embedding: basis(0), source: 'a' }], V1);
    expect(unknowns.negativeScore('alice', basis(7), V1)).toBe(Number.NEGATIVE_INFINITY);
    expect(unknowns.addNegatives('alice', [basis(7)], V1, 'face/reject')).toBe(1);
    expect(unknowns.negativeScore('alice', basis(7), V1)).toBeCloseTo(1);
    expect(unknowns.negativeScore('alice', basis(7), { name: 'facerec', version: '2.0.0' })).toBe(
      Number.NEGATIVE_INFINITY,
    );
    expect(() => unknowns.addNegatives('bob', [basis(7)], V1, 'x')).toThrow('nobody called bob is enrolled');
    // Removing the person removes what was rejected as them.
    gallery.remove('alice');
    gallery.enroll('alice', [{ embedding: basis(0), source: 'a' }], V1);
    expect(unknowns.negativeScore('alice', basis(7), V1)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('parses ids strictly', () => {
    expect(parseUnknownId('unknown-17')).toBe(17);
    for (const bad of ['unknown-0', 'unknown-', 'Unknown-1', 'unknown-1x', 17, null])
      expect(() => parseUnknownId(bad)).toThrow(GalleryError);
  });

  it('renames a person with their faces and negatives, and shows one of their crops', () => {
    gallery.enroll('alice', [{ embedding: basis(0), crop: crop(9), source: 'a' }], V1);
    unknowns.addNegatives('alice', [basis(7)], V1, 'x');
    expect(gallery.photo('alice')?.[0]).toBe(9);
    expect(gallery.rename('alice', 'Alice B')).toBe(true);
    expect(gallery.identify(basis(0), V1, 0.9).identity).toBe('Alice B');
    expect(unknowns.negativeScore('Alice B', basis(7), V1)).toBeCloseTo(1);
    expect(gallery.photo('alice')).toBeNull();
    expect(gallery.rename('nobody', 'x')).toBe(false);
    gallery.enroll('bob', [{ embedding: basis(10), source: 'b' }], V1);
    expect(() => gallery.rename('bob', 'Alice B')).toThrow('Alice B is already enrolled');
    expect(gallery.photo('bob')).toBeNull(); // enrolled without a crop
  });
});
