// Where facegate's own files are: resolved from the package root (this file's folder's parent), never
// from the working directory, so `npx facegate ...` behaves the same wherever it is started.
// The face data set (LFW) is not among them: it is only reached through FACEGATE_DATA (dataSetDir).
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
/** Built models (`npm run models`); FACEGATE_MODELS_DIR points the tools and tests elsewhere. */
export const BUNDLED_MODELS_DIR = join(PACKAGE_ROOT, 'models');
export const CONFIG_DIR = join(PACKAGE_ROOT, 'configs');
/** The demo's video and the people it enrols. */
export const DEMO_DIR = join(PACKAGE_ROOT, 'assets', 'demo');
export const FIXTURES_DIR = join(PACKAGE_ROOT, 'test', 'fixtures');
/** Committed face photos (MIT / Boost, test/fixtures/faces/ATTRIBUTION.md): tests, bench, golden set. */
export const FACES_DIR = join(FIXTURES_DIR, 'faces');
/** The face_recognition examples' training photos: a face folder (util/face-folder.ts) of 7 people. */
export const TRAIN_FACES_DIR = join(FACES_DIR, 'face_recognition_examples', 'knn_examples', 'train');
/** dlib's 150x150 aligned face chips of five Johns: a face folder. */
export const DLIB_CHIPS_DIR = join(FACES_DIR, 'dlib_examples', 'johns');
/** Committed output of the offline training and calibration (training/output). */
export const TRAINING_OUTPUT_DIR = join(PACKAGE_ROOT, 'training', 'output');

/** The models folder the tools and tests use: FACEGATE_MODELS_DIR (from the working directory) or models/. */
export function modelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FACEGATE_MODELS_DIR ? resolve(env.FACEGATE_MODELS_DIR) : BUNDLED_MODELS_DIR;
}

export class DataSetMissingError extends Error {
  constructor(what: string) {
    super(`${what} needs the face data set: set FACEGATE_DATA to its folder (docs/data.md)`);
    this.name = 'DataSetMissingError';
  }
}

/** The face data set folder (FACEGATE_DATA), for evaluation, calibration, training and the LFW
 * benchmarks; `what` names the command in the one-line error when the variable is not set. */
export function dataSetDir(what: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!env.FACEGATE_DATA) throw new DataSetMissingError(what);
  return resolve(env.FACEGATE_DATA);
}
