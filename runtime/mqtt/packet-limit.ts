// A limit on the size of incoming MQTT packets that acts on the fixed header, before the body arrives.
// mqtt.js and aedes buffer a whole packet before anyone sees it, so a 200 MiB publish would sit in the
// heap before control.maxPayloadBytes could refuse it. This reads the stream beside the MQTT parser: each
// packet's fixed header gives its remaining length (a variable-length integer), and a packet announced
// larger than the limit ends the connection while at most one network chunk of it has been read.

import type { Duplex } from 'node:stream';

/** The MQTT fixed header's remaining length takes at most 4 bytes. */
const MAX_LENGTH_BYTES = 4;

export interface PacketLimitOptions {
  /** Largest whole packet (fixed header included), bytes. */
  maxPacketBytes: number;
  /** Called once, just before the stream is destroyed, with the announced packet size. */
  onOversize(bytes: number): void;
}

/** Watches `stream`'s incoming bytes and destroys it when a packet announces more than the limit. */
export function limitPacketSize(stream: Duplex, opts: PacketLimitOptions): void {
  // Bytes of the current packet still to skip; 0 while a fixed header is being read into `header`.
  let skip = 0;
  let header: number[] = [];
  const onData = (chunk: Buffer) => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      header.push(chunk[i++]);
      // header[0] is the packet type byte; then the remaining length, 7 bits per byte, high bit = more.
      if (header.length === 1) continue;
      const last = header[header.length - 1];
      if (last & 0x80 && header.length - 1 < MAX_LENGTH_BYTES) continue;
      let remaining = 0;
      for (let k = header.length - 1; k >= 1; k--) remaining = remaining * 128 + (header[k] & 0x7f);
      const total = header.length + remaining;
      header = [];
      if (total > opts.maxPacketBytes) {
        stream.off('data', onData);
        opts.onOversize(total);
        stream.destroy();
        return;
      }
      skip = remaining;
    }
  };
  stream.on('data', onData);
}
