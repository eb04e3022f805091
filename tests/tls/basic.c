/* TLS between two eddy streams: handshake, data both ways, close_notify,
 * truncation, half-close, abort, flow control, writes before the
 * handshake, pipes, and what a TLS stream reports. */
#include <fcntl.h>
#include <signal.h>

#include "tls_test.h"

static const char *pattern_of(size_t n) {
  char *b = malloc(n);
  for (size_t i = 0; i < n; i++)
    b[i] = (char)('a' + (i * 7 + i / 4096) % 26);
  return b;
}

Test(tls, handshake_and_echo) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {.echo = 1, .close_on_eof = 1}, cli = {0};
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  eddy_tls_ctx_free(sctx); /* the streams keep their references */
  eddy_tls_ctx_free(cctx);
  EXPECT_EQ(eddy_stream_is_tls(cli.s), 1);
  EXPECT_EQ(eddy_tls_handshake_done(cli.s), 0);
  EXPECT_OK(eddy_stream_write(cli.s, "hello", 5)); /* queued until done */
  while (cli.n < 5 && test_run_until(loop, &cli.handshakes))
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(srv.handshakes, 1);
  EXPECT_EQ(cli.handshakes, 1);
  EXPECT_STR(eddy_tls_version(cli.s), "TLSv1.3");
  EXPECT_STR(eddy_tls_version(srv.s), "TLSv1.3");
  cr_assert(eddy_tls_cipher(cli.s) != NULL);
  EXPECT_STR(eddy_tls_server_name(srv.s), "localhost");
  cr_assert(eddy_tls_alpn(cli.s) == NULL);
  cr_assert(eddy_stream_fd(cli.s) >= 0);
  EXPECT_EQ(cli.n, 5);
  cr_assert(memcmp(cli.got, "hello", 5) == 0);
  /* A clean close: close_notify, then the server's eof, then its close. */
  eddy_stream_close(cli.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(srv.eofs, 1);
  EXPECT_EQ(srv.status, 0);
  EXPECT_EQ(cli.status, 0);
  test_peer_free(&srv);
  test_peer_free(&cli);
  test_finish(loop);
}

/* A lot of data in both directions through small watermarks: everything
 * arrives, in order, and the writer sees drain callbacks. */
