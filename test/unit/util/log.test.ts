import { describe, expect, it } from 'vitest';
import { createLogger, LOG_LEVELS, type LogThreshold } from '../../../runtime/util/log.ts';

function capture(level: LogThreshold) {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level, write: (line) => lines.push(line) }) };
}

const writeOneOfEach = (logger: ReturnType<typeof createLogger>) => {
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
};

describe('createLogger', () => {
  it.each([
    ['debug', ['debug: d', 'i', 'warn: w', 'error: e']],
    ['info', ['i', 'warn: w', 'error: e']],
    ['warn', ['warn: w', 'error: e']],
    ['error', ['error: e']],
    ['silent', []],
  ] satisfies [LogThreshold, string[]][])(
    'at %s writes only that level and the more severe ones',
    (level, expected) => {
      const { lines, logger } = capture(level);
      writeOneOfEach(logger);
      expect(lines).toEqual(expected);
    },
  );

  it('answers enabled() by the same order, debug < info < warn < error', () => {
    const { logger } = capture('warn');
    expect(LOG_LEVELS.map((l) => [l, logger.enabled(l)])).toEqual([
      ['debug', false],
      ['info', false],
      ['warn', true],
      ['error', true],
    ]);
    expect(LOG_LEVELS.some((l) => capture('silent').logger.enabled(l))).toBe(false);
  });

  it('tags the lines of a child logger with its component and keeps the level', () => {
    const { lines, logger } = capture('info');
    const mqtt = logger.child('mqtt');
    mqtt.info('connected');
    mqtt.warn('disconnected: connection closed');
    mqtt.debug('not written');
    logger.child('camera door').log('error', 'frame failed: boom');
    expect(lines).toEqual([
      '[mqtt] connected',
      '[mqtt] warn: disconnected: connection closed',
      '[camera door] error: frame failed: boom',
    ]);
    expect(mqtt.level).toBe('info');
  });

  it('has methods that work unbound, as callbacks', () => {
    const { lines, logger } = capture('debug');
    const { log, info } = logger.child('x');
    for (const level of LOG_LEVELS) log(level, level);
    info('unbound');
    expect(lines).toEqual([
      '[x] debug: debug',
      '[x] info',
      '[x] warn: warn',
      '[x] error: error',
      '[x] unbound',
    ]);
  });

  it('refuses an unknown level instead of writing everything', () => {
    expect(() => createLogger({ level: 'loud' as LogThreshold, write: () => {} })).toThrow(
      "unknown log level 'loud'",
    );
  });
});

describe('log lines from payloads', () => {
  it('stay one line: newlines, carriage returns, NUL and other controls are escaped', () => {
    const { lines, logger } = capture('info');
    logger.child('control').warn('face/enroll: unknown person "x"\n[control] restart: ok\r\u0000\u001b[2J');
    expect(lines).toEqual([
      '[control] warn: face/enroll: unknown person "x"\\n[control] restart: ok\\r\\u0000\\u001b[2J',
    ]);
  });
});
