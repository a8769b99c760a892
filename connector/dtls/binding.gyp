# The DTLS addon (dtls.c), built by connector/dtls/buildAddon.js against the headers of the running node, whose
# bundled OpenSSL (include/node/openssl) the addon uses: its SSL_* symbols resolve from the node binary at load.
{
  "targets": [
    {
      "target_name": "dtls",
      "sources": ["dtls.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8", "OPENSSL_API_COMPAT=30000", "OPENSSL_NO_DEPRECATED"]
    }
  ]
}