Test(tls, bulk_both_ways_with_flow_control) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {.echo = 1, .shutdown_on_eof = 1}, cli = {0};
  size_t total = 8 << 20, sent = 0;
  const char *data = pattern_of(total);
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  EXPECT_OK(eddy_stream_set_watermarks(cli.s, 4096, 32768));
  int64_t end = eddy_loop_now(loop) + 20 * EDDY_NSEC_PER_SEC;
  while (cli.eofs == 0 && eddy_loop_now(loop) < end) {
    cr_assert(cli.s != NULL, "client closed: %d %s; server %d %s", cli.status,
              cli.detail, srv.status, srv.detail);
    while (sent < total && !eddy_stream_over_high(cli.s)) {
      size_t k = total - sent < 100000 ? total - sent : 100000;
      EXPECT_OK(eddy_stream_write(cli.s, data + sent, k));
      sent += k;
      if (sent == total)
        EXPECT_OK(eddy_stream_shutdown(cli.s));
    }
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  EXPECT_EQ(srv.n, total);
  EXPECT_EQ(cli.n, total);
  cr_assert(memcmp(cli.got, data, total) == 0);
  EXPECT_GT(cli.drains, 0);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(srv.status, 0);
  EXPECT_EQ(cli.status, 0);
  free((void *)data);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* The transport ends without close_notify: EDDY_ETRUNCATED, not a clean
 * end, after every byte that did arrive. */
Test(tls, truncation_is_its_own_status) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  EXPECT_OK(eddy_stream_write(cli.s, "partial", 7));
  while (srv.n < 7 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  /* Behind TLS's back: a FIN with no close_notify before it. */
  EXPECT_OK(shutdown(eddy_stream_fd(cli.s), SHUT_WR));
  test_run_until(loop, &srv.closes);
  EXPECT_EQ(srv.n, 7);
  EXPECT_EQ(srv.eofs, 0);
  EXPECT_EQ(srv.status, EDDY_ETRUNCATED);
  cr_assert(strstr(srv.detail, "close_notify") != NULL, "%s", srv.detail);
  eddy_stream_abort(cli.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* Half-close: the client shuts down its direction; the server still
 * answers, then ends; the client reads the answer and a clean eof. */
Test(tls, half_close_both_ways) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  EXPECT_OK(eddy_stream_write(cli.s, "question", 8));
  EXPECT_OK(eddy_stream_shutdown(cli.s));
  EXPECT_EQ(eddy_stream_write(cli.s, "more", 4), EDDY_ECLOSED);
  test_run_until(loop, &srv.eofs);
  EXPECT_EQ(srv.n, 8);
  EXPECT_OK(eddy_stream_write(srv.s, "answer", 6));
  eddy_stream_close(srv.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.n, 6);
  cr_assert(memcmp(cli.got, "answer", 6) == 0);
  EXPECT_EQ(cli.eofs, 1);
  EXPECT_EQ(cli.status, 0);
  EXPECT_EQ(srv.status, 0);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

Test(tls, abort_resets_the_transport) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  eddy_stream_abort(cli.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.status, -ECONNABORTED);
  /* Over a Unix socket the reset shows when the aborting side had unread
   * bytes; otherwise the server sees the end without close_notify. */
  cr_assert(srv.status == -ECONNRESET || srv.status == EDDY_ETRUNCATED, "%d %s",
            srv.status, srv.detail);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* Pausing stops delivery even of bytes already decrypted; resuming
 * delivers them from the loop, not from inside eddy_stream_resume. */
static void data_pause(eddy_stream *s, const char *d, size_t len, void *arg) {
  test_peer_data(s, d, len, arg);
  eddy_stream_pause(s);
}
Test(tls, pause_holds_decrypted_bytes) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  static const eddy_stream_callbacks pausing = {data_pause, test_peer_eof, NULL,
                                                test_peer_close};
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  eddy_stream_set_callbacks(srv.s, &pausing, &srv);
  /* Three records in one write: the first call pauses. */
  char big[40000];
  memset(big, 'x', sizeof big);
  EXPECT_OK(eddy_stream_write(cli.s, big, sizeof big));
  while (srv.n == 0 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  size_t first = srv.n;
  EXPECT_LT(first, sizeof big);
  for (int i = 0; i < 5; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(srv.n, first);
  eddy_stream_resume(srv.s);
  EXPECT_EQ(srv.n, first); /* nothing from inside the call */
  /* Everything is here already: each turn delivers one more record. */
  for (int i = 0; i < 100 && srv.n < sizeof big; i++) {
    eddy_stream_resume(srv.s);
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  }
  EXPECT_EQ(srv.n, sizeof big);
  eddy_stream_close(cli.s);
  eddy_stream_resume(srv.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* TLS over two pipes, as over a subprocess's stdin and stdout. */
Test(tls, over_pipes) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {.echo = 1, .close_on_eof = 1}, cli = {0};
  int a[2], b[2];
  signal(SIGPIPE, SIG_IGN); /* pipes have no MSG_NOSIGNAL */
  EXPECT_OK(pipe(a));
  EXPECT_OK(pipe(b));
  EXPECT_OK(eddy_stream_open_pair(loop, a[0], b[1], &test_peer_callbacks, &srv,
                                  &srv.s));
  EXPECT_OK(eddy_stream_open_pair(loop, b[0], a[1], &test_peer_callbacks, &cli,
                                  &cli.s));
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  EXPECT_OK(eddy_stream_write(cli.s, "through pipes", 13));
  while (cli.n < 13 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  cr_assert(memcmp(cli.got, "through pipes", 13) == 0);
  EXPECT_STR(eddy_stream_peer_name(cli.s, (char[32]){0}, 32) == 0 ? "ok" : "x",
             "ok");
  eddy_stream_close(cli.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(srv.status, 0);
  EXPECT_EQ(cli.status, 0);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* sendfile() on a TLS stream reads the file and encrypts it, in order
 * with the writes around it. */
Test(tls, sendfile_is_encrypted_in_order) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {.close_on_eof = 1};
  char path[] = "/tmp/eddy-tls-sendfile-XXXXXX";
  int fd = mkstemp(path);
  size_t size = 300000;
  const char *data = pattern_of(size);
  EXPECT_EQ(write(fd, data, size), (ssize_t)size);
  unlink(path);
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  EXPECT_OK(eddy_stream_write(srv.s, "<", 1));
  EXPECT_OK(eddy_stream_sendfile(srv.s, fd, 0, size));
  EXPECT_OK(eddy_stream_write(srv.s, ">", 1));
  eddy_stream_close(srv.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.n, size + 2);
  EXPECT_EQ(cli.got[0], '<');
  cr_assert(memcmp(cli.got + 1, data, size) == 0);
  EXPECT_EQ(cli.got[size + 1], '>');
  EXPECT_EQ(cli.status, 0);
  close(fd);
  free((void *)data);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

Test(tls, bad_arguments) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer a = {0}, b = {0};
  plain_pair(loop, &a, &b);
  EXPECT_EQ(eddy_tls_start(a.s, cctx, NULL, NULL, 0), -EINVAL); /* no name */
  EXPECT_EQ(eddy_tls_start(a.s, cctx, "", NULL, 0), -EINVAL);
  EXPECT_EQ(eddy_tls_start(a.s, sctx, NULL, NULL, 5), -EINVAL);
  EXPECT_EQ(eddy_stream_is_tls(a.s), 0);
  cr_assert(eddy_tls_version(a.s) == NULL);
  EXPECT_EQ(eddy_tls_peer_subject(a.s, (char[8]){0}, 8), -EINVAL);
  EXPECT_OK(eddy_tls_start(a.s, sctx, NULL, NULL, 0));
  EXPECT_EQ(eddy_tls_start(a.s, sctx, NULL, NULL, 0), -EALREADY);
  EXPECT_OK(eddy_stream_shutdown(b.s));
  EXPECT_EQ(eddy_tls_start(b.s, cctx, "localhost", NULL, 0), EDDY_ECLOSED);
  EXPECT_EQ(eddy_tls_ctx_set_alpn(sctx, ""), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_alpn(sctx, "h2,"), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_alpn(sctx, ",h2"), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_versions(sctx, 0x0301, 0), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_versions(sctx, EDDY_TLS_1_3, EDDY_TLS_1_2),
            -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_handshake_timeout(sctx, 0), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_verify(cctx, EDDY_TLS_VERIFY_OPTIONAL), -EINVAL);
  eddy_stream_abort(a.s);
  eddy_stream_abort(b.s);
  run_closed(loop, &a, &b);
  finish_pair(loop, NULL, NULL, sctx, cctx);
}

/* A test_peer that sends half a record and stops reading, while we have more
 * to send than the transport takes: the loop must sleep, not retry the
 * half record on every turn. */
static void stop_loop(eddy_timer *t, void *arg) {
  (void)arg;
  eddy_loop_stop(eddy_timer_loop(t));
  *(int *)arg = 1;
}
Test(tls, half_a_record_does_not_spin) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  eddy_timer *t;
  int done = 0, turns = 0;
  static char big[1 << 20];
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  test_run_until(loop, &cli.handshakes);
  eddy_stream_pause(cli.s);
  EXPECT_EQ(write(eddy_stream_fd(cli.s),
                  "\x17\x03\x03\x00\x40"
                  "abcde",
                  10),
            10);
  EXPECT_OK(eddy_stream_write(srv.s, big, sizeof big));
  cr_assert(eddy_stream_buffered(srv.s) > 0);
  EXPECT_OK(eddy_timer_new(loop, stop_loop, &done, &t));
  EXPECT_OK(eddy_timer_start(t, 300 * MS, 0));
  while (!done && turns < 10000) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    turns++;
  }
  EXPECT_LT(turns, 20);
  EXPECT_EQ(srv.closes, 0);
  eddy_timer_close(t);
  eddy_stream_abort(cli.s);
  eddy_stream_abort(srv.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* One write far larger than a batch, and nothing else happening: the rest
 * of it goes out on later turns without any event from the peer. */
Test(tls, one_big_write_goes_out_whole) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  size_t size = 3 << 20;
  const char *data = pattern_of(size);
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  test_run_until(loop, &cli.handshakes);
  EXPECT_OK(eddy_stream_write(srv.s, data, size));
  int64_t end = eddy_loop_now(loop) + 10 * EDDY_NSEC_PER_SEC;
  while (cli.n < size && eddy_loop_now(loop) < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    eddy_loop_update_time(loop);
  }
  EXPECT_EQ(cli.n, size);
  cr_assert(memcmp(cli.got, data, size) == 0);
  free((void *)data);
  eddy_stream_close(srv.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.status, 0);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* The transport broke (the test_peer is gone): the next write reports it, as
 * on a plaintext stream, instead of encrypting into nothing forever. */
Test(tls, writes_after_the_transport_broke_fail) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  static char chunk[16384];
  int i, rc = 0;
  signal(SIGPIPE, SIG_IGN);
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  test_run_until(loop, &cli.handshakes);
  eddy_stream_pause(srv.s); /* it will not read the end */
  eddy_stream_abort(cli.s);
  test_run_until(loop, &cli.closes);
  for (i = 0; i < 2000 && srv.s && !eddy_stream_over_high(srv.s); i++)
    if ((rc = eddy_stream_write(srv.s, chunk, sizeof chunk)) != 0)
      break;
  EXPECT_LT(i, 2000);
  cr_assert(rc == -EPIPE || rc == -ECONNRESET, "write gave %d", rc);
  test_run_until(loop, &srv.closes);
  EXPECT_EQ(srv.status, rc);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

/* Closing with ciphertext still in the transport: buffered() counts it,
 * the close callback comes once it is handed over, and the test_peer still gets
 * every byte and a clean end when it reads again. */
Test(tls, close_with_bytes_in_the_transport) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  static char big[1 << 20];
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  test_run_until(loop, &srv.handshakes);
  test_run_until(loop, &cli.handshakes);
  eddy_stream_pause(srv.s);
  for (int i = 0; i < 5; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy_stream_write(cli.s, big, sizeof big));
  for (int i = 0; i < 20; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(eddy_stream_buffered(cli.s) > 0);
  eddy_stream_close(cli.s);
  eddy_stream_resume(srv.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.status, 0);
  EXPECT_EQ(srv.n, sizeof big);
  EXPECT_EQ(srv.eofs, 1);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}
