/* The caching forwarder end to end over loopback: fake upstream servers on
 * 127.0.0.1 (eddy_udp, and a TCP listener for truncated answers) count the
 * questions they get, which shows cache hits, identical questions in
 * flight sharing one upstream question, TTL expiry asking again, negative
 * caching, SERVFAIL never cached, spoofed answers ignored, failover past an
 * unreachable or silent upstream, cancellation, freeing from a callback,
 * and allocation failures at every step. The loop runs on a fake clock, so
 * TTLs and upstream timeouts pass when a test says so; every wait for a
 * datagram is bounded in real time. */
#include <poll.h>
#include <string.h>

#include "helpers.h"
#include "proto/dns/forward.h"

#define SEC 1000000000LL
#define T0 (1000 * SEC)

/* ---- A fake upstream ---- */

enum mode {
  M_ANSWER,     /* one A record, TTL ttl, address 192.0.2.last */
  M_NXDOMAIN,   /* NXDOMAIN with an SOA of TTL and minimum ttl */
  M_NODATA,     /* NOERROR, no answer, the same SOA */
  M_SERVFAIL,   /* SERVFAIL */
  M_SILENT,     /* counts the question, answers nothing */
  M_SPOOF_ID,   /* first an answer with another ID (192.0.2.66), then ours */
  M_SPOOF_PORT, /* first ours from another port (192.0.2.66), then ours */
  M_TC,         /* TC=1 over UDP; over TCP, 100 A records */
};

typedef struct fake {
  eddy_udp *u, *other;
  eddy_listener *l;
  eddy_stream *s;
  uint8_t tbuf[1024];
  size_t tlen;
  int port;
  int queries, tcp_queries;
  enum mode mode;
  uint32_t ttl;
  uint8_t last;
  uint16_t flags; /* of the last question */
  uint8_t qname[EDDY_DNS_NAME_MAX];
} fake;

static void soa(eddy_dns_writer_t *w, uint32_t ttl) {
  uint8_t rd[2 * EDDY_DNS_NAME_MAX + 20], zone[EDDY_DNS_NAME_MAX];
  size_t n = 0;
  const char *names[2] = {"ns.example.", "host.example."};
  for (int i = 0; i < 2; i++) {
    int k = eddy_dns_name_from_text(names[i], strlen(names[i]), NULL, rd + n);
    cr_assert(k > 0);
    n += (size_t)k;
  }
  uint32_t nums[5] = {1, 7200, 900, 1209600, ttl};
  for (int i = 0; i < 5; i++) {
    rd[n++] = (uint8_t)(nums[i] >> 24);
    rd[n++] = (uint8_t)(nums[i] >> 16);
    rd[n++] = (uint8_t)(nums[i] >> 8);
    rd[n++] = (uint8_t)nums[i];
  }
  cr_assert(eddy_dns_name_from_text("example.", 8, NULL, zone) > 0);
  EXPECT_OK(eddy_dns_writer_add(w, EDDY_DNS_AUTHORITY, zone, EDDY_DNS_TYPE_SOA,
                                EDDY_DNS_CLASS_IN, ttl, rd, n));
}

static void add_a(eddy_dns_writer_t *w, const eddy_dns_query_t *q, uint32_t ttl,
                  uint8_t last) {
  uint8_t a[4] = {192, 0, 2, last};
  EXPECT_OK(eddy_dns_writer_add(w, EDDY_DNS_ANSWER, q->qname, q->qtype,
                                q->qclass, ttl, a, 4));
}

/* The fake's answer to the question msg[0..len); 0 for none. */
static size_t reply(fake *f, const uint8_t *msg, size_t len, uint8_t *out,
                    size_t cap, bool tcp, uint8_t last) {
  eddy_dns_query_t q;
  eddy_dns_writer_t w;
  cr_assert(eddy_dns_query_parse(msg, len, &q) == EDDY_DNS_VERDICT_ANSWER);
  f->flags = q.flags;
  memcpy(f->qname, q.qname, q.qname_len);
  uint16_t rcode = f->mode == M_NXDOMAIN   ? EDDY_DNS_RCODE_NXDOMAIN
                   : f->mode == M_SERVFAIL ? EDDY_DNS_RCODE_SERVFAIL
                                           : 0;
  EXPECT_OK(eddy_dns_writer_init(&w, out, cap, &q, rcode));
  eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_RA | EDDY_DNS_FLAG_AA);
  switch (f->mode) {
  case M_NXDOMAIN:
  case M_NODATA:
    soa(&w, f->ttl);
    break;
  case M_SERVFAIL:
  case M_SILENT:
    break;
  case M_TC:
    if (!tcp) {
      eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_TC);
      break;
    }
    for (int i = 0; i < 100; i++)
      add_a(&w, &q, f->ttl, (uint8_t)i);
    break;
  default:
    add_a(&w, &q, f->ttl, last);
  }
  return eddy_dns_writer_finish(&w);
}

