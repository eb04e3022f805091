/* The Deferred forms of net and tls, against real loop objects: connect to
 * a local listener, to a refused port, over TLS to a local TLS listener
 * (firing after the handshake), a handshake that fails or never ends;
 * resolve; and "the stream has drained". */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include "async_test.h"
#include "net/net.h"
#include "tls/tls_test.h"

TestSuite(forms_net, .init = async_setup, .fini = async_teardown);

/* The accepting side: each stream gets a recording peer. */
typedef struct server {
  test_peer peers[4];
  int accepted;
} server;

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  server *sv = arg;
  (void)l;
  if (sv->accepted >= 4) {
    eddy_stream_abort(s);
    return;
  }
  test_peer *p = &sv->peers[sv->accepted++];
  p->s = s;
  eddy_stream_set_callbacks(s, &test_peer_callbacks, p);
}

static void server_free(server *sv) {
  for (int i = 0; i < 4; i++)
    test_peer_free(&sv->peers[i]);
}

static eddy_listener *listen_on(eddy_loop *loop, const char *text, server *sv) {
  eddy_listener *l = NULL;
  char err[512];
  cr_assert(eddy_listen(loop, text, on_accept, sv, &l, err, sizeof err) == 0,
            "%s", err);
  return l;
}

static eddy_listener *tls_listen(eddy_loop *loop, server *sv) {
  char text[1400];
  snprintf(text, sizeof text,
           "tls:0:interface=127.0.0.1:certKey=%s:privateKey=%s",
           cert("server.pem"), cert("server.key"));
  return listen_on(loop, text, sv);
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- Connect ------------------------------------------------------------------------ */

Test(forms_net, connect_fires_with_a_working_stream) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l = listen_on(loop, "tcp:0:interface=127.0.0.1", &sv);
  eddy_deferred *d = NULL;
  eddy_stream *s;
  result res = {0};
  char text[64];
  snprintf(text, sizeof text, "tcp:127.0.0.1:%d", eddy_listener_port(l));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  watch_result(d, &res);
  EXPECT_EQ(res.fired, 0); /* connecting never completes inside the call */
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, 0);
  s = eddy_deferred_take_value(d);
  cr_assert(s != NULL);
  eddy_deferred_free(d); /* the stream was taken: it stays open */
  EXPECT_OK(eddy_stream_write(s, "hello", 5));
  while (sv.peers[0].n < 5 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  cr_assert(memcmp(sv.peers[0].got, "hello", 5) == 0);
  eddy_stream_close(s);
  eddy_listener_close(l);
  test_finish(loop);
  server_free(&sv);
}

Test(forms_net, freeing_the_deferred_closes_a_stream_it_still_holds) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l = listen_on(loop, "tcp:0:interface=127.0.0.1", &sv);
  eddy_deferred *d = NULL;
  result res = {0};
  char text[64];
  snprintf(text, sizeof text, "tcp:127.0.0.1:%d", eddy_listener_port(l));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  cr_assert(test_run_until(loop, &sv.accepted));
  eddy_deferred_free(d);
  cr_assert(test_run_until(loop, &sv.peers[0].eofs)); /* the peer sees it */
  eddy_listener_close(l);
  test_finish(loop);
  server_free(&sv);
}

/* A port that was just listened on and closed refuses connections. */
static int refused_port(eddy_loop *loop) {
  server sv = {0};
  eddy_listener *l = listen_on(loop, "tcp:0:interface=127.0.0.1", &sv);
  int port = eddy_listener_port(l);
  eddy_listener_close(l);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  return port;
}

