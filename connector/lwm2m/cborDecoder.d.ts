/**
 * cbor-x's decoder-only build without `eval` and without the native string extractor (cbor-extract), which is
 * what device payloads go through. Its `exports` entry is invisible to `moduleResolution: node`, so its types
 * (the same as the package's) are declared here.
 */
declare module 'cbor-x/decode-no-eval' {
  export { Decoder, Options } from 'cbor-x/decode';
}
