/**
 * The observations a server holds on one simulated device, and when each one notifies (RFC 7641 with the
 * LwM2M attributes): never sooner than pmin after the previous notification, at least every pmax even
 * without a change, otherwise when the value changes. Every pending notification waits in the fleet's
 * scheduler, so an idle observation costs no timer.
 */
import { formatPath, Lwm2mPath } from './deviceResources';
import { NotificationMessage, RemoteAddress } from './coapEndpoint';
import { OBSERVE_SEQUENCE_MODULUS, ResponseCode } from './protocol';
import { Scheduler, ScheduledTask } from './scheduler';

/** Effective observation attributes of a path, seconds; pmax undefined: no periodic notification. */
export interface EffectiveAttributes {
  readonly pminSeconds: number;
  readonly pmaxSeconds?: number;
}

/** What a test or a log may see of one observation. */
export interface ObservationInfo {
  readonly path: string;
  /** The observe request's token, hex. */
  readonly token: string;
  readonly pminSeconds: number;
  readonly pmaxSeconds?: number;
  readonly contentFormat: number;
  /** Notifications sent so far (the first response to the observe request not included). */
  readonly notifications: number;
}

export interface SentNotification {
  readonly path: string;
  readonly sequence: number;
  readonly confirmable: boolean;
  /** Why it was sent now: a value change, or pmax elapsed without one. */
  readonly trigger: 'change' | 'pmax';
}

export interface ObservationsOptions {
  readonly scheduler: Scheduler;
  readonly attributesFor: (path: Lwm2mPath) => EffectiveAttributes;
  /** The current representation of `path` in `contentFormat`; undefined when it can no longer be produced. */
  readonly encode: (path: Lwm2mPath, contentFormat: number) => Buffer | undefined;
  readonly transmit: (remote: RemoteAddress, token: Buffer, message: NotificationMessage, confirmable: boolean) => void;
  /** Every Nth notification of an observation is confirmable; 0 means none, 1 means all. */
  readonly confirmableEvery: number;
  readonly onSent: (notification: SentNotification) => void;
  /** An observation ended: outstanding CON notifications of its token can be forgotten. */
  readonly onRemoved: (token: Buffer) => void;
}

interface Observation {
  readonly token: Buffer;
  readonly tokenKey: string;
  readonly path: Lwm2mPath;
  readonly pathKey: string;
  readonly remote: RemoteAddress;
  readonly contentFormat: number;
  /** Cached `attributesFor(path)`; refreshed by `attributesChanged`. */
  attributes: EffectiveAttributes;
  lastSentMs: number;
  /** The observed value changed (or pmax passed while paused) since the last notification. */
  pending: boolean;
  pmaxOverdue: boolean;
  pminTask?: ScheduledTask;
  pmaxTask?: ScheduledTask;
  notifications: number;
}

export class Observations {
  private readonly byToken = new Map<string, Observation>();
  private paused = false;
  private sequence = 0;
  private batchDepth = 0;
  private readonly batched = new Set<Observation>();

  constructor(private readonly options: ObservationsOptions) {}

  /**
   * Registers (or re-registers, same token) an observation and returns the Observe value of the first
   * response, which carries the current value and starts the pmin/pmax clock.
   */
  add(token: Buffer, remote: RemoteAddress, path: Lwm2mPath, contentFormat: number): number {
    const tokenKey = token.toString('hex');
    this.cancel(tokenKey);
    const observation: Observation = {
      token,
      tokenKey,
      path,
      pathKey: formatPath(path),
      remote,
      contentFormat,
      attributes: this.options.attributesFor(path),
      lastSentMs: this.options.scheduler.now(),
      pending: false,
      pmaxOverdue: false,
      notifications: 0,
    };
    this.byToken.set(tokenKey, observation);
    this.schedulePmax(observation);
    return this.nextSequence();
  }

  /** Removes the observation with this token (hex); false when there is none. */
  cancel(tokenKey: string): boolean {
    const observation = this.byToken.get(tokenKey);
    if (!observation) return false;
    this.byToken.delete(tokenKey);
    this.options.scheduler.cancel(observation.pminTask);
    this.options.scheduler.cancel(observation.pmaxTask);
    this.options.onRemoved(observation.token);
    return true;
  }

  /** Removes every observation. */
  clear(): void {
    for (const tokenKey of [...this.byToken.keys()]) this.cancel(tokenKey);
  }

