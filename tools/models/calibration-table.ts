// The calibration table: everything the model build derives from face photos, measured once by
// `npm run models -- --calibrate DIR` and committed (training/output/calibration.json), so that
// `npm run models` needs only the pinned npm weights, the committed training output and this file
// (as TensorRT's calibration cache stands for its calibration run). Keys are written in a fixed order and
// each range on one line, so a recalibration shows up as a reviewable diff.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CalibrationMethodName, ModelManifest } from '../../runtime/models/manifest.ts';
import { TRAINING_OUTPUT_DIR } from '../../runtime/paths.ts';
import { writeFileAtomic } from '../../runtime/util/atomic-file.ts';

export const CALIBRATION_TABLE = join(TRAINING_OUTPUT_DIR, 'calibration.json');
const FORMAT = 'facegate-calibration/1';

/** Cosine thresholds over every different-person pair of calibration faces, for one precision. */
export interface MeasuredThresholds {
  far: { '0.01': number; '0.001': number };
  impostorPairs: number;
  genuinePairs: number;
  /** [FAR, threshold] from FAR 0.1 down to the lowest FAR the pair count measures (far's two included). */
  curve: [number, number][];
}

export interface ModelCalibration {
  /** sha256 of the fp32 model the ranges were measured on: another graph needs a new calibration. */
  fp32Sha256: string;
  method: CalibrationMethodName;
  /** Images whose activations fixed the ranges, and the held-out ones that judged the methods. */
  samples: number;
  heldOut: number;
  /** Mean agreement of each method's int8 model with fp32 on the held-out samples (1 = identical). */
  methodFidelity: Record<CalibrationMethodName, number>;
  /** The chosen method's [lo, hi] range of every calibrated activation tensor, in graph order. */
  ranges: Record<string, [number, number]>;
  /** Embedders only. */
  thresholds?: { fp32: MeasuredThresholds; int8: MeasuredThresholds };
}

export interface CalibrationTable {
  format: typeof FORMAT;
  /** Where the faces came from, as the manifests name it (e.g. lfw/calib). */
  dataset: string;
  images: number;
  /** Images on which the fp32 detector found no face (they were centre-cropped, as the runtime does). */
  noFace: number;
  /** The percentile the percentile method clips at. */
  percentile: number;
  /** Where the fp32 detector's keypoints land on dlib's face chips (runtime/vision/face-template.ts),
   * re-derived with the calibration; the aligned calibration crops used this template. */
  alignmentTemplate: { indices: number[]; points: [number, number][] };
  models: Record<string, ModelCalibration>;
}

export class CalibrationTableError extends Error {
  constructor(path: string, reason: string) {
    super(`calibration table ${path}: ${reason}`);
    this.name = 'CalibrationTableError';
  }
}

export function readCalibrationTable(path = CALIBRATION_TABLE): CalibrationTable {
  let table: CalibrationTable;
  try {
    table = JSON.parse(readFileSync(path, 'utf8')) as CalibrationTable;
  } catch (e) {
    throw new CalibrationTableError(path, (e as Error).message);
  }
  if (table?.format !== FORMAT)
    throw new CalibrationTableError(path, `format must be ${FORMAT}, not ${String(table?.format)}`);
  return table;
}

/** The manifest's thresholds block for an embedder built at `precision`. */
export function manifestThresholds(
  table: CalibrationTable,
  model: ModelCalibration,
  precision: 'fp32' | 'int8',
): ModelManifest['thresholds'] {
  const t = model.thresholds?.[precision];
  return (
    t && {
      far: t.far,
      curve: t.curve,
      measuredOn: table.dataset,
      impostorPairs: t.impostorPairs,
      genuinePairs: t.genuinePairs,
    }
  );
}

export function formatCalibrationTable(table: CalibrationTable): string {
  const models = Object.fromEntries(
    Object.keys(table.models)
      .sort()
      .map((name) => {
        const m = table.models[name];
        const ordered: ModelCalibration = {
          fp32Sha256: m.fp32Sha256,
          method: m.method,
          samples: m.samples,
          heldOut: m.heldOut,
          methodFidelity: m.methodFidelity,
          ...(m.thresholds ? { thresholds: { fp32: m.thresholds.fp32, int8: m.thresholds.int8 } } : {}),
          ranges: m.ranges,
        };
        return [name, ordered];
      }),
  );
  const ordered: CalibrationTable = {
    format: FORMAT,
    dataset: table.dataset,
    images: table.images,
    noFace: table.noFace,
    percentile: table.percentile,
    alignmentTemplate: table.alignmentTemplate,
    models,
  };
  // Arrays of numbers (ranges, points) on one line each.
  return `${JSON.stringify(ordered, null, 2).replace(/\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`)}\n`;
}

export function writeCalibrationTable(path: string, table: CalibrationTable): void {
  writeFileAtomic(path, formatCalibrationTable(table));
}
