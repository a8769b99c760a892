/**
 * Observation of a registration's catalog resources (LwM2M Core §6.4, RFC 7641): Write-Attributes (pmin, pmax) then
 * Observe, per resource; restoring stored observations after a restart; cancelling them.
 *
 * Contracts:
 * - A device is sent one Confirmable request (with its retransmissions) until it has answered once: a Register can
 *   be spoofed, and the connector must not send a spoofed address twenty observe exchanges. A device that does not
 *   answer is observed again when it next sends an Update (`observe` skips what is already observed).
 * - Each established observation's token is recorded in `registration.observations` (then `onObservationsChanged`
 *   lets the registration be stored), so a restarted connector accepts the device's notifications (`restore`).
 * - Observe carries an Accept option chosen from what the device announced (`acceptFor`); values (the observe
 *   response and every notification, in any format the connector decodes) reach the `ObservationListener` decoded
 *   and checked against the catalog; an unreadable one is logged and dropped. Failures are logged, never thrown.
 * - `reobserve` replaces every observation of a registration by a new one (the device moved, or it notifies from a
 *   context the connector does not know): at most once per `REOBSERVE_INTERVAL_MS` per registration, and never for
 *   a token the connector itself retired, so late notifications on old tokens cannot start a loop.
 */
import { CatalogEntry, ObservationDefaults, PropertyValue, findProperty, observationFor } from '../../shared/catalog';
import {
  CoapCancelledError,
  CoapEndpoint,
  CoapTimeoutError,
  NotificationListener,
  OutgoingRequest,
  observationHandle,
  observeOption,
} from '../coap/coapEndpoint';
import {
  CoapMessage,
  Code,
  OptionNumber,
  formatCode,
  isSuccessCode,
  readUintOption,
  stringOption,
  uintOption,
  CoapOption,
} from '../coap/coapMessage';
import { acceptFor } from '../lwm2m/acceptFor';
import { decodePropertyValue } from '../lwm2m/contentFormat';
import { devicePath, resourcePath } from '../lwm2m/resourcePath';
import { Logger, ThrottledWarnings } from '../logger';
import { Registration, sessionOwnedBy } from '../registration/registration';
import { RegistrationRegistry } from '../registration/registrationRegistry';

/** Receives what observations produce. */
export interface ObservationListener {
  /** A value of `entry` from `registration`'s device (observe response or notification). */
  onValue(registration: Registration, entry: CatalogEntry, value: PropertyValue): void;
  /** The device answered Observe with 4.04: it does not have the resource. */
  onUnsupported(registration: Registration, entry: CatalogEntry): void;
}

export interface ObservationServiceOptions {
  registry: RegistrationRegistry;
  /** The CoAP endpoint a registration's requests leave from. */
  endpointFor: (registration: Registration) => CoapEndpoint;
  listener: ObservationListener;
  /** The set of tokens in `registration.observations` changed (store the registration). */
  onObservationsChanged: (registration: Registration) => void;
  observation: ObservationDefaults;
  /** Bound on each request sent (write-attributes, observe), ms. */
  deviceTimeoutMs: number;
  log: Logger;
  now: () => number;
}

type Outcome = 'answered' | 'silent' | 'ended';

/** Shortest time between two re-observations of one registration triggered by unknown notifications, ms. */
export const REOBSERVE_INTERVAL_MS = 30_000;
/** Retired tokens remembered per registration (late notifications on them get RST without a re-observation). */
const MAX_RETIRED_TOKENS = 64;

interface ReobserveState {
  lastAt: number;
  retired: number[];
}

export class ObservationService {
  private readonly warnings: ThrottledWarnings;
  /** Names whose Write-Attributes/Observe exchange is under way, per registration (none kept once it empties). */
  private readonly inFlight = new WeakMap<Registration, Set<string>>();
  private readonly reobserving = new WeakMap<Registration, ReobserveState>();

  constructor(private readonly options: ObservationServiceOptions) {
    this.warnings = new ThrottledWarnings(options.log, options.now);
  }

  /**
   * Observes those of `entries` that `registration` does not observe yet: the first alone, the rest once the device
   * answered. Resolves when every exchange ended.
   */
  async observe(registration: Registration, entries: readonly CatalogEntry[]): Promise<void> {
    // Names being observed already (an Update during the first round) are left to that round: no second token.
    const pending = this.inFlight.get(registration);
    const missing = entries.filter(
      (entry) => registration.observations[entry.name] === undefined && !pending?.has(entry.name),
    );
    if (missing.length === 0) return;
    const busy = pending ?? new Set<string>();
    if (!pending) this.inFlight.set(registration, busy);
    for (const entry of missing) busy.add(entry.name);
    try {
      await this.observeMissing(registration, missing, busy);
    } finally {
      for (const entry of missing) busy.delete(entry.name);
      if (busy.size === 0 && this.inFlight.get(registration) === busy) this.inFlight.delete(registration);
    }
  }