Test(forms_net, a_refused_connect_fails_with_the_endpoint_in_the_detail) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  char text[64], prefix[100];
  snprintf(text, sizeof text, "tcp:127.0.0.1:%d", refused_port(loop));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, -ECONNREFUSED);
  snprintf(prefix, sizeof prefix, "connect to %s: ", text);
  cr_assert(starts_with(res.detail, prefix), "detail: %s", res.detail);
  cr_assert(strlen(res.detail) > strlen(prefix), "no lower detail");
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_net, a_malformed_endpoint_fails_the_deferred_at_once) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_connect(loop, "tcp:host=x:port=http", &d));
  EXPECT_EQ(eddy_deferred_called(d), 1);
  watch_result(d, &res);
  EXPECT_EQ(res.code, EDDY_EPARSE);
  cr_assert(starts_with(res.detail, "connect to tcp:host=x:port=http: "),
            "detail: %s", res.detail);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_net, connect_to_a_parsed_endpoint_names_host_and_port) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_deferred *d = NULL;
  result res = {0};
  char err[200], text[64], prefix[100];
  int port = refused_port(loop);
  snprintf(text, sizeof text, "tcp:127.0.0.1:%d", port);
  EXPECT_OK(eddy_endpoint_parse_client(text, &ep, err, sizeof err));
  EXPECT_OK(eddy_deferred_connect_endpoint(loop, &ep, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, -ECONNREFUSED);
  snprintf(prefix, sizeof prefix, "connect to 127.0.0.1:%d: ", port);
  cr_assert(starts_with(res.detail, prefix), "detail: %s", res.detail);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_net, cancelling_a_connect_in_progress_fails_it_and_leaks_nothing) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l = listen_on(loop, "tcp:0:interface=127.0.0.1", &sv);
  eddy_deferred *d = NULL;
  result res = {0};
  char text[64];
  snprintf(text, sizeof text, "tcp:127.0.0.1:%d", eddy_listener_port(l));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_STR(res.detail + strlen(res.detail) - strlen(": cancelled"),
             ": cancelled");
  eddy_deferred_free(d);
  test_run_for(loop, 50); /* the connect's own callback comes and goes */
  eddy_listener_close(l);
  test_finish(loop);
  server_free(&sv);
}

/* ---- TLS ---------------------------------------------------------------------------- */

static void cb_handshake_done(eddy_deferred *d, void *arg) {
  int *done = arg;
  *done = eddy_tls_handshake_done(eddy_deferred_value(d));
}

Test(forms_net, a_tls_connect_fires_after_the_handshake) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l = tls_listen(loop, &sv);
  eddy_deferred *d = NULL;
  eddy_stream *s;
  result res = {0};
  int done = -1;
  char text[1400];
  snprintf(text, sizeof text, "tls:host=localhost:port=%d:trustRoots=%s",
           eddy_listener_port(l), cert("ca.pem"));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_handshake_done, &done));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(done, 1);
  s = eddy_deferred_take_value(d);
  EXPECT_STR(eddy_tls_version(s), "TLSv1.3");
  EXPECT_OK(eddy_stream_write(s, "over tls", 8));
  while (sv.peers[0].n < 8 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  cr_assert(memcmp(sv.peers[0].got, "over tls", 8) == 0);
  eddy_stream_close(s);
  eddy_deferred_free(d);
  eddy_listener_close(l);
  test_finish(loop);
  server_free(&sv);
}

Test(forms_net, a_failed_tls_handshake_fails_with_its_reason) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l = tls_listen(loop, &sv);
  eddy_deferred *d = NULL;
  result res = {0};
  char text[200];
  /* The system's store does not know the test CA. */
  snprintf(text, sizeof text, "tls:host=localhost:port=%d",
           eddy_listener_port(l));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, EDDY_ETLS);
  cr_assert(starts_with(res.detail, "connect to tls:"), "%s", res.detail);
  cr_assert(strstr(res.detail, "certificate") != NULL, "%s", res.detail);
  eddy_deferred_free(d);
  eddy_listener_close(l);
  test_finish(loop);
  server_free(&sv);
}

/* A plain TCP server that never answers: the handshake waits until the
 * Deferred's timeout, which aborts the stream. */