static void fake_recv(eddy_udp *u, const char *data, size_t len,
                      const struct sockaddr *from, socklen_t fromlen,
                      void *arg) {
  fake *f = arg;
  uint8_t out[4096];
  f->queries++;
  if (f->mode == M_SILENT)
    return;
  if (f->mode == M_SPOOF_ID || f->mode == M_SPOOF_PORT) {
    size_t n = reply(f, (const uint8_t *)data, len, out, sizeof out, false, 66);
    if (f->mode == M_SPOOF_ID) {
      out[0] ^= 0x5A;
      EXPECT_OK(eddy_udp_send(u, out, n, from, fromlen));
    } else {
      EXPECT_OK(eddy_udp_send(f->other, out, n, from, fromlen));
    }
  }
  size_t n = reply(f, (const uint8_t *)data, len, out, 512, false, f->last);
  EXPECT_OK(eddy_udp_send(u, out, n, from, fromlen));
}

static void fake_tcp_data(eddy_stream *s, const char *d, size_t len,
                          void *arg) {
  fake *f = arg;
  uint8_t out[4096];
  cr_assert(f->tlen + len <= sizeof f->tbuf);
  memcpy(f->tbuf + f->tlen, d, len);
  f->tlen += len;
  while (f->tlen >= 2) {
    size_t n = ((size_t)f->tbuf[0] << 8) | f->tbuf[1];
    if (f->tlen < 2 + n)
      return;
    f->tcp_queries++;
    size_t m = reply(f, f->tbuf + 2, n, out + 2, sizeof out - 2, true, f->last);
    out[0] = (uint8_t)(m >> 8);
    out[1] = (uint8_t)m;
    EXPECT_OK(eddy_stream_write(s, out, m + 2));
    memmove(f->tbuf, f->tbuf + 2 + n, f->tlen - 2 - n);
    f->tlen -= 2 + n;
  }
}

static void fake_tcp_close(eddy_stream *s, int status, const char *detail,
                           void *arg) {
  fake *f = arg;
  (void)s, (void)status, (void)detail;
  f->s = NULL;
}

static const eddy_stream_callbacks fake_tcp_cbs = {fake_tcp_data, NULL, NULL,
                                                   fake_tcp_close};

static void fake_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  fake *f = arg;
  (void)l;
  f->s = s;
  f->tlen = 0;
  eddy_stream_set_callbacks(s, &fake_tcp_cbs, f);
}

static void fake_open(eddy_loop *loop, fake *f, enum mode mode, uint32_t ttl) {
  memset(f, 0, sizeof *f);
  f->mode = mode;
  f->ttl = ttl;
  f->last = 1;
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, fake_recv, f, &f->u));
  f->port = eddy_udp_port(f->u);
  if (mode == M_SPOOF_PORT)
    EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, fake_recv, f, &f->other));
  /* The UDP port the kernel picked may be held on the TCP side (by some
   * connection's local end, on a busy machine): pick again. */
  for (int tries = 0; mode == M_TC; tries++) {
    char ep[64], err[200];
    snprintf(ep, sizeof ep, "tcp:%d:interface=127.0.0.1", f->port);
    int rc = eddy_listen(loop, ep, fake_accept, f, &f->l, err, sizeof err);
    if (rc == 0)
      break;
    cr_assert(rc == -EADDRINUSE && tries < 50, "%s", err);
    eddy_udp_close(f->u);
    EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, fake_recv, f, &f->u));
    f->port = eddy_udp_port(f->u);
  }
}

static void fake_close(fake *f) {
  if (f->s)
    eddy_stream_close(f->s);
  if (f->l)
    eddy_listener_close(f->l);
  if (f->other)
    eddy_udp_close(f->other);
  eddy_udp_close(f->u);
}

/* ---- The forwarder and its clients ---- */

static eddy_loop *loop;
static eddy__dns_forwarder *fw;
static eddy__dns_forward_config cfg;

static void upstream_at(size_t i, int port) {
  char text[64];
  snprintf(text, sizeof text, "127.0.0.1:%d", port);
  EXPECT_OK(eddy__dns_upstream_parse(text, &cfg.upstream.servers[i]));
  if (cfg.upstream.nservers < i + 1)
    cfg.upstream.nservers = i + 1;
}

