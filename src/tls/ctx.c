/* ctx.c: TLS contexts (OpenSSL 3).
 *
 * One SSL_CTX per eddy_tls_ctx. Server certificates after the first are
 * kept parsed (certificate, key, chain) and put on a connection by the SNI
 * callback with SSL_use_cert_and_key(), which only takes references: the
 * choice costs no parsing, and every connection shares one SSL_CTX, so one
 * set of session ticket keys serves every name.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "sys/alloc.h"
#include "tls/tls.h"

/* TLS 1.2 suites: ECDHE key exchange and AEAD only. TLS 1.3's own list
 * (OpenSSL's default) is already that. */
#define CIPHERS_12                                                             \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                 \
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                 \
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define GROUPS "X25519:P-256:P-384"
#define DEFAULT_HANDSHAKE_TIMEOUT (10 * EDDY_NSEC_PER_SEC)

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The reason OpenSSL gave for the last failure, and the queue cleared. */
static const char *ssl_reason(void) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "unknown error";
}

/* ---- SNI and ALPN ------------------------------------------------------------- */

static int on_servername(SSL *ssl, int *alert, void *arg) {
  eddy_tls_ctx *ctx = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  (void)alert;
  if (name == NULL)
    return SSL_TLSEXT_ERR_NOACK;
  for (size_t i = 0; i < ctx->nextra; i++) {
    eddy__tls_cert *c = &ctx->extra[i];
    if (X509_check_host(c->cert, name, 0, 0, NULL) == 1) {
      if (SSL_use_cert_and_key(ssl, c->cert, c->key, c->chain, 1) != 1)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
      return SSL_TLSEXT_ERR_OK;
    }
  }
  /* No better match: the default certificate, as most servers do. */
  return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg) {
  eddy_tls_ctx *ctx = arg;
  unsigned char *sel = NULL;
  (void)ssl;
  /* Our order first: the server's preference decides. */
  if (SSL_select_next_proto(&sel, outlen, ctx->alpn, (unsigned)ctx->alpn_len,
                            in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301: no_application_protocol */
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* ---- Contexts ----------------------------------------------------------------- */

int eddy_tls_ctx_new(eddy_tls_role role, eddy_tls_ctx **out) {
  eddy_tls_ctx *ctx = eddy__calloc(1, sizeof *ctx);
  SSL_CTX *ssl;
  if (ctx == NULL)
    return -ENOMEM;
  ssl = SSL_CTX_new(role == EDDY_TLS_SERVER ? TLS_server_method()
                                            : TLS_client_method());
  if (ssl == NULL) {
    ERR_clear_error();
    eddy__free(ctx);
    return -ENOMEM;
  }
  ctx->ssl = ssl;
  ctx->server = role == EDDY_TLS_SERVER;
  atomic_init(&ctx->refs, 1);
  ctx->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
  SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
  SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(ssl, CIPHERS_12) != 1 ||
      SSL_CTX_set1_groups_list(ssl, GROUPS) != 1) {
    ERR_clear_error();
    eddy_tls_ctx_free(ctx);
    return EDDY_ETLS;
  }
  if (ctx->server) {
    static const unsigned char sid[] = "eddy";
    SSL_CTX_set_session_id_context(ssl, sid, sizeof sid - 1);
    /* One TLS 1.3 ticket, not OpenSSL's two: a client resumes with one,
     * and each costs a session encoding and encryption per handshake. */
    SSL_CTX_set_num_tickets(ssl, 1);
    SSL_CTX_set_tlsext_servername_callback(ssl, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ssl, ctx);
    ctx->verify = EDDY_TLS_VERIFY_NONE;
  } else {
    ctx->verify = EDDY_TLS_VERIFY_REQUIRE;
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    /* Without a system store (no ca-certificates) nothing verifies, which
     * is the safe failure; the program can still set its own trust. */
    if (SSL_CTX_set_default_verify_paths(ssl) != 1)
      ERR_clear_error();
  }
  *out = ctx;
  return 0;
}

void eddy__tls_ctx_ref(eddy_tls_ctx *ctx) {
  atomic_fetch_add(&ctx->refs, 1);
}

void eddy_tls_ctx_free(eddy_tls_ctx *ctx) {
  if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
    return;
  for (size_t i = 0; i < ctx->nextra; i++) {
    X509_free(ctx->extra[i].cert);
    EVP_PKEY_free(ctx->extra[i].key);
    sk_X509_pop_free(ctx->extra[i].chain, X509_free);
  }
  eddy__free(ctx->extra);
  eddy__free(ctx->alpn);
  (void)eddy_tls_ctx_set_passphrase(ctx, NULL);
  SSL_CTX_free(ctx->ssl);
  eddy__free(ctx);
}

/* ---- Keys and certificates --------------------------------------------------- */

/* Every PEM read goes through this callback, so OpenSSL never falls back
 * to its own, which prompts on the terminal ("Enter PEM pass phrase:") and
 * blocks start-up, or reads stdin. It hands over the context's passphrase
 * if there is one, and notes that one was asked for: a key that then fails
 * to load is reported as encrypted rather than as "no PEM key". */
typedef struct pass_req {
  const char *pass;
  int asked;
} pass_req;

static int on_passphrase(char *buf, int size, int rwflag, void *u) {
  pass_req *req = u;
  size_t n;
  (void)rwflag;
  req->asked = 1;
  if (req->pass == NULL || size <= 0)
    return -1;
  n = strlen(req->pass);
  if (n > (size_t)size)
    return -1;
  memcpy(buf, req->pass, n);
  return (int)n;
}

int eddy_tls_ctx_set_passphrase(eddy_tls_ctx *ctx, const char *passphrase) {
  char *copy = NULL;
  if (passphrase) {
    size_t n = strlen(passphrase) + 1;
    if ((copy = eddy__malloc(n)) == NULL)
      return -ENOMEM;
    memcpy(copy, passphrase, n);
  }
  if (ctx->passphrase) {
    OPENSSL_cleanse(ctx->passphrase, strlen(ctx->passphrase));
    eddy__free(ctx->passphrase);
  }
  ctx->passphrase = copy;
  return 0;
}

/* Reads a PEM chain: the leaf, then the intermediates. */
static int read_chain(const char *path, X509 **leaf, STACK_OF(X509) **chain,
                      char *err, size_t errlen) {
  BIO *b = BIO_new_file(path, "r");
  pass_req req = {NULL, 0}; /* a certificate is never encrypted */
  X509 *x;
  if (b == NULL) {
    set_err(err, errlen, "cannot read certificate file '%s': %s", path,
            strerror(errno ? errno : ENOENT));
    ERR_clear_error();
    return EDDY_ETLS;
  }
  *leaf = PEM_read_bio_X509(b, NULL, on_passphrase, &req);
  *chain = sk_X509_new_null();
  if (*leaf == NULL || *chain == NULL) {
    set_err(err, errlen, "no PEM certificate in '%s'", path);
    goto fail;
  }
  while ((x = PEM_read_bio_X509(b, NULL, on_passphrase, &req)) != NULL) {
    if (!sk_X509_push(*chain, x)) {
      X509_free(x);
      set_err(err, errlen, "out of memory reading '%s'", path);
      goto fail;
    }
  }
  ERR_clear_error(); /* the end of the file reads as an error */
  BIO_free(b);
  return 0;
fail:
  ERR_clear_error();
  BIO_free(b);
  X509_free(*leaf);
  sk_X509_pop_free(*chain, X509_free);
  *leaf = NULL;
  *chain = NULL;
  return EDDY_ETLS;
}

static int read_key(const char *path, const char *pass, EVP_PKEY **key,
                    char *err, size_t errlen) {
  BIO *b = BIO_new_file(path, "r");
  pass_req req = {pass, 0};
  if (b == NULL) {
    set_err(err, errlen, "cannot read key file '%s': %s", path,
            strerror(errno ? errno : ENOENT));
    ERR_clear_error();
    return EDDY_ETLS;
  }
  *key = PEM_read_bio_PrivateKey(b, NULL, on_passphrase, &req);
  BIO_free(b);
  if (*key == NULL) {
    ERR_clear_error(); /* OpenSSL's reason ("unsupported") says less */
    if (req.asked && pass)
      set_err(err, errlen, "wrong passphrase for the private key in '%s'",
              path);
    else if (req.asked)
      set_err(err, errlen,
              "private key in '%s' is encrypted (give its passphrase with "
              "passphraseFile=)",
              path);
    else
      set_err(err, errlen, "no PEM private key in '%s'", path);
    return EDDY_ETLS;
  }
  return 0;
}

int eddy_tls_ctx_add_cert(eddy_tls_ctx *ctx, const char *chain_path,
                          const char *key_path, char *err, size_t errlen) {
  X509 *leaf = NULL;
  STACK_OF(X509) *chain = NULL;
  EVP_PKEY *key = NULL;
  int rc;
  if (chain_path == NULL)
    return -EINVAL;
  if (key_path == NULL)
    key_path = chain_path;
  if ((rc = read_chain(chain_path, &leaf, &chain, err, errlen)) != 0)
    return rc;
  if ((rc = read_key(key_path, ctx->passphrase, &key, err, errlen)) != 0)
    goto out;
  if (X509_check_private_key(leaf, key) != 1) {
    ERR_clear_error();
    set_err(err, errlen,
            "the key in '%s' does not match the certificate in '%s'", key_path,
            chain_path);
    rc = EDDY_ETLS;
    goto out;
  }
  if (ctx->nloaded == 0) {
    /* The default (and, on a client, the only) certificate. */
    if (SSL_CTX_use_cert_and_key(ctx->ssl, leaf, key, chain, 1) != 1) {
      set_err(err, errlen, "cannot use the certificate in '%s': %s", chain_path,
              ssl_reason());
      rc = EDDY_ETLS;
      goto out;
    }
  } else {
    void *arr = ctx->extra;
    size_t cap = ctx->extra_cap;
    if (!ctx->server) {
      set_err(err, errlen, "a client has one certificate");
      rc = -EINVAL;
      goto out;
    }
    if (eddy__grow(&arr, &cap, ctx->nextra + 1, sizeof(eddy__tls_cert))) {
      rc = -ENOMEM;
      goto out;
    }
    ctx->extra = arr;
    ctx->extra_cap = cap;
    ctx->extra[ctx->nextra++] = (eddy__tls_cert){leaf, key, chain};
    ctx->nloaded++;
    return 0;
  }
  ctx->nloaded++;
out:
  X509_free(leaf);
  EVP_PKEY_free(key);
  sk_X509_pop_free(chain, X509_free);
  return rc;
}

int eddy_tls_ctx_set_trust(eddy_tls_ctx *ctx, const char *path, char *err,
                           size_t errlen) {
  struct stat st;
  X509_STORE *store;
  int dir;
  if (path == NULL)
    return -EINVAL;
  if (stat(path, &st) != 0) {
    set_err(err, errlen, "cannot read CA file '%s': %s", path, strerror(errno));
    return EDDY_ETLS;
  }
  dir = S_ISDIR(st.st_mode);
  /* The given roots replace the system's: trusting "this CA" must not
   * mean "this CA and every public one". */
  if ((store = X509_STORE_new()) == NULL)
    return -ENOMEM;
  if (X509_STORE_load_locations(store, dir ? NULL : path, dir ? path : NULL) !=
      1) {
    set_err(err, errlen, "no CA certificates in '%s' (%s)", path, ssl_reason());
    X509_STORE_free(store);
    return EDDY_ETLS;
  }
  SSL_CTX_set_cert_store(ctx->ssl, store);
  if (ctx->server && !dir) {
    /* Tell clients which CAs their certificate may come from. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
    if (names)
      SSL_CTX_set_client_CA_list(ctx->ssl, names);
    ERR_clear_error();
  }
  return 0;
}

int eddy_tls_ctx_set_verify(eddy_tls_ctx *ctx, eddy_tls_verify mode) {
  int flags;
  switch (mode) {
  case EDDY_TLS_VERIFY_NONE:
    flags = SSL_VERIFY_NONE;
    break;
  case EDDY_TLS_VERIFY_OPTIONAL:
    if (!ctx->server)
      return -EINVAL;
    flags = SSL_VERIFY_PEER;
    break;
  case EDDY_TLS_VERIFY_REQUIRE:
    flags = SSL_VERIFY_PEER |
            (ctx->server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    break;
  default:
    return -EINVAL;
  }
  ctx->verify = mode;
  SSL_CTX_set_verify(ctx->ssl, flags, NULL);
  return 0;
}

int eddy_tls_ctx_set_alpn(eddy_tls_ctx *ctx, const char *protocols) {
  size_t n = protocols ? strlen(protocols) : 0, len = 0;
  unsigned char *wire;
  const char *p = protocols;
  if (n == 0)
    return -EINVAL;
  /* Wire format: each name preceded by its length; one byte more than the
   * comma-separated text. */
  if ((wire = eddy__malloc(n + 1)) == NULL)
    return -ENOMEM;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t k = end ? (size_t)(end - p) : strlen(p);
    if (k == 0 || k > 255 || (end && end[1] == '\0')) {
      eddy__free(wire);
      return -EINVAL;
    }
    wire[len++] = (unsigned char)k;
    memcpy(wire + len, p, k);
    len += k;
    p += k + (end != NULL);
  }
  if (!ctx->server && SSL_CTX_set_alpn_protos(ctx->ssl, wire, (unsigned)len)) {
    eddy__free(wire);
    return -ENOMEM;
  }
  eddy__free(ctx->alpn);
  ctx->alpn = wire;
  ctx->alpn_len = len;
  if (ctx->server)
    SSL_CTX_set_alpn_select_cb(ctx->ssl, on_alpn, ctx);
  return 0;
}

static int version_ok(int v) {
  return v == 0 || v == EDDY_TLS_1_2 || v == EDDY_TLS_1_3;
}

int eddy_tls_ctx_set_versions(eddy_tls_ctx *ctx, int min, int max) {
  if (!version_ok(min) || !version_ok(max) || (min && max && min > max))
    return -EINVAL;
  if (SSL_CTX_set_min_proto_version(ctx->ssl, min ? min : TLS1_2_VERSION) !=
          1 ||
      SSL_CTX_set_max_proto_version(ctx->ssl, max) != 1) {
    ERR_clear_error();
    return -EINVAL;
  }
  return 0;
}

/* The first line of path (without its newline) becomes the passphrase;
 * the copy read is wiped. */
static int passphrase_from_file(eddy_tls_ctx *ctx, const char *path, char *err,
                                size_t errlen) {
  char line[1024];
  FILE *f = fopen(path, "re");
  int e;
  if (f == NULL) {
    set_err(err, errlen, "cannot read passphrase file '%s': %s", path,
            strerror(errno));
    return EDDY_ETLS;
  }
  if (fgets(line, sizeof line, f) == NULL)
    line[0] = '\0';
  fclose(f);
  line[strcspn(line, "\r\n")] = '\0';
  e = eddy_tls_ctx_set_passphrase(ctx, line);
  OPENSSL_cleanse(line, sizeof line);
  return e;
}

int eddy_tls_ctx_from_endpoint(const eddy_endpoint *ep, int server,
                               eddy_tls_ctx **out, char *err, size_t errlen) {
  eddy_tls_ctx *ctx;
  char why[400];
  int e = eddy_tls_ctx_new(server ? EDDY_TLS_SERVER : EDDY_TLS_CLIENT, &ctx);
  if (e) {
    set_err(err, errlen, "tls: cannot make a TLS context: %s",
            eddy_strerror(e));
    return e;
  }
  why[0] = '\0';
  if (server && ep->passphrase_file[0])
    e = passphrase_from_file(ctx, ep->passphrase_file, why, sizeof why);
  if (e == 0 && server)
    e = eddy_tls_ctx_add_cert(ctx, ep->cert_key, ep->private_key, why,
                              sizeof why);
  else if (ep->trust_roots[0])
    e = eddy_tls_ctx_set_trust(ctx, ep->trust_roots, why, sizeof why);
  if (e == 0 && !server && !ep->verify)
    e = eddy_tls_ctx_set_verify(ctx, EDDY_TLS_VERIFY_NONE);
  if (e) {
    set_err(err, errlen, "tls: %s", why[0] ? why : eddy_strerror(e));
    eddy_tls_ctx_free(ctx);
    return e;
  }
  *out = ctx;
  return 0;
}

int eddy_tls_ctx_set_session_tickets(eddy_tls_ctx *ctx, int n) {
  if (!ctx->server || n < 0 || n > 16)
    return -EINVAL;
  if (n == 0)
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET);
  else
    SSL_CTX_clear_options(ctx->ssl, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx->ssl, (size_t)n);
  return 0;
}

int eddy_tls_ctx_set_handshake_timeout(eddy_tls_ctx *ctx, int64_t timeout_ns) {
  if (timeout_ns <= 0)
    return -EINVAL;
  ctx->handshake_timeout = timeout_ns;
  return 0;
}