Test(forms_net, a_timeout_during_the_handshake_aborts_the_stream) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l = listen_on(loop, "tcp:0:interface=127.0.0.1", &sv);
  eddy_deferred *d = NULL;
  result res = {0};
  char text[1400];
  snprintf(text, sizeof text, "tls:host=127.0.0.1:port=%d:trustRoots=%s",
           eddy_listener_port(l), cert("ca.pem"));
  EXPECT_OK(eddy_deferred_connect(loop, text, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &sv.accepted)); /* TCP is up */
  EXPECT_OK(eddy_deferred_set_timeout(d, 100 * MS));
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, -ETIMEDOUT);
  cr_assert(strstr(res.detail, ": timed out after 100 ms") != NULL, "%s",
            res.detail);
  cr_assert(test_run_until(loop, &sv.peers[0].closes));
  eddy_deferred_free(d);
  eddy_listener_close(l);
  test_finish(loop);
  server_free(&sv);
}

/* ---- Resolve -------------------------------------------------------------------------- */

Test(forms_net, resolve_localhost_gives_a_loopback_address_with_the_port) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  const eddy_resolved *r;
  EXPECT_OK(eddy_deferred_resolve(loop, "localhost", 8080, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, 0);
  r = eddy_deferred_value(d);
  EXPECT_GE(r->count, 1);
  for (int i = 0; i < r->count; i++) {
    const struct sockaddr_storage *ss = &r->addrs[i];
    if (ss->ss_family == AF_INET) {
      const struct sockaddr_in *in = (const void *)ss;
      EXPECT_EQ(ntohs(in->sin_port), 8080);
      EXPECT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    } else {
      EXPECT_EQ(ss->ss_family, AF_INET6);
      EXPECT_EQ(ntohs(
                    ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port),
                8080);
    }
  }
  eddy_deferred_free(d);
  test_finish(loop);
}

static int no_such_host(const char *host, unsigned port,
                        struct sockaddr_storage *out, socklen_t *lens,
                        int max) {
  (void)host, (void)port, (void)out, (void)lens, (void)max;
  return EDDY_ERESOLVE;
}

Test(forms_net, a_name_that_does_not_resolve_is_named_in_the_error) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  eddy__resolve_hook = no_such_host;
  EXPECT_OK(eddy_deferred_resolve(loop, "nope.test", 80, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  eddy__resolve_hook = NULL;
  EXPECT_EQ(res.code, EDDY_ERESOLVE);
  EXPECT_STR(res.detail, "resolve nope.test: cannot resolve host name");
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_net, a_cancelled_resolve_fails_at_once_and_drops_the_answer) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_resolve(loop, "localhost", 80, &d));
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_STR(res.detail, "resolve localhost: cancelled");
  eddy_deferred_free(d);
  test_finish(loop); /* runs the pool's done callback: nothing left */
}

/* ---- Drained --------------------------------------------------------------------------- */

/* Writes until the stream is over its high watermark. */
static void fill(eddy_stream *s) {
  static char chunk[65536];
  EXPECT_OK(eddy_stream_set_watermarks(s, 1024, 4096));
  while (!eddy_stream_over_high(s))
    EXPECT_OK(eddy_stream_write(s, chunk, sizeof chunk));
}

Test(forms_net, drained_fires_at_once_when_not_over_the_high_watermark) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int other = test_peer_socketpair(loop, &p);
  eddy_deferred *d = NULL;
  EXPECT_OK(eddy_deferred_drained(p.s, &d));
  EXPECT_EQ(eddy_deferred_called(d), 1);
  EXPECT_EQ(eddy_deferred_error(d), 0);
  eddy_deferred_free(d);
  eddy_stream_close(p.s);
  close(other);
  test_finish(loop);
  test_peer_free(&p);
}

