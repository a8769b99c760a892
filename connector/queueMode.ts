/**
 * LwM2M queue mode (Transport §6.5 in 1.1+, Core §5.3.3 in 1.0): a device that registered with `Q` in its binding
 * (1.0: `b=UQ`; 1.1+: the `Q` parameter, which registrationParams folds into the binding) may sleep whenever it sent
 * nothing for a while. The server may send it requests only within its awake window after a message from it.
 *
 * Contract: a queue-mode device is awake until `awakeWindowMs` after the latest of its last Register/Update
 * (`Registration.updatedAt`, durable, so a restarted connector knows it) and its last answer to a request from this
 * server (in memory). Notifications are not counted: they arrive beside the registration interface, and a device
 * that notifies announces its wake with an Update. A device in plain mode (no `Q`) is always awake.
 */
import { Registration } from './registration/registration';

/** Whether a binding is queue mode (`UQ`, `SQ`, `UQS`, ...). */
export function isQueueMode(binding: string): boolean {
  return binding.includes('Q');
}

export class AwakeTracker {
  /** Last answer to a request from this server, ms, per registration. */
  private readonly answeredAt = new WeakMap<Registration, number>();

  constructor(
    /** `Connector__awakeWindowSeconds` in ms. */
    readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** The device answered a request: its awake window starts again. */
  answered(registration: Registration): void {
    if (!isQueueMode(registration.binding)) return;
    this.answeredAt.set(registration, Math.max(this.answeredAt.get(registration) ?? 0, this.now()));
  }

  /** Until when a queue-mode device is awake, ms; undefined for a device that is not in queue mode. */
  awakeUntil(registration: Registration): number | undefined {
    if (!isQueueMode(registration.binding)) return undefined;
    return Math.max(registration.updatedAt, this.answeredAt.get(registration) ?? 0) + this.windowMs;
  }

  /** Whether a request for the device now would reach a sleeping device. */
  asleep(registration: Registration): boolean {
    const until = this.awakeUntil(registration);
    return until !== undefined && this.now() >= until;
  }
}
