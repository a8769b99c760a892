/**
 * The device operations the internal API exposes (LwM2M Device Management interface, Core §6.3): Read (with the
 * Accept option `acceptFor` picks from the registration), Write (text/plain), Execute, on the device's current
 * registration, over the endpoint it registered through.
 *
 * Errors are `TwinError`s with the stable codes of shared/errors.ts, which the internal API sends as problem
 * documents: DeviceNotConnected (no registration here, or it ended during the request), DeviceTimeout (no answer
 * within the bound, retransmissions included), DeviceAsleep at once for a queue-mode device outside its awake window
 * (`AwakeTracker`: nothing is sent; the job waits for the device's next Update), DeviceRejected (an error code, a RST or an unreadable value, with
 * `coapCode`), ConnectorUnavailable (the connector is stopping).
 */
import { CatalogEntry, PropertyValue } from '../shared/catalog';
import { TwinError } from '../shared/errors';
import {
  CoapBlockwiseError,
  CoapCancelledError,
  CoapEndpoint,
  CoapResetError,
  CoapTimeoutError,
  OutgoingRequest,
} from './coap/coapEndpoint';
import {
  CoapMessage,
  Code,
  OptionNumber,
  formatCode,
  isSuccessCode,
  readUintOption,
  uintOption,
} from './coap/coapMessage';
import { acceptFor } from './lwm2m/acceptFor';
import { ContentFormat, decodePropertyValue, encodeTextValue } from './lwm2m/contentFormat';
import { devicePath, resourcePath } from './lwm2m/resourcePath';
import { AwakeTracker } from './queueMode';
import { Registration, sessionOwnedBy } from './registration/registration';
import { RegistrationRegistry } from './registration/registrationRegistry';

export interface DeviceReadResult {
  value: PropertyValue;
  /** ISO time the value was received. */
  time: string;
  /** The registration it came through. */
  registrationId: string;
}

/** Longest piece of a device's diagnostic payload quoted in an error message. */
const MAX_QUOTED_DIAGNOSTIC = 200;

export interface DeviceRequestsOptions {
  registry: RegistrationRegistry;
  endpointFor: (registration: Registration) => CoapEndpoint;
  now: () => number;
  /** True once the connector is stopping. */
  closing: () => boolean;
  /** Queue mode: which devices sleep now; their answers keep them awake. */
  awake: AwakeTracker;
}

export class DeviceRequests {
  constructor(private readonly options: DeviceRequestsOptions) {}

  async read(deviceId: string, entry: CatalogEntry, timeoutMs: number): Promise<DeviceReadResult> {
    const registration = this.registrationOf(deviceId);
    const request: OutgoingRequest = {
      code: Code.GET,
      options: [...resourcePath(registration, entry), uintOption(OptionNumber.ACCEPT, acceptFor(registration))],
    };
    const response = await this.send(registration, request, timeoutMs);
    this.expectSuccess(deviceId, entry, response);
    const time = new Date(this.options.now()).toISOString();
    try {
      const format = readUintOption(response, OptionNumber.CONTENT_FORMAT);
      const value = decodePropertyValue(entry, format, response.payload, devicePath(registration, entry));
      return { value, time, registrationId: registration.id };
    } catch (error) {
      throw new TwinError(
        'DeviceRejected',
        `${deviceId} sent an unreadable ${entry.name}: ${(error as Error).message}`,
        {
          coapCode: formatCode(response.code),
        },
      );
    }
  }

  async write(deviceId: string, entry: CatalogEntry, value: PropertyValue, timeoutMs: number): Promise<void> {
    const registration = this.registrationOf(deviceId);
    const request: OutgoingRequest = {
      code: Code.PUT,
      options: [...resourcePath(registration, entry), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.TEXT)],
      payload: encodeTextValue(value),
    };
    this.expectSuccess(deviceId, entry, await this.send(registration, request, timeoutMs));
  }

  async execute(deviceId: string, entry: CatalogEntry, timeoutMs: number): Promise<void> {
    const registration = this.registrationOf(deviceId);
    const request: OutgoingRequest = { code: Code.POST, options: resourcePath(registration, entry) };
    this.expectSuccess(deviceId, entry, await this.send(registration, request, timeoutMs));
  }

  private registrationOf(deviceId: string): Registration {
    if (this.options.closing()) throw stopping(deviceId);
    const registration = this.options.registry.forEndpoint(deviceId);
    if (!registration) {
      throw new TwinError('DeviceNotConnected', `${deviceId} holds no registration with this connector instance`);
    }
    if (this.options.awake.asleep(registration)) {
      const awakeUntil = new Date(this.options.awake.awakeUntil(registration) as number).toISOString();
      throw new TwinError(
        'DeviceAsleep',
        `${deviceId} is in queue mode and asleep since ${awakeUntil} (no message from it within the awake window)`,
        { awakeUntil },
      );
    }
    return registration;
  }

  private async send(registration: Registration, request: OutgoingRequest, timeoutMs: number): Promise<CoapMessage> {
    const deviceId = registration.endpoint;
    try {
      const coap = this.options.endpointFor(registration);
      if (!sessionOwnedBy(registration, coap)) {
        throw new CoapCancelledError('the device has no DTLS session at its address: it must handshake again');
      }
      const response = await coap.request(registration.address, request, { timeoutMs });
      this.options.awake.answered(registration);
      return response;
    } catch (error) {
      if (error instanceof CoapTimeoutError) {
        throw new TwinError('DeviceTimeout', `${deviceId} did not answer within ${timeoutMs} ms (${error.message})`, {
          timeoutMs,
        });
      }
      if (error instanceof CoapBlockwiseError) {
        throw new TwinError(
          'DeviceRejected',
          `${deviceId} sent a block-wise transfer that could not be completed (${error.message})`,
          {
            coapCode: 'blockwise',
          },
        );
      }
      if (error instanceof CoapResetError) {
        throw new TwinError('DeviceRejected', `${deviceId} answered with a CoAP reset`, { coapCode: 'RST' });
      }
      if (error instanceof CoapCancelledError) {
        throw this.options.closing()
          ? stopping(deviceId)
          : new TwinError('DeviceNotConnected', `${deviceId} is no longer registered (${error.message})`);
      }
      throw error;
    }
  }

  private expectSuccess(deviceId: string, entry: CatalogEntry, response: CoapMessage): void {
    if (isSuccessCode(response.code)) return;
    const coapCode = formatCode(response.code);
    const diagnostic =
      response.payload.length > 0 ? `: ${response.payload.toString('utf8').slice(0, MAX_QUOTED_DIAGNOSTIC)}` : '';
    throw new TwinError(
      'DeviceRejected',
      `${deviceId} refused ${entry.name} (${entry.path}) with ${coapCode}${diagnostic}`,
      {
        coapCode,
      },
    );
  }
}

function stopping(deviceId: string): TwinError {
  return new TwinError('ConnectorUnavailable', `the connector is shutting down; retry (${deviceId})`);
}
