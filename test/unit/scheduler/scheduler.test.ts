import { afterEach, describe, expect, it } from 'vitest';
import { ScheduleError, type ScheduleJob, Scheduler } from '../../../runtime/scheduler/scheduler.ts';
import { recordingLogger } from '../../../runtime/util/log.ts';
import { waitUntil } from '../../integration/mqtt/support.ts';

const EVERY_SECOND = '*/1 * * * * *';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let scheduler: Scheduler | undefined;
afterEach(() => scheduler?.stop());

function start(fail: Partial<Record<ScheduleJob, Error>> = {}) {
  const runs: Record<ScheduleJob, number[]> = { heartbeat: [], modelUpdateCheck: [], galleryBackup: [] };
  const logs: string[] = [];
  const task = (job: ScheduleJob) => () => {
    runs[job].push(Date.now());
    if (fail[job]) throw fail[job];
  };
  scheduler = new Scheduler(
    {
      heartbeat: task('heartbeat'),
      modelUpdateCheck: task('modelUpdateCheck'),
      galleryBackup: task('galleryBackup'),
    },
    { log: recordingLogger((level, message) => logs.push(`${level}: ${message}`)) },
  );
  return { scheduler, runs, logs };
}

describe('Scheduler', () => {
  it('runs each configured job on its expression, and only those', async () => {
    const { scheduler, runs } = start();
    scheduler.reconfigure({ heartbeat: EVERY_SECOND, modelUpdateCheck: '', galleryBackup: '0 3 * * *' });
    expect(scheduler.active).toEqual({ heartbeat: EVERY_SECOND, galleryBackup: '0 3 * * *' });
    await waitUntil('two heartbeats', () => runs.heartbeat.length >= 2, 4_000);
    expect(runs.modelUpdateCheck).toEqual([]);
    expect(runs.galleryBackup).toEqual([]);
  });

  it('changes the cadence of a running job on reconfigure', async () => {
    const { scheduler, runs } = start();
    scheduler.reconfigure({ heartbeat: EVERY_SECOND });
    await waitUntil('a heartbeat', () => runs.heartbeat.length >= 1, 3_000);
    scheduler.reconfigure({ heartbeat: '*/3 * * * * *' });
    const from = runs.heartbeat.length;
    await waitUntil('two heartbeats at the new cadence', () => runs.heartbeat.length >= from + 2, 8_000);
    const after = runs.heartbeat.slice(from);
    for (const at of after) expect(new Date(at).getSeconds() % 3).toBe(0);
    expect(after[1] - after[0]).toBeGreaterThan(2_500);
  });

  it('switches jobs on and off without touching the unchanged ones', async () => {
    const { scheduler, runs } = start();
    scheduler.reconfigure({ heartbeat: EVERY_SECOND });
    await waitUntil('a heartbeat', () => runs.heartbeat.length >= 1, 3_000);
    scheduler.reconfigure({ heartbeat: EVERY_SECOND, galleryBackup: EVERY_SECOND });
    const heartbeats = runs.heartbeat.length;
    await waitUntil('a backup', () => runs.galleryBackup.length >= 1, 3_000);
    await waitUntil('the heartbeat going on', () => runs.heartbeat.length > heartbeats, 3_000);
    scheduler.reconfigure({});
    expect(scheduler.active).toEqual({});
    const total = runs.heartbeat.length + runs.galleryBackup.length;
    await sleep(1_500);
    expect(runs.heartbeat.length + runs.galleryBackup.length).toBe(total);
  });

  it('refuses invalid expressions naming each field, and changes nothing', () => {
    const { scheduler } = start();
    scheduler.reconfigure({ heartbeat: EVERY_SECOND });
    const attempt = () =>
      scheduler.reconfigure({
        heartbeat: '0 * * * *',
        modelUpdateCheck: 'every day',
        galleryBackup: '61 * * * *',
      });
    expect(attempt).toThrow(ScheduleError);
    expect(attempt).toThrow(
      "schedules.modelUpdateCheck: 'every day' is not a valid cron expression (expected 5 or 6 fields but got 2)\n" +
        "schedules.galleryBackup: '61 * * * *' is not a valid cron expression (61 is a invalid expression for minute)",
    );
    expect(scheduler.active).toEqual({ heartbeat: EVERY_SECOND });
  });

  it('logs a failing task and keeps running it', async () => {
    const { scheduler, runs, logs } = start({ heartbeat: new Error('broker unreachable') });
    scheduler.reconfigure({ heartbeat: EVERY_SECOND });
    await waitUntil('two heartbeats', () => runs.heartbeat.length >= 2, 4_000);
    expect(logs).toContain('error: heartbeat failed: broker unreachable');
  });

  it('stop() ends every job', async () => {
    const { scheduler, runs } = start();
    scheduler.reconfigure({ heartbeat: EVERY_SECOND, galleryBackup: EVERY_SECOND });
    scheduler.stop();
    await sleep(1_500);
    expect(runs).toEqual({ heartbeat: [], modelUpdateCheck: [], galleryBackup: [] });
  });
});
