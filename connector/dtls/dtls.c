/*
 * DTLS 1.2 with pre-shared keys for Node, on the OpenSSL that the node binary itself bundles and exports.
 *
 * The addon owns no socket and no timer: JavaScript owns the UDP socket and the clock, feeds each received
 * datagram in and sends each datagram the addon hands back. OpenSSL reads from an "inbox" BIO, lent the one
 * datagram of the call in progress, and writes into an "outbox" BIO that keeps every write as its own datagram, so
 * flights keep their datagram boundaries.
 *
 * Contracts a caller may rely on:
 * - No call throws for bad network input. A malformed, replayed or forged datagram is dropped by OpenSSL
 *   (RFC 6347 4.1.2.7) or, during a handshake, ends that one session (result.closed); the process never crashes.
 * - accept() is stateless for a ClientHello without a valid cookie: it answers with a HelloVerifyRequest
 *   (cookie = HMAC-SHA256 of the peer's address under a secret that rotateCookieSecret() replaces; the previous
 *   secret still verifies) and allocates nothing per peer. Only a ClientHello that echoes a valid cookie turns
 *   the listener into a session.
 * - Every Buffer returned is a copy owned by JavaScript. Buffers passed in are only read during the call.
 * - Sessions hold a strong reference to their context, so a context lives as long as any session does.
 * - The OpenSSL error queue is left empty after every call (Node's own crypto shares it on this thread).
 * - The PSK key is copied straight from the JS lookup's Buffer into OpenSSL's buffer; it is never logged.
 */
#include <node_api.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define COOKIE_SECRET_BYTES 32
#define COOKIE_BYTES 32           /* HMAC-SHA256, full length; DTLS allows up to 255 */
#define MAX_PEER_BYTES 64         /* "address:port" text of the peer, IPv6 included */
#define MAX_PLAINTEXT 16384       /* largest DTLS record payload (RFC 6347, 2^14) */
#define MAX_IDENTITY_BYTES 128    /* PSK identities longer than this are refused (RFC 4279 allows 2^16-1) */

/* Throws a JS Error and returns NULL from the enclosing napi_callback. */
#define THROW(env, msg)                          \
  do {                                           \
    napi_throw_error((env), "ERR_DTLS", (msg));  \
    return NULL;                                 \
  } while (0)
