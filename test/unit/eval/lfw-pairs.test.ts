import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lfwImagePath, parseLfwPairs, readLfwPairs } from '../../../runtime/eval/lfw-pairs.ts';
import { DATA_SET_DIR, dataPath, dataSetSuite } from '../../helpers/paths.ts';

describe.skipIf(!DATA_SET_DIR)(dataSetSuite('readLfwPairs on the real pairs-dev.txt'), () => {
  it('yields 5 folds of 300 matched then 300 mismatched pairs whose images exist', async () => {
    const { folds, pairs } = await readLfwPairs(dataPath('lfw', 'pairs-dev.txt'));
    expect(folds).toBe(5);
    expect(pairs).toHaveLength(3000);
    expect(pairs.filter((p) => p.same)).toHaveLength(1500);
    for (let f = 0; f < 5; f++) {
      const fold = pairs.filter((p) => p.fold === f);
      expect(fold).toHaveLength(600);
      expect(fold.slice(0, 300).every((p) => p.same)).toBe(true);
      expect(fold.slice(300).every((p) => !p.same)).toBe(true);
    }
    // File line 2 (first pair), 302 (first mismatched), 601/602 (fold 0/1 boundary), last line.
    expect(pairs[0]).toEqual({
      fold: 0,
      same: true,
      a: 'Abel_Pacheco/Abel_Pacheco_0001.jpg',
      b: 'Abel_Pacheco/Abel_Pacheco_0004.jpg',
    });
    expect(pairs[300]).toEqual({
      fold: 0,
      same: false,
      a: 'Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg',
      b: 'Dean_Barker/Dean_Barker_0001.jpg',
    });
    expect(pairs[599]).toMatchObject({ fold: 0, same: false, a: 'Tina_Fey/Tina_Fey_0001.jpg' });
    expect(pairs[600]).toEqual({
      fold: 1,
      same: true,
      a: 'Abdullah_Gul/Abdullah_Gul_0001.jpg',
      b: 'Abdullah_Gul/Abdullah_Gul_0006.jpg',
    });
    expect(pairs[2999]).toEqual({
      fold: 4,
      same: false,
      a: 'Tara_Kirk/Tara_Kirk_0001.jpg',
      b: 'Win_Aung/Win_Aung_0001.jpg',
    });
    const missing = pairs
      .flatMap((p) => [p.a, p.b])
      .filter((rel) => !existsSync(dataPath('lfw', 'dev', rel)));
    expect(missing).toEqual([]);
  });
});

describe('parseLfwPairs', () => {
  const valid = ['2\t1', 'Ann\t1\t2', 'Bob\t3\tCy\t12', 'Dee_E\t10\t102', 'Eve\t1\tFay-G\t1'];

  it('assigns folds by position, zero-pads image numbers and accepts CRLF and a trailing newline', () => {
    const { folds, pairs } = parseLfwPairs(`${valid.join('\r\n')}\r\n\r\n`);
    expect(folds).toBe(2);
    expect(pairs).toEqual([
      { fold: 0, same: true, a: 'Ann/Ann_0001.jpg', b: 'Ann/Ann_0002.jpg' },
      { fold: 0, same: false, a: 'Bob/Bob_0003.jpg', b: 'Cy/Cy_0012.jpg' },
      { fold: 1, same: true, a: 'Dee_E/Dee_E_0010.jpg', b: 'Dee_E/Dee_E_0102.jpg' },
      { fold: 1, same: false, a: 'Eve/Eve_0001.jpg', b: 'Fay-G/Fay-G_0001.jpg' },
    ]);
    expect(lfwImagePath('X', 12345)).toBe('X/X_12345.jpg');
  });

  function withLine(lineNo: number, content: string): string {
    const lines = [...valid];
    lines[lineNo - 1] = content;
    return lines.join('\n');
  }

  it.each([
    [3, 'Ann\t1\t2', 'mismatched pair where a matched one belongs'],
    [2, 'Bob\t3\tCy\t12', 'matched slot holding a mismatched pair'],
    [2, 'Ann\t1\tx', 'non-numeric image number'],
    [2, 'Ann\t0\t2', 'image number 0'],
    [2, 'Ann\t1\t1', 'same image twice'],
    [2, 'Ann 1 2', 'spaces instead of tabs'],
    [3, 'Bob\t3\tBob\t4', 'mismatched pair of one person'],
    [3, '../etc\t1\tCy\t2', 'path-escaping name'],
    [4, '', 'blank line inside the data'],
    [1, '2', 'header without pair count'],
    [1, 'two\t1', 'non-numeric header'],
  ])('line %i: rejects %j (%s) naming the line and its content', (lineNo, content) => {
    const text = withLine(lineNo, content);
    expect(() => parseLfwPairs(text)).toThrow(`line ${lineNo}: `);
    expect(() => parseLfwPairs(text)).toThrow(JSON.stringify(content));
  });

  it('rejects pairs beyond what the header declares, naming the first extra line', () => {
    expect(() => parseLfwPairs([...valid, 'Zed\t1\t2'].join('\n'))).toThrow(/line 6: .*"Zed\\t1\\t2"/);
  });

  it('rejects a file that ends before the declared number of pairs', () => {
    expect(() => parseLfwPairs(valid.slice(0, 4).join('\n'))).toThrow(
      /ends after 3 pairs; the header declares 4/,
    );
  });

  it('rejects an empty file', () => {
    expect(() => parseLfwPairs('\n\n')).toThrow(/empty/);
  });
});
