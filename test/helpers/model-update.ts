// Shared by the model-update tests: temp dirs, a local HTTP server, manifests for variant models and
// tiny ONNX graphs with chosen shapes.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { DownloadError } from '../../runtime/model-update/download.ts';
import {
  type LoadedModel,
  loadModel,
  type ModelManifest,
  manifestPathFor,
  sha256,
} from '../../runtime/models/manifest.ts';
import { Graph } from '../../runtime/models/onnx/graph.ts';
import { serializeModel } from '../../tools/models/onnx/writer.ts';
import { MODELS_DIR } from './paths.ts';

/** The DownloadError `promise` rejects with. */
export async function downloadFailure(promise: Promise<unknown>): Promise<DownloadError> {
  const e = await promise.then(
    () => undefined,
    (err) => err,
  );
  expect(e).toBeInstanceOf(DownloadError);
  return e as DownloadError;
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `facegate-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function builtModel(name: string, precision: 'fp32' | 'int8' = 'int8'): LoadedModel {
  return loadModel(manifestPathFor(MODELS_DIR, name, precision));
}

/** `base` describing other bytes: sha256, size and any other changes. */
export function manifestFor(
  base: ModelManifest,
  onnx: Uint8Array,
  changes: Partial<ModelManifest> = {},
): ModelManifest {
  const { signature: _, ...unsigned } = base;
  return { ...unsigned, sha256: sha256(onnx), bytes: onnx.length, ...changes };
}

export interface TinyEmbedderOptions {
  inputSize?: number;
  batch?: number | string;
  inputName?: string;
  outputName?: string;
  dim?: number;
  /** 0 makes a dead model that outputs zeros. */
  weightScale?: number;
  /** Output dims that static shape inference cannot see: only running the graph reveals them. */
  hideOutputDims?: boolean;
}

/** Global average colour -> Gemm: loads and runs like an embedder, recognises nobody. */
export function tinyEmbedder(opts: TinyEmbedderOptions = {}): Uint8Array {
  const { inputSize = 150, batch = 'batch', inputName = 'input', outputName = 'embedding', dim = 128 } = opts;
  const g = new Graph('tiny');
  const x = g.addInput({ name: inputName, type: 'float32', shape: [batch, 3, inputSize, inputSize] });
  const pooled = g.add('Flatten', [g.add('GlobalAveragePool', [x])]);
  const weights = Float32Array.from({ length: 3 * dim }, (_, i) => (opts.weightScale ?? 1) * Math.sin(i + 1));
  let out = g.add('Gemm', [pooled, g.addInitializer('w', 'float32', [3, dim], weights)]);
  if (opts.hideOutputDims) {
    // A Slice whose end is computed from the data (always `dim`).
    const zero = g.add('ReduceSum', [g.add('Mul', [pooled, g.floatConst('zero', [0])])], {
      keepdims: { i: 0 },
    });
    const end = g.add('Cast', [g.add('Add', [zero, g.floatConst('dim', [dim])])], { to: { i: 7 } });
    out = g.add('Slice', [out, g.int64Const('starts', [0]), end, g.int64Const('axes', [1])]);
  }
  g.exposeOutput(out, outputName, opts.hideOutputDims ? ['batch', 'features'] : [batch, dim]);
  return serializeModel(g, { producerName: 'facegate-test', producerVersion: '0' });
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** node:http on 127.0.0.1, a random port; `close()` also drops connections a test left hanging. */
export async function serve(
  routes: Record<string, Handler>,
): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const handler = routes[req.url ?? ''];
    if (handler) handler(req, res);
    else res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const sendBytes =
  (bytes: Uint8Array): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  };
