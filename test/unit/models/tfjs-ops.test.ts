// Every converter op against TensorFlow.js running the same graph (the reference).
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeModel } from '../../../tools/models/onnx/writer.ts';
import { convertTfjsGraph, UnsupportedOpError } from '../../../tools/models/tfjs/convert.ts';
import { bool, ints, nhwcToNchw, randomInput, str, strs, TfGraphBuilder } from '../../helpers/tfjs-graph.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
  ort.env.logLevel = 'error';
});

/** Converts, runs both, and returns the largest absolute difference over all outputs. */
async function maxDiff(
  g: TfGraphBuilder,
  inputs: Record<string, { data: Float32Array; shape: number[] }>,
  outputs: string[],
): Promise<number> {
  const expected = await g.runTfjs(inputs, outputs);
  const graph = convertTfjsGraph(g.json(outputs), g.weights, 'test');
  const session = await ort.InferenceSession.create(
    serializeModel(graph, { producerName: 'test', producerVersion: '0' }),
  );
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(inputs)) {
    feeds[name] =
      v.shape.length === 4
        ? new ort.Tensor('float32', nhwcToNchw(v.data, v.shape), [
            v.shape[0],
            v.shape[3],
            v.shape[1],
            v.shape[2],
          ])
        : new ort.Tensor('float32', v.data, v.shape);
  }
  const got = await session.run(feeds);
  let diff = 0;
  outputs.forEach((name, i) => {
    const actual = got[name].data as Float32Array;
    expect(actual.length).toBe(expected[i].length);
    for (let k = 0; k < actual.length; k++) diff = Math.max(diff, Math.abs(actual[k] - expected[i][k]));
  });
  return diff;
}

const X = [1, 7, 6, 4];
const conv = (g: TfGraphBuilder, op: string, padding: string, stride: number, fused: string[] = []) => {
  g.placeholder('x', X);
  const w = g.random('w', [3, 3, 4, 5]);
  const inputs = ['x', w];
  if (fused.includes('BiasAdd')) inputs.push(g.random('b', [5], 2));
  return g.op('y', op, inputs, {
    strides: ints(1, stride, stride, 1),
    padding: str(padding),
    data_format: str('NHWC'),
    dilations: ints(1, 1, 1, 1),
    ...(fused.length
      ? { fused_ops: strs(...fused), num_args: { i: String(inputs.length - 2) }, epsilon: { f: 0 } }
      : {}),
  });
};

