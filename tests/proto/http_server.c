/* The HTTP/1.x server over a socketpair, driven by hand: routes, params,
 * mounts, bodies (Content-Length, chunked, too large), keep-alive and
 * HTTP/1.0, pipelining answered in one write, HEAD, 404/405, errors that
 * close, answers given later, a client that goes away while the program
 * holds its exchange, streamed responses, 100 Continue, timeouts on the
 * fake clock, and a graceful drain. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdint.h>
#include <unistd.h>

#include "helpers.h"

#define SEC EDDY_NSEC_PER_SEC

typedef struct fixture {
  eddy_loop *loop;
  eddy_http_server *srv;
  int fd; /* the client's end */
  char got[65536];
  size_t n;
  int closed;
} fixture;

static void setup(fixture *f, eddy_loop *loop,
                  const eddy_http_server_options *o) {
  int sv[2];
  eddy_stream *s;
  memset(f, 0, sizeof *f);
  f->loop = loop;
  test_socketpair(sv);
  EXPECT_OK(eddy_http_server_new(loop, o, &f->srv));
  EXPECT_OK(eddy_stream_open(loop, sv[0], NULL, NULL, &s));
  EXPECT_OK(eddy_http_server_serve(f->srv, s));
  f->fd = sv[1];
}

static void teardown(fixture *f) {
  close(f->fd);
  eddy_http_server_free(f->srv);
  test_finish(f->loop);
}

static void send_raw(fixture *f, const char *text) {
  size_t n = strlen(text);
  cr_assert(write(f->fd, text, n) == (ssize_t)n);
}

/* Runs the loop and reads the client's end until the bytes read contain
 * `want` times the text `what` (or the end), for at most 5 s. */
static void wait_for(fixture *f, const char *what, int want) {
  int64_t deadline = test_clock_ms() + 5000;
  for (;;) {
    int count = 0;
    const char *p = f->got;
    f->got[f->n] = '\0';
    while (what && (p = strstr(p, what)) != NULL) {
      count++;
      p++;
    }
    if ((what && count >= want) || f->closed)
      return;
    cr_assert(test_clock_ms() < deadline, "waited for %s; got: %s", what,
              f->got);
    EXPECT_GE(eddy_loop_run(f->loop, EDDY_RUN_NOWAIT), 0);
    struct pollfd p1 = {.fd = f->fd, .events = POLLIN};
    if (poll(&p1, 1, 5) == 1) {
      ssize_t r = recv(f->fd, f->got + f->n, sizeof f->got - 1 - f->n,
                       MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno == ECONNRESET))
        f->closed = 1;
      else if (r > 0)
        f->n += (size_t)r;
    }
  }
}

static void wait_closed(fixture *f) {
  wait_for(f, NULL, 0);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  while ((hay = strstr(hay, needle)) != NULL) {
    n++;
    hay++;
  }
  return n;
}

/* ---- Handlers ------------------------------------------------------------ */

static void hello(eddy_http_exchange *x, void *arg) {
  (void)arg;
  EXPECT_OK(eddy_http_respond(x, 200, "text/plain", "Hello, World!", 13));
}

static void user(eddy_http_exchange *x, void *arg) {
  const char *id;
  size_t n;
  char body[64];
  (void)arg;
  EXPECT_OK(eddy_http_param(x, "id", &id, &n));
  EXPECT_EQ(eddy_http_param(x, "nope", &id, &n), -ENOENT);
  eddy_http_param(x, "id", &id, &n);
  snprintf(body, sizeof body, "user %.*s", (int)n, id);
  EXPECT_OK(eddy_http_set_header(x, "X-User", "yes"));
  EXPECT_EQ(eddy_http_set_header(x, "X-Bad", "a\r\nInjected: 1"), -EINVAL);
  EXPECT_EQ(eddy_http_set_header(x, "Bad Name", "v"), -EINVAL);
  EXPECT_OK(eddy_http_respond(x, 200, "text/plain", body, strlen(body)));
}

static void echo_body(eddy_http_exchange *x, void *arg) {
  size_t n;
  const char *b = eddy_http_body(x, &n);
  (void)arg;
  EXPECT_OK(eddy_http_respond(x, 200, "application/octet-stream", b, n));
}