static void setup(void) {
  loop = test_fake_loop(T0);
  memset(&cfg, 0, sizeof cfg);
  cfg.upstream.timeout_ns = SEC;
  cfg.upstream.attempts = 1;
  cfg.upstream.edns_udp_size = EDDY_DNS_EDNS_UDP_SIZE;
}

static void start(void) {
  EXPECT_OK(eddy__dns_forwarder_new(loop, &cfg, &fw));
}

static void finish(void) {
  eddy__dns_forwarder_free(fw);
  fw = NULL;
  eddy__fault_reset();
  test_finish(loop);
}

typedef struct client {
  int calls;
  uint8_t msg[65535];
  size_t len;
  bool free_forwarder;           /* frees the forwarder from the callback */
  eddy__dns_forward_req *cancel; /* cancels this request from it */
  bool ask_again;                /* asks its question again from it */
  int again;                     /* what that returned */
} client;

static int ask(const char *name, uint16_t id, struct client *c);

static void on_answer(void *arg, const uint8_t *msg, size_t len) {
  client *c = arg;
  c->calls++;
  cr_assert(len <= sizeof c->msg);
  memcpy(c->msg, msg, len);
  c->len = len;
  if (c->cancel) {
    eddy__dns_forward_cancel(c->cancel);
    c->cancel = NULL;
  }
  if (c->ask_again) {
    static client other;
    c->ask_again = false;
    c->again = ask("x.example.", 99, &other);
  }
  if (c->free_forwarder) {
    eddy__dns_forwarder_free(fw);
    fw = NULL;
  }
}

static eddy_dns_query_t query(const char *name, uint16_t type, uint16_t id,
                              uint16_t edns) {
  uint8_t buf[600], wire[EDDY_DNS_NAME_MAX];
  eddy_dns_query_t q;
  cr_assert(eddy_dns_name_from_text(name, strlen(name), NULL, wire) > 0);
  int n = eddy_dns_query_write(buf, sizeof buf, id, EDDY_DNS_FLAG_RD, wire,
                               type, EDDY_DNS_CLASS_IN, edns, false);
  cr_assert(n > 0);
  cr_assert(eddy_dns_query_parse(buf, (size_t)n, &q) ==
            EDDY_DNS_VERDICT_ANSWER);
  return q;
}

/* Asks name/A as a UDP client of 512 bytes (or cap). Returns what
 * eddy__dns_forward returned; a hit is copied into c. */
static int ask_cap(const char *name, uint16_t id, uint16_t edns, size_t cap,
                   client *c, eddy__dns_forward_req **req) {
  static uint8_t out[65535];
  eddy_dns_query_t q = query(name, EDDY_DNS_TYPE_A, id, edns);
  if (cap == 0)
    cap = q.udp_size;
  int n = eddy__dns_forward(fw, &q, cap, out, on_answer, c, req);
  if (n > 0) {
    memcpy(c->msg, out, (size_t)n);
    c->len = (size_t)n;
  }
  return n;
}

static int ask(const char *name, uint16_t id, client *c) {
  return ask_cap(name, id, 0, 0, c, NULL);
}

/* Runs the loop until done(arg) holds or ms of real time pass; returns
 * whether it held. */
static bool wait_pred(bool (*done)(const void *), const void *arg, int ms) {
  int64_t end = test_clock_ms() + ms;
  int bfd = eddy_loop_backend_fd(loop);
  for (;;) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    if (done(arg) || test_clock_ms() >= end)
      break;
    if (bfd >= 0) {
      struct pollfd p = {.fd = bfd, .events = POLLIN};
      poll(&p, 1, 10);
    } else {
      struct timespec one = {0, 1000000};
      nanosleep(&one, NULL);
    }
  }
  return done(arg);
}

typedef struct count_at_least {
  const int *v;
  int target;
} count_at_least;

static bool reached(const void *arg) {
  const count_at_least *c = arg;
  return *c->v >= c->target;
}

/* Runs the loop until *v reaches target or ms of real time pass. */
static bool wait_for(const int *v, int target, int ms) {
  count_at_least c = {v, target};
  return wait_pred(reached, &c, ms);
}

/* The same, failing the test after 5 s. */
static void run_until(const int *v, int target) {
  cr_assert(wait_for(v, target, 5000), "waited in vain: %d of %d", *v, target);
}

static void advance(int64_t ns) {
  EXPECT_OK(eddy_loop_advance(loop, ns));
}

/* A written answer, read back. */
typedef struct answer {
  uint16_t id, flags, count[4];
  uint8_t qname[EDDY_DNS_NAME_MAX];
  eddy_dns_rr_t rr[128];
  size_t nrr;
} answer;

