import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DLIB_CHIPS_DIR } from '../../../runtime/paths.ts';
import { listFaceFolder } from '../../../runtime/util/face-folder.ts';
import { tempDir } from '../../helpers/model-update.ts';

describe('listFaceFolder', () => {
  let dir: ReturnType<typeof tempDir> | undefined;
  afterEach(() => dir?.remove());

  it('lists the photos of every person folder, sorted, and skips loose files and non-images', () => {
    dir = tempDir('face-folder');
    for (const [person, files] of [
      ['bob', ['b.png', 'a.JPG', 'notes.txt']],
      ['ann', ['x.jpeg']],
    ] as const) {
      mkdirSync(join(dir.path, person));
      for (const f of files) writeFileSync(join(dir.path, person, f), '');
    }
    writeFileSync(join(dir.path, 'README.md'), '');
    expect(listFaceFolder(dir.path)).toEqual([
      { person: 'ann', file: 'ann/x.jpeg' },
      { person: 'bob', file: 'bob/a.JPG' },
      { person: 'bob', file: 'bob/b.png' },
    ]);
  });

  it('reads the committed dlib chips: five Johns', () => {
    const people = new Set(listFaceFolder(DLIB_CHIPS_DIR).map((p) => p.person));
    expect([...people]).toEqual([
      'John_Salley',
      'John_Savage',
      'John_Schneider',
      'John_Shimkus',
      'John_Simm',
    ]);
  });
});