static eddy_http_exchange *held;
static int nheld, gone;

static void hold(eddy_http_exchange *x, void *arg) {
  (void)arg;
  held = x;
  nheld++;
}

/* Runs the loop until *flag is set, for at most 5 s (never blocking in
 * the loop: the server's timers are far off). */
static int run_until(eddy_loop *loop, const int *flag) {
  int64_t deadline = test_clock_ms() + 5000;
  while (!*flag && test_clock_ms() < deadline) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    (void)poll(NULL, 0, 1);
  }
  return *flag;
}

static void on_gone(eddy_http_exchange *x, void *arg) {
  (void)arg;
  cr_expect(x == held);
  gone++;
}

static void hold_watching(eddy_http_exchange *x, void *arg) {
  (void)arg;
  held = x;
  nheld++;
  eddy_http_on_gone(x, on_gone, NULL);
}

static void stream3(eddy_http_exchange *x, void *arg) {
  (void)arg;
  EXPECT_OK(eddy_http_begin(x, 200, "text/plain"));
  EXPECT_OK(eddy_http_write(x, "one,", 4));
  EXPECT_OK(eddy_http_write(x, "two,", 4));
  EXPECT_OK(eddy_http_write(x, "three", 5));
  EXPECT_OK(eddy_http_end(x));
}

static void routes(eddy_http_server *srv) {
  EXPECT_OK(eddy_http_route(srv, "GET", "/hello", hello, NULL));
  EXPECT_OK(eddy_http_route(srv, "GET", "/users/:id", user, NULL));
  EXPECT_OK(eddy_http_route(srv, "POST", "/echo", echo_body, NULL));
  EXPECT_OK(eddy_http_route(srv, "PUT", "/echo", echo_body, NULL));
  EXPECT_OK(eddy_http_route(srv, NULL, "/hold", hold, NULL));
  EXPECT_OK(eddy_http_route(srv, NULL, "/watch", hold_watching, NULL));
  EXPECT_OK(eddy_http_route(srv, "GET", "/stream", stream3, NULL));
  EXPECT_EQ(eddy_http_route(srv, "GET", "nope", hello, NULL), -EINVAL);
}

/* ---- Tests ------------------------------------------------------------------ */

