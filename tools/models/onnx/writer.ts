// Writes a Graph as an ONNX ModelProto: the offline toolchain's output format. Fields go out in a fixed
// order, so the same graph always serialises to the same bytes (reproducible builds).
import {
  ATTR_TYPE,
  type Attribute,
  DEFAULT_OPSET,
  type Graph,
  type GraphNode,
  type ModelInfo,
  ONNX_TYPE,
  type Tensor,
  type ValueInfo,
} from '../../../runtime/models/onnx/graph.ts';
import { ProtoWriter } from './protobuf.ts';

export function serializeModel(graph: Graph, info: ModelInfo): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, 8); // ir_version 8 pairs with opset 17
  w.string(2, info.producerName);
  w.string(3, info.producerVersion);
  if (info.docString) w.string(6, info.docString);
  w.message(7, (g) => writeGraph(g, graph));
  w.message(8, (o) => o.string(1, '').int(2, info.opset ?? DEFAULT_OPSET));
  for (const [key, value] of Object.entries(info.metadata ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    w.message(14, (m) => m.string(1, key).string(2, value));
  }
  return w.finish();
}

function writeGraph(w: ProtoWriter, graph: Graph): void {
  for (const node of graph.nodes) w.message(1, (n) => writeNode(n, node));
  w.string(2, graph.name);
  for (const t of graph.initializers.values()) w.message(5, (m) => writeTensor(m, t));
  for (const i of graph.inputs) w.message(11, (m) => writeValueInfo(m, i));
  for (const o of graph.outputs) w.message(12, (m) => writeValueInfo(m, o));
}

function writeNode(w: ProtoWriter, node: GraphNode): void {
  for (const i of node.inputs) w.string(1, i);
  for (const o of node.outputs) w.string(2, o);
  w.string(3, node.name);
  w.string(4, node.op);
  for (const [name, attr] of Object.entries(node.attrs)) w.message(5, (a) => writeAttribute(a, name, attr));
  if (node.domain) w.string(7, node.domain);
}

function writeAttribute(w: ProtoWriter, name: string, attr: Attribute): void {
  w.string(1, name);
  if ('f' in attr) w.float(2, attr.f).int(20, ATTR_TYPE.FLOAT);
  else if ('i' in attr) w.int(3, attr.i).int(20, ATTR_TYPE.INT);
  else if ('s' in attr) w.string(4, attr.s).int(20, ATTR_TYPE.STRING);
  else if ('t' in attr) w.message(5, (t) => writeTensor(t, attr.t)).int(20, ATTR_TYPE.TENSOR);
  else if ('floats' in attr) w.packedFloats(7, attr.floats).int(20, ATTR_TYPE.FLOATS);
  else w.packedInts(8, attr.ints).int(20, ATTR_TYPE.INTS);
}

function writeTensor(w: ProtoWriter, t: Tensor): void {
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, ONNX_TYPE[t.type]);
  w.string(8, t.name);
  // raw_data is little-endian, which is every platform this runs on.
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ONNX_TYPE[v.type]);
      const dims = v.shape;
      if (!dims) return;
      tensor.message(2, (shape) => {
        for (const d of dims) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}
