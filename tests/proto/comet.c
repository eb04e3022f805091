/* Server-sent events and long-polls over real loopback connections to
 * eddy's HTTP server, in the test's own process: the stream's head and
 * framing, heartbeats on the fake clock, Last-Event-ID resumption, both
 * slow-consumer policies against a client that never reads, a hub's
 * block fanned out to many clients and freed once they all have it,
 * long-polls answered by a message, by the history, by the timeout, and
 * a client that goes away; allocation failures at the start. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define SEC EDDY_NSEC_PER_SEC
#define MAXC 64

typedef struct client {
  int fd;
  char *got;
  size_t n, cap;
  int closed;
} client;

typedef struct fixture {
  eddy_loop *loop;
  eddy_http_server *srv;
  eddy_listener *l;
  eddy_comet_hub *hub;
  int port;
  /* what the handlers do */
  eddy_comet_sse_options sse_opts;
  eddy_comet_poll_options poll_opts;
  int follow; /* SSE streams follow the hub's "room" */
  /* what they saw */
  eddy_comet_sse *sse[MAXC];
  int nsse;
  int gone, gone_reason;
  eddy_comet_poll *poll;
  int polls_done, poll_status;
  int fail_kind, start_rc; /* an allocation to fail in a handler */
  int fail_where;          /* the poll: 0 its start, 1 its hub wait */
  uint64_t fail_nth;
} fixture;

static fixture F;

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  (void)l;
  (void)arg;
  EXPECT_OK(eddy_http_server_serve(F.srv, s));
}

static void sse_gone(eddy_comet_sse *sse, int reason, void *arg) {
  (void)arg;
  F.gone++;
  F.gone_reason = reason;
  for (int i = 0; i < F.nsse; i++)
    if (F.sse[i] == sse)
      F.sse[i] = NULL;
  eddy_comet_sse_close(sse);
}

static void events(eddy_http_exchange *x, void *arg) {
  eddy_comet_sse *sse;
  eddy_comet_sse_options o = F.sse_opts;
  int rc;
  (void)arg;
  o.gone = sse_gone;
  if (F.fail_nth)
    eddy__fault_fail_nth(F.fail_kind, F.fail_nth, ENOMEM);
  rc = eddy_comet_sse_start(x, &o, &sse);
  eddy__fault_reset();
  F.start_rc = rc;
  if (rc != 0)
    return;
  F.sse[F.nsse++] = sse;
  if (F.follow)
    EXPECT_OK(eddy_comet_sse_follow(sse, F.hub, "room"));
}

static void poll_done(eddy_comet_poll *p, int status, void *arg) {
  (void)p;
  (void)arg;
  F.polls_done++;
  F.poll_status = status;
  F.poll = NULL;
}

static void long_poll(eddy_http_exchange *x, void *arg) {
  eddy_comet_poll_options o = F.poll_opts;
  uint64_t since = 0;
  int rc;
  (void)arg;
  o.done = poll_done;
  rc = eddy_comet_query_id(x, "since", &since);
  cr_assert(rc == 0 || rc == -ENOENT);
  if (F.fail_nth && F.fail_where == 0)
    eddy__fault_fail_nth(F.fail_kind, F.fail_nth, ENOMEM);
  F.start_rc = eddy_comet_poll_start(x, &o, &F.poll);
  eddy__fault_reset();
  if (F.start_rc != 0)
    return;
  if (F.hub) {
    if (F.fail_nth && F.fail_where == 1)
      eddy__fault_fail_nth(F.fail_kind, F.fail_nth, ENOMEM);
    rc = eddy_comet_poll_hub(F.poll, F.hub, "room", EDDY_COMET_LINE, since);
    eddy__fault_reset();
    F.start_rc = rc;
    if (rc != 0) { /* the poll is still held: the program answers */
      EXPECT_EQ(rc, -ENOMEM);
      EXPECT_EQ(eddy_comet_poll_respond(F.poll, 42, NULL, NULL, 0), -EINVAL);
      EXPECT_OK(eddy_comet_poll_respond(F.poll, 500, NULL, NULL, 0));
      F.poll = NULL;
    }
  }
}

