// Cut a child's stdout byte stream into frames; chunks arrive with arbitrary boundaries.

/** Fixed-size frames (raw rgb24 from ffmpeg or GStreamer). Each frame gets its own buffer. */
export class RawFrameSplitter {
  private frame: Buffer;
  private filled = 0;

  constructor(
    private readonly frameBytes: number,
    private readonly onFrame: (rgb: Buffer) => void,
  ) {
    this.frame = Buffer.allocUnsafe(frameBytes);
  }

  write(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const copied = chunk.copy(this.frame, this.filled, offset, offset + this.frameBytes - this.filled);
      offset += copied;
      this.filled += copied;
      if (this.filled === this.frameBytes) {
        const frame = this.frame;
        this.frame = Buffer.allocUnsafe(this.frameBytes);
        this.filled = 0;
        this.onFrame(frame);
      }
    }
  }
}

// Parser states.
const SEEK = 0; // outside a frame, looking for FF of SOI
const SEEK_SOI = 1; // outside a frame, saw FF
const MARKER = 2; // in the header, expecting FF of the next marker
const MARKER_CODE = 3; // in the header, saw FF
const LENGTH_HI = 4;
const LENGTH_LO = 5;
const SKIP = 6; // inside a marker segment's payload
const ENTROPY = 7; // entropy-coded data after SOS
const ENTROPY_FF = 8; // entropy-coded data, saw FF

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const TEM = 0x01;

const isRst = (code: number) => code >= 0xd0 && code <= 0xd7;

/**
 * Splits concatenated JPEGs (an MJPEG elementary stream) by walking the marker structure: segments
 * are skipped by their length, so an APP1 EXIF thumbnail (a whole JPEG, SOI to EOI) or any FFD8/FFD9
 * bytes in a payload cannot end or start a frame; in entropy-coded data FF is always followed by 00
 * (stuffing), a restart marker or a real marker. Bytes between frames are ignored; a frame that breaks
 * the structure is reported and dropped, and parsing resumes at the next SOI.
 */
export class MjpegSplitter {
  private state = SEEK;
  private parts: Buffer[] = [];
  private size = 0;
  private marker = 0;
  private lengthHi = 0;
  private remaining = 0;
  // Index in the current chunk where the current frame's unsaved bytes begin; -1 outside a frame.
  private start = -1;

  constructor(
    private readonly onFrame: (jpeg: Buffer) => void,
    private readonly onCorrupt: (reason: string) => void,
    private readonly maxFrameBytes = 16 * 1024 * 1024,
  ) {}

  /** The index after the next 0xff from `from` on, having moved to `next`; the chunk's end if there is none. */
  private pastNextFF(chunk: Buffer, from: number, next: number): number {
    const ff = chunk.indexOf(0xff, from);
    if (ff < 0) return chunk.length;
    this.state = next;
    return ff + 1;
  }

  write(chunk: Buffer): void {
    this.start = this.state === SEEK || this.state === SEEK_SOI ? -1 : 0;
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case SEEK:
          i = this.pastNextFF(chunk, i, SEEK_SOI);
          break;
        case SEEK_SOI: {
          const code = chunk[i++];
          if (code === SOI) this.begin(i - 1);
          else if (code !== 0xff) this.state = SEEK;
          break;
        }
        case MARKER:
          if (chunk[i] === 0xff) {
            i++;
            this.state = MARKER_CODE;
          } else this.corrupt(`expected a marker, found byte 0x${chunk[i].toString(16)}`);
          break;
        case MARKER_CODE:
        case ENTROPY_FF: {
          const code = chunk[i++];
          if (code === 0xff) break; // fill byte
          if (this.state === ENTROPY_FF && (code === 0 || isRst(code))) this.state = ENTROPY;
          else this.onMarker(chunk, i, code);
          break;
        }
        case LENGTH_HI:
          this.lengthHi = chunk[i++];
          this.state = LENGTH_LO;
          break;
        case LENGTH_LO: {
          const length = (this.lengthHi << 8) | chunk[i++];
          if (length < 2) this.corrupt(`segment length ${length}`);
          else {
            this.remaining = length - 2;
            this.state = this.remaining > 0 ? SKIP : this.afterSegment();
          }
          break;
        }
        case SKIP: {
          const n = Math.min(this.remaining, chunk.length - i);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = this.afterSegment();
          break;
        }
        case ENTROPY:
          i = this.pastNextFF(chunk, i, ENTROPY_FF);
          break;
      }
    }
    if (this.start < 0) return;
    this.keep(chunk.subarray(this.start));
    if (this.size > this.maxFrameBytes) this.corrupt(`no EOI within ${this.maxFrameBytes} bytes`);
  }

  /** `end` is the index just past the marker code. */
  private onMarker(chunk: Buffer, end: number, code: number): void {
    if (code === EOI) {
      this.keep(chunk.subarray(this.start, end));
      const jpeg = Buffer.concat(this.parts, this.size);
      this.reset();
      this.onFrame(jpeg);
    } else if (code === SOI) {
      this.onCorrupt('frame cut short by the next SOI');
      this.reset();
      this.begin(end - 1);
    } else if (code === 0) {
      this.corrupt('stuffed 00 outside entropy-coded data');
    } else if (code === TEM || isRst(code)) {
      this.state = MARKER;
    } else {
      this.marker = code;
      this.state = LENGTH_HI;
    }
  }

  private afterSegment(): number {
    return this.marker === SOS ? ENTROPY : MARKER;
  }

  /** Starts a frame at the SOI code byte `soi`; its FF may have ended the previous chunk. */
  private begin(soi: number): void {
    if (soi === 0) {
      this.parts.push(Buffer.from([0xff]));
      this.size = 1;
      this.start = 0;
    } else this.start = soi - 1;
    this.state = MARKER;
  }

  private keep(bytes: Buffer): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private corrupt(reason: string): void {
    this.onCorrupt(reason);
    this.reset();
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.start = -1;
    this.state = SEEK;
  }
}