#define CHECK(env, call)                                         \
  do {                                                           \
    if ((call) != napi_ok) THROW((env), "DTLS addon: " #call);   \
  } while (0)

/* ---------- outbox: a BIO whose every write is one outgoing datagram ---------- */

typedef struct {
  unsigned char *data;
  size_t len;
} datagram;

typedef struct {
  datagram *items;
  size_t count, cap;
} outbox;

static BIO_METHOD *outbox_method = NULL;

static int outbox_write(BIO *bio, const char *buf, int len) {
  outbox *box = (outbox *)BIO_get_data(bio);
  if (box == NULL || len < 0) return -1;
  if (box->count == box->cap) {
    size_t cap = box->cap ? box->cap * 2 : 4;
    datagram *items = realloc(box->items, cap * sizeof *items);
    if (items == NULL) return -1;
    box->items = items;
    box->cap = cap;
  }
  unsigned char *copy = malloc(len ? (size_t)len : 1);
  if (copy == NULL) return -1;
  memcpy(copy, buf, (size_t)len);
  box->items[box->count].data = copy;
  box->items[box->count].len = (size_t)len;
  box->count++;
  return len;
}

/* DTLS asks the BIO about MTU, peers and timers; a memory transport answers "not supported" (0) except flush. */
static long outbox_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  (void)bio, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

static void outbox_clear(outbox *box) {
  for (size_t i = 0; i < box->count; i++) free(box->items[i].data);
  box->count = 0;
}

static void outbox_free(outbox *box) {
  outbox_clear(box);
  free(box->items);
  box->items = NULL;
  box->cap = 0;
}

/* Moves the outbox's datagrams into a new JS array of Buffers; the outbox is empty afterwards. */
static napi_value outbox_drain(napi_env env, outbox *box) {
  napi_value array;
  if (napi_create_array_with_length(env, box->count, &array) != napi_ok) return NULL;
  for (size_t i = 0; i < box->count; i++) {
    napi_value buffer;
    if (napi_create_buffer_copy(env, box->items[i].len, box->items[i].data, NULL, &buffer) != napi_ok ||
        napi_set_element(env, array, (uint32_t)i, buffer) != napi_ok) {
      outbox_clear(box);
      return NULL;
    }
  }
  outbox_clear(box);
  return array;
}

/*
 * ---------- inbox: a BIO that reads the one datagram lent to it for the length of a call ----------
 * Its data is a datagram on the caller's stack while the call runs, NULL otherwise. A read takes the whole datagram
 * (as recvfrom does: what does not fit is dropped); an empty inbox asks OpenSSL to retry, which it reports as
 * SSL_ERROR_WANT_READ. Nothing is copied into or kept by the BIO, unlike a memory BIO, whose buffer stays as large
 * as the largest datagram a session ever received.
 */
static BIO_METHOD *inbox_method = NULL;

static int inbox_read(BIO *bio, char *out, int size) {
  datagram *lent = BIO_get_data(bio);
  BIO_clear_retry_flags(bio);
  if (lent == NULL || lent->len == 0 || size <= 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  size_t n = lent->len < (size_t)size ? lent->len : (size_t)size;
  memcpy(out, lent->data, n);
  lent->len = 0;
  return (int)n;
}

static long inbox_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  datagram *lent = BIO_get_data(bio);
  (void)num, (void)ptr;
  if (cmd == BIO_CTRL_PENDING) return lent ? (long)lent->len : 0;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

/* Lends datagram (data, len) to ssl's inbox; inbox_return must follow before the call returns. */
static void inbox_lend(SSL *ssl, datagram *lent, void *data, size_t len) {
  lent->data = data;
  lent->len = len;
  BIO_set_data(SSL_get_rbio(ssl), lent);
}

static void inbox_return(SSL *ssl) {
  if (ssl) BIO_set_data(SSL_get_rbio(ssl), NULL);
}

/* ---------- context: one SSL_CTX (server or client) ---------- */

typedef struct {
  SSL_CTX *ssl_ctx;
  int is_server;
  uint32_t mtu;            /* DTLS bytes per datagram (records + headers, without IP/UDP) */
  napi_env env;            /* the env of the call in progress (callbacks run only inside our calls) */
  /* server */
  napi_ref lookup_key;     /* JS (identity: string) => Buffer | undefined */
  unsigned char cookie_secret[2][COOKIE_SECRET_BYTES]; /* [0] current, [1] previous */
  char peer[MAX_PEER_BYTES]; /* cookie input: the peer whose ClientHello the listener is checking */
  size_t peer_len;
  SSL *listener;           /* reused for every cookie check; becomes a session's SSL on success */
  outbox listener_out;
  BIO_ADDR *listen_addr;
  /* client */
  char identity[MAX_IDENTITY_BYTES + 1];
  unsigned char key[PSK_MAX_PSK_LEN];
  size_t key_len;
} context;

static int cookie_for(const context *c, int which, unsigned char *out) {
  size_t len = 0;
  return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, c->cookie_secret[which], COOKIE_SECRET_BYTES,
                   (const unsigned char *)c->peer, c->peer_len, out, COOKIE_BYTES, &len) != NULL &&
         len == COOKIE_BYTES;
}

static int cookie_generate(SSL *ssl, unsigned char *cookie, unsigned int *cookie_len) {
  context *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  if (!cookie_for(c, 0, cookie)) return 0;
  *cookie_len = COOKIE_BYTES;
  return 1;
}

static int cookie_verify(SSL *ssl, const unsigned char *cookie, unsigned int cookie_len) {
  context *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  unsigned char expected[COOKIE_BYTES];
  if (cookie_len != COOKIE_BYTES) return 0;
  for (int which = 0; which < 2; which++) {
    if (cookie_for(c, which, expected) && CRYPTO_memcmp(expected, cookie, COOKIE_BYTES) == 0) return 1;
  }
  return 0;
}

/*
 * Server PSK lookup: calls the JS lookup synchronously with the identity. Returns the key length, or 0 (unknown
 * identity, or a key longer than OpenSSL's buffer), which fails the handshake. A throwing lookup counts as unknown
 * and its exception is cleared so it cannot surface later in an unrelated place.
 */
static unsigned int psk_server(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max_psk_len) {
  context *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  napi_env env = c->env;
  napi_value fn, global, arg, result;
  bool is_buffer = false;
  void *data;
  size_t len = 0;
  if (identity == NULL || strlen(identity) > MAX_IDENTITY_BYTES) return 0;
  if (napi_get_reference_value(env, c->lookup_key, &fn) != napi_ok || napi_get_global(env, &global) != napi_ok ||
      napi_create_string_utf8(env, identity, NAPI_AUTO_LENGTH, &arg) != napi_ok)
    return 0;
  if (napi_call_function(env, global, fn, 1, &arg, &result) != napi_ok) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    return 0;
  }
  if (napi_is_buffer(env, result, &is_buffer) != napi_ok || !is_buffer) return 0;
  if (napi_get_buffer_info(env, result, &data, &len) != napi_ok || len == 0 || len > max_psk_len) return 0;
  memcpy(psk, data, len);
  return (unsigned int)len;
}

