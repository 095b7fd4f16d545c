// ServiceNotifier over a real unix datagram socket: READY=1 on the first frame, WATCHDOG=1 only while
// frames keep coming, STOPPING=1 on stop; nothing at all without NOTIFY_SOCKET.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceNotifier } from '../../../runtime/service/notify.ts';
import { recordingLogger, silentLogger } from '../../../runtime/util/log.ts';
import { NotifyListener } from '../../helpers/notify-socket.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ServiceNotifier', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const fn of cleanup.splice(0)) fn();
  });

  function listen() {
    const dir = mkdtempSync(join(tmpdir(), 'facegate-notify-'));
    const listener = new NotifyListener(dir);
    cleanup.push(() => {
      listener.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return listener;
  }

  it('is absent without NOTIFY_SOCKET', () => {
    expect(ServiceNotifier.fromEnv({}, { log: silentLogger })).toBeNull();
  });

  it('refuses an abstract socket with a clear reason', () => {
    expect(() => ServiceNotifier.fromEnv({ NOTIFY_SOCKET: '@x' }, { log: silentLogger })).toThrow(
      /abstract socket/,
    );
  });

  it('sends READY once on the first frame, pings while frames flow and stops pinging when they stop', async () => {
    const listener = listen();
    let readyCalls = 0;
    const notifier = ServiceNotifier.fromEnv(
      { NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: '400000', WATCHDOG_PID: String(process.pid) },
      { log: recordingLogger((_level, m) => expect.fail(m)), onReady: () => readyCalls++ },
    ) as ServiceNotifier;
    cleanup.push(() => notifier.stopping());
    expect(notifier.watchdogMs).toBe(400);

    await sleep(500);
    expect(listener.count('WATCHDOG')).toBe(0); // not ready, no frames: no pings

    const flowing = Date.now();
    const frames = setInterval(() => notifier.frame(), 50);
    await sleep(1000);
    clearInterval(frames);
    expect(listener.count('READY')).toBe(1);
    expect(readyCalls).toBe(1);
    expect(listener.count('WATCHDOG', flowing)).toBeGreaterThanOrEqual(3);

    await sleep(450); // the last frame ages past the watchdog period
    const stalled = Date.now();
    await sleep(1000);
    expect(listener.count('WATCHDOG', stalled)).toBe(0);

    notifier.stopping();
    await sleep(50);
    expect(listener.count('STOPPING')).toBe(1);
  });

  it('ignores a watchdog meant for another process', () => {
    const listener = listen();
    const notifier = ServiceNotifier.fromEnv(
      { NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: '400000', WATCHDOG_PID: '1' },
      { log: silentLogger },
    ) as ServiceNotifier;
    cleanup.push(() => notifier.stopping());
    expect(notifier.watchdogMs).toBe(0);
  });
});