Test(http_server, hello_with_keep_alive) {
  fixture f;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "Hello, World!", 1);
  cr_expect(strncmp(f.got, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", f.got);
  cr_expect(strstr(f.got, "Content-Length: 13\r\n") != NULL);
  cr_expect(strstr(f.got, "Content-Type: text/plain\r\n") != NULL);
  cr_expect(strstr(f.got, "Date: ") != NULL &&
            strstr(f.got, "Server: eddy") != NULL);
  cr_expect(strstr(f.got, "Connection: close") == NULL);
  f.n = 0;
  send_raw(&f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"); /* same connection */
  wait_for(&f, "Hello, World!", 1);
  EXPECT_EQ(eddy_http_server_connections(f.srv), 1);
  teardown(&f);
}

/* Three requests in one write: three answers, in order, in one write. */
Test(http_server, pipelined_requests_are_answered_in_order_in_one_write) {
  fixture f;
  uint64_t before;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  before = eddy__fault_calls(EDDY__SYS_SENDMSG);
  send_raw(&f,
           "GET /users/1 HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /users/2 HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /users/3 HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "HTTP/1.1 200", 3);
  wait_for(&f, "user 3", 1);
  cr_expect(strstr(f.got, "user 1") < strstr(f.got, "user 2") &&
            strstr(f.got, "user 2") < strstr(f.got, "user 3"));
  EXPECT_EQ(count(f.got, "X-User: yes\r\n"), 3);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG) - before, 1);
  teardown(&f);
}

Test(http_server, head_404_405_and_mounts) {
  fixture f;
  eddy_http_server *api;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  EXPECT_OK(eddy_http_server_new(f.loop, NULL, &api));
  EXPECT_OK(eddy_http_route(api, "GET", "/users/:id", user, NULL));
  EXPECT_OK(eddy_http_mount(f.srv, "/api/", api));
  send_raw(&f,
           "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
           "DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /api/users/7 HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "user 7", 1);
  cr_expect(strstr(f.got, "Content-Length: 13\r\n") != NULL);
  cr_expect(strstr(f.got, "Hello") == NULL); /* HEAD: no body */
  cr_expect(strstr(f.got, "HTTP/1.1 404 Not Found") != NULL);
  cr_expect(strstr(f.got, "HTTP/1.1 405 Method Not Allowed") != NULL);
  cr_expect(strstr(f.got, "Allow: POST, PUT\r\n") != NULL, "%s", f.got);
  eddy_http_server_free(api); /* before its host: allowed */
  teardown(&f);
}

Test(http_server, bodies_by_length_and_chunked_across_writes) {
  fixture f;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f,
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"
           "01234");
  test_run_for(f.loop, 20); /* nothing yet: the body is not complete */
  cr_expect(recv(f.fd, f.got, sizeof f.got, MSG_DONTWAIT) < 0);
  send_raw(&f, "56789");
  wait_for(&f, "0123456789", 1);
  f.n = 0;
  send_raw(&f,
           "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
           "\r\n\r\n4\r\nwiki\r\n");
  send_raw(&f, "5\r\npedia\r\n0\r\nX-T: v\r\n\r\n");
  wait_for(&f, "wikipedia", 1);
  cr_expect(strstr(f.got, "Content-Length: 9\r\n") != NULL);
  teardown(&f);
}

Test(http_server, a_body_too_large_is_413_and_closes) {
  fixture f;
  eddy_http_server_options o = {.max_body = 8};
  setup(&f, test_loop(), &o);
  routes(f.srv);
  send_raw(&f, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n");
  wait_closed(&f);
  cr_expect(strstr(f.got, "HTTP/1.1 413 ") != NULL, "%s", f.got);
  cr_expect(strstr(f.got, "Connection: close") != NULL);
  teardown(&f);
  setup(&f, test_loop(), &o);
  routes(f.srv);
  send_raw(&f,
           "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
           "\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n");
  wait_closed(&f);
  cr_expect(strstr(f.got, "HTTP/1.1 413 ") != NULL, "%s", f.got);
  teardown(&f);
}

Test(http_server, a_malformed_request_is_400_and_closes) {
  fixture f;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f,
           "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
           "Transfer-Encoding: chunked\r\n\r\n");
  wait_closed(&f);
  cr_expect(strncmp(f.got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s",
            f.got);
  teardown(&f);
}

Test(http_server, http_1_0_closes_unless_kept_alive) {
  fixture f;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  wait_for(&f, "Hello, World!", 1);
  cr_expect(strstr(f.got, "Connection: keep-alive\r\n") != NULL);
  send_raw(&f, "GET /hello HTTP/1.0\r\n\r\n");
  wait_closed(&f);
  EXPECT_EQ(count(f.got, "Hello, World!"), 2);
  cr_expect(strstr(f.got, "Connection: close\r\n") != NULL);
  teardown(&f);
}

/* An answer given later, from another callback; the request pipelined
 * behind it waits, then is answered. */
Test(http_server, an_answer_given_later_then_the_next_request) {
  fixture f;
  held = NULL;
  nheld = 0;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f,
           "GET /hold?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  cr_assert(run_until(f.loop, &nheld));
  test_run_for(f.loop, 20);
  cr_expect(f.n == 0);
  {
    const eddy_http_request *r = eddy_http_request_of(held);
    cr_expect(r->query_len == 3 && memcmp(r->query, "x=1", 3) == 0);
  }
  EXPECT_OK(eddy_http_respond(held, 202, NULL, "later", 5));
  wait_for(&f, "Hello, World!", 1);
  cr_expect(strstr(f.got, "202 Accepted") < strstr(f.got, "200 OK"));
  teardown(&f);
}

/* The client goes while the program holds its exchange: on_gone runs, the
 * request stays readable, and the late answer is dropped. */
Test(http_server, a_client_that_goes_away_is_noticed_and_nothing_leaks) {
  fixture f;
  const eddy_http_request *r;
  held = NULL;
  nheld = gone = 0;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f,
           "POST /watch HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
           "\r\nabc");
  cr_assert(run_until(f.loop, &nheld));
  close(f.fd);
  f.fd = -1;
  cr_assert(run_until(f.loop, &gone));
  EXPECT_EQ(eddy_http_server_connections(f.srv), 0);
  r = eddy_http_request_of(held);
  cr_expect(r->path_len == 6 && memcmp(r->path, "/watch", 6) == 0);
  {
    size_t n;
    const char *b = eddy_http_body(held, &n);
    cr_expect(n == 3 && memcmp(b, "abc", 3) == 0);
  }
  EXPECT_EQ(eddy_http_respond(held, 200, NULL, "x", 1), EDDY_ECLOSED);
  eddy_http_server_free(f.srv);
  test_finish(f.loop);
}

Test(http_server, streamed_responses_chunked_or_until_close) {
  fixture f;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "0\r\n\r\n", 1);
  cr_expect(strstr(f.got, "Transfer-Encoding: chunked\r\n") != NULL);
  cr_expect(
      strstr(f.got, "4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n") !=
      NULL);
  f.n = 0;
  send_raw(&f, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  wait_closed(&f);
  cr_expect(strstr(f.got, "\r\n\r\none,two,three") != NULL, "%s", f.got);
  teardown(&f);
}

Test(http_server, expect_100_continue_before_the_body) {
  fixture f;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f,
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
           "Expect: 100-continue\r\n\r\n");
  wait_for(&f, "HTTP/1.1 100 Continue\r\n\r\n", 1);
  send_raw(&f, "data");
  wait_for(&f, "data", 1);
  teardown(&f);
}

