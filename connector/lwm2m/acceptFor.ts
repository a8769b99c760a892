/**
 * The Accept option for a Read or Observe of one resource, chosen from what the device told at registration.
 */
import { ContentFormat } from '../../shared/coapContentFormat';

/** What a registration says about the formats a device speaks. */
export interface AnnouncedFormats {
  /** The `lwm2m=` version of the Register (`1.0`, `1.1`, `1.2`, `1.0.2`...). */
  lwm2mVersion: string;
  /** `ct=` on the registration's root link, in the device's order (`RegistrationLinks.contentFormats`). */
  contentFormats?: readonly number[];
}

/**
 * Formats the connector decodes for a single resource and may ask for, when a device announces them. Opaque (42)
 * is not among them: it carries no type, so it is only taken when a device answers with it unasked.
 */
const ASKABLE_FORMATS: ReadonlySet<number> = new Set([
  ContentFormat.SENML_CBOR,
  ContentFormat.CBOR,
  ContentFormat.LWM2M_CBOR,
  ContentFormat.SENML_JSON,
  ContentFormat.LWM2M_JSON,
  ContentFormat.TLV,
  ContentFormat.TEXT,
]);

/**
 * The content format to put in Accept: the first announced one the connector decodes (a device lists its
 * preference first; many 1.1+ stacks announce only SenML CBOR, 112); else TLV for an LwM2M 1.0 device (the format
 * every 1.0 client must support); else text/plain, which every version serves for a single resource.
 */
export function acceptFor(device: AnnouncedFormats): number {
  const announced = device.contentFormats?.find((format) => ASKABLE_FORMATS.has(format));
  if (announced !== undefined) return announced;
  return /^1\.0(?:\.|$)/.test(device.lwm2mVersion) ? ContentFormat.TLV : ContentFormat.TEXT;
}
