/**
 * The connector's internal HTTP API as a contract: routes, headers and limits, used by both its server
 * (connector/internalApi.ts) and its client (shared/connectorClient.ts), so the two cannot drift apart.
 *
 * - `GET    /devices/{deviceId}/properties/{name}`  deep read  -> 200 `{ deviceId, property, value, time }`
 * - `PUT    /devices/{deviceId}/properties/{name}`  deep write, body `{ "value": ... }` -> 204
 * - `POST   /devices/{deviceId}/operations/{name}`  execute -> 204
 * - `DELETE /devices/{deviceId}/registration`       end the device's registration now (deprovisioning) -> 204
 * - `GET    /health` (no key) -> 200 with counts
 */

/** Header carrying the shared key (every route but /health). */
export { CONNECTOR_KEY_HEADER } from './constants';
/** Header with which a caller lowers the connector's device round-trip bound, ms (a positive integer). */
export const CONNECTOR_TIMEOUT_HEADER = 'x-timeout-ms';
/** Largest request body the connector accepts, bytes. */
export const CONNECTOR_MAX_BODY_BYTES = 64 * 1024;
export const HEALTH_PATH = '/health';

export type ConnectorRoute =
  | { kind: 'property'; deviceId: string; name: string }
  | { kind: 'operation'; deviceId: string; name: string }
  | { kind: 'registration'; deviceId: string };

const segment = encodeURIComponent;

/** The path of a route, segments percent-encoded. */
export function connectorPath(route: ConnectorRoute): string {
  const device = `/devices/${segment(route.deviceId)}`;
  switch (route.kind) {
    case 'property':
      return `${device}/properties/${segment(route.name)}`;
    case 'operation':
      return `${device}/operations/${segment(route.name)}`;
    case 'registration':
      return `${device}/registration`;
  }
}

const ROUTE = /^\/devices\/([^/]+)\/(?:(properties|operations)\/([^/]+)|(registration))$/;

/**
 * The route a path names, segments still percent-encoded (the caller decodes and validates them), or undefined.
 */
export function parseConnectorPath(
  path: string,
): { kind: ConnectorRoute['kind']; deviceId: string; name?: string } | undefined {
  const match = ROUTE.exec(path);
  if (!match) return undefined;
  if (match[4]) return { kind: 'registration', deviceId: match[1] };
  return { kind: match[2] === 'properties' ? 'property' : 'operation', deviceId: match[1], name: match[3] };
}
