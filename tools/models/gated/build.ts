// The gated FaceRecognitionNet: every conv has a ReLU-zero predictor (training/gates.py) and its output
// is real 0 wherever the gate is closed. ONNX Runtime computes the graph densely and gets the gated
// result; the native kernels can compute each conv only where its gate is open. The node pattern is
// specified in docs/relu-zero.md and recognised by findGates().
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Graph } from '../../../runtime/models/onnx/graph.ts';
import { buildFaceRecGraph, type ConvEmitter, loadFaceRecWeights } from '../facerec/build.ts';
import { FACE_API, sourceFile, sourcePackage } from '../sources.ts';
import { ModelFileError } from '../tfjs/weights.ts';

/** Committed training output. */
export const GATES_DIR = fileURLToPath(new URL('../../../training/output/', import.meta.url));

let gatesDir = GATES_DIR;
/** Builds the gated embedder from another training output (`npm run models -- --gates DIR`: a candidate). */
export function useGates(dir: string): void {
  gatesDir = dir;
}
/** The training output the gated embedder is built from: GATES_DIR unless useGates() chose another. */
export function currentGatesDir(): string {
  return gatesDir;
}

/** Where a tensor lives in the weights file: float32 offset and shape. */
interface Span {
  offset: number;
  dims: number[];
}

export interface GatedConvEntry {
  name: string;
  /** 'relu': the conv feeds a ReLU; 'residual': a block's conv2, feeding the residual add. */
  kind: 'relu' | 'residual';
  stride: number;
  pad: number;
  outSize: number;
  weights: Span;
  bias: Span;
}

/** One predictor: the stem's, or a residual block's (gating its conv1 and conv2). */
export interface GateSiteEntry {
  /** The gated convs; the first one's input is the predictor's input. */
  convs: string[];
  predictor: { op: 'conv'; kernel: number; stride: number; pad: number; weights: Span; bias: Span };
}

export interface GatesFile {
  format: 'facegate-relu-zero-gates/1';
  weightsFile: string;
  granularity: { name: string; kind: 'spatial'; size: number };
  threshold: number;
  convs: GatedConvEntry[];
  sites: GateSiteEntry[];
  fc: Span;
}

export interface Gates {
  doc: GatesFile;
  blob(b: Span): Float32Array;
}

export function loadGates(dir = gatesDir): Gates {
  const path = join(dir, 'gates.json');
  const doc = JSON.parse(readFileSync(path, 'utf8')) as GatesFile;
  if (doc.format !== 'facegate-relu-zero-gates/1')
    throw new ModelFileError(path, `unknown format ${doc.format}`);
  // The builder implements the design training chose (docs/relu-zero.md); anything else is a new design.
  if (doc.granularity.kind !== 'spatial')
    throw new ModelFileError(path, `unsupported gate granularity ${doc.granularity.name}`);
  const bytes = readFileSync(join(dir, doc.weightsFile));
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const blob = (b: Span) => {
    const n = b.dims.reduce((a, d) => a * d, 1);
    if (b.offset + n > values.length)
      throw new ModelFileError(path, `blob at ${b.offset} runs past the end of ${doc.weightsFile}`);
    return values.subarray(b.offset, b.offset + n);
  };
  return { doc, blob };
}

/** The residual block (or the stem conv) a conv name belongs to: `conv64_1/conv2` -> `conv64_1`. */
const siteName = (conv: string) => conv.split('/')[0];