static void setup(eddy_loop *loop, int with_hub) {
  char err[256];
  memset(&F, 0, sizeof F);
  F.loop = loop;
  EXPECT_OK(eddy_http_server_new(loop, NULL, &F.srv));
  EXPECT_OK(eddy_http_route(F.srv, "GET", "/events", events, NULL));
  EXPECT_OK(eddy_http_route(F.srv, "GET", "/poll", long_poll, NULL));
  EXPECT_OK(eddy_listen(loop, "tcp:0:interface=127.0.0.1", on_accept, NULL,
                        &F.l, err, sizeof err));
  F.port = eddy_listener_port(F.l);
  if (with_hub)
    EXPECT_OK(eddy_comet_hub_new(NULL, &F.hub));
}

static void teardown(void) {
  for (int i = 0; i < F.nsse; i++)
    if (F.sse[i])
      eddy_comet_sse_close(F.sse[i]);
  if (F.poll)
    eddy_comet_poll_cancel(F.poll);
  eddy_comet_hub_free(F.hub);
  eddy_listener_close(F.l);
  eddy_http_server_free(F.srv);
  test_finish(F.loop);
}

/* A client on loopback that sends request (rcvbuf > 0: a small receive
 * buffer, set before connecting). */
static void client_open(client *c, const char *request, int rcvbuf) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)F.port)};
  size_t n = strlen(request);
  memset(c, 0, sizeof *c);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(c->fd >= 0);
  if (rcvbuf > 0)
    cr_assert(
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
  cr_assert(connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(write(c->fd, request, n) == (ssize_t)n);
}

static void client_close(client *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  free(c->got);
  c->got = NULL;
}

/* Reads what is there without waiting. */
static void client_read(client *c) {
  for (;;) {
    ssize_t r;
    if (c->cap - c->n < 65536) {
      c->cap = c->cap * 2 + 65536 * 2;
      c->got = realloc(c->got, c->cap);
      cr_assert(c->got != NULL);
    }
    r = recv(c->fd, c->got + c->n, c->cap - c->n - 1, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) {
      c->closed = 1;
      break;
    }
    if (r < 0)
      break;
    c->n += (size_t)r;
  }
  c->got[c->n] = '\0';
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  while (hay && (hay = strstr(hay, needle)) != NULL) {
    n++;
    hay++;
  }
  return n;
}

/* Runs the loop and reads c until its bytes hold `want` copies of what,
 * or it closes, for at most 5 s. */
static void client_wait(client *c, const char *what, int want) {
  int64_t deadline = test_clock_ms() + 5000;
  for (;;) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    client_read(c);
    if ((what && count(c->got, what) >= want) || c->closed)
      return;
    cr_assert(test_clock_ms() < deadline, "waited for %s; got: %s",
              what ? what : "the close", c->got ? c->got : "");
    EXPECT_GE(eddy_loop_run(F.loop, EDDY_RUN_NOWAIT), 0);
    (void)poll(&p, 1, 1);
  }
}

static void run_until(const int *flag, int want) {
  int64_t deadline = test_clock_ms() + 5000;
  while (*flag < want) {
    cr_assert(test_clock_ms() < deadline, "waited for a callback");
    EXPECT_GE(eddy_loop_run(F.loop, EDDY_RUN_NOWAIT), 0);
    (void)poll(NULL, 0, 1);
  }
}

/* Runs a few turns, so that what is due is done. */
static void turns(int n) {
  for (int i = 0; i < n; i++) {
    EXPECT_GE(eddy_loop_run(F.loop, EDDY_RUN_NOWAIT), 0);
    (void)poll(NULL, 0, 1);
  }
}

static const char *GET_EVENTS = "GET /events HTTP/1.1\r\nHost: t\r\n\r\n";

/* ---- Server-sent events ------------------------------------------------------ */

