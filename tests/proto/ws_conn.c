/* WebSocket connections: eddy's client and server over loopback in one
 * process (messages, deflate, subprotocols, shared frames, ping/pong, both
 * close directions, limits), the server against raw frames written by
 * hand over a socketpair (keep-alive and close timeouts, frames with the
 * request), handshake refusals seen by the client, and allocation and
 * write failures injected on both sides. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "helpers.h"
#include "tls/tls_test.h"

#define MS EDDY_NSEC_PER_MSEC

typedef struct side {
  eddy_ws *ws;
  int opens, open_status;
  char detail[200];
  int messages, last_op;
  char *last;
  size_t last_len;
  int pings, pongs, drains;
  int closes, code, status;
  char reason[200];
  int echo;
} side;

static side S, C; /* server, client */
static eddy_ws_options srv_opt;
static int accept_rc, accepts;

static void on_open(eddy_ws *ws, int status, const char *detail, void *arg) {
  side *s = arg;
  (void)ws;
  s->opens++;
  s->open_status = status;
  snprintf(s->detail, sizeof s->detail, "%s", detail);
  if (status < 0)
    s->ws = NULL;
}

static void on_message(eddy_ws *ws, int op, const char *d, size_t n,
                       void *arg) {
  side *s = arg;
  s->messages++;
  s->last_op = op;
  free(s->last);
  s->last = malloc(n + 1);
  memcpy(s->last, d, n + 1); /* the NUL after the message included */
  s->last_len = n;
  if (s->echo)
    EXPECT_OK(eddy_ws_send(ws, op, d, n));
}

static void on_ping(eddy_ws *ws, const char *d, size_t n, void *arg) {
  (void)ws, (void)d, (void)n;
  ((side *)arg)->pings++;
}

static void on_pong(eddy_ws *ws, const char *d, size_t n, void *arg) {
  (void)ws, (void)d, (void)n;
  ((side *)arg)->pongs++;
}

static void on_drain(eddy_ws *ws, void *arg) {
  (void)ws;
  ((side *)arg)->drains++;
}

static void on_close(eddy_ws *ws, int code, const char *reason, int status,
                     void *arg) {
  side *s = arg;
  (void)ws;
  s->closes++;
  s->code = code;
  s->status = status;
  snprintf(s->reason, sizeof s->reason, "%s", reason);
  s->ws = NULL;
}

static const eddy_ws_callbacks cbs = {on_open, on_message, on_ping,
                                      on_pong, on_drain,   on_close};

static void ws_route(eddy_http_exchange *x, void *arg) {
  (void)arg;
  accepts++;
  accept_rc = eddy_ws_accept(x, &srv_opt, &cbs, &S, &S.ws);
}

static void reset(void) {
  free(S.last);
  free(C.last);
  memset(&S, 0, sizeof S);
  memset(&C, 0, sizeof C);
  memset(&srv_opt, 0, sizeof srv_opt);
  accept_rc = 1;
  accepts = 0;
}

/* ---- Loopback: eddy's client against eddy's server ------------------------- */

typedef struct net {
  eddy_loop *loop;
  eddy_http_server *srv;
  eddy_listener *l;
  char ep[64];
} net;

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  (void)l;
  EXPECT_OK(eddy_http_server_serve(arg, s));
}

static void net_up(net *n) {
  char err[200];
  reset();
  n->loop = test_loop();
  EXPECT_OK(eddy_http_server_new(n->loop, NULL, &n->srv));
  EXPECT_OK(eddy_http_route(n->srv, "GET", "/ws", ws_route, NULL));
  EXPECT_OK(eddy_listen(n->loop, "tcp:0:interface=127.0.0.1", on_accept, n->srv,
                        &n->l, err, sizeof err));
  snprintf(n->ep, sizeof n->ep, "tcp:127.0.0.1:%d", eddy_listener_port(n->l));
}

