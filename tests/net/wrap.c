/* Wrappers: the interface through which a layer (TLS, later others) is put
 * on every stream a listener accepts or a connect makes, without net
 * knowing the layer.
 *
 * The layers here are the test's own: each "wraps" a stream by writing its
 * tag ("A", "B") to it, so the peer sees which layers were applied and in
 * what order, and keeps count of its calls and of live states, so that a
 * leaked reference shows. They reach net through the same table and
 * entry points as TLS (a table passed to eddy__listener_open_with and
 * eddy__connect_with, eddy__listener_wrap). Every wait is bounded by an
 * eddy timer or a socket receive timeout. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "helpers.h"
#include "net/net.h"

/* ---- Two test layers ------------------------------------------------------ */

typedef struct layer_cfg {
  int want;       /* wants() says yes */
  int make_err;   /* make() fails with this */
  int wrap_err;   /* wrap() fails with this ... */
  int wrap_fails; /* ... this many times */
  int makes, wraps, last_server;
  char last_name[64]; /* server_name of the last wrap; "(null)" for NULL */
} layer_cfg;

typedef struct state {
  int refs;
  char tag;
} state;

static layer_cfg cfg_a, cfg_b;
static int live_states;

static state *state_new(char tag) {
  state *st = calloc(1, sizeof *st);
  cr_assert(st != NULL);
  st->refs = 1;
  st->tag = tag;
  live_states++;
  return st;
}

static void st_ref(void *p) {
  ((state *)p)->refs++;
}

static void st_unref(void *p) {
  state *st = p;
  if (st && --st->refs == 0) {
    live_states--;
    free(st);
  }
}

static int make(layer_cfg *c, char tag, int server, void **out, char *err,
                size_t errlen) {
  c->makes++;
  c->last_server = server;
  if (c->make_err) {
    snprintf(err, errlen, "layer %c: no state for this endpoint", tag);
    return c->make_err;
  }
  *out = state_new(tag);
  return 0;
}

static int wrap(layer_cfg *c, void *p, eddy_stream *s, const char *name) {
  state *st = p;
  c->wraps++;
  snprintf(c->last_name, sizeof c->last_name, "%s", name ? name : "(null)");
  if (c->wrap_fails > 0) {
    c->wrap_fails--;
    return c->wrap_err;
  }
  return eddy_stream_write(s, &st->tag, 1);
}

static int wants_a(const eddy_endpoint *ep) {
  (void)ep;
  return cfg_a.want;
}
static int wants_b(const eddy_endpoint *ep) {
  (void)ep;
  return cfg_b.want;
}
static int make_a(const eddy_endpoint *ep, int server, void **st, char *err,
                  size_t errlen) {
  (void)ep;
  return make(&cfg_a, 'A', server, st, err, errlen);
}
static int make_b(const eddy_endpoint *ep, int server, void **st, char *err,
                  size_t errlen) {
  (void)ep;
  return make(&cfg_b, 'B', server, st, err, errlen);
}
static int wrap_a(void *st, eddy_stream *s, const char *name) {
  return wrap(&cfg_a, st, s, name);
}
static int wrap_b(void *st, eddy_stream *s, const char *name) {
  return wrap(&cfg_b, st, s, name);
}

static const eddy__wrap_ops layer_a = {"A",    wants_a, make_a,
                                       wrap_a, st_ref,  st_unref};
static const eddy__wrap_ops layer_b = {"B",    wants_b, make_b,
                                       wrap_b, st_ref,  st_unref};
static const eddy__wrap_ops *const table_a[] = {&layer_a, NULL};
static const eddy__wrap_ops *const table_ab[] = {&layer_a, &layer_b, NULL};

static void reset_layers(void) {
  memset(&cfg_a, 0, sizeof cfg_a);
  memset(&cfg_b, 0, sizeof cfg_b);
  cfg_a.want = cfg_b.want = 1;
  live_states = 0;
}

/* ---- A server and plain clients ---------------------------------------------- */

typedef struct server {
  int accepted, errors, last_err;
  char detail[128];
  eddy_stream *last;
} server;

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  server *sv = arg;
  (void)l;
  sv->accepted++;
  sv->last = s;
}