Test(comet, sse_head_and_event_framing) {
  client c;
  eddy_comet_sse *s;
  size_t n;
  setup(test_loop(), 0);
  F.sse_opts.retry_ms = 2500;
  client_open(&c, GET_EVENTS, 0);
  run_until(&F.nsse, 1);
  s = F.sse[0];
  cr_assert(eddy_comet_sse_last_event_id(s, &n) == NULL);
  EXPECT_EQ(eddy_comet_sse_format(s), EDDY_COMET_SSE_CHUNKED);
  /* Sent in the handler's turn, before the head is out: kept in order. */
  EXPECT_OK(eddy_comet_sse_send(s, "greet", "1", "hello", 5));
  EXPECT_EQ(eddy_comet_sse_send(s, "bad\nname", "2", "x", 1), -EINVAL);
  EXPECT_EQ(eddy_comet_sse_send(s, NULL, "2\r", "x", 1), -EINVAL);
  EXPECT_EQ(eddy_comet_sse_comment(s, "a\nb"), -EINVAL);
  EXPECT_EQ(eddy_comet_sse_retry(s, -1), -EINVAL);
  client_wait(&c, "data: hello\n\n", 1);
  EXPECT_OK(eddy_comet_sse_send(s, NULL, "2", "one\r\ntwo\rthree\nfour", 19));
  EXPECT_OK(eddy_comet_sse_comment(s, "note"));
  client_wait(&c, ": note\n\n", 1);
  cr_assert(strncmp(c.got, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", c.got);
  EXPECT_EQ(count(c.got, "Content-Type: text/event-stream\r\n"), 1);
  EXPECT_EQ(count(c.got, "Cache-Control: no-cache\r\n"), 1);
  EXPECT_EQ(count(c.got, "X-Accel-Buffering: no\r\n"), 1);
  EXPECT_EQ(count(c.got, "Transfer-Encoding: chunked\r\n"), 1);
  /* retry first, then the events, each whole in one chunk. */
  cr_assert(strstr(c.got, "\r\nretry: 2500\n\n\r\n") <
                strstr(c.got, "event: greet\nid: 1\ndata: hello\n\n\r\n"),
            "%s", c.got);
  EXPECT_EQ(count(c.got,
                  "\r\nid: 2\ndata: one\ndata: two\ndata: three\n"
                  "data: four\n\n\r\n"),
            1);
  EXPECT_EQ(count(c.got, "data: x"), 0);
  /* Closing ends the response; the connection serves the next request. */
  eddy_comet_sse_close(s);
  F.sse[0] = NULL;
  client_wait(&c, "0\r\n\r\n", 1);
  EXPECT_EQ(F.gone, 0);
  client_close(&c);
  teardown();
}

Test(comet, sse_http10_is_unframed_and_head_has_no_body) {
  client c, h;
  setup(test_loop(), 0);
  client_open(&c, "GET /events HTTP/1.0\r\n\r\n", 0);
  run_until(&F.nsse, 1);
  EXPECT_EQ(eddy_comet_sse_format(F.sse[0]), EDDY_COMET_SSE);
  EXPECT_OK(eddy_comet_sse_send(F.sse[0], NULL, NULL, "plain", 5));
  client_wait(&c, "\r\n\r\ndata: plain\n\n", 1);
  eddy_comet_sse_close(F.sse[0]);
  F.sse[0] = NULL;
  client_wait(&c, NULL, 0); /* an HTTP/1.0 body ends with the connection */
  client_open(&h, "HEAD /events HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  client_wait(&h, "\r\n\r\n", 1);
  turns(3);
  EXPECT_EQ(F.nsse, 1); /* answered and ended: no stream */
  cr_assert(strstr(h.got, "text/event-stream") != NULL);
  EXPECT_EQ(count(h.got, "data:"), 0);
  client_close(&c);
  client_close(&h);
  teardown();
}

Test(comet, sse_heartbeats_after_silence_on_a_fake_clock) {
  client c;
  setup(test_fake_loop(0), 0);
  F.sse_opts.heartbeat_ns = 2 * SEC;
  client_open(&c, GET_EVENTS, 0);
  run_until(&F.nsse, 1);
  client_wait(&c, "\r\n\r\n", 1);
  EXPECT_OK(eddy_loop_advance(F.loop, 2 * SEC));
  client_wait(&c, "3\r\n:\n\n\r\n", 1);
  /* An event resets the silence: no heartbeat one interval after the
   * last one, but one interval after the event. */
  EXPECT_OK(eddy_loop_advance(F.loop, SEC));
  EXPECT_OK(eddy_comet_sse_send(F.sse[0], NULL, NULL, "e", 1));
  client_wait(&c, "data: e\n\n", 1);
  EXPECT_OK(eddy_loop_advance(F.loop, SEC));
  turns(5);
  client_read(&c);
  EXPECT_EQ(count(c.got, ":\n\n"), 1);
  EXPECT_OK(eddy_loop_advance(F.loop, SEC));
  client_wait(&c, "3\r\n:\n\n\r\n", 2);
  client_close(&c);
  teardown();
}

Test(comet, sse_follows_a_hub_and_resumes_from_last_event_id) {
  client c, d;
  eddy_comet_msg m = {.topic = "room", .event = "msg"};
  setup(test_loop(), 1);
  F.follow = 1;
  for (int i = 1; i <= 3; i++) {
    char text[16];
    snprintf(text, sizeof text, "m%d", i);
    m.data = text;
    m.len = strlen(text);
    EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
  }
  client_open(&c, "GET /events HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 1\r\n\r\n",
              0);
  client_wait(&c, "data: m3\n\n", 1);
  EXPECT_EQ(count(c.got, "data: m1\n"), 0);
  EXPECT_EQ(count(c.got, "event: msg\nid: 2\ndata: m2\n\n"), 1);
  {
    size_t n;
    const char *id = eddy_comet_sse_last_event_id(F.sse[0], &n);
    EXPECT_EQ(n, 1);
    EXPECT_EQ(id[0], '1');
  }
  EXPECT_EQ(eddy_comet_sse_follow(F.sse[0], F.hub, "room"), -EALREADY);
  /* Without Last-Event-ID: only what comes from now on. */
  client_open(&d, GET_EVENTS, 0);
  run_until(&F.nsse, 2);
  m.data = "live";
  m.len = 4;
  EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
  client_wait(&c, "id: 4\ndata: live\n\n", 1);
  client_wait(&d, "id: 4\ndata: live\n\n", 1);
  EXPECT_EQ(count(d.got, "data: m"), 0);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 2);
  client_close(&c);
  client_close(&d);
  teardown();
}

Test(comet, sse_client_going_away_is_reported_and_the_subscription_ends) {
  client c;
  setup(test_loop(), 1);
  F.follow = 1;
  client_open(&c, GET_EVENTS, 0);
  run_until(&F.nsse, 1);
  client_wait(&c, "\r\n\r\n", 1);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 1);
  client_close(&c);
  run_until(&F.gone, 1);
  EXPECT_EQ(F.gone_reason, EDDY_ECLOSED);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 0);
  teardown();
}