static unsigned int psk_client(SSL *ssl, const char *hint, char *identity, unsigned int max_identity_len,
                               unsigned char *psk, unsigned int max_psk_len) {
  context *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  (void)hint;
  if (strlen(c->identity) + 1 > max_identity_len || c->key_len > max_psk_len) return 0;
  memcpy(identity, c->identity, strlen(c->identity) + 1);
  memcpy(psk, c->key, c->key_len);
  return (unsigned int)c->key_len;
}

static void context_finalize(napi_env env, void *data, void *hint) {
  context *c = data;
  (void)hint;
  if (c->listener) SSL_free(c->listener);
  outbox_free(&c->listener_out);
  BIO_ADDR_free(c->listen_addr);
  if (c->lookup_key) napi_delete_reference(env, c->lookup_key);
  SSL_CTX_free(c->ssl_ctx);
  OPENSSL_cleanse(c->key, sizeof c->key);
  free(c);
}

/* Reads options.<name> as a string into buf (NUL-terminated); 0 when missing or too long. */
static int get_string(napi_env env, napi_value obj, const char *name, char *buf, size_t size) {
  napi_value v;
  size_t len = 0;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return 0;
  return len + 1 < size;
}

static int get_uint(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  return napi_get_named_property(env, obj, name, &v) == napi_ok && napi_get_value_uint32(env, v, out) == napi_ok;
}

/*
 * Common SSL_CTX set-up. options: { ciphers: OpenSSL cipher string, mtu: bytes of DTLS payload per datagram }.
 * Renegotiation is off (a PSK device has no reason to renegotiate, and it is a DoS lever); tickets are off so that
 * resumption uses the server's session cache (session IDs), which every constrained DTLS client supports.
 */
static context *context_new(napi_env env, napi_value options, int is_server) {
  char ciphers[512];
  context *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->is_server = is_server;
  c->ssl_ctx = SSL_CTX_new(is_server ? DTLS_server_method() : DTLS_client_method());
  if (c->ssl_ctx == NULL || !get_string(env, options, "ciphers", ciphers, sizeof ciphers) ||
      !get_uint(env, options, "mtu", &c->mtu) ||
      !SSL_CTX_set_min_proto_version(c->ssl_ctx, DTLS1_2_VERSION) ||
      !SSL_CTX_set_max_proto_version(c->ssl_ctx, DTLS1_2_VERSION) ||
      !SSL_CTX_set_cipher_list(c->ssl_ctx, ciphers)) {
    if (c->ssl_ctx) SSL_CTX_free(c->ssl_ctx);
    free(c);
    ERR_clear_error();
    return NULL;
  }
  SSL_CTX_set_app_data(c->ssl_ctx, c);
  /*
   * No encrypt-then-MAC: with it, OpenSSL 3.0's DTLS treats a CBC record with a bad MAC as fatal, so one forged
   * datagram from a spoofed address would end a device's session; without it (and with CCM_8) such records are
   * silently dropped, as RFC 6347 4.1.2.7 asks. CBC's MAC-then-encrypt check is OpenSSL's constant-time one.
   */
  SSL_CTX_set_options(c->ssl_ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                      SSL_OP_NO_ENCRYPT_THEN_MAC);
  SSL_CTX_set_mode(c->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
  return c;
}

/* createServerContext({ciphers, mtu, sessionCacheSize, sessionTimeoutSeconds}, lookupKey) -> context */
static napi_value create_server_context(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint32_t cache_size = 0, timeout = 0;
  static const unsigned char sid_ctx[] = "lwm2m-twins-dtls";
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) THROW(env, "createServerContext(options, lookupKey)");
  context *c = context_new(env, argv[0], 1);
  if (c == NULL) THROW(env, "DTLS server context: bad options or cipher string");
  if (get_uint(env, argv[0], "sessionCacheSize", &cache_size)) SSL_CTX_sess_set_cache_size(c->ssl_ctx, cache_size);
  if (get_uint(env, argv[0], "sessionTimeoutSeconds", &timeout)) SSL_CTX_set_timeout(c->ssl_ctx, timeout);
  SSL_CTX_set_session_cache_mode(c->ssl_ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(c->ssl_ctx, sid_ctx, sizeof sid_ctx - 1);
  SSL_CTX_set_psk_server_callback(c->ssl_ctx, psk_server);
  SSL_CTX_set_cookie_generate_cb(c->ssl_ctx, cookie_generate);
  SSL_CTX_set_cookie_verify_cb(c->ssl_ctx, cookie_verify);
  c->listen_addr = BIO_ADDR_new();
  if (c->listen_addr == NULL || RAND_bytes(c->cookie_secret[0], COOKIE_SECRET_BYTES) != 1 ||
      RAND_bytes(c->cookie_secret[1], COOKIE_SECRET_BYTES) != 1 ||
      napi_create_reference(env, argv[1], 1, &c->lookup_key) != napi_ok ||
      napi_create_external(env, c, context_finalize, NULL, &result) != napi_ok) {
    context_finalize(env, c, NULL);
    ERR_clear_error();
    THROW(env, "DTLS server context: out of memory");
  }
  return result;
}

/* createClientContext({ciphers, mtu}, identity, key) -> context. For tests and benchmarks. */
static napi_value create_client_context(napi_env env, napi_callback_info info) {
  size_t argc = 3, len = 0;
  napi_value argv[3], result;
  void *key;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) THROW(env, "createClientContext(options, identity, key)");
  context *c = context_new(env, argv[0], 0);
  if (c == NULL) THROW(env, "DTLS client context: bad options or cipher string");
  SSL_CTX_set_psk_client_callback(c->ssl_ctx, psk_client);
  if (napi_get_value_string_utf8(env, argv[1], c->identity, sizeof c->identity, &len) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &key, &c->key_len) != napi_ok || c->key_len > sizeof c->key ||
      napi_create_external(env, c, context_finalize, NULL, &result) != napi_ok) {
    context_finalize(env, c, NULL);
    THROW(env, "DTLS client context: bad identity or key");
  }
  memcpy(c->key, key, c->key_len);
  return result;
}