  /** Observes `missing`, each name leaving `busy` as soon as its own exchange ended. */
  private async observeMissing(
    registration: Registration,
    missing: readonly CatalogEntry[],
    busy: Set<string>,
  ): Promise<void> {
    const listener = new RegistrationObserver(this, registration);
    const observeOne = (entry: CatalogEntry) =>
      this.observeOne(registration, entry, listener).finally(() => busy.delete(entry.name));
    const [first, ...rest] = missing;
    const firstOutcome = await observeOne(first);
    if (firstOutcome === 'silent') {
      this.warnings.warn('device did not answer; its observations wait for its next Update', {
        endpoint: registration.endpoint,
        registrationId: registration.id,
      });
    }
    if (firstOutcome === 'answered') await Promise.all(rest.map(observeOne));
    if (this.options.registry.holds(registration)) this.options.onObservationsChanged(registration);
  }

  /** Re-creates the stored observations of a registration loaded at start (see `CoapEndpoint.restoreObservation`). */
  restore(registration: Registration): void {
    const coap = this.options.endpointFor(registration);
    const listener = new RegistrationObserver(this, registration);
    for (const [name, token] of Object.entries(registration.observations)) {
      const entry = findProperty(name);
      // With the observe request's options again, so a block-wise notification's later blocks can be fetched.
      const restored =
        entry !== undefined &&
        coap.restoreObservation(registration.address, token, listener, entry, this.observeOptions(registration, entry));
      if (!restored) {
        delete registration.observations[name];
      }
    }
  }

  /** Stops observing `names` (an Update removed their objects); the device's next notification gets RST. */
  cancel(registration: Registration, names: readonly string[]): void {
    const observed = names.filter((name) => registration.observations[name] !== undefined);
    if (observed.length === 0) return; // no reobserve state made for nothing (it stays with the registration)
    const coap = this.options.endpointFor(registration);
    const state = this.reobserveState(registration);
    for (const name of observed) {
      const token = registration.observations[name];
      coap.cancelObservation(registration.address, token);
      delete registration.observations[name];
      state.retired.push(token);
    }
    if (state.retired.length > MAX_RETIRED_TOKENS) state.retired.splice(0, state.retired.length - MAX_RETIRED_TOKENS);
  }

  /**
   * Cancels every observation of `registration` and observes `entries` anew (the device moved to a new address: it
   * may have cancelled its observations after their notifications got RST). Resolves when the exchanges ended.
   */
  reobserve(registration: Registration, entries: readonly CatalogEntry[]): Promise<void> {
    this.reobserveState(registration).lastAt = this.options.now();
    const names = Object.keys(registration.observations);
    this.cancel(registration, names);
    if (names.length > 0) this.options.onObservationsChanged(registration);
    return this.observe(registration, entries);
  }

  /**
   * A notification from `registration`'s address with a token that is not one of its live observations (`handle`):
   * the device observes in a context the connector lost. Re-observes `entries`, unless the token is one this
   * connector retired or the registration was re-observed less than `REOBSERVE_INTERVAL_MS` ago. Returns whether it
   * re-observes.
   */
  unknownNotification(registration: Registration, handle: number, entries: readonly CatalogEntry[]): boolean {
    const state = this.reobserveState(registration);
    if (state.retired.includes(handle)) return false;
    if (this.options.now() - state.lastAt < REOBSERVE_INTERVAL_MS) return false;
    this.options.log.info('notification from an unknown context; observing again', {
      endpoint: registration.endpoint,
      registrationId: registration.id,
    });
    void this.reobserve(registration, entries);
    return true;
  }

  /** The Uri-Path and Accept of a resource's observe request. */
  private observeOptions(registration: Registration, entry: CatalogEntry): CoapOption[] {
    return [...resourcePath(registration, entry), uintOption(OptionNumber.ACCEPT, acceptFor(registration))];
  }

