import { describe, expect, it } from 'vitest';
import schema from '../../../configs/schema.json' with { type: 'json' };
import {
  type Config,
  classifyChange,
  LIVE_KEYS,
  loadConfig,
  mergeConfig,
} from '../../../runtime/config/index.ts';

const before = loadConfig({ env: {} });
const withPatch = (patch: unknown) => mergeConfig(before, patch) as Config;

describe('classifyChange', () => {
  it('reports nothing for identical configs', () => {
    expect(classifyChange(before, structuredClone(before))).toEqual({ live: [], restartRequired: [] });
  });

  it('applies thresholds, fps, schedules and topics live', () => {
    const change = classifyChange(
      before,
      withPatch({
        cameras: [{ ...before.cameras[0], fps: 5 }],
        detection: { minScore: 0.9 },
        recognition: { k: 2 },
        quality: { maxYawDeg: 20 },
        schedules: { heartbeat: '*/5 * * * *', modelUpdateCheck: null },
        mqtt: { baseTopic: 'site/facegate', snapshots: true },
      }),
    );
    expect(change.restartRequired).toEqual([]);
    expect(change.live.sort()).toEqual(
      [
        'cameras[0].fps',
        'detection.minScore',
        'recognition.k',
        'quality.maxYawDeg',
        'schedules.heartbeat',
        'schedules.modelUpdateCheck',
        'mqtt.baseTopic',
        'mqtt.snapshots',
      ].sort(),
    );
  });

  it('needs a restart for camera sources, engine, threads and broker connection', () => {
    const change = classifyChange(
      before,
      withPatch({
        cameras: [{ ...before.cameras[0], source: { kind: 'v4l2', device: '/dev/video0' } }],
        models: { engine: 'ort', threads: 2 },
        mqtt: { url: 'mqtt://broker', password: 'x' },
        device: { id: 'hall' },
      }),
    );
    expect(change.live).toEqual([]);
    expect(change.restartRequired.sort()).toEqual(
      [
        'cameras[0].source.device',
        'cameras[0].source.kind',
        'cameras[0].source.loop',
        'cameras[0].source.path',
        'cameras[0].source.realtime',
        'models.engine',
        'models.threads',
        'mqtt.url',
        'mqtt.password',
        'device.id',
      ].sort(),
    );
  });

  it('needs a restart for the offline queue, mqtt.qos and logging, which are only read at start', () => {
    const change = classifyChange(
      before,
      withPatch({
        offlineQueue: { maxEvents: 50, whenFull: 'drop-newest' },
        mqtt: { qos: 0 },
        logging: { level: 'debug' },
      }),
    );
    expect(change.live).toEqual([]);
    expect(change.restartRequired.sort()).toEqual(
      ['logging.level', 'mqtt.qos', 'offlineQueue.maxEvents', 'offlineQueue.whenFull'].sort(),
    );
    for (const key of ['offlineQueue', 'mqtt.qos', 'logging']) {
      expect(LIVE_KEYS.some((live: string) => live === key || live.startsWith(`${key}.`))).toBe(false);
    }
  });

  it('splits a mixed change', () => {
    expect(
      classifyChange(before, withPatch({ models: { threads: 1, update: { healthFrames: 3 } } })),
    ).toEqual({
      live: ['models.update.healthFrames'],
      restartRequired: ['models.threads'],
    });
  });

  it('treats adding or removing a camera as a restart, and a changed list as one change', () => {
    const second = { ...before.cameras[0], id: 'yard' };
    expect(classifyChange(before, withPatch({ cameras: [before.cameras[0], second] }))).toEqual({
      live: [],
      restartRequired: ['cameras'],
    });
    expect(classifyChange(before, withPatch({ control: { allow: ['health'] } }))).toEqual({
      live: ['control.allow'],
      restartRequired: [],
    });
  });

  it('lists only keys that exist in the schema', () => {
    const definitions = schema.definitions as Record<string, { properties?: Record<string, unknown> }>;
    const exists = (key: string) => {
      let node: { properties?: Record<string, unknown>; items?: unknown; $ref?: string } = schema;
      for (const part of key.replace('[*]', '.[*]').split('.')) {
        if (node.$ref) node = definitions[node.$ref.replace('#/definitions/', '')];
        const next = part === '[*]' ? node.items : node.properties?.[part];
        if (!next) return false;
        node = next as typeof node;
      }
      return true;
    };
    expect(LIVE_KEYS.filter((key) => !exists(key))).toEqual([]);
  });
});
