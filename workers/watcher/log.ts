/**
 * Structured logs: one JSON object per line, so an operator can grep and a collector can parse every signal the
 * watcher sends (action, step, kind, block) without a format to learn.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** SETTLE_LOG_LEVEL (the worker's names) to the watcher's levels. */
export function logLevelOf(setting: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR'): LogLevel {
  if (setting === 'TRACE' || setting === 'DEBUG') return 'debug';
  return setting.toLowerCase() as LogLevel;
}

/**
 * A logger writing JSON lines to `write` (stdout by default): `{"ts":…,"level":"info","msg":"signal",…}`.
 *
 * @example jsonLogger('info').info('signal', { action: 'xfer-1', step: 'lock', kind: 'included' })
 */
export function jsonLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const emit = (at: LogLevel, msg: string, fields: LogFields = {}) => {
    if (RANK[at] < RANK[level]) return;
    write(`${JSON.stringify({ ts: new Date().toISOString(), level: at, msg, ...fields }, jsonSafe)}\n`);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}

function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

/** Errors in a log line: the message only (RPC URLs with keys stay out of stacks we print). */
export function errorText(error: unknown): string {
  const text =
    error instanceof Error ? ((error as { shortMessage?: string }).shortMessage ?? error.message) : String(error);
  return text.split('\n')[0].slice(0, 500);
}
