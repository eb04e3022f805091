/* coro_net.c: connecting and accepting from coroutines, a coroutine per
 * connection, running programs, and cancellation while blocked in each. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>

#include "coro_test.h"

typedef struct server {
  eddy_coro_listener *cl;
  int port;
  int accepted;
  int accept_result;
  int echoed;
} server;

static int echo_conn(eddy_coro *co, void *arg) {
  eddy_coro_stream *cs = arg;
  char line[256];
  size_t len;
  int r;
  eddy_coro_stream_move(cs, co);
  while ((r = eddy_coro_read_line(co, cs, line, sizeof line, &len)) == 1) {
    line[len++] = '\n';
    if ((r = eddy_coro_write(co, cs, line, len)) != 0)
      break;
  }
  return r < 0 ? r : 0;
}

static int serve(eddy_coro *co, void *arg) {
  server *sv = arg;
  char err[256];
  int r;
  EXPECT_OK(eddy_coro_listen(co, "tcp:0:interface=127.0.0.1", &sv->cl, err,
                             sizeof err));
  sv->port = eddy_listener_port(eddy_coro_listener_get(sv->cl));
  for (;;) {
    eddy_coro_stream *cs;
    r = eddy_coro_accept(co, sv->cl, &cs);
    if (r != 0)
      break;
    sv->accepted++;
    r = eddy_coro_spawn_child(co, echo_conn, cs, NULL, NULL);
    if (r != 0)
      eddy_coro_stream_close(cs);
  }
  sv->accept_result = r;
  return r;
}

typedef struct client {
  int port;
  char reply[64];
  int result;
  int done;
} client;

static int talk(eddy_coro *co, void *arg) {
  client *c = arg;
  char ep[64], err[256];
  eddy_coro_stream *cs;
  size_t len;
  snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", c->port);
  c->result = eddy_coro_connect(co, ep, &cs, err, sizeof err);
  if (c->result == 0 && (c->result = eddy_coro_write(co, cs, "ping\n", 5)) == 0)
    c->result = eddy_coro_read_line(co, cs, c->reply, sizeof c->reply, &len);
  c->done = 1;
  return 0;
}

Test(coro_net, a_coroutine_per_connection_echoes_for_coroutine_clients) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  client c[5];
  coro_done d = {0}, dc = {0};
  eddy_coro *srv = coro_start(loop, serve, &sv, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(sv.port > 0);
  for (int i = 0; i < 5; i++) {
    c[i] = (client){.port = sv.port};
    coro_start(loop, talk, &c[i], &dc);
  }
  EXPECT_EQ(coro_run_until(loop, &dc.calls, 5), 5);
  for (int i = 0; i < 5; i++) {
    EXPECT_EQ(c[i].result, 1);
    EXPECT_STR(c[i].reply, "ping");
  }
  EXPECT_EQ(sv.accepted, 5);
  /* Cancelling the server cancels its accept and every connection. */
  eddy_coro_cancel(srv);
  EXPECT_EQ(coro_run_until(loop, &d.calls, 1), 1);
  EXPECT_EQ(sv.accept_result, -ECANCELED);
  test_finish(loop);
}

Test(coro_net, cancel_while_blocked_in_accept) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  coro_done d = {0};
  eddy_coro *srv = coro_start(loop, serve, &sv, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(sv.port > 0);
  eddy_coro_cancel(srv);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(sv.accept_result, -ECANCELED);
  EXPECT_EQ(d.calls, 1);
  /* The listener it owned is closed: nothing listens on the port. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)sv.port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  EXPECT_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), -1);
  close(fd);
  test_finish(loop);
}

Test(coro_net, connect_reports_a_refused_connection) {
  eddy_loop *loop = test_loop();
  client c = {0};
  coro_done d = {0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  /* A port nothing listens on: bound, not listening. */
  EXPECT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
  c.port = ntohs(a.sin_port);
  coro_start(loop, talk, &c, &d);
  EXPECT_EQ(coro_run_until(loop, &c.done, 1), 1);
  EXPECT_EQ(c.result, -ECONNREFUSED);
  close(fd);
  test_finish(loop);
}

Test(coro_net, cancel_while_blocked_in_connect) {
  eddy_loop *loop = test_loop();
  client c = {0};
  coro_done d = {0};
  /* A listener whose backlog is full never completes a handshake: the
   * connect waits. 10.255.255.1 would, too, but needs a route. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  EXPECT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
  c.port = ntohs(a.sin_port);
  eddy_coro *co = coro_start(loop, talk, &c, &d);
  eddy_coro_cancel(co); /* before it even starts connecting */
  EXPECT_EQ(coro_run_until(loop, &c.done, 1), 1);
  EXPECT_EQ(c.result, -ECANCELED);
  close(fd);
  test_finish(loop);
}

