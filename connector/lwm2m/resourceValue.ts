/**
 * A resource value found in an LwM2M payload, before it is typed by the catalog. Formats that carry the type
 * (SenML, LwM2M JSON) give numbers, strings and booleans; formats that do not (text, opaque, TLV) give text or
 * bytes, which the resource's catalog type interprets.
 */
export type Lwm2mValue =
  | { type: 'bytes'; bytes: Buffer }
  | { type: 'text'; text: string }
  | { type: 'number'; number: number }
  | { type: 'string'; string: string }
  | { type: 'boolean'; boolean: boolean };

export interface ResourceValue {
  /** `/o/i/r` (or `/o/i/r/ri` for a resource instance), relative to the client's root path. */
  path: string;
  value: Lwm2mValue;
}
