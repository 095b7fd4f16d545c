import { describe, expect, it } from 'vitest';
import { ProtoWriter } from '../../../tools/models/onnx/protobuf.ts';

const hex = (w: ProtoWriter) => Buffer.from(w.finish()).toString('hex');

describe('ProtoWriter', () => {
  it('encodes varints as protobuf does', () => {
    expect(hex(new ProtoWriter().int(1, 1))).toBe('0801');
    expect(hex(new ProtoWriter().int(1, 300))).toBe('08ac02');
    // Negative int64: ten bytes of two's complement.
    expect(hex(new ProtoWriter().int(2, -1))).toBe('10ffffffffffffffffff01');
  });

  it('encodes fixed32 floats little-endian', () => {
    expect(hex(new ProtoWriter().float(2, 1.5))).toBe('150000c03f');
  });

  it('length-prefixes strings, nested messages and packed fields', () => {
    expect(hex(new ProtoWriter().string(3, 'ab'))).toBe('1a026162');
    expect(hex(new ProtoWriter().message(4, (m) => m.int(1, 5)))).toBe('22020805');
    expect(hex(new ProtoWriter().packedInts(5, [1, 2, 300]))).toBe('2a040102ac02');
    expect(hex(new ProtoWriter().packedFloats(6, [1]))).toBe('32040000803f');
  });
});
