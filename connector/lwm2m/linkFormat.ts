/**
 * CoRE link format (RFC 6690, content format 40) as LwM2M registration payloads use it:
 * `</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>;ver=1.1,</5>` (LwM2M 1.0-1.2 §6.2.1 / Transport §6.1).
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';

export interface Link {
  /** The URI reference between `<` and `>`. */
  target: string;
  /** Parameters; quoted values unquoted; a parameter without a value maps to ''. */
  params: Record<string, string>;
}

/** An object, object instance or resource the client announced. */
export interface ObjectLink {
  objectId: number;
  instanceId?: number;
  resourceId?: number;
}

export interface RegistrationLinks {
  /** The alternate root path (`rt="oma.lwm2m"` link), '' for the default `/`. Requests go to `<root>/<o>/<i>/<r>`. */
  rootPath: string;
  objects: ObjectLink[];
  /**
   * The content formats announced by `ct=` on the root link (`</>;rt="oma.lwm2m";ct=112`, or a quoted list
   * `ct="60 110"`), in the client's order; absent when it announced none. Values that are not numbers are dropped.
   */
  contentFormats?: number[];
}

/** Registration payloads larger than this are refused (a device has tens of objects, not thousands). */
export const MAX_LINK_FORMAT_BYTES = 16 * 1024;
const MAX_LINKS = 1024;
const LWM2M_ID_MAX = 65_534;

/** Parses a link-format document. Throws `Lwm2mPayloadError` naming the first problem. */
export function parseLinkFormat(text: string): Link[] {
  if (text.length > MAX_LINK_FORMAT_BYTES)
    throw new Lwm2mPayloadError(`link format of ${text.length} bytes is too long`);
  const links: Link[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  skipSpace();
  if (i === text.length) return links;
  for (;;) {
    skipSpace();
    if (text[i] !== '<') throw new Lwm2mPayloadError(`expected '<' at offset ${i} of the link format`);
    const close = text.indexOf('>', i + 1);
    if (close < 0) throw new Lwm2mPayloadError(`unterminated '<' at offset ${i} of the link format`);
    const link: Link = { target: text.slice(i + 1, close), params: {} };
    i = close + 1;
    while (text[i] === ';') {
      i++;
      const nameStart = i;
      while (i < text.length && /[A-Za-z0-9!#$&+\-.^_`|~*]/.test(text[i])) i++;
      const name = text.slice(nameStart, i);
      if (name === '') throw new Lwm2mPayloadError(`empty link parameter name at offset ${nameStart}`);
      let value = '';
      if (text[i] === '=') {
        i++;
        if (text[i] === '"') {
          const end = closingQuote(text, i + 1);
          value = text.slice(i + 1, end).replace(/\\(.)/g, '$1');
          i = end + 1;
        } else {
          const valueStart = i;
          while (i < text.length && text[i] !== ';' && text[i] !== ',') i++;
          value = text.slice(valueStart, i).trim();
        }
      }
      link.params[name] = value;
    }
    links.push(link);
    if (links.length > MAX_LINKS) throw new Lwm2mPayloadError(`more than ${MAX_LINKS} links`);
    skipSpace();
    if (i === text.length) return links;
    if (text[i] !== ',') throw new Lwm2mPayloadError(`expected ',' at offset ${i} of the link format`);
    i++;
  }
}

function closingQuote(text: string, from: number): number {
  for (let j = from; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  throw new Lwm2mPayloadError(`unterminated quoted value at offset ${from - 1} of the link format`);
}

/**
 * The objects a registration announces, relative to its root path. Links outside the root path, or not of the form
 * `/o`, `/o/i` or `/o/i/r` with ids 0-65534, are ignored (the spec allows other links; we only observe these).
 */
export function registrationLinks(links: readonly Link[]): RegistrationLinks {
  const root = links.find((l) => l.params.rt === 'oma.lwm2m');
  const contentFormats = announcedContentFormats((root ?? links.find((l) => l.target === '/'))?.params.ct);
  const rootPath = root ? trimSlashes(root.target) : '';
  const prefix = rootPath === '' ? '/' : `/${rootPath}/`;
  const objects: ObjectLink[] = [];
  for (const link of links) {
    if (link === root || !link.target.startsWith(prefix)) continue;
    const segments = link.target
      .slice(prefix.length)
      .split('/')
      .filter((s) => s !== '');
    if (segments.length === 0 || segments.length > 3 || !segments.every((s) => /^\d{1,5}$/.test(s))) continue;
    const ids = segments.map(Number);
    if (ids.some((id) => id > LWM2M_ID_MAX)) continue;
    objects.push({
      objectId: ids[0],
      ...(ids.length > 1 && { instanceId: ids[1] }),
      ...(ids.length > 2 && { resourceId: ids[2] }),
    });
  }
  return { rootPath, objects, ...(contentFormats.length > 0 && { contentFormats }) };
}

/** `ct` values: space-separated Content-Format numbers 0-65535 (RFC 7252 §7.2.1). */
function announcedContentFormats(ct: string | undefined): number[] {
  if (ct === undefined) return [];
  const formats = ct
    .split(' ')
    .filter((value) => /^\d{1,5}$/.test(value))
    .map(Number)
    .filter((format) => format <= 0xffff);
  return [...new Set(formats)];
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}