static void net_down(net *n) {
  eddy_listener_close(n->l);
  eddy_loop_close_all(n->loop);
  EXPECT_GE(eddy_loop_run(n->loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_http_server_free(n->srv);
  test_finish(n->loop);
  reset();
}

static void client_up(net *n, const eddy_ws_options *o) {
  char err[200];
  eddy_ws_options o2;
  if (o)
    o2 = *o;
  else
    memset(&o2, 0, sizeof o2);
  if (o2.path == NULL)
    o2.path = "/ws";
  EXPECT_OK(
      eddy_ws_connect(n->loop, n->ep, &o2, &cbs, &C, &C.ws, err, sizeof err));
  cr_assert(test_run_until(n->loop, &C.opens));
}

static int wait_count(eddy_loop *loop, const int *counter, int want) {
  int64_t end = test_clock_ms() + 10000;
  while (*counter < want && test_clock_ms() < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  return *counter >= want;
}

Test(ws_conn, messages_both_ways_then_a_clean_close_from_the_client) {
  net n;
  static const char *const protos[] = {"chat", "v2"};
  static const char *const offer[] = {"v2", "chat"};
  eddy_ws_options co = {.subprotocols = offer,
                        .nsubprotocols = 2,
                        .path = "/ws",
                        .origin = "http://t"};
  char *big = malloc(300000);
  net_up(&n);
  srv_opt.subprotocols = protos;
  srv_opt.nsubprotocols = 2;
  for (size_t i = 0; i < 300000; i++)
    big[i] = (char)('a' + i % 23);
  client_up(&n, &co);
  EXPECT_OK(C.open_status);
  EXPECT_OK(accept_rc);
  EXPECT_STR(eddy_ws_subprotocol(C.ws), "chat"); /* the server's order */
  EXPECT_STR(eddy_ws_subprotocol(S.ws), "chat");
  EXPECT_EQ(eddy_ws_deflate(C.ws), 0);
  S.echo = 1;
  EXPECT_OK(eddy_ws_send_text(C.ws, "héllo", 6));
  cr_assert(wait_count(n.loop, &C.messages, 1));
  EXPECT_EQ(C.last_op, EDDY_WS_TEXT);
  EXPECT_STR(C.last, "héllo");
  EXPECT_OK(eddy_ws_send_binary(C.ws, big, 300000));
  cr_assert(wait_count(n.loop, &C.messages, 2));
  EXPECT_EQ(C.last_len, 300000);
  cr_expect(memcmp(C.last, big, 300000) == 0);
  /* Fragments sent by the client arrive as one message. */
  EXPECT_OK(eddy_ws_send_fragment(C.ws, EDDY_WS_TEXT, "one ", 4, 0));
  EXPECT_EQ(eddy_ws_send_text(C.ws, "x", 1), -EINVAL);
  EXPECT_EQ(eddy_ws_send_fragment(C.ws, EDDY_WS_TEXT, "x", 1, 0), -EINVAL);
  EXPECT_OK(eddy_ws_send_fragment(C.ws, EDDY_WS_CONT, "two", 3, 1));
  EXPECT_EQ(eddy_ws_send_fragment(C.ws, EDDY_WS_CONT, "x", 1, 1), -EINVAL);
  cr_assert(wait_count(n.loop, &C.messages, 3));
  EXPECT_STR(C.last, "one two");
  EXPECT_OK(eddy_ws_close(C.ws, 1000, "done"));
  EXPECT_EQ(eddy_ws_close(C.ws, 1000, NULL), EDDY_ECLOSED);
  EXPECT_EQ(eddy_ws_send_text(C.ws, "late", 4), EDDY_ECLOSED);
  cr_assert(wait_count(n.loop, &C.closes, 1));
  cr_assert(wait_count(n.loop, &S.closes, 1));
  EXPECT_EQ(S.code, 1000);
  EXPECT_STR(S.reason, "done");
  EXPECT_OK(S.status);
  EXPECT_EQ(C.code, 1000);
  EXPECT_OK(C.status);
  EXPECT_EQ(C.closes, 1);
  free(big);
  net_down(&n);
}

Test(ws_conn, the_server_closes_with_a_code_and_reason) {
  net n;
  net_up(&n);
  client_up(&n, NULL);
  EXPECT_OK(eddy_ws_close(S.ws, 4001, "going"));
  cr_assert(wait_count(n.loop, &C.closes, 1));
  cr_assert(wait_count(n.loop, &S.closes, 1));
  EXPECT_EQ(C.code, 4001);
  EXPECT_STR(C.reason, "going");
  EXPECT_OK(C.status);
  EXPECT_EQ(S.code, 4001);
  EXPECT_OK(S.status);
  net_down(&n);
}

Test(ws_conn, close_arguments_are_checked) {
  net n;
  char long_reason[200];
  net_up(&n);
  client_up(&n, NULL);
  memset(long_reason, 'r', sizeof long_reason - 1);
  long_reason[sizeof long_reason - 1] = '\0';
  EXPECT_EQ(eddy_ws_close(C.ws, 1005, NULL), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 1006, NULL), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 1015, NULL), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 999, NULL), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 5000, NULL), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 1000, long_reason), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 1000, "\xff"), -EINVAL);
  EXPECT_EQ(eddy_ws_close(C.ws, 0, "reason without code"), -EINVAL);
  EXPECT_EQ(eddy_ws_ping(C.ws, long_reason, 126), -EINVAL);
  EXPECT_EQ(eddy_ws_send(C.ws, EDDY_WS_PING, "x", 1), -EINVAL);
  EXPECT_OK(eddy_ws_close(C.ws, 0, NULL)); /* no code: 1005 reported */
  cr_assert(wait_count(n.loop, &S.closes, 1));
  EXPECT_EQ(S.code, 1005);
  cr_assert(wait_count(n.loop, &C.closes, 1));
  EXPECT_EQ(C.code, 1005);
  net_down(&n);
}