static void read_answer(answer *a, const client *c) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t q;
  int r;
  EXPECT_OK(eddy_dns_msg_parse(&m, c->msg, c->len));
  a->id = m.id;
  a->flags = m.flags;
  memcpy(a->count, m.count, sizeof a->count);
  cr_assert(eddy_dns_msg_next(&m, &q) == 1);
  memcpy(a->qname, q.name, q.name_len);
  a->nrr = 0;
  while (a->nrr < 128 && (r = eddy_dns_msg_next(&m, &a->rr[a->nrr])) == 1)
    a->nrr++;
  EXPECT_EQ(r, 0);
}

static void expect_address(const client *c, uint16_t id, uint8_t last) {
  answer a;
  read_answer(&a, c);
  EXPECT_EQ(a.id, id);
  EXPECT_EQ(a.flags & 15, 0);
  EXPECT_NE(a.flags & EDDY_DNS_FLAG_RA, 0);
  EXPECT_EQ(a.flags & EDDY_DNS_FLAG_AA, 0);
  EXPECT_EQ(a.count[1], 1);
  EXPECT_EQ(a.rr[0].type, EDDY_DNS_TYPE_A);
  EXPECT_EQ(a.rr[0].rdata[3], last);
}

static int rcode_of(const client *c) {
  return c->msg[3] & 15;
}

static eddy__dns_forward_stats stats(void) {
  eddy__dns_forward_stats st;
  eddy__dns_forwarder_stats(fw, &st);
  return st;
}

static bool nothing_in_flight(const void *arg) {
  (void)arg;
  return stats().inflight == 0;
}

/* ---- Hits and sharing ---- */

Test(dns_forward, needs_an_upstream, .init = setup, .fini = finish) {
  EXPECT_EQ(eddy__dns_forwarder_new(loop, &cfg, &fw), -EINVAL);
  cr_assert(fw == NULL);
}

Test(dns_forward, second_question_is_answered_from_the_cache, .init = setup,
     .fini = finish) {
  fake up;
  client c1 = {0}, c2 = {0};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  cfg.upstream.rd = false; /* the forwarder sets it whatever it is given */
  start();
  EXPECT_EQ(ask("www.example.", 0x1111, &c1), 0);
  run_until(&c1.calls, 1);
  expect_address(&c1, 0x1111, 1);
  EXPECT_EQ(up.queries, 1);
  EXPECT_NE(up.flags & EDDY_DNS_FLAG_RD, 0);

  /* Later, another client, another case: from the cache, TTL lowered. */
  advance(10 * SEC);
  int n = ask("WWW.Example.", 0x2222, &c2);
  EXPECT_GT(n, 0);
  EXPECT_EQ(c2.calls, 0);
  expect_address(&c2, 0x2222, 1);
  answer a;
  read_answer(&a, &c2);
  EXPECT_EQ(a.rr[0].ttl, 290);
  cr_assert(memcmp(a.qname, "\3WWW\7Example", 12) == 0);
  EXPECT_EQ(up.queries, 1);
  eddy__dns_forward_stats st = stats();
  EXPECT_EQ(st.queries, 2);
  EXPECT_EQ(st.hits, 1);
  EXPECT_EQ(st.upstream, 1);
  EXPECT_EQ(st.entries, 1);
  EXPECT_EQ(st.inflight, 0);
  fake_close(&up);
}

Test(dns_forward, a_hit_allocates_nothing, .init = setup, .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("www.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  eddy__fault_reset();
  EXPECT_GT(ask("www.example.", 2, &c), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_MALLOC), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_CALLOC), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_REALLOC), 0);
  fake_close(&up);
}

Test(dns_forward, identical_questions_in_flight_share_one_upstream_question,
     .init = setup, .fini = finish) {
  fake up;
  client c[3] = {{0}};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask_cap("same.example.", 10, 0, 0, &c[0], NULL), 0);
  EXPECT_EQ(ask_cap("SAME.example.", 11, 1400, 0, &c[1], NULL), 0);
  EXPECT_EQ(ask_cap("same.EXAMPLE.", 12, 0, 0, &c[2], NULL), 0);
  EXPECT_EQ(stats().inflight, 1);
  run_until(&c[2].calls, 1);
  EXPECT_EQ(up.queries, 1);
  for (int i = 0; i < 3; i++) {
    answer a;
    EXPECT_EQ(c[i].calls, 1);
    expect_address(&c[i], (uint16_t)(10 + i), 1);
    read_answer(&a, &c[i]);
    /* An OPT only for the client that sent one. */
    EXPECT_EQ(a.count[3], i == 1 ? 1 : 0);
  }
  answer a;
  read_answer(&a, &c[1]);
  cr_assert(memcmp(a.qname, "\4SAME\7example", 13) == 0);
  eddy__dns_forward_stats st = stats();
  EXPECT_EQ(st.upstream, 1);
  EXPECT_EQ(st.joined, 2);
  EXPECT_EQ(st.inflight, 0);
  fake_close(&up);
}

