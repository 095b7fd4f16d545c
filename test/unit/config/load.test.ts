import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  envOverrides,
  envOverridesTouchedBy,
  listBoards,
  loadConfig,
  mergeConfig,
  validateConfig,
  withoutEnvOverrides,
} from '../../../runtime/config/index.ts';
import { DOOR_CLIP, REPO_ROOT } from '../../helpers/paths.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function userFile(yaml: string): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** The ConfigError message loadConfig throws for these options. */
function loadError(options: Parameters<typeof loadConfig>[0]): string {
  try {
    loadConfig(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('loadConfig accepted the configuration');
}

describe('loadConfig defaults and board profiles', () => {
  it('loads the demo defaults with an empty environment', () => {
    const config = loadConfig({ env: {} });
    expect(config.cameras).toEqual([
      {
        id: 'door',
        source: { kind: 'video', path: DOOR_CLIP, loop: true, realtime: true },
        width: 640,
        height: 360,
        fps: 15,
        restart: { initialDelayMs: 1000, maxDelayMs: 30000, stallTimeoutMs: 10000, healthyAfterMs: 30000 },
      },
    ]);
    expect(config.mqtt.url).toBeUndefined();
    expect(config.models).toMatchObject({
      dir: join(REPO_ROOT, 'models'),
      engine: 'kernels',
      precision: 'int8',
    });
  });

  it("resolves the bundled layers' relative paths against the package root, a user file's against the working directory", () => {
    const file = join(dir, 'mine.yaml');
    writeFileSync(file, 'gallery:\n  path: mine/gallery.db\n');
    const config = loadConfig({ file, board: 'rpi4', env: {} });
    // Kept as written: the process resolves it against its working directory.
    expect(config.gallery.path).toBe('mine/gallery.db');
    expect(config.gallery.seedDir).toBe(join(REPO_ROOT, 'assets', 'demo', 'people'));
    expect(config.offlineQueue.path).toBe(join(REPO_ROOT, 'var', 'offline-queue'));
  });

  it('ships the five board profiles', () => {
    expect(listBoards()).toEqual(['jetson-nano', 'jetson-orin', 'rpi4', 'rpi5', 'x86']);
  });

  it.each([
    ['rpi4', 'rpicam', 'kernels'],
    ['rpi5', 'rpicam', 'kernels'],
    ['jetson-nano', 'jetson-csi', 'kernels'],
    ['jetson-orin', 'jetson-csi', 'kernels'],
    ['x86', 'v4l2', 'kernels'],
  ])('merges board %s over the defaults into a valid config', (board, kind, engine) => {
    const config = loadConfig({ board, env: {} });
    expect(validateConfig(config).ok).toBe(true);
    expect(config.cameras).toHaveLength(1);
    expect(config.cameras[0].source.kind).toBe(kind);
    expect(config.models.engine).toBe(engine);
    // Untouched sections still come from the defaults.
    expect(config.models.precision).toBe('int8');
    expect(config.recognition.targetFar).toBe(0.001);
  });

  it('rejects an unknown board, listing the known ones', () => {
    expect(loadError({ board: '../default', env: {} })).toMatch(
      /Unknown board '\.\.\/default' \(available: jetson-nano,/,
    );
  });
});

describe('loadConfig layering', () => {
  it('merges the user file over board and defaults: objects merge, arrays replace, null removes', () => {
    const file = userFile(`
device: { id: hall }
control:
  allow: [health]
mqtt:
  url: mqtt://broker:1883
schedules:
  heartbeat: null
`);
    const config = loadConfig({ file, board: 'rpi5', env: {} });
    expect(config.device).toEqual({ id: 'hall', name: 'Demo door' });
    expect(config.control.allow).toEqual(['health']);
    expect(config.mqtt.url).toBe('mqtt://broker:1883');
    expect(config.schedules.heartbeat).toBeUndefined();
    expect(config.cameras[0].source.kind).toBe('rpicam');
  });

  it('treats an empty user file as no overrides', () => {
    expect(loadConfig({ file: userFile(''), env: {} })).toEqual(loadConfig({ env: {} }));
  });

  it('names the file that could not be read', () => {
    expect(loadError({ file: join(dir, 'missing.yaml'), env: {} })).toMatch(
      /missing\.yaml: cannot read config file: ENOENT/,
    );
  });

  it('reports YAML syntax errors with the file name and position', () => {
    const file = userFile('mqtt:\n  url: [unclosed\nlogging: {level: info}\n');
    const message = loadError({ file, env: {} });
    expect(message).toContain(`${file}: invalid YAML`);
    expect(message).toMatch(/line \d+, column \d+/);
  });

  it('rejects duplicate keys and a non-mapping document', () => {
    expect(
      loadError({ file: userFile('logging: {level: info}\nlogging: {level: debug}\n'), env: {} }),
    ).toMatch(/invalid YAML[\s\S]*unique/);
    expect(loadError({ file: userFile('- a\n- b\n'), env: {} })).toContain('the top level must be a mapping');
  });

  it('names each problem with its path, reason and the file that set it', () => {
    const file = userFile(`
mqtt:
  baseTopc: facegate
cameras:
  - id: door
    source: { kind: rtsp }
    width: 640
    height: 480
    fps: 240
    restart: { initialDelayMs: 1000, maxDelayMs: 30000, stallTimeoutMs: 10000, healthyAfterMs: 30000 }
`);
    const message = loadError({ file, board: 'rpi4', env: {} });
    expect(message).toMatch(
      /^Invalid configuration \(configs\/default\.yaml <- configs\/boards\/rpi4\.yaml <- /,
    );
    expect(message).toContain(`  mqtt.baseTopc: unknown field (did you mean 'baseTopic'?) (from ${file})`);
    expect(message).toContain(`  cameras[0].fps: must be <= 120 (got 240) (from ${file})`);
    expect(message).toContain(`  cameras[0].source.url: required for kind 'rtsp' (from ${file})`);
  });

  it('blames the layer whose list replaced the defaults for a field missing inside it', () => {
    const file = userFile(`
cameras:
  - id: door
    source: { kind: v4l2, device: /dev/video0 }
    width: 640
    height: 480
    restart: { initialDelayMs: 1000, maxDelayMs: 30000, stallTimeoutMs: 10000, healthyAfterMs: 30000 }
`);
    expect(loadError({ file, env: {} })).toContain(`  cameras[0].fps: required (from ${file})`);
  });

  it('attributes a bad value to the layer that set it', () => {
    const file = userFile('detection: { maxFaces: 3 }\n');
    const message = loadError({ file, env: { FACEGATE_DETECTION__MIN_SCORE: '2' } });
    expect(message).toContain(
      'detection.minScore: must be <= 1 (got 2) (from environment FACEGATE_DETECTION__MIN_SCORE)',
    );
    expect(message).not.toContain('maxFaces');
  });

  it('exposes the bare problems on the error', () => {
    try {
      loadConfig({ env: { FACEGATE_LOGGING__LEVEL: 'loud' } });
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).errors).toEqual([
        "logging.level: must be one of 'silent', 'error', 'warn', 'info', 'debug' (got 'loud')",
      ]);
    }
  });
});

describe('loadConfig environment overrides', () => {
  it('sets nested fields, parsing numbers and booleans', () => {
    const config = loadConfig({
      env: {
        FACEGATE_MQTT__URL: 'mqtt://host',
        FACEGATE_RECOGNITION__K: '2',
        FACEGATE_RECOGNITION__TARGET_FAR: '0.01',
        FACEGATE_MQTT__SNAPSHOTS: 'true',
        FACEGATE_PRESENTATION_ATTACK__ENABLED: 'true',
        FACEGATE_DATA_DIR: '/var/lib/facegate',
        PATH: '/usr/bin',
      },
    });
    expect(config.mqtt.url).toBe('mqtt://host');
    expect(config.recognition.k).toBe(2);
    expect(config.recognition.targetFar).toBe(0.01);
    expect(config.mqtt.snapshots).toBe(true);
    expect(config.presentationAttack.enabled).toBe(true);
    expect(config.dataDir).toBe('/var/lib/facegate');
  });

  it('matches field names ignoring case and underscores', () => {
    expect(loadConfig({ env: { FACEGATE_MQTT__BASETOPIC: 'a/b' } }).mqtt.baseTopic).toBe('a/b');
    expect(loadConfig({ env: { FACEGATE_MQTT__BASE_TOPIC: 'c' } }).mqtt.baseTopic).toBe('c');
  });

  it('keeps string fields verbatim, even when they look like numbers or booleans', () => {
    const config = loadConfig({
      env: {
        FACEGATE_MQTT__PASSWORD: '123',
        FACEGATE_MQTT__USERNAME: 'yes',
        FACEGATE_DEVICE__NAME: '#1: door',
      },
    });
    expect(config.mqtt.password).toBe('123');
    expect(config.mqtt.username).toBe('yes');
    expect(config.device.name).toBe('#1: door');
  });

  it('takes lists as YAML flow sequences and addresses list items by index', () => {
    const config = loadConfig({
      env: { FACEGATE_CONTROL__ALLOW: '[health, face/list]', FACEGATE_CAMERAS__0__FPS: '7.5' },
    });
    expect(config.control.allow).toEqual(['health', 'face/list']);
    expect(config.cameras[0].fps).toBe(7.5);
    expect(config.cameras[0].id).toBe('door');
  });

  it('applies a whole list before overrides inside it', () => {
    const config = loadConfig({
      env: {
        FACEGATE_CAMERAS__0__SOURCE__URL: 'rtsp://cam/1',
        FACEGATE_CAMERAS:
          '[{id: porch, source: {kind: rtsp, url: "rtsp://x"}, width: 640, height: 480, fps: 5, restart: {initialDelayMs: 1, maxDelayMs: 1, stallTimeoutMs: 1000, healthyAfterMs: 0}}]',
      },
    });
    expect(config.cameras[0]).toMatchObject({ id: 'porch', source: { kind: 'rtsp', url: 'rtsp://cam/1' } });
  });

  it('removes a setting when the value is empty', () => {
    const file = userFile('mqtt: { url: "mqtt://broker" }\n');
    expect(loadConfig({ file, env: { FACEGATE_MQTT__URL: '' } }).mqtt.url).toBeUndefined();
  });

  it('overrides the user file', () => {
    const file = userFile('recognition: { k: 2 }\n');
    expect(loadConfig({ file, env: { FACEGATE_RECOGNITION__K: '4' } }).recognition.k).toBe(4);
  });

  it('selects the board from FACEGATE_BOARD, unless one is passed explicitly', () => {
    expect(loadConfig({ env: { FACEGATE_BOARD: 'jetson-orin' } }).cameras[0].source.kind).toBe('jetson-csi');
    expect(loadConfig({ board: 'x86', env: { FACEGATE_BOARD: 'rpi4' } }).cameras[0].source.kind).toBe('v4l2');
  });

  it('reports a value of the wrong type against the variable', () => {
    expect(loadError({ env: { FACEGATE_RECOGNITION__K: 'three' } })).toContain(
      "recognition.k: must be integer (got 'three') (from environment FACEGATE_RECOGNITION__K)",
    );
  });

  it('rejects an unknown variable instead of ignoring it', () => {
    expect(loadError({ env: { FACEGATE_MQTT__BASETOPC: 'x' } })).toBe(
      "FACEGATE_MQTT__BASETOPC: mqtt has no field 'BASETOPC'",
    );
    expect(loadError({ env: { FACEGATE_NOPE: 'x' } })).toBe(
      "FACEGATE_NOPE: the configuration has no field 'NOPE'",
    );
  });

  it('rejects a list index past the end', () => {
    expect(loadError({ env: { FACEGATE_CAMERAS__3__FPS: '5' } })).toBe(
      'FACEGATE_CAMERAS__3__FPS: cameras has only 1 items',
    );
  });
});

describe('what came from the environment', () => {
  it('is remembered with what the layers below had, and put back by withoutEnvOverrides', () => {
    const file = userFile('mqtt: { url: "mqtt://broker", password: from-file }\nrecognition: { k: 2 }\n');
    const config = loadConfig({
      file,
      env: {
        FACEGATE_MQTT__PASSWORD: 'from-env',
        FACEGATE_MQTT__USERNAME: 'env-user',
        FACEGATE_MQTT__BASE_TOPIC: 'site1/facegate',
        FACEGATE_MQTT__URL: '',
        FACEGATE_CAMERAS__0__FPS: '7.5',
      },
    });
    expect(config.mqtt).toMatchObject({
      password: 'from-env',
      username: 'env-user',
      baseTopic: 'site1/facegate',
    });
    expect(config.mqtt.url).toBeUndefined();
    expect(envOverrides(config).map((o) => [o.variable, o.below])).toEqual([
      ['FACEGATE_MQTT__BASE_TOPIC', 'facegate'],
      ['FACEGATE_MQTT__PASSWORD', 'from-file'],
      ['FACEGATE_MQTT__URL', 'mqtt://broker'],
      ['FACEGATE_MQTT__USERNAME', undefined],
      ['FACEGATE_CAMERAS__0__FPS', 15],
    ]);

    const stored = withoutEnvOverrides(config);
    // The file's own values (or, where it had none, the defaults below it), never the environment's.
    expect(stored.mqtt).toMatchObject({ password: 'from-file', url: 'mqtt://broker', baseTopic: 'facegate' });
    expect(stored.mqtt).not.toHaveProperty('username');
    expect(stored.cameras[0].fps).toBe(15);
    expect(stored.recognition.k).toBe(2);
    expect(validateConfig(stored).ok).toBe(true);
    // The running config is not touched.
    expect(config.mqtt.password).toBe('from-env');
  });

  it('undoes a variable inside a list another variable set before the list itself', () => {
    const config = loadConfig({
      env: {
        FACEGATE_CAMERAS:
          '[{id: porch, source: {kind: rtsp, url: "rtsp://x"}, width: 640, height: 480, fps: 5, restart: {initialDelayMs: 1, maxDelayMs: 1, stallTimeoutMs: 1000, healthyAfterMs: 0}}]',
        FACEGATE_CAMERAS__0__FPS: '9',
      },
    });
    expect(config.cameras[0]).toMatchObject({ id: 'porch', fps: 9 });
    expect(withoutEnvOverrides(config).cameras).toEqual(loadConfig({ env: {} }).cameras);
  });

  it('is nothing for a config loaded without FACEGATE_* variables, or not loaded at all', () => {
    const config = loadConfig({ env: { PATH: '/usr/bin' } });
    expect(envOverrides(config)).toEqual([]);
    expect(withoutEnvOverrides(config)).toBe(config);
    expect(envOverrides(mergeConfig(config, {}) as object)).toEqual([]);
  });

  it('names the overrides a merge patch would change: at, above or below their path', () => {
    const config = loadConfig({
      env: { FACEGATE_MQTT__PASSWORD: 'pw', FACEGATE_CAMERAS__0__FPS: '5' },
    });
    const touched = (patch: unknown) => envOverridesTouchedBy(config, patch).map((o) => o.variable);
    expect(touched({ mqtt: { password: 'other' } })).toEqual(['FACEGATE_MQTT__PASSWORD']);
    expect(touched({ mqtt: { password: null } })).toEqual(['FACEGATE_MQTT__PASSWORD']);
    expect(touched({ mqtt: null })).toEqual(['FACEGATE_MQTT__PASSWORD']);
    expect(touched({ cameras: [] })).toEqual(['FACEGATE_CAMERAS__0__FPS']);
    expect(touched({ mqtt: { username: 'u' }, recognition: { k: 1 } })).toEqual([]);
    expect(touched({ mqtt: {} })).toEqual([]);
  });
});