Test(ws_conn, pings_are_answered_and_pongs_recorded) {
  net n;
  net_up(&n);
  client_up(&n, NULL);
  EXPECT_EQ(eddy_ws_last_pong(C.ws), -1);
  EXPECT_OK(eddy_ws_ping(C.ws, "abc", 3));
  cr_assert(wait_count(n.loop, &C.pongs, 1));
  EXPECT_EQ(S.pings, 1);
  EXPECT_GE(eddy_ws_last_pong(C.ws), 0);
  EXPECT_OK(eddy_ws_ping(S.ws, NULL, 0));
  cr_assert(wait_count(n.loop, &S.pongs, 1));
  net_down(&n);
}

Test(ws_conn, a_message_over_the_servers_limit_is_1009) {
  net n;
  char buf[2000];
  net_up(&n);
  srv_opt.max_message = 1000;
  client_up(&n, NULL);
  memset(buf, 'z', sizeof buf);
  S.echo = 1;
  EXPECT_OK(eddy_ws_send_binary(C.ws, buf, 1000));
  cr_assert(wait_count(n.loop, &C.messages, 1));
  EXPECT_OK(eddy_ws_send_binary(C.ws, buf, 1001));
  cr_assert(wait_count(n.loop, &S.closes, 1));
  cr_assert(wait_count(n.loop, &C.closes, 1));
  EXPECT_EQ(S.code, 1009);
  EXPECT_EQ(S.status, -EMSGSIZE);
  EXPECT_EQ(C.code, 1009);
  net_down(&n);
}

static int freed;
static void count_free(void *p) {
  freed++;
  free(p);
}

Test(ws_conn, deflate_negotiated_and_one_shared_frame_sent_to_two_clients) {
  net n;
  eddy_ws_options co = {.deflate = 1};
  eddy_ws_compressor *z;
  eddy_buf frame;
  eddy_ws *s1, *c1;
  char msg[4000];
  int c1_messages;
  net_up(&n);
  srv_opt.deflate = 1;
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = "shared "[i % 7];
  client_up(&n, &co);
  cr_assert(wait_count(n.loop, &accepts, 1));
  s1 = S.ws;
  c1 = C.ws;
  /* The second client gets its own records; the first keeps its ws. */
  side first = C;
  C.opens = 0;
  C.ws = NULL;
  co.path = "/ws";
  EXPECT_OK(eddy_ws_connect(n.loop, n.ep, &co, &cbs, &C, &C.ws, NULL, 0));
  cr_assert(test_run_until(n.loop, &C.opens));
  eddy_ws_set_arg(c1, &first);
  EXPECT_EQ(eddy_ws_deflate(c1), 1);
  EXPECT_EQ(eddy_ws_deflate(s1), 1);
  EXPECT_OK(eddy_ws_compressor_new(-1, 15, &z));
  EXPECT_EQ(eddy_ws_deflate_ok(s1, z), 1);
  EXPECT_EQ(eddy_ws_deflate_ok(S.ws, z), 1);
  eddy_buf_init(&frame, 0);
  EXPECT_OK(eddy_ws_encode(&frame, EDDY_WS_TEXT, msg, sizeof msg, z));
  /* One block, queued on both connections. */
  freed = 0;
  char *block = malloc(eddy_buf_len(&frame));
  memcpy(block, eddy_buf_data(&frame), eddy_buf_len(&frame));
  EXPECT_OK(eddy_ws_send_frame_owned(s1, block, eddy_buf_len(&frame), NULL));
  EXPECT_OK(
      eddy_ws_send_frame_owned(S.ws, block, eddy_buf_len(&frame), count_free));
  c1_messages = 0;
  cr_assert(wait_count(n.loop, &C.messages, 1));
  cr_assert(wait_count(n.loop, &first.messages, 1));
  (void)c1_messages;
  EXPECT_EQ(C.last_len, sizeof msg);
  cr_expect(memcmp(C.last, msg, sizeof msg) == 0);
  EXPECT_EQ(first.last_len, sizeof msg);
  EXPECT_EQ(freed, 1);
  /* Compressed messages from a client inflate on the server. */
  S.echo = 1;
  EXPECT_OK(eddy_ws_send_text(C.ws, msg, sizeof msg));
  cr_assert(wait_count(n.loop, &C.messages, 2));
  EXPECT_EQ(C.last_len, sizeof msg);
  /* Not on a client connection. */
  char *x = malloc(4);
  freed = 0;
  EXPECT_EQ(eddy_ws_send_frame_owned(C.ws, x, 4, count_free), -EINVAL);
  EXPECT_EQ(freed, 1);
  eddy_buf_free(&frame);
  eddy_ws_compressor_free(z);
  free(first.last);
  net_down(&n);
}