static void on_error(eddy_listener *l, int err, const char *detail, void *arg) {
  server *sv = arg;
  (void)l;
  sv->errors++;
  sv->last_err = err;
  snprintf(sv->detail, sizeof sv->detail, "%s", detail);
}

static void expired(eddy_timer *t, void *arg) {
  (void)t;
  *(int *)arg = 1;
}

/* Runs the loop until *value reaches want, for at most five seconds. */
static void run_until(eddy_loop *loop, const int *value, int want) {
  eddy_timer *t;
  int over = 0;
  EXPECT_OK(eddy_timer_new(loop, expired, &over, &t));
  EXPECT_OK(eddy_timer_start(t, 5 * EDDY_NSEC_PER_SEC, 0));
  while (*value < want && !over)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  eddy_timer_close(t);
  EXPECT_GE(*value, want);
}

static eddy_listener *
listen_with(eddy_loop *loop, const eddy__wrap_ops *const *table, server *sv) {
  eddy_listener *l = NULL;
  eddy_endpoint ep;
  char err[200];
  EXPECT_OK(eddy_endpoint_parse_server("tcp:0:interface=127.0.0.1", &ep, err,
                                       sizeof err));
  cr_assert(eddy__listener_open_with(loop, &ep, table, on_accept, sv, &l, err,
                                     sizeof err) == 0,
            "%s", err);
  eddy_listener_on_error(l, on_error);
  return l;
}

/* A blocking client whose reads give up after five seconds. */
static int client(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  struct timeval tv = {5, 0};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

/* What the peer received: n bytes exactly, as a string. */
static void expect_read(int fd, const char *want) {
  char buf[16] = {0};
  size_t n = strlen(want), got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    cr_assert(r > 0, "read gave %zd after %zu bytes", r, got);
    got += (size_t)r;
  }
  EXPECT_STR(buf, want);
}

/* ---- Listeners ------------------------------------------------------------------- */

Test(wrap_listener,
     every_accepted_stream_is_wrapped_with_one_state_made_at_open) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l;
  int c1, c2;
  reset_layers();
  l = listen_with(loop, table_a, &sv);
  EXPECT_EQ(cfg_a.makes, 1);
  EXPECT_EQ(cfg_a.last_server, 1);
  EXPECT_EQ(live_states, 1);
  c1 = client(eddy_listener_port(l));
  c2 = client(eddy_listener_port(l));
  run_until(loop, &sv.accepted, 2);
  EXPECT_EQ(cfg_a.wraps, 2);
  EXPECT_STR(cfg_a.last_name, "(null)"); /* an accepted stream has no name */
  expect_read(c1, "A");
  expect_read(c2, "A");
  eddy_listener_close(l);
  close(c1);
  close(c2);
  test_finish(loop);
  EXPECT_EQ(live_states, 0);
}

Test(wrap_listener, an_endpoint_no_layer_wants_is_left_plain) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l;
  int c;
  reset_layers();
  cfg_a.want = 0;
  l = listen_with(loop, table_a, &sv);
  c = client(eddy_listener_port(l));
  run_until(loop, &sv.accepted, 1);
  EXPECT_EQ(cfg_a.makes, 0);
  EXPECT_EQ(cfg_a.wraps, 0);
  EXPECT_OK(eddy_stream_write(sv.last, "plain", 5));
  expect_read(c, "plain");
  eddy_listener_close(l);
  close(c);
  test_finish(loop);
}

Test(wrap_listener, layers_wrap_in_the_order_of_the_table) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l;
  int c;
  reset_layers();
  l = listen_with(loop, table_ab, &sv);
  c = client(eddy_listener_port(l));
  run_until(loop, &sv.accepted, 1);
  expect_read(c, "AB");
  eddy_listener_close(l);
  close(c);
  test_finish(loop);
  EXPECT_EQ(live_states, 0);
}

