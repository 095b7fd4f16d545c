// The runtime's log: one logger per process, made from `logging.level`, that every component writes
// through (`child('mqtt')`, `child('camera door')`). Lines below the level are dropped here, before they
// are formatted. A line is `[component] message` at info and `[component] <level>: message` otherwise, so
// warnings and errors stand out in a journal while the everyday lines stay short.
//
// Only log lines go here. What a command prints as its result (the events `facegate run` prints, the
// answers of `facegate identify`) is that command's output on stdout, whatever the level.

/** From the most to the least verbose. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `logging.level`: the least severe level written; `silent` writes nothing. */
export type LogThreshold = LogLevel | 'silent';
/** Where finished lines go, one call per line, without the newline. */
export type LogSink = (line: string) => void;

export interface Logger {
  readonly level: LogThreshold;
  /** Whether a line at `level` would be written: for messages that are costly to build. */
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** The same log and level, its lines tagged `[component]`. */
  child(component: string): Logger;
}

export interface LoggerOptions {
  level: LogThreshold;
  /** Default: standard error. */
  write?: LogSink;
  component?: string;
}

export const writeStderr: LogSink = (line) => {
  process.stderr.write(`${line}\n`);
};

const rank = (level: LogThreshold): number =>
  level === 'silent' ? LOG_LEVELS.length : LOG_LEVELS.indexOf(level);

// C0 controls but tab, DEL and the Unicode line breaks: a message quoting a payload must stay one line, so
// a request cannot forge a log line of its own or hide one behind a carriage return or a NUL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f\u2028\u2029]/g;

/** `text` with control characters written as escapes (`\n`, `\u0000`), so it is one printable line. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function formatLogLine(component: string | undefined, level: LogLevel, message: string): string {
  const tag = component === undefined ? '' : `[${component}] `;
  const line = escapeControl(message);
  return level === 'info' ? `${tag}${line}` : `${tag}${level}: ${line}`;
}

/** Methods are plain closures, so `logger.info` can be handed over as a `(line) => void` callback. */
export function createLogger({ level, write = writeStderr, component }: LoggerOptions): Logger {
  if (rank(level) === -1) throw new Error(`unknown log level '${level}'`);
  const threshold = rank(level);
  const enabled = (at: LogLevel) => rank(at) >= threshold;
  const log = (at: LogLevel, message: string) => {
    if (enabled(at)) write(formatLogLine(component, at, message));
  };
  return {
    level,
    enabled,
    log,
    debug: (message) => log('debug', message),
    info: (message) => log('info', message),
    warn: (message) => log('warn', message),
    error: (message) => log('error', message),
    child: (name) => createLogger({ level, write, component: name }),
  };
}

/** For library calls made without a logger (tools, tests, one-off scripts): warnings and errors, to stderr. */
export const defaultLogger: Logger = createLogger({ level: 'warn' });

/** A logger at every level that hands each message, untagged, to `record` (a check that reports what a
 * component said, tests); its children are itself. */
export function recordingLogger(record: (level: LogLevel, message: string) => void): Logger {
  const logger: Logger = {
    level: 'debug',
    enabled: () => true,
    log: record,
    debug: (message) => record('debug', message),
    info: (message) => record('info', message),
    warn: (message) => record('warn', message),
    error: (message) => record('error', message),
    child: () => logger,
  };
  return logger;
}

/** Writes nothing. */
export const silentLogger: Logger = createLogger({ level: 'silent' });
