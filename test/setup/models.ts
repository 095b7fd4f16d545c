// Vitest global setup: the suites run the real models, so build them first when they are missing
// (a fresh clone), exactly as `npm run models` would.
import { ensureModels } from '../../runtime/models/build/ensure.ts';
import { DATA_DIR, MODELS_DIR } from '../helpers/paths.ts';

export default async function setup(): Promise<void> {
  await ensureModels(MODELS_DIR, DATA_DIR, (line) => process.stderr.write(`${line}\n`));
}
