import type { RpcLogCategory, RpcLogLevel } from './functionsCoreTypes';

/** Receives one finished log line (no trailing newline). */
export type WriteLogLine = (line: string) => void;

export interface HostLogEntry {
  level: RpcLogLevel;
  category: RpcLogCategory;
  message: string;
  functionName?: string;
  invocationId?: string;
}

export interface HostLogger {
  write(entry: HostLogEntry): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Severity order of the worker's log levels; `none` never prints. */
const LEVEL_RANK: Record<RpcLogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
  none: 6,
};

/** host.json `logging.logLevel` names (ASP.NET style) to the worker's levels. */
const HOST_JSON_LEVELS: Record<string, RpcLogLevel> = {
  trace: 'trace',
  debug: 'debug',
  information: 'information',
  warning: 'warning',
  error: 'error',
  critical: 'critical',
  none: 'none',
};

export function parseHostJsonLogLevel(value: unknown): RpcLogLevel | undefined {
  return typeof value === 'string' ? HOST_JSON_LEVELS[value.toLowerCase()] : undefined;
}

/**
 * Lines look like `[2026-05-01T10:00:00.000Z] getTwin (3f2a...) warning: message`: the function name and invocation id
 * appear when the entry belongs to an invocation, the level only when it is not `information`.
 */
export function createHostLogger(writeLine: WriteLogLine, minimumLevel: RpcLogLevel = 'information'): HostLogger {
  const minimumRank = LEVEL_RANK[minimumLevel];
  const write = (entry: HostLogEntry): void => {
    const rank = LEVEL_RANK[entry.level] ?? LEVEL_RANK.information;
    if (rank < minimumRank || entry.level === 'none') {
      return;
    }
    const scope = entry.functionName
      ? ` ${entry.functionName}${entry.invocationId ? ` (${entry.invocationId})` : ''}`
      : '';
    const level = entry.level === 'information' ? '' : `${entry.level}: `;
    writeLine(`[${new Date().toISOString()}]${scope} ${level}${entry.message}`);
  };
  return {
    write,
    info: (message) => write({ level: 'information', category: 'system', message }),
    warn: (message) => write({ level: 'warning', category: 'system', message }),
    error: (message) => write({ level: 'error', category: 'system', message }),
  };
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return error.stack ?? `${error.name}: ${error.message}`;
  }
  return String(error);
}

/** One line for infrastructure errors (connection refused, timeouts) where a stack trace is noise. */
export function describeErrorBriefly(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
  }
  return String(error);
}
