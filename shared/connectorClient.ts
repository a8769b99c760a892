/**
 * The client of the connector's internal API (connector/internalApi.ts), for the Functions app. The base URL is
 * per call: each device's registration may be held by another connector instance (its twin says which, in
 * `connection.connectorUrl`).
 *
 * Errors are `TwinError`s with the connector's stable codes (DeviceNotConnected, DeviceTimeout, DeviceRejected with
 * `coapCode`, PropertyNotFound, ...); a connector that cannot be reached, or answers with something that is not a
 * problem document, is `ConnectorUnavailable` (transient: the job retries); it carries `requestSent: false` when the
 * connection was never made, so the request surely did not reach the connector (a write or execute was not applied).
 */
import { PropertyValue } from './catalog';
import { CONNECTOR_KEY_HEADER, CONNECTOR_TIMEOUT_HEADER, ConnectorRoute, connectorPath } from './connectorApi';
import { ERRORS, ErrorCode, TwinError } from './errors';

export interface ConnectorCallOptions {
  /** Bound on the device round trip, ms; the HTTP call itself may take `httpMarginMs` more. */
  timeoutMs?: number;
}

export interface ConnectorReading {
  deviceId: string;
  property: string;
  value: PropertyValue;
  /** ISO time the connector received the value. */
  time: string;
}

export interface ConnectorClientOptions {
  /** Extra time the HTTP call may take beyond the device bound before it counts as ConnectorUnavailable (ms). */
  httpMarginMs?: number;
  /** Bound on the whole HTTP call when the caller gives no timeoutMs (ms). */
  defaultHttpTimeoutMs?: number;
  fetch?: typeof fetch;
}

/** Error codes (of `fetch`'s cause) of a connection that was never made: the request did not leave this process. */
const NOT_CONNECTED_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const DEFAULT_HTTP_MARGIN_MS = 5_000;
const DEFAULT_HTTP_TIMEOUT_MS = 60_000;

export class ConnectorClient {
  private readonly fetch: typeof fetch;
  private readonly httpMarginMs: number;
  private readonly defaultHttpTimeoutMs: number;

  constructor(
    private readonly apiKey: string,
    options: ConnectorClientOptions = {},
  ) {
    this.fetch = options.fetch ?? fetch;
    this.httpMarginMs = options.httpMarginMs ?? DEFAULT_HTTP_MARGIN_MS;
    this.defaultHttpTimeoutMs = options.defaultHttpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  }

  /** Deep read: the device's current value of a readable property. */
  async read(
    connectorUrl: string,
    deviceId: string,
    property: string,
    options: ConnectorCallOptions = {},
  ): Promise<ConnectorReading> {
    const response = await this.call('GET', connectorUrl, { kind: 'property', deviceId, name: property }, options);
    const body = (await response.json().catch(() => undefined)) as Partial<ConnectorReading> | undefined;
    if (!body || body.value === undefined || typeof body.time !== 'string') {
      throw new TwinError('ConnectorUnavailable', `the connector at ${connectorUrl} sent an unreadable read result`);
    }
    return { deviceId, property, value: body.value, time: body.time };
  }

  /** Deep write: the device accepted the value (the twin follows at its next notify). */
  async write(
    connectorUrl: string,
    deviceId: string,
    property: string,
    value: PropertyValue,
    options: ConnectorCallOptions = {},
  ): Promise<void> {
    const route: ConnectorRoute = { kind: 'property', deviceId, name: property };
    await this.call('PUT', connectorUrl, route, options, JSON.stringify({ value }));
  }

  /** Execute: the device accepted the operation. */
  async execute(
    connectorUrl: string,
    deviceId: string,
    operation: string,
    options: ConnectorCallOptions = {},
  ): Promise<void> {
    await this.call('POST', connectorUrl, { kind: 'operation', deviceId, name: operation }, options);
  }

  /** Ends the device's registration at that connector now (deprovisioning): its notifies are refused from then on. */
  async endRegistration(connectorUrl: string, deviceId: string): Promise<void> {
    await this.call('DELETE', connectorUrl, { kind: 'registration', deviceId }, {});
  }

  private async call(
    method: string,
    connectorUrl: string,
    route: ConnectorRoute,
    options: ConnectorCallOptions,
    body?: string,
  ): Promise<Response> {
    const url = `${connectorUrl.replace(/\/+$/, '')}${connectorPath(route)}`;
    const headers: Record<string, string> = { [CONNECTOR_KEY_HEADER]: this.apiKey };
    if (options.timeoutMs !== undefined) {
      headers[CONNECTOR_TIMEOUT_HEADER] = String(Math.max(1, Math.ceil(options.timeoutMs)));
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    const httpTimeoutMs =
      options.timeoutMs !== undefined ? options.timeoutMs + this.httpMarginMs : this.defaultHttpTimeoutMs;
    let response: Response;
    try {
      response = await this.fetch(url, { method, headers, body, signal: AbortSignal.timeout(httpTimeoutMs) });
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const causeCode = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
      const notSent = typeof causeCode === 'string' && NOT_CONNECTED_CODES.has(causeCode);
      throw new TwinError(
        'ConnectorUnavailable',
        `the connector at ${connectorUrl} is unreachable (${reason}${typeof causeCode === 'string' ? `, ${causeCode}` : ''})`,
        notSent ? { requestSent: false } : {},
      );
    }
    if (response.ok) return response;
    throw await problemError(response, connectorUrl);
  }
}

/** The TwinError a problem response stands for; anything else is ConnectorUnavailable. */
async function problemError(response: Response, connectorUrl: string): Promise<TwinError> {
  const text = await response.text().catch(() => '');
  let problem: unknown;
  try {
    problem = JSON.parse(text);
  } catch {
    problem = undefined;
  }
  if (typeof problem === 'object' && problem !== null) {
    const {
      code,
      detail,
      type: _type,
      title: _title,
      status: _status,
      ...extensions
    } = problem as Record<string, unknown>;
    if (typeof code === 'string' && code in ERRORS) {
      return new TwinError(code as ErrorCode, typeof detail === 'string' ? detail : String(code), extensions);
    }
  }
  return new TwinError(
    'ConnectorUnavailable',
    `the connector at ${connectorUrl} answered ${response.status} without a problem document`,
    { status: response.status },
  );
}
