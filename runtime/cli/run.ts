// `facegate run` (and `npm start`): the camera pipeline until SIGINT/SIGTERM.
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { App } from '../app.ts';
import { loadConfig } from '../config/index.ts';
import type { FaceEvent } from '../events/schema.ts';
import { ServiceNotifier } from '../service/notify.ts';
import { createLogger, writeStderr } from '../util/log.ts';

const STATS_EVERY_MS = 15_000;

export function formatEvent(e: FaceEvent, latencyMs: number, outcome: string): string {
  const who = e.type === 'recognized' ? e.identity : e.type;
  const box = e.box.map((v) => Math.round(v)).join(',');
  return `${e.time} ${e.camera} ${e.type.padEnd(10)} ${String(who).padEnd(24)} score ${e.score.toFixed(3)} track ${e.trackId} box [${box}] ${outcome} in ${latencyMs} ms`;
}

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, board: { type: 'string' } } });
  const config = loadConfig({ file: values.config, board: values.board, env: process.env });
  // Under systemd (Type=notify): ready once frames flow, then the watchdog while they keep flowing.
  const notifier = ServiceNotifier.fromEnv(process.env, {
    log: createLogger({ level: config.logging.level }).child('service'),
    onReady: () => confirmRelease(process.env.FACEGATE_RELEASE_PENDING),
  });
  // Log lines go to stderr at logging.level; the events are this command's output, on stdout.
  const app = await App.start(config, {
    configFile: values.config,
    log: writeStderr,
    onEvent: (event, { outcome, latencyMs }) => console.log(formatEvent(event, latencyMs, outcome)),
    onFrame: () => notifier?.frame(),
  });
  const log = app.logger.child('facegate');
  log.info(`running ${config.cameras.length} camera(s), events on ${app.topics.event}; Ctrl-C to stop`);
  const timer = setInterval(() => {
    for (const s of app.cameraStats()) {
      app.logger
        .child(`camera ${s.camera}`)
        .info(
          `${s.fps.toFixed(1)} fps, ${s.framesProcessed} frames, ${s.framesDropped} dropped, detect ${s.stageMs.detect.toFixed(1)} ms, embed ${s.stageMs.embed.toFixed(1)} ms`,
        );
    }
  }, STATS_EVERY_MS);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn(`${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      notifier?.stopping();
      log.info(`${signal}: stopping cameras, flushing events`);
      clearInterval(timer);
      app.stop().then(resolve, (e: Error) => {
        log.error(`stop failed: ${e.message}`);
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  log.info('stopped');
  return 0;
}

/**
 * A release switched to by an app update is on probation until it is ready (firmware-scripts/release.sh):
 * removing the marker tells the supervisor this release works and must not be rolled back.
 */
function confirmRelease(pendingFile: string | undefined): void {
  if (pendingFile) rmSync(pendingFile, { force: true });
}
