/**
 * One trigger type's listener plugged into the host core. The host stops every listener, drains the invocations in
 * flight (the shared `FunctionInvoker`), then closes every listener.
 */
export interface TriggerListener {
  /** Starts receiving work; resolves when ready, rejects with a clear error when the trigger cannot start. */
  start(): Promise<void>;
  /** Stops taking new work; invocations already started run to the end. Idempotent. */
  stop(): Promise<void>;
  /** Releases everything (sockets, receivers, leases) after the drain; settles what the drained invocations left. */
  close(): Promise<void>;
  /** One line per function for the host's startup summary. */
  describe(): string[];
}
