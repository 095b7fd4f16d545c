import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChunkAssembler,
  collectChunks,
  downloadModel,
  type ModelChunk,
} from '../../../runtime/model-update/download.ts';
import { modelChunks } from '../../../runtime/model-update/transfer.ts';
import { sha256 } from '../../../runtime/models/manifest.ts';
import { downloadFailure, sendBytes, serve } from '../../helpers/model-update.ts';

const model = randomBytes(300_000);
let server: Awaited<ReturnType<typeof serve>>;
/** Bytes the streaming route managed to write before the client hung up. */
let streamed = 0;

beforeAll(async () => {
  server = await serve({
    '/model.onnx': sendBytes(model),
    '/huge-header': (_req, res) => {
      res.writeHead(200, { 'content-length': 50_000_000 });
      res.write(model.subarray(0, 1000));
    },
    '/endless': (_req, res) => {
      // No Content-Length: chunked, and never ending on its own.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        res.write(model.subarray(0, 64 * 1024));
        streamed += 64 * 1024;
      }, 1);
      res.on('close', () => clearInterval(timer));
    },
    '/hang': () => {},
    '/moved': (_req, res) => {
      res.writeHead(302, { location: '/model.onnx' }).end();
    },
    '/stall-body': (_req, res) => {
      res.writeHead(200, { 'content-length': model.length });
      res.write(model.subarray(0, 1000));
    },
  });
});
afterAll(() => server.close());

const failure = downloadFailure;

describe('downloadModel', () => {
  it('downloads, reporting progress up to the Content-Length', async () => {
    const progress: [number, number | undefined][] = [];
    const bytes = await downloadModel(`${server.url}/model.onnx`, {
      maxBytes: model.length,
      timeoutMs: 10_000,
      onProgress: (r, t) => progress.push([r, t]),
    });
    expect(Buffer.from(bytes).equals(model)).toBe(true);
    expect(progress.at(-1)).toEqual([model.length, model.length]);
    expect(progress.every(([r], i) => i === 0 || r > progress[i - 1][0])).toBe(true);
  });

  it('refuses a Content-Length over the limit before reading the body', async () => {
    const e = await failure(
      downloadModel(`${server.url}/huge-header`, { maxBytes: 1_000_000, timeoutMs: 10_000 }),
    );
    expect(e.code).toBe('too-large');
    expect(e.message).toMatch(/Content-Length 50000000, more than the limit of 1000000 bytes/);
  });

  it('aborts a stream without Content-Length once it passes the limit', async () => {
    const started = performance.now();
    const e = await failure(downloadModel(`${server.url}/endless`, { maxBytes: 500_000, timeoutMs: 20_000 }));
    expect(e.code).toBe('too-large');
    expect(e.message).toMatch(/bytes received so far, more than the limit of 500000/);
    expect(performance.now() - started).toBeLessThan(10_000);
    const atAbort = streamed;
    await new Promise((r) => setTimeout(r, 100));
    expect(streamed - atAbort).toBeLessThan(2_000_000); // the connection is gone, the server stops writing
  });

  it('a 404 is an http error', async () => {
    const e = await failure(
      downloadModel(`${server.url}/nothing-here`, { maxBytes: 1000, timeoutMs: 10_000 }),
    );
    expect(e.code).toBe('http');
    expect(e.message).toMatch(/HTTP 404/);
  });

  it.each(['/hang', '/stall-body'])('times out on %s', async (path) => {
    const started = performance.now();
    const e = await failure(
      downloadModel(`${server.url}${path}`, { maxBytes: model.length, timeoutMs: 300 }),
    );
    expect(e.code).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses other schemes and garbage URLs, and reports refused connections', async () => {
    expect(
      (await failure(downloadModel('file:///etc/passwd', { maxBytes: 1000, timeoutMs: 1000 }))).code,
    ).toBe('bad-url');
    expect((await failure(downloadModel('not a url', { maxBytes: 1000, timeoutMs: 1000 }))).code).toBe(
      'bad-url',
    );
    const closed = await serve({});
    await closed.close();
    expect((await failure(downloadModel(`${closed.url}/x`, { maxBytes: 1000, timeoutMs: 5000 }))).code).toBe(
      'network',
    );
  });
});

