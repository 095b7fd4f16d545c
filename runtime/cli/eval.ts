// `facegate eval lfw`: verification accuracy of the deployed pipeline on LFW-format data.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { evalLfw, type LfwReport } from '../eval/lfw.ts';
import { sweepLfw } from '../eval/sweep.ts';
import { dataSetDir, modelsDir } from '../paths.ts';

const USAGE =
  'usage: facegate eval lfw [--images DIR --pairs FILE] [--precision fp32|int8] [--detector-precision fp32|int8] [--engine ort|kernels] [--model facerec|facerec-gated] [--threads N] [--models DIR] [--json] [--roc FILE.png]\n' +
  '       facegate eval sweep [--images DIR --pairs FILE] [--thresholds T,T,...] [--models DIR] [--candidate NAME=MODELS_DIR ...] [--json] [--png FILE.png]';

export async function evalCommand(args: string[]): Promise<number> {
  const [target, ...rest] = args;
  if (target === 'sweep') return sweepCommand(rest);
  if (target !== 'lfw') {
    console.error(USAGE);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      images: { type: 'string' },
      pairs: { type: 'string' },
      precision: { type: 'string', default: 'int8' },
      'detector-precision': { type: 'string', default: 'fp32' },
      engine: { type: 'string', default: 'ort' },
      threads: { type: 'string', default: '2' },
      model: { type: 'string', default: 'facerec' },
      models: { type: 'string', default: modelsDir() },
      json: { type: 'boolean', default: false },
      roc: { type: 'string' },
    },
  });
  const { images, pairs } = lfwFolders(values, 'eval lfw');
  const precision = parsePrecision('--precision', values.precision);
  const detectorPrecision = parsePrecision('--detector-precision', values['detector-precision']);
  if (values.engine !== 'ort' && values.engine !== 'kernels')
    throw new Error(`--engine must be ort or kernels, not "${values.engine}"`);
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`--threads must be a positive integer, not "${values.threads}"`);

  const report = await evalLfw({
    images,
    pairs,
    modelsDir: values.models,
    precision,
    detectorPrecision,
    engine: values.engine,
    threads,
    model: values.model,
    rocPath: values.roc,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  console.log(values.json ? JSON.stringify(report) : formatReport(report));
  return 0;
}

async function sweepCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      images: { type: 'string' },
      pairs: { type: 'string' },
      thresholds: { type: 'string', default: '-1,-0.5,0,0.5,1,2' },
      models: { type: 'string', default: modelsDir() },
      json: { type: 'boolean', default: false },
      png: { type: 'string' },
      candidate: { type: 'string', multiple: true, default: [] },
    },
  });
  const { images, pairs } = lfwFolders(values, 'eval sweep');
  const candidates = values.candidate.map((c) => {
    const at = c.indexOf('=');
    if (at < 1 || at === c.length - 1)
      throw new Error(
        `--candidate takes NAME=MODELS_DIR (a folder with facerec-gated.int8.onnx), not "${c}"`,
      );
    return { name: c.slice(0, at), modelsDir: c.slice(at + 1) };
  });
  const thresholds = values.thresholds.split(',').map(Number);
  if (thresholds.some((t) => !Number.isFinite(t)))
    throw new Error(`--thresholds must be comma-separated numbers, not "${values.thresholds}"`);
  const points = await sweepLfw({
    images,
    pairs,
    modelsDir: values.models,
    thresholds,
    candidates,
    pngPath: values.png,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  console.log(
    values.json
      ? JSON.stringify({ points })
      : [
          'point                       ms/run  skip   accuracy       TPR@1e-2  TPR@1e-3  all pairs: TPR@1e-2  TPR@1e-3',
          ...points.map(
            (p) =>
              `${p.name.padEnd(27)} ${p.ms_per_run.toFixed(3).padStart(6)} ${(100 * p.skip_ratio).toFixed(1).padStart(5)}%  ${pct(p.accuracy)} ± ${pct(p.accuracy_std)}  ${pct(p.tpr_at_far['0.01']).padStart(8)}  ${pct(p.tpr_at_far['0.001']).padStart(8)}  ${pct(p.tpr_at_far_all_pairs['0.01']).padStart(19)}  ${pct(p.tpr_at_far_all_pairs['0.001']).padStart(8)}`,
          ),
        ].join('\n'),
  );
  return 0;
}

/** --images and --pairs, by default the LFW dev folds of the data set (FACEGATE_DATA). */
function lfwFolders(values: { images?: string; pairs?: string }, command: string) {
  if (values.images && values.pairs) return { images: values.images, pairs: values.pairs };
  const lfw = join(dataSetDir(`${command} without --images and --pairs`), 'lfw');
  return { images: values.images ?? join(lfw, 'dev'), pairs: values.pairs ?? join(lfw, 'pairs-dev.txt') };
}

function parsePrecision(flag: string, value: string): 'fp32' | 'int8' {
  if (value !== 'fp32' && value !== 'int8') throw new Error(`${flag} must be fp32 or int8, not "${value}"`);
  return value;
}

function pct(v: number): string {
  return `${(100 * v).toFixed(2)}%`;
}

export function formatReport(r: LfwReport): string {
  return [
    `model         ${r.model} (${r.precision}, engine ${r.engine}, ${r.threads} threads; detector ${r.detector_precision})`,
    `pairs         ${r.pairs} over ${r.folds.length} folds, ${r.images} images, ${r.no_face} without a detected face (centre-cropped)`,
    `accuracy      ${pct(r.accuracy)} ± ${pct(r.accuracy_std)}  (per fold: ${r.folds.map((f) => pct(f.accuracy)).join(' ')})`,
    `TPR@FAR 1e-2  ${pct(r.tpr_at_far['0.01'])}   TPR@FAR 1e-3  ${pct(r.tpr_at_far['0.001'])}   (View-2 pairs)`,
    `TPR@FAR 1e-2  ${pct(r.tpr_at_far_all_pairs['0.01'])}   TPR@FAR 1e-3  ${pct(r.tpr_at_far_all_pairs['0.001'])}   (all ${r.tpr_at_far_all_pairs.genuine} genuine / ${r.tpr_at_far_all_pairs.impostor} impostor combinations)`,
    `AUC           ${r.auc.toFixed(5)}`,
    `throughput    ${r.images_per_s.toFixed(1)} images/s (decode, detect, align, embed)`,
  ].join('\n');
}
