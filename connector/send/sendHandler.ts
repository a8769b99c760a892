/**
 * LwM2M 1.1 Information Reporting "Send" (`POST /dp`): a registered device reports
 * values it chose, in SenML JSON (110) or SenML CBOR (112), without being observed. Knows no CoAP: the server hands
 * it the registration the request came from, the Content-Format and the payload, and maps the outcome.
 *
 * Contracts:
 * - every record whose path is a catalog resource (the Server object at the registration's own instance) becomes a
 *   reading of the listener's `onSent`, with the record's SenML time (base time + time), or its arrival time when it
 *   has none; the store keeps it only while it is newer than the twin's value, as for notifies;
 * - a record for a path outside the catalog is ignored (logged once per registration and path); a value of the wrong
 *   type or outside the catalog's rules (`validateValue`) is dropped and logged; the other records still count;
 * - a payload that is not a SenML pack is refused whole (`malformed`), a format other than SenML JSON or SenML CBOR
 *   is `unsupportedFormat`; nothing of either is written.
 */
import { CatalogEntry, PropertyValue, validateValue } from '../../shared/catalog';
import { Logger, ThrottledWarnings } from '../logger';
import { ContentFormat, toPropertyValue } from '../lwm2m/contentFormat';
import { Lwm2mPayloadError } from '../lwm2m/lwm2mPayloadError';
import { catalogEntryAt } from '../lwm2m/resourcePath';
import { senmlCborRecords } from '../lwm2m/senmlCbor';
import { senmlJsonRecords } from '../lwm2m/senmlJson';
import { SenmlRecord } from '../lwm2m/senmlRecords';
import { Registration } from '../registration/registration';

export interface SendListener {
  /** A catalogued value the device sent; `measuredAt`: its SenML time, ms since the epoch (absent: none given). */
  onSent(registration: Registration, entry: CatalogEntry, value: PropertyValue, measuredAt?: number): void;
}

export type SendOutcome =
  | { kind: 'changed'; taken: number }
  | { kind: 'malformed'; detail: string }
  | { kind: 'unsupportedFormat'; detail: string };

export interface SendHandlerOptions {
  listener: SendListener;
  log: Logger;
  now: () => number;
}

/** Unknown paths remembered per registration for "logged once" (beyond this, they are logged again). */
const MAX_LOGGED_UNKNOWN_PATHS = 64;

export class SendHandler {
  private readonly warnings: ThrottledWarnings;
  private readonly loggedUnknown = new WeakMap<Registration, Set<string>>();

  constructor(private readonly options: SendHandlerOptions) {
    this.warnings = new ThrottledWarnings(options.log, options.now);
  }

  handle(registration: Registration, format: number | undefined, payload: Buffer): SendOutcome {
    const now = this.options.now();
    let records: SenmlRecord[];
    try {
      if (format === ContentFormat.SENML_JSON) records = senmlJsonRecords(payload, now);
      else if (format === ContentFormat.SENML_CBOR) records = senmlCborRecords(payload, now);
      else {
        return {
          kind: 'unsupportedFormat',
          detail: `Send takes SenML JSON (110) or SenML CBOR (112); got content format ${format ?? 'none'}`,
        };
      }
    } catch (error) {
      if (!(error instanceof Lwm2mPayloadError)) throw error;
      this.warnings.warn('Send refused: unreadable payload', {
        endpoint: registration.endpoint,
        reason: error.message,
      });
      return { kind: 'malformed', detail: error.message };
    }
    let taken = 0;
    for (const record of records) {
      const entry = catalogEntryAt(registration, record.path);
      if (!entry || !entry.readable) {
        this.unknownPath(registration, record.path);
        continue;
      }
      const value = this.checked(registration, entry, record);
      if (value === undefined) continue;
      this.options.listener.onSent(registration, entry, value, record.time);
      taken++;
    }
    return { kind: 'changed', taken };
  }

  private checked(registration: Registration, entry: CatalogEntry, record: SenmlRecord): PropertyValue | undefined {
    try {
      const check = validateValue(entry, toPropertyValue(entry, record.value));
      if (check.ok) return check.value;
      this.dropped(registration, record.path, `${check.reason} (${entry.path})`);
    } catch (error) {
      if (!(error instanceof Lwm2mPayloadError)) throw error;
      this.dropped(registration, record.path, error.message);
    }
    return undefined;
  }

  private dropped(registration: Registration, path: string, reason: string): void {
    this.warnings.warn('dropped unreadable Send record', { endpoint: registration.endpoint, path, reason });
  }

  private unknownPath(registration: Registration, path: string): void {
    let logged = this.loggedUnknown.get(registration);
    if (!logged) {
      logged = new Set();
      this.loggedUnknown.set(registration, logged);
    }
    if (logged.has(path)) return;
    if (logged.size >= MAX_LOGGED_UNKNOWN_PATHS) logged.clear();
    logged.add(path);
    this.options.log.info('Send record for a resource outside the catalog ignored', {
      endpoint: registration.endpoint,
      path,
    });
  }
}
