// The committed calibration table fits the code that builds from it, and is written in its stable form
// (a recalibration that measures the same shows no diff).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FACEREC_TEMPLATE } from '../../../runtime/vision/face-template.ts';
import {
  CALIBRATION_TABLE,
  formatCalibrationTable,
  readCalibrationTable,
} from '../../../tools/models/calibration-table.ts';
import { MODEL_SPECS } from '../../../tools/models/specs.ts';
import { REPO_ROOT } from '../../helpers/paths.ts';

const table = readCalibrationTable();

describe('training/output/calibration.json', () => {
  it('has an entry for every model the toolchain builds, with thresholds for the embedders', () => {
    expect(Object.keys(table.models).sort()).toEqual(MODEL_SPECS.map((s) => s.name).sort());
    for (const spec of MODEL_SPECS) {
      const entry = table.models[spec.name];
      expect(Object.keys(entry.ranges).length, spec.name).toBeGreaterThan(0);
      // Every range holds 0 (real zero stays exact); a gate closed on every face has [0, 0].
      for (const [lo, hi] of Object.values(entry.ranges)) expect(lo <= 0 && hi >= 0).toBe(true);
      expect(Boolean(entry.thresholds), spec.name).toBe(spec.task === 'face-embedding');
    }
  });

  it('was measured with the alignment template the runtime uses', () => {
    expect(table.alignmentTemplate).toEqual({
      indices: FACEREC_TEMPLATE.indices,
      points: FACEREC_TEMPLATE.points,
    });
  });

  it('is stored in its stable order and layout', () => {
    expect(formatCalibrationTable(table)).toBe(readFileSync(CALIBRATION_TABLE, 'utf8'));
  });

  it('refuses a file of another format, naming it', () => {
    expect(() => readCalibrationTable(join(REPO_ROOT, 'package.json'))).toThrow(
      /calibration table .*package\.json: format must be facegate-calibration\/1, not undefined/,
    );
  });
});
