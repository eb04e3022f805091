/* coro_tls.c: coroutine streams over TLS: a coroutine server on a tls:
 * endpoint and a coroutine client that connects with tls:, verifying the
 * server against the test CA. Lines and raw reads go through the TLS
 * layer exactly as over TCP. */
#include "../tls/tls_test.h"
#include "coro_test.h"

typedef struct tls_echo {
  int port;
  int served;
  char reply[64];
  int client_result;
  int client_done;
} tls_echo;

static int tls_server(eddy_coro *co, void *arg) {
  tls_echo *t = arg;
  eddy_coro_listener *cl;
  eddy_coro_stream *cs;
  char ep[1600], err[256], line[64];
  size_t len;
  snprintf(ep, sizeof ep, "tls:0:certKey=%s:privateKey=%s:interface=127.0.0.1",
           cert("server.pem"), cert("server.key"));
  cr_assert(eddy_coro_listen(co, ep, &cl, err, sizeof err) == 0, "%s", err);
  t->port = eddy_listener_port(eddy_coro_listener_get(cl));
  EXPECT_OK(eddy_coro_accept(co, cl, &cs));
  EXPECT_EQ(eddy_coro_read_line(co, cs, line, sizeof line, &len), 1);
  EXPECT_OK(eddy_coro_write(co, cs, line, len));
  EXPECT_OK(eddy_coro_write(co, cs, "\n", 1));
  t->served = 1;
  /* Returning closes the stream and the listener: what was written still
   * goes out, then close_notify. */
  return 0;
}

static int tls_client(eddy_coro *co, void *arg) {
  tls_echo *t = arg;
  eddy_coro_stream *cs;
  char ep[1600], err[256];
  size_t len;
  snprintf(ep, sizeof ep, "tls:host=localhost:port=%d:trustRoots=%s", t->port,
           cert("ca.pem"));
  t->client_result = eddy_coro_connect(co, ep, &cs, err, sizeof err);
  if (t->client_result == 0)
    t->client_result = eddy_coro_write(co, cs, "over tls\n", 9);
  if (t->client_result == 0)
    t->client_result = eddy_coro_read_line(co, cs, t->reply, sizeof t->reply,
                                           &len);
  t->client_done = 1;
  return 0;
}

Test(coro_tls, a_coroutine_client_and_server_talk_lines_over_tls) {
  eddy_loop *loop = test_loop();
  tls_echo t = {0};
  coro_done ds = {0}, dc = {0};
  coro_start(loop, tls_server, &t, &ds);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(t.port > 0);
  coro_start(loop, tls_client, &t, &dc);
  EXPECT_EQ(coro_run_until(loop, &t.client_done, 1), 1);
  EXPECT_EQ(t.client_result, 1);
  EXPECT_STR(t.reply, "over tls");
  EXPECT_EQ(t.served, 1);
  test_finish(loop);
}