/* Slowloris: a head that never ends gets 408 after header_timeout; an idle
 * keep-alive connection is closed after keepalive_timeout. */
Test(http_server, timeouts_on_the_fake_clock) {
  fixture f;
  eddy_http_server_options o = {.header_timeout_ns = 10 * SEC,
                                .keepalive_timeout_ns = 5 * SEC};
  setup(&f, test_fake_loop(0), &o);
  routes(f.srv);
  send_raw(&f, "GET /hello HTTP/1.1\r\nHost: t\r\n");
  EXPECT_GE(eddy_loop_run(f.loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy_loop_advance(f.loop, 10 * SEC - 1));
  send_raw(&f, "X-Slow: 1\r\n"); /* trickling does not restart the clock */
  EXPECT_GE(eddy_loop_run(f.loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy_loop_advance(f.loop, 1));
  wait_closed(&f);
  cr_expect(strstr(f.got, "HTTP/1.1 408 Request Timeout") != NULL, "%s", f.got);
  teardown(&f);
  setup(&f, test_fake_loop(0), &o);
  routes(f.srv);
  send_raw(&f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "Hello", 1);
  EXPECT_OK(eddy_loop_advance(f.loop, 5 * SEC - 1));
  EXPECT_GE(eddy_loop_run(f.loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(eddy_http_server_connections(f.srv), 1);
  EXPECT_OK(eddy_loop_advance(f.loop, 1));
  wait_closed(&f);
  cr_expect(strstr(f.got, "408") == NULL); /* idle: closed, nothing said */
  teardown(&f);
}

Test(http_server, a_drain_closes_idle_connections_and_ends_busy_ones) {
  fixture f, g;
  eddy_loop *loop = test_loop();
  held = NULL;
  nheld = 0;
  setup(&f, loop, NULL);
  routes(f.srv);
  {
    int sv[2];
    eddy_stream *s;
    test_socketpair(sv);
    EXPECT_OK(eddy_stream_open(loop, sv[0], NULL, NULL, &s));
    EXPECT_OK(eddy_http_server_serve(f.srv, s));
    memset(&g, 0, sizeof g);
    g.loop = loop;
    g.fd = sv[1];
  }
  send_raw(&f, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
  cr_assert(run_until(loop, &nheld));
  eddy_http_server_drain(f.srv);
  wait_closed(&g); /* idle: closed at once */
  EXPECT_EQ(g.n, 0);
  EXPECT_OK(eddy_http_respond(held, 200, NULL, "bye", 3));
  wait_closed(&f);
  cr_expect(strstr(f.got, "Connection: close\r\n") != NULL);
  cr_expect(strstr(f.got, "bye") != NULL);
  close(g.fd);
  teardown(&f);
}

/* ---- Coroutine handlers and Deferred answers ------------------------------ */

static int coro_cancelled;

static int slow_hello(eddy_coro *co, eddy_http_exchange *x, void *arg) {
  int rc = eddy_coro_sleep(co, (int64_t)(intptr_t)arg * EDDY_NSEC_PER_MSEC);
  if (rc == -ECANCELED) {
    coro_cancelled++;
    return rc;
  }
  return eddy_http_respond(x, 200, "text/plain", "slept", 5);
}

static int forgetful(eddy_coro *co, eddy_http_exchange *x, void *arg) {
  (void)co;
  (void)x;
  (void)arg;
  return 0;
}

static eddy_http_response later_answer = {201, "text/plain", "deferred", 8};
static int cancels;

static void count_cancel(eddy_deferred *d, void *arg) {
  (void)d;
  (void)arg;
  cancels++;
}

static eddy_deferred *pending;

static void defer_answer(eddy_http_exchange *x, void *arg) {
  eddy_deferred *d;
  const char *how = arg;
  if (strcmp(how, "now") == 0) {
    EXPECT_OK(
        eddy_deferred_succeed(eddy_http_loop(x), &later_answer, NULL, &d));
  } else if (strcmp(how, "fail") == 0) {
    EXPECT_OK(eddy_deferred_fail(eddy_http_loop(x), &d, -EIO, "disk"));
  } else {
    EXPECT_OK(eddy_deferred_new(eddy_http_loop(x), count_cancel, NULL, &d));
    pending = d;
    nheld++;
  }
  EXPECT_OK(eddy_http_respond_deferred(x, d));
}

static void async_routes(eddy_http_server *srv) {
  EXPECT_OK(eddy_http_route_coro(srv, "GET", "/slow", slow_hello,
                                 (void *)(intptr_t)10));
  EXPECT_OK(eddy_http_route_coro(srv, "GET", "/stuck", slow_hello,
                                 (void *)(intptr_t)100000));
  EXPECT_OK(eddy_http_route_coro(srv, "GET", "/forget", forgetful, NULL));
  EXPECT_OK(eddy_http_route(srv, "GET", "/now", defer_answer, "now"));
  EXPECT_OK(eddy_http_route(srv, "GET", "/fail", defer_answer, "fail"));
  EXPECT_OK(eddy_http_route(srv, "GET", "/later", defer_answer, "later"));
}

Test(http_server, coroutine_handlers_answer_in_sequence_or_get_500) {
  fixture f;
  setup(&f, test_loop(), NULL);
  async_routes(f.srv);
  send_raw(&f,
           "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /forget HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "did not answer", 1);
  cr_expect(strstr(f.got, "200 OK") != NULL && strstr(f.got, "slept") != NULL);
  cr_expect(strstr(f.got, "500 Internal Server Error") != NULL, "%s", f.got);
  teardown(&f);
}

/* The client goes while the coroutine sleeps: the sleep is cancelled. */
Test(http_server, a_client_going_away_cancels_its_coroutine) {
  fixture f;
  coro_cancelled = 0;
  setup(&f, test_loop(), NULL);
  async_routes(f.srv);
  send_raw(&f, "GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n");
  test_run_for(f.loop, 20);
  close(f.fd);
  f.fd = -1;
  cr_assert(run_until(f.loop, &coro_cancelled));
  eddy_loop_close_all(f.loop);
  EXPECT_GE(eddy_loop_run(f.loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_http_server_free(f.srv);
  test_finish(f.loop);
}

Test(http_server, deferred_answers_now_later_failed_and_cancelled) {
  fixture f;
  nheld = cancels = 0;
  pending = NULL;
  setup(&f, test_loop(), NULL);
  async_routes(f.srv);
  send_raw(&f,
           "GET /now HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /fail HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
  cr_assert(run_until(f.loop, &nheld));
  EXPECT_OK(eddy_deferred_callback(pending, &later_answer, NULL));
  wait_for(&f, "201 Created", 2);
  cr_expect(strstr(f.got, "deferred") != NULL);
  cr_expect(strstr(f.got, "500 Internal Server Error") != NULL);
  teardown(&f);
  /* Cancelled when the client goes. */
  nheld = 0;
  setup(&f, test_loop(), NULL);
  async_routes(f.srv);
  send_raw(&f, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
  cr_assert(run_until(f.loop, &nheld));
  close(f.fd);
  f.fd = -1;
  cr_assert(run_until(f.loop, &cancels));
  eddy_http_server_free(f.srv);
  test_finish(f.loop);
}

/* ---- Upgrades ---------------------------------------------------------------- */

static test_peer upgraded;
static eddy_buf upgrade_rest;
static int upgrade_rc, upgrades, upgrade_without_memory;

/* Takes the connection over: the bytes after the request arrive in
 * upgrade_rest, and the stream echoes from then on. */
static void take_over(eddy_http_exchange *x, void *arg) {
  eddy_stream *s = NULL;
  (void)arg;
  EXPECT_OK(eddy_http_set_header(x, "Upgrade", "test"));
  EXPECT_OK(eddy_http_set_header(x, "Connection", "Upgrade"));
  if (upgrade_without_memory) {
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  }
  upgrade_rc = eddy_http_upgrade(x, 101, &upgrade_rest, &s);
  upgrades++;
  if (upgrade_rc == 0) {
    cr_assert(s != NULL);
    upgraded.s = s;
    upgraded.echo = 1;
    eddy_stream_set_callbacks(s, &test_peer_callbacks, &upgraded);
    EXPECT_OK(eddy_stream_write(s, "first", 5));
  } else {
    cr_expect(s == NULL);
  }
}

static void upgrade_reset(void) {
  memset(&upgraded, 0, sizeof upgraded);
  eddy_buf_init(&upgrade_rest, 0);
  upgrade_rc = -1;
  upgrades = upgrade_without_memory = 0;
}

/* In the pass that read it, after a pipelined request: its answer comes
 * first, then the 101, then the new protocol; the bytes that followed the
 * request are handed over, and the server counts the connection no more. */
Test(http_server, an_upgrade_hands_the_stream_and_the_bytes_after_over) {
  fixture f;
  upgrade_reset();
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  EXPECT_OK(eddy_http_route(f.srv, "GET", "/up", take_over, NULL));
  send_raw(&f,
           "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
           "Upgrade: test\r\n\r\nearly bytes");
  wait_for(&f, "first", 1);
  EXPECT_OK(upgrade_rc);
  cr_expect(strstr(f.got, "200 OK") < strstr(f.got, "101 Switching"), "%s",
            f.got);
  cr_expect(strstr(f.got,
                   "Upgrade: test\r\nConnection: Upgrade\r\n\r\nfirst") != NULL,
            "%s", f.got);
  cr_expect(strstr(f.got, "Content-Length") ==
            strstr(f.got, "Content-Length: 13")); /* only the 200's */
  EXPECT_EQ(eddy_buf_len(&upgrade_rest), 11);
  cr_expect(memcmp(eddy_buf_data(&upgrade_rest), "early bytes", 11) == 0);
  EXPECT_EQ(eddy_http_server_connections(f.srv), 0);
  send_raw(&f, "GET /hello HTTP/1.1\r\n\r\n"); /* not HTTP any more */
  wait_for(&f, "GET /hello HTTP/1.1\r\n\r\n", 1);
  cr_expect(upgraded.n == 23);
  eddy_stream_close(upgraded.s);
  wait_closed(&f);
  eddy_buf_free(&upgrade_rest);
  test_peer_free(&upgraded);
  teardown(&f);
}

/* Later, from outside the pass, with bytes sent while it was held. */
Test(http_server, an_upgrade_of_a_held_exchange) {
  fixture f;
  upgrade_reset();
  held = NULL;
  nheld = 0;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nwhile held");
  cr_assert(run_until(f.loop, &nheld));
  test_run_for(f.loop, 20);
  EXPECT_EQ(eddy_http_upgrade(held, 404, NULL, &upgraded.s), -EINVAL);
  take_over(held, NULL);
  EXPECT_OK(upgrade_rc);
  wait_for(&f, "first", 1);
  cr_expect(strncmp(f.got, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0,
            "%s", f.got);
  EXPECT_EQ(eddy_buf_len(&upgrade_rest), 10);
  send_raw(&f, "ping");
  wait_for(&f, "ping", 1);
  EXPECT_EQ(eddy_http_server_connections(f.srv), 0);
  eddy_buf_free(&upgrade_rest);
  teardown(&f);
  test_peer_free(&upgraded);
}

/* The client went first: EDDY_ECLOSED, the exchange is gone. */
Test(http_server, an_upgrade_after_the_client_went_is_eddy_eclosed) {
  fixture f;
  upgrade_reset();
  held = NULL;
  nheld = gone = 0;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /watch HTTP/1.1\r\nHost: t\r\n\r\n");
  cr_assert(run_until(f.loop, &nheld));
  close(f.fd);
  f.fd = -1;
  cr_assert(run_until(f.loop, &gone));
  take_over(held, NULL);
  EXPECT_EQ(upgrade_rc, EDDY_ECLOSED);
  eddy_http_server_free(f.srv);
  test_finish(f.loop);
}

/* No memory for the head or the bytes after: -ENOMEM, the connection is
 * aborted, nothing leaks. */
Test(http_server, an_upgrade_without_memory_aborts_the_connection) {
  fixture f;
  upgrade_reset();
  held = NULL;
  nheld = 0;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nafter");
  cr_assert(run_until(f.loop, &nheld));
  upgrade_without_memory = 1;
  take_over(held, NULL);
  eddy__fault_reset();
  EXPECT_EQ(upgrade_rc, -ENOMEM);
  wait_closed(&f);
  cr_expect(strstr(f.got, "101") == NULL);
  eddy_buf_free(&upgrade_rest);
  teardown(&f);
}

/* ---- Framed writes ------------------------------------------------------------- */

static int frees;
static void count_free(void *p) {
  (void)p;
  frees++;
}

static void framed(eddy_http_exchange *x, void *arg) {
  static char chunk[] = "5\r\nhello\r\n";
  (void)arg;
  EXPECT_EQ(eddy_http_write_framed(x, chunk, 10, count_free), -EINVAL);
  EXPECT_OK(eddy_http_begin(x, 200, "text/plain"));
  cr_expect(eddy_http_chunked_response(x) == 1);
  EXPECT_OK(eddy_http_write_framed(x, chunk, 10, count_free));
  EXPECT_OK(eddy_http_write(x, "world", 5));
  EXPECT_OK(eddy_http_end(x));
}

/* Started and written in the pass that read the request: the head goes
 * first, then the framed bytes, then what eddy_http_write framed itself;
 * each free function runs once. */
Test(http_server, framed_writes_follow_the_head_in_order) {
  fixture f;
  frees = 0;
  setup(&f, test_loop(), NULL);
  EXPECT_OK(eddy_http_route(f.srv, "GET", "/framed", framed, NULL));
  send_raw(&f, "GET /framed HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_for(&f, "0\r\n\r\n", 1);
  cr_expect(strstr(f.got,
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\n"
                   "world\r\n0\r\n\r\n") != NULL,
            "%s", f.got);
  EXPECT_EQ(frees, 2);
  teardown(&f);
}

/* After the client went: EDDY_ECLOSED, and the bytes are freed. */
Test(http_server, a_framed_write_after_the_client_went_is_eddy_eclosed) {
  fixture f;
  static char chunk[] = "1\r\nx\r\n";
  frees = 0;
  held = NULL;
  nheld = gone = 0;
  setup(&f, test_loop(), NULL);
  routes(f.srv);
  send_raw(&f, "GET /watch HTTP/1.1\r\nHost: t\r\n\r\n");
  cr_assert(run_until(f.loop, &nheld));
  EXPECT_OK(eddy_http_begin(held, 200, NULL));
  close(f.fd);
  f.fd = -1;
  cr_assert(run_until(f.loop, &gone));
  EXPECT_EQ(eddy_http_write_framed(held, chunk, 6, count_free), EDDY_ECLOSED);
  EXPECT_EQ(frees, 1);
  EXPECT_OK(eddy_http_end(held));
  eddy_http_server_free(f.srv);
  test_finish(f.loop);
}
