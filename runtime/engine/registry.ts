// Opens a built model by name and precision: manifest verified, then handed to an inference engine.
import { loadModel, manifestPathFor, type OpenedModel, type Precision } from '../models/manifest.ts';
import type { EngineKind } from '../types.ts';
import type { Logger } from '../util/log.ts';
import { openEngine } from './open.ts';

export interface OpenModelOptions {
  dir: string;
  name: string;
  precision: Precision;
  threads?: number;
  /** 'kernels' runs int8 QDQ models natively, falling back to ORT (with a warning) when it cannot. */
  engine?: EngineKind;
  /** Hears the kernels' fallback warning (openEngine). */
  log?: Logger;
}

export async function openModel(opts: OpenModelOptions): Promise<OpenedModel> {
  const { manifest, onnx } = loadModel(manifestPathFor(opts.dir, opts.name, opts.precision));
  const engine = await openEngine(onnx, {
    engine: opts.engine ?? 'ort',
    threads: opts.threads,
    label: `${opts.name}.${opts.precision}`,
    log: opts.log,
  });
  return { manifest, engine };
}