/* rotateCookieSecret(context): cookies made before the previous rotation stop verifying. */
static napi_value rotate_cookie_secret(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  context *c;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_external(env, argv[0], (void **)&c));
  memcpy(c->cookie_secret[1], c->cookie_secret[0], COOKIE_SECRET_BYTES);
  if (RAND_bytes(c->cookie_secret[0], COOKIE_SECRET_BYTES) != 1) {
    ERR_clear_error();
    THROW(env, "DTLS: no randomness for the cookie secret");
  }
  return NULL;
}

/* cachedSessions(context) -> number of sessions in the server's resumption cache */
static napi_value cached_sessions(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  context *c;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_external(env, argv[0], (void **)&c));
  CHECK(env, napi_create_uint32(env, (uint32_t)SSL_CTX_sess_number(c->ssl_ctx), &result));
  return result;
}

/* ---------- sessions: one SSL per peer ---------- */

typedef struct {
  SSL *ssl;                /* NULL once closed */
  context *owner;
  napi_ref owner_ref;      /* keeps the context alive */
  outbox out;
  int handshake_done;
  /* OpenSSL's handshake message buffer as seen by the message callback during the handshake (see below) */
  const unsigned char *handshake_buffer;
  int handshake_buffer_seen;   /* received handshake messages that were in handshake_buffer */
  int last_received_finished;  /* the last received handshake message was the peer's Finished */
} session;

/*
 * The handshake message buffer, returned to the kernel once the handshake is done.
 *
 * OpenSSL assembles every handshake message in the session's init_buf, grown to 16 KB (SSL3_RT_MAX_PLAIN_LENGTH)
 * and zeroed when the handshake starts; BUF_MEM_grow allocates 4/3 of that, 21,848 bytes. TLS frees it when the
 * handshake ends; DTLS over UDP keeps it for the session's life, in case the peer retransmits its last flight and
 * ours has to be sent again, and no public call frees it. That was most of an established session's memory, for a
 * buffer that is scratch space: OpenSSL copies a message into it before every use (a retransmitted flight from its
 * sent-messages queue, a received message from the record), never reading what an earlier use left there.
 *
 * So when the handshake completes, the whole pages inside the buffer are handed back with madvise(MADV_DONTNEED):
 * the allocation stays OpenSSL's, and a page comes back (zero-filled, as the buffer started) only if OpenSSL writes
 * to it again. glibc's malloc_trim does the same to the inside of free chunks; no allocator keeps anything inside
 * an allocation it handed out. The first 16 KB are certainly the buffer's; the rest of the 21,848 bytes only when
 * OpenSSL allocates with libc malloc (no custom CRYPTO_set_mem_functions) and malloc_usable_size confirms the size.
 *
 * The buffer's address comes from the message callback, which OpenSSL's DTLS code (statem_dtls.c,
 * dtls_get_message_body) calls for every received handshake message with init_buf->data. It is used only when
 * that is certain for this handshake: OpenSSL 3.0 (the version this was read and measured on), at least two
 * received messages seen in the same buffer (so it is not a per-message copy), the last of them the peer's
 * Finished, and the release done in the very call that completed the handshake, before anything else can
 * reallocate init_buf. Otherwise nothing is released, and the session keeps the buffer's pages as OpenSSL would.
 */