/* Publishes 16 KiB messages to a client that never reads until its
 * stream's unsent bytes pass the limit. */
static void flood(client *c, int until_gone) {
  static char big[16384];
  eddy_comet_msg m = {.topic = "room", .data = big, .len = sizeof big};
  memset(big, 'z', sizeof big);
  for (int i = 0; i < 4000; i++) {
    EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
    turns(1);
    if (until_gone ? F.gone > 0
                   : (F.sse[0] && eddy_comet_sse_dropped(F.sse[0]) > 5))
      return;
  }
  (void)c;
  cr_assert(0, "the limit was never reached");
}

Test(comet, slow_consumer_drop_counts_and_keeps_the_client) {
  client c;
  eddy_comet_hub_options ho = {.no_history = 1};
  eddy_comet_hub_stats st;
  setup(test_loop(), 0);
  EXPECT_OK(eddy_comet_hub_new(&ho, &F.hub));
  F.follow = 1;
  F.sse_opts.max_unsent = 64 * 1024;
  F.sse_opts.slow = EDDY_COMET_DROP;
  client_open(&c, GET_EVENTS, 4096);
  run_until(&F.nsse, 1);
  turns(3);
  flood(&c, 0);
  EXPECT_EQ(F.gone, 0);
  eddy_comet_hub_stats_get(F.hub, &st);
  cr_assert(st.delivered > eddy_comet_sse_dropped(F.sse[0]));
  /* The client catches up: every event it gets is whole, and the stream
   * goes on. */
  {
    eddy_comet_msg m = {.topic = "room", .data = "tail", .len = 4};
    int64_t deadline = test_clock_ms() + 5000;
    while (count(c.got, "data: tail\n") == 0) {
      cr_assert(test_clock_ms() < deadline);
      client_read(&c);
      if (eddy_stream_buffered(
              eddy_http_stream(eddy_comet_sse_exchange(F.sse[0]))) == 0 &&
          count(c.got, "data: tail\n") == 0)
        EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
      turns(1);
    }
  }
  /* Whole events only: as many ends of events as starts. */
  EXPECT_EQ(count(c.got, "\r\nid: "), count(c.got, "\n\n\r\n"));
  cr_assert(count(c.got, "\r\nid: ") > 1);
  client_close(&c);
  teardown();
}

