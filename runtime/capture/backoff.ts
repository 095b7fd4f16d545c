// Restart delays for failed sources: exponential, capped, forgiven after a healthy run.
import type { RestartPolicy } from './config.ts';

export const DEFAULT_HEALTHY_AFTER_MS = 30_000;

/** Delay before the restart that follows `failures` consecutive earlier failures. */
export function restartDelay(failures: number, policy: RestartPolicy): number {
  // The exponent is capped so a long outage cannot overflow to Infinity.
  return Math.min(policy.initialDelayMs * 2 ** Math.min(failures, 30), policy.maxDelayMs);
}

export class RestartBackoff {
  private failures = 0;
  private healthySince: number | undefined;

  constructor(private readonly policy: RestartPolicy) {}

  /** Call on every good frame. */
  frame(now = Date.now()): void {
    this.healthySince ??= now;
    if (now - this.healthySince >= (this.policy.healthyAfterMs ?? DEFAULT_HEALTHY_AFTER_MS))
      this.failures = 0;
  }

  /** Registers a failure; returns its number in the current streak and the delay before restarting. */
  failure(): { attempt: number; delayMs: number } {
    this.healthySince = undefined;
    const delayMs = restartDelay(this.failures, this.policy);
    this.failures += 1;
    return { attempt: this.failures, delayMs };
  }
}