static int handshake_buffer_release_supported = 0; /* set at load: OpenSSL 3.0.x */
static int openssl_uses_libc_malloc = 0;            /* set at load: no custom OpenSSL allocator */

static void record_handshake_buffer(int write_p, int version, int content_type, const void *buf, size_t len,
                                    SSL *ssl, void *arg) {
  session *s = SSL_get_app_data(ssl);
  (void)version, (void)arg;
  if (s == NULL || s->handshake_done || write_p || content_type != SSL3_RT_HANDSHAKE ||
      len < DTLS1_HM_HEADER_LENGTH)
    return;
  if (buf == s->handshake_buffer) {
    s->handshake_buffer_seen++;
  } else {
    s->handshake_buffer = buf;
    s->handshake_buffer_seen = 1;
  }
  s->last_received_finished = ((const unsigned char *)buf)[0] == SSL3_MT_FINISHED;
}

/* Called once, right after SSL_do_handshake returned 1. */
static void release_handshake_buffer(session *s) {
  SSL_set_msg_callback(s->ssl, NULL);
  if (!handshake_buffer_release_supported || s->handshake_buffer_seen < 2 || !s->last_received_finished) return;
  size_t size = SSL3_RT_MAX_PLAIN_LENGTH;
#ifdef __GLIBC__
  const size_t grown = (SSL3_RT_MAX_PLAIN_LENGTH + 3) / 3 * 4; /* BUF_MEM_grow's allocation */
  if (openssl_uses_libc_malloc && malloc_usable_size((void *)s->handshake_buffer) >= grown) size = grown;
#endif
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)s->handshake_buffer + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)s->handshake_buffer + size) & ~(page - 1);
  if (end > start) (void)madvise((void *)start, end - start, MADV_DONTNEED);
  s->handshake_buffer = NULL;
}

/*
 * Frees the SSL and both its BIOs. Marked as shut down first: OpenSSL drops a session that was not shut down from
 * the resumption cache, and a session ended without close_notify (peer gone, NAT rebinding) must stay resumable.
 * Sessions ended by a fatal alert were already dropped by OpenSSL; close(..., forget) drops one explicitly.
 */
static void session_free_ssl(session *s) {
  if (s->ssl) {
    SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s->ssl);
  }
  s->ssl = NULL;
  outbox_free(&s->out);
}

static void session_finalize(napi_env env, void *data, void *hint) {
  session *s = data;
  (void)hint;
  session_free_ssl(s);
  napi_delete_reference(env, s->owner_ref);
  free(s);
}

/* Inbox read BIO and outbox write BIO for box; SSL takes ownership. */
static int attach_bios(SSL *ssl, outbox *box, uint32_t mtu) {
  BIO *rbio = BIO_new(inbox_method), *wbio = BIO_new(outbox_method);
  if (rbio == NULL || wbio == NULL) {
    BIO_free(rbio);
    BIO_free(wbio);
    return 0;
  }
  BIO_set_data(wbio, box);
  SSL_set_bio(ssl, rbio, wbio);
  return SSL_set_mtu(ssl, mtu) > 0; /* returns the MTU set, 0 below DTLS's minimum */
}

/*
 * An established session keeps no record buffers between calls. OpenSSL's DTLS record layer allocates a read and a
 * write buffer of about 17 KB each and keeps them for the session's life (SSL_MODE_RELEASE_BUFFERS is honoured by
 * TLS only): 33 of the 68 KB a server session had allocated. So every call on an established session ends with
 * buffers_release (SSL_free_buffers, which refuses, freeing nothing, while a record is partly read or written), and
 * every call that may write without reading first (encrypt, close, handleTimeout) starts with buffers_restore: DTLS's
 * write path uses the write buffer without allocating it (SSL_free_buffers alone broke later writes), while a read
 * sets both buffers up when they are missing. That read is of the inbox, empty outside feed, so it consumes
 * nothing. (The other large allocation, the handshake message buffer, is handed back by release_handshake_buffer.)
 */
static void buffers_release(session *s) {
  if (s->ssl && s->handshake_done) (void)SSL_free_buffers(s->ssl);
}

static void buffers_restore(session *s) {
  unsigned char none[1];
  if (s->ssl && s->handshake_done) {
    ERR_clear_error();
    (void)SSL_read(s->ssl, none, 0);
    ERR_clear_error();
  }
}

static napi_value wrap_session(napi_env env, context *c, napi_value owner, SSL *ssl, session **out) {
  napi_value result;
  session *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->ssl = ssl;
  s->owner = c;
  if (napi_create_reference(env, owner, 1, &s->owner_ref) != napi_ok) {
    free(s);
    return NULL;
  }
  if (napi_create_external(env, s, session_finalize, NULL, &result) != napi_ok) {
    napi_delete_reference(env, s->owner_ref);
    free(s);
    return NULL;
  }
  SSL_set_app_data(ssl, s);
  SSL_set_msg_callback(ssl, record_handshake_buffer);
  *out = s;
  return result;
}

