// Where tests find the built models, the committed fixtures and (only for data-set tests) FACEGATE_DATA:
// runtime/paths.ts, resolved from the repository root, never from the working directory.
import { join, resolve } from 'node:path';
import { DEMO_DIR, FACES_DIR, FIXTURES_DIR, modelsDir, PACKAGE_ROOT } from '../../runtime/paths.ts';

export { FACES_DIR, FIXTURES_DIR };
export const REPO_ROOT = PACKAGE_ROOT;
export const MODELS_DIR = modelsDir();
/** The bundled demo clip: one face (lin-manuel-miranda), 640x360, 10 s. */
export const DOOR_CLIP = join(DEMO_DIR, 'door.mp4');
/** The face data set (LFW, calibration), only where FACEGATE_DATA points at it; tests that need it skip otherwise. */
export const DATA_SET_DIR: string | undefined = process.env.FACEGATE_DATA
  ? resolve(process.env.FACEGATE_DATA)
  : undefined;
export const NO_DATA_REASON = 'needs the face data set: set FACEGATE_DATA (see docs/data.md)';

/** The title of a suite that needs the data set: `describe.skipIf(!DATA_SET_DIR)(dataSetSuite('...'), ...)`.
 * Without the data set the title and a line on stderr say why the suite is skipped. */
export function dataSetSuite(title: string): string {
  if (DATA_SET_DIR) return title;
  console.warn(`skipped "${title}": ${NO_DATA_REASON}`);
  return `${title} (skipped: ${NO_DATA_REASON})`;
}

/** A path in the data set; only for suites skipped without it. */
export function dataPath(...parts: string[]): string {
  if (!DATA_SET_DIR) throw new Error(NO_DATA_REASON);
  return join(DATA_SET_DIR, ...parts);
}
