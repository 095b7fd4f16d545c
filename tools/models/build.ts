// Builds the face models as fp32 and int8 ONNX with manifests from the pinned npm packages' weights,
// the committed training output and the committed calibration table: no face photos are read, and the
// same inputs always give the same bytes.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ModelManifest,
  manifestPathFor,
  type Precision,
  sha256,
  validateManifest,
} from '../../runtime/models/manifest.ts';
import { writeFileAtomic } from '../../runtime/util/atomic-file.ts';
import { FACEREC_TEMPLATE } from '../../runtime/vision/face-template.ts';
import {
  type CalibrationTable,
  CalibrationTableError,
  type ModelCalibration,
  manifestThresholds,
} from './calibration-table.ts';
import { serializeModel } from './onnx/writer.ts';
import { planQuantization, quantizeGraph } from './quantize/qdq.ts';
import { MODEL_SPECS, MODELS_VERSION, type ModelSpec } from './specs.ts';

export const PRODUCER = { producerName: 'facegate', producerVersion: MODELS_VERSION };
const RECALIBRATE = 'recalibrate with `npm run models -- --calibrate DIR` (docs/data.md)';

export interface BuildOptions {
  outDir: string;
  table: CalibrationTable;
  /** Where the table came from, for error messages. */
  tablePath: string;
  /** Names of the models to build (default: all). */
  only?: readonly string[];
  log?: (line: string) => void;
}

/** The specs named by `only` (default: all); an unknown name is an error listing the known ones. */
export function selectSpecs(only?: readonly string[]): ModelSpec[] {
  const unknown = only?.filter((n) => !MODEL_SPECS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0)
    throw new Error(`unknown model ${unknown.join(', ')} (${MODEL_SPECS.map((s) => s.name).join(', ')})`);
  return MODEL_SPECS.filter((s) => !only || only.includes(s.name));
}

export async function buildModels(opts: BuildOptions): Promise<ModelManifest[]> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { table, tablePath } = opts;
  // The calibration crops were aligned with the template: another template makes the table stale.
  if (JSON.stringify(table.alignmentTemplate.points) !== JSON.stringify(FACEREC_TEMPLATE.points))
    throw new CalibrationTableError(
      tablePath,
      `measured with another alignment template than runtime/vision/face-template.ts; ${RECALIBRATE}`,
    );
  const specs = selectSpecs(opts.only);
  mkdirSync(opts.outDir, { recursive: true });
  const manifests: ModelManifest[] = [];
  for (const [i, spec] of specs.entries()) {
    const started = performance.now();
    const calibration = table.models[spec.name];
    if (!calibration) throw new CalibrationTableError(tablePath, `no entry for ${spec.name}; ${RECALIBRATE}`);
    const graph = spec.build();
    const fp32 = serializeModel(graph, PRODUCER);
    if (sha256(fp32) !== calibration.fp32Sha256)
      throw new CalibrationTableError(
        tablePath,
        `${spec.name} was calibrated on another fp32 graph (sha256 ${calibration.fp32Sha256.slice(0, 12)}, this build ${sha256(fp32).slice(0, 12)}); ${RECALIBRATE}`,
      );
    manifests.push(writeModel(opts.outDir, spec, 'fp32', fp32, table, calibration));
    const { int8, quantized } = quantizedModel(spec, calibration, tablePath);
    manifests.push(writeModel(opts.outDir, spec, 'int8', int8, table, calibration, quantized));
    log(
      `[models] ${spec.name} fp32 + int8 (${i + 1}/${specs.length}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return manifests;
}

/** The int8 model of `spec` quantized with the table's ranges, and how many tensors were quantized. */
export function quantizedModel(
  spec: ModelSpec,
  calibration: ModelCalibration,
  tablePath: string,
): { int8: Uint8Array; quantized: number } {
  const graph = spec.build();
  const plan = planQuantization(graph);
  const missing = plan.calibrated.filter((t) => !calibration.ranges[t]);
  if (missing.length > 0)
    throw new CalibrationTableError(
      tablePath,
      `${spec.name}: no range for ${missing.join(', ')}; ${RECALIBRATE}`,
    );
  const ranges = new Map(plan.calibrated.map((t) => [t, rangeOf(calibration, t)]));
  return {
    int8: serializeModel(quantizeGraph(graph, plan, ranges).graph, PRODUCER),
    quantized: plan.quantized.length,
  };
}

function rangeOf(calibration: ModelCalibration, tensor: string): { lo: number; hi: number } {
  const [lo, hi] = calibration.ranges[tensor];
  return { lo, hi };
}

function writeModel(
  outDir: string,
  spec: ModelSpec,
  precision: Precision,
  onnx: Uint8Array,
  table: CalibrationTable,
  calibration: ModelCalibration,
  quantizedTensors?: number,
): ModelManifest {
  const file = `${spec.name}.${precision}.onnx`;
  const thresholds = manifestThresholds(table, calibration, precision);
  const manifest: ModelManifest = {
    schemaVersion: 1,
    name: spec.name,
    version: MODELS_VERSION,
    task: spec.task,
    file,
    sha256: sha256(onnx),
    bytes: onnx.length,
    precision,
    input: spec.input,
    outputs: spec.outputs,
    ...(precision === 'int8'
      ? {
          quantization: {
            format: 'QDQ',
            weights: 'int8 symmetric per-channel',
            activations: 'uint8 asymmetric per-tensor',
            method: calibration.method,
            ...(calibration.method === 'percentile' ? { percentile: table.percentile } : {}),
            calibration: {
              dataset: table.dataset,
              samples: calibration.samples,
              heldOut: calibration.heldOut,
            },
            methodFidelity: calibration.methodFidelity,
            quantizedTensors,
          },
        }
      : {}),
    ...(thresholds ? { thresholds } : {}),
    source: spec.source(),
    ...(spec.gates ? { gates: spec.gates() } : {}),
  };
  const errors = validateManifest(manifest);
  if (errors.length > 0) throw new Error(`built manifest for ${file} is invalid: ${errors.join('; ')}`);
  writeFileAtomic(join(outDir, file), onnx);
  writeFileAtomic(manifestPathFor(outDir, spec.name, precision), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