/*
 * accept(serverContext, peer: string, datagram: Buffer) -> { toSend: Buffer[], session?: Session }
 * For a datagram from a peer that has no session. Without a valid cookie the answer is at most a
 * HelloVerifyRequest and nothing is allocated; with one, the returned session continues the handshake
 * (call feed(session, null) to get the server's first flight).
 */
static napi_value accept_peer(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3], result, to_send, wrapped;
  context *c;
  void *data;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) THROW(env, "accept(context, peer, datagram)");
  CHECK(env, napi_get_value_external(env, argv[0], (void **)&c));
  if (!c->is_server) THROW(env, "accept needs a server context");
  CHECK(env, napi_get_value_string_utf8(env, argv[1], c->peer, sizeof c->peer, &c->peer_len));
  CHECK(env, napi_get_buffer_info(env, argv[2], &data, &len));
  c->env = env;
  ERR_clear_error();
  if (c->listener == NULL) {
    c->listener = SSL_new(c->ssl_ctx);
    if (c->listener == NULL || !attach_bios(c->listener, &c->listener_out, c->mtu)) {
      if (c->listener) SSL_free(c->listener);
      c->listener = NULL;
      ERR_clear_error();
      THROW(env, "DTLS: cannot create the listener");
    }
  }
  datagram lent;
  inbox_lend(c->listener, &lent, data, len);
  int listened = len > 0 ? DTLSv1_listen(c->listener, c->listen_addr) : 0;
  inbox_return(c->listener);
  ERR_clear_error();
  CHECK(env, napi_create_object(env, &result));
  to_send = outbox_drain(env, &c->listener_out);
  if (to_send == NULL) THROW(env, "DTLS: out of memory");
  CHECK(env, napi_set_named_property(env, result, "toSend", to_send));
  if (listened == 1) {
    session *s;
    wrapped = wrap_session(env, c, argv[0], c->listener, &s);
    if (wrapped == NULL) THROW(env, "DTLS: out of memory");
    BIO_set_data(SSL_get_wbio(c->listener), &s->out); /* the session's writes go to its own outbox now */
    c->listener = NULL;
    CHECK(env, napi_set_named_property(env, result, "session", wrapped));
  }
  return result;
}

/* connect(clientContext, resume?: SavedSession) -> Session; feed(session, null) yields the ClientHello. */
static napi_value connect_client(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], wrapped;
  napi_valuetype type = napi_undefined;
  context *c;
  session *s;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) THROW(env, "connect(context, resume?)");
  CHECK(env, napi_get_value_external(env, argv[0], (void **)&c));
  if (c->is_server) THROW(env, "connect needs a client context");
  SSL *ssl = SSL_new(c->ssl_ctx);
  if (ssl == NULL) THROW(env, "DTLS: out of memory");
  wrapped = wrap_session(env, c, argv[0], ssl, &s);
  if (wrapped == NULL) {
    SSL_free(ssl);
    THROW(env, "DTLS: out of memory");
  }
  if (!attach_bios(ssl, &s->out, c->mtu)) THROW(env, "DTLS: cannot attach BIOs");
  SSL_set_connect_state(ssl);
  if (argc >= 2) napi_typeof(env, argv[1], &type);
  if (type == napi_external) {
    SSL_SESSION *saved;
    CHECK(env, napi_get_value_external(env, argv[1], (void **)&saved));
    SSL_set_session(ssl, saved);
  }
  ERR_clear_error();
  return wrapped;
}

static int set_bool(napi_env env, napi_value obj, const char *name, int value) {
  napi_value v;
  return napi_get_boolean(env, value, &v) == napi_ok && napi_set_named_property(env, obj, name, v) == napi_ok;
}

/*
 * Runs the handshake and then reads every record available; builds the result every session call returns:
 * { plaintext: Buffer[], toSend: Buffer[], handshakeDone: boolean (the handshake finished in THIS call),
 *   established: boolean, identity?: string, resumed: boolean, sessionTime: seconds since the epoch when the
 *   (possibly resumed) session was first made, closed: boolean (peer closed or fatal error; free the session),
 *   error?: string (OpenSSL's reason, never key material), timeoutMs: ms until handleTimeout is due, or -1 }
 */
