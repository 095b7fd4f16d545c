import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Config, loadConfig, mergeConfig, validateConfig } from '../../../runtime/config/index.ts';

const RSA_KEY = generateKeyPairSync('rsa', { modulusLength: 1024 })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();
const PRIVATE_KEY = generateKeyPairSync('ed25519')
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

const base = loadConfig({ env: {} });

/** Errors validateConfig reports for the defaults with `patch` merged in. */
function errorsFor(patch: unknown): string[] {
  const result = validateConfig(mergeConfig(base, patch));
  return result.ok ? [] : result.errors;
}

const camera = (source: unknown, extra: object = {}) => ({
  cameras: [{ ...base.cameras[0], source, ...extra }],
});

describe('validateConfig', () => {
  it('returns the config when valid', () => {
    expect(validateConfig(base)).toEqual({ ok: true, config: base });
  });

  it.each<[string, unknown, string]>([
    [
      'unknown field',
      { mqtt: { baseTopc: 'x' } },
      "mqtt.baseTopc: unknown field (did you mean 'baseTopic'?)",
    ],
    ['unknown section', { loging: { level: 'info' } }, "loging: unknown field (did you mean 'logging'?)"],
    ['wrong type', { detection: { maxFaces: '5' } }, "detection.maxFaces: must be integer (got '5')"],
    ['fraction for an integer', { models: { threads: 2.5 } }, 'models.threads: must be integer (got 2.5)'],
    [
      'out of range',
      camera(base.cameras[0].source, { fps: 240 }),
      'cameras[0].fps: must be <= 120 (got 240)',
    ],
    ['zero fps', camera(base.cameras[0].source, { fps: 0 }), 'cameras[0].fps: must be > 0 (got 0)'],
    [
      'bad enum',
      { models: { engine: 'tensorrt' } },
      "models.engine: must be one of 'ort', 'kernels' (got 'tensorrt')",
    ],
    ['targetFar not a rate', { recognition: { targetFar: 1 } }, 'recognition.targetFar: must be < 1 (got 1)'],
    [
      'bad device id',
      { device: { id: 'front/door' } },
      "device.id: must be 1-64 letters, digits, '_' or '-' (got 'front/door')",
    ],
    ['over-long device id', { device: { id: 'x'.repeat(65) } }, 'device.id: must be 1-64 letters'],
    ['missing required field', { device: { name: null } }, 'device.name: required'],
    ['missing url for rtsp', camera({ kind: 'rtsp' }), "cameras[0].source.url: required for kind 'rtsp'"],
    [
      'missing path for video',
      camera({ kind: 'video' }),
      "cameras[0].source.path: required for kind 'video'",
    ],
    [
      'missing device for v4l2',
      camera({ kind: 'v4l2' }),
      "cameras[0].source.device: required for kind 'v4l2'",
    ],
    [
      'field of another kind',
      camera({ kind: 'rpicam', path: 'x' }),
      "cameras[0].source.path: not allowed for kind 'rpicam'",
    ],
    [
      'realtime on a live camera',
      camera({ kind: 'rtsp', url: 'rtsp://cam', realtime: false }),
      "cameras[0].source.realtime: not allowed for kind 'rtsp'",
    ],
    [
      'zero restart delay',
      camera(base.cameras[0].source, { restart: { ...base.cameras[0].restart, initialDelayMs: 0 } }),
      'cameras[0].restart.initialDelayMs: must be >= 1 (got 0)',
    ],
    [
      'http url for rtsp',
      camera({ kind: 'rtsp', url: 'http://cam' }),
      'cameras[0].source.url: must match pattern "^rtsps?://"',
    ],
    ['unknown kind', camera({ kind: 'usb' }), "cameras[0].source.kind: must be one of 'images', 'video'"],
    ['no cameras', { cameras: [] }, 'cameras: must NOT have fewer than 1 items'],
    ['wildcard in topic', { mqtt: { baseTopic: 'face/#' } }, 'mqtt.baseTopic: must be MQTT topic levels'],
    [
      'trailing slash in topic',
      { mqtt: { baseTopic: 'face/' } },
      'mqtt.baseTopic: must be MQTT topic levels',
    ],
    ['broker url scheme', { mqtt: { url: 'http://broker' } }, 'mqtt.url: must match pattern'],
    [
      'bad cron',
      { schedules: { galleryBackup: '0 25 * * *' } },
      'schedules.galleryBackup: must be a cron expression',
    ],
    [
      'unknown command',
      { control: { allow: ['health', 'shell'] } },
      "control.allow[1]: must be one of 'config/get'",
    ],
    [
      'duplicate command',
      { control: { allow: ['health', 'health'] } },
      'control.allow: must NOT have duplicate items',
    ],
    [
      'not a PEM key',
      { models: { update: { publicKeys: ['abc'] } } },
      "models.update.publicKeys[0]: must be a PEM public key (-----BEGIN PUBLIC KEY----- ...) (got 'abc')",
    ],
  ])('reports %s', (_, patch, expected) => {
    // Joined so a failure shows every reported error.
    expect(`\n${errorsFor(patch).join('\n')}`).toContain(`\n${expected}`);
  });

  it('reports every problem at once', () => {
    expect(errorsFor({ detection: { maxFaces: 0, minScore: 3 }, logging: { level: 'x' } })).toHaveLength(3);
  });

  it('never echoes a secret value', () => {
    expect(errorsFor({ mqtt: { password: 12345 } })).toEqual(['mqtt.password: must be string']);
  });

  it('rejects a document that is not an object', () => {
    expect(validateConfig('x')).toEqual({ ok: false, errors: ["(root): must be object (got 'x')"] });
    expect(validateConfig(null)).toMatchObject({ ok: false });
  });

  it.each<[string, unknown, string]>([
    ['k above n', { recognition: { k: 6, n: 5 } }, 'recognition.k: must be <= recognition.n (5)'],
    [
      "k above a camera's n",
      { cameras: [{ ...base.cameras[0], overrides: { recognition: { n: 2 } } }] },
      'cameras[0].overrides.recognition.n: k (3) must be <= n (2) once merged over recognition',
    ],
    [
      'a web page on a public address without a password',
      { web: { enabled: true, host: '0.0.0.0' } },
      'web.password: web.password or web.token is required when web.host (0.0.0.0) is not a loopback address',
    ],
    [
      'a region of interest beyond the frame',
      { cameras: [{ ...base.cameras[0], roi: { x: 0.5, y: 0, width: 0.6, height: 1 } }] },
      'cameras[0].roi: must lie within the frame (x + width <= 1, y + height <= 1)',
    ],
    [
      'duplicate camera ids',
      { cameras: [base.cameras[0], base.cameras[0]] },
      "cameras[1].id: duplicate camera id 'door'",
    ],
    [
      'backoff cap below its start',
      camera(base.cameras[0].source, {
        restart: { initialDelayMs: 5000, maxDelayMs: 1000, stallTimeoutMs: 1000, healthyAfterMs: 0 },
      }),
      'cameras[0].restart.maxDelayMs: must be >= initialDelayMs (5000)',
    ],
    [
      'signed commands without keys',
      { control: { requireSignedCommands: true, operatorKeysFile: null } },
      'control.commandPublicKeys: must list at least one key when requireSignedCommands is true and there is no operatorKeysFile',
    ],
    [
      'an RSA command key',
      { control: { commandPublicKeys: [RSA_KEY] } },
      'control.commandPublicKeys[0]: is an rsa key, not ed25519',
    ],
    [
      'a command key that is no key',
      {
        control: {
          commandPublicKeys: ['-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n'],
        },
      },
      'control.commandPublicKeys[0]: is not a PEM public key (error:0680009B:asn1 encoding routines::too long)',
    ],
    [
      'a private key where the public one belongs',
      { models: { update: { publicKeys: [PRIVATE_KEY] } } },
      'models.update.publicKeys[0]: must be a PEM public key (-----BEGIN PUBLIC KEY----- ...) (got a private key)',
    ],
    [
      'the in-process broker on the network without credentials',
      { mqtt: { inProcessBrokerHost: '0.0.0.0' } },
      'mqtt.inProcessBrokerHost: 0.0.0.0 is reachable from the network: set mqtt.username and mqtt.password (the broker then demands them) or listen on 127.0.0.1',
    ],
    [
      'update checks without a manifest',
      { schedules: { modelUpdateCheck: '0 4 * * *' } },
      'models.update.manifestUrl: required when schedules.modelUpdateCheck is set',
    ],
    [
      'client cert without key',
      { mqtt: { tls: { cert: 'c.pem' } } },
      'mqtt.tls.key: cert and key go together',
    ],
    [
      'jetson-csi width not a multiple of 4',
      camera({ kind: 'jetson-csi' }, { width: 1282 }),
      "cameras[0].width: must be a multiple of 4 for kind 'jetson-csi'",
    ],
    [
      'the reserved device id',
      { device: { id: 'all' } },
      "device.id: 'all' is reserved: it addresses every device at once",
    ],
  ])('enforces the cross-field rule: %s', (_, patch, expected) => {
    expect(errorsFor(patch)).toEqual([expected]);
  });

  it('lets config/set reject a bad change without touching the current config', () => {
    const current: Config = structuredClone(base);
    const result = validateConfig(mergeConfig(current, { recognition: { k: 'many' } }));
    expect(result.ok).toBe(false);
    expect(current).toEqual(base);
  });
});
