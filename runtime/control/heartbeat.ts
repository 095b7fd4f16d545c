// The heartbeat (and health) payload: the pipeline's own statistics, from an injected function, plus what
// the process and the board can tell about themselves.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Awaitable } from '../types.ts';
import type { HealthReport } from './api.ts';

export type PipelineStats = Pick<HealthReport, 'cameras' | 'stageLatencyMs' | 'models' | 'queueDepth'>;

export const THERMAL_DIR = '/sys/class/thermal';

// Boards expose several zones, some of them not the CPU (Jetson's PMIC-Die reads a constant 100 °C).
const CPU_ZONE = /cpu|soc|x86_pkg_temp/i;

/** Hottest CPU thermal zone in °C (any zone if none is named as the CPU), or null when there is none. */
export async function readCpuTemperature(thermalDir = THERMAL_DIR): Promise<number | null> {
  const entries = await readdir(thermalDir).catch(() => [] as string[]);
  const zones = await Promise.all(
    entries
      .filter((entry) => entry.startsWith('thermal_zone'))
      .map(async (entry) => {
        const read = (file: string) => readFile(join(thermalDir, entry, file), 'utf8').catch(() => '');
        const [type, temp] = await Promise.all([read('type'), read('temp')]);
        // sysfs reports millidegrees; an unreadable or absent sensor reads as an error or garbage.
        const celsius = /^-?\d+\s*$/.test(temp) ? Number(temp) / 1000 : Number.NaN;
        return { type: type.trim(), celsius };
      }),
  );
  const readable = zones.filter((z) => Number.isFinite(z.celsius));
  const cpu = readable.filter((z) => CPU_ZONE.test(z.type));
  const temperatures = (cpu.length > 0 ? cpu : readable).map((z) => z.celsius);
  return temperatures.length > 0 ? Math.round(Math.max(...temperatures) * 10) / 10 : null;
}

/** A function building the current HealthReport from `stats`. */
export function createHeartbeat(
  stats: () => Awaitable<PipelineStats>,
  opts: { thermalDir?: string } = {},
): () => Promise<HealthReport> {
  return async () => {
    const [pipeline, cpuTemperatureC] = await Promise.all([stats(), readCpuTemperature(opts.thermalDir)]);
    const memory = process.memoryUsage();
    return {
      time: new Date().toISOString(),
      uptimeSeconds: Math.round(process.uptime()),
      cameras: pipeline.cameras,
      stageLatencyMs: pipeline.stageLatencyMs,
      cpuTemperatureC,
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal },
      models: pipeline.models,
      queueDepth: pipeline.queueDepth,
    };
  };
}