static napi_value drive(napi_env env, session *s) {
  napi_value result, plaintext, to_send, v;
  uint32_t count = 0;
  int just_done = 0, closed = 0;
  const char *error = NULL;
  unsigned char buf[MAX_PLAINTEXT]; /* on the stack: safe with worker threads */
  int used = 0;
  CHECK(env, napi_create_object(env, &result));
  CHECK(env, napi_create_array(env, &plaintext));
  s->owner->env = env;
  if (s->ssl && !s->handshake_done) {
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
      s->handshake_done = just_done = 1;
      release_handshake_buffer(s);
    } else {
      int e = SSL_get_error(s->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        closed = 1;
        error = ERR_reason_error_string(ERR_peek_error());
        if (error == NULL) error = "handshake failed";
      }
    }
  }
  while (s->ssl && s->handshake_done && !closed) {
    ERR_clear_error();
    int n = SSL_read(s->ssl, buf, sizeof buf);
    if (n > 0) {
      used = n > used ? n : used;
      CHECK(env, napi_create_buffer_copy(env, (size_t)n, buf, NULL, &v));
      CHECK(env, napi_set_element(env, plaintext, count++, v));
      continue;
    }
    int e = SSL_get_error(s->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    closed = 1; /* SSL_ERROR_ZERO_RETURN: close_notify; anything else is fatal for this session */
    if (e != SSL_ERROR_ZERO_RETURN) {
      error = ERR_reason_error_string(ERR_peek_error());
      if (error == NULL) error = "record layer failure";
    }
  }
  OPENSSL_cleanse(buf, (size_t)used);
  CHECK(env, napi_set_named_property(env, result, "plaintext", plaintext));
  if (!set_bool(env, result, "handshakeDone", just_done) ||
      !set_bool(env, result, "established", s->handshake_done && !closed) ||
      !set_bool(env, result, "closed", closed) ||
      !set_bool(env, result, "resumed", s->ssl && s->handshake_done && SSL_session_reused(s->ssl)))
    THROW(env, "DTLS: out of memory");
  if (s->ssl && s->handshake_done) {
    const char *identity = SSL_get_psk_identity(s->ssl);
    SSL_SESSION *sess = SSL_get_session(s->ssl);
    if (identity) {
      CHECK(env, napi_create_string_utf8(env, identity, NAPI_AUTO_LENGTH, &v));
      CHECK(env, napi_set_named_property(env, result, "identity", v));
    }
    CHECK(env, napi_create_double(env, sess ? (double)SSL_SESSION_get_time(sess) : 0, &v));
    CHECK(env, napi_set_named_property(env, result, "sessionTime", v));
  }
  if (error) {
    CHECK(env, napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &v));
    CHECK(env, napi_set_named_property(env, result, "error", v));
  }
  struct timeval tv;
  double timeout_ms = -1;
  if (s->ssl && !closed && DTLSv1_get_timeout(s->ssl, &tv) == 1) timeout_ms = tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
  CHECK(env, napi_create_double(env, timeout_ms, &v));
  CHECK(env, napi_set_named_property(env, result, "timeoutMs", v));
  to_send = outbox_drain(env, &s->out);
  if (to_send == NULL) THROW(env, "DTLS: out of memory");
  CHECK(env, napi_set_named_property(env, result, "toSend", to_send));
  if (closed) session_free_ssl(s);
  else buffers_release(s);
  ERR_clear_error();
  return result;
}

static session *session_arg(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  session *s = NULL;
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok ||
      napi_get_value_external(env, argv[0], (void **)&s) != napi_ok)
    return NULL;
  return s;
}

/* feed(session, datagram: Buffer | null) -> result (see drive). A closed session returns closed: true. */
static napi_value feed(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2];
  napi_valuetype type = napi_null;
  void *data;
  session *s = session_arg(env, info, &argc, argv);
  if (s == NULL || argc < 2) THROW(env, "feed(session, datagram)");
  napi_typeof(env, argv[1], &type);
  if (s->ssl == NULL || type != napi_object) return drive(env, s);
  datagram lent;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  inbox_lend(s->ssl, &lent, data, len);
  napi_value result = drive(env, s); /* frees the SSL (and its BIOs) if the session ended */
  inbox_return(s->ssl);
  return result;
}

/* handleTimeout(session) -> result: retransmits the last flight if its timer has expired. */
static napi_value handle_timeout(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  session *s = session_arg(env, info, &argc, argv);
  if (s == NULL) THROW(env, "handleTimeout(session)");
  if (s->ssl) {
    buffers_restore(s);
    ERR_clear_error();
    if (DTLSv1_handle_timeout(s->ssl) < 0) ERR_clear_error(); /* too many retransmissions: drive() reports it */
  }
  return drive(env, s);
}

