// Parser for the LFW View-2 pairs file (pairs.txt / pairs-dev.txt).
//
// Layout: a header `<folds>\t<n>`, then for each fold n matched lines `name\tn1\tn2` followed by
// n mismatched lines `name1\tn1\tname2\tn2`. The fold of a pair is implied only by its position,
// so the parser checks the block structure strictly: a line out of place would silently move
// pairs between folds and corrupt the cross-validation.
import { readFile } from 'node:fs/promises';

export interface LfwPair {
  /** 0-based fold index, from the pair's position in the file. */
  fold: number;
  same: boolean;
  /** Image paths relative to the LFW image root, e.g. `Abel_Pacheco/Abel_Pacheco_0001.jpg`. */
  a: string;
  b: string;
}

export interface LfwPairs {
  folds: number;
  pairs: LfwPair[];
}

/** Relative path of image `n` (1-based, as in the pairs file) of person `name`. */
export function lfwImagePath(name: string, n: number): string {
  return `${name}/${name}_${String(n).padStart(4, '0')}.jpg`;
}

// Names become path segments, so anything that could escape the image root is rejected.
const NAME = /^[^\s/\\]+$/;
const COUNT = /^[1-9]\d*$/;

function malformed(lineNo: number, line: string, why: string): Error {
  return new Error(`LFW pairs line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
}

function parseName(field: string, lineNo: number, line: string): string {
  if (!NAME.test(field) || field === '.' || field === '..') {
    throw malformed(lineNo, line, `invalid person name ${JSON.stringify(field)}`);
  }
  return field;
}

function parseIndex(field: string, lineNo: number, line: string): number {
  if (!COUNT.test(field)) throw malformed(lineNo, line, `invalid image number ${JSON.stringify(field)}`);
  return Number(field);
}

export function parseLfwPairs(text: string): LfwPairs {
  const lines = text.split(/\r?\n/);
  // Trailing blank lines are an artefact of editors and downloads; blank lines elsewhere are errors.
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  if (lines.length === 0) throw new Error('LFW pairs file is empty');

  const header = lines[0].split('\t');
  if (header.length !== 2 || !COUNT.test(header[0]) || !COUNT.test(header[1])) {
    throw malformed(1, lines[0], 'expected header "<folds>\\t<pairs per class per fold>"');
  }
  const folds = Number(header[0]);
  const perClass = Number(header[1]);
  const expected = folds * perClass * 2;

  const pairs: LfwPair[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const lineNo = i + 1;
    if (i > expected) throw malformed(lineNo, line, `more than the ${expected} pairs the header declares`);
    const offset = (i - 1) % (2 * perClass);
    const fold = Math.floor((i - 1) / (2 * perClass));
    const same = offset < perClass;
    const fields = line.split('\t');
    if (same) {
      if (fields.length !== 3) throw malformed(lineNo, line, 'expected matched pair "name\\tn1\\tn2"');
      const name = parseName(fields[0], lineNo, line);
      const n1 = parseIndex(fields[1], lineNo, line);
      const n2 = parseIndex(fields[2], lineNo, line);
      // Comparing an image with itself would inflate accuracy.
      if (n1 === n2) throw malformed(lineNo, line, 'matched pair uses the same image twice');
      pairs.push({ fold, same, a: lfwImagePath(name, n1), b: lfwImagePath(name, n2) });
    } else {
      if (fields.length !== 4) {
        throw malformed(lineNo, line, 'expected mismatched pair "name1\\tn1\\tname2\\tn2"');
      }
      const name1 = parseName(fields[0], lineNo, line);
      const n1 = parseIndex(fields[1], lineNo, line);
      const name2 = parseName(fields[2], lineNo, line);
      const n2 = parseIndex(fields[3], lineNo, line);
      if (name1 === name2) throw malformed(lineNo, line, 'mismatched pair names the same person twice');
      pairs.push({ fold, same, a: lfwImagePath(name1, n1), b: lfwImagePath(name2, n2) });
    }
  }
  if (pairs.length < expected) {
    throw new Error(`LFW pairs file ends after ${pairs.length} pairs; the header declares ${expected}`);
  }
  return { folds, pairs };
}

export async function readLfwPairs(path: string): Promise<LfwPairs> {
  return parseLfwPairs(await readFile(path, 'utf8'));
}
