/**
 * The connector's internal HTTP API, called by the Functions app (shared/connectorClient.ts); its routes, headers
 * and limits are in shared/connectorApi.ts.
 *
 * Every route but `/health` needs the shared key in `x-connector-key` (compared in constant time). A caller may
 * lower the device bound with `x-timeout-ms`. Errors are problem+json with the stable codes of shared/errors.ts:
 * DeviceNotConnected at once when this instance holds no registration for the device, DeviceTimeout after the
 * bound, DeviceRejected with the CoAP code, PropertyNotFound / PropertyNotReadable / PropertyNotWritable /
 * OperationNotExecutable, InvalidValue naming the field.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import { CATALOG_NAMES, CatalogEntry, PropertyValue, findProperty, validateValue } from '../shared/catalog';
import {
  CONNECTOR_KEY_HEADER,
  CONNECTOR_MAX_BODY_BYTES,
  CONNECTOR_TIMEOUT_HEADER,
  HEALTH_PATH,
  parseConnectorPath,
} from '../shared/connectorApi';
import { validateDeviceId } from '../shared/deviceId';
import { PROBLEM_CONTENT_TYPE, TwinError, toProblem } from '../shared/errors';
import { Logger } from './logger';

const TIMEOUT_HEADER = CONNECTOR_TIMEOUT_HEADER;
const MAX_BODY_BYTES = CONNECTOR_MAX_BODY_BYTES;

export interface DeviceOperations {
  read(deviceId: string, entry: CatalogEntry, timeoutMs: number): Promise<{ value: PropertyValue; time: string }>;
  write(deviceId: string, entry: CatalogEntry, value: PropertyValue, timeoutMs: number): Promise<void>;
  execute(deviceId: string, entry: CatalogEntry, timeoutMs: number): Promise<void>;
  /** Ends the device's registration now (deprovisioning); false when none was held. */
  endRegistration(deviceId: string): boolean;
  health(): Record<string, unknown>;
}

export interface InternalApiOptions {
  operations: DeviceOperations;
  apiKey: string;
  /** The configured bound on one device round trip, ms; `x-timeout-ms` may only lower it. */
  deviceTimeoutMs: number;
  log: Logger;
}

export function createInternalApi(options: InternalApiOptions): http.Server {
  const expectedKey = digest(options.apiKey);
  const server = http.createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const twinError =
        error instanceof TwinError
          ? error
          : (options.log.error('internal API error', { url: request.url, error: String(error) }),
            new TwinError('Internal', 'the connector failed to handle the request'));
      sendProblem(response, twinError);
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://connector');
    if (url.pathname === HEALTH_PATH) {
      if (request.method !== 'GET') throw methodNotAllowed('GET');
      return sendJson(response, 200, { status: 'ok', ...options.operations.health() });
    }
    const key = request.headers[CONNECTOR_KEY_HEADER];
    if (typeof key !== 'string' || !timingSafeEqual(digest(key), expectedKey)) {
      throw new TwinError('Unauthorized', `the ${CONNECTOR_KEY_HEADER} header is missing or wrong`);
    }
    const route = parseConnectorPath(url.pathname);
    if (!route) throw new TwinError('NotFound', `no route ${request.method} ${url.pathname}`);
    const deviceId = validateDeviceId(decodeSegment(route.deviceId, 'deviceId'));
    if (route.kind === 'registration') {
      if (request.method !== 'DELETE') throw methodNotAllowed('DELETE');
      options.operations.endRegistration(deviceId);
      return sendEmpty(response);
    }
    const name = decodeSegment(route.name as string, 'name');
    const timeoutMs = effectiveTimeout(request.headers[TIMEOUT_HEADER], options.deviceTimeoutMs);
    const entry = findProperty(name);
    if (route.kind === 'operation') {
      if (request.method !== 'POST') throw methodNotAllowed('POST');
      if (!entry) throw new TwinError('PropertyNotFound', `no operation ${name}; known: ${executableNames()}`);
      if (!entry.executable) {
        throw new TwinError('OperationNotExecutable', `${name} is not an operation; executable: ${executableNames()}`);
      }
      await options.operations.execute(deviceId, entry, timeoutMs);
      return sendEmpty(response);
    }
    if (!entry) throw new TwinError('PropertyNotFound', `no property ${name}; known: ${CATALOG_NAMES.join(', ')}`);
    if (request.method === 'GET') {
      if (!entry.readable) throw new TwinError('PropertyNotReadable', `${name} cannot be read from the device`);
      const { value, time } = await options.operations.read(deviceId, entry, timeoutMs);
      return sendJson(response, 200, { deviceId, property: name, value, time });
    }
    if (request.method === 'PUT') {
      if (!entry.writable) throw new TwinError('PropertyNotWritable', `${name} cannot be written on the device`);
      const value = await readValue(request, entry);
      await options.operations.write(deviceId, entry, value, timeoutMs);
      return sendEmpty(response);
    }
    throw methodNotAllowed('GET, PUT');
  }

  return server;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

function decodeSegment(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new TwinError('InvalidRequest', `${field} is not valid percent-encoding`, { field });
  }
}

function effectiveTimeout(header: string | string[] | undefined, configuredMs: number): number {
  if (header === undefined) return configuredMs;
  const raw = Array.isArray(header) ? header[0] : header;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) {
    throw new TwinError(
      'InvalidRequest',
      `${TIMEOUT_HEADER} must be a positive integer of milliseconds; got "${raw}"`,
      {
        field: TIMEOUT_HEADER,
      },
    );
  }
  return Math.min(Number(raw), configuredMs);
}

function executableNames(): string {
  return CATALOG_NAMES.filter((n) => findProperty(n)?.executable).join(', ');
}

function methodNotAllowed(allow: string): TwinError {
  return new TwinError('MethodNotAllowed', `allowed: ${allow}`, { allow });
}

async function readValue(request: IncomingMessage, entry: CatalogEntry): Promise<PropertyValue> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new TwinError('PayloadTooLarge', `the body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new TwinError('InvalidJson', `the body is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('value' in body)) {
    throw new TwinError('InvalidRequest', 'the body must be an object {"value": ...}', { field: 'value' });
  }
  const unknown = Object.keys(body).filter((k) => k !== 'value');
  if (unknown.length > 0) {
    throw new TwinError('InvalidRequest', `unknown field ${unknown[0]}; the body is {"value": ...}`, {
      field: unknown[0],
    });
  }
  const check = validateValue(entry, (body as { value: unknown }).value);
  if (!check.ok) throw new TwinError('InvalidValue', check.reason, { field: 'value' });
  return check.value;
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function sendEmpty(response: ServerResponse): void {
  response.writeHead(204);
  response.end();
}

function sendProblem(response: ServerResponse, error: TwinError): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = JSON.stringify(toProblem(error));
  const headers: Record<string, string | number> = {
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(text),
  };
  if (error.code === 'MethodNotAllowed') headers.allow = String(error.extensions.allow);
  response.writeHead(error.status, headers);
  response.end(text);
}