Test(wrap_listener, a_failing_make_fails_the_open_with_the_layers_sentence) {
  eddy_loop *loop = test_loop();
  eddy_listener *l = NULL;
  eddy_endpoint ep;
  char err[200];
  reset_layers();
  cfg_b.make_err = -EACCES; /* A's state is made first, then dropped */
  EXPECT_OK(eddy_endpoint_parse_server("tcp:0:interface=127.0.0.1", &ep, err,
                                       sizeof err));
  EXPECT_EQ(eddy__listener_open_with(loop, &ep, table_ab, on_accept, NULL, &l,
                                     err, sizeof err),
            -EACCES);
  EXPECT_STR(err, "layer B: no state for this endpoint");
  cr_assert(l == NULL);
  EXPECT_EQ(cfg_a.makes, 1);
  EXPECT_EQ(live_states, 0);
  test_finish(loop);
}

Test(wrap_listener,
     a_failing_wrap_drops_that_connection_and_accepting_goes_on) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l;
  char byte;
  int c1, c2;
  reset_layers();
  cfg_a.wrap_err = -EPROTO;
  cfg_a.wrap_fails = 1;
  l = listen_with(loop, table_a, &sv);
  c1 = client(eddy_listener_port(l));
  run_until(loop, &sv.errors, 1);
  EXPECT_EQ(sv.accepted, 0); /* the program never saw it */
  EXPECT_EQ(sv.last_err, -EPROTO);
  EXPECT_STR(sv.detail, "could not set up an accepted connection");
  EXPECT_LE(read(c1, &byte, 1), 0); /* reset (or closed), not left hanging */
  c2 = client(eddy_listener_port(l));
  run_until(loop, &sv.accepted, 1);
  expect_read(c2, "A");
  EXPECT_EQ(sv.errors, 1);
  eddy_listener_close(l);
  close(c1);
  close(c2);
  test_finish(loop);
  EXPECT_EQ(live_states, 0);
}

Test(wrap_listener, a_layer_set_later_wraps_later_streams_and_can_be_removed) {
  eddy_loop *loop = test_loop();
  server sv = {0};
  eddy_listener *l;
  state *st;
  int c1, c2;
  reset_layers();
  cfg_a.want = 0;
  l = listen_with(loop, table_a, &sv);
  st = state_new('A');
  EXPECT_OK(eddy__listener_wrap(l, &layer_a, st));
  EXPECT_EQ(st->refs, 2); /* the listener holds its own */
  c1 = client(eddy_listener_port(l));
  run_until(loop, &sv.accepted, 1);
  expect_read(c1, "A");
  EXPECT_OK(eddy__listener_wrap(l, &layer_a, NULL));
  EXPECT_EQ(st->refs, 1);
  c2 = client(eddy_listener_port(l));
  run_until(loop, &sv.accepted, 2);
  EXPECT_EQ(cfg_a.wraps, 1);
  st_unref(st);
  eddy_listener_close(l);
  close(c1);
  close(c2);
  test_finish(loop);
  EXPECT_EQ(live_states, 0);
}

/* ---- Connecting ------------------------------------------------------------------- */

