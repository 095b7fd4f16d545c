// mqtt.qos and logging.level as the running device reads them: App on a real mosquitto, the real models
// and the Hamilton clip (test/integration/app/harness.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMosquitto } from '../../helpers/mosquitto.ts';
import { Operator, startApp } from '../app/harness.ts';
import { Subscriber, useCleanup, waitUntil } from './support.ts';

describe('the running device', () => {
  const cleanup = useCleanup();

  it('publishes its events at mqtt.qos and writes only log lines at or above logging.level', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'facegate-app-settings-'));
    cleanup(() => rm(dir, { recursive: true, force: true }));
    const broker = await startMosquitto();
    cleanup(() => broker.dispose());
    const { app, logs } = await startApp(dir, broker.url, { mqtt: { qos: 2 }, logging: { level: 'warn' } });
    cleanup(() => app.stop());
    const events = await Subscriber.connect(broker.url, [app.topics.event], {}, 2);
    cleanup(() => events.end());
    await waitUntil('an event', () => events.on(app.topics.event).length > 0, 60_000);
    expect(events.on(app.topics.event).every((m) => m.qos === 2)).toBe(true);

    // A request answered `ok` is logged at info, an unknown command at warn.
    const operator = await Operator.connect(broker.url, app.topics);
    cleanup(() => operator.end());
    expect(await operator.ask('health')).toMatchObject({ status: 'ok' });
    expect(await operator.ask('face/rename')).toMatchObject({ status: 'error' });
    await waitUntil('the refusal logged', () => logs.some((l) => l.includes('face/rename')));
    expect(logs).toContain("[control] warn: face/rename: unknown command 'face/rename'");
    expect(logs.filter((l) => !/^\[[^\]]+\] (warn|error): /.test(l))).toEqual([]);
  });
});
