/* STARTTLS: a line protocol upgrades its stream in place. The bytes that
 * follow the command in the same read belong to TLS and must reach it;
 * plaintext written before the switch goes out as plaintext, and nothing
 * written after it ever crosses the wire unencrypted. */
#include "tls_test.h"

typedef struct line_peer {
  test_peer p;
  int server, upgraded, reply_go;
  eddy_tls_ctx *ctx;
  char plain[4096];
  size_t nplain;
} line_peer;

static void line_data(eddy_stream *s, const char *d, size_t len, void *arg) {
  line_peer *lp = arg;
  const char *nl;
  if (lp->upgraded) {
    test_peer_data(s, d, len, &lp->p);
    return;
  }
  cr_assert(lp->nplain + len <= sizeof lp->plain);
  memcpy(lp->plain + lp->nplain, d, len);
  lp->nplain += len;
  nl = memchr(lp->plain, '\n', lp->nplain);
  if (nl == NULL)
    return;
  size_t line = (size_t)(nl - lp->plain) + 1;
  const char *rest = nl + 1;
  size_t nrest = lp->nplain - line;
  if (lp->server) {
    cr_assert(line == 9 && memcmp(lp->plain, "STARTTLS\n", 9) == 0);
    if (lp->reply_go)
      EXPECT_OK(eddy_stream_write(s, "GO\n", 3));
    EXPECT_OK(eddy_tls_start(s, lp->ctx, NULL, rest, nrest));
  } else {
    cr_assert(line == 3 && memcmp(lp->plain, "GO\n", 3) == 0);
    EXPECT_OK(eddy_tls_start(s, lp->ctx, "localhost", rest, nrest));
    EXPECT_OK(eddy_stream_write(s, "SECRET-FROM-CLIENT", 18));
  }
  lp->upgraded = 1;
  eddy_tls_on_handshake(s, peer_handshake);
}

static void line_eof(eddy_stream *s, void *arg) {
  test_peer_eof(s, &((line_peer *)arg)->p);
}

static void line_close(eddy_stream *s, int status, const char *detail,
                       void *arg) {
  test_peer_close(s, status, detail, &((line_peer *)arg)->p);
}

static const eddy_stream_callbacks line_cb = {line_data, line_eof, NULL,
                                              line_close};

/* The client pipelines: the command and its ClientHello leave together,
 * so the server reads both in one chunk and must pass the hello on. */
Test(starttls, pipelined_hello_after_the_command) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  line_peer srv = {.server = 1, .ctx = sctx};
  test_peer cli = {0};
  int fds[2];
  srv.p.echo = 1;
  EXPECT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds));
  EXPECT_OK(eddy_stream_open(loop, fds[0], &line_cb, &srv, &srv.p.s));
  test_peer_open(loop, &cli, fds[1]);
  EXPECT_OK(eddy_stream_write(cli.s, "STARTTLS\n", 9));
  EXPECT_OK(eddy_tls_start(cli.s, cctx, "localhost", NULL, 0));
  EXPECT_OK(eddy_stream_write(cli.s, "after the switch", 16));
  while (cli.n < 16 && !cli.closes && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  cr_assert(srv.nplain > 9, "the hello came in a later read (%zu bytes)",
            srv.nplain);
  EXPECT_EQ(cli.n, 16);
  cr_assert(memcmp(cli.got, "after the switch", 16) == 0);
  EXPECT_EQ(srv.p.n, 16);
  eddy_stream_close(cli.s);
  run_closed(loop, &srv.p, &cli);
  EXPECT_EQ(cli.status, 0);
  EXPECT_EQ(srv.p.status, 0);
  finish_pair(loop, &srv.p, &cli, sctx, cctx);
}

/* A tap between the two records every byte on the wire. */
typedef struct tap {
  eddy_stream *a, *b;
  char wire[1 << 16];
  size_t n;
  int closes;
} tap;

static void tap_a(eddy_stream *s, const char *d, size_t len, void *arg) {
  tap *t = arg;
  (void)s;
  if (t->n + len <= sizeof t->wire) {
    memcpy(t->wire + t->n, d, len);
    t->n += len;
  }
  EXPECT_OK(eddy_stream_write(t->b, d, len));
}

static void tap_b(eddy_stream *s, const char *d, size_t len, void *arg) {
  tap *t = arg;
  (void)s;
  if (t->n + len <= sizeof t->wire) {
    memcpy(t->wire + t->n, d, len);
    t->n += len;
  }
  EXPECT_OK(eddy_stream_write(t->a, d, len));
}

static void tap_close(eddy_stream *s, int status, const char *detail,
                      void *arg) {
  tap *t = arg;
  (void)status;
  (void)detail;
  t->closes++;
  if (s == t->a)
    t->a = NULL;
  else
    t->b = NULL;
  if (t->a)
    eddy_stream_close(t->a);
  if (t->b)
    eddy_stream_close(t->b);
}

static int contains(const char *hay, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(hay + i, needle, k) == 0)
      return 1;
  return 0;
}

/* The server answers GO in plaintext, then both switch; the secrets each
 * side writes right after the switch never appear in clear on the wire,
 * and GO, written before, arrives in clear ahead of the handshake. */
