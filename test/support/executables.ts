/** Finding the external programs interop tests run (libcoap's coap-client). */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Debian installs libcoap's client under its TLS flavour's name; `coap-client` is the upstream name. */
export const COAP_CLIENT_NAMES = ['coap-client', 'coap-client-notls', 'coap-client-openssl', 'coap-client-gnutls'];

/** The first of `names` that is an executable on PATH (directories in PATH order, then names in order). */
export function findOnPath(...names: string[]): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const name of names) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not in this directory
      }
    }
  }
  return undefined;
}
