/* tls: endpoints: parsing, a listener whose connections start TLS, a
 * client that verifies, and a thousand handshakes at once. */
#include <stdarg.h>
#include <sys/resource.h>

#include "tls_test.h"

static void ep_string(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ep_string(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

Test(endpoint, parses_server_strings) {
  eddy_endpoint ep;
  char err[256];
  EXPECT_OK(eddy_endpoint_parse_server(
      "tls:8443:certKey=/a.pem:privateKey=/a.key:interface=127.0.0.1", &ep, err,
      sizeof err));
  EXPECT_EQ(ep.tls, 1);
  EXPECT_EQ(ep.kind, EDDY_ENDPOINT_TCP);
  EXPECT_EQ(ep.port, 8443);
  EXPECT_STR(ep.cert_key, "/a.pem");
  EXPECT_STR(ep.private_key, "/a.key");
  EXPECT_STR(ep.host, "127.0.0.1");
  /* Twisted's spelling, with the key only: one file holds both. */
  EXPECT_OK(eddy_endpoint_parse_server("ssl:443:privateKey=/both.pem", &ep, err,
                                       sizeof err));
  EXPECT_STR(ep.cert_key, "/both.pem");
  EXPECT_STR(ep.private_key, "/both.pem");
  EXPECT_OK(eddy_endpoint_parse_server("tls:443:certKey=/both.pem", &ep, err,
                                       sizeof err));
  EXPECT_STR(ep.private_key, "/both.pem");
  EXPECT_OK(eddy_endpoint_parse_server("tcp:80", &ep, err, sizeof err));
  EXPECT_EQ(ep.tls, 0);
}

Test(endpoint, parses_client_strings) {
  eddy_endpoint ep;
  char err[256];
  EXPECT_OK(eddy_endpoint_parse_client("tls:host=example.com:port=443", &ep,
                                       err, sizeof err));
  EXPECT_EQ(ep.tls, 1);
  EXPECT_EQ(ep.verify, 1);
  EXPECT_STR(ep.host, "example.com");
  EXPECT_EQ(ep.trust_roots[0], '\0');
  EXPECT_OK(eddy_endpoint_parse_client(
      "tls:example.com:443:trustRoots=/ca.pem:verify=no", &ep, err,
      sizeof err));
  EXPECT_EQ(ep.port, 443);
  EXPECT_EQ(ep.verify, 0);
  EXPECT_STR(ep.trust_roots, "/ca.pem");
  EXPECT_OK(
      eddy_endpoint_parse_client("ssl:h:1:verify=yes", &ep, err, sizeof err));
  EXPECT_EQ(ep.verify, 1);
}

static void bad(int client, const char *text, const char *message) {
  eddy_endpoint ep;
  char err[256];
  int rc = client ? eddy_endpoint_parse_client(text, &ep, err, sizeof err)
                  : eddy_endpoint_parse_server(text, &ep, err, sizeof err);
  EXPECT_EQ(rc, EDDY_EPARSE);
  cr_assert(strstr(err, message) != NULL, "%s -> %s", text, err);
}

Test(endpoint, bad_strings) {
  bad(0, "tls:8443", "missing certKey");
  bad(0, "tls:certKey=/a.pem", "missing port");
  bad(0, "tls:8443:certKey=/a.pem:trustRoots=/x",
      "unknown parameter 'trustRoots'");
  bad(0, "tls:8443:certKey=", "empty value for 'certKey'");
  bad(1, "tls:host=h:port=1:verify=maybe", "verify 'maybe' is not a boolean");
  bad(1, "tls:host=h:port=1:certKey=/a", "unknown parameter 'certKey'");
  bad(1, "tls:h", "missing port");
  bad(1, "tls:host=h:port=1:verify=no:verify=yes", "given twice");
}

/* A listener on a tls: endpoint; clients connect through tls: endpoints. */
typedef struct server {
  int accepted, echoed;
  int plain; /* plaintext streams accepted by on_accept_any */
  test_peer peers[1100];
} server;

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  server *sv = arg;
  test_peer *p = &sv->peers[sv->accepted++ % 1100];
  (void)l;
  memset(p, 0, sizeof *p);
  p->echo = 1;
  p->close_on_eof = 1;
  p->s = s;
  cr_assert(eddy_stream_is_tls(s));
  eddy_stream_set_callbacks(s, &test_peer_callbacks, p);
}

typedef struct client {
  test_peer p;
  int connected, status;
  char detail[256];
} client;

static void on_connected(eddy_connect *req, eddy_stream *s, int status,
                         const char *detail, void *arg) {
  client *c = arg;
  (void)req;
  c->connected = 1;
  c->status = status;
  snprintf(c->detail, sizeof c->detail, "%s", detail);
  if (s) {
    c->p.s = s;
    eddy_stream_set_callbacks(s, &test_peer_callbacks, &c->p);
    EXPECT_OK(eddy_stream_write(s, "ping", 4));
  }
}

static eddy_listener *tls_listener(eddy_loop *loop, server *sv, int *port) {
  eddy_listener *l = NULL;
  char text[1400], err[512];
  ep_string(text, sizeof text,
            "tls:0:interface=127.0.0.1:certKey=%s:privateKey=%s",
            cert("server.pem"), cert("server.key"));
  cr_assert(eddy_listen(loop, text, on_accept, sv, &l, err, sizeof err) == 0,
            "%s", err);
  *port = eddy_listener_port(l);
  return l;
}

Test(endpoint, listen_and_connect) {
  eddy_loop *loop = test_loop();
  static server sv;
  client c = {0};
  char text[1400], err[512];
  int port;
  eddy_listener *l = tls_listener(loop, &sv, &port);
  ep_string(text, sizeof text, "tls:host=localhost:port=%d:trustRoots=%s", port,
            cert("ca.pem"));
  cr_assert(eddy_connect_to(loop, text, on_connected, &c, NULL, err,
                            sizeof err) == 0,
            "%s", err);
  while (c.p.n < 4 && !c.p.closes && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.p.n, 4);
  cr_assert(memcmp(c.p.got, "ping", 4) == 0);
  EXPECT_STR(eddy_tls_version(c.p.s), "TLSv1.3");
  eddy_stream_close(c.p.s);
  test_run_until(loop, &c.p.closes);
  EXPECT_EQ(c.p.status, 0);
  eddy_listener_close(l);
  test_peer_free(&c.p);
  test_peer_free(&sv.peers[0]);
  test_finish(loop);
}

/* The client verifies by default: the system store does not know the test
 * CA, so the connection ends with the reason; verify=no accepts it. */
Test(endpoint, client_verifies_by_default) {
  eddy_loop *loop = test_loop();
  static server sv;
  client c = {0}, d = {0};
  char text[1400], err[512];
  int port;
  eddy_listener *l = tls_listener(loop, &sv, &port);
  ep_string(text, sizeof text, "tls:localhost:%d", port);
  EXPECT_OK(
      eddy_connect_to(loop, text, on_connected, &c, NULL, err, sizeof err));
  ep_string(text, sizeof text, "tls:localhost:%d:verify=no", port);
  EXPECT_OK(
      eddy_connect_to(loop, text, on_connected, &d, NULL, err, sizeof err));
  while ((!c.p.closes || d.p.n < 4) && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_EQ(c.p.status, EDDY_ETLS);
  cr_assert(strstr(c.p.detail, "certificate verify failed") != NULL, "%s",
            c.p.detail);
  EXPECT_EQ(d.p.n, 4);
  eddy_stream_close(d.p.s);
  test_run_until(loop, &d.p.closes);
  eddy_listener_close(l);
  for (int i = 0; i < sv.accepted; i++)
    test_peer_free(&sv.peers[i]);
  test_peer_free(&d.p);
  test_finish(loop);
}

/* TLS streams go to on_accept; a plaintext one is counted and closed. */
static void on_accept_any(eddy_listener *l, eddy_stream *s, void *arg) {
  server *sv = arg;
  if (eddy_stream_is_tls(s)) {
    on_accept(l, s, arg);
    return;
  }
  sv->plain++;
  eddy_stream_close(s);
}

static eddy_endpoint client_endpoint(const char *text) {
  eddy_endpoint ep;
  char err[256];
  cr_assert(eddy_endpoint_parse_client(text, &ep, err, sizeof err) == 0, "%s",
            err);
  return ep;
}

/* A plain tcp: listener given a context starts TLS on the connections it
 * accepts from then on (the listener keeps its own reference); given NULL,
 * it goes back to plaintext. */
Test(endpoint, listener_set_tls_wraps_later_connections_and_null_unwraps) {
  eddy_loop *loop = test_loop();
  static server sv;
  client c = {0}, d = {0};
  eddy_listener *l = NULL;
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  char text[64], err[256];
  eddy_endpoint ep;
  memset(&sv, 0, sizeof sv);
  cr_assert(eddy_listen(loop, "tcp:0:interface=127.0.0.1", on_accept_any, &sv,
                        &l, err, sizeof err) == 0,
            "%s", err);
  eddy_listener_set_tls(l, sctx);
  eddy_tls_ctx_free(sctx);
  snprintf(text, sizeof text, "tcp:host=localhost:port=%d",
           eddy_listener_port(l));
  ep = client_endpoint(text);
  EXPECT_OK(eddy_connect_tls(loop, &ep, cctx, on_connected, &c, NULL));
  eddy_tls_ctx_free(cctx);
  for (int64_t end = eddy_loop_now(loop) + 10 * EDDY_NSEC_PER_SEC;
       c.p.n < 4 && !c.p.closes && eddy_loop_now(loop) < end;) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  EXPECT_EQ(c.p.n, 4);
  EXPECT_STR(eddy_tls_version(c.p.s), "TLSv1.3");
  eddy_listener_set_tls(l, NULL);
  d.p.close_on_eof = 1; /* the server closes it, with an EOF or a reset */
  EXPECT_OK(
      eddy_connect_to(loop, text, on_connected, &d, NULL, err, sizeof err));
  test_run_until(loop, &d.p.closes);
  EXPECT_EQ(sv.plain, 1);
  EXPECT_EQ(sv.accepted, 1);
  eddy_stream_close(c.p.s);
  test_run_until(loop, &c.p.closes);
  eddy_listener_close(l);
  test_peer_free(&c.p);
  test_peer_free(&d.p);
  test_peer_free(&sv.peers[0]);
  test_finish(loop);
}

Test(endpoint,
     connect_tls_refuses_a_missing_or_server_context_and_a_unix_path) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  eddy_endpoint tcp = client_endpoint("tcp:localhost:1");
  eddy_endpoint unix_ep = client_endpoint("unix:/nonexistent/sock");
  client c = {0};
  EXPECT_EQ(eddy_connect_tls(loop, &tcp, NULL, on_connected, &c, NULL),
            -EINVAL);
  EXPECT_EQ(eddy_connect_tls(loop, &tcp, sctx, on_connected, &c, NULL),
            -EINVAL);
  EXPECT_EQ(eddy_connect_tls(loop, &unix_ep, cctx, on_connected, &c, NULL),
            -EINVAL);
  EXPECT_EQ(eddy_connect_tls(loop, NULL, cctx, on_connected, &c, NULL),
            -EINVAL);
  eddy_tls_ctx_free(sctx);
  eddy_tls_ctx_free(cctx);
  test_finish(loop);
  EXPECT_EQ(c.connected, 0);
}

Test(endpoint, unreadable_files_are_reported_up_front) {
  eddy_loop *loop = test_loop();
  eddy_listener *l = NULL;
  client c = {0};
  char err[512];
  EXPECT_EQ(eddy_listen(loop, "tls:0:certKey=/nonexistent/x.pem", on_accept,
                        NULL, &l, err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/x.pem") != NULL, "%s", err);
  EXPECT_EQ(eddy_connect_to(loop,
                            "tls:localhost:1:trustRoots=/nonexistent/ca.pem",
                            on_connected, &c, NULL, err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
  EXPECT_EQ(c.connected, 0);
  test_finish(loop);
}

/* A thousand clients handshake with one server at once, all in one loop:
 * every one gets its echo, and every one closes cleanly. */
Test(endpoint, thousand_concurrent_handshakes, .timeout = 120) {
  enum { N = 1000 };
  eddy_loop *loop = test_loop();
  static server sv;
  static client cs[N];
  struct rlimit rl;
  char text[1400], err[512];
  int port, done = 0;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * N + 100) {
    rl.rlim_cur = rl.rlim_max < 2 * N + 100 ? rl.rlim_max : 2 * N + 100;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  cr_assert(rl.rlim_cur >= 2 * N + 100, "descriptor limit %ld too low",
            (long)rl.rlim_cur);
  eddy_listener *l = tls_listener(loop, &sv, &port);
  eddy_endpoint ep;
  eddy_tls_ctx *cctx = NULL;
  ep_string(text, sizeof text, "tls:host=127.0.0.1:port=%d:trustRoots=%s", port,
            cert("ca.pem"));
  EXPECT_OK(eddy_endpoint_parse_client(text, &ep, err, sizeof err));
  cr_assert(eddy_tls_ctx_from_endpoint(&ep, 0, &cctx, err, sizeof err) == 0,
            "%s", err);
  for (int i = 0; i < N; i++)
    EXPECT_OK(eddy_connect_tls(loop, &ep, cctx, on_connected, &cs[i], NULL));
  eddy_tls_ctx_free(cctx);
  int64_t end = eddy_loop_now(loop) + 90 * EDDY_NSEC_PER_SEC;
  while (done < N && eddy_loop_now(loop) < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
    done = 0;
    for (int i = 0; i < N; i++) {
      if (cs[i].p.n == 4 && cs[i].p.s && !cs[i].p.closes)
        eddy_stream_close(cs[i].p.s);
      done += cs[i].p.closes;
    }
  }
  EXPECT_EQ(done, N);
  for (int i = 0; i < N; i++) {
    cr_assert(cs[i].status == 0 && cs[i].p.n == 4 && cs[i].p.status == 0,
              "client %d: connect %d, got %zu, closed %d %s", i, cs[i].status,
              cs[i].p.n, cs[i].p.status, cs[i].p.detail);
    test_peer_free(&cs[i].p);
  }
  EXPECT_EQ(sv.accepted, N);
  eddy_listener_close(l);
  for (int i = 0; i < 20 && eddy_loop_run(loop, EDDY_RUN_NOWAIT) >= 0; i++)
    ;
  for (int i = 0; i < N; i++)
    test_peer_free(&sv.peers[i]);
  test_finish(loop);
}
