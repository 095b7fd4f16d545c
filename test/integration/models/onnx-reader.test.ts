// The ONNX reader is the writer's inverse, accepts proto2-style (unpacked) fields, and turns every
// truncated or corrupt input into an OnnxReadError.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../../runtime/models/onnx/graph.ts';
import { OnnxReadError, readOnnx } from '../../../runtime/models/onnx/reader.ts';
import { seededRandom } from '../../../runtime/util/random.ts';
import { ProtoWriter } from '../../../tools/models/onnx/protobuf.ts';
import { serializeModel } from '../../../tools/models/onnx/writer.ts';
import { MODELS_DIR } from '../../helpers/paths.ts';

const INFO = {
  producerName: 'facegate-test',
  producerVersion: '9.9.9',
  docString: 'round trip',
  metadata: { b: '2', a: 'ünïcödé' },
  opset: 17,
};

/** Every attribute kind, every element type, scalars, symbolic dims, a node domain. */
function sampleGraph(): Graph {
  const g = new Graph('sample');
  const x = g.addInput({ name: 'x', type: 'float32', shape: ['batch', 3, 8, 8] });
  const w = g.addInitializer('w', 'int8', [2, 3, 1, 1], Int8Array.of(-127, 0, 127, 1, -1, 5));
  const s = g.addInitializer('s', 'float32', [], Float32Array.of(0.125));
  const z = g.addInitializer('z', 'uint8', [], Uint8Array.of(200));
  const b = g.addInitializer('b', 'int32', [2], Int32Array.of(-70000, 70000));
  const shape = g.int64Const('shape', [-1, 2, 64]);
  const q = g.add('QuantizeLinear', [x, s, z]);
  const y = g.add('Conv', [q, w, b], {
    kernel_shape: { ints: [1, 1] },
    pads: { ints: [0, 0, 0, 0] },
    group: { i: -3 },
    alpha: { f: 0.25 },
    auto_pad: { s: 'NOTSET' },
    scales: { floats: [1.5, -2] },
    value: { t: { name: 'v', type: 'int64', dims: [2], data: BigInt64Array.of(-5n, 2n ** 40n) } },
  });
  g.nodes.push({
    name: 'custom',
    op: 'Gelu',
    inputs: [y, ''],
    outputs: ['g'],
    attrs: {},
    domain: 'com.microsoft',
  });
  g.exposeOutput(g.add('Reshape', ['g', shape]), 'out', ['batch', 128]);
  g.addOutput({ name: 'extra', type: 'int32' });
  return g;
}

