// Opens the engine a configuration asks for: the native kernels when they are built and can run the model,
// ONNX Runtime otherwise (and when asked for).

import type { EngineKind, InferenceEngine } from '../types.ts';
import { defaultLogger, type Logger } from '../util/log.ts';
import { KernelsEngine } from './kernels.ts';
import { loadKernels } from './kernels-addon.ts';
import { OrtEngine } from './ort.ts';

export interface OpenEngineOptions {
  engine: EngineKind;
  threads?: number;
  /** Names the model in the fallback warning. */
  label: string;
  /** Another addon build (tests); default: the one loadKernels() finds. */
  addonPath?: string;
  /** Hears the fallback warning; default: defaultLogger's `engine`. */
  log?: Logger;
}

/**
 * An engine for the model. 'kernels' falls back to ONNX Runtime, after a one-line warning, when the
 * addon is not available or the model cannot run natively (an fp32 model, or ops the kernels lack).
 */
export async function openEngine(onnx: Uint8Array, opts: OpenEngineOptions): Promise<InferenceEngine> {
  if (opts.engine === 'kernels') {
    const log = opts.log ?? defaultLogger.child('engine');
    const binding = loadKernels({ path: opts.addonPath, log });
    if (binding) {
      try {
        return new KernelsEngine(binding, onnx, opts.threads);
      } catch (err) {
        log.warn(`${opts.label}: ${(err as Error).message}; using ONNX Runtime`);
      }
    }
  }
  return OrtEngine.create(onnx, { threads: opts.threads });
}