/* A listening socket on 127.0.0.1; returns its port. */
static int raw_listener(int *fd) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof a;
  struct timeval tv = {5, 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(*fd, 0);
  cr_assert(setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  cr_assert(bind(*fd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(listen(*fd, 8) == 0);
  cr_assert(getsockname(*fd, (struct sockaddr *)&a, &len) == 0);
  return ntohs(a.sin_port);
}

static eddy_endpoint client_ep(int port) {
  eddy_endpoint ep;
  char text[64], err[200];
  snprintf(text, sizeof text, "tcp:host=127.0.0.1:port=%d", port);
  EXPECT_OK(eddy_endpoint_parse_client(text, &ep, err, sizeof err));
  return ep;
}

static int accept_one(int lfd) {
  struct timeval tv = {5, 0};
  int fd = accept(lfd, NULL, NULL);
  cr_assert(fd >= 0);
  cr_assert(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
  return fd;
}

Test(wrap_connect, the_connected_stream_is_wrapped_for_the_endpoints_host) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd), peer;
  eddy_endpoint ep = client_ep(port);
  test_connect_result r = {0};
  char err[200];
  reset_layers();
  EXPECT_OK(eddy__connect_with(loop, &ep, table_ab, NULL, NULL, test_on_connect,
                               &r, NULL, err, sizeof err));
  EXPECT_EQ(cfg_a.makes, 1);
  EXPECT_EQ(cfg_a.last_server, 0);
  run_until(loop, &r.calls, 1);
  EXPECT_EQ(r.status, 0);
  EXPECT_STR(cfg_a.last_name, "127.0.0.1");
  EXPECT_STR(cfg_b.last_name, "127.0.0.1");
  peer = accept_one(lfd);
  expect_read(peer, "AB");
  EXPECT_EQ(live_states, 0); /* the connect's states went with it */
  eddy_stream_close(r.s);
  close(peer);
  close(lfd);
  test_finish(loop);
}

Test(wrap_connect, a_failing_make_fails_the_call_with_the_layers_sentence) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd);
  eddy_endpoint ep = client_ep(port);
  test_connect_result r = {0};
  char err[200];
  reset_layers();
  cfg_a.make_err = -EACCES;
  EXPECT_EQ(eddy__connect_with(loop, &ep, table_ab, NULL, NULL, test_on_connect,
                               &r, NULL, err, sizeof err),
            -EACCES);
  EXPECT_STR(err, "layer A: no state for this endpoint");
  EXPECT_EQ(cfg_b.makes, 0);
  close(lfd);
  test_finish(loop);
  EXPECT_EQ(r.calls, 0);
  EXPECT_EQ(live_states, 0);
}

Test(wrap_connect, a_failing_wrap_gives_the_callback_the_error) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd), peer;
  eddy_endpoint ep = client_ep(port);
  test_connect_result r = {0};
  char want[64], byte;
  reset_layers();
  cfg_a.want = 0;
  cfg_b.wrap_err = -EPROTO;
  cfg_b.wrap_fails = 1;
  EXPECT_OK(eddy__connect_with(loop, &ep, table_ab, NULL, NULL, test_on_connect,
                               &r, NULL, NULL, 0));
  run_until(loop, &r.calls, 1);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -EPROTO);
  cr_assert(r.s == NULL);
  snprintf(want, sizeof want, "connect to 127.0.0.1 port %d", port);
  cr_assert(strstr(r.detail, want) != NULL, "%s", r.detail);
  /* The stream was aborted: the peer sees the end, not a hang. */
  peer = accept_one(lfd);
  EXPECT_LE(read(peer, &byte, 1), 0);
  close(peer);
  close(lfd);
  test_finish(loop);
  EXPECT_EQ(live_states, 0);
}

Test(wrap_connect, a_given_layer_replaces_what_the_endpoint_asks_for) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd), peer;
  eddy_endpoint ep = client_ep(port);
  test_connect_result r = {0};
  state *st;
  reset_layers();
  st = state_new('B');
  EXPECT_OK(eddy__connect_with(loop, &ep, table_ab, &layer_b, st,
                               test_on_connect, &r, NULL, NULL, 0));
  st_unref(st); /* the connect holds its own reference */
  EXPECT_EQ(cfg_a.makes + cfg_b.makes, 0);
  run_until(loop, &r.calls, 1);
  EXPECT_EQ(r.status, 0);
  peer = accept_one(lfd);
  expect_read(peer, "B");
  EXPECT_EQ(cfg_a.wraps, 0);
  eddy_stream_close(r.s);
  close(peer);
  close(lfd);
  test_finish(loop);
  EXPECT_EQ(live_states, 0);
}

/* ---- The set of wrappers ---------------------------------------------------------- */

static const eddy__wrap_ops layer_c = {"C",    wants_a, make_a,
                                       wrap_a, st_ref,  st_unref};
static const eddy__wrap_ops layer_d = {"D",    wants_a, make_a,
                                       wrap_a, st_ref,  st_unref};
static const eddy__wrap_ops layer_e = {"E",    wants_a, make_a,
                                       wrap_a, st_ref,  st_unref};

