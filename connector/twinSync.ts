/**
 * Keeps twins in step with registrations and observations: it owns every twin write the connector makes.
 *
 * - Connection changes (registered, renewed, disconnected, a property unsupported) run one after another per device,
 *   in the order they happened (a quick register-deregister never ends "connected"), each retried on transient store
 *   errors; the pure rules are in `twinConnection.ts`. deviceConnected / deviceDisconnected events follow the write.
 * - Values go to the `ReadingsWriter` as readings bound to their registration (`Reading.registrationId`): observed
 *   ones with strictly increasing arrival times per registration, Send records with the time the device gave them
 *   (never later than their arrival, so a device clock running ahead cannot hold a property against newer values).
 */
import { CatalogEntry, ObservationDefaults, PropertyValue } from '../shared/catalog';
import { TwinDocument } from '../shared/twin';
import { connectionEvent } from '../shared/twinEvents';
import { TwinStore } from '../shared/twinStore';
import { EventSink, NO_EVENTS } from './eventQueue';
import { Logger } from './logger';
import { ObservationListener } from './observation/observationService';
import { AwakeTracker } from './queueMode';
import { ReadingsWriter } from './readingsWriter';
import { Registration } from './registration/registration';
import { connectedTwin, disconnectedTwin, observedTwin, renewedTwin, unsupportedPropertyTwin } from './twinConnection';

export interface TwinSyncOptions {
  store: TwinStore;
  writer: ReadingsWriter;
  events?: EventSink;
  observation: ObservationDefaults;
  connectorUrl: string;
  /** Queue mode: the twin's `connection.awakeUntil` after each Register and Update. */
  awake: AwakeTracker;
  log: Logger;
  now: () => number;
}

/** Attempts of one connection write to the twin store before it is given up (transient store errors). */
const TWIN_WRITE_ATTEMPTS = 3;
const TWIN_WRITE_RETRY_MS = 500;

export class TwinSync implements ObservationListener {
  private readonly tasks = new Map<string, Promise<boolean>>();
  private readonly events: EventSink;
  /** Last reading time handed out per registration, ms: readings of one device get strictly increasing times. */
  private readonly lastReadingAt = new WeakMap<Registration, number>();

  constructor(private readonly options: TwinSyncOptions) {
    this.events = options.events ?? NO_EVENTS;
  }

  /** The device registered: its twin connected, with an entry per announced property. Resolves to whether written. */
  registered(registration: Registration, announced: readonly CatalogEntry[]): Promise<boolean> {
    const now = this.iso(registration.updatedAt);
    const written = this.task(registration.endpoint, (twin) =>
      connectedTwin(twin, {
        registrationId: registration.id,
        lifetime: registration.lifetime,
        binding: registration.binding,
        lwm2mVersion: registration.lwm2mVersion,
        connectorId: registration.connectorId,
        connectorUrl: this.options.connectorUrl,
        announced,
        observation: this.options.observation,
        now,
        awakeUntil: this.awakeUntil(registration),
      }),
    );
    void written.then((ok) => ok && this.events.emit([connectionEvent(registration.endpoint, 'connected', now)]));
    return written;
  }

  /** An Update: activity time, lifetime, binding and (queue mode) awake time. */
  renewed(registration: Registration): Promise<boolean> {
    const now = this.iso(registration.updatedAt);
    const change = {
      lifetime: registration.lifetime,
      binding: registration.binding,
      now,
      awakeUntil: this.awakeUntil(registration),
    };
    return this.task(registration.endpoint, (twin) => renewedTwin(twin, registration.id, change));
  }

  /** An Update announced new objects: entries for their properties. */
  propertiesAdded(registration: Registration, added: readonly CatalogEntry[]): Promise<boolean> {
    const now = this.iso(this.options.now());
    return this.task(registration.endpoint, (twin) =>
      observedTwin(twin, registration.id, added, this.options.observation, now),
    );
  }

  /** De-register, lifetime expiry: the twin disconnected (if it is still this registration's). */
  disconnected(registration: Registration, at: number = this.options.now()): Promise<boolean> {
    const now = this.iso(at);
    const written = this.task(registration.endpoint, (twin) => disconnectedTwin(twin, registration.id, now));
    void written.then((ok) => ok && this.events.emit([connectionEvent(registration.endpoint, 'disconnected', now)]));
    return written;
  }

  onUnsupported(registration: Registration, entry: CatalogEntry): void {
    void this.task(registration.endpoint, (twin) => unsupportedPropertyTwin(twin, registration.id, entry.name));
  }

  onValue(registration: Registration, entry: CatalogEntry, value: PropertyValue): void {
    const time = Math.max(this.options.now(), (this.lastReadingAt.get(registration) ?? 0) + 1);
    this.lastReadingAt.set(registration, time);
    this.options.writer.add(registration.endpoint, {
      name: entry.name,
      value,
      time: this.iso(time),
      source: 'notify',
      registrationId: registration.id,
    });
  }

  /**
   * A Send record (`POST /dp`) of `entry`: `measuredAt` is its SenML time, ms (absent: its arrival). Like notifies,
   * the store keeps it only while it is newer than the twin's value.
   */
  onSent(registration: Registration, entry: CatalogEntry, value: PropertyValue, measuredAt?: number): void {
    const now = this.options.now();
    this.options.writer.add(registration.endpoint, {
      name: entry.name,
      value,
      time: this.iso(Math.min(measuredAt ?? now, now)),
      source: 'send',
      registrationId: registration.id,
    });
  }

  /** Resolves when every connection write started so far is done. */
  async settled(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks.values()]);
  }

  private awakeUntil(registration: Registration): string | undefined {
    const until = this.options.awake.awakeUntil(registration);
    return until === undefined ? undefined : this.iso(until);
  }

  private iso(ms: number): string {
    return new Date(ms).toISOString();
  }

  /**
   * Runs a twin mutation after the device's previous one (per-device order), retrying transient store errors.
   * Resolves to whether the twin was written (false: the mutation changed nothing, the twin is gone, or the write
   * failed; also when a write landed but its reply was lost and the retry found nothing left to change, so the event
   * that depends on it is lost: events are best effort). Never rejects: failures are logged.
   */
  private task(deviceId: string, mutate: (twin: TwinDocument) => TwinDocument | undefined): Promise<boolean> {
    const previous = this.tasks.get(deviceId) ?? Promise.resolve(false);
    const task = previous.then(async () => {
      for (let attempt = 1; ; attempt++) {
        // `mutate` may run more than once (a lost ETag race): its last run is what was written.
        let changed = false;
        const tracked = (twin: TwinDocument) => {
          const next = mutate(twin);
          changed = next !== undefined;
          return next;
        };
        try {
          const stored = await this.options.store.update(deviceId, tracked);
          return stored !== undefined && changed;
        } catch (error) {
          if (attempt >= TWIN_WRITE_ATTEMPTS) {
            this.options.log.error('twin connection write failed', {
              deviceId,
              error: error instanceof Error ? error.message : String(error),
            });
            return false;
          }
          await new Promise((resolve) => setTimeout(resolve, TWIN_WRITE_RETRY_MS * attempt));
        }
      }
    });
    this.tasks.set(deviceId, task);
    void task.then(() => {
      if (this.tasks.get(deviceId) === task) this.tasks.delete(deviceId);
    });
    return task;
  }
}
