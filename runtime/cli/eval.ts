// `facegate eval lfw`: verification accuracy of the deployed pipeline on LFW-format data.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { evalLfw, type LfwReport } from '../eval/lfw.ts';
import {
  buildTracks,
  type DecisionSettings,
  embedOpenSet,
  type OpenSetPoint,
  renderOpenSet,
  scoreTracks,
} from '../eval/openset.ts';
import { sweepLfw } from '../eval/sweep.ts';
import { dataSetDir, modelsDir } from '../paths.ts';
import { createLogger } from '../util/log.ts';
import { integerFlag } from './flags.ts';

const USAGE =
  'usage: facegate eval lfw [--images DIR --pairs FILE] [--precision fp32|int8] [--detector-precision fp32|int8] [--engine ort|kernels] [--model facerec|facerec-gated] [--threads N] [--models DIR] [--json] [--roc FILE.png]\n' +
  '       facegate eval sweep [--images DIR --pairs FILE] [--thresholds T,T,...] [--models DIR] [--candidate NAME=MODELS_DIR ...] [--json] [--png FILE.png]\n' +
  '       facegate eval openset --images DIR [--precision fp32|int8] [--frames F] [--k K] [--n N] [--gallery-size G] [--probes P] [--margin M] [--weak-below E] [--weak-raise W] [--quality-raise Q] [--thresholds FROM:TO:STEP] [--tracks still|photos] [--people all|tune|report] [--decision k-of-n|mean] [--cache FILE] [--models DIR] [--json] [--png FILE.png]';

