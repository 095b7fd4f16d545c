// `facegate enroll | identify | gallery` as an operator runs them, on real photos: from another working
// directory and without the face data set, as an installed package is.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FACES_DIR, REPO_ROOT } from '../../helpers/paths.ts';

const run = promisify(execFile);
const { FACEGATE_DATA: _, ...envWithoutData } = process.env;
const facegate = (...args: string[]) =>
  run(process.execPath, [join(REPO_ROOT, 'bin', 'facegate.js'), ...args], {
    cwd: dir,
    env: envWithoutData,
    maxBuffer: 16 << 20,
  });
const EXAMPLES = join(FACES_DIR, 'face_recognition_examples');
const photo = (p: string) => join(EXAMPLES, p);

let dir: string;
let gallery: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-cli-'));
  gallery = join(dir, 'gallery.db');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('facegate enroll / identify / gallery', () => {
  it('enrols two people and identifies them in a group photo, and a stranger as null', async () => {
    await facegate(
      'enroll',
      '--gallery',
      gallery,
      '--name',
      'obama',
      photo('knn_examples/train/obama/obama.jpg'),
      photo('knn_examples/train/obama/obama2.jpg'),
    );
    await facegate(
      'enroll',
      '--gallery',
      gallery,
      '--name',
      'biden',
      photo('knn_examples/train/biden/biden.jpg'),
    );
    const { stdout } = await facegate(
      'identify',
      '--gallery',
      gallery,
      '--json',
      photo('knn_examples/test/obama_and_biden.jpg'),
      photo('knn_examples/test/alex_lacamoire1.jpg'),
    );
    const [group, stranger] = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(group.faces.map((f: { identity: string }) => f.identity).sort()).toEqual(['biden', 'obama']);
    for (const f of group.faces) {
      expect(f.box).toHaveLength(4);
      expect(f.score).toBeGreaterThan(0);
    }
    expect(stranger.faces).toHaveLength(1);
    expect(stranger.faces[0].identity).toBeNull();
  });

  it('refuses a photo with two faces, and one with none, naming the file', async () => {
    const twoPeople = photo('misc/two_people.jpg');
    await expect(facegate('enroll', '--gallery', gallery, '--name', 'x', twoPeople)).rejects.toMatchObject({
      stderr: expect.stringMatching(/two_people\.jpg: 2 faces found; enrol from a photo of one person/),
    });
    const empty = join(dir, 'wall.png');
    await sharp({ create: { width: 320, height: 240, channels: 3, background: '#8a7f70' } })
      .png()
      .toFile(empty);
    await expect(facegate('enroll', '--gallery', gallery, '--name', 'x', empty)).rejects.toMatchObject({
      stderr: expect.stringMatching(/wall\.png: no face found/),
    });
    const { stdout } = await facegate('gallery', 'list', '--gallery', gallery, '--json');
    expect(JSON.parse(stdout).map((p: { name: string }) => p.name)).toEqual(['biden', 'obama']);
  });

  it('reports a corrupt image in place and still identifies the others', async () => {
    const corrupt = join(dir, 'truncated.jpg');
    writeFileSync(corrupt, readFileSync(photo('knn_examples/train/obama/obama.jpg')).subarray(0, 300));
    const result = facegate(
      'identify',
      '--gallery',
      gallery,
      '--json',
      corrupt,
      photo('knn_examples/test/obama1.jpg'),
    );
    const failure = await result.then(
      () => null,
      (e: { stdout: string; code: number }) => e,
    );
    expect(failure?.code).toBe(1);
    const [bad, good] = (failure?.stdout ?? '')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(bad.error).toMatch(/cannot decode image/);
    expect(good.faces[0].identity).toBe('obama');
  });

  it('removes a person, and says so when the name is unknown', async () => {
    await facegate('gallery', 'remove', '--gallery', gallery, 'biden');
    const { stdout } = await facegate('gallery', 'list', '--gallery', gallery, '--json');
    expect(JSON.parse(stdout).map((p: { name: string }) => p.name)).toEqual(['obama']);
    await expect(facegate('gallery', 'remove', '--gallery', gallery, 'biden')).rejects.toMatchObject({
      stderr: expect.stringMatching(/no person named "biden"/),
    });
  });
});
