// docs/decisions.md, "ONNX reading": the hand-written reader (runtime/models/onnx/reader.ts) against
// protobufjs's generated ONNX code (the onnx-proto package) plus the adapter the project would need to
// turn its messages into the same Graph. The candidate is loaded from a scratch install:
//   npm install --prefix DIR protobufjs onnx-proto
//   npx tsx tools/decisions/onnx.ts --candidate DIR [--rounds 20] [MODEL.onnx ...]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceSession } from 'onnxruntime-node';
import { integerFlag } from '../../runtime/cli/flags.ts';
import type { ModelInfo, Tensor, TensorValues } from '../../runtime/models/onnx/graph.ts';
import { Graph } from '../../runtime/models/onnx/graph.ts';
import { readOnnx } from '../../runtime/models/onnx/reader.ts';
import { modelsDir } from '../../runtime/paths.ts';
import { interleaved } from '../../runtime/util/timing.ts';
import { serializeModel } from '../models/onnx/writer.ts';

// The part of onnx-proto's generated classes used here (its .d.ts is in the scratch folder, not here).
type Int64 = number | { toNumber(): number };
interface TensorMsg {
  name: string;
  dataType: number;
  dims: Int64[];
  rawData: Uint8Array;
}
interface AttributeMsg {
  name: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t?: TensorMsg | null;
  floats: number[];
  ints: Int64[];
}
interface ValueInfoMsg {
  name: string;
  type?: {
    tensorType?: { elemType: number; shape?: { dim: { dimValue?: Int64; dimParam?: string }[] } | null };
  };
}
interface ModelMsg {
  producerName: string;
  producerVersion: string;
  docString: string;
  opsetImport: { domain: string; version: Int64 }[];
  metadataProps: { key: string; value: string }[];
  graph: {
    name: string;
    node: {
      name: string;
      opType: string;
      input: string[];
      output: string[];
      domain: string;
      attribute: AttributeMsg[];
    }[];
    initializer: TensorMsg[];
    input: ValueInfoMsg[];
    output: ValueInfoMsg[];
  };
}
interface OnnxProto {
  onnx: {
    ModelProto: { decode(bytes: Uint8Array): ModelMsg; encode(m: ModelMsg): { finish(): Uint8Array } };
  };
}

// --- The adapter: what the project would keep instead of reader.ts (counted in docs/decisions.md). ---
const num = (v: Int64 | undefined) => (v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());
const ELEMENT: Record<number, [Tensor['type'], (b: ArrayBuffer) => TensorValues]> = {
  1: ['float32', (b) => new Float32Array(b)],
  2: ['uint8', (b) => new Uint8Array(b)],
  3: ['int8', (b) => new Int8Array(b)],
  6: ['int32', (b) => new Int32Array(b)],
  7: ['int64', (b) => new BigInt64Array(b)],
};
function element(code: number, where: string) {
  const e = ELEMENT[code];
  if (!e) throw new Error(`${where}: unsupported element type ${code}`);
  return e;
}
function tensor(t: TensorMsg): Tensor {
  const [type, make] = element(t.dataType, `tensor "${t.name}"`);
  return { name: t.name, type, dims: t.dims.map(num), data: make(new Uint8Array(t.rawData).buffer) };
}
const utf8 = new TextDecoder();
function attribute(a: AttributeMsg) {
  if (a.type === 1) return { f: a.f };
  if (a.type === 2) return { i: num(a.i) };
  if (a.type === 3) return { s: utf8.decode(a.s) };
  if (a.type === 4 && a.t) return { t: tensor(a.t) };
  if (a.type === 6) return { floats: a.floats };
  if (a.type === 7) return { ints: a.ints.map(num) };
  throw new Error(`attribute "${a.name}": unsupported type ${a.type}`);
}
function valueInfo(v: ValueInfoMsg) {
  const tt = v.type?.tensorType;
  return {
    name: v.name,
    type: element(tt?.elemType ?? 0, `value "${v.name}"`)[0],
    shape: tt?.shape?.dim.map((d) => (d.dimParam ? d.dimParam : num(d.dimValue))),
  };
}
function readWithProtobufjs(proto: OnnxProto, bytes: Uint8Array): { info: ModelInfo; graph: Graph } {
  const m = proto.onnx.ModelProto.decode(bytes);
  const g = new Graph(m.graph.name);
  for (const n of m.graph.node) {
    const attrs = Object.fromEntries(n.attribute.map((a) => [a.name, attribute(a)]));
    g.nodes.push({
      name: n.name,
      op: n.opType,
      inputs: n.input,
      outputs: n.output,
      attrs,
      ...(n.domain ? { domain: n.domain } : {}),
    });
  }
  for (const t of m.graph.initializer) g.initializers.set(t.name, tensor(t));
  for (const v of m.graph.input) g.addInput(valueInfo(v));
  for (const v of m.graph.output) g.addOutput(valueInfo(v));
  const info: ModelInfo = { producerName: m.producerName, producerVersion: m.producerVersion };
  if (m.docString) info.docString = m.docString;
  const opset = m.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (opset) info.opset = num(opset.version);
  if (m.metadataProps.length > 0)
    info.metadata = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
  return { info, graph: g };
}
// --- end of the adapter ---