Test(dns_forward, different_questions_are_asked_separately, .init = setup,
     .fini = finish) {
  fake up;
  client c1 = {0}, c2 = {0};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("a.example.", 1, &c1), 0);
  EXPECT_EQ(ask("b.example.", 2, &c2), 0);
  run_until(&up.queries, 2);
  run_until(&c2.calls, 1);
  run_until(&c1.calls, 1);
  EXPECT_EQ(stats().upstream, 2);
  EXPECT_EQ(stats().entries, 2);
  fake_close(&up);
}

/* ---- What is cached for how long ---- */

Test(dns_forward, answer_expires_with_its_ttl_and_is_asked_again, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_ANSWER, 5);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("ttl.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  advance(5 * SEC - 1);
  EXPECT_GT(ask("ttl.example.", 2, &c), 0);
  answer a;
  read_answer(&a, &c);
  EXPECT_EQ(a.rr[0].ttl, 1);
  EXPECT_EQ(up.queries, 1);
  advance(1);
  up.last = 2;
  EXPECT_EQ(ask("ttl.example.", 3, &c), 0);
  run_until(&c.calls, 2);
  expect_address(&c, 3, 2);
  EXPECT_EQ(up.queries, 2);
  fake_close(&up);
}

Test(dns_forward, nxdomain_is_cached_by_the_soa_minimum, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  answer a;
  fake_open(loop, &up, M_NXDOMAIN, 60);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("nx.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  EXPECT_EQ(rcode_of(&c), EDDY_DNS_RCODE_NXDOMAIN);
  advance(59 * SEC);
  EXPECT_GT(ask("nx.example.", 2, &c), 0);
  read_answer(&a, &c);
  EXPECT_EQ(rcode_of(&c), EDDY_DNS_RCODE_NXDOMAIN);
  EXPECT_EQ(a.count[2], 1);
  EXPECT_EQ(a.rr[0].type, EDDY_DNS_TYPE_SOA);
  EXPECT_EQ(a.rr[0].ttl, 1);
  EXPECT_EQ(up.queries, 1);
  advance(SEC);
  EXPECT_EQ(ask("nx.example.", 3, &c), 0);
  run_until(&c.calls, 2);
  EXPECT_EQ(up.queries, 2);
  fake_close(&up);
}

Test(dns_forward, nodata_is_cached_by_the_soa_minimum, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_NODATA, 30);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("nodata.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  EXPECT_EQ(rcode_of(&c), 0);
  EXPECT_GT(ask("nodata.example.", 2, &c), 0);
  EXPECT_EQ(up.queries, 1);
  advance(30 * SEC);
  EXPECT_EQ(ask("nodata.example.", 3, &c), 0);
  run_until(&c.calls, 2);
  EXPECT_EQ(up.queries, 2);
  fake_close(&up);
}

Test(dns_forward, servfail_is_passed_on_and_never_cached, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_SERVFAIL, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("sf.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  EXPECT_EQ(rcode_of(&c), EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_EQ(stats().failures, 1);
  EXPECT_EQ(stats().entries, 0);
  EXPECT_EQ(ask("sf.example.", 2, &c), 0);
  run_until(&c.calls, 2);
  EXPECT_EQ(stats().upstream, 2);
  fake_close(&up);
}

Test(dns_forward, zero_ttl_answer_is_passed_on_but_not_cached, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_ANSWER, 0);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("zero.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  expect_address(&c, 1, 1);
  EXPECT_EQ(ask("zero.example.", 2, &c), 0);
  run_until(&c.calls, 2);
  EXPECT_EQ(up.queries, 2);
  fake_close(&up);
}

/* ---- Believing answers, and failing over ---- */

Test(dns_forward, answer_with_a_wrong_id_is_ignored, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_SPOOF_ID, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("spoof.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  expect_address(&c, 1, 1); /* not 192.0.2.66 */
  /* And the cache holds the real one. */
  EXPECT_GT(ask("spoof.example.", 2, &c), 0);
  expect_address(&c, 2, 1);
  fake_close(&up);
}

Test(dns_forward, answer_from_another_port_is_ignored, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_SPOOF_PORT, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("spoof.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  expect_address(&c, 1, 1);
  fake_close(&up);
}

/* Nothing listens on the first upstream's port: the ICMP error moves the
 * question on at once, without waiting for the timeout. */
Test(dns_forward, unreachable_first_upstream_fails_over, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  eddy_udp *gone;
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, fake_recv, NULL, &gone));
  int dead_port = eddy_udp_port(gone);
  eddy_udp_close(gone);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, dead_port);
  upstream_at(1, up.port);
  start();
  EXPECT_EQ(ask("fo.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  expect_address(&c, 1, 1);
  EXPECT_EQ(up.queries, 1);
  fake_close(&up);
}

Test(dns_forward, silent_first_upstream_fails_over_after_the_timeout,
     .init = setup, .fini = finish) {
  fake mute, up;
  client c = {0};
  fake_open(loop, &mute, M_SILENT, 300);
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, mute.port);
  upstream_at(1, up.port);
  start();
  EXPECT_EQ(ask("slow.example.", 1, &c), 0);
  run_until(&mute.queries, 1);
  EXPECT_EQ(up.queries, 0);
  advance(SEC);
  run_until(&c.calls, 1);
  expect_address(&c, 1, 1);
  EXPECT_EQ(up.queries, 1);
  fake_close(&mute);
  fake_close(&up);
}

Test(dns_forward, no_answer_at_all_is_servfail_to_every_waiter, .init = setup,
     .fini = finish) {
  fake mute;
  client c1 = {0}, c2 = {0};
  fake_open(loop, &mute, M_SILENT, 300);
  upstream_at(0, mute.port);
  start();
  EXPECT_EQ(ask("void.example.", 1, &c1), 0);
  EXPECT_EQ(ask("void.example.", 2, &c2), 0);
  run_until(&mute.queries, 1);
  advance(SEC);
  run_until(&c2.calls, 1);
  EXPECT_EQ(c1.calls, 1);
  EXPECT_EQ(rcode_of(&c1), EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_EQ(rcode_of(&c2), EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_EQ(c2.msg[0] << 8 | c2.msg[1], 2);
  EXPECT_EQ(stats().failures, 2);
  EXPECT_EQ(stats().entries, 0);
  fake_close(&mute);
}

/* The upstream says TC=1 over UDP: the exchange asks again over TCP and
 * the whole answer (100 records) is cached; a UDP client then gets it cut
 * to 512 bytes with TC=1, a TCP client whole. */
Test(dns_forward, truncated_answer_is_fetched_over_tcp_and_cut_per_client,
     .init = setup, .fini = finish) {
  fake up;
  client c = {0};
  answer a;
  fake_open(loop, &up, M_TC, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask_cap("big.example.", 1, 0, 65535, &c, NULL), 0);
  run_until(&c.calls, 1);
  EXPECT_EQ(up.tcp_queries, 1);
  read_answer(&a, &c);
  EXPECT_EQ(a.count[1], 100);
  EXPECT_EQ(a.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_GT(ask("big.example.", 2, &c), 0);
  cr_assert(c.len <= 512);
  read_answer(&a, &c);
  EXPECT_NE(a.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(a.count[1], 0); /* the one RRset did not fit */
  EXPECT_EQ(up.queries, 1);
  fake_close(&up);
}

/* A flood of unique names through a cache of 50: the cache stays at 50
 * entries, and eddy's live allocations come back to the same count after
 * every batch. */
Test(dns_forward, flood_of_unique_names_keeps_the_cache_bounded, .init = setup,
     .fini = finish) {
  fake up;
  static client c[50];
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  cfg.cache_size = 50;
  start();
  long after_first = 0;
  for (int batch = 0; batch < 10; batch++) {
    memset(c, 0, sizeof c);
    for (int i = 0; i < 50; i++) {
      char name[64];
      snprintf(name, sizeof name, "n%d-%d.flood.example.", batch, i);
      EXPECT_EQ(ask(name, (uint16_t)i, &c[i]), 0);
    }
    for (int i = 0; i < 50; i++)
      run_until(&c[i].calls, 1);
    EXPECT_EQ(stats().entries, 50);
    EXPECT_EQ(stats().inflight, 0);
    if (batch == 1)
      after_first = eddy__alloc_live();
    else if (batch > 1)
      EXPECT_LE(eddy__alloc_live(), after_first);
  }
  EXPECT_EQ(up.queries, 500);
  fake_close(&up);
}

/* Two clients may wait at once: a third question is turned away, joining
 * or not, and so is a new one while two exchanges are in flight even with
 * no one waiting for them; once they end, questions are taken again. */
Test(dns_forward, questions_past_max_waiting_are_turned_away, .init = setup,
     .fini = finish) {
  fake mute;
  client c[5] = {{0}};
  eddy__dns_forward_req *r;
  fake_open(loop, &mute, M_SILENT, 300);
  upstream_at(0, mute.port);
  cfg.max_waiting = 2;
  start();
  EXPECT_EQ(ask_cap("a.example.", 1, 0, 0, &c[0], &r), 0);
  EXPECT_EQ(ask("b.example.", 2, &c[1]), 0);
  EXPECT_EQ(ask("c.example.", 3, &c[2]), -EAGAIN);
  EXPECT_EQ(ask("a.example.", 4, &c[3]), -EAGAIN);
  eddy__dns_forward_cancel(r);
  EXPECT_EQ(stats().waiting, 1);
  /* One may join; none may start a third exchange. */
  EXPECT_EQ(ask("c.example.", 3, &c[2]), -EAGAIN);
  EXPECT_EQ(ask("a.example.", 4, &c[3]), 0);
  EXPECT_EQ(stats().overload, 3);
  run_until(&mute.queries, 2);
  advance(SEC);
  run_until(&c[3].calls, 1);
  run_until(&c[1].calls, 1);
  EXPECT_EQ(c[0].calls, 0);
  EXPECT_EQ(stats().waiting, 0);
  EXPECT_EQ(stats().inflight, 0);
  EXPECT_EQ(ask("c.example.", 5, &c[4]), 0);
  fake_close(&mute);
}

/* ---- Cancelling and freeing ---- */

Test(dns_forward, cancelled_waiter_is_not_called_the_others_are, .init = setup,
     .fini = finish) {
  fake up;
  client c1 = {0}, c2 = {0};
  eddy__dns_forward_req *r1, *r2;
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask_cap("c.example.", 1, 0, 0, &c1, &r1), 0);
  EXPECT_EQ(ask_cap("c.example.", 2, 0, 0, &c2, &r2), 0);
  cr_assert(r1 != NULL && r2 != NULL);
  eddy__dns_forward_cancel(r1);
  run_until(&c2.calls, 1);
  EXPECT_EQ(c1.calls, 0);
  expect_address(&c2, 2, 1);
  fake_close(&up);
}

Test(dns_forward, exchange_goes_on_for_the_cache_when_every_waiter_left,
     .init = setup, .fini = finish) {
  fake up;
  client c = {0};
  eddy__dns_forward_req *r;
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask_cap("left.example.", 1, 0, 0, &c, &r), 0);
  eddy__dns_forward_cancel(r);
  cr_assert(wait_pred(nothing_in_flight, NULL, 5000));
  EXPECT_EQ(up.queries, 1);
  EXPECT_EQ(c.calls, 0);
  EXPECT_GT(ask("left.example.", 2, &c), 0);
  expect_address(&c, 2, 1);
  fake_close(&up);
}

Test(dns_forward, free_with_questions_in_flight_calls_no_one, .init = setup,
     .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("a.example.", 1, &c), 0);
  EXPECT_EQ(ask("b.example.", 2, &c), 0);
  EXPECT_EQ(ask("b.example.", 3, &c), 0);
  eddy__dns_forwarder_free(fw);
  fw = NULL;
  test_run_for(loop, 0);
  EXPECT_EQ(c.calls, 0);
  fake_close(&up);
}

Test(dns_forward, forwarder_freed_from_a_callback_calls_no_one_else,
     .init = setup, .fini = finish) {
  fake up;
  client c1 = {.free_forwarder = true}, c2 = {0};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("x.example.", 1, &c1), 0);
  EXPECT_EQ(ask("x.example.", 2, &c2), 0);
  run_until(&c1.calls, 1);
  cr_assert(fw == NULL);
  EXPECT_EQ(c2.calls, 0);
  fake_close(&up);
}

/* eddy_loop_close_all ends the exchanges under way: each waiter gets
 * SERVFAIL, and the forwarder is freed afterwards as usual. */
Test(dns_forward, loop_closing_everything_answers_servfail, .init = setup,
     .fini = finish) {
  fake mute;
  client c = {0};
  fake_open(loop, &mute, M_SILENT, 300);
  upstream_at(0, mute.port);
  start();
  EXPECT_EQ(ask("closing.example.", 5, &c), 0);
  eddy_loop_close_all(loop);
  run_until(&c.calls, 1);
  EXPECT_EQ(rcode_of(&c), EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_EQ(stats().inflight, 0);
}

Test(dns_forward, waiter_cancelled_from_another_callback_is_not_called,
     .init = setup, .fini = finish) {
  fake up;
  client c1 = {0}, c2 = {0}, c3 = {0};
  eddy__dns_forward_req *r2;
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("x.example.", 1, &c1), 0);
  EXPECT_EQ(ask_cap("x.example.", 2, 0, 0, &c2, &r2), 0);
  EXPECT_EQ(ask("x.example.", 3, &c3), 0);
  c1.cancel = r2;
  run_until(&c3.calls, 1);
  EXPECT_EQ(c1.calls, 1);
  EXPECT_EQ(c2.calls, 0);
  expect_address(&c3, 3, 1);
  fake_close(&up);
}

/* The answer is in the cache before the first waiter is called: the same
 * question asked from its callback is a hit. */
Test(dns_forward, question_asked_again_from_a_callback_is_a_hit, .init = setup,
     .fini = finish) {
  fake up;
  client c = {.ask_again = true};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  EXPECT_EQ(ask("x.example.", 1, &c), 0);
  run_until(&c.calls, 1);
  EXPECT_GT(c.again, 0);
  EXPECT_EQ(up.queries, 1);
  fake_close(&up);
}

/* ---- Out of memory ---- */

Test(dns_forward, new_fails_cleanly_without_memory, .init = setup,
     .fini = finish) {
  fake up;
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC};
  for (int k = 0; k < 2; k++)
    for (int n = 1;; n++) {
      long live = eddy__alloc_live();
      eddy__fault_fail_nth(kinds[k], (uint64_t)n, ENOMEM);
      int rc = eddy__dns_forwarder_new(loop, &cfg, &fw);
      eddy__fault_reset();
      if (rc == 0) {
        eddy__dns_forwarder_free(fw);
        fw = NULL;
        break;
      }
      EXPECT_EQ(rc, -ENOMEM);
      EXPECT_EQ(eddy__alloc_live(), live);
      cr_assert(n < 20);
    }
  fake_close(&up);
}

/* Every allocation a miss makes, failed in turn: the question is refused
 * with -ENOMEM and nothing is left behind; then it goes through. */
Test(dns_forward, miss_without_memory_is_enomem_and_leaves_nothing,
     .init = setup, .fini = finish) {
  fake up;
  client c = {0};
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  start();
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC};
  for (int k = 0; k < 2; k++)
    for (int n = 1;; n++) {
      long live = eddy__alloc_live();
      eddy__fault_fail_nth(kinds[k], (uint64_t)n, ENOMEM);
      eddy__dns_forward_req *r;
      int rc = ask_cap("oom.example.", 1, 0, 0, &c, &r);
      eddy__fault_reset();
      if (rc == 0) {
        eddy__dns_forward_cancel(r);
        break;
      }
      EXPECT_EQ(rc, -ENOMEM);
      cr_assert(r == NULL);
      EXPECT_EQ(eddy__alloc_live(), live);
      EXPECT_EQ(stats().inflight, 0);
      cr_assert(n < 20);
    }
  fake_close(&up);
}

