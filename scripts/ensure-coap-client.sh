#!/usr/bin/env bash
# The interop tests drive the connector with libcoap's coap-client, a CoAP peer nobody here wrote.
# Installs Debian's libcoap3-bin when it is missing and we may (root with apt-get); otherwise says how.
set -euo pipefail
for name in coap-client coap-client-notls coap-client-gnutls coap-client-openssl; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing libcoap3-bin (coap-client) for the CoAP interop tests..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcoap3-bin >/dev/null
  exit 0
fi
echo "coap-client (libcoap) is missing: install Debian's libcoap3-bin (sudo apt-get install libcoap3-bin)" >&2
exit 1