  /** A resource value changed: observations of it, its instance or its object notify per pmin. */
  changed(resourcePath: string): void {
    for (const observation of this.byToken.values()) {
      if (resourcePath === observation.pathKey || resourcePath.startsWith(observation.pathKey + '/')) {
        observation.pending = true;
        if (this.batchDepth > 0) this.batched.add(observation);
        else this.trySend(observation);
      }
    }
  }

  /**
   * Runs `changes` and then notifies once per affected observation, so a step that changes several
   * resources of an observed instance sends one notification, not one per resource.
   */
  batch(changes: () => void): void {
    this.batchDepth++;
    try {
      changes();
    } finally {
      if (--this.batchDepth === 0 && this.batched.size > 0) {
        const affected = [...this.batched];
        this.batched.clear();
        for (const observation of affected) {
          if (this.byToken.get(observation.tokenKey) === observation) this.trySend(observation);
        }
      }
    }
  }

  /** Attributes changed (Write-Attributes, /1/0/2-3): every observation re-plans pmin and pmax. */
  attributesChanged(): void {
    for (const observation of this.byToken.values()) {
      observation.attributes = this.options.attributesFor(observation.path);
      this.options.scheduler.cancel(observation.pminTask);
      observation.pminTask = undefined;
      this.schedulePmax(observation);
      if (observation.pending) this.trySend(observation);
    }
  }

  /** Holds every notification back (requests are still answered) until `resume`. */
  pause(): void {
    this.paused = true;
  }

  /** Sends what was held back, pmin permitting, and carries on. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const observation of this.byToken.values()) {
      if (observation.pmaxOverdue) this.send(observation, 'pmax');
      else if (observation.pending) this.trySend(observation);
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get size(): number {
    return this.byToken.size;
  }

  list(): ObservationInfo[] {
    return [...this.byToken.values()].map((observation) => {
      const attributes = observation.attributes;
      return {
        path: observation.pathKey,
        token: observation.tokenKey,
        pminSeconds: attributes.pminSeconds,
        ...(attributes.pmaxSeconds !== undefined && { pmaxSeconds: attributes.pmaxSeconds }),
        contentFormat: observation.contentFormat,
        notifications: observation.notifications,
      };
    });
  }

  pathOf(tokenKey: string): string | undefined {
    return this.byToken.get(tokenKey)?.pathKey;
  }

  private nextSequence(): number {
    this.sequence = (this.sequence + 1) % OBSERVE_SEQUENCE_MODULUS;
    return this.sequence;
  }

  private trySend(observation: Observation): void {
    if (this.paused || observation.pminTask) return;
    const earliestMs = observation.lastSentMs + observation.attributes.pminSeconds * 1000;
    if (this.options.scheduler.now() >= earliestMs) {
      this.send(observation, 'change');
      return;
    }
    observation.pminTask = this.options.scheduler.at(earliestMs, () => {
      observation.pminTask = undefined;
      if (observation.pending) this.trySend(observation);
    });
  }

  private send(observation: Observation, trigger: SentNotification['trigger']): void {
    const payload = this.options.encode(observation.path, observation.contentFormat);
    if (payload === undefined) {
      this.cancel(observation.tokenKey);
      return;
    }
    observation.notifications++;
    const every = this.options.confirmableEvery;
    const confirmable = every > 0 && observation.notifications % every === 0;
    const sequence = this.nextSequence();
    this.options.transmit(
      observation.remote,
      observation.token,
      { code: ResponseCode.CONTENT, observe: sequence, contentFormat: observation.contentFormat, payload },
      confirmable,
    );
    observation.lastSentMs = this.options.scheduler.now();
    observation.pending = false;
    observation.pmaxOverdue = false;
    this.options.scheduler.cancel(observation.pminTask);
    observation.pminTask = undefined;
    this.schedulePmax(observation);
    this.options.onSent({ path: observation.pathKey, sequence, confirmable, trigger });
  }

  private schedulePmax(observation: Observation): void {
    this.options.scheduler.cancel(observation.pmaxTask);
    observation.pmaxTask = undefined;
    const { pmaxSeconds } = observation.attributes;
    if (pmaxSeconds === undefined) return;
    observation.pmaxTask = this.options.scheduler.at(observation.lastSentMs + pmaxSeconds * 1000, () => {
      observation.pmaxTask = undefined;
      if (this.paused) observation.pmaxOverdue = true;
      else this.send(observation, 'pmax');
    });
  }
}