Test(starttls, nothing_leaks_across_the_switch) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  line_peer srv = {.server = 1, .reply_go = 1, .ctx = sctx};
  line_peer cli = {.ctx = cctx};
  static tap t;
  static const eddy_stream_callbacks cb_a = {tap_a, NULL, NULL, tap_close};
  static const eddy_stream_callbacks cb_b = {tap_b, NULL, NULL, tap_close};
  int x[2], y[2];
  memset(&t, 0, sizeof t);
  EXPECT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, x));
  EXPECT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, y));
  EXPECT_OK(eddy_stream_open(loop, x[0], &line_cb, &cli, &cli.p.s));
  EXPECT_OK(eddy_stream_open(loop, x[1], &cb_a, &t, &t.a));
  EXPECT_OK(eddy_stream_open(loop, y[0], &cb_b, &t, &t.b));
  EXPECT_OK(eddy_stream_open(loop, y[1], &line_cb, &srv, &srv.p.s));
  EXPECT_OK(eddy_stream_write(cli.p.s, "STARTTLS\n", 9));
  while (!(srv.p.n >= 18) && !srv.p.closes &&
         eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_OK(eddy_stream_write(srv.p.s, "SECRET-FROM-SERVER", 18));
  while (!(cli.p.n >= 18) && !cli.p.closes &&
         eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_EQ(srv.p.n, 18);
  cr_assert(memcmp(srv.p.got, "SECRET-FROM-CLIENT", 18) == 0);
  EXPECT_EQ(cli.p.n, 18);
  cr_assert(memcmp(cli.p.got, "SECRET-FROM-SERVER", 18) == 0);
  cr_assert(contains(t.wire, t.n, "STARTTLS\n"));
  cr_assert(contains(t.wire, t.n, "GO\n"));
  EXPECT_EQ(contains(t.wire, t.n, "SECRET"), 0); /* no plaintext leaked */
  EXPECT_EQ(srv.p.handshakes, 1);
  EXPECT_EQ(cli.p.handshakes, 1);
  eddy_stream_close(cli.p.s);
  run_closed(loop, &srv.p, &cli.p);
  EXPECT_EQ(srv.p.status, 0);
  finish_pair(loop, &srv.p, &cli.p, sctx, cctx);
}

/* Plaintext queued (not yet sent) when the switch happens still goes out
 * first, in clear, and the TLS bytes follow it. */
Test(starttls, queued_plaintext_goes_first) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, raw = {0};
  char big[300000];
  plain_pair(loop, &srv, &raw);
  memset(big, 'p', sizeof big);
  EXPECT_OK(eddy_stream_write(srv.s, big, sizeof big)); /* fills the socket */
  cr_assert(eddy_stream_buffered(srv.s) > 0);
  size_t queued = eddy_stream_buffered(srv.s);
  EXPECT_OK(eddy_tls_start(srv.s, sctx, NULL, NULL, 0));
  EXPECT_EQ(eddy_stream_buffered(srv.s), queued); /* now in the transport */
  while (raw.n < sizeof big && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_EQ(raw.n, sizeof big);
  EXPECT_EQ(memcmp(raw.got, big, sizeof big), 0);
  /* Now the TLS client takes over the raw side and the handshake works. */
  raw.n = 0;
  EXPECT_OK(eddy_tls_start(raw.s, cctx, "localhost", NULL, 0));
  eddy_tls_on_handshake(raw.s, peer_handshake);
  test_run_until(loop, &raw.handshakes);
  EXPECT_EQ(raw.handshakes, 1);
  eddy_stream_close(raw.s);
  run_closed(loop, &srv, &raw);
  finish_pair(loop, &srv, &raw, sctx, cctx);
}

/* Switching while over the high watermark: the drain the program waits
 * for still comes, once the transport has sent the queued plaintext, and
 * buffered() counts those bytes meanwhile. */
Test(starttls, switch_while_over_high_still_drains) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server");
  test_peer srv = {0}, cli = {0};
  size_t total = 2 << 20;
  char *big = calloc(1, total);
  plain_pair(loop, &srv, &cli);
  eddy_stream_pause(cli.s);
  EXPECT_OK(eddy_stream_write(srv.s, big, total));
  cr_assert(eddy_stream_over_high(srv.s));
  size_t before = eddy_stream_buffered(srv.s);
  EXPECT_OK(eddy_tls_start(srv.s, sctx, NULL, NULL, 0));
  EXPECT_EQ(eddy_stream_buffered(srv.s), before);
  eddy_stream_resume(cli.s);
  int64_t end = eddy_loop_now(loop) + 10 * EDDY_NSEC_PER_SEC;
  while ((cli.n < total || srv.drains == 0) && eddy_loop_now(loop) < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  EXPECT_EQ(cli.n, total);
  EXPECT_EQ(srv.drains, 1);
  eddy_stream_abort(srv.s);
  eddy_stream_abort(cli.s);
  run_closed(loop, &srv, &cli);
  free(big);
  finish_pair(loop, &srv, &cli, sctx, NULL);
}
