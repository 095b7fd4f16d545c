import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Gallery } from '../../../runtime/matching/gallery/index.ts';
import { SCHEMA_VERSION } from '../../../runtime/matching/gallery/migrations.ts';
import {
  CROP_BYTES,
  GalleryError,
  MAX_NAME_LENGTH,
  normalizePersonName,
} from '../../../runtime/matching/gallery/records.ts';
import { runWriterUntilKilled as runUntilKilled } from '../../helpers/kill-writer.ts';
import { basis, crop, randomUnit, towards } from './helpers.ts';

const V1 = { name: 'facerec', version: '1.0.0' };
const V2 = { name: 'facerec', version: '2.0.0' };
const WRITER = fileURLToPath(new URL('./fixtures/enroll-writer.ts', import.meta.url));

let dir: string;
const opened: Gallery[] = [];

function open(name = 'gallery.db'): Gallery {
  const gallery = Gallery.open(join(dir, name));
  opened.push(gallery);
  return gallery;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-gallery-'));
});

afterEach(() => {
  for (const g of opened.splice(0)) g.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Gallery', () => {
  it('enrols, lists, identifies and removes', () => {
    const gallery = open();
    const before = Date.now();
    const alice = gallery.enroll('alice', [{ embedding: basis(0), crop: crop(1), source: 'alice.jpg' }], V1);
    expect(alice).toEqual({ personId: expect.any(Number), added: 1 });
    const bob = gallery.enroll(
      'bob',
      [
        { embedding: basis(10), source: 'bob-1.jpg' },
        { embedding: towards(10, 0.8), source: 'mqtt' },
      ],
      V1,
    );
    expect(bob.added).toBe(2);
    // Enrolling an existing name adds to that person.
    expect(gallery.enroll('alice', [{ embedding: towards(0, 0.9), source: 'mqtt' }], V1)).toEqual({
      personId: alice.personId,
      added: 1,
    });
    expect(bob.personId).not.toBe(alice.personId);

    const list = gallery.list();
    expect(list.map(({ name, embeddings, models }) => ({ name, embeddings, models }))).toEqual([
      { name: 'alice', embeddings: 2, models: ['facerec@1.0.0'] },
      { name: 'bob', embeddings: 2, models: ['facerec@1.0.0'] },
    ]);
    expect(list[0].createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(list[0].createdAt.getTime()).toBeLessThanOrEqual(Date.now());

    expect(gallery.identify(basis(0), V1, 0.5)).toMatchObject({ identity: 'alice', score: 1 });
    expect(gallery.identify(basis(10), V1, 0.5)).toMatchObject({ identity: 'bob', score: 1 });

    expect(gallery.remove('alice')).toBe(true);
    expect(gallery.remove('alice')).toBe(false);
    expect(gallery.list().map((p) => p.name)).toEqual(['bob']);
    expect(gallery.identify(basis(0), V1, 0.5).identity).toBeNull();
    expect(gallery.embeddingsFor(V1).map((e) => e.name)).toEqual(['bob', 'bob']);
  });

  it('keeps everything across close and reopen', () => {
    const first = Gallery.open(join(dir, 'g.db'));
    const vectors = [randomUnit(1), randomUnit(2), randomUnit(3)];
    first.enroll('alice', [{ embedding: vectors[0], crop: crop(7), source: 'a.jpg' }], V1);
    first.enroll(
      'bob',
      [
        { embedding: vectors[1], source: 'b1.jpg' },
        { embedding: vectors[2], source: 'b2.jpg' },
      ],
      V2,
    );
    const list = first.list();
    first.close();

    const again = open('g.db');
    expect(again.list()).toEqual(list);
    expect(again.embeddingsFor(V1).map((e) => [e.name, e.source, [...e.vector]])).toEqual([
      ['alice', 'a.jpg', [...vectors[0]]],
    ]);
    expect(again.embeddingsFor(V2).map((e) => [e.name, e.source, [...e.vector]])).toEqual([
      ['bob', 'b1.jpg', [...vectors[1]]],
      ['bob', 'b2.jpg', [...vectors[2]]],
    ]);
    expect(again.identify(vectors[2], V2, 0.5)).toMatchObject({ identity: 'bob' });
  });

  it('never compares embeddings of a different model version', () => {
    const gallery = open();
    gallery.enroll('alice', [{ embedding: towards(0, 0.7), source: 'a.jpg' }], V1);
    gallery.enroll('mallory', [{ embedding: basis(0), source: 'm.jpg' }], V2);

    const v1 = gallery.identify(basis(0), V1, 0.5);
    expect(v1.identity).toBe('alice');
    expect(v1.score).toBeCloseTo(0.7, 6);
    expect(v1.runnerUp).toBeUndefined();
    expect(gallery.identify(basis(0), V2, 0.5)).toEqual({ identity: 'mallory', score: 1 });
    expect(gallery.embeddingsFor(V1).map((e) => e.name)).toEqual(['alice']);
    expect(gallery.identify(basis(0), { name: 'other', version: '1.0.0' }, 0.5)).toEqual({
      identity: null,
      score: 0,
    });
    expect(gallery.list().find((p) => p.name === 'mallory')?.models).toEqual(['facerec@2.0.0']);
  });

  it('scores each person by their best embedding, only strictly above the threshold, with a runner-up', () => {
    const gallery = open();
    gallery.enroll(
      'alice',
      [
        { embedding: towards(0, 0.3), source: 'a1' },
        { embedding: towards(0, 0.9), source: 'a2' },
      ],
      V1,
    );
    gallery.enroll('bob', [{ embedding: towards(0, 0.7, 5), source: 'b' }], V1);
    gallery.enroll('carol', [{ embedding: towards(0, 0.1, 9), source: 'c' }], V1);

    const hit = gallery.identify(basis(0), V1, 0.8);
    expect(hit.identity).toBe('alice');
    expect(hit.score).toBeCloseTo(0.9, 6);
    expect(hit.runnerUp?.identity).toBe('bob');
    expect(hit.runnerUp?.score).toBeCloseTo(0.7, 6);

    // The stored score is float32; exactly at the threshold is not a match.
    expect(gallery.identify(basis(0), V1, Math.fround(0.9)).identity).toBeNull();
    expect(gallery.identify(basis(0), V1, Math.fround(0.9) - 1e-6).identity).toBe('alice');
    const miss = gallery.identify(basis(0), V1, 0.95);
    expect(miss.identity).toBeNull();
    expect(miss.score).toBeCloseTo(0.9, 6);
    expect(miss.runnerUp?.identity).toBe('bob');

    expect(() => gallery.identify(new Float32Array(64), V1, 0.5)).toThrow(GalleryError);
    expect(() => gallery.identify(basis(0), V1, Number.NaN)).toThrow(GalleryError);
  });

  it('identifies against the current gallery after enrolments and removals, also by another process', () => {
    const gallery = open();
    gallery.enroll('alice', [{ embedding: basis(0), source: 'a' }], V1);
    expect(gallery.identify(basis(3), V1, 0.5).identity).toBeNull();
    gallery.enroll('dave', [{ embedding: basis(3), source: 'd' }], V1);
    expect(gallery.identify(basis(3), V1, 0.5).identity).toBe('dave');

    const other = open();
    other.enroll('erin', [{ embedding: basis(4), source: 'e' }], V1);
    expect(gallery.identify(basis(4), V1, 0.5).identity).toBe('erin');
    other.remove('dave');
    expect(gallery.identify(basis(3), V1, 0.5).identity).toBeNull();
  });

  it('refuses names that are not safe topic levels', () => {
    const gallery = open();
    const entry = [{ embedding: basis(0), source: 'x' }];
    for (const bad of [
      'a+b',
      'a#',
      'a/b',
      '',
      'x'.repeat(MAX_NAME_LENGTH + 1),
      'tab\there',
      'nul\u0000',
      ' alice',
    ]) {
      expect(() => gallery.enroll(bad, entry, V1), JSON.stringify(bad)).toThrow(GalleryError);
    }
    expect(() => gallery.remove('a/b')).toThrow(GalleryError);
    expect(gallery.list()).toEqual([]);

    gallery.enroll('x'.repeat(MAX_NAME_LENGTH), entry, V1);
    gallery.enroll('Zoë Ångström', entry, V1);
    // Visually identical names are one person whatever their Unicode composition.
    expect(normalizePersonName('Zoe\u0308 A\u030angstro\u0308m')).toBe('Zoë Ångström');
    expect(gallery.remove('Zoe\u0308 A\u030angstro\u0308m')).toBe(true);
  });

  it('refuses bad embeddings and crops without storing anything of the enrolment', () => {
    const gallery = open();
    const half = new Float32Array(128).fill(0.5 / Math.sqrt(128));
    const cases = [
      [],
      [{ embedding: half, source: 's' }],
      [{ embedding: new Float32Array(127), source: 's' }],
      [{ embedding: Array.from(basis(0)) as unknown as Float32Array, source: 's' }],
      [
        { embedding: basis(0), source: 's' },
        { embedding: basis(1), crop: Buffer.alloc(CROP_BYTES - 1), source: 's' },
      ],
      [{ embedding: basis(0), source: '' }],
    ];
    for (const entries of cases) expect(() => gallery.enroll('alice', entries, V1)).toThrow(GalleryError);
    expect(() =>
      gallery.enroll('alice', [{ embedding: basis(0), source: 's' }], { name: '', version: '1' }),
    ).toThrow(GalleryError);
    expect(gallery.list()).toEqual([]);
  });

  it('re-embeds every stored crop for a new model, all or nothing', async () => {
    const gallery = open();
    gallery.enroll(
      'alice',
      [
        { embedding: towards(0, 0.9), crop: crop(1), source: 'a1' },
        { embedding: towards(0, 0.8), crop: crop(2), source: 'a2' },
      ],
      V1,
    );
    gallery.enroll('bob', [{ embedding: towards(20, 0.9), crop: crop(30), source: 'b' }], V1);
    // The new model maps crop bytes to a basis vector, so the result shows which crop went in.
    const embed = async (c: Buffer) => basis(c[0]);

    const seen: number[] = [];
    expect(
      await gallery.reembed(V2, async (c) => {
        expect(c.length).toBe(CROP_BYTES);
        seen.push(c[0]);
        return embed(c);
      }),
    ).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual([1, 2, 30]);
    expect(gallery.embeddingsFor(V1)).toEqual([]);
    expect(gallery.embeddingsFor(V2).map((e) => [e.name, e.source, e.vector.indexOf(1)])).toEqual([
      ['alice', 'a1', 1],
      ['alice', 'a2', 2],
      ['bob', 'b', 30],
    ]);
    expect(gallery.identify(basis(30), V2, 0.5).identity).toBe('bob');
    expect(gallery.list().map((p) => p.models)).toEqual([['facerec@2.0.0'], ['facerec@2.0.0']]);
    // Already converted: nothing to do.
    expect(await gallery.reembed(V2, embed)).toBe(0);

    // A failing embedder leaves the gallery as it was.
    await expect(gallery.reembed(V1, async () => new Float32Array(3))).rejects.toThrow(GalleryError);
    await expect(
      gallery.reembed(V1, async () => {
        throw new Error('engine crashed');
      }),
    ).rejects.toThrow('engine crashed');
    expect(gallery.embeddingsFor(V2)).toHaveLength(3);

    // An embedding without a crop cannot be converted: refuse before touching anything.
    gallery.enroll('carol', [{ embedding: basis(5), source: 'c' }], V2);
    let calls = 0;
    await expect(
      gallery.reembed(V1, async (c) => {
        calls++;
        return embed(c);
      }),
    ).rejects.toThrow(/1 embedding\(s\) have no stored face crop \(carol\)/);
    expect(calls).toBe(0);
    expect(gallery.embeddingsFor(V2)).toHaveLength(4);
  });

  it('backs up to a file that opens with the same content, replacing an older backup', async () => {
    const gallery = open();
    gallery.enroll('alice', [{ embedding: randomUnit(1), crop: crop(9), source: 'a' }], V1);
    gallery.enroll('bob', [{ embedding: randomUnit(2), crop: crop(8), source: 'b' }], V2);
    const target = join(dir, 'backups', 'gallery-backup.db');
    await expect(gallery.backup(target)).rejects.toThrow(GalleryError); // no such directory
    mkdirSync(join(dir, 'backups'));
    writeFileSync(target, 'an older backup');
    await gallery.backup(target);
    gallery.enroll('carol', [{ embedding: randomUnit(3), source: 'c' }], V1);

    const copy = open('backups/gallery-backup.db');
    expect(copy.list()).toEqual(gallery.list().filter((p) => p.name !== 'carol'));
    expect(copy.embeddingsFor(V1)).toEqual(gallery.embeddingsFor(V1).filter((e) => e.name !== 'carol'));
    expect(copy.embeddingsFor(V2)).toEqual(gallery.embeddingsFor(V2));
    // Crops came along: the copy can be re-embedded.
    expect(await copy.reembed({ name: 'facerec', version: '3' }, async (c) => basis(c[0]))).toBe(2);
    expect(statSync(target).mode & 0o777).toBe(0o600);
    await expect(gallery.backup(join(dir, 'gallery.db'))).rejects.toThrow(/the gallery itself/);
  });

  it('gives a clear error for a file that is not a readable gallery, and leaves it alone', () => {
    const garbage = join(dir, 'garbage.db');
    const bytes = randomBytes(64 * 1024);
    writeFileSync(garbage, bytes);
    expect(() => Gallery.open(garbage)).toThrow(/gallery .*garbage\.db is not a readable SQLite database/);
    expect(readFileSync(garbage).equals(bytes)).toBe(true);

    // A real gallery whose pages were overwritten after the header.
    const damaged = join(dir, 'damaged.db');
    const g = Gallery.open(damaged);
    for (let i = 0; i < 20; i++)
      g.enroll(`p${i}`, [{ embedding: randomUnit(i), crop: crop(i), source: 's' }], V1);
    g.close();
    const file = readFileSync(damaged);
    randomBytes(file.length - 8192).copy(file, 8192);
    writeFileSync(damaged, file);
    expect(() => Gallery.open(damaged)).toThrow(GalleryError);

    const foreign = join(dir, 'foreign.db');
    const other = Gallery.open(foreign);
    other.close();
    // Simulate another application's database and a gallery from a newer facegate.
    const db = new Sqlite(join(dir, 'other-app.db'));
    db.exec('CREATE TABLE things (x)');
    db.close();
    expect(() => Gallery.open(join(dir, 'other-app.db'))).toThrow(/not a facegate gallery/);
    const newer = new Sqlite(foreign);
    newer.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 1);
    newer.close();
    expect(() => Gallery.open(foreign)).toThrow(/newer than this facegate understands/);
  });

  it('migrates a gallery of an older schema version forward, keeping its people', () => {
    const path = join(dir, 'old.db');
    const gallery = Gallery.open(path);
    gallery.enroll('alice', [{ embedding: basis(0), crop: crop(1), source: 'a' }], V1);
    gallery.close();
    // Back to version 1: what a facegate before the unknown-visitor tables left on disk.
    const old = new Sqlite(path);
    old.exec('DROP TABLE negatives; DROP TABLE unknown_faces; DROP TABLE unknowns');
    old.prepare('UPDATE schema_version SET version = 1').run();
    old.close();

    const reopened = open('old.db');
    expect(reopened.list().map((p) => [p.name, p.embeddings])).toEqual([['alice', 1]]);
    reopened.close();
    const db = new Sqlite(path, { readonly: true });
    expect(db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(SCHEMA_VERSION);
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    db.close();
    expect(tables).toEqual([
      'embeddings',
      'negatives',
      'people',
      'schema_version',
      'unknown_faces',
      'unknowns',
    ]);
  });

  it('creates the gallery private to its owner and erases a removed person from the file', () => {
    const path = join(dir, 'sub', 'gallery.db');
    const marker = Buffer.from('FACE-CROP-OF-ALICE|');
    const face = Buffer.alloc(CROP_BYTES);
    for (let i = 0; i + marker.length <= face.length; i += marker.length) marker.copy(face, i);
    const fileHolds = () =>
      [path, `${path}-wal`].some((p) => existsSync(p) && readFileSync(p).includes(marker));

    const gallery = Gallery.open(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    gallery.enroll('alice', [{ embedding: basis(0), crop: face, source: 'a' }], V1);
    gallery.enroll('bob', [{ embedding: basis(1), crop: crop(2), source: 'b' }], V1);
    expect(fileHolds()).toBe(true);
    gallery.remove('alice');
    expect(fileHolds()).toBe(false);
    gallery.close();
    expect(fileHolds()).toBe(false);
    expect(
      Gallery.open(path)
        .list()
        .map((p) => p.name),
    ).toEqual(['bob']);
  });
});

interface WriterLog {
  enrolled: number[];
  /** Removals started; they may have survived the kill. */
  removing: number[];
  removed: number[];
}

async function runWriterUntilKilled(path: string, first: number, killAfterMs: number): Promise<WriterLog> {
  const log: WriterLog = { enrolled: [], removing: [], removed: [] };
  await runUntilKilled(WRITER, [path, String(first)], killAfterMs, (tag, n) => {
    if (tag === 'E') log.enrolled.push(n);
    else if (tag === 'r') log.removing.push(n);
    else if (tag === 'R') log.removed.push(n);
  });
  return log;
}

describe('Gallery kill safety', () => {
  it('keeps every enrolment that returned, whole, and never a half-enrolled person, across SIGKILLs', async () => {
    const path = join(dir, 'gallery.db');
    const enrolled = new Set<number>();
    const removing = new Set<number>();
    const removed = new Set<number>();
    for (let round = 0; round < 4; round++) {
      const log = await runWriterUntilKilled(path, round * 100_000, 200 + Math.floor(Math.random() * 600));
      expect(log.enrolled.length).toBeGreaterThan(0);
      for (const i of log.enrolled) enrolled.add(i);
      for (const i of log.removing) removing.add(i);
      for (const i of log.removed) removed.add(i);

      const gallery = Gallery.open(path);
      const byPerson = new Map<number, Float32Array[]>();
      for (const e of gallery.embeddingsFor(V1)) {
        const i = Number(e.name.slice(1));
        byPerson.set(i, [...(byPerson.get(i) ?? []), e.vector]);
      }
      // Everything present is complete and exactly what was written.
      for (const [i, vectors] of byPerson) {
        expect(vectors.length, `p${i}`).toBe(1 + (i % 4));
        vectors.forEach((v, j) => {
          expect([...v]).toEqual([...randomUnit(i * 16 + j)]);
        });
      }
      expect(gallery.list().every((p) => byPerson.has(Number(p.name.slice(1))))).toBe(true);
      // Everything confirmed is there; everything confirmed removed is gone.
      for (const i of enrolled) {
        if (removed.has(i)) expect(byPerson.has(i), `p${i}`).toBe(false);
        else if (!removing.has(i)) expect(byPerson.has(i), `p${i}`).toBe(true);
      }
      gallery.close();
    }
    expect(enrolled.size).toBeGreaterThan(10);
  });
});
