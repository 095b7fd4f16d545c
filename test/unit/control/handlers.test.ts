import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../../runtime/config/index.ts';
import type { RequestContext } from '../../../runtime/control/api.ts';
import { createHandlers } from '../../../runtime/control/handlers/index.ts';
import type { ModelManifest } from '../../../runtime/models/manifest.ts';
import type { Awaitable } from '../../../runtime/types.ts';
import {
  defaultConfig,
  fakePorts,
  healthReport,
  JPEG,
  makeSigningKey,
  modelStatus,
  PNG,
} from '../../helpers/control-fakes.ts';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-control-'));
  file = join(dir, 'config.yaml');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function context(): RequestContext & { after: (() => Awaitable<void>)[] } {
  const after: (() => Awaitable<void>)[] = [];
  return {
    scope: 'device',
    after,
    afterResponse: (fn) => after.push(fn),
    signal: new AbortController().signal,
  };
}

const secretConfig = () =>
  defaultConfig({
    mqtt: { url: 'mqtts://broker:8883', username: 'cam', password: 'hunter2' },
    cameras: [
      { ...defaultConfig().cameras[0], source: { kind: 'rtsp', url: 'rtsp://admin:pw@10.0.0.5/stream' } },
    ],
  });

function setup(config = secretConfig()) {
  const text = `# hand-written, with a comment\n${stringify(config)}`;
  writeFileSync(file, text, { mode: 0o640 });
  const ports = fakePorts(file, config);
  return { ports, handlers: createHandlers(ports), text };
}

describe('config/get', () => {
  it('returns the current configuration with secrets redacted', async () => {
    const { handlers, ports } = setup();
    const { config } = await handlers['config/get']({}, context());
    expect(config.mqtt.password).toBe('***');
    expect(config.cameras[0].source).toEqual({ kind: 'rtsp', url: 'rtsp://admin:***@10.0.0.5/stream' });
    expect(config.recognition).toEqual(ports.config.current().recognition);
    expect(ports.config.current().mqtt.password).toBe('hunter2');
  });
});