  /** Write-Attributes then Observe for one resource; its notifications go to `listener`. */
  private async observeOne(
    registration: Registration,
    entry: CatalogEntry,
    listener: RegistrationObserver,
  ): Promise<Outcome> {
    const { pmin, pmax } = observationFor(entry, this.options.observation);
    const path = resourcePath(registration, entry);
    let answered = false;
    try {
      const attributes = await this.send(registration, {
        code: Code.PUT,
        options: [
          ...path,
          stringOption(OptionNumber.URI_QUERY, `pmin=${pmin}`),
          stringOption(OptionNumber.URI_QUERY, `pmax=${pmax}`),
        ],
      });
      answered = true;
      if (!isSuccessCode(attributes.code)) {
        this.warnings.warn('write-attributes refused', {
          endpoint: registration.endpoint,
          path: entry.path,
          coapCode: formatCode(attributes.code),
        });
      }
      if (!this.options.registry.holds(registration)) return 'ended';
      const response = await this.send(
        registration,
        {
          code: Code.GET,
          options: [observeOption(true), ...this.observeOptions(registration, entry)],
        },
        { listener, entry },
      );
      const observing = isSuccessCode(response.code) && readUintOption(response, OptionNumber.OBSERVE) !== undefined;
      if (!this.options.registry.holds(registration)) {
        if (observing) {
          this.options.endpointFor(registration).cancelObservation(registration.address, observationHandle(response));
        }
        return 'ended';
      }
      if (response.code === Code.NOT_FOUND) {
        this.options.log.info('resource not supported by the device', {
          endpoint: registration.endpoint,
          path: entry.path,
        });
        this.options.listener.onUnsupported(registration, entry);
        return 'answered';
      }
      if (!isSuccessCode(response.code)) {
        this.warnings.warn('observe refused', {
          endpoint: registration.endpoint,
          path: entry.path,
          coapCode: formatCode(response.code),
        });
        return 'answered';
      }
      if (observing) {
        registration.observations[entry.name] = observationHandle(response);
      } else {
        this.warnings.warn('resource answered observe without observing', {
          endpoint: registration.endpoint,
          path: entry.path,
        });
      }
      this.takeValue(registration, entry, response);
      return 'answered';
    } catch (error) {
      if (!this.options.registry.holds(registration) || error instanceof CoapCancelledError) return 'ended';
      if (!answered && error instanceof CoapTimeoutError) return 'silent';
      this.warnings.warn('observe failed', {
        endpoint: registration.endpoint,
        path: entry.path,
        error: error instanceof Error ? error.message : String(error),
      });
      return answered ? 'answered' : 'silent';
    }
  }

  /** A notification of `entry` on `registration` (from its `RegistrationObserver`). */
  handleNotification(registration: Registration, entry: CatalogEntry, message: CoapMessage, final: boolean): void {
    if (!this.options.registry.holds(registration)) return;
    if (final && registration.observations[entry.name] !== undefined) {
      delete registration.observations[entry.name];
      this.options.onObservationsChanged(registration);
    }
    if (!isSuccessCode(message.code)) {
      this.warnings.warn('observation ended by the device', {
        endpoint: registration.endpoint,
        path: entry.path,
        coapCode: formatCode(message.code),
      });
      return;
    }
    this.takeValue(registration, entry, message);
  }

  /** Decodes a response or notification; a malformed or out-of-catalog value is logged and dropped. */
  private takeValue(registration: Registration, entry: CatalogEntry, message: CoapMessage): void {
    let value: PropertyValue;
    try {
      value = decodePropertyValue(
        entry,
        readUintOption(message, OptionNumber.CONTENT_FORMAT),
        message.payload,
        devicePath(registration, entry),
      );
    } catch (error) {
      this.warnings.warn('dropped unreadable notification', {
        endpoint: registration.endpoint,
        path: entry.path,
        reason: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    this.options.listener.onValue(registration, entry, value);
  }

  private reobserveState(registration: Registration): ReobserveState {
    let state = this.reobserving.get(registration);
    if (!state) {
      state = { lastAt: Number.NEGATIVE_INFINITY, retired: [] };
      this.reobserving.set(registration, state);
    }
    return state;
  }

  /** Sends a request to the registration's device; with `observer`, an observation of `observer.entry`. */
  private send(
    registration: Registration,
    request: OutgoingRequest,
    observer?: { listener: RegistrationObserver; entry: CatalogEntry },
  ): Promise<CoapMessage> {
    const coap = this.options.endpointFor(registration);
    if (!sessionOwnedBy(registration, coap)) {
      return Promise.reject(new CoapCancelledError('the device has no DTLS session at its address'));
    }
    return coap.request(registration.address, request, {
      timeoutMs: this.options.deviceTimeoutMs,
      onNotification: observer?.listener,
      subject: observer?.entry,
    });
  }
}

/**
 * The listener of a registration's observations, each established with its catalog entry as the subject: one per
 * `observe` or `restore` call rather than one per observation (there are 20 per device).
 */
class RegistrationObserver implements NotificationListener<CatalogEntry> {
  constructor(
    private readonly service: ObservationService,
    private readonly registration: Registration,
  ) {}

  onNotification(entry: CatalogEntry, message: CoapMessage, final: boolean): void {
    this.service.handleNotification(this.registration, entry, message, final);
  }
}