/* Allocations after the question is asked (the exchange's, the cache
 * entry's) failed in turn: the client gets the answer or SERVFAIL, once,
 * and nothing leaks. */
Test(dns_forward, answer_without_memory_is_servfail_once, .init = setup,
     .fini = finish) {
  fake up;
  fake_open(loop, &up, M_ANSWER, 300);
  upstream_at(0, up.port);
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC};
  for (int k = 0; k < 2; k++)
    for (int n = 1;; n++) {
      client c = {0};
      start();
      EXPECT_EQ(ask("late.example.", 7, &c), 0);
      eddy__fault_fail_nth(kinds[k], (uint64_t)n, ENOMEM);
      /* A failure that loses the question or the answer inside the
       * exchange ends in its timeout, which the test brings about. */
      for (int t = 0; t < 3 && !wait_for(&c.calls, 1, 300); t++)
        advance(SEC);
      bool hit = eddy__fault_calls(kinds[k]) >= (uint64_t)n;
      eddy__fault_reset();
      EXPECT_EQ(c.calls, 1);
      int rcode = rcode_of(&c);
      cr_assert(rcode == 0 || rcode == EDDY_DNS_RCODE_SERVFAIL, "rcode %d",
                rcode);
      if (rcode == 0)
        expect_address(&c, 7, 1);
      eddy__dns_forwarder_free(fw);
      fw = NULL;
      up.queries = 0;
      if (!hit)
        break;
      cr_assert(n < 50);
    }
  fake_close(&up);
}