describe('config/set', () => {
  it('persists a valid change atomically, applies it, and reports what needs a restart', async () => {
    const { handlers, ports } = setup();
    const result = await handlers['config/set'](
      { config: { detection: { minScore: 0.6 }, models: { threads: 2 } } },
      context(),
    );
    expect(result).toEqual({ applied: ['detection.minScore'], restart_required: ['models.threads'] });
    const saved = loadConfig({ file, env: {} });
    expect(saved.detection.minScore).toBe(0.6);
    expect(saved.models.threads).toBe(2);
    expect(saved.mqtt.password).toBe('hunter2');
    expect(saved).toEqual(ports.config.current());
    // Written through a temp file and a rename: nothing else is left, and the file keeps its mode.
    expect(readdirSync(dir)).toEqual(['config.yaml']);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(ports.applied).toHaveLength(1);
    expect(ports.applied[0].changes).toEqual({
      live: ['detection.minScore'],
      restartRequired: ['models.threads'],
    });
    expect(ports.applied[0].config).toEqual(saved);
  });

  it('answers restart_required for the offline queue, mqtt.qos and logging', async () => {
    const { handlers, ports } = setup();
    const result = await handlers['config/set'](
      {
        config: {
          offlineQueue: { maxEvents: 50, whenFull: 'drop-newest' },
          mqtt: { qos: 0 },
          logging: { level: 'debug' },
          recognition: { k: 2 },
        },
      },
      context(),
    );
    expect(result.applied).toEqual(['recognition.k']);
    expect(result.restart_required.sort()).toEqual(
      ['logging.level', 'mqtt.qos', 'offlineQueue.maxEvents', 'offlineQueue.whenFull'].sort(),
    );
    expect(loadConfig({ file, env: {} }).offlineQueue.maxEvents).toBe(50);
    expect(ports.applied[0].changes.live).toEqual(['recognition.k']);
  });

  it('merges each change over the one before, restart-required ones included', async () => {
    const { handlers } = setup();
    await handlers['config/set']({ config: { models: { threads: 2 } } }, context());
    await handlers['config/set']({ config: { recognition: { k: 2 } } }, context());
    const saved = loadConfig({ file, env: {} });
    expect([saved.models.threads, saved.recognition.k]).toEqual([2, 2]);
  });

  it.each([
    [{ recognition: { k: 0 } }, 'invalid configuration: recognition.k: must be >= 1 (got 0)'],
    [{ detection: { minScroe: 0.5 } }, "detection.minScroe: unknown field (did you mean 'minScore'?)"],
    [
      { control: { requireSignedCommands: true, operatorKeysFile: null } },
      'control.commandPublicKeys: must list at least one key',
    ],
    // The four settings an attacker changed in the review that filed issue 9, and paths.
    [
      { models: { update: { allowUnsigned: true } } },
      'models.update.allowUnsigned decides who is trusted and cannot be changed by a remote command',
    ],
    [
      { control: { requireSignedCommands: true, commandPublicKeys: [makeSigningKey().publicPem] } },
      'control.requireSignedCommands decides who is trusted and cannot be changed by a remote command; change it in the configuration file on the device; control.commandPublicKeys decides who is trusted',
    ],
    [{ mqtt: { url: 'mqtt://attacker.example' } }, 'mqtt.url decides who is trusted'],
    [
      { gallery: { path: '/etc/passwd' } },
      'gallery.path is a file path and cannot be changed by a remote command',
    ],
    [{ dataDir: '/' }, 'dataDir is a file path'],
    [{ mqtt: { password: '***' } }, "mqtt.password: '***' is the redaction placeholder from config/get"],
  ])('refuses %j and leaves the file byte-identical', async (patch, error) => {
    const { handlers, ports, text } = setup();
    await expect(handlers['config/set']({ config: patch }, context())).rejects.toThrow(error);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(dir)).toEqual(['config.yaml']);
    expect(ports.applied).toEqual([]);
  });

  it('refuses pointing a camera at a new file, and allows removing one', async () => {
    const { handlers, text } = setup();
    const { config } = await handlers['config/get']({}, context());
    const moved = config.cameras.map((c) => ({ ...c, source: { kind: 'video', path: '/etc/shadow' } }));
    await expect(handlers['config/set']({ config: { cameras: moved } }, context())).rejects.toThrow(
      'cameras[*].source.path is a file path and cannot be changed by a remote command',
    );
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('refuses redacted URL credentials sent back inside a replaced array', async () => {
    const { handlers, text } = setup();
    const { config } = await handlers['config/get']({}, context());
    const cameras = config.cameras.map((camera) => ({ ...camera, fps: 5 }));
    await expect(handlers['config/set']({ config: { cameras } }, context())).rejects.toThrow(
      "cameras[0].source.url: '***' is the redaction placeholder",
    );
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('does not rewrite the file when nothing changes', async () => {
    const { handlers, ports, text } = setup();
    const result = await handlers['config/set']({ config: { detection: { minScore: 0.75 } } }, context());
    expect(result).toEqual({ applied: [], restart_required: [] });
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(ports.applied).toEqual([]);
  });
});

describe('config/set with settings from FACEGATE_* variables', () => {
  const env = { FACEGATE_MQTT__PASSWORD: 'env-secret-Zx9', FACEGATE_MQTT__BASE_TOPIC: 'site1/facegate' };

  function setupWithEnv(yaml: string) {
    writeFileSync(file, yaml, { mode: 0o600 });
    const ports = fakePorts(file, loadConfig({ file, env }));
    return { ports, handlers: createHandlers(ports) };
  }

  it('never writes a password from the environment to the file; the running config keeps it', async () => {
    const { ports, handlers } = setupWithEnv('mqtt:\n  url: mqtts://broker:8883\n  username: cam\n');
    expect(await handlers['config/set']({ config: { recognition: { k: 2 } } }, context())).toEqual({
      applied: ['recognition.k'],
      restart_required: [],
    });
    await handlers['config/set']({ config: { detection: { minScore: 0.6 } } }, context());
    expect(readFileSync(file, 'utf8')).not.toContain('env-secret-Zx9');
    const saved = loadConfig({ file, env: {} });
    expect(saved.mqtt.password).toBeUndefined();
    expect(saved.mqtt.baseTopic).toBe('facegate');
    expect([saved.recognition.k, saved.detection.minScore]).toEqual([2, 0.6]);
    expect(ports.config.current().mqtt).toMatchObject({
      password: 'env-secret-Zx9',
      baseTopic: 'site1/facegate',
    });
    // At the next start the same environment gives back exactly the running config.
    expect(loadConfig({ file, env })).toEqual(ports.config.current());
  });

  it("keeps the file's own value of a setting the environment overrides", async () => {
    const { handlers } = setupWithEnv('mqtt:\n  url: mqtts://broker:8883\n  password: file-pw\n');
    await handlers['config/set']({ config: { recognition: { k: 2 } } }, context());
    expect(loadConfig({ file, env: {} }).mqtt.password).toBe('file-pw');
    expect(readFileSync(file, 'utf8')).not.toContain('env-secret-Zx9');
  });

  it('refuses to change a setting the environment sets, and changes nothing', async () => {
    const { ports, handlers } = setupWithEnv('mqtt:\n  url: mqtts://broker:8883\n');
    const text = readFileSync(file, 'utf8');
    await expect(
      handlers['config/set']({ config: { mqtt: { password: 'new' }, recognition: { k: 2 } } }, context()),
    ).rejects.toThrow(
      'mqtt.password (FACEGATE_MQTT__PASSWORD): set by the environment, which overrides the configuration file at every start; change the environment instead',
    );
    await expect(handlers['config/set']({ config: { mqtt: null } }, context())).rejects.toThrow(
      'mqtt.baseTopic (FACEGATE_MQTT__BASE_TOPIC), mqtt.password (FACEGATE_MQTT__PASSWORD): set by the environment',
    );
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(ports.applied).toEqual([]);
  });
});

describe('face/*', () => {
  it('enrols the decoded images and lists and removes people', async () => {
    const { handlers, ports } = setup();
    const enrolled = await handlers['face/enroll'](
      { name: 'alice', images: [JPEG.toString('base64'), PNG.toString('base64')] },
      context(),
    );
    expect(enrolled).toEqual({ name: 'alice', added: 2 });
    expect(ports.faces.get('alice')).toEqual([JPEG, PNG]);
    expect(await handlers['face/list']({}, context())).toEqual({
      faces: [
        { name: 'alice', embeddings: 2, models: ['facerec@1.0.0'], createdAt: '2024-05-01T12:00:00.000Z' },
      ],
    });
    expect(await handlers['face/remove']({ name: 'alice' }, context())).toEqual({
      name: 'alice',
      removed: true,
    });
    expect(await handlers['face/remove']({ name: 'alice' }, context())).toEqual({
      name: 'alice',
      removed: false,
    });
  });

  const jpeg = JPEG.toString('base64');
  it.each([
    [
      'characters outside the alphabet',
      `${jpeg.slice(0, 4)}!${jpeg.slice(5)}`,
      'images[1] is not valid base64',
    ],
    ['whitespace', `${jpeg.slice(0, 4)}\n${jpeg.slice(4)}`, 'images[1] is not valid base64'],
    [
      'base64url',
      Buffer.from([0xff, 0xd8, 0xff, 0xfb, 0xef]).toString('base64url'),
      'images[1] is not valid base64',
    ],
    ['missing padding', jpeg.replace(/=+$/, ''), 'images[1] is not valid base64'],
    ['non-zero padding bits', '/9j/4B==', 'images[1] is not valid base64'],
    ['a data URL', `data:image/jpeg;base64,${jpeg}`, 'images[1] is not valid base64'],
    [
      'something else than an image',
      Buffer.from('GIF89a....').toString('base64'),
      'images[1] is neither a JPEG nor a PNG',
    ],
    ['an empty string', '', 'images[1] is neither a JPEG nor a PNG'],
  ])('refuses an image with %s, enrolling nothing', async (_what, image, error) => {
    const { handlers, ports } = setup();
    await expect(handlers['face/enroll']({ name: 'bob', images: [jpeg, image] }, context())).rejects.toThrow(
      error,
    );
    expect(ports.faces.size).toBe(0);
  });
});

describe('model/*', () => {
  it('goes through the model port', async () => {
    const { handlers, ports } = setup();
    expect(
      await handlers['model/update'](
        { manifestUrl: 'https://models.example/m.json', transaction: 1 },
        context(),
      ),
    ).toEqual({ updated: true, status: modelStatus });
    expect(await handlers['model/update']({}, context())).toMatchObject({ updated: true });
    expect(ports.modelUpdates).toEqual([{ manifestUrl: 'https://models.example/m.json' }, {}]);
    const manifest = { name: 'facerec', version: '1.0.1' } as ModelManifest;
    const transfer = { id: 'xfer-1', total: 2 };
    await handlers['model/update']({ manifest, transfer, transaction: 2 }, context());
    expect(ports.modelUpdates.at(-1)).toEqual({ manifest, transfer });
    expect(() =>
      handlers['model/update']({ manifest, transfer, manifestUrl: 'https://m.example/m.json' }, context()),
    ).toThrow('give either manifestUrl, or manifest with transfer (the model in chunks); not both');
    expect(
      await handlers['model/chunk'](
        { id: 'xfer-1', index: 1, total: 2, data: 'AAAA', transaction: 3 },
        context(),
      ),
    ).toEqual({ id: 'xfer-1', index: 1, received: 1, total: 2, duplicate: false });
    expect(ports.chunks).toEqual([{ id: 'xfer-1', index: 1, total: 2, data: 'AAAA' }]);
    expect(await handlers['model/rollback']({}, context())).toEqual(modelStatus);
    expect(await handlers['model/status']({}, context())).toEqual(modelStatus);
  });
});

describe('health, snapshot, restart', () => {
  it('reports health from the injected snapshot function', async () => {
    const { handlers } = setup();
    expect(await handlers.health({}, context())).toEqual(healthReport);
  });

  it('returns a snapshot as base64, or publishes it on the snapshot topic', async () => {
    const { handlers, ports } = setup();
    expect(await handlers.snapshot({}, context())).toEqual({
      camera: 'door',
      bytes: JPEG.length,
      image: JPEG.toString('base64'),
    });
    expect(await handlers.snapshot({ camera: 'yard', publish: true }, context())).toEqual({
      camera: 'yard',
      bytes: JPEG.length,
      published: true,
    });
    expect(ports.snapshotsPublished).toEqual([JPEG]);
  });

  it('restarts only from the after-response hook', async () => {
    const { handlers, ports } = setup();
    const ctx = context();
    expect(await handlers.restart({}, ctx)).toEqual({ restarting: true });
    expect(ports.restarts).toBe(0);
    for (const fn of ctx.after) await fn();
    expect(ports.restarts).toBe(1);
  });
});
