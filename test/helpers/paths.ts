// Where tests find the built models and the shared data set.
import { resolve } from 'node:path';

export const MODELS_DIR = resolve(process.env.FACEGATE_MODELS_DIR ?? 'models');
export const DATA_DIR = resolve(process.env.FACEGATE_DATA ?? '../shared/data');
export const FACES_DIR = resolve(DATA_DIR, 'faces');
