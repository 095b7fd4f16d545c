// A minimal ONNX reader, the inverse of Graph.serialize(): enough of ModelProto for the engines to
// inspect a model (nodes, attributes, raw_data initializers, inputs/outputs). Every read is bounds
// checked, so truncated or corrupt bytes end in an OnnxReadError rather than garbage or a hang.
import {
  ATTR_TYPE,
  type Attribute,
  type ElementType,
  elementCount,
  Graph,
  type GraphNode,
  type ModelInfo,
  type Tensor,
  type TensorValues,
  type ValueInfo,
} from './graph.ts';

export class OnnxReadError extends Error {
  constructor(message: string) {
    super(`ONNX model: ${message}`);
    this.name = 'OnnxReadError';
  }
}

export interface OnnxModel {
  irVersion: number;
  info: ModelInfo;
  graph: Graph;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

interface Field {
  field: number;
  wire: number;
  /** Varint value (WIRE_VARINT) as unsigned 64-bit. */
  int: bigint;
  /** Payload of length-delimited and fixed-size fields. */
  bytes: Uint8Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bounds-checked reads over one message's bytes; `where` names the message in errors. */
class Cursor {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly where: string,
  ) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.done) throw new OnnxReadError(`truncated varint in ${this.where}`);
      const byte = this.buf[this.pos++];
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, value);
    }
    throw new OnnxReadError(`varint longer than 10 bytes in ${this.where}`);
  }

  take(n: bigint | number): Uint8Array {
    const left = this.buf.length - this.pos;
    if (BigInt(n) > BigInt(left))
      throw new OnnxReadError(`truncated field in ${this.where} (needs ${n} bytes, ${left} left)`);
    const out = this.buf.subarray(this.pos, this.pos + Number(n));
    this.pos += Number(n);
    return out;
  }
}

function* fields(buf: Uint8Array, where: string): Generator<Field> {
  const c = new Cursor(buf, where);
  while (!c.done) {
    const key = c.varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new OnnxReadError(`field number 0 in ${where} (corrupt data)`);
    if (wire === WIRE_VARINT) yield { field, wire, int: c.varint(), bytes: new Uint8Array(0) };
    else if (wire === WIRE_FIXED64) yield { field, wire, int: 0n, bytes: c.take(8) };
    else if (wire === WIRE_FIXED32) yield { field, wire, int: 0n, bytes: c.take(4) };
    else if (wire === WIRE_LENGTH_DELIMITED) yield { field, wire, int: 0n, bytes: c.take(c.varint()) };
    else throw new OnnxReadError(`unsupported wire type ${wire} (field ${field}) in ${where}`);
  }
}

const toInt64 = (v: bigint) => Number(BigInt.asIntN(64, v));

function expectWire(f: Field, wire: number, where: string): void {
  if (f.wire !== wire)
    throw new OnnxReadError(`field ${f.field} of ${where} has wire type ${f.wire}, not ${wire}`);
}

function str(f: Field, where: string): string {
  expectWire(f, WIRE_LENGTH_DELIMITED, where);
  try {
    return utf8.decode(f.bytes);
  } catch {
    throw new OnnxReadError(`field ${f.field} of ${where} is not valid UTF-8`);
  }
}

function int(f: Field, where: string): number {
  expectWire(f, WIRE_VARINT, where);
  return toInt64(f.int);
}

/** A repeated int64 field, packed (our writer) or one value per field (proto2 writers). */
function pushInts(out: number[], f: Field, where: string): void {
  if (f.wire === WIRE_VARINT) {
    out.push(toInt64(f.int));
    return;
  }
  expectWire(f, WIRE_LENGTH_DELIMITED, where);
  const c = new Cursor(f.bytes, where);
  while (!c.done) out.push(toInt64(c.varint()));
}

function pushFloats(out: number[], f: Field, where: string): void {
  if (f.wire === WIRE_FIXED32) {
    out.push(new DataView(f.bytes.buffer, f.bytes.byteOffset, 4).getFloat32(0, true));
    return;
  }
  expectWire(f, WIRE_LENGTH_DELIMITED, where);
  if (f.bytes.length % 4 !== 0)
    throw new OnnxReadError(`packed floats of ${where} are not a multiple of 4 bytes`);
  const view = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
  for (let i = 0; i < f.bytes.length; i += 4) out.push(view.getFloat32(i, true));
}

const ELEMENT_TYPES: Record<
  number,
  { type: ElementType; make: (b: ArrayBuffer) => TensorValues; size: number }
