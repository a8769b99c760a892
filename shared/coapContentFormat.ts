/** CoAP Content-Format numbers (IANA "CoAP Content-Formats" registry) that LwM2M uses; connector and simulator share them. */
export const ContentFormat = {
  /** text/plain;charset=utf-8: one resource value as text. */
  TEXT: 0,
  /** application/link-format (RFC 6690): registration payloads, Discover. */
  LINK_FORMAT: 40,
  /** application/octet-stream: one opaque resource value. */
  OPAQUE: 42,
  /** application/cbor (RFC 8949): one resource value as a CBOR data item (LwM2M 1.1+ Transport §7.4.5). */
  CBOR: 60,
  /** application/senml+json (RFC 8428): the LwM2M 1.1+ multi-resource format. */
  SENML_JSON: 110,
  /** application/senml+cbor (RFC 8428 §6): SenML with integer labels; what many LwM2M 1.1+ clients prefer. */
  SENML_CBOR: 112,
  /** application/vnd.oma.lwm2m+tlv: LwM2M binary TLV. */
  TLV: 11542,
  /** application/vnd.oma.lwm2m+json: the LwM2M 1.0 JSON format. */
  LWM2M_JSON: 11543,
  /** application/vnd.oma.lwm2m+cbor: LwM2M 1.2 CBOR, nested maps keyed by path segments. */
  LWM2M_CBOR: 11544,
} as const;
