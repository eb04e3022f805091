/* eddy/tls.h: TLS over any stream.
 *
 * TLS is a layer, not a kind of socket: eddy_tls_start() turns an open
 * eddy_stream (TCP, Unix socket, pipe pair, even one in the middle of a
 * plaintext conversation) into an encrypted one, in place. The program
 * keeps the same eddy_stream pointer and the same calls: write, pause,
 * watermarks, shutdown, close, abort all behave as on a plaintext stream.
 *
 * What TLS adds to the close callback's status:
 *   EDDY_ETLS        the handshake or the connection failed; detail says
 *                    why ("certificate verify failed: hostname mismatch",
 *                    "TLS handshake failed: tlsv1 alert unknown ca").
 *   EDDY_ETRUNCATED  the transport ended without the peer's close_notify:
 *                    the data may have been cut short by an attacker or a
 *                    crash, and a protocol that frames its messages by the
 *                    end of the connection must not trust the last one.
 *   -ETIMEDOUT       the handshake did not finish in time (default 10 s).
 * A clean end (close_notify received) is the eof callback, as for TCP.
 *
 * Defaults: TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy,
 * X25519/P-256/P-384, no renegotiation, no compression. A client verifies
 * the server's certificate against the system's trust store and checks the
 * host name (or the IP address, for an IP literal) unless told not to.
 *
 * Writes made before the handshake completes are queued and sent once it
 * does; data arrives only after it.
 */
#ifndef EDDY_TLS_H
#define EDDY_TLS_H

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_tls_ctx eddy_tls_ctx;

typedef enum eddy_tls_role {
  EDDY_TLS_SERVER,
  EDDY_TLS_CLIENT,
} eddy_tls_role;

typedef enum eddy_tls_verify {
  EDDY_TLS_VERIFY_NONE,     /* client: accept any certificate (insecure);
                               server: ask for no client certificate */
  EDDY_TLS_VERIFY_OPTIONAL, /* server: ask for one, verify it if given */
  EDDY_TLS_VERIFY_REQUIRE,  /* client default; server: demand one */
} eddy_tls_verify;

#define EDDY_TLS_1_2 0x0303
#define EDDY_TLS_1_3 0x0304

/* A context holds what many connections share: certificates, trust,
 * settings. It is reference counted: streams keep it alive, so the
 * program may free its reference whenever it likes. Contexts may be used
 * from several threads once configured. Errors: -ENOMEM, EDDY_ETLS. */
EDDY_API int eddy_tls_ctx_new(eddy_tls_role role, eddy_tls_ctx **out);
EDDY_API void eddy_tls_ctx_free(eddy_tls_ctx *ctx);

/* Loads a certificate chain (PEM: the certificate first, then its
 * intermediates) and its private key (key_path NULL: the same file). On a
 * server the first one is the default and each later one is chosen when a
 * client's SNI names one of its host names; on a client it is the client
 * certificate. EDDY_ETLS with a sentence in err for an unreadable file, a
 * bad PEM, or a key that does not match. */
EDDY_API int eddy_tls_ctx_add_cert(eddy_tls_ctx *ctx, const char *chain_path,
                                   const char *key_path, char *err,
                                   size_t errlen);

/* The passphrase later eddy_tls_ctx_add_cert() calls decrypt an encrypted
 * private key with (copied; NULL forgets it, wiping the copy). OpenSSL
 * never prompts for one: without it an encrypted key fails with "private
 * key in 'FILE' is encrypted", with a wrong one "wrong passphrase". 0 or
 * -ENOMEM. A tls: endpoint's passphraseFile= sets it from a file. */
EDDY_API int eddy_tls_ctx_set_passphrase(eddy_tls_ctx *ctx,
                                         const char *passphrase);

/* Trusts the CA certificates of a PEM file (or an OpenSSL hashed
 * directory) instead of the system's store: the server certificates a
 * client accepts, or the client certificates a server accepts. */
EDDY_API int eddy_tls_ctx_set_trust(eddy_tls_ctx *ctx, const char *path,
                                    char *err, size_t errlen);

EDDY_API int eddy_tls_ctx_set_verify(eddy_tls_ctx *ctx, eddy_tls_verify mode);

