// Seeded generator of hostile control requests: the same seed gives the same requests, so a failure is
// reproduced by its seed and case number. Each case is a request name (sometimes not a real one) and raw
// payload bytes; most are built to be wrong in exactly one way, the rest are noise.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { seededRandom } from '../../../runtime/util/random.ts';

export interface FuzzCase {
  /** The topic suffix after request/: a command, or something that is not one. */
  command: string;
  payload: Buffer;
  /** What the generator did, for failure messages. */
  kind: string;
}

type Random = () => number;

const COMMANDS = [
  'config/get',
  'config/set',
  'face/enroll',
  'face/remove',
  'face/list',
  'model/update',
  'model/chunk',
  'model/rollback',
  'model/status',
  'snapshot',
  'health',
  'restart',
];

/** A valid-looking body per command: the starting point for mutations. */
function seedBody(command: string, images: Images): Record<string, unknown> {
  switch (command) {
    case 'config/set':
      return { config: { recognition: { threshold: 0.5 } } };
    case 'face/enroll':
      return { name: 'mallory', images: [images.face] };
    case 'face/remove':
      return { name: 'lin' };
    case 'model/update':
      return {
        manifest: { schemaVersion: 1, name: 'facerec', version: '9.9.9', file: 'facerec.int8.onnx' },
        transfer: { id: 't1', total: 2 },
      };
    case 'model/chunk':
      return { id: 't1', index: 0, total: 2, data: Buffer.from('chunk').toString('base64') };
    case 'snapshot':
      return { camera: 'door', publish: false };
    default:
      return {};
  }
}

const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Random, n: number) => Math.floor(r() * n);

function hostileString(r: Random): string {
  return pick(r, [
    '',
    '..',
    '../../etc/passwd',
    '+',
    '#',
    'a/+/#',
    '\u0000',
    '\u202e\u0000evil',
    'x'.repeat(70_000),
    '\ud800',
    ' lin ',
    '%00',
    '$\u007Bjndi:ldap://x}',
    'A'.repeat(65),
    'Robert"); DROP TABLE people;--',
    '🙂'.repeat(40),
  ]);
}

function hostileValue(r: Random, depth = 0): unknown {
  switch (int(r, 10)) {
    case 0:
      return hostileString(r);
    case 1:
      return pick(r, [0, -1, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, 0.5, 2 ** 31]);
    case 2:
      return pick(r, [null, true, false]);
    case 3:
      return depth > 3 ? [] : Array.from({ length: int(r, 4) }, () => hostileValue(r, depth + 1));
    case 4:
      return depth > 3 ? {} : { [hostileString(r).slice(0, 20)]: hostileValue(r, depth + 1) };
    case 5:
      return JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    case 6:
      return Array.from({ length: 10_000 }, () => 1);
    default:
      return pick(r, ['lin', 'door', 'x', '1.0.0', 'AAAA']);
  }
}

