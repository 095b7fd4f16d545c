// Vitest global setup of the integration project: the suites run the real models, so build the missing
// ones first (a fresh clone), from the committed calibration table exactly as `npm run models` would.
import { ensureModels } from '../../tools/models/ensure.ts';
import { MODELS_DIR } from '../helpers/paths.ts';

export default async function setup(): Promise<void> {
  await ensureModels(MODELS_DIR, (line) => process.stderr.write(`${line}\n`));
}