/** A ConvEmitter that adds each conv's gate and uses the trained conv weights. */
export function gatedConv(gates: Gates): ConvEmitter {
  const { size } = gates.doc.granularity;
  const convs = new Map(gates.doc.convs.map((c) => [c.name, c]));
  const sites = new Map(gates.doc.sites.map((s) => [s.convs[0], s]));
  const logitsOf = new Map<string, string>();
  return (g, input, original, { name, stride, pad, relu }) => {
    const entry = convs.get(name);
    if (!entry) throw new Error(`gates: no entry for conv ${name}`);
    if (entry.weights.dims.join() !== original.dims.join() || entry.stride !== stride || entry.pad !== pad)
      throw new Error(`gates: ${name} does not match the architecture (dims, stride or pad)`);
    const [, , kh, kw] = original.dims;
    let out = g.add(
      'Conv',
      [
        input,
        g.addInitializer(`${name}/weights`, 'float32', [...original.dims], gates.blob(entry.weights)),
        g.floatConst(`${name}/bias`, gates.blob(entry.bias)),
      ],
      {
        kernel_shape: { ints: [kh, kw] },
        strides: { ints: [stride, stride] },
        pads: { ints: [pad, pad, pad, pad] },
      },
      name,
    );
    if (relu) out = g.add('Relu', [out], {}, `${name}/relu`);

    const site = sites.get(name);
    if (site) logitsOf.set(siteName(name), predictorLogits(g, gates, site, input, entry.outSize, size));
    const logits = logitsOf.get(siteName(name));
    if (!logits) throw new Error(`gates: conv ${name} comes before its gate's predictor`);
    // A block's conv1 is needed wherever an open conv2 pixel's 3x3 window reads it.
    const dilate = site !== undefined && site.convs.length === 2;
    const decision = dilate
      ? g.add(
          'MaxPool',
          [logits],
          { kernel_shape: { ints: [3, 3] }, strides: { ints: [1, 1] }, pads: { ints: [1, 1, 1, 1] } },
          `${name}/gate/dilate`,
        )
      : logits;
    const open = g.add(
      'Greater',
      [decision, g.floatConst(`${name}/gate/threshold`, [gates.doc.threshold], [])],
      {},
      `${name}/gate/open`,
    );
    return g.add('Where', [open, out, g.floatConst(`${name}/gate/closed`, [0], [])], {}, `${name}/gate`);
  };
}

/** The site predictor: one logit per output pixel of the site's convs (tile logits spread over their
 * tile's pixels). */
function predictorLogits(
  g: Graph,
  gates: Gates,
  site: GateSiteEntry,
  input: string,
  outSize: number,
  tile: number,
): string {
  const base = `${siteName(site.convs[0])}/gate`;
  const p = site.predictor;
  const logits = g.add(
    'Conv',
    [
      input,
      g.addInitializer(`${base}/weights`, 'float32', p.weights.dims, gates.blob(p.weights)),
      g.floatConst(`${base}/bias`, gates.blob(p.bias)),
    ],
    {
      kernel_shape: { ints: [p.kernel, p.kernel] },
      strides: { ints: [p.stride, p.stride] },
      pads: { ints: [p.pad, p.pad, p.pad, p.pad] },
    },
    `${base}/logits`,
  );
  if (tile === 1) return logits;
  // Partial edge tiles average their in-bounds pixels (count_include_pad 0), as torch's ceil_mode pool.
  const tiles = g.add(
    'AveragePool',
    [logits],
    { kernel_shape: { ints: [tile, tile] }, strides: { ints: [tile, tile] }, ceil_mode: { i: 1 } },
    `${base}/tiles`,
  );
  const up = g.add(
    'Resize',
    [tiles, '', g.floatConst(`${base}/scales`, [1, 1, tile, tile])],
    {
      mode: { s: 'nearest' },
      coordinate_transformation_mode: { s: 'asymmetric' },
      nearest_mode: { s: 'floor' },
    },
    `${base}/upsample`,
  );
  return g.add(
    'Slice',
    [
      up,
      g.int64Const(`${base}/starts`, [0, 0]),
      g.int64Const(`${base}/ends`, [outSize, outSize]),
      g.int64Const(`${base}/axes`, [2, 3]),
    ],
    {},
    `${base}/crop`,
  );
}

/** The gated embedder, fp32; the model toolchain quantizes it like the plain one. */
export function buildGatedFaceRec(dir = gatesDir): Graph {
  const gates = loadGates(dir);
  const weights = loadFaceRecWeights(
    sourceFile(sourcePackage(FACE_API), 'model/face_recognition_model-weights_manifest.json'),
  );
  weights.set('fc', { shape: gates.doc.fc.dims, dtype: 'float32', values: gates.blob(gates.doc.fc) });
  return buildFaceRecGraph(weights, gatedConv(gates));
}
