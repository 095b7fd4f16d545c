// Periodic jobs from config.schedules, on node-cron. reconfigure() is how schedules change live: a job
// whose expression changed is replaced at once, the others keep running undisturbed.

import { type ScheduledTask, schedule, validateDetailed } from 'node-cron';
import type { Config } from '../config/index.ts';
import type { Awaitable } from '../types.ts';
import type { Logger } from '../util/log.ts';

export const SCHEDULE_JOBS = ['heartbeat', 'modelUpdateCheck', 'galleryBackup'] as const;
export type ScheduleJob = (typeof SCHEDULE_JOBS)[number];
export type ScheduleTasks = Record<ScheduleJob, () => Awaitable<void>>;
/** Cron expression per job (5 fields, or 6 with seconds first); empty or absent = off. */
export type Schedules = Partial<Pick<Config['schedules'], ScheduleJob>>;

export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

export interface SchedulerOptions {
  log: Logger;
  /** IANA time zone for the expressions; the system's by default. */
  timezone?: string;
}

interface Job {
  expression: string;
  task: ScheduledTask;
}

export class Scheduler {
  private readonly jobs = new Map<ScheduleJob, Job>();

  constructor(
    private readonly tasks: ScheduleTasks,
    private readonly opts: SchedulerOptions,
  ) {}

  /**
   * Makes the running jobs match `schedules`. Throws a ScheduleError naming every invalid field, in which
   * case nothing changes.
   */
  reconfigure(schedules: Schedules): void {
    const problems: string[] = [];
    for (const job of SCHEDULE_JOBS) {
      const expression = schedules[job];
      const errors = expression ? validateDetailed(expression).errors.map((e) => e.message) : [];
      if (errors.length > 0) {
        problems.push(
          `schedules.${job}: '${expression}' is not a valid cron expression (${errors.join('; ')})`,
        );
      }
    }
    if (problems.length > 0) throw new ScheduleError(problems.join('\n'));
    for (const job of SCHEDULE_JOBS) {
      const expression = schedules[job] || undefined;
      const current = this.jobs.get(job);
      if (current?.expression === expression) continue;
      current?.task.destroy();
      this.jobs.delete(job);
      if (expression) this.jobs.set(job, { expression, task: this.start(job, expression) });
    }
  }

  /** The expression of each job that is on. */
  get active(): Partial<Record<ScheduleJob, string>> {
    return Object.fromEntries([...this.jobs].map(([job, { expression }]) => [job, expression]));
  }

  stop(): void {
    for (const { task } of this.jobs.values()) task.destroy();
    this.jobs.clear();
  }

  private start(job: ScheduleJob, expression: string): ScheduledTask {
    const run = async () => {
      try {
        await this.tasks[job]();
      } catch (err) {
        this.opts.log.error(`${job} failed: ${(err as Error).message}`);
      }
    };
    return schedule(expression, run, {
      name: job,
      timezone: this.opts.timezone,
      // A slow gallery backup or model download is skipped a turn rather than run twice at once.
      noOverlap: true,
      logger: {
        info: (message) => this.opts.log.info(`${job}: ${message}`),
        warn: (message) => this.opts.log.warn(`${job}: ${message}`),
        error: (message) => this.opts.log.error(`${job}: ${String(message)}`),
        debug: () => {},
      },
    });
  }
}