function deepNest(levels: number): string {
  return `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
}

interface Images {
  face: string;
  bomb: string;
  garbage: string[];
}

/** A real enrolment-sized face, a PNG that inflates to gigapixels, and images that lie about themselves. */
export async function hostileImages(facePng: Buffer): Promise<Images> {
  const face = (await sharp(facePng).resize(160).jpeg().toBuffer()).toString('base64');
  // 30000 x 30000 greyscale: 900 MB decoded from a few hundred KB of zeros.
  const side = 30_000;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const row = Buffer.alloc(side + 1);
  const idat = deflateSync(Buffer.concat(Array.from({ length: 2000 }, () => row)), { level: 9 });
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  const jpegHeaderOnly = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1]);
  return {
    face,
    bomb: png.toString('base64'),
    garbage: [
      jpegHeaderOnly.toString('base64'),
      Buffer.from(face, 'base64').subarray(0, 300).toString('base64'),
      'not base64 at all!!',
      Buffer.alloc(5000).toString('base64'),
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64'),
    ],
  };
}

function mutateBody(r: Random, command: string, images: Images): { body: unknown; kind: string } {
  const body: Record<string, unknown> = structuredClone(seedBody(command, images));
  const keys = Object.keys(body);
  switch (int(r, 9)) {
    case 0: {
      if (keys.length === 0) return { body: { unexpected: hostileValue(r) }, kind: 'extra key' };
      body[pick(r, keys)] = hostileValue(r);
      return { body, kind: 'wrong type or value' };
    }
    case 1:
      body[hostileString(r).slice(0, 30) || 'extra'] = hostileValue(r);
      return { body, kind: 'unknown key' };
    case 2:
      if (keys.length > 0) delete body[pick(r, keys)];
      else body.transaction = hostileValue(r);
      return { body, kind: 'missing key or bad transaction' };
    case 3:
      return {
        body: { ...body, name: pick(r, ['..', '../x', '+', '#', 'a/b', '*', '%', '']) },
        kind: 'hostile name',
      };
    case 4:
      return {
        body: { ...body, images: [pick(r, [images.bomb, ...images.garbage])] },
        kind: 'hostile image',
      };
    case 5:
      return {
        body: {
          ...body,
          manifest: {
            ...(body.manifest as object),
            file: pick(r, ['../x.onnx', '/etc/passwd', 'a/b.onnx']),
            bytes: -1,
            sha256: 'zz',
          },
          transfer: { id: pick(r, ['..', 't/1', 'x'.repeat(65)]), total: pick(r, [0, 1e9, -1, 1.5]) },
        },
        kind: 'hostile manifest',
      };
    case 6:
      return {
        body: {
          ...body,
          signature: { keyId: hostileValue(r), timestamp: hostileValue(r), nonce: 'n', value: 'AAAA' },
        },
        kind: 'forged signature',
      };
    case 7:
      return {
        body: {
          ...body,
          config: { [hostileString(r).slice(0, 20) || 'x']: hostileValue(r), mqtt: { url: 'file:///etc' } },
        },
        kind: 'hostile config patch',
      };
    default:
      return { body: hostileValue(r), kind: 'not an object' };
  }
}

function rawPayload(r: Random): { payload: Buffer; kind: string } {
  switch (int(r, 6)) {
    case 0:
      return {
        payload: Buffer.from(Array.from({ length: int(r, 2000) }, () => int(r, 256))),
        kind: 'binary',
      };
    case 1:
      return { payload: Buffer.from(deepNest(1000 + int(r, 100_000))), kind: 'deep nesting' };
    case 2:
      return { payload: Buffer.from('{"name": "lin"'), kind: 'truncated JSON' };
    case 3:
      return {
        payload: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
        kind: 'invalid UTF-8',
      };
    case 4:
      return { payload: Buffer.alloc(1_100_000, 0x20), kind: 'oversized' };
    default:
      return { payload: Buffer.from(`[${'1,'.repeat(200_000)}1]`), kind: 'huge array' };
  }
}

function commandName(r: Random): string {
  if (r() < 0.9) return pick(r, COMMANDS);
  return pick(r, [
    'face/../config/set',
    'config/set/..',
    'nope',
    'face',
    'model/chunk/extra',
    '..',
    'health/x',
    'FACE/ENROLL',
  ]);
}

/** `count` requests from `seed`; chunk floods come as runs of model/chunk cases. */
export function* fuzzCases(seed: number, count: number, images: Images): Generator<FuzzCase> {
  const r = seededRandom(seed);
  let made = 0;
  while (made < count) {
    if (r() < 0.005) {
      // A chunk flood: chunks of a transfer nobody announced, or out of range.
      const id = pick(r, ['t1', 'flood', '..']);
      for (let i = 0; i < 20 && made < count; i++, made++) {
        const chunk = {
          id,
          index: int(r, 3) === 0 ? -1 : i,
          total: 50,
          data: Buffer.alloc(int(r, 4000)).toString('base64'),
        };
        yield { command: 'model/chunk', payload: Buffer.from(JSON.stringify(chunk)), kind: 'chunk flood' };
      }
      continue;
    }
    const command = commandName(r);
    made++;
    if (r() < 0.15) {
      const { payload, kind } = rawPayload(r);
      yield { command, payload, kind };
    } else {
      const { body, kind } = mutateBody(r, command, images);
      yield { command, payload: Buffer.from(JSON.stringify(body) ?? 'null'), kind };
    }
  }
}
