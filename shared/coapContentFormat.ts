/** CoAP Content-Format numbers (IANA "CoAP Content-Formats" registry) that LwM2M uses; connector and simulator share them. */
export const ContentFormat = {
  /** text/plain;charset=utf-8: one resource value as text. */
  TEXT: 0,
  /** application/link-format (RFC 6690): registration payloads, Discover. */
  LINK_FORMAT: 40,
  /** application/octet-stream: one opaque resource value. */
  OPAQUE: 42,
  /** application/senml+json (RFC 8428): the LwM2M 1.1+ multi-resource format. */
  SENML_JSON: 110,
  /** application/vnd.oma.lwm2m+tlv: LwM2M binary TLV. */
  TLV: 11542,
  /** application/vnd.oma.lwm2m+json: the LwM2M 1.0 JSON format. */
  LWM2M_JSON: 11543,
} as const;