Test(comet, slow_consumer_disconnect_aborts_and_reports_enobufs) {
  client c;
  eddy_comet_hub_options ho = {.no_history = 1};
  setup(test_loop(), 0);
  EXPECT_OK(eddy_comet_hub_new(&ho, &F.hub));
  F.follow = 1;
  F.sse_opts.max_unsent = 64 * 1024;
  F.sse_opts.slow = EDDY_COMET_DISCONNECT;
  client_open(&c, GET_EVENTS, 4096);
  run_until(&F.nsse, 1);
  turns(3);
  flood(&c, 1);
  EXPECT_EQ(F.gone, 1);
  EXPECT_EQ(F.gone_reason, -ENOBUFS);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 0);
  client_wait(&c, NULL, 0);
  client_close(&c);
  teardown();
}

static void *kept;
static eddy_comet_sub *keeper;

static void keep_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  (void)sub;
  (void)len;
  (void)arg;
  kept = block;
}

static const eddy_comet_sub_callbacks keep_cb = {keep_send, NULL};

/* One message to many loopback clients: one encoding, one block, freed
 * once every client's socket has taken it. */
Test(comet, fan_out_to_many_clients_frees_the_shared_block_once) {
  static client cs[48];
  eddy_comet_hub_options ho = {.no_history = 1};
  eddy_comet_hub_stats st;
  eddy_comet_msg m = {.topic = "room", .data = "to all", .len = 6};
  setup(test_loop(), 0);
  EXPECT_OK(eddy_comet_hub_new(&ho, &F.hub));
  F.follow = 1;
  for (int i = 0; i < 48; i++)
    client_open(&cs[i], GET_EVENTS, 0);
  run_until(&F.nsse, 48);
  for (int i = 0; i < 48; i++)
    client_wait(&cs[i], "\r\n\r\n", 1);
  turns(3);
  /* A subscriber of the test's own, in the streams' format, keeps a
   * reference to see the block's count. */
  EXPECT_OK(eddy_comet_subscribe(F.hub, "room", EDDY_COMET_SSE_CHUNKED,
                                 &keep_cb, NULL, &keeper));
  EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
  cr_assert(kept != NULL);
  for (int i = 0; i < 48; i++)
    client_wait(&cs[i], "id: 1\ndata: to all\n\n", 1);
  /* Every stream has sent it and let go: only the test's reference. */
  EXPECT_EQ(eddy_comet_block_refs(kept), 1);
  eddy_comet_block_unref(kept);
  eddy_comet_unsubscribe(keeper);
  eddy_comet_hub_stats_get(F.hub, &st);
  EXPECT_EQ(st.encoded, 1);
  EXPECT_EQ(st.delivered, 49);
  for (int i = 0; i < 48; i++)
    client_close(&cs[i]);
  run_until(&F.gone, 48);
  teardown();
}

Test(comet, sse_start_out_of_memory_answers_503) {
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC, EDDY__SYS_REALLOC};
  int failures = 0;
  for (size_t k = 0; k < 3; k++)
    for (uint64_t n = 1; n < 10; n++) {
      client c;
      setup(test_loop(), 0);
      F.fail_kind = kinds[k];
      F.fail_nth = n;
      F.start_rc = 1;
      client_open(&c, GET_EVENTS, 0);
      while (F.start_rc == 1)
        turns(1);
      turns(3);
      client_read(&c);
      if (F.start_rc == 0) {
        cr_assert(strstr(c.got, "200 OK") != NULL);
        client_close(&c);
        teardown();
        break;
      }
      failures++;
      EXPECT_EQ(F.start_rc, -ENOMEM);
      /* 503, or a reset if the head itself could not be queued. */
      if (strstr(c.got, "503 Service Unavailable") == NULL) {
        client_wait(&c, NULL, 0);
        EXPECT_EQ(c.n, 0);
      }
      client_close(&c);
      teardown();
    }
  cr_assert(failures > 0);
}

/* ---- Long-polling ------------------------------------------------------------ */

