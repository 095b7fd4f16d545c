// `npm run models`: builds every face model as fp32 and int8 ONNX with manifests from the pinned npm
// packages' weights, the committed training output and the committed calibration table; no face data.
//   npm run models -- [NAME...]                  only these models
//   npm run models -- --missing [--for-config]   only models whose files are missing (npm start's
//                                                prestart: only those `facegate run`'s configuration uses)
//   npm run models -- --calibrate DIR [NAME...]  first measure a new calibration table from DIR (face
//                                                photos, one folder per person, e.g. $FACEGATE_DATA/lfw/calib)
//   npm run models -- --calibrate DIR --thresholds-only [NAME...]  measure only the embedders' FAR
//                                                thresholds again, on the models the table's ranges build
//   --out DIR     models folder (default: FACEGATE_MODELS_DIR, else the package's models/)
//   --table FILE  calibration table (default: training/output/calibration.json), written by --calibrate
//   --gates DIR   build facerec-gated from another training/gates.py output (a candidate; calibrate it
//                 into its own --table, since new gates need their own ranges)
//   FACEGATE_CALIB_LIMIT  calibrate on the first N images only (smoke runs)
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../../runtime/config/index.ts';
import { modelsDir } from '../../runtime/paths.ts';
import { buildModels } from './build.ts';
import { measureCalibration, measureThresholds } from './calibrate.ts';
import { CALIBRATION_TABLE, readCalibrationTable, writeCalibrationTable } from './calibration-table.ts';
import { ensureModels } from './ensure.ts';
import { useGates } from './gated/build.ts';

/** The models `facegate run` would open with the default configuration, FACEGATE_BOARD and FACEGATE_* overrides. */
function configModels(): string[] {
  const { detector, embedder, antispoof, liveness } = loadConfig({ env: process.env }).models;
  return [detector, embedder, antispoof, liveness];
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      calibrate: { type: 'string' },
      table: { type: 'string' },
      gates: { type: 'string' },
      out: { type: 'string' },
      missing: { type: 'boolean', default: false },
      'for-config': { type: 'boolean', default: false },
      'thresholds-only': { type: 'boolean', default: false },
    },
  });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const outDir = values.out ? resolve(values.out) : modelsDir();
  const tablePath = values.table ? resolve(values.table) : CALIBRATION_TABLE;
  const only = positionals.length > 0 ? positionals : values['for-config'] ? configModels() : undefined;
  const started = performance.now();
  if (values.gates !== undefined) {
    if (!existsSync(join(values.gates, 'gates.json')))
      throw new Error(`--gates ${values.gates}: no gates.json there (a training/gates.py output folder)`);
    useGates(resolve(values.gates));
  }

  if (values.missing) {
    await ensureModels(outDir, log, only, tablePath);
    return;
  }
  if (values.calibrate !== undefined) {
    const dir = resolve(values.calibrate);
    if (!existsSync(dir)) throw new Error(`--calibrate ${values.calibrate}: no such folder`);
    const limit = process.env.FACEGATE_CALIB_LIMIT ? Number(process.env.FACEGATE_CALIB_LIMIT) : undefined;
    const calibrate = { dir, dataset: `${basename(dirname(dir))}/${basename(dir)}`, limit, only, log };
    if (values['thresholds-only']) {
      writeCalibrationTable(
        tablePath,
        await measureThresholds(calibrate, readCalibrationTable(tablePath), tablePath),
      );
    } else {
      const measured = await measureCalibration(calibrate);
      // Recalibrating some models keeps the other models' entries.
      const previous = only && existsSync(tablePath) ? readCalibrationTable(tablePath).models : {};
      writeCalibrationTable(tablePath, { ...measured, models: { ...previous, ...measured.models } });
    }
    log(`[calibrate] wrote ${tablePath}`);
  }
  const manifests = await buildModels({
    outDir,
    table: readCalibrationTable(tablePath),
    tablePath,
    only,
    log,
  });
  for (const m of manifests) {
    const extra = m.quantization ? ` method=${m.quantization.method}` : '';
    const thr = m.thresholds
      ? ` thr@1e-2=${m.thresholds.far['0.01']} thr@1e-3=${m.thresholds.far['0.001']}`
      : '';
    console.log(
      `${m.file.padEnd(24)} ${String(m.bytes).padStart(9)} bytes sha256=${m.sha256.slice(0, 12)}${extra}${thr}`,
    );
  }
  console.log(`[models] done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

ort.env.logLevel = 'error';
try {
  await main(process.argv.slice(2));
} catch (e) {
  console.error(`models: ${(e as Error).message}`);
  process.exitCode = 1;
}