> = {
  1: { type: 'float32', make: (b) => new Float32Array(b), size: 4 },
  2: { type: 'uint8', make: (b) => new Uint8Array(b), size: 1 },
  3: { type: 'int8', make: (b) => new Int8Array(b), size: 1 },
  6: { type: 'int32', make: (b) => new Int32Array(b), size: 4 },
  7: { type: 'int64', make: (b) => new BigInt64Array(b), size: 8 },
};

function elementType(code: number, where: string) {
  const t = ELEMENT_TYPES[code];
  if (!t) throw new OnnxReadError(`${where}: unsupported element type ${code}`);
  return t;
}

function readTensor(buf: Uint8Array, where: string): Tensor {
  const dims: number[] = [];
  let code = 0;
  let name = '';
  let raw: Uint8Array | undefined;
  for (const f of fields(buf, where)) {
    if (f.field === 1) pushInts(dims, f, `${where}.dims`);
    else if (f.field === 2) code = int(f, `${where}.data_type`);
    else if (f.field === 8) name = str(f, `${where}.name`);
    else if (f.field === 9) {
      expectWire(f, WIRE_LENGTH_DELIMITED, `${where}.raw_data`);
      raw = f.bytes;
    } else if (f.field === 4 || f.field === 5 || f.field === 7 || f.field === 13)
      throw new OnnxReadError(`tensor "${name || where}" keeps its values outside raw_data (not supported)`);
  }
  const label = `tensor "${name || where}"`;
  const t = elementType(code, label);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d)))
    throw new OnnxReadError(`${label} has invalid dims [${dims.join(',')}]`);
  const bytes = elementCount(dims) * t.size;
  if ((raw?.length ?? 0) !== bytes)
    throw new OnnxReadError(
      `${label}: raw_data has ${raw?.length ?? 0} bytes, dims [${dims.join(',')}] need ${bytes}`,
    );
  // A copy: aligned for the typed array, and not pinning the whole model (Buffer.slice would share).
  return { name, type: t.type, dims, data: t.make(new Uint8Array(raw ?? []).buffer) };
}

function readAttribute(buf: Uint8Array, where: string): { name: string; attr: Attribute } {
  let name = '';
  let type = 0;
  let f32 = 0;
  let i64 = 0;
  let s = '';
  let t: Tensor | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  for (const f of fields(buf, where)) {
    if (f.field === 1) name = str(f, `${where}.name`);
    else if (f.field === 20) type = int(f, `${where}.type`);
    else if (f.field === 2) {
      expectWire(f, WIRE_FIXED32, `${where}.f`);
      f32 = new DataView(f.bytes.buffer, f.bytes.byteOffset, 4).getFloat32(0, true);
    } else if (f.field === 3) i64 = int(f, `${where}.i`);
    else if (f.field === 4) s = str(f, `${where}.s`);
    else if (f.field === 5) {
      expectWire(f, WIRE_LENGTH_DELIMITED, `${where}.t`);
      t = readTensor(f.bytes, `${where}.t`);
    } else if (f.field === 7) pushFloats(floats, f, `${where}.floats`);
    else if (f.field === 8) pushInts(ints, f, `${where}.ints`);
  }
  const label = `attribute "${name}" of ${where}`;
  if (type === ATTR_TYPE.FLOAT) return { name, attr: { f: f32 } };
  if (type === ATTR_TYPE.INT) return { name, attr: { i: i64 } };
  if (type === ATTR_TYPE.STRING) return { name, attr: { s } };
  if (type === ATTR_TYPE.FLOATS) return { name, attr: { floats } };
  if (type === ATTR_TYPE.INTS) return { name, attr: { ints } };
  if (type === ATTR_TYPE.TENSOR) {
    if (!t) throw new OnnxReadError(`${label} has type TENSOR but no tensor`);
    return { name, attr: { t } };
  }
  throw new OnnxReadError(`${label}: unsupported attribute type ${type}`);
}

function readNode(buf: Uint8Array, where: string): GraphNode {
  const node: GraphNode = { name: '', op: '', inputs: [], outputs: [], attrs: {} };
  for (const f of fields(buf, where)) {
    if (f.field === 1) node.inputs.push(str(f, `${where}.input`));
    else if (f.field === 2) node.outputs.push(str(f, `${where}.output`));
    else if (f.field === 3) node.name = str(f, `${where}.name`);
    else if (f.field === 4) node.op = str(f, `${where}.op_type`);
    else if (f.field === 7) node.domain = str(f, `${where}.domain`);
  }
  const label = `node "${node.name}" (${node.op || 'no op_type'})`;
  if (!node.op) throw new OnnxReadError(`${label} has no op_type`);
  // Attributes are read after the name so their errors can name the node.
  for (const f of fields(buf, where)) {
    if (f.field !== 5) continue;
    expectWire(f, WIRE_LENGTH_DELIMITED, `${label}.attribute`);
    const { name, attr } = readAttribute(f.bytes, label);
    node.attrs[name] = attr;
  }
  return node;
}