/* ALPN: a comma-separated list ("h2,http/1.1"), in order of preference. A
 * client offers them; a server picks its first that the client offered,
 * and refuses the handshake when the client offered only others. -EINVAL
 * for an empty name or one longer than 255 bytes. */
EDDY_API int eddy_tls_ctx_set_alpn(eddy_tls_ctx *ctx, const char *protocols);

/* Protocol versions (EDDY_TLS_1_2, EDDY_TLS_1_3; 0: the default). */
EDDY_API int eddy_tls_ctx_set_versions(eddy_tls_ctx *ctx, int min, int max);

EDDY_API int eddy_tls_ctx_set_handshake_timeout(eddy_tls_ctx *ctx,
                                                int64_t timeout_ns);

/* Session tickets a server issues per full handshake (default 1; 0 turns
 * resumption by ticket off). -EINVAL on a client or above 16. */
EDDY_API int eddy_tls_ctx_set_session_tickets(eddy_tls_ctx *ctx, int n);

/* The context a parsed tls: endpoint describes: for a server its
 * certificate and key (an encrypted key opened with passphraseFile's first
 * line), for a client its trust roots and verify=. err gets
 * a sentence naming the file at fault. Programs that connect often make it
 * once and pass it to eddy_connect_tls(). */
EDDY_API int eddy_tls_ctx_from_endpoint(const eddy_endpoint *ep, int server,
                                        eddy_tls_ctx **out, char *err,
                                        size_t errlen);

/* Connects to ep as eddy_connect_endpoint() does, then starts TLS on the
 * stream with ctx (a client context), verifying ep's host. The callback
 * gets the stream as soon as TCP is connected; the handshake's outcome
 * reaches the stream's close callback if it fails. */
EDDY_API int eddy_connect_tls(eddy_loop *loop, const eddy_endpoint *ep,
                              eddy_tls_ctx *ctx, eddy_connect_cb cb, void *arg,
                              eddy_connect **req);

/* Starts TLS on s, in place. server_name is the host a client expects
 * (sent as SNI and verified; an IP literal is verified as an address and
 * not sent); NULL on a server. A client that verifies needs it (-EINVAL
 * without). pending/len are bytes the program already read from s that
 * belong to TLS: a STARTTLS protocol passes what followed the upgrade
 * command in the same read, so nothing is lost. Returns 0, -ENOMEM,
 * -EALREADY (already TLS), EDDY_ECLOSED (s is ending or one-way). On
 * failure s is unchanged. */
EDDY_API int eddy_tls_start(eddy_stream *s, eddy_tls_ctx *ctx,
                            const char *server_name, const void *pending,
                            size_t len);

/* Makes every connection the listener accepts from now on start TLS with
 * ctx (a server context; NULL: plaintext). The listener keeps a
 * reference. A tls: endpoint sets this up by itself. */
EDDY_API void eddy_listener_set_tls(eddy_listener *l, eddy_tls_ctx *ctx);

/* Called once, when the handshake completes, with the stream's arg. */
typedef void (*eddy_tls_handshake_cb)(eddy_stream *s, void *arg);
EDDY_API void eddy_tls_on_handshake(eddy_stream *s, eddy_tls_handshake_cb cb);

/* About a TLS stream (NULL or -EINVAL for a plaintext one). The strings
 * stay valid until the close callback returns. */
EDDY_API int eddy_stream_is_tls(const eddy_stream *s);
EDDY_API int eddy_tls_handshake_done(const eddy_stream *s);
EDDY_API const char *eddy_tls_version(const eddy_stream *s); /* "TLSv1.3" */
EDDY_API const char *eddy_tls_cipher(const eddy_stream *s);
EDDY_API const char *eddy_tls_alpn(const eddy_stream *s); /* NULL: none */
EDDY_API const char *eddy_tls_server_name(const eddy_stream *s); /* SNI */
EDDY_API int eddy_tls_resumed(const eddy_stream *s);
/* The peer certificate's subject ("CN=client,O=eddy"); -ENOENT if the
 * peer sent none. */
EDDY_API int eddy_tls_peer_subject(const eddy_stream *s, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
