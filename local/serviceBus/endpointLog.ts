/** Log of the endpoint: one debug line per connection or link event; errors always. */
export interface EndpointLog {
  debug(line: string): void;
  error(line: string): void;
}

/**
 * With a `log` function every line goes to it, prefixed `debug:` or `error:`; without one, debug lines are dropped
 * and errors go to stderr.
 */
export function createEndpointLog(log?: (line: string) => void): EndpointLog {
  if (log) {
    return { debug: (line) => log(`debug: ${line}`), error: (line) => log(`error: ${line}`) };
  }
  return { debug: () => undefined, error: (line) => console.error(`[service-bus] error: ${line}`) };
}