/* encrypt(session, plaintext: Buffer) -> Buffer[] (one record per datagram). Throws if not established. */
static napi_value encrypt_record(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2], out;
  void *data;
  session *s = session_arg(env, info, &argc, argv);
  if (s == NULL || argc < 2) THROW(env, "encrypt(session, plaintext)");
  if (s->ssl == NULL || !s->handshake_done) THROW(env, "DTLS session is not established");
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  if (len == 0 || len > MAX_PLAINTEXT) THROW(env, "DTLS plaintext must be 1..16384 bytes");
  buffers_restore(s);
  ERR_clear_error();
  int n = SSL_write(s->ssl, data, (int)len);
  ERR_clear_error();
  buffers_release(s);
  if (n != (int)len) {
    outbox_clear(&s->out);
    THROW(env, "DTLS encrypt failed");
  }
  out = outbox_drain(env, &s->out);
  if (out == NULL) THROW(env, "DTLS: out of memory");
  return out;
}

/*
 * close(session, notify: boolean, forget: boolean) -> Buffer[]: the close_notify alert if notify and established;
 * forget also drops the session from the resumption cache. Frees the SSL.
 */
static napi_value close_session(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  bool notify = false, forget = false;
  session *s = session_arg(env, info, &argc, argv);
  if (s == NULL) THROW(env, "close(session, notify, forget)");
  if (argc >= 2) napi_get_value_bool(env, argv[1], &notify);
  if (argc >= 3) napi_get_value_bool(env, argv[2], &forget);
  if (s->ssl && forget && SSL_get_session(s->ssl)) SSL_CTX_remove_session(SSL_get_SSL_CTX(s->ssl), SSL_get_session(s->ssl));
  if (s->ssl && s->handshake_done && notify) {
    buffers_restore(s);
    ERR_clear_error();
    SSL_shutdown(s->ssl);
    ERR_clear_error();
  }
  out = outbox_drain(env, &s->out);
  session_free_ssl(s);
  return out;
}

static void saved_session_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  SSL_SESSION_free(data);
}

/* saveSession(clientSession) -> SavedSession | undefined, for connect(..., resume). */
static napi_value save_session(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  session *s = session_arg(env, info, &argc, argv);
  if (s == NULL) THROW(env, "saveSession(session)");
  SSL_SESSION *saved = s->ssl && s->handshake_done ? SSL_get1_session(s->ssl) : NULL;
  if (saved == NULL) return NULL;
  if (napi_create_external(env, saved, saved_session_finalize, NULL, &result) != napi_ok) {
    SSL_SESSION_free(saved);
    THROW(env, "DTLS: out of memory");
  }
  return result;
}

/* cipher(session) -> the negotiated suite's OpenSSL name, or undefined before the handshake. */
static napi_value cipher_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  session *s = session_arg(env, info, &argc, argv);
  if (s == NULL) THROW(env, "cipher(session)");
  if (s->ssl == NULL || !s->handshake_done) return NULL;
  CHECK(env, napi_create_string_utf8(env, SSL_get_cipher_name(s->ssl), NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } functions[] = {
      {"createServerContext", create_server_context},
      {"createClientContext", create_client_context},
      {"rotateCookieSecret", rotate_cookie_secret},
      {"cachedSessions", cached_sessions},
      {"accept", accept_peer},
      {"connect", connect_client},
      {"feed", feed},
      {"handleTimeout", handle_timeout},
      {"encrypt", encrypt_record},
      {"close", close_session},
      {"saveSession", save_session},
      {"cipher", cipher_name},
  };
  handshake_buffer_release_supported = (OpenSSL_version_num() >> 20) == 0x300; /* 0xMNN00PP0 */
  CRYPTO_malloc_fn malloc_fn;
  CRYPTO_realloc_fn realloc_fn;
  CRYPTO_free_fn free_fn;
  CRYPTO_get_mem_functions(&malloc_fn, &realloc_fn, &free_fn);
  openssl_uses_libc_malloc = malloc_fn == CRYPTO_malloc && realloc_fn == CRYPTO_realloc;
  if (outbox_method == NULL) {
    outbox_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "datagram outbox");
    if (outbox_method == NULL || !BIO_meth_set_write(outbox_method, outbox_write) ||
        !BIO_meth_set_ctrl(outbox_method, outbox_ctrl) || !BIO_meth_set_create(outbox_method, bio_create))
      THROW(env, "DTLS: cannot create the outbox BIO method");
  }
  if (inbox_method == NULL) {
    inbox_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "datagram inbox");
    if (inbox_method == NULL || !BIO_meth_set_read(inbox_method, inbox_read) ||
        !BIO_meth_set_ctrl(inbox_method, inbox_ctrl) || !BIO_meth_set_create(inbox_method, bio_create))
      THROW(env, "DTLS: cannot create the inbox BIO method");
  }
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    CHECK(env, napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn));
    CHECK(env, napi_set_named_property(env, exports, functions[i].name, fn));
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
