// FaceRecognitionNet (dlib's ResNet-29 face embedder, as shipped by face-api): the weights manifest holds
// only tensors, so the architecture below follows face-api's src/faceRecognitionNet. The graph is NCHW,
// each conv's scale layer is folded into its weights and bias.
import { Graph } from '../../../runtime/models/onnx/graph.ts';
import {
  loadWeights,
  ModelFileError,
  parseJsonFile,
  type WeightGroup,
  type WeightTensor,
} from '../tfjs/weights.ts';

export const FACEREC_INPUT_SIZE = 150;
/** face-api's normalisation: (rgb - mean) / 255. */
export const FACEREC_MEAN_RGB = [122.782, 117.001, 104.298];
export const FACEREC_STD = 255;

/** The residual stages in order; `down` blocks use a stride-2 'valid' first conv and an avg-pool shortcut. */
export const FACEREC_BLOCKS: { name: string; down: boolean }[] = [
  { name: 'conv32_1', down: false },
  { name: 'conv32_2', down: false },
  { name: 'conv32_3', down: false },
  { name: 'conv64_down', down: true },
  { name: 'conv64_1', down: false },
  { name: 'conv64_2', down: false },
  { name: 'conv64_3', down: false },
  { name: 'conv128_down', down: true },
  { name: 'conv128_1', down: false },
  { name: 'conv128_2', down: false },
  { name: 'conv256_down', down: true },
  { name: 'conv256_1', down: false },
  { name: 'conv256_2', down: false },
  { name: 'conv256_down_out', down: true },
];

export interface FoldedConv {
  /** ONNX layout [out, in, kh, kw]. */
  weights: Float32Array;
  bias: Float32Array;
  dims: [number, number, number, number];
}

/** Folds conv bias and the following scale layer (x * s + b) into one conv. */
export function foldConv(weights: Map<string, WeightTensor>, prefix: string): FoldedConv {
  const get = (name: string): WeightTensor => {
    const w = weights.get(`${prefix}/${name}`);
    if (!w) throw new Error(`FaceRecognitionNet weights: "${prefix}/${name}" missing from the manifest`);
    return w;
  };
  const filters = get('conv/filters');
  const bias = get('conv/bias').values;
  const scale = get('scale/weights').values;
  const shift = get('scale/biases').values;
  const [kh, kw, cin, cout] = filters.shape;
  const out = new Float32Array(cout * cin * kh * kw);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++) {
          out[((o * cin + i) * kh + y) * kw + x] =
            filters.values[((y * kw + x) * cin + i) * cout + o] * scale[o];
        }
  const foldedBias = Float32Array.from(bias, (b, o) => b * scale[o] + shift[o]);
  return { weights: out, bias: foldedBias, dims: [cout, cin, kh, kw] };
}

export function loadFaceRecWeights(manifestPath: string): Map<string, WeightTensor> {
  const groups = parseJsonFile<WeightGroup[]>(manifestPath);
  if (!Array.isArray(groups) || !groups.every((g) => Array.isArray(g?.paths) && Array.isArray(g?.weights))) {
    throw new ModelFileError(manifestPath, 'not a tfjs weights manifest (expected [{ paths, weights }])');
  }
  return loadWeights(manifestPath, groups);
}

/** Where the builder hands each conv to the caller, so variants (e.g. gated convs) can change how it is emitted. */
export type ConvEmitter = (
  g: Graph,
  input: string,
  conv: FoldedConv,
  opts: { name: string; stride: number; pad: number; relu: boolean },
) => string;

export const plainConv: ConvEmitter = (g, input, conv, { name, stride, pad, relu }) => {
  const [, , kh, kw] = conv.dims;
  const out = g.add(
    'Conv',
    [
      input,
      g.addInitializer(`${name}/weights`, 'float32', [...conv.dims], conv.weights),
      g.floatConst(`${name}/bias`, conv.bias),
    ],
    {
      kernel_shape: { ints: [kh, kw] },
      strides: { ints: [stride, stride] },
      pads: { ints: [pad, pad, pad, pad] },
    },
    name,
  );
  return relu ? g.add('Relu', [out], {}, `${name}/relu`) : out;
};

export function buildFaceRecGraph(
  weights: Map<string, WeightTensor>,
  emitConv: ConvEmitter = plainConv,
): Graph {
  const g = new Graph('face_recognition_net');
  let x = g.addInput({
    name: 'input',
    type: 'float32',
    shape: ['batch', 3, FACEREC_INPUT_SIZE, FACEREC_INPUT_SIZE],
  });
  x = emitConv(g, x, foldConv(weights, 'conv32_down'), {
    name: 'conv32_down',
    stride: 2,
    pad: 0,
    relu: true,
  });
  x = g.add('MaxPool', [x], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] } }, 'pool');
  let size = 35; // (150 - 7) / 2 + 1 = 72 -> (72 - 3) / 2 + 1 = 35
  let channels = 32;
  for (const block of FACEREC_BLOCKS) {
    const conv1 = foldConv(weights, `${block.name}/conv1`);
    const conv2 = foldConv(weights, `${block.name}/conv2`);
    const cout = conv2.dims[0];
    let y = emitConv(g, x, conv1, {
      name: `${block.name}/conv1`,
      stride: block.down ? 2 : 1,
      pad: block.down ? 0 : 1,
      relu: true,
    });
    y = emitConv(g, y, conv2, { name: `${block.name}/conv2`, stride: 1, pad: 1, relu: false });
    let shortcut = x;
    if (block.down) {
      shortcut = g.add(
        'AveragePool',
        [x],
        { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } },
        `${block.name}/avgpool`,
      );
      const pooledSize = Math.floor(size / 2);
      const convSize = Math.floor((size - 3) / 2) + 1;
      if (cout !== channels) {
        // face-api concatenates zero channels onto the shortcut.
        shortcut = g.add(
          'Pad',
          [shortcut, g.int64Const(`${block.name}/chanpad`, [0, 0, 0, 0, 0, cout - channels, 0, 0])],
          {},
          `${block.name}/chanpad`,
        );
      }
      if (convSize !== pooledSize) {
        // ...and a zero row and column onto the residual branch when 'valid' striding lost one.
        y = g.add(
          'Pad',
          [y, g.int64Const(`${block.name}/sizepad`, [0, 0, 0, 0, 0, 0, 1, 1])],
          {},
          `${block.name}/sizepad`,
        );
      }
      size = pooledSize;
    }
    x = g.add('Relu', [g.add('Add', [y, shortcut], {}, `${block.name}/add`)], {}, `${block.name}/relu`);
    channels = cout;
  }
  const pooled = g.add('ReduceMean', [x], { axes: { ints: [2, 3] }, keepdims: { i: 0 } }, 'global_mean');
  const fc = weights.get('fc');
  if (!fc) throw new Error('FaceRecognitionNet weights: "fc" missing from the manifest');
  const embedding = g.add(
    'Gemm',
    [pooled, g.addInitializer('fc/weights', 'float32', [...fc.shape], Float32Array.from(fc.values))],
    {},
    'fc',
  );
  g.exposeOutput(embedding, 'embedding', ['batch', 128]);
  return g;
}
