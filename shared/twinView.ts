/**
 * What the HTTP API shows of a twin: the document without Cosmos system fields and internal indexes,
 * with `etag` (quoted, as in the ETag header) and, per device property, when the next notify is due.
 */
import { DeviceProperty, TwinDocument, nextNotifyDue } from './twin';

export interface DevicePropertyView {
  value?: DeviceProperty['value'];
  lastUpdatedTime?: string;
  source?: DeviceProperty['source'];
  pmin: number;
  pmax: number;
  stale: boolean;
  staleSince?: string;
  staleReason?: string;
  /** The latest moment the next notify is due (lastUpdatedTime + pmax). */
  nextNotifyDue?: string;
  /** Present (false) only when the device does not have the resource. */
  supported?: false;
}

export interface TwinView {
  deviceId: string;
  etag: string;
  version: number;
  connection: TwinDocument['connection'];
  tags: TwinDocument['tags'];
  serviceProperties: TwinDocument['serviceProperties'];
  deviceProperties: Record<string, DevicePropertyView>;
  /** Mode and PSK identity; the key is never in a view. */
  security?: TwinDocument['security'];
}

/** The HTTP form of an ETag: always double-quoted. */
export function httpEtag(twin: TwinDocument): string {
  const etag = twin._etag ?? '';
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

export function toDevicePropertyView(property: DeviceProperty): DevicePropertyView {
  const view: DevicePropertyView = { pmin: property.pmin, pmax: property.pmax, stale: property.stale };
  if (property.value !== undefined) view.value = property.value;
  if (property.lastUpdatedTime) view.lastUpdatedTime = property.lastUpdatedTime;
  if (property.source) view.source = property.source;
  if (property.stale && property.staleSince) view.staleSince = property.staleSince;
  if (property.stale && property.staleReason) view.staleReason = property.staleReason;
  const due = nextNotifyDue(property);
  if (due) view.nextNotifyDue = due;
  if (!property.supported) view.supported = false;
  return view;
}

export function toTwinView(twin: TwinDocument): TwinView {
  const deviceProperties: Record<string, DevicePropertyView> = {};
  for (const [name, property] of Object.entries(twin.deviceProperties)) {
    deviceProperties[name] = toDevicePropertyView(property);
  }
  const view: TwinView = {
    deviceId: twin.deviceId,
    etag: httpEtag(twin),
    version: twin.version,
    connection: twin.connection,
    tags: twin.tags,
    serviceProperties: twin.serviceProperties,
    deviceProperties,
  };
  if (twin.security)
    view.security = {
      mode: twin.security.mode,
      ...(twin.security.identity !== undefined && { identity: twin.security.identity }),
    };
  return view;
}