export async function evalCommand(args: string[]): Promise<number> {
  const [target, ...rest] = args;
  if (target === 'sweep') return sweepCommand(rest);
  if (target === 'openset') return openSetCommand(rest);
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
  const threads = integerFlag('threads', values.threads);

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
    log: createLogger({ level: 'info' }),
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
    log: createLogger({ level: 'info' }),
  });
  console.log(
    values.json
      ? JSON.stringify({ points })
      : [
          'point                       ms/run  skip   input-dep  accuracy       TPR@1e-2  TPR@1e-3  all pairs: TPR@1e-2  TPR@1e-3',
          ...points.map(
            (p) =>
              `${p.name.padEnd(27)} ${p.ms_per_run.toFixed(3).padStart(6)} ${(100 * p.skip_ratio).toFixed(1).padStart(5)}%  ${(p.input_dependent_share === null ? '-' : pct(p.input_dependent_share)).padStart(9)}  ${pct(p.accuracy)} ± ${pct(p.accuracy_std)}  ${pct(p.tpr_at_far['0.01']).padStart(8)}  ${pct(p.tpr_at_far['0.001']).padStart(8)}  ${pct(p.tpr_at_far_all_pairs['0.01']).padStart(19)}  ${pct(p.tpr_at_far_all_pairs['0.001']).padStart(8)}`,
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

/** The open-set goal of issue 14: at most 1 false accept per 10,000 stranger tracks at >= 97% recognition. */
const GOAL = { faPer1000: 0.1, recognitionRate: 0.97 };

async function openSetCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      images: { type: 'string' },
      precision: { type: 'string', default: 'int8' },
      frames: { type: 'string', default: '5' },
      k: { type: 'string', default: '3' },
      n: { type: 'string', default: '5' },
      'gallery-size': { type: 'string', default: '10' },
      probes: { type: 'string', default: '10' },
      margin: { type: 'string', default: '0.02' },
      'weak-below': { type: 'string', default: '2' },
      'weak-raise': { type: 'string', default: '0' },
      'quality-raise': { type: 'string', default: '0' },
      thresholds: { type: 'string', default: '0.92:0.97:0.005' },
      seed: { type: 'string', default: '14' },
      tracks: { type: 'string', default: 'still' },
      people: { type: 'string', default: 'all' },
      decision: { type: 'string', default: 'k-of-n' },
      cache: { type: 'string' },
      models: { type: 'string', default: modelsDir() },
      json: { type: 'boolean', default: false },
      png: { type: 'string' },
    },
  });
  if (!values.images) {
    console.error(USAGE);
    return 2;
  }
  const num = (flag: string, value: string) => {
    const v = Number(value);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${flag} must be a number >= 0, not "${value}"`);
    return v;
  };
  const [from, to, step] = values.thresholds.split(':').map(Number);
  if (![from, to, step].every(Number.isFinite) || !(step > 0) || !(to >= from))
    throw new Error(
      `--thresholds must be FROM:TO:STEP with FROM <= TO and STEP > 0, not "${values.thresholds}"`,
    );
  const thresholds: number[] = [];
  for (let t = from; t <= to + step / 2; t += step) thresholds.push(Math.round(t * 1e6) / 1e6);
  const frames = integerFlag('frames', values.frames);
  const settings: DecisionSettings = {
    k: integerFlag('k', values.k),
    n: integerFlag('n', values.n),
    qualityLimits: { minSize: 40, minSharpness: 20, maxYaw: 35, maxRoll: 25 },
    rules: {
      margin: num('margin', values.margin),
      weakBelowEmbeddings: integerFlag('weak-below', values['weak-below'], 0),
      weakRaise: num('weak-raise', values['weak-raise']),
      qualityRaise: num('quality-raise', values['quality-raise']),
    },
    gallerySize: integerFlag('gallery-size', values['gallery-size']),
    probesPerPerson: integerFlag('probes', values.probes),
    seed: integerFlag('seed', values.seed, 0),
    tracks: oneOf('--tracks', values.tracks, ['still', 'photos'] as const),
    people: oneOf('--people', values.people, ['all', 'tune', 'report'] as const),
  };
  const decision = oneOf('--decision', values.decision, ['k-of-n', 'mean'] as const);
  if (settings.k > settings.n) throw new Error(`--k (${settings.k}) must not exceed --n (${settings.n})`);
  const log = createLogger({ level: 'info' });
  const precision = parsePrecision('--precision', values.precision);
  const data = await embedOpenSet({
    images: values.images,
    modelsDir: values.models,
    precision,
    frames,
    cachePath: values.cache,
    log,
  });
  const splits = buildTracks(data, settings);
  const plain = { margin: 0, weakBelowEmbeddings: 0, weakRaise: 0, qualityRaise: 0 };
  const curves = [
    {
      name:
        decision === 'mean'
          ? `track mean only (>= ${settings.k} frames)`
          : `k-of-n only (${settings.k} of ${settings.n})`,
      rules: plain,
    },
    {
      name: `+ margin ${settings.rules.margin}, weak +${settings.rules.weakRaise}, quality +${settings.rules.qualityRaise}`,
      rules: settings.rules,
    },
  ].map((c) => ({
    name: c.name,
    points: thresholds.map((threshold) => scoreTracks(splits, settings, { threshold, ...c.rules }, decision)),
  }));
  if (values.png)
    await renderOpenSet(
      curves,
      values.png,
      `Open set (${data.model.name} ${precision}, ${settings.tracks}, ${settings.people})`,
      GOAL,
    );
  const best = curves.map((c) => ({
    name: c.name,
    point: c.points.find((p) => p.faPer1000 <= GOAL.faPer1000) ?? null,
  }));
  if (values.json) {
    console.log(
      JSON.stringify({
        model: data.model,
        precision,
        frames,
        settings,
        noFace: data.noFace,
        galleries: splits.length,
        curves,
        atGoal: best,
      }),
    );
    return 0;
  }
  const row = (p: OpenSetPoint) =>
    `${p.threshold.toFixed(4)}  ${String(p.falseAccepts).padStart(5)} / ${p.strangerTracks}  ${p.faPer1000.toFixed(3).padStart(7)}   ${pct(p.recognitionRate).padStart(7)} (${p.recognized}/${p.genuineTracks})  ${p.misidentified}`;
  const lines = [
    `model ${data.model.name}@${data.model.version} ${precision}; ${data.images.length} images (${data.noFace} without a face), ${splits.length} galleries of ${settings.gallerySize} (${settings.people} people), tracks of ${frames} frames (${settings.tracks}), decided by ${decision === 'mean' ? 'the track mean' : `${settings.k} of ${settings.n}`}`,
    `rules: margin ${settings.rules.margin}, weak enrolment (< ${settings.rules.weakBelowEmbeddings} embeddings) +${settings.rules.weakRaise}, quality raise ${settings.rules.qualityRaise}`,
  ];
  for (const c of curves) {
    lines.push('', c.name, 'threshold  false accepts   per 1000   recognition            misidentified');
    lines.push(...c.points.map(row));
  }
  lines.push('');
  for (const { name, point } of best)
    lines.push(
      point
        ? `${name}: <= ${GOAL.faPer1000} per 1000 from threshold ${point.threshold}, recognition ${pct(point.recognitionRate)}`
        : `${name}: never <= ${GOAL.faPer1000} false accepts per 1000 in the swept range`,
    );
  console.log(lines.join('\n'));
  return 0;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new Error(`${flag} must be one of ${allowed.join(', ')}, not "${value}"`);
  return value as T;
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