const chunksOf = (bytes: Uint8Array, size: number): ModelChunk[] => modelChunks(bytes, 'xfer-1', size);

describe('model chunks', () => {
  const digest = sha256(model);
  const opts = { maxBytes: model.length, sha256: digest, timeoutMs: 5000 };

  it('assembles chunks in any order, ignoring identical redeliveries', async () => {
    const chunks = chunksOf(model, 7000);
    const shuffled = [...chunks].reverse();
    shuffled.splice(3, 0, chunks[5], chunks[0]);
    const progress: number[] = [];
    const bytes = await collectChunks(shuffled, { ...opts, onProgress: (r) => progress.push(r) });
    expect(Buffer.from(bytes).equals(model)).toBe(true);
    expect(progress.at(-1)).toBe(chunks.length);
  });

  it('names the missing chunks', async () => {
    const chunks = chunksOf(model, 7000).filter((c) => c.index !== 4 && c.index !== 17);
    const e = await failure(collectChunks(chunks, opts));
    expect(e.code).toBe('incomplete');
    expect(e.message).toMatch(/2 of 43 chunks missing \(4, 17\)/);
  });

  it('refuses more bytes than the limit', async () => {
    const e = await failure(collectChunks(chunksOf(model, 7000), { ...opts, maxBytes: 100_000 }));
    expect(e.code).toBe('too-large');
  });

  it('checks sha256 at the end', async () => {
    const e = await failure(collectChunks(chunksOf(model, 7000), { ...opts, sha256: 'a'.repeat(64) }));
    expect(e.code).toBe('mismatch');
    expect(e.message).toMatch(/sha256 .* does not match/);
    const short = await failure(collectChunks(chunksOf(model, 7000), { ...opts, bytes: model.length + 1 }));
    expect(short.message).toMatch(/has 300000 bytes, the manifest says 300001/);
  });

  it('refuses malformed and foreign chunks with the reason', () => {
    const [first, second] = chunksOf(model, 7000);
    const cases: [unknown, RegExp][] = [
      [{ ...second, id: 'other' }, /belongs to transfer other, not xfer-1/],
      [{ ...second, total: 44 }, /says 44 chunks, earlier ones said 43/],
      [{ ...second, index: 43 }, /index 43, outside 0..42/],
      [{ ...second, data: 'not base64!' }, /not base64/],
      [{ ...first, data: second.data }, /arrived twice with different contents/],
      [null, /no transfer id/],
    ];
    for (const [chunk, reason] of cases) {
      const assembler = new ChunkAssembler(opts);
      assembler.add(first);
      expect(() => assembler.add(chunk as ModelChunk)).toThrow(reason);
    }
    expect(() => new ChunkAssembler({ ...opts, maxBytes: 10 }).add({ ...first, total: 11 })).toThrow(
      /announces 11 chunks/,
    );
  });

  it('takes a live stream, stops reading once complete, and times out on a stalled one', async () => {
    const chunks = chunksOf(model, 100_000);
    let pulled = 0;
    async function* live(stallAfter: number) {
      for (const c of chunks) {
        if (pulled === stallAfter) await new Promise(() => {});
        pulled++;
        yield c;
      }
      await new Promise(() => {}); // an MQTT subscription never ends by itself
    }
    expect(Buffer.from(await collectChunks(live(Number.POSITIVE_INFINITY), opts)).equals(model)).toBe(true);
    pulled = 0;
    const started = performance.now();
    const e = await failure(collectChunks(live(2), { ...opts, timeoutMs: 200 }));
    expect(e.code).toBe('timeout');
    expect(e.message).toMatch(/not complete after 200 ms \(1 missing\)/);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('downloadModel and redirects', () => {
  it('does not follow a redirect, naming it', async () => {
    const error = await downloadFailure(
      downloadModel(`${server.url}/moved`, { maxBytes: 1e6, timeoutMs: 5_000 }),
    );
    expect(error.message).toBe(`${server.url}/moved: HTTP 302 redirect, which is not followed`);
  });
});