Test(comet, long_poll_answered_by_the_next_message) {
  client c;
  eddy_comet_msg m = {.topic = "room", .data = "news", .len = 4};
  setup(test_loop(), 1);
  F.poll_opts.open = "<";
  F.poll_opts.sep = "|";
  F.poll_opts.close = ">";
  F.poll_opts.content_type = "text/plain";
  client_open(&c, "GET /poll?since=0 HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  while (F.poll == NULL)
    turns(1);
  turns(3);
  client_read(&c);
  EXPECT_EQ(c.n, 0);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 1);
  EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
  client_wait(&c, "<news\n>", 1);
  EXPECT_EQ(F.polls_done, 1);
  EXPECT_EQ(F.poll_status, 0);
  cr_assert(strstr(c.got, "HTTP/1.1 200 OK") == c.got);
  cr_assert(strstr(c.got, "Content-Length: 7\r\n") != NULL);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 0);
  /* since= from the history: answered at once with every newer one. */
  m.data = "more";
  EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
  F.poll_opts.open = F.poll_opts.sep = F.poll_opts.close = NULL;
  EXPECT_OK(
      write(c.fd, "GET /poll?x=1&since=0 HTTP/1.1\r\nHost: t\r\n\r\n", 43) == 43
          ? 0
          : -1);
  client_wait(&c, "[news\n,more\n]", 1);
  EXPECT_EQ(F.polls_done, 2);
  client_close(&c);
  teardown();
}

Test(comet, long_poll_times_out_with_the_empty_answer) {
  client c, d;
  setup(test_fake_loop(0), 0);
  F.poll_opts.timeout_ns = 10 * SEC;
  client_open(&c, "GET /poll HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  while (F.poll == NULL)
    turns(1);
  EXPECT_OK(eddy_loop_advance(F.loop, 9 * SEC));
  turns(3);
  EXPECT_EQ(F.polls_done, 0);
  EXPECT_OK(eddy_loop_advance(F.loop, SEC));
  client_wait(&c, "HTTP/1.1 204 No Content\r\n", 1);
  EXPECT_EQ(F.poll_status, -ETIMEDOUT);
  /* Or 200 with an empty JSON list, as the program chooses. */
  F.poll_opts.empty_status = 200;
  F.poll_opts.empty_body = "[]";
  client_open(&d, "GET /poll HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  while (F.poll == NULL)
    turns(1);
  EXPECT_OK(eddy_loop_advance(F.loop, 10 * SEC));
  client_wait(&d, "\r\n\r\n[]", 1);
  cr_assert(strstr(d.got, "Content-Type: application/json\r\n") != NULL);
  EXPECT_EQ(F.polls_done, 2);
  client_close(&c);
  client_close(&d);
  teardown();
}

Test(comet, long_poll_client_going_away_is_reported) {
  client c;
  setup(test_loop(), 1);
  client_open(&c, "GET /poll?since=0 HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  while (F.poll == NULL)
    turns(1);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 1);
  client_close(&c);
  run_until(&F.polls_done, 1);
  EXPECT_EQ(F.poll_status, EDDY_ECLOSED);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 0);
  teardown();
}

static void query_probe(eddy_http_exchange *x, void *arg) {
  uint64_t v = 0;
  (void)arg;
  EXPECT_OK(eddy_comet_query_id(x, "since", &v));
  EXPECT_EQ(v, 18446744073709551615ull);
  EXPECT_EQ(eddy_comet_query_id(x, "bad", &v), -EINVAL);
  EXPECT_EQ(eddy_comet_query_id(x, "big", &v), -EINVAL);
  EXPECT_EQ(eddy_comet_query_id(x, "none", &v), -ENOENT);
  EXPECT_EQ(eddy_comet_query_id(x, "sinc", &v), -ENOENT);
  EXPECT_OK(eddy_http_respond_status(x, 200));
}

Test(comet, query_ids) {
  client c;
  setup(test_loop(), 0);
  EXPECT_OK(eddy_http_route(F.srv, "GET", "/q", query_probe, NULL));
  client_open(&c,
              "GET /q?bad=1x&since=18446744073709551615&big="
              "18446744073709551616 HTTP/1.1\r\nHost: t\r\n\r\n",
              0);
  client_wait(&c, "200 OK\n", 1);
  client_close(&c);
  teardown();
}

Test(comet, long_poll_out_of_memory) {
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC, EDDY__SYS_REALLOC};
  int failures = 0;
  for (int where = 0; where < 2; where++)
    for (size_t k = 0; k < 3; k++)
      for (uint64_t n = 1; n < 10; n++) {
        client c;
        eddy_comet_msg m = {.topic = "room", .data = "old", .len = 3};
        setup(test_loop(), 1);
        EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
        F.fail_kind = kinds[k];
        F.fail_nth = n;
        F.fail_where = where;
        F.start_rc = 1;
        client_open(&c, "GET /poll?since=0 HTTP/1.1\r\nHost: t\r\n\r\n", 0);
        while (F.start_rc == 1)
          turns(1);
        client_wait(&c, "\r\n\r\n", 1);
        if (F.start_rc == 0 && F.poll_status == 0) {
          client_wait(&c, "[old\n]", 1);
          client_close(&c);
          teardown();
          break;
        }
        failures++;
        if (F.start_rc == 0) { /* the answer could not be queued */
          EXPECT_EQ(F.poll_status, -ENOMEM);
          client_wait(&c, NULL, 0);
          EXPECT_EQ(c.n, 0);
        } else {
          EXPECT_EQ(F.start_rc, -ENOMEM);
          cr_assert(strstr(c.got, where ? "HTTP/1.1 500" : "HTTP/1.1 503") ==
                        c.got,
                    "%s", c.got);
        }
        EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 0);
        client_close(&c);
        teardown();
      }
  cr_assert(failures >= 2);
}