Test(ws_conn, refusals_reach_the_clients_open_callback) {
  net n;
  eddy_ws_options co = {.origin = "http://evil"};
  net_up(&n);
  srv_opt.check_origin = NULL;
  /* A path with no route: 404. */
  eddy_ws_options bad_path = {.path = "/nowhere"};
  client_up(&n, &bad_path);
  EXPECT_EQ(C.open_status, EDDY_EHTTP);
  cr_expect(strstr(C.detail, "404") != NULL, "%s", C.detail);
  net_down(&n);
  (void)co;
}

static int no_evil(const char *origin, size_t len, void *arg) {
  (void)arg;
  return !(origin && len == 11 && memcmp(origin, "http://evil", 11) == 0);
}

Test(ws_conn, an_origin_refused_by_the_hook_is_403) {
  net n;
  eddy_ws_options co = {.origin = "http://evil"};
  net_up(&n);
  srv_opt.check_origin = no_evil;
  client_up(&n, &co);
  EXPECT_EQ(C.open_status, EDDY_EHTTP);
  cr_expect(strstr(C.detail, "403") != NULL, "%s", C.detail);
  EXPECT_EQ(accept_rc, EDDY_EHTTP);
  net_down(&n);
}

Test(ws_conn, connecting_to_nothing_and_cancelling) {
  net n;
  char err[200];
  net_up(&n);
  /* A port nobody listens on: the listener's, closed. */
  eddy_listener_close(n.l);
  n.l = NULL;
  EXPECT_OK(
      eddy_ws_connect(n.loop, n.ep, NULL, &cbs, &C, &C.ws, err, sizeof err));
  cr_assert(test_run_until(n.loop, &C.opens));
  EXPECT_EQ(C.open_status, -ECONNREFUSED);
  C.opens = 0;
  EXPECT_OK(
      eddy_ws_connect(n.loop, n.ep, NULL, &cbs, &C, &C.ws, err, sizeof err));
  eddy_ws_abort(C.ws);
  eddy_ws_abort(C.ws);
  cr_assert(test_run_until(n.loop, &C.opens));
  EXPECT_EQ(C.open_status, -ECANCELED);
  EXPECT_EQ(C.opens, 1);
  EXPECT_EQ(eddy_ws_connect(n.loop, "bogus:1", NULL, &cbs, &C, &C.ws, err,
                            sizeof err),
            EDDY_EPARSE);
  eddy_ws_options bad = {.path = "no-slash"};
  EXPECT_EQ(eddy_ws_connect(n.loop, "tcp:127.0.0.1:1", &bad, &cbs, &C, &C.ws,
                            err, sizeof err),
            -EINVAL);
  eddy_loop_close_all(n.loop);
  EXPECT_GE(eddy_loop_run(n.loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_http_server_free(n.srv);
  test_finish(n.loop);
  reset();
}

/* ---- The server against raw bytes ---------------------------------------------- */

typedef struct raw {
  eddy_loop *loop;
  eddy_http_server *srv;
  int fd;
  char got[4096];
  size_t n;
  int closed;
} raw;

static const char REQ[] =
    "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/* Runs the loop and reads the raw end for up to 5 s, until the bytes hold
 * what (or the end). */
static void raw_wait(raw *r, const char *what, size_t wlen) {
  int64_t end = test_clock_ms() + 5000;
  while (!r->closed && test_clock_ms() < end &&
         (what == NULL || memmem(r->got, r->n, what, wlen) == NULL)) {
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    EXPECT_GE(eddy_loop_run(r->loop, EDDY_RUN_NOWAIT), 0);
    if (poll(&p, 1, 2) == 1) {
      ssize_t k = recv(r->fd, r->got + r->n, sizeof r->got - r->n,
                       MSG_DONTWAIT);
      if (k <= 0)
        r->closed = 1;
      else
        r->n += (size_t)k;
    }
  }
}

static void raw_up(raw *r, const char *first, size_t len) {
  int sv[2];
  eddy_stream *s;
  reset();
  memset(r, 0, sizeof *r);
  r->loop = test_loop();
  test_socketpair(sv);
  EXPECT_OK(eddy_http_server_new(r->loop, NULL, &r->srv));
  EXPECT_OK(eddy_http_route(r->srv, "GET", "/ws", ws_route, NULL));
  EXPECT_OK(eddy_stream_open(r->loop, sv[0], NULL, NULL, &s));
  EXPECT_OK(eddy_http_server_serve(r->srv, s));
  r->fd = sv[1];
  cr_assert(write(r->fd, first, len) == (ssize_t)len);
}

static void raw_down(raw *r) {
  close(r->fd);
  eddy_loop_close_all(r->loop);
  EXPECT_GE(eddy_loop_run(r->loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_http_server_free(r->srv);
  test_finish(r->loop);
  reset();
}

Test(ws_raw, frames_sent_with_the_request_are_read_after_accept_returns) {
  raw r;
  char req[400];
  size_t len = strlen(REQ);
  memcpy(req, REQ, len);
  /* A masked "hi" right behind the head. */
  memcpy(req + len,
         "\x81\x82\x01\x02\x03\x04"
         "hi",
         8);
  req[len + 6] = 'h' ^ 1;
  req[len + 7] = 'i' ^ 2;
  raw_up(&r, req, len + 8);
  S.echo = 1;
  raw_wait(&r, "\x81\x02hi", 4);
  cr_expect(memmem(r.got, r.n, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) != NULL);
  EXPECT_EQ(S.messages, 1);
  EXPECT_STR(S.last, "hi");
  raw_down(&r);
}

Test(ws_raw, a_silent_peer_is_dropped_after_the_pong_timeout) {
  raw r;
  raw_up(&r, REQ, strlen(REQ));
  srv_opt.ping_interval_ns = 30 * MS;
  srv_opt.pong_timeout_ns = 60 * MS;
  raw_wait(&r, "\x89", 1); /* the ping, never answered */
  cr_assert(wait_count(r.loop, &S.closes, 1));
  EXPECT_EQ(S.code, 1006);
  EXPECT_EQ(S.status, -ETIMEDOUT);
  raw_down(&r);
}

Test(ws_raw, an_unanswered_close_ends_after_the_close_timeout) {
  raw r;
  raw_up(&r, REQ, strlen(REQ));
  srv_opt.close_timeout_ns = 50 * MS;
  cr_assert(wait_count(r.loop, &accepts, 1));
  EXPECT_OK(eddy_ws_close(S.ws, 1001, "bye"));
  cr_assert(wait_count(r.loop, &S.closes, 1));
  EXPECT_EQ(S.code, 1001);
  EXPECT_EQ(S.status, -ETIMEDOUT);
  raw_down(&r);
}

Test(ws_raw, a_peer_that_vanishes_is_1006) {
  raw r;
  raw_up(&r, REQ, strlen(REQ));
  cr_assert(wait_count(r.loop, &accepts, 1));
  close(r.fd);
  r.fd = -1;
  cr_assert(wait_count(r.loop, &S.closes, 1));
  EXPECT_EQ(S.code, 1006);
  EXPECT_LT(S.status, 0);
  raw_down(&r);
}

Test(ws_raw, refused_handshakes_answer_400_426_and_accept_reports_it) {
  static const char *const bad[] = {
      "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
      "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 12\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  };
  static const char *const want[] = {"HTTP/1.1 400", "HTTP/1.1 426",
                                     "HTTP/1.1 400"};
  for (int i = 0; i < 3; i++) {
    raw r;
    raw_up(&r, bad[i], strlen(bad[i]));
    raw_wait(&r, "\r\n\r\n", 4);
    cr_expect(strncmp(r.got, want[i], 12) == 0, "%.*s", (int)r.n, r.got);
    if (i == 1)
      cr_expect(memmem(r.got, r.n, "Sec-WebSocket-Version: 13", 25) != NULL);
    EXPECT_EQ(accept_rc, EDDY_EHTTP);
    raw_down(&r);
  }
}

/* ---- Faults ----------------------------------------------------------------------- */

static int fault_nth;
static void ws_route_faulty(eddy_http_exchange *x, void *arg) {
  (void)arg;
  accepts++;
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, (uint64_t)fault_nth, ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, (uint64_t)fault_nth, ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, (uint64_t)fault_nth, ENOMEM);
  accept_rc = eddy_ws_accept(x, &srv_opt, &cbs, &S, &S.ws);
  eddy__fault_reset();
}

Test(ws_fault, accept_without_memory_is_enomem_at_every_allocation) {
  int ok = 0;
  for (fault_nth = 1; fault_nth < 30 && !ok; fault_nth++) {
    raw r;
    int sv[2];
    eddy_stream *s;
    reset();
    memset(&r, 0, sizeof r);
    r.loop = test_loop();
    test_socketpair(sv);
    EXPECT_OK(eddy_http_server_new(r.loop, NULL, &r.srv));
    EXPECT_OK(eddy_http_route(r.srv, "GET", "/ws", ws_route_faulty, NULL));
    EXPECT_OK(eddy_stream_open(r.loop, sv[0], NULL, NULL, &s));
    EXPECT_OK(eddy_http_server_serve(r.srv, s));
    r.fd = sv[1];
    cr_assert(write(r.fd, REQ, strlen(REQ)) == (ssize_t)strlen(REQ));
    cr_assert(wait_count(r.loop, &accepts, 1));
    cr_expect(accept_rc == 0 || accept_rc == -ENOMEM ||
                  accept_rc == EDDY_ECLOSED,
              "nth %d: %d", fault_nth, accept_rc);
    if (accept_rc == 0) {
      raw_wait(&r, "\r\n\r\n", 4);
      cr_expect(strncmp(r.got, "HTTP/1.1 101", 12) == 0);
      ok = 1;
    } else {
      /* Answered 503 (the connection stays), or aborted. */
      raw_wait(&r, "\r\n\r\n", 4);
      cr_expect(r.closed || strncmp(r.got, "HTTP/1.1 503", 12) == 0,
                "nth %d: %.*s", fault_nth, (int)r.n, r.got);
    }
    raw_down(&r);
  }
  cr_expect(ok, "accept never succeeded");
}

Test(ws_fault, connect_without_memory_is_enomem_and_leaks_nothing) {
  int ok = 0;
  for (int nth = 1; nth < 20 && !ok; nth++) {
    net n;
    int rc;
    net_up(&n);
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, (uint64_t)nth, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, (uint64_t)nth, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_REALLOC, (uint64_t)nth, ENOMEM);
    eddy_ws_options co = {.path = "/ws"};
    rc = eddy_ws_connect(n.loop, n.ep, &co, &cbs, &C, &C.ws, NULL, 0);
    eddy__fault_reset();
    cr_expect(rc == 0 || rc == -ENOMEM, "nth %d: %d", nth, rc);
    if (rc == 0) {
      cr_assert(test_run_until(n.loop, &C.opens));
      EXPECT_OK(C.open_status);
      ok = 1;
    }
    net_down(&n);
  }
  cr_expect(ok);
}

Test(ws_fault, memory_failures_while_receiving_are_1011) {
  net n;
  char buf[100000];
  net_up(&n);
  client_up(&n, NULL);
  memset(buf, 'm', sizeof buf);
  EXPECT_OK(eddy_ws_send_binary(C.ws, buf, sizeof buf));
  /* Sent (or queued): now the server's message buffer cannot grow. */
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  cr_assert(wait_count(n.loop, &S.closes, 1));
  eddy__fault_reset();
  EXPECT_EQ(S.code, 1011);
  EXPECT_EQ(S.status, -ENOMEM);
  cr_assert(wait_count(n.loop, &C.closes, 1));
  EXPECT_EQ(C.code, 1011);
  net_down(&n);
}

Test(ws_fault, a_write_failure_is_reported_by_the_send_and_the_close) {
  net n;
  net_up(&n);
  client_up(&n, NULL);
  eddy__fault_fail_after(EDDY__SYS_SENDMSG, 1, EPIPE);
  eddy__fault_fail_after(EDDY__SYS_WRITEV, 1, EPIPE);
  eddy__fault_fail_after(EDDY__SYS_WRITE, 1, EPIPE);
  EXPECT_EQ(eddy_ws_send_text(S.ws, "lost", 4), -EPIPE);
  cr_assert(wait_count(n.loop, &S.closes, 1));
  eddy__fault_reset();
  EXPECT_EQ(S.code, 1006);
  EXPECT_EQ(S.status, -EPIPE);
  cr_assert(wait_count(n.loop, &C.closes, 1));
  net_down(&n);
}

Test(ws_conn, a_server_keeping_its_context_compresses_repeats_better) {
  net n;
  eddy_ws_options co = {.deflate = 1};
  char msg[2000];
  net_up(&n);
  srv_opt.deflate = 1;
  srv_opt.deflate_context_takeover = 1;
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (char)('a' + (i * 7919) % 26);
  client_up(&n, &co);
  cr_assert(wait_count(n.loop, &accepts, 1));
  EXPECT_EQ(eddy_ws_deflate(S.ws), 1);
  EXPECT_OK(eddy_ws_send_text(S.ws, msg, sizeof msg));
  EXPECT_OK(eddy_ws_send_text(S.ws, msg, sizeof msg));
  cr_assert(wait_count(n.loop, &C.messages, 2));
  EXPECT_EQ(C.last_len, sizeof msg);
  cr_expect(memcmp(C.last, msg, sizeof msg) == 0);
  /* Shared frames need no context: not for this connection. */
  eddy_ws_compressor *z;
  EXPECT_OK(eddy_ws_compressor_new(-1, 15, &z));
  EXPECT_EQ(eddy_ws_deflate_ok(S.ws, z), 0);
  eddy_ws_compressor_free(z);
  net_down(&n);
}

Test(ws_conn, a_slow_reader_raises_over_high_then_drain) {
  net n;
  size_t big = 8 << 20;
  char *buf = calloc(1, big);
  eddy_ws_options co = {.max_message = 16 << 20};
  net_up(&n);
  client_up(&n, &co);
  cr_assert(wait_count(n.loop, &accepts, 1));
  EXPECT_OK(eddy_ws_send_binary(S.ws, buf, big));
  EXPECT_EQ(eddy_ws_over_high(S.ws), 1);
  EXPECT_GT(eddy_ws_buffered(S.ws), 0);
  cr_assert(wait_count(n.loop, &S.drains, 1));
  cr_assert(wait_count(n.loop, &C.messages, 1));
  EXPECT_EQ(C.last_len, big);
  EXPECT_EQ(eddy_ws_over_high(S.ws), 0);
  free(buf);
  net_down(&n);
}

/* ---- The client against a hand-written server ------------------------------------ */

typedef struct fake {
  eddy_loop *loop;
  int lfd, fd;
  char ep[64];
  char req[4096];
  size_t n;
} fake;

static void fake_up(fake *f) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof a;
  reset();
  memset(f, 0, sizeof *f);
  f->loop = test_loop();
  f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert(bind(f->lfd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(listen(f->lfd, 4) == 0);
  cr_assert(getsockname(f->lfd, (struct sockaddr *)&a, &len) == 0);
  snprintf(f->ep, sizeof f->ep, "tcp:127.0.0.1:%d", ntohs(a.sin_port));
  f->fd = -1;
}

/* Connects the client, accepts it and reads its request. */
static void fake_accept(fake *f, const eddy_ws_options *o) {
  int64_t end = test_clock_ms() + 5000;
  EXPECT_OK(eddy_ws_connect(f->loop, f->ep, o, &cbs, &C, &C.ws, NULL, 0));
  while (test_clock_ms() < end && memmem(f->req, f->n, "\r\n\r\n", 4) == NULL) {
    struct pollfd p = {.fd = f->fd < 0 ? f->lfd : f->fd, .events = POLLIN};
    EXPECT_GE(eddy_loop_run(f->loop, EDDY_RUN_NOWAIT), 0);
    if (poll(&p, 1, 2) != 1)
      continue;
    if (f->fd < 0) {
      f->fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    } else {
      ssize_t k = recv(f->fd, f->req + f->n, sizeof f->req - f->n - 1, 0);
      cr_assert(k > 0);
      f->n += (size_t)k;
    }
  }
  f->req[f->n] = '\0';
}

/* The accept key for the client's request. */
static void fake_accept_key(fake *f, char out[32]) {
  const char *k = strstr(f->req, "Sec-WebSocket-Key: ");
  cr_assert(k != NULL);
  EXPECT_OK(eddy_ws_accept_key(k + 19, 24, out, 32));
}

static void fake_send(fake *f, const char *data, size_t len) {
  cr_assert(write(f->fd, data, len) == (ssize_t)len);
}

static void fake_down(fake *f) {
  if (f->fd >= 0)
    close(f->fd);
  close(f->lfd);
  eddy_loop_close_all(f->loop);
  EXPECT_GE(eddy_loop_run(f->loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_finish(f->loop);
  reset();
}

static void answer_101(fake *f, const char *extra, const char *frames,
                       size_t flen) {
  char key[32], head[512];
  int n;
  fake_accept_key(f, key);
  n = snprintf(head, sizeof head,
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
               key, extra);
  memcpy(head + n, frames, flen);
  fake_send(f, head, (size_t)n + flen);
}

Test(ws_client, the_request_and_frames_behind_the_101) {
  fake f;
  eddy_ws_options o = {.path = "/chat?room=1",
                       .origin = "http://o",
                       .host = "example.org"};
  fake_up(&f);
  fake_accept(&f, &o);
  cr_expect(strncmp(f.req, "GET /chat?room=1 HTTP/1.1\r\n", 27) == 0, "%s",
            f.req);
  cr_expect(strstr(f.req, "Host: example.org\r\n") != NULL);
  cr_expect(strstr(f.req, "Origin: http://o\r\n") != NULL);
  cr_expect(strstr(f.req, "Sec-WebSocket-Version: 13\r\n") != NULL);
  answer_101(&f, "", "\x81\x05hello", 7);
  cr_assert(test_run_until(f.loop, &C.opens));
  EXPECT_OK(C.open_status);
  cr_assert(wait_count(f.loop, &C.messages, 1));
  EXPECT_STR(C.last, "hello");
  /* A masked frame from a server: 1002. */
  fake_send(&f, "\x81\x81\x01\x02\x03\x04x", 7);
  cr_assert(wait_count(f.loop, &C.closes, 1));
  EXPECT_EQ(C.code, 1002);
  EXPECT_EQ(C.status, EDDY_EPARSE);
  fake_down(&f);
}

Test(ws_client, bad_answers_fail_the_open) {
  static const char *const extras[] = {
      "Sec-WebSocket-Protocol: never-offered\r\n",
      "Sec-WebSocket-Extensions: permessage-deflate\r\n", /* not offered */
      "Sec-WebSocket-Extensions: x-unknown\r\n",
  };
  for (int i = 0; i < 4; i++) {
    fake f;
    fake_up(&f);
    fake_accept(&f, NULL);
    if (i < 3) {
      answer_101(&f, extras[i], "", 0);
    } else {
      static const char wrong[] =
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n";
      fake_send(&f, wrong, sizeof wrong - 1);
    }
    cr_assert(test_run_until(f.loop, &C.opens));
    EXPECT_EQ(C.open_status, EDDY_EHTTP);
    EXPECT_EQ(C.closes, 0);
    fake_down(&f);
  }
}

Test(ws_client, a_server_that_never_answers_times_out) {
  fake f;
  eddy_ws_options o = {.handshake_timeout_ns = 50 * MS};
  fake_up(&f);
  fake_accept(&f, &o);
  cr_assert(test_run_until(f.loop, &C.opens));
  EXPECT_EQ(C.open_status, -ETIMEDOUT);
  fake_down(&f);
}

Test(ws_conn, over_tls_endpoints) {
  net n;
  char err[300], lep[1200];
  eddy_ws_options co = {.path = "/ws"};
  reset();
  n.loop = test_loop();
  EXPECT_OK(eddy_http_server_new(n.loop, NULL, &n.srv));
  EXPECT_OK(eddy_http_route(n.srv, "GET", "/ws", ws_route, NULL));
  snprintf(lep, sizeof lep,
           "tls:0:interface=127.0.0.1:certKey=%s:privateKey=%s",
           cert("server.pem"), cert("server.key"));
  cr_assert(eddy_listen(n.loop, lep, on_accept, n.srv, &n.l, err, sizeof err) ==
                0,
            "%s", err);
  snprintf(lep, sizeof lep, "tls:host=localhost:port=%d:trustRoots=%s",
           eddy_listener_port(n.l), cert("ca.pem"));
  S.echo = 1;
  EXPECT_OK(
      eddy_ws_connect(n.loop, lep, &co, &cbs, &C, &C.ws, err, sizeof err));
  cr_assert(test_run_until(n.loop, &C.opens));
  cr_assert(C.open_status == 0, "%d %s", C.open_status, C.detail);
  EXPECT_OK(eddy_ws_send_text(C.ws, "over tls", 8));
  cr_assert(wait_count(n.loop, &C.messages, 1));
  EXPECT_STR(C.last, "over tls");
  EXPECT_OK(eddy_ws_close(C.ws, 1000, NULL));
  cr_assert(wait_count(n.loop, &C.closes, 1));
  EXPECT_EQ(C.code, 1000);
  net_down(&n);
}
