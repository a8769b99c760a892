/**
 * The connector's logger: one line per event, with structured fields. `jsonLineLogger` writes JSON lines to
 * stdout/stderr (what a container log collector wants); tests inject their own.
 */

export type LogFields = Record<string, unknown>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export function jsonLineLogger(component: string, now: () => number = Date.now): Logger {
  const write = (level: string, message: string, fields?: LogFields) => {
    const line = JSON.stringify({ time: new Date(now()).toISOString(), level, component, message, ...fields });
    (level === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
  };
  return {
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
  };
}

/** A logger that drops everything (benchmarks measuring the hot path). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/**
 * Warnings about dropped input, at most `limit` lines per `windowMs`; the rest are counted and summarised in one
 * line when the next window opens. A flood of garbage datagrams thus costs a few log lines, not one per datagram.
 */
export class ThrottledWarnings {
  private windowStart = Number.NEGATIVE_INFINITY;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly limit = 20,
    private readonly windowMs = 10_000,
  ) {}

  warn(message: string, fields?: LogFields): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) {
        this.log.warn(`suppressed ${this.suppressed} similar warnings in the last window`, { windowMs: this.windowMs });
      }
      this.windowStart = now;
      this.inWindow = 0;
      this.suppressed = 0;
    }
    if (this.inWindow < this.limit) {
      this.inWindow++;
      this.log.warn(message, fields);
    } else {
      this.suppressed++;
    }
  }
}
