import { describe, expect, it } from 'vitest';
import { RestartBackoff, restartDelay } from '../../../runtime/capture/backoff.ts';

const policy = { initialDelayMs: 250, maxDelayMs: 5000, stallTimeoutMs: 1000, healthyAfterMs: 10_000 };

describe('restartDelay', () => {
  it('doubles from initialDelayMs and stays at maxDelayMs', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => restartDelay(n, policy))).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000,
    ]);
  });

  it('stays finite after any number of failures', () => {
    expect(restartDelay(10_000, policy)).toBe(5000);
  });
});

describe('RestartBackoff', () => {
  it('numbers consecutive failures and grows the delay', () => {
    const backoff = new RestartBackoff(policy);
    expect([backoff.failure(), backoff.failure(), backoff.failure()]).toEqual([
      { attempt: 1, delayMs: 250 },
      { attempt: 2, delayMs: 500 },
      { attempt: 3, delayMs: 1000 },
    ]);
  });

  it('starts over after a run healthy for healthyAfterMs, not after a short one', () => {
    const backoff = new RestartBackoff(policy);
    backoff.failure();
    backoff.failure();
    backoff.frame(1000);
    backoff.frame(10_999);
    expect(backoff.failure()).toEqual({ attempt: 3, delayMs: 1000 });
    // The healthy period counts from the first frame after a failure.
    backoff.frame(20_000);
    backoff.frame(30_000);
    expect(backoff.failure()).toEqual({ attempt: 1, delayMs: 250 });
  });

  it('defaults the healthy period to 30 s', () => {
    const backoff = new RestartBackoff({ initialDelayMs: 100, maxDelayMs: 800, stallTimeoutMs: 1000 });
    backoff.failure();
    backoff.frame(0);
    backoff.frame(29_999);
    expect(backoff.failure().attempt).toBe(2);
    backoff.frame(0);
    backoff.frame(30_000);
    expect(backoff.failure().attempt).toBe(1);
  });
});
