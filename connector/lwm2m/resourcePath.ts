/** The Uri-Path of a catalog resource on a device (LwM2M Core §6.1: `/{root}/{object}/{instance}/{resource}`). */
import { CatalogEntry } from '../../shared/catalog';
import { CoapOption, OptionNumber, stringOption } from '../coap/coapMessage';

/** `rootPath`: the device's alternate root path from its registration ('' for `/`). */
export function resourcePath(registration: { rootPath: string }, entry: CatalogEntry): CoapOption[] {
  const segments = [
    ...(registration.rootPath === '' ? [] : registration.rootPath.split('/')),
    String(entry.objectId),
    String(entry.instanceId),
    String(entry.resourceId),
  ];
  return segments.map((segment) => stringOption(OptionNumber.URI_PATH, segment));
}