Test(comet, long_poll_cancel_and_respond) {
  client c;
  static const char req[] = "GET /poll HTTP/1.1\r\nHost: t\r\n\r\n";
  setup(test_loop(), 0);
  client_open(&c, req, 0);
  while (F.poll == NULL)
    turns(1);
  cr_assert(eddy_comet_poll_exchange(F.poll) != NULL);
  EXPECT_OK(eddy_comet_poll_respond(F.poll, 200, "text/plain", "mine", 4));
  F.poll = NULL;
  client_wait(&c, "\r\n\r\nmine", 1);
  cr_assert(write(c.fd, req, sizeof req - 1) == (ssize_t)sizeof req - 1);
  while (F.poll == NULL)
    turns(1);
  eddy_comet_poll_cancel(F.poll);
  F.poll = NULL;
  client_wait(&c, "503", 1);
  EXPECT_EQ(F.polls_done, 0);
  client_close(&c);
  teardown();
}

/* The hub goes first: streams and polls following it stay open, and are
 * closed later without touching it. */
Test(comet, hub_freed_before_its_streams_and_polls) {
  client c, p;
  eddy_comet_msg m = {.topic = "room", .data = "last", .len = 4};
  setup(test_loop(), 1);
  F.follow = 1;
  client_open(&c, GET_EVENTS, 0);
  run_until(&F.nsse, 1);
  EXPECT_OK(eddy_comet_publish(F.hub, &m, NULL));
  client_wait(&c, "data: last\n\n", 1);
  client_open(&p, "GET /poll?since=1 HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  while (F.poll == NULL)
    turns(1);
  EXPECT_EQ(eddy_comet_subscribers(F.hub, "room"), 2);
  eddy_comet_hub_free(F.hub);
  F.hub = NULL;
  EXPECT_OK(eddy_comet_sse_send(F.sse[0], NULL, NULL, "still", 5));
  client_wait(&c, "data: still\n\n", 1);
  cr_assert(F.poll != NULL);
  EXPECT_OK(eddy_comet_poll_respond(F.poll, 204, NULL, NULL, 0));
  F.poll = NULL;
  client_wait(&p, "204", 1);
  client_close(&c);
  client_close(&p);
  run_until(&F.gone, 1);
  teardown();
}

static void once(eddy_http_exchange *x, void *arg) {
  eddy_comet_sse *sse;
  (void)arg;
  EXPECT_OK(eddy_comet_sse_start(x, NULL, &sse));
  EXPECT_OK(eddy_comet_sse_send(sse, NULL, NULL, "bye", 3));
  eddy_comet_sse_close(sse); /* before the head is out: the event first */
  F.nsse++;
}

Test(comet, sse_closed_in_its_handler_sends_its_events_then_ends) {
  client c, d;
  static const char req[] = "GET /once HTTP/1.1\r\nHost: t\r\n\r\n";
  setup(test_loop(), 0);
  EXPECT_OK(eddy_http_route(F.srv, "GET", "/once", once, NULL));
  client_open(&c, req, 0);
  client_wait(&c, "0\r\n\r\n", 1);
  cr_assert(strstr(c.got, "data: bye\n\n\r\n0\r\n\r\n") != NULL, "%s", c.got);
  /* The same, and the server freed in that very turn. */
  client_open(&d, req, 0);
  run_until(&F.nsse, 2);
  F.nsse = 0;
  client_close(&c);
  client_close(&d);
  teardown();
}
