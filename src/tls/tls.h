/* tls.h: internals shared by the files of src/tls. */
#ifndef EDDY_TLS_TLS_H
#define EDDY_TLS_TLS_H

#include <stdatomic.h>

#include <openssl/ssl.h>

#include "eddy/tls.h"
#include "net/net.h"

/* A server certificate chosen by SNI. */
typedef struct eddy__tls_cert {
  X509 *cert;
  EVP_PKEY *key;
  STACK_OF(X509) *chain;
} eddy__tls_cert;

struct eddy_tls_ctx {
  SSL_CTX *ssl;
  atomic_int refs;
  int server;
  eddy_tls_verify verify;
  int64_t handshake_timeout;
  unsigned char *alpn; /* wire format */
  size_t alpn_len;
  size_t nloaded;   /* certificates added, the default included */
  char *passphrase; /* for encrypted keys; NULL: none (never a prompt) */
  eddy__tls_cert *extra;
  size_t nextra, extra_cap;
};

void eddy__tls_ctx_ref(eddy_tls_ctx *ctx);

/* TLS as a wrapper of new connections (endpoint.c), listed in
 * eddy__wrappers by src/layers.c. */
extern const eddy__wrap_ops eddy__tls_wrap;

#endif
