/* TLS under injected faults: short writes and reads, EAGAIN after
 * readiness, and allocation failures during the handshake and mid-stream.
 * Whatever happens, every byte that arrives is right, each side closes
 * exactly once, and nothing leaks. */
#include "tls_test.h"

static char *pattern(size_t n) {
  char *b = malloc(n);
  for (size_t i = 0; i < n; i++)
    b[i] = (char)('A' + (i * 13 + i / 1000) % 26);
  return b;
}

/* The client sends size bytes and shuts down; the server echoes and
 * shuts down on eof. Returns the bytes the client got back (all of them
 * unless something failed); statuses are left in the peers. */
static size_t exchange(eddy_loop *loop, test_peer *srv, test_peer *cli,
                       size_t size, const char *faults) {
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  char *data = pattern(size);
  size_t sent = 0;
  srv->echo = 1;
  srv->shutdown_on_eof = 1;
  plain_pair(loop, srv, cli);
  tls_both(srv, sctx, cli, cctx, "localhost");
  eddy_tls_ctx_free(sctx);
  eddy_tls_ctx_free(cctx);
  /* Armed once everything is set up: the faults hit the handshake and the
   * data, not the test's own preparations. */
  EXPECT_OK(eddy__fault_parse(faults));
  int64_t end = eddy_loop_now(loop) + 30 * EDDY_NSEC_PER_SEC;
  while ((!cli->closes || !srv->closes) && eddy_loop_now(loop) < end) {
    while (cli->s && sent < size && !eddy_stream_over_high(cli->s)) {
      size_t k = size - sent < 50000 ? size - sent : 50000;
      if (eddy_stream_write(cli->s, data + sent, k) != 0)
        break;
      sent += k;
      if (sent == size)
        (void)eddy_stream_shutdown(cli->s);
    }
    if (cli->s && cli->eofs)
      eddy_stream_close(cli->s);
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  eddy__fault_reset();
  EXPECT_EQ(cli->closes, 1);
  EXPECT_EQ(srv->closes, 1);
  EXPECT_LE(cli->n, size);
  if (cli->n > 0)
    cr_assert(memcmp(cli->got, data, cli->n) == 0, "corrupted bytes");
  free(data);
  return cli->n;
}

static void clean_run(const char *faults) {
  eddy_loop *loop = test_loop();
  test_peer srv = {0}, cli = {0};
  size_t n = exchange(loop, &srv, &cli, 2 << 20, faults);
  EXPECT_EQ(n, 2 << 20);
  EXPECT_EQ(cli.status, 0);
  EXPECT_EQ(srv.status, 0);
  test_peer_free(&srv);
  test_peer_free(&cli);
  test_finish(loop);
}

Test(faults, short_writes) {
  clean_run("sendmsg:short:p=0.5,seed=11");
}

Test(faults, short_reads) {
  /* OpenSSL sees records arrive a few bytes at a time. */
  clean_run("recv:short:p=0.7,seed=12");
}

Test(faults, eagain_after_readiness) {
  clean_run("recv:EAGAIN:p=0.3,sendmsg:EAGAIN:p=0.3,seed=13");
}

Test(faults, everything_at_once) {
  clean_run("recv:short:p=0.3,recv:EAGAIN:p=0.2,sendmsg:short:p=0.3,seed=14");
}

/* The nth allocation fails, for every n the exchange makes: the outcome is
 * the whole echo or a clean failure, never a crash, a hang or a leak. */
static void allocation_sweep(const char *kind, int max) {
  int failed_runs = 0;
  for (int n = 1; n <= max; n++) {
    eddy_loop *loop = test_loop();
    test_peer srv = {0}, cli = {0};
    char spec[64];
    snprintf(spec, sizeof spec, "%s:ENOMEM:nth=%d", kind, n);
    size_t got = exchange(loop, &srv, &cli, 200000, spec);
    if (got != 200000 || cli.status != 0 || srv.status != 0) {
      failed_runs++;
      cr_assert(cli.status != 0 || srv.status != 0,
                "n=%d: bytes went missing with no error (%zu)", n, got);
    }
    test_peer_free(&srv);
    test_peer_free(&cli);
    test_finish(loop);
  }
  EXPECT_GT(failed_runs, 0); /* the sweep reached allocations that matter */
}

Test(faults, malloc_sweep, .timeout = 120) {
  allocation_sweep("malloc", 40);
}

Test(faults, calloc_sweep, .timeout = 120) {
  allocation_sweep("calloc", 12);
}

/* Out of memory in eddy_tls_start itself: an error, and the stream goes on
 * as it was, in plaintext. */
Test(faults, start_out_of_memory_leaves_the_stream_alone) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server");
  test_peer a = {.echo = 1}, b = {0};
  plain_pair(loop, &a, &b);
  for (int n = 1; n <= 3; n++) {
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, (uint64_t)n, ENOMEM);
    int rc = eddy_tls_start(a.s, sctx, NULL, "x", 1);
    eddy__fault_reset();
    if (rc == 0) {
      cr_assert(n > 1);
      break;
    }
    EXPECT_EQ(rc, -ENOMEM);
    EXPECT_EQ(eddy_stream_is_tls(a.s), 0);
    EXPECT_OK(eddy_stream_write(b.s, "plain", 5));
    while (b.n < 5 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
      ;
    EXPECT_EQ(b.n, 5);
    b.n = 0;
  }
  eddy_stream_abort(a.s);
  eddy_stream_abort(b.s);
  run_closed(loop, &a, &b);
  test_peer_free(&a);
  test_peer_free(&b);
  eddy_tls_ctx_free(sctx);
  test_finish(loop);
}

/* The transport's write fails mid-stream (the test_peer is gone): the stream
 * ends with that error, once. */
Test(faults, transport_write_error_mid_stream) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  test_run_until(loop, &cli.handshakes);
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EPIPE);
  (void)eddy_stream_write(cli.s, "doomed", 6);
  eddy__fault_reset();
  test_run_until(loop, &cli.closes);
  EXPECT_EQ(cli.closes, 1);
  EXPECT_EQ(cli.status, -EPIPE);
  if (srv.s)
    eddy_stream_abort(srv.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, NULL, NULL, sctx, cctx);
}

/* The reader pauses in the middle of a transport chunk, and the unread
 * ciphertext cannot be kept: the stream ends with -ENOMEM and says why. */
static void data_then_pause(eddy_stream *s, const char *d, size_t len,
                            void *arg) {
  test_peer_data(s, d, len, arg);
  eddy_stream_pause(s);
}
Test(faults, no_memory_to_keep_unread_input) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  static const eddy_stream_callbacks pausing = {data_then_pause, test_peer_eof,
                                                NULL, test_peer_close};
  static char big[40000];
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  test_run_until(loop, &cli.handshakes);
  eddy_stream_set_callbacks(srv.s, &pausing, &srv);
  EXPECT_OK(eddy_stream_write(cli.s, big, sizeof big));
  EXPECT_OK(eddy__fault_parse("malloc:ENOMEM:p=1"));
  test_run_until(loop, &srv.closes);
  eddy__fault_reset();
  EXPECT_EQ(srv.status, -ENOMEM);
  EXPECT_STR(srv.detail, "out of memory while buffering TLS input");
  eddy_stream_abort(cli.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}