function failure(read: () => unknown): string {
  try {
    read();
    return 'no error';
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { candidate: { type: 'string' }, rounds: { type: 'string', default: '20' } },
});
if (!values.candidate)
  throw new Error('--candidate DIR: the folder protobufjs and onnx-proto were installed into');
const proto = createRequire(join(values.candidate, 'package.json'))('onnx-proto') as OnnxProto;
const files =
  positionals.length > 0
    ? positionals
    : ['facerec.int8.onnx', 'blazeface.int8.onnx', 'blazeface.fp32.onnx'].map((f) => join(modelsDir(), f));

for (const file of files) {
  const bytes = readFileSync(file);
  const ours = readOnnx(bytes);
  const theirs = readWithProtobufjs(proto, bytes);
  // Same Graph: the writer turns both into the same bytes, and those are the file's own.
  const same = Buffer.from(serializeModel(ours.graph, ours.info)).equals(
    serializeModel(theirs.graph, theirs.info),
  );
  const roundTrip = Buffer.from(serializeModel(ours.graph, ours.info)).equals(bytes);
  const reencoded = Buffer.from(proto.onnx.ModelProto.encode(proto.onnx.ModelProto.decode(bytes)).finish());
  const timings = await interleaved(
    [
      { name: 'reader.ts', run: async () => readOnnx(bytes) },
      { name: 'protobufjs+adapter', run: async () => readWithProtobufjs(proto, bytes) },
      { name: 'protobufjs decode only', run: async () => proto.onnx.ModelProto.decode(bytes) },
      // For scale: what opening the model on ONNX Runtime costs anyway.
      { name: 'ORT session create', run: async () => (await InferenceSession.create(bytes)).release() },
    ],
    { warmup: 3, rounds: integerFlag('rounds', values.rounds) },
  );
  console.log(`${file.split('/').pop()} (${bytes.length} bytes, ${ours.graph.nodes.length} nodes)`);
  for (const t of timings)
    console.log(`  ${t.name.padEnd(24)} p50 ${t.p50.toFixed(2)} ms  p95 ${t.p95.toFixed(2)} ms`);
  console.log(
    `  same graph from both: ${same}; writer(reader(file)) == file: ${roundTrip}; protobufjs re-encode == file: ${reencoded.equals(bytes)} (${reencoded.length} bytes)`,
  );
  const cut = bytes.subarray(0, bytes.length >> 1);
  console.log(`  half the file, reader.ts: ${failure(() => readOnnx(cut))}`);
  console.log(`  half the file, protobufjs: ${failure(() => readWithProtobufjs(proto, cut))}`);
}