function readValueInfo(buf: Uint8Array, where: string): ValueInfo {
  let name = '';
  let code = 0;
  let shape: (number | string)[] | undefined;
  for (const f of fields(buf, where)) {
    if (f.field === 1) name = str(f, `${where}.name`);
    else if (f.field === 2) {
      expectWire(f, WIRE_LENGTH_DELIMITED, `${where}.type`);
      for (const tt of fields(f.bytes, `${where}.type`)) {
        if (tt.field !== 1) continue; // only tensor types
        expectWire(tt, WIRE_LENGTH_DELIMITED, `${where}.type.tensor_type`);
        for (const tf of fields(tt.bytes, `${where}.type.tensor_type`)) {
          if (tf.field === 1) code = int(tf, `${where}.elem_type`);
          else if (tf.field === 2) {
            expectWire(tf, WIRE_LENGTH_DELIMITED, `${where}.shape`);
            shape = [];
            for (const d of fields(tf.bytes, `${where}.shape`)) {
              if (d.field !== 1) continue;
              expectWire(d, WIRE_LENGTH_DELIMITED, `${where}.shape.dim`);
              let dim: number | string = '';
              for (const v of fields(d.bytes, `${where}.shape.dim`)) {
                if (v.field === 1) dim = int(v, `${where}.dim_value`);
                else if (v.field === 2) dim = str(v, `${where}.dim_param`);
              }
              shape.push(dim);
            }
          }
        }
      }
    }
  }
  return { name, type: elementType(code, `value "${name}"`).type, shape };
}

function readGraph(buf: Uint8Array): Graph {
  let name = '';
  for (const f of fields(buf, 'GraphProto')) if (f.field === 2) name = str(f, 'GraphProto.name');
  const g = new Graph(name);
  let index = 0;
  for (const f of fields(buf, 'GraphProto')) {
    if (f.field === 1) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'GraphProto.node');
      const node = readNode(f.bytes, `GraphProto.node[${index++}]`);
      g.unique(node.name);
      for (const o of node.outputs) g.unique(o);
      g.nodes.push(node);
    } else if (f.field === 5) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'GraphProto.initializer');
      const t = readTensor(f.bytes, 'GraphProto.initializer');
      g.unique(t.name);
      g.initializers.set(t.name, t);
    } else if (f.field === 11) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'GraphProto.input');
      g.addInput(readValueInfo(f.bytes, 'GraphProto.input'));
    } else if (f.field === 12) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'GraphProto.output');
      g.addOutput(readValueInfo(f.bytes, 'GraphProto.output'));
    } else if (f.field === 15) throw new OnnxReadError('sparse initializers are not supported');
  }
  return g;
}

export function readOnnx(bytes: Uint8Array): OnnxModel {
  let irVersion = 0;
  const info: ModelInfo = { producerName: '', producerVersion: '' };
  const metadata: Record<string, string> = {};
  let graph: Graph | undefined;
  for (const f of fields(bytes, 'ModelProto')) {
    if (f.field === 1) irVersion = int(f, 'ModelProto.ir_version');
    else if (f.field === 2) info.producerName = str(f, 'ModelProto.producer_name');
    else if (f.field === 3) info.producerVersion = str(f, 'ModelProto.producer_version');
    else if (f.field === 6) info.docString = str(f, 'ModelProto.doc_string');
    else if (f.field === 7) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'ModelProto.graph');
      graph = readGraph(f.bytes);
    } else if (f.field === 8) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'ModelProto.opset_import');
      let domain = '';
      let version = 0;
      for (const o of fields(f.bytes, 'ModelProto.opset_import')) {
        if (o.field === 1) domain = str(o, 'opset_import.domain');
        else if (o.field === 2) version = int(o, 'opset_import.version');
      }
      if (domain === '' || domain === 'ai.onnx') info.opset = version;
    } else if (f.field === 14) {
      expectWire(f, WIRE_LENGTH_DELIMITED, 'ModelProto.metadata_props');
      let key = '';
      let value = '';
      for (const m of fields(f.bytes, 'ModelProto.metadata_props')) {
        if (m.field === 1) key = str(m, 'metadata_props.key');
        else if (m.field === 2) value = str(m, 'metadata_props.value');
      }
      metadata[key] = value;
    }
  }
  if (!graph) throw new OnnxReadError('no graph (empty, truncated or not an ONNX file)');
  if (Object.keys(metadata).length > 0) info.metadata = metadata;
  return { irVersion, info, graph };
}