Test(forms_net, drained_fires_when_the_reader_catches_up) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int other = test_peer_socketpair(loop, &p);
  eddy_deferred *d = NULL;
  result res = {0};
  char buf[65536];
  int64_t end = test_clock_ms() + 10000;
  fill(p.s);
  EXPECT_OK(eddy_deferred_drained(p.s, &d));
  watch_result(d, &res);
  EXPECT_EQ(res.fired, 0);
  while (!res.fired && test_clock_ms() < end) {
    test_read_ready(other, buf, sizeof buf, 10);
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  }
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, 0);
  EXPECT_LE(eddy_stream_buffered(p.s), 1024);
  EXPECT_EQ(p.drains, 1); /* the program's drain callback still ran */
  eddy_deferred_free(d);
  eddy_stream_abort(p.s);
  close(other);
  test_finish(loop);
  test_peer_free(&p);
}

Test(forms_net, drained_fails_with_the_close_status_if_the_stream_ends) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int other = test_peer_socketpair(loop, &p);
  eddy_deferred *d = NULL, *d2 = NULL;
  result res = {0}, res2 = {0};
  fill(p.s);
  EXPECT_OK(eddy_deferred_drained(p.s, &d));
  EXPECT_OK(eddy_deferred_drained(p.s, &d2)); /* several may wait */
  watch_result(d, &res);
  watch_result(d2, &res2);
  eddy_stream_abort(p.s);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, -ECONNABORTED);
  EXPECT_EQ(res2.code, -ECONNABORTED);
  EXPECT_STR(res.detail, p.detail);
  eddy_deferred_free(d);
  eddy_deferred_free(d2);
  close(other);
  test_finish(loop);
  test_peer_free(&p);
}

Test(forms_net, drained_on_a_closing_stream_fails_eclosed) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int other = test_peer_socketpair(loop, &p);
  eddy_deferred *d = NULL;
  eddy_stream_close(p.s);
  EXPECT_OK(eddy_deferred_drained(p.s, &d));
  EXPECT_EQ(eddy_deferred_error(d), EDDY_ECLOSED);
  EXPECT_STR(eddy_deferred_detail(d), "stream closed");
  eddy_deferred_set_value(d, NULL, NULL);
  eddy_deferred_free(d);
  close(other);
  test_finish(loop);
  test_peer_free(&p);
}

Test(forms_net, a_cancelled_drain_wait_forgets_the_stream) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int other = test_peer_socketpair(loop, &p);
  eddy_deferred *d = NULL, *kept = NULL;
  result res = {0}, kept_res = {0};
  fill(p.s);
  EXPECT_OK(eddy_deferred_drained(p.s, &kept));
  EXPECT_OK(eddy_deferred_drained(p.s, &d));
  watch_result(d, &res);
  watch_result(kept, &kept_res);
  eddy_deferred_free(d);  /* cancels: its watcher leaves the stream */
  eddy_stream_abort(p.s); /* ASan: the freed watcher is not called */
  cr_assert(test_run_until(loop, &kept_res.fired));
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_EQ(kept_res.code, -ECONNABORTED);
  eddy_deferred_free(kept);
  close(other);
  test_finish(loop);
  test_peer_free(&p);
}

Test(forms_net, a_missing_unix_path_is_named_in_the_error) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_deferred *d = NULL;
  result res = {0};
  char err[200];
  EXPECT_OK(eddy_endpoint_parse_client("unix:/nonexistent/eddy-async.sock", &ep,
                                       err, sizeof err));
  EXPECT_OK(eddy_deferred_connect_endpoint(loop, &ep, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, -ENOENT);
  cr_assert(starts_with(res.detail,
                        "connect to unix:/nonexistent/eddy-async.sock: "),
            "%s", res.detail);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_net, a_host_name_too_long_to_keep_fails_at_once) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  char host[400];
  memset(host, 'a', sizeof host - 1);
  host[sizeof host - 1] = '\0';
  EXPECT_OK(eddy_deferred_resolve(loop, host, 80, &d));
  EXPECT_EQ(eddy_deferred_error(d), -ENAMETOOLONG);
  eddy_deferred_set_value(d, NULL, NULL);
  eddy_deferred_free(d);
  test_finish(loop);
}