Test(
    wrap_set,
    replacing_keeps_the_place_removing_keeps_the_order_and_a_full_set_refuses) {
  eddy__wraps ws = {0};
  const eddy__wrap_ops *four[] = {&layer_a, &layer_b, &layer_c, &layer_d};
  state *st, *other;
  reset_layers();
  st = state_new('x');
  other = state_new('y');
  for (int i = 0; i < 4; i++)
    EXPECT_OK(eddy__wraps_set(&ws, four[i], st));
  EXPECT_EQ(st->refs, 5);
  EXPECT_EQ(eddy__wraps_set(&ws, &layer_e, st), -ENOSPC);
  EXPECT_EQ(st->refs, 5);
  EXPECT_OK(eddy__wraps_set(&ws, &layer_b, other)); /* same place */
  cr_assert(ws.w[1].ops == &layer_b && ws.w[1].state == other);
  EXPECT_OK(eddy__wraps_set(&ws, &layer_b, other)); /* itself again */
  EXPECT_EQ(other->refs, 2);
  EXPECT_OK(eddy__wraps_set(&ws, &layer_a, NULL));
  EXPECT_EQ(ws.n, 3);
  cr_assert(ws.w[0].ops == &layer_b && ws.w[1].ops == &layer_c &&
            ws.w[2].ops == &layer_d);
  EXPECT_OK(eddy__wraps_set(&ws, &layer_e, NULL)); /* absent: nothing */
  EXPECT_EQ(ws.n, 3);
  eddy__wraps_clear(&ws);
  EXPECT_EQ(ws.n, 0);
  EXPECT_EQ(st->refs, 1);
  EXPECT_EQ(other->refs, 1);
  st_unref(st);
  st_unref(other);
  EXPECT_EQ(live_states, 0);
}

Test(wrap_set,
     an_endpoint_wanted_by_more_layers_than_fit_is_refused_naming_the_layer) {
  const eddy__wrap_ops *const five[] = {&layer_a, &layer_b, &layer_c,
                                        &layer_d, &layer_e, NULL};
  eddy__wraps ws;
  eddy_endpoint ep;
  char err[200];
  reset_layers();
  EXPECT_OK(eddy_endpoint_parse_server("tcp:0", &ep, err, sizeof err));
  EXPECT_EQ(eddy__wraps_from_endpoint(&ws, five, &ep, 1, err, sizeof err),
            -ENOSPC);
  EXPECT_STR(err, "E: more than 4 layers on one endpoint");
  EXPECT_EQ(ws.n, 0);
  EXPECT_EQ(live_states, 0); /* the four made are dropped */
}

/* ---- The real table --------------------------------------------------------------- */

/* This program names no TLS symbol, and links libeddy statically: a TLS
 * endpoint still reaches the TLS layer, through the table alone (a layer
 * that registered itself from a constructor would have been left out of
 * the link, and the listener would have opened as plain TCP). */
Test(wrap_table,
     a_tls_endpoint_reaches_its_layer_in_a_program_that_names_none) {
  eddy_loop *loop = test_loop();
  eddy_listener *l = NULL;
  eddy_endpoint ep;
  test_connect_result r = {0};
  char err[512];
  const eddy__wrap_ops *tls = NULL;
  for (const eddy__wrap_ops *const *w = eddy__wrappers; *w; w++)
    if (strcmp((*w)->name, "tls") == 0)
      tls = *w;
  cr_assert(tls != NULL);
  EXPECT_OK(eddy_endpoint_parse_server("tls:0:certKey=/nonexistent/x.pem", &ep,
                                       err, sizeof err));
  EXPECT_EQ(tls->wants(&ep), 1);
  EXPECT_OK(eddy_endpoint_parse_server("tcp:0", &ep, err, sizeof err));
  EXPECT_EQ(tls->wants(&ep), 0);
  EXPECT_EQ(eddy_listen(loop, "tls:0:certKey=/nonexistent/x.pem", on_accept,
                        NULL, &l, err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/x.pem") != NULL, "%s", err);
  EXPECT_EQ(eddy_connect_to(loop,
                            "tls:localhost:1:trustRoots=/nonexistent/ca.pem",
                            test_on_connect, &r, NULL, err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
  test_finish(loop);
  EXPECT_EQ(r.calls, 0);
}