static int connect_then_wait(eddy_coro *co, void *arg) {
  client *c = arg;
  char ep[64], err[256];
  eddy_coro_stream *cs;
  snprintf(ep, sizeof ep, "tcp:host=localhost:port=%d:timeout=30", c->port);
  c->done = -1; /* connecting */
  c->result = eddy_coro_connect(co, ep, &cs, err, sizeof err);
  c->done = 1;
  return 0;
}

Test(coro_net, cancel_while_a_connect_is_under_way_gives_it_up) {
  eddy_loop *loop = test_loop();
  client c = {0};
  coro_done d = {0};
  /* A name the resolver must look up keeps the connect in the thread
   * pool for at least a turn. */
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  EXPECT_OK(bind(lfd, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(listen(lfd, 1));
  EXPECT_OK(getsockname(lfd, (struct sockaddr *)&a, &len));
  c.port = ntohs(a.sin_port);
  eddy_coro *co = coro_start(loop, connect_then_wait, &c, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(c.done, -1);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(c.result, -ECANCELED);
  close(lfd);
  test_finish(loop);
}

/* ---- Running programs ---------------------------------------------------------- */

typedef struct runner {
  const char *const *argv;
  eddy_coro_output out;
  int result;
  int done;
} runner;

static int run_program(eddy_coro *co, void *arg) {
  runner *r = arg;
  eddy_process_options o = {.file = r->argv[0], .argv = r->argv};
  r->done = -1;
  r->result = eddy_coro_run(co, &o, &r->out);
  r->done = 1;
  return r->result;
}

Test(coro_net, run_returns_the_output_and_the_status) {
  eddy_loop *loop = test_loop();
  const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  runner r = {.argv = argv};
  coro_done d = {0};
  coro_start(loop, run_program, &r, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.result, 0);
  EXPECT_STR(r.out.out, "out\n");
  EXPECT_STR(r.out.err, "err\n");
  EXPECT_EQ(r.out.exit_status, 3);
  eddy_coro_output_free(&r.out);
  test_finish(loop);
}

Test(coro_net, run_reports_a_program_that_cannot_start) {
  eddy_loop *loop = test_loop();
  const char *argv[] = {"/nonexistent/program", NULL};
  runner r = {.argv = argv};
  coro_done d = {0};
  coro_start(loop, run_program, &r, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.result, -ENOENT);
  test_finish(loop);
}

Test(coro_net, cancel_while_blocked_in_run_kills_the_child) {
  eddy_loop *loop = test_loop();
  const char *argv[] = {"sleep", "30", NULL};
  runner r = {.argv = argv};
  coro_done d = {0};
  eddy_coro *co = coro_start(loop, run_program, &r, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(r.done, -1);
  int64_t t0 = test_clock_ms();
  eddy_coro_cancel(co);
  /* Runs until the child is reaped: promptly, not in 30 s. */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_LT(test_clock_ms() - t0, 5000);
  EXPECT_EQ(r.result, -ECANCELED);
  EXPECT_EQ(r.out.out, NULL);
  test_finish(loop);
}

Test(coro_net, close_all_while_blocked_in_run_leaves_nothing) {
  eddy_loop *loop = test_loop();
  const char *argv[] = {"sleep", "30", NULL};
  runner r = {.argv = argv};
  coro_done d = {0};
  coro_start(loop, run_program, &r, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(r.done, -1);
  int64_t t0 = test_clock_ms();
  test_finish(loop); /* close_all, then run to idle, then free */
  EXPECT_LT(test_clock_ms() - t0, 5000);
  EXPECT_EQ(r.result, -ECANCELED);
}

Test(coro_net, close_all_while_blocked_in_connect_leaves_nothing) {
  eddy_loop *loop = test_loop();
  client c = {0};
  coro_done d = {0};
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  EXPECT_OK(bind(lfd, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(listen(lfd, 1));
  EXPECT_OK(getsockname(lfd, (struct sockaddr *)&a, &len));
  c.port = ntohs(a.sin_port);
  coro_start(loop, connect_then_wait, &c, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(c.done, -1);
  test_finish(loop);
  EXPECT_EQ(c.result, -ECANCELED);
  close(lfd);
}

Test(coro_net, close_all_while_blocked_in_accept_leaves_nothing) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  coro_done d = {0};
  coro_start(loop, serve, &sv, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(sv.port > 0);
  test_finish(loop);
  EXPECT_EQ(sv.accept_result, -ECANCELED);
}
