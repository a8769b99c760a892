/**
 * Protocol constants of the simulated LwM2M client, each named once with its meaning.
 *
 * CoAP transmission parameters (RFC 7252 §4.8) are the `coap` package's `parameters`, read when used, so
 * `coap.updateTiming` changes them for the simulator and for anything else in the process alike.
 */
import { ContentFormat } from '../shared/coapContentFormat';
import { parameters } from 'coap';

export { ContentFormat };

/** CoAP response codes the simulator sends (RFC 7252 §12.1.2). */
export const ResponseCode = {
  CREATED: '2.01',
  DELETED: '2.02',
  CHANGED: '2.04',
  CONTENT: '2.05',
  BAD_REQUEST: '4.00',
  BAD_OPTION: '4.02',
  FORBIDDEN: '4.03',
  NOT_FOUND: '4.04',
  METHOD_NOT_ALLOWED: '4.05',
  NOT_ACCEPTABLE: '4.06',
  REQUEST_ENTITY_TOO_LARGE: '4.13',
  UNSUPPORTED_CONTENT_FORMAT: '4.15',
  INTERNAL_SERVER_ERROR: '5.00',
  PROXYING_NOT_SUPPORTED: '5.05',
} as const;

/** CoAP method codes (RFC 7252 §12.1.1, RFC 8132). */
export const MethodCode = {
  GET: '0.01',
  POST: '0.02',
  PUT: '0.03',
  DELETE: '0.04',
} as const;

/** The LwM2M enabler version this client registers with (`lwm2m=` query parameter). */
export const LWM2M_VERSION = '1.1';
/** Binding mode: UDP only (`b=` query parameter; resource /1/0/7). */
export const BINDING_UDP = 'U';
/** Path of the registration interface on the server (LwM2M 1.1 §6.2, `/rd`). */
export const REGISTRATION_PATH = 'rd';
/** Path of the Send operation on the server (LwM2M 1.1 §6.4.3, information reporting, `POST /dp`). */
export const SEND_PATH = 'dp';
/** Register query parameter of a client in queue mode (LwM2M 1.1 §6.2.1: `Q`, no value; 1.0 used `b=UQ`). */
export const QUEUE_MODE_PARAMETER = 'Q';

/**
 * The client sends an Update when this fraction of the registration lifetime has passed. LwM2M leaves the
 * moment to the client; 80-90 % is what common clients do, which leaves time for retransmissions.
 */
export const UPDATE_AT_LIFETIME_FRACTION = 0.85;

/** First delay, in ms, before registering again after a failed Register; it doubles per failure. */
export const REGISTRATION_RETRY_INITIAL_MS = 5_000;
/** Upper bound, in ms, of the delay between registration attempts. */
export const REGISTRATION_RETRY_MAX_MS = 60_000;

/** Observe option values are 24-bit and wrap (RFC 7641 §4.4). */
export const OBSERVE_SEQUENCE_MODULUS = 2 ** 24;
/** Observe option value that registers an observation (RFC 7641 §2). */
export const OBSERVE_REGISTER = 0;
/** Observe option value that cancels an observation (RFC 7641 §3.6). */
export const OBSERVE_DEREGISTER = 1;

/** Largest CoAP message the simulator sends or accepts, in bytes (RFC 7252 §4.6: fits an IPv6 MTU). */
export const MAX_MESSAGE_SIZE = 1152;
/** Option numbers are 16-bit (RFC 7252 §12.2); option deltas summing past this are a message format error (§3.1). */
export const MAX_OPTION_NUMBER = 0xffff;

/** RFC 7252 ACK_TIMEOUT in ms: first retransmission timeout of a Confirmable message, before jitter. */
export function ackTimeoutMs(): number {
  return parameters.ackTimeout * 1000;
}

/** RFC 7252 ACK_RANDOM_FACTOR: the first timeout is drawn from [ACK_TIMEOUT, ACK_TIMEOUT * factor]. */
export function ackRandomFactor(): number {
  return parameters.ackRandomFactor;
}

/** RFC 7252 MAX_RETRANSMIT: retransmissions of a Confirmable message before giving up. */
export function maxRetransmit(): number {
  return parameters.maxRetransmit;
}

/** RFC 7252 EXCHANGE_LIFETIME in ms: how long a received Message ID is remembered for deduplication. */
export function exchangeLifetimeMs(): number {
  return parameters.exchangeLifetime * 1000;
}

/** RFC 7252 MAX_TRANSMIT_WAIT in ms: from the first transmission of a CON until the sender gives up. */
export function maxTransmitWaitMs(): number {
  return parameters.maxTransmitWait * 1000;
}