describe('tfjs -> ONNX ops match TensorFlow.js', () => {
  const tolerance = 1e-4;
  const cases: [string, (g: TfGraphBuilder) => string, number[]?][] = [
    ['Conv2D SAME stride 1', (g) => conv(g, 'Conv2D', 'SAME', 1)],
    ['Conv2D SAME stride 2 (asymmetric padding)', (g) => conv(g, 'Conv2D', 'SAME', 2)],
    ['Conv2D VALID stride 2', (g) => conv(g, 'Conv2D', 'VALID', 2)],
    ['_FusedConv2D BiasAdd', (g) => conv(g, '_FusedConv2D', 'SAME', 1, ['BiasAdd'])],
    ['_FusedConv2D BiasAdd+Relu', (g) => conv(g, '_FusedConv2D', 'SAME', 1, ['BiasAdd', 'Relu'])],
    ['_FusedConv2D BiasAdd+Relu6', (g) => conv(g, '_FusedConv2D', 'VALID', 1, ['BiasAdd', 'Relu6'])],
    [
      'DepthwiseConv2dNative multiplier 2',
      (g) => {
        g.placeholder('x', X);
        return g.op('y', 'DepthwiseConv2dNative', ['x', g.random('w', [3, 3, 4, 2])], {
          strides: ints(1, 2, 2, 1),
          padding: str('SAME'),
          dilations: ints(1, 1, 1, 1),
        });
      },
    ],
    [
      'FusedDepthwiseConv2dNative BiasAdd+Relu',
      (g) => {
        g.placeholder('x', X);
        return g.op(
          'y',
          'FusedDepthwiseConv2dNative',
          ['x', g.random('w', [3, 3, 4, 1]), g.random('b', [4], 3)],
          {
            strides: ints(1, 1, 1, 1),
            padding: str('SAME'),
            dilations: ints(1, 1, 1, 1),
            fused_ops: strs('BiasAdd', 'Relu'),
            num_args: { i: '1' },
          },
        );
      },
    ],
    [
      'AddV2 of two activations',
      (g) => g.op('y', 'AddV2', [g.placeholder('x', X), g.op('r', 'Relu', ['x'])]),
    ],
    ['Add with a per-channel constant', (g) => g.op('y', 'Add', [g.placeholder('x', X), g.random('c', [4])])],
    ['Mul with a per-channel constant', (g) => g.op('y', 'Mul', [g.placeholder('x', X), g.random('c', [4])])],
    [
      'Mul with a scalar constant',
      (g) => g.op('y', 'Mul', [g.placeholder('x', X), g.const('c', [], [0.37])]),
    ],
    [
      'Sub with a [1,1,1,C] constant',
      (g) => g.op('y', 'Sub', [g.placeholder('x', X), g.random('c', [1, 1, 1, 4])]),
    ],
    ['Maximum', (g) => g.op('y', 'Maximum', [g.placeholder('x', X), g.const('c', [], [0.2])])],
    ['Minimum', (g) => g.op('y', 'Minimum', [g.placeholder('x', X), g.const('c', [], [0.2])])],
    ['Relu', (g) => g.op('y', 'Relu', [g.placeholder('x', X)])],
    ['Relu6', (g) => g.op('y', 'Relu6', [g.op('m', 'Mul', [g.placeholder('x', X), g.const('c', [], [5])])])],
    ['Sigmoid', (g) => g.op('y', 'Sigmoid', [g.placeholder('x', X)])],
    ['Tanh', (g) => g.op('y', 'Tanh', [g.placeholder('x', X)])],
    [
      'MaxPool SAME',
      (g) =>
        g.op('y', 'MaxPool', [g.placeholder('x', X)], {
          ksize: ints(1, 3, 3, 1),
          strides: ints(1, 2, 2, 1),
          padding: str('SAME'),
        }),
    ],
    [
      'MaxPool VALID',
      (g) =>
        g.op('y', 'MaxPool', [g.placeholder('x', X)], {
          ksize: ints(1, 2, 2, 1),
          strides: ints(1, 2, 2, 1),
          padding: str('VALID'),
        }),
    ],
    [
      'AvgPool SAME (padding excluded from the mean)',
      (g) =>
        g.op('y', 'AvgPool', [g.placeholder('x', X)], {
          ksize: ints(1, 3, 3, 1),
          strides: ints(1, 2, 2, 1),
          padding: str('SAME'),
        }),
    ],
    [
      'Pad spatial and channels',
      (g) =>
        g.op('y', 'Pad', [g.placeholder('x', X), g.const('p', [4, 2], [0, 0, 1, 2, 0, 1, 0, 3], 'int32')]),
    ],
    [
      'Reshape 4-D to 3-D keeps NHWC order',
      (g) => g.op('y', 'Reshape', [g.placeholder('x', X), g.const('s', [3], [1, 42, 4], 'int32')]),
    ],
    [
      'Reshape 2-D to 4-D feeding a conv',
      (g) => {
        g.placeholder('x', [1, 48]);
        const r = g.op('r', 'Reshape', ['x', g.const('s', [4], [1, 4, 3, 4], 'int32')]);
        return g.op('y', 'Conv2D', [r, g.random('w', [2, 2, 4, 3])], {
          strides: ints(1, 1, 1, 1),
          padding: str('VALID'),
          dilations: ints(1, 1, 1, 1),
        });
      },
      [1, 48],
    ],
    [
      'Squeeze',
      (g) =>
        g.op(
          'y',
          'Squeeze',
          [
            g.op('m', 'Mean', [g.placeholder('x', X), g.const('a', [1], [1], 'int32')], {
              keep_dims: bool(true),
            }),
          ],
          { squeeze_dims: ints(1) },
        ),
    ],
    [
      'Mean over H,W',
      (g) =>
        g.op('y', 'Mean', [g.placeholder('x', X), g.const('a', [2], [1, 2], 'int32')], {
          keep_dims: bool(false),
        }),
    ],
    [
      'Mean over H,W keep_dims',
      (g) =>
        g.op('y', 'Mean', [g.placeholder('x', X), g.const('a', [2], [1, 2], 'int32')], {
          keep_dims: bool(true),
        }),
    ],
    [
      'Mean over C',
      (g) =>
        g.op('y', 'Mean', [g.placeholder('x', X), g.const('a', [1], [3], 'int32')], {
          keep_dims: bool(false),
        }),
    ],
    [
      'ConcatV2 on channels',
      (g) =>
        g.op(
          'y',
          'ConcatV2',
          [g.placeholder('x', X), g.op('r', 'Relu', ['x']), g.const('a', [], [3], 'int32')],
          { N: { i: '2' } },
        ),
    ],
    ['Softmax', (g) => g.op('y', 'Softmax', [g.placeholder('x', [2, 5])]), [2, 5]],
    [
      'MatMul',
      (g) =>
        g.op('y', 'MatMul', [g.placeholder('x', [2, 6]), g.random('w', [6, 3])], {
          transpose_a: bool(false),
          transpose_b: bool(false),
        }),
      [2, 6],
    ],
    [
      '_FusedMatMul BiasAdd+Relu, transposed B',
      (g) =>
        g.op(
          'y',
          '_FusedMatMul',
          [g.placeholder('x', [2, 6]), g.random('w', [3, 6]), g.random('b', [3], 4)],
          {
            transpose_a: bool(false),
            transpose_b: bool(true),
            fused_ops: strs('BiasAdd', 'Relu'),
            num_args: { i: '1' },
          },
        ),
      [2, 6],
    ],
  ];

  for (const [name, build, inputShape] of cases) {
    it(name, async () => {
      const g = new TfGraphBuilder();
      const out = build(g);
      expect(await maxDiff(g, { x: randomInput(inputShape ?? X) }, [out])).toBeLessThan(tolerance);
    });
  }

  it('an unsupported op fails with an error naming the op and the node', () => {
    const g = new TfGraphBuilder();
    g.op('y', 'Cumsum', [g.placeholder('x', X), g.const('a', [], [1], 'int32')]);
    const run = () => convertTfjsGraph(g.json(['y']), g.weights, 'test');
    expect(run).toThrow(UnsupportedOpError);
    expect(run).toThrow(/unsupported tfjs op "Cumsum" at node "y"/);
  });

  it('a node reading a tensor nobody produces is a clear error', () => {
    const g = new TfGraphBuilder();
    g.op('y', 'Relu', ['missing_node']);
    expect(() => convertTfjsGraph(g.json(['y']), g.weights, 'test')).toThrow(
      /node "y" reads "missing_node", which no node produces/,
    );
  });
});
