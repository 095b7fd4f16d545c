// Getting a model's bytes onto the device: an http(s) download or MQTT chunks, both size-limited so an
// operator (or an attacker with a URL) cannot fill the disk or the memory of the device.
import { sha256 } from '../models/manifest.ts';

export type DownloadErrorCode =
  | 'bad-url'
  | 'http'
  | 'too-large'
  | 'timeout'
  | 'network'
  | 'chunk'
  | 'incomplete'
  | 'mismatch'
  | 'cancelled';

export class DownloadError extends Error {
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

/** Bytes (downloads) or chunks (MQTT transfers) so far, and the total when known. */
export type ProgressFn = (received: number, total: number | undefined) => void;

export interface DownloadOptions {
  maxBytes: number;
  /** For the whole transfer, headers and body. */
  timeoutMs: number;
  onProgress?: ProgressFn;
}

export async function downloadModel(url: string, opts: DownloadOptions): Promise<Uint8Array> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError('bad-url', `not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new DownloadError('bad-url', `only http and https downloads are supported, not ${parsed.protocol}`);
  }
  const where = `${parsed.origin}${parsed.pathname}`;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, opts.timeoutMs);
  const tooLarge = (size: string) => {
    controller.abort();
    return new DownloadError('too-large', `${where}: ${size}, more than the limit of ${opts.maxBytes} bytes`);
  };
  try {
    // Never followed: a redirect could take the device to a host nobody allowed (models.update.allowedOrigins).
    const res = await fetch(parsed, { signal: controller.signal, redirect: 'manual' });
    if (res.status >= 300 && res.status < 400) {
      controller.abort();
      throw new DownloadError('http', `${where}: HTTP ${res.status} redirect, which is not followed`);
    }
    if (!res.ok || !res.body) {
      controller.abort();
      throw new DownloadError('http', `${where}: HTTP ${res.status} ${res.statusText}`.trim());
    }
    const header = res.headers.get('content-length');
    const total = header === null ? undefined : Number(header);
    if (total !== undefined && total > opts.maxBytes) throw tooLarge(`Content-Length ${total}`);
    const parts: Uint8Array[] = [];
    let received = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > opts.maxBytes) throw tooLarge(`${received} bytes received so far`);
      parts.push(value);
      opts.onProgress?.(received, total);
    }
    return Buffer.concat(parts, received);
  } catch (e) {
    if (e instanceof DownloadError) throw e;
    if (timedOut)
      throw new DownloadError('timeout', `${where}: no complete answer within ${opts.timeoutMs} ms`);
    const cause = (e as Error).cause as Error | undefined;
    throw new DownloadError(
      'network',
      `${where}: ${(e as Error).message}${cause ? ` (${cause.message})` : ''}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Size first, since a truncated file is a more useful diagnosis than a digest mismatch. */
export function verifyModelBytes(bytes: Uint8Array, expected: { sha256: string; bytes?: number }): void {
  if (expected.bytes !== undefined && bytes.length !== expected.bytes) {
    throw new DownloadError(
      'mismatch',
      `model has ${bytes.length} bytes, the manifest says ${expected.bytes} (truncated or padded)`,
    );
  }
  const digest = sha256(bytes);
  if (digest !== expected.sha256) {
    throw new DownloadError(
      'mismatch',
      `model sha256 ${digest} does not match the manifest's ${expected.sha256} (tampered or corrupt)`,
    );
  }
}

/** One MQTT message of a chunked model transfer. */
export interface ModelChunk {
  id: string;
  index: number;
  total: number;
  /** base64 */
  data: string;
}

export interface ChunkOptions {
  maxBytes: number;
  sha256: string;
  bytes?: number;
  onProgress?: ProgressFn;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** `message` as a well-formed chunk (an id, an index within its total, non-empty base64), or a 'chunk' error. */
export function checkChunk(message: unknown): ModelChunk {
  const { id, index, total, data } = (message ?? {}) as Partial<ModelChunk>;
  if (typeof id !== 'string' || id === '') throw chunkError('has no transfer id');
  if (!Number.isInteger(total) || (total as number) < 1)
    throw chunkError(`of ${id} has an invalid total ${total}`);
  if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= (total as number)) {
    throw chunkError(`of ${id} has index ${index}, outside 0..${(total as number) - 1}`);
  }
  // Every chunk carries at least one byte, which bounds the number of chunks by the number of bytes.
  if (typeof data !== 'string' || data === '' || data.length % 4 !== 0 || !BASE64.test(data))
    throw chunkError(`${index} of ${id} is not base64`);
  return { id, index, total, data } as ModelChunk;
}

/** Collects chunks in any order; redelivered duplicates (MQTT QoS 1) are ignored when identical. */
export class ChunkAssembler {
  private id?: string;
  private parts: (Buffer | undefined)[] = [];
  private received = 0;
  private count = 0;

  constructor(private readonly opts: ChunkOptions) {}

  add(chunk: ModelChunk): void {
    const { id, index, total, data } = checkChunk(chunk);
    if (this.id === undefined) {
      // Every chunk carries at least one byte, so more chunks than the byte limit can only be an attack.
      if (total > this.opts.maxBytes)
        throw new DownloadError('too-large', `transfer ${id} announces ${total} chunks`);
      this.id = id;
      this.parts = new Array(total);
    }
    if (id !== this.id) throw chunkError(`${index} belongs to transfer ${id}, not ${this.id}`);
    if (total !== this.parts.length)
      throw chunkError(`${index} of ${id} says ${total} chunks, earlier ones said ${this.parts.length}`);
    const bytes = Buffer.from(data, 'base64');
    const seen = this.parts[index];
    if (seen) {
      if (!seen.equals(bytes)) throw chunkError(`${index} of ${id} arrived twice with different contents`);
      return;
    }
    if (this.received + bytes.length > this.opts.maxBytes) {
      throw new DownloadError('too-large', `transfer ${id} exceeds the limit of ${this.opts.maxBytes} bytes`);
    }
    this.parts[index] = bytes;
    this.received += bytes.length;
    this.count++;
    this.opts.onProgress?.(this.count, this.parts.length);
  }

  get complete(): boolean {
    return this.id !== undefined && this.count === this.parts.length;
  }

  missing(): number[] {
    if (this.id === undefined) return [];
    const out: number[] = [];
    for (let i = 0; i < this.parts.length; i++) if (!this.parts[i]) out.push(i);
    return out;
  }

  /** The model, once every chunk is in and the digest matches. */
  result(): Uint8Array {
    if (this.id === undefined) throw new DownloadError('incomplete', 'no chunks received');
    const missing = this.missing();
    if (missing.length > 0) {
      const list = missing.slice(0, 10).join(', ') + (missing.length > 10 ? ', ...' : '');
      throw new DownloadError(
        'incomplete',
        `transfer ${this.id}: ${missing.length} of ${this.parts.length} chunks missing (${list})`,
      );
    }
    const bytes = Buffer.concat(this.parts as Buffer[], this.received);
    verifyModelBytes(bytes, this.opts);
    return bytes;
  }
}

export function chunkError(what: string): DownloadError {
  return new DownloadError('chunk', `model chunk ${what}`);
}

/** Assembles chunks from a list or a live stream; stops as soon as the model is complete. */
export async function collectChunks(
  source: Iterable<ModelChunk> | AsyncIterable<ModelChunk>,
  opts: ChunkOptions & { timeoutMs: number },
): Promise<Uint8Array> {
  const assembler = new ChunkAssembler(opts);
  const iterator =
    Symbol.asyncIterator in source
      ? source[Symbol.asyncIterator]()
      : (source[Symbol.iterator]() as Iterator<ModelChunk>);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const missing = assembler.missing().length;
      reject(
        new DownloadError(
          'timeout',
          `model chunks: not complete after ${opts.timeoutMs} ms (${missing || 'all'} missing)`,
        ),
      );
    }, opts.timeoutMs);
  });
  try {
    while (!assembler.complete) {
      const next = await Promise.race([iterator.next(), deadline]);
      if (next.done) break;
      assembler.add(next.value);
    }
    return assembler.result();
  } finally {
    clearTimeout(timer);
    // Not awaited: a stream stuck waiting for its next chunk would only finish returning after that chunk.
    Promise.resolve(iterator.return?.()).catch(() => {});
  }
}
