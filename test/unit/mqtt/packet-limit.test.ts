import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { limitPacketSize } from '../../../runtime/mqtt/packet-limit.ts';

/** An MQTT fixed header: type byte and the remaining length as a variable-length integer. */
function header(type: number, remaining: number): Buffer {
  const bytes = [type];
  do {
    let digit = remaining % 128;
    remaining = Math.floor(remaining / 128);
    if (remaining > 0) digit |= 0x80;
    bytes.push(digit);
  } while (remaining > 0);
  return Buffer.from(bytes);
}

function watch(maxPacketBytes: number) {
  const stream = new PassThrough();
  const oversize: number[] = [];
  limitPacketSize(stream, { maxPacketBytes, onOversize: (bytes) => oversize.push(bytes) });
  stream.resume();
  return { stream, oversize };
}

describe('limitPacketSize', () => {
  it('lets packets up to the limit through, across chunk boundaries', () => {
    const { stream, oversize } = watch(1000);
    const packets = Buffer.concat([
      header(0x30, 500),
      Buffer.alloc(500),
      header(0xc0, 0),
      header(0x30, 997),
      Buffer.alloc(997),
    ]);
    for (let i = 0; i < packets.length; i += 7) stream.write(packets.subarray(i, i + 7));
    expect(oversize).toEqual([]);
    expect(stream.destroyed).toBe(false);
  });

  it('destroys the stream as soon as a header announces more, before the body arrives', () => {
    const { stream, oversize } = watch(1000);
    stream.write(Buffer.concat([header(0x30, 10), Buffer.alloc(10)]));
    // 200 MiB announced; only the header and two bytes of it are written.
    const huge = header(0x30, 200 * 1024 * 1024);
    stream.write(huge.subarray(0, 2));
    expect(stream.destroyed).toBe(false);
    stream.write(Buffer.concat([huge.subarray(2), Buffer.alloc(2)]));
    expect(oversize).toEqual([huge.length + 200 * 1024 * 1024]);
    expect(stream.destroyed).toBe(true);
  });
});
