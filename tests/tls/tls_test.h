/* tls_test.h: certificates, peers and a two-ended TLS harness for the TLS
 * tests. The certificates come from mkcerts.sh (made once per machine and
 * user, under a lock, since tests run in parallel). */
#ifndef EDDY_TESTS_TLS_TEST_H
#define EDDY_TESTS_TLS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define MS EDDY_NSEC_PER_MSEC

static inline const char *certs_dir(void) {
  static char dir[512];
  char cmd[2048];
  const char *env = getenv("EDDY_TEST_CERTS");
  if (env && env[0]) {
    snprintf(dir, sizeof dir, "%s", env);
    return dir;
  }
  snprintf(dir, sizeof dir, "/tmp/eddy-test-certs-%d", (int)getuid());
  snprintf(cmd, sizeof cmd,
           "flock %s.lock %s/tests/tls/mkcerts.sh %s >/dev/null", dir,
           EDDY_SOURCE_DIR, dir);
  cr_assert(system(cmd) == 0, "mkcerts.sh failed");
  return dir;
}

/* The path of a file in the certificate directory (a few at a time). */
static inline const char *cert(const char *name) {
  static char bufs[8][600];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", certs_dir(), name);
  return b;
}

/* A server context for name.pem/name.key. */
static inline eddy_tls_ctx *server_ctx(const char *name) {
  eddy_tls_ctx *ctx = NULL;
  char pem[64], key[64], err[256];
  snprintf(pem, sizeof pem, "%s.pem", name);
  snprintf(key, sizeof key, "%s.key", name);
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_SERVER, &ctx));
  cr_assert(eddy_tls_ctx_add_cert(ctx, cert(pem), cert(key), err, sizeof err) ==
                0,
            "%s", err);
  return ctx;
}

/* A client context trusting the test CA. */
static inline eddy_tls_ctx *client_ctx(void) {
  eddy_tls_ctx *ctx = NULL;
  char err[256];
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_CLIENT, &ctx));
  cr_assert(eddy_tls_ctx_set_trust(ctx, cert("ca.pem"), err, sizeof err) == 0,
            "%s", err);
  return ctx;
}

static inline void peer_handshake(eddy_stream *s, void *arg) {
  (void)s;
  ((test_peer *)arg)->handshakes++;
}

/* A connected pair of plaintext streams over a socketpair. */
static inline void plain_pair(eddy_loop *loop, test_peer *a, test_peer *b) {
  int fds[2];
  EXPECT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
  test_peer_open(loop, a, fds[0]);
  test_peer_open(loop, b, fds[1]);
}

/* Starts TLS on both: srv with sctx, cli with cctx verifying name. */
static inline void tls_both(test_peer *srv, eddy_tls_ctx *sctx, test_peer *cli,
                            eddy_tls_ctx *cctx, const char *name) {
  EXPECT_OK(eddy_tls_start(srv->s, sctx, NULL, NULL, 0));
  EXPECT_OK(eddy_tls_start(cli->s, cctx, name, NULL, 0));
  eddy_tls_on_handshake(srv->s, peer_handshake);
  eddy_tls_on_handshake(cli->s, peer_handshake);
}

/* The end of most tests: the peers' buffers, the contexts, the loop. */
static inline void finish_pair(eddy_loop *loop, test_peer *a, test_peer *b,
                               eddy_tls_ctx *x, eddy_tls_ctx *y) {
  if (a)
    test_peer_free(a);
  if (b)
    test_peer_free(b);
  eddy_tls_ctx_free(x);
  eddy_tls_ctx_free(y);
  test_finish(loop);
}

/* Runs until both peers have closed (or 10 s). */
static inline void run_closed(eddy_loop *loop, test_peer *a, test_peer *b) {
  int64_t end = eddy_loop_now(loop) + 10 * EDDY_NSEC_PER_SEC;
  while ((!a->closes || !b->closes) && eddy_loop_now(loop) < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
}

#endif
