import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createHeartbeat,
  type PipelineStats,
  readCpuTemperature,
} from '../../../runtime/control/heartbeat.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-thermal-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function zone(index: number, type: string, temp: string): void {
  mkdirSync(join(dir, `thermal_zone${index}`));
  writeFileSync(join(dir, `thermal_zone${index}`, 'type'), `${type}\n`);
  writeFileSync(join(dir, `thermal_zone${index}`, 'temp'), temp);
}

describe('readCpuTemperature', () => {
  it('reads the hottest CPU zone, ignoring other zones', async () => {
    zone(0, 'CPU-therm', '48312\n');
    zone(1, 'PMIC-Die', '100000\n');
    zone(2, 'cpu-thermal', '51050\n');
    zone(3, 'GPU-therm', '60000\n');
    mkdirSync(join(dir, 'cooling_device0'));
    expect(await readCpuTemperature(dir)).toBe(51.1);
  });

  it('falls back to every readable zone when none is named as the CPU', async () => {
    zone(0, 'acpitz', '27800\n');
    zone(1, 'broken', 'Invalid argument');
    zone(2, 'pch_skylake', '39000\n');
    expect(await readCpuTemperature(dir)).toBe(39);
  });

  it('is null where the board has no thermal zones', async () => {
    expect(await readCpuTemperature(dir)).toBeNull();
    expect(await readCpuTemperature(join(dir, 'missing'))).toBeNull();
  });
});

describe('createHeartbeat', () => {
  it('combines the pipeline stats with process and board figures', async () => {
    zone(0, 'cpu-thermal', '45000\n');
    const stats: PipelineStats = {
      cameras: [{ id: 'door', fps: 9.8, droppedFrames: 12 }],
      stageLatencyMs: { decode: 3.1, detect: 14.2, embed: 9.7 },
      models: { embedder: { name: 'facerec-int8', version: '1.0.0' } },
      queueDepth: 5,
    };
    const report = await createHeartbeat(async () => stats, { thermalDir: dir })();
    expect(report).toEqual({
      ...stats,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      uptimeSeconds: expect.any(Number),
      cpuTemperatureC: 45,
      memory: {
        rssBytes: expect.any(Number),
        heapUsedBytes: expect.any(Number),
        heapTotalBytes: expect.any(Number),
      },
    });
    expect(report.memory.rssBytes).toBeGreaterThan(report.memory.heapUsedBytes);
    expect(Date.now() - Date.parse(report.time)).toBeLessThan(5_000);
  });
});
