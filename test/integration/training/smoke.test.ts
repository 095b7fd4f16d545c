// The offline gate training runs end to end in its CI mode (a few steps on the committed fixture crops)
// and writes outputs the TypeScript builder can turn into a gated graph.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findGates } from '../../../runtime/models/gated/pattern.ts';
import { buildGatedFaceRec } from '../../../tools/models/gated/build.ts';

const PYTHON = '/usr/bin/python3';
const torchCheck = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const torchMissing =
  torchCheck.status === 0
    ? undefined
    : `${PYTHON} cannot import torch and numpy (${(torchCheck.stderr || torchCheck.error?.message || '').trim().split('\n').pop()}): gate training smoke test skipped`;

const out = mkdtempSync(join(tmpdir(), 'facegate-gates-smoke-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('training/gates.py --smoke', () => {
  it('trains a few steps and writes gates, weights and manifest', (ctx) => {
    if (torchMissing) {
      console.warn(torchMissing);
      ctx.skip(torchMissing);
    }
    const run = spawnSync(PYTHON, ['training/gates.py', '--smoke', '--out', out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    for (const f of ['gates.json', 'gates.bin', 'manifest.json']) expect(existsSync(join(out, f))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.steps).toBe(3);
    expect(manifest.portCheck.minCosine).toBeGreaterThan(0.9999);
    expect(findGates(buildGatedFaceRec(out))).toHaveLength(29);
  });
});