describe('readOnnx', () => {
  it('reads back what Graph.serialize wrote, byte for byte', () => {
    const bytes = serializeModel(sampleGraph(), INFO);
    const model = readOnnx(bytes);
    expect(model.irVersion).toBe(8);
    expect(model.info).toEqual({ ...INFO, metadata: { a: 'ünïcödé', b: '2' } });
    const want = sampleGraph();
    expect(model.graph.name).toBe('sample');
    expect(model.graph.nodes).toEqual(want.nodes);
    expect([...model.graph.initializers.values()]).toEqual([...want.initializers.values()]);
    expect(model.graph.inputs).toEqual(want.inputs);
    expect(model.graph.outputs).toEqual(want.outputs);
    expect(Buffer.from(serializeModel(model.graph, model.info)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('round-trips every built model exactly', () => {
    for (const file of ['facerec.int8.onnx', 'facerec.fp32.onnx', 'blazeface.int8.onnx']) {
      const bytes = readFileSync(join(MODELS_DIR, file));
      const model = readOnnx(bytes);
      expect(Buffer.from(serializeModel(model.graph, model.info)).equals(bytes), file).toBe(true);
    }
  });

  it('returns a Graph whose name bookkeeping knows the read names', () => {
    const { graph } = readOnnx(serializeModel(sampleGraph(), INFO));
    expect(graph.unique('w')).toBe('w_1');
    expect(graph.unique('custom')).toBe('custom_1');
  });

  it('accepts unpacked repeated fields and skips unknown ones', () => {
    const bytes = new ProtoWriter()
      .int(1, 7)
      .message(7, (g) =>
        g
          .message(1, (n) =>
            n
              .string(1, 'a')
              .string(2, 'b')
              .string(4, 'MaxPool')
              .message(5, (a) => a.string(1, 'kernel_shape').int(8, 3).int(8, -2).int(20, 7))
              .message(5, (a) => a.string(1, 'scales').float(7, 0.5).float(7, 2).int(20, 6))
              .int(99, 1) // unknown varint
              .string(98, 'ignored'),
          )
          .message(
            5,
            (t) =>
              t
                .int(1, 2)
                .int(1, 2)
                .int(2, 3)
                .string(8, 'w')
                .bytes(9, Uint8Array.of(1, 2, 3, 4))
                .float(77, 1), // unknown fixed32
          ),
      )
      .finish();
    const { irVersion, graph } = readOnnx(bytes);
    expect(irVersion).toBe(7);
    expect(graph.nodes[0].attrs).toEqual({ kernel_shape: { ints: [3, -2] }, scales: { floats: [0.5, 2] } });
    expect(graph.initializers.get('w')).toEqual({
      name: 'w',
      type: 'int8',
      dims: [2, 2],
      data: Int8Array.of(1, 2, 3, 4),
    });
  });

  it('throws OnnxReadError for every truncation, never anything else', () => {
    const bytes = serializeModel(sampleGraph(), INFO);
    const nodes = sampleGraph().nodes.length;
    let thrown = 0;
    for (let n = 0; n < bytes.length; n++) {
      try {
        // A cut on a top-level field boundary after the graph only loses trailing fields.
        expect(readOnnx(bytes.subarray(0, n)).graph.nodes).toHaveLength(nodes);
      } catch (e) {
        expect(e, `cut at ${n}`).toBeInstanceOf(OnnxReadError);
        thrown++;
      }
    }
    expect(thrown).toBeGreaterThan(bytes.length - 20);
  });

  it('throws OnnxReadError (or reads) for randomly corrupted models', () => {
    const bytes = readFileSync(join(MODELS_DIR, 'facerec.int8.onnx'));
    // Three random bytes each (a hit in raw_data still reads), and a random cut in a third of them.
    const r = seededRandom(7);
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      const copy = Uint8Array.from(bytes);
      for (let k = 0; k < 3; k++) copy[Math.floor(r() * copy.length)] = Math.floor(r() * 256);
      const cut = r() < 0.3 ? copy.subarray(0, Math.floor(r() * copy.length)) : copy;
      try {
        readOnnx(cut);
      } catch (e) {
        expect(e).toBeInstanceOf(OnnxReadError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });

  it('explains what is wrong', () => {
    const model = (build: (t: ProtoWriter) => void) =>
      new ProtoWriter().message(7, (g) => g.message(5, build)).finish();
    expect(() => readOnnx(Uint8Array.of(0x08, 0x80))).toThrow(/truncated varint in ModelProto/);
    expect(() => readOnnx(Uint8Array.of(0x3a, 0x05, 0x01))).toThrow(/truncated field in ModelProto/);
    expect(() => readOnnx(new Uint8Array(0))).toThrow(/no graph/);
    expect(() => readOnnx(Uint8Array.of(0x0b))).toThrow(/unsupported wire type 3/);
    expect(() => readOnnx(new Uint8Array(12).fill(0xff))).toThrow(/varint longer than 10 bytes/);
    expect(() => readOnnx(readFileSync(join(MODELS_DIR, 'facerec.int8.json')))).toThrow(OnnxReadError);
    expect(() =>
      readOnnx(model((t) => t.int(1, 2).int(2, 10).string(8, 'h').bytes(9, new Uint8Array(4)))),
    ).toThrow(/tensor "h": unsupported element type 10/);
    expect(() =>
      readOnnx(model((t) => t.int(1, 3).int(2, 1).string(8, 'f').bytes(9, new Uint8Array(8)))),
    ).toThrow(/tensor "f": raw_data has 8 bytes, dims \[3\] need 12/);
    expect(() => readOnnx(model((t) => t.int(1, 1).int(2, 1).string(8, 'e').packedFloats(4, [1])))).toThrow(
      /tensor "e" keeps its values outside raw_data/,
    );
  });
});
