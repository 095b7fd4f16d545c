// Where tests find the built models, the committed fixtures and (only for data-set tests) FACEGATE_DATA.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MODELS_DIR = resolve(REPO_ROOT, process.env.FACEGATE_MODELS_DIR ?? 'models');
export const FIXTURES_DIR = resolve(REPO_ROOT, 'test', 'fixtures');
/** Committed face photos (MIT / Boost, see test/fixtures/faces/ATTRIBUTION.md). */
export const FACES_DIR = resolve(FIXTURES_DIR, 'faces');
/** The bundled demo clip: one face (lin-manuel-miranda), 640x360, 10 s. */
export const DOOR_CLIP = resolve(REPO_ROOT, 'assets', 'demo', 'door.mp4');
/** The face data set (LFW, calibration), only where FACEGATE_DATA points at it; tests that need it skip otherwise. */
export const DATA_DIR: string | undefined = process.env.FACEGATE_DATA
  ? resolve(process.env.FACEGATE_DATA)
  : undefined;
export const NO_DATA_REASON = 'needs the face data set: set FACEGATE_DATA (see docs/data.md)';
