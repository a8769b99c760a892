/**
 * Where a catalog resource lives on one device (LwM2M Core §6.1: `/{root}/{object}/{instance}/{resource}`). The
 * catalog names the Server object's resources at `/1/0/...`; on a device they are in the instance that describes
 * this server (`Registration.serverInstanceId`), which bootstrap may have numbered otherwise.
 */
import { CatalogEntry, findPropertyByPath } from '../../shared/catalog';
import { CoapOption, OptionNumber, stringOption } from '../coap/coapMessage';
import { ObjectLink } from './linkFormat';

/** The LwM2M Server object, whose instance differs per device. */
export const SERVER_OBJECT_ID = 1;

/** What a registration says about where resources are: its root path ('' for `/`) and its Server object instance. */
export interface ResourceLocation {
  rootPath: string;
  serverInstanceId?: number;
}

/** The object instance of `entry` on the device. */
export function deviceInstanceId(location: ResourceLocation, entry: CatalogEntry): number {
  return entry.objectId === SERVER_OBJECT_ID ? (location.serverInstanceId ?? entry.instanceId) : entry.instanceId;
}

/** `/o/i/r` of `entry` on the device, relative to its root path: the name its payloads (SenML, TLV) carry. */
export function devicePath(location: ResourceLocation, entry: CatalogEntry): string {
  return `/${entry.objectId}/${deviceInstanceId(location, entry)}/${entry.resourceId}`;
}

/** The Uri-Path options of `entry` on the device. */
export function resourcePath(location: ResourceLocation, entry: CatalogEntry): CoapOption[] {
  const segments = [
    ...(location.rootPath === '' ? [] : location.rootPath.split('/')),
    String(entry.objectId),
    String(deviceInstanceId(location, entry)),
    String(entry.resourceId),
  ];
  return segments.map((segment) => stringOption(OptionNumber.URI_PATH, segment));
}

/** The catalog entry a device path (`/o/i/r`, as in a SenML record) stands for, if any. */
export function catalogEntryAt(location: ResourceLocation, path: string): CatalogEntry | undefined {
  const ids = path.split('/').slice(1);
  if (ids.length !== 3) return undefined;
  if (Number(ids[0]) !== SERVER_OBJECT_ID) return findPropertyByPath(path);
  if (Number(ids[1]) !== (location.serverInstanceId ?? 0)) return undefined;
  return findPropertyByPath(`/${SERVER_OBJECT_ID}/0/${ids[2]}`);
}

/** The Server object instances a registration announces (`</1/x>`), ascending. */
export function serverInstanceCandidates(objects: readonly ObjectLink[]): number[] {
  const ids = objects
    .filter((link) => link.objectId === SERVER_OBJECT_ID && link.instanceId !== undefined)
    .map((link) => link.instanceId as number);
  return [...new Set(ids)].sort((a, b) => a - b);
}

/**
 * The announced objects as the catalog numbers them: the links of this server's Server object instance become
 * `/1/0...`, those of other servers' instances are left out; other objects are unchanged.
 */
export function catalogObjects(location: ResourceLocation, objects: readonly ObjectLink[]): ObjectLink[] {
  const own = location.serverInstanceId ?? 0;
  return objects.flatMap((link) => {
    if (link.objectId !== SERVER_OBJECT_ID || link.instanceId === undefined) return [link];
    return link.instanceId === own ? [{ ...link, instanceId: 0 }] : [];
  });
}
