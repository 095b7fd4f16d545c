// An in-memory ONNX graph: what the reader returns and the kernels lowering walks; the offline toolchain
// (tools/models) builds, rewrites and writes it (tools/models/onnx/writer.ts).

export type ElementType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64';

export const ONNX_TYPE: Record<ElementType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7 };

export type TensorValues = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

export interface Tensor {
  name: string;
  type: ElementType;
  dims: number[];
  data: TensorValues;
}

export type Attribute =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: Tensor };

export interface GraphNode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attribute>;
  domain?: string;
}

export interface ValueInfo {
  name: string;
  type: ElementType;
  /** A number is a fixed size, a string a symbolic one (e.g. "batch"); absent when unknown. */
  shape?: (number | string)[];
}

export interface ModelInfo {
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Record<string, string>;
  opset?: number;
}

export const DEFAULT_OPSET = 17;

export function tensorByteLength(t: Tensor): number {
  return t.data.byteLength;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly initializers = new Map<string, Tensor>();
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private names = new Set<string>();

  constructor(readonly name: string) {}

  /** A name not used yet in this graph, derived from `base`. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  addInput(info: ValueInfo): string {
    this.names.add(info.name);
    this.inputs.push(info);
    return info.name;
  }

  addOutput(info: ValueInfo): void {
    this.outputs.push(info);
  }

  addInitializer(name: string, type: ElementType, dims: number[], data: TensorValues): string {
    if (elementCount(dims) !== data.length) {
      throw new Error(`initializer ${name}: ${data.length} values do not fill dims [${dims.join(',')}]`);
    }
    const unique = this.unique(name);
    this.initializers.set(unique, { name: unique, type, dims, data });
    return unique;
  }

  floatConst(name: string, values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.addInitializer(name, 'float32', dims, Float32Array.from(values));
  }

  int64Const(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.addInitializer(name, 'int64', dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Adds a node and returns its first output's name. */
  add(
    op: string,
    inputs: string[],
    attrs: Record<string, Attribute> = {},
    name?: string,
    outputCount = 1,
  ): string {
    return this.addMulti(op, inputs, attrs, name, outputCount)[0];
  }

  addMulti(
    op: string,
    inputs: string[],
    attrs: Record<string, Attribute> = {},
    name?: string,
    outputCount = 1,
  ): string[] {
    const nodeName = this.unique(name ?? op);
    const outputs = Array.from({ length: outputCount }, (_, i) =>
      i === 0 ? this.unique(`${nodeName}:out`) : this.unique(`${nodeName}:out${i}`),
    );
    this.nodes.push({ name: nodeName, op, inputs, outputs, attrs });
    return outputs;
  }

  /** Exposes `source` as a graph output named `name` (through an Identity node that ORT optimises away). */
  exposeOutput(source: string, name: string, shape?: (number | string)[]): void {
    this.names.add(name);
    this.nodes.push({
      name: this.unique(`${name}/output`),
      op: 'Identity',
      inputs: [source],
      outputs: [name],
      attrs: {},
    });
    this.outputs.push({ name, type: 'float32', shape });
  }

  /** Consumers of each tensor, for rewrites that need to look downstream. */
  consumers(): Map<string, GraphNode[]> {
    const map = new Map<string, GraphNode[]>();
    for (const n of this.nodes) {
      for (const i of n.inputs) {
        if (!i) continue;
        const list = map.get(i) ?? [];
        list.push(n);
        map.set(i, list);
      }
    }
    return map;
  }

  producers(): Map<string, GraphNode> {
    const map = new Map<string, GraphNode>();
    for (const n of this.nodes) for (const o of n.outputs) map.set(o, n);
    return map;
  }
}

// AttributeProto.AttributeType values Graph can hold (the reader and the writer use them).
export const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
