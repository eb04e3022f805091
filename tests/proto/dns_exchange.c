/* The upstream exchange: one question asked of fake DNS servers on
 * 127.0.0.1 (an eddy_udp socket and an eddy listener on the same port),
 * each behaving as the test says: answering, answering with the wrong ID
 * or question first, keeping silent, truncating, failing. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "eddy/dns.h"
#include "helpers.h"
#include "proto/dns/exchange.h"

enum mode {
  ANSWER,       /* A 192.0.2.1 */
  WRONG_ID,     /* an answer with another ID, then the right one */
  WRONG_Q,      /* an answer to another type, then the right one */
  SILENT,       /* nothing */
  TRUNCATE,     /* TC=1 over UDP; over TCP a stray frame, then A 192.0.2.2 */
  TCP_SILENT,   /* TC=1 over UDP; nothing over TCP */
  SERVFAIL,     /* rcode SERVFAIL */
  ANSWER_UPPER, /* the right answer with the question's name in upper case */
  JUNK_FIRST    /* 5 bytes, then the query itself (QR=0), then the answer */
};

typedef struct fake {
  eddy_udp *u;
  eddy_listener *l;
  int port, mode;
  int udp_queries, tcp_queries, accepted;
  unsigned from_ports[8];
  eddy_stream *ts;
  eddy_buf tin;
} fake;

/* Writes the answer to query[0..qlen) into out: rcode, an A record with
 * last byte `a` (0: none), TC if tc, the ID changed if bad_id, the
 * question's type changed if bad_q. Returns the length. */
static size_t make_answer(const uint8_t *query, size_t qlen, uint8_t *out,
                          size_t cap, int rcode, int a, int tc, int bad_id,
                          int bad_q, int upper) {
  eddy_dns_query_t q;
  eddy_dns_writer_t w;
  uint8_t rdata[4] = {192, 0, 2, (uint8_t)a};
  cr_assert(eddy_dns_query_parse(query, qlen, &q) == EDDY_DNS_VERDICT_ANSWER);
  if (bad_id)
    q.id ^= 0x5a5a;
  if (bad_q)
    q.qtype = EDDY_DNS_TYPE_AAAA;
  if (upper)
    for (size_t i = 0; i < q.qname_len; i++)
      if (q.qname[i] >= 'a' && q.qname[i] <= 'z')
        q.qname[i] = (uint8_t)(q.qname[i] - 32);
  EXPECT_OK(eddy_dns_writer_init(&w, out, cap, &q, (uint16_t)rcode));
  eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_RA | (tc ? EDDY_DNS_FLAG_TC : 0));
  if (a)
    EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, q.qname, q.qtype,
                                  q.qclass, 300, rdata, 4));
  return eddy_dns_writer_finish(&w);
}

static void fake_recv(eddy_udp *u, const char *data, size_t len,
                      const struct sockaddr *from, socklen_t fromlen,
                      void *arg) {
  fake *f = arg;
  const uint8_t *q = (const uint8_t *)data;
  uint8_t out[512];
  size_t n;
  if (f->udp_queries < 8)
    f->from_ports[f->udp_queries] = ntohs(
        ((const struct sockaddr_in *)from)->sin_port);
  f->udp_queries++;
  switch (f->mode) {
  case SILENT:
    return;
  case WRONG_ID:
  case WRONG_Q:
    n = make_answer(q, len, out, sizeof out, 0, 9, 0, f->mode == WRONG_ID,
                    f->mode == WRONG_Q, 0);
    EXPECT_OK(eddy_udp_send(u, out, n, from, fromlen));
    n = make_answer(q, len, out, sizeof out, 0, 1, 0, 0, 0, 0);
    break;
  case JUNK_FIRST:
    EXPECT_OK(eddy_udp_send(u, "\x12\x34\x81\x80\x00", 5, from, fromlen));
    /* the right ID, QR and one question, but the question cut off */
    memcpy(out, data, 12);
    out[2] |= 0x80;
    EXPECT_OK(eddy_udp_send(u, out, 14, from, fromlen));
    EXPECT_OK(eddy_udp_send(u, data, len, from, fromlen));
    n = make_answer(q, len, out, sizeof out, 0, 1, 0, 0, 0, 0);
    break;
  case TRUNCATE:
  case TCP_SILENT:
    n = make_answer(q, len, out, sizeof out, 0, 0, 1, 0, 0, 0);
    break;
  case SERVFAIL:
    n = make_answer(q, len, out, sizeof out, EDDY_DNS_RCODE_SERVFAIL, 0, 0, 0,
                    0, 0);
    break;
  default:
    n = make_answer(q, len, out, sizeof out, 0, 1, 0, 0, 0,
                    f->mode == ANSWER_UPPER);
  }
  EXPECT_OK(eddy_udp_send(u, out, n, from, fromlen));
}

static void fake_tcp_data(eddy_stream *s, const char *data, size_t len,
                          void *arg) {
  fake *f = arg;
  if (eddy_buf_append(&f->tin, data, len) != 0) { /* a fault sweep's */
    eddy_stream_abort(s);
    return;
  }
  while (eddy_buf_len(&f->tin) >= 2) {
    const uint8_t *p = (const uint8_t *)eddy_buf_data(&f->tin);
    size_t n = (size_t)p[0] << 8 | p[1], m;
    uint8_t out[2 + 512];
    if (eddy_buf_len(&f->tin) < 2 + n)
      return;
    f->tcp_queries++;
    if (f->mode == TRUNCATE) {
      m = make_answer(p + 2, n, out + 2, 512, 0, 7, 0, 1, 0, 0);
      out[0] = (uint8_t)(m >> 8);
      out[1] = (uint8_t)m;
      EXPECT_OK(eddy_stream_write(s, out, 2 + m));
      m = make_answer(p + 2, n, out + 2, 512, 0, 2, 0, 0, 0, 0);
      out[0] = (uint8_t)(m >> 8);
      out[1] = (uint8_t)m;
      /* in two pieces: the framing must wait for the rest */
      EXPECT_OK(eddy_stream_write(s, out, 3));
      EXPECT_OK(eddy_stream_write(s, out + 3, 2 + m - 3));
    }
    eddy_buf_consume(&f->tin, 2 + n);
  }
}

static void fake_tcp_close(eddy_stream *s, int status, const char *detail,
                           void *arg) {
  fake *f = arg;
  (void)status;
  (void)detail;
  if (f->ts == s)
    f->ts = NULL;
}

static const eddy_stream_callbacks fake_tcp = {fake_tcp_data, NULL, NULL,
                                               fake_tcp_close};

static void fake_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  fake *f = arg;
  (void)l;
  f->accepted++;
  f->ts = s;
  eddy_stream_set_callbacks(s, &fake_tcp, f);
}

/* A fake server on host (127.0.0.1 or ::1), UDP and TCP on one port. */
static void fake_open_at(eddy_loop *loop, fake *f, int mode, const char *host) {
  char ep[64], err[200];
  int v6 = strchr(host, ':') != NULL;
  memset(f, 0, sizeof *f);
  f->mode = mode;
  eddy_buf_init(&f->tin, 70000);
  /* The UDP port the kernel picks may be held on the TCP side (by some
   * connection's local end, on a busy machine): pick again. */
  for (int tries = 0;; tries++) {
    int rc;
    EXPECT_OK(eddy_udp_open(loop, host, 0, 0, fake_recv, f, &f->u));
    f->port = eddy_udp_port(f->u);
    snprintf(ep, sizeof ep, "%s:%d:interface=%s%s%s", v6 ? "tcp6" : "tcp",
             f->port, v6 ? "[" : "", host, v6 ? "]" : "");
    rc = eddy_listen(loop, ep, fake_accept, f, &f->l, err, sizeof err);
    if (rc == 0)
      return;
    cr_assert(rc == -EADDRINUSE && tries < 50, "listen %s: %s", ep, err);
    eddy_udp_close(f->u);
  }
}

static void fake_open(eddy_loop *loop, fake *f, int mode) {
  fake_open_at(loop, f, mode, "127.0.0.1");
}

static void fake_close(fake *f) {
  if (f->u)
    eddy_udp_close(f->u);
  if (f->l)
    eddy_listener_close(f->l);
  if (f->ts)
    eddy_stream_abort(f->ts);
  f->u = NULL;
  f->l = NULL;
  eddy_buf_free(&f->tin);
}

/* A port where nothing listens: bound, read, closed. */
static int closed_port(eddy_loop *loop) {
  fake f;
  int port;
  fake_open(loop, &f, SILENT);
  port = f.port;
  fake_close(&f);
  return port;
}

static void add_server(eddy__dns_exchange_opts *o, int port) {
  char text[32];
  snprintf(text, sizeof text, "127.0.0.1:%d", port);
  EXPECT_OK(eddy__dns_upstream_parse(text, &o->servers[o->nservers++]));
}

typedef struct result {
  int calls, err;
  uint8_t msg[1024];
  size_t len;
} result;

static void on_done(int err, const uint8_t *msg, size_t len, void *arg) {
  result *r = arg;
  r->calls++;
  r->err = err;
  r->len = 0;
  if (msg) {
    cr_assert(len <= sizeof r->msg);
    memcpy(r->msg, msg, len);
    r->len = len;
  } else {
    EXPECT_EQ(len, 0);
  }
}

/* The answer's rcode, and the last byte of its first A record (0: none). */
static int rcode_of(const result *r) {
  return r->msg[3] & 15;
}

static int a_of(const result *r) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_OK(eddy_dns_msg_parse(&m, r->msg, r->len));
  while (eddy_dns_msg_next(&m, &rr) == 1)
    if (rr.section == EDDY_DNS_ANSWER && rr.type == EDDY_DNS_TYPE_A) {
      EXPECT_EQ(rr.rdlen, 4);
      return rr.rdata[3];
    }
  return 0;
}

static const uint8_t www[] = "\3www\7example\3com";

static int ask(eddy_loop *loop, eddy__dns_exchange_opts *o, result *r,
               eddy__dns_exchange **x) {
  return eddy__dns_exchange_start(loop, o, www, EDDY_DNS_TYPE_A,
                                  EDDY_DNS_CLASS_IN, on_done, r, x);
}

static eddy__dns_exchange_opts opts_ms(int timeout_ms, int attempts) {
  eddy__dns_exchange_opts o;
  memset(&o, 0, sizeof o);
  o.timeout_ns = timeout_ms * EDDY_NSEC_PER_MSEC;
  o.attempts = attempts;
  o.rd = true;
  o.edns_udp_size = EDDY_DNS_EDNS_UDP_SIZE;
  return o;
}

Test(dns_exchange, matching_answer_is_delivered_from_the_loop) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange *x = NULL;
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, ANSWER);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, &x));
  cr_assert(x != NULL);
  EXPECT_EQ(r.calls, 0); /* never from inside start */
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(rcode_of(&r), 0);
  EXPECT_EQ(a_of(&r), 1);
  EXPECT_EQ(f.udp_queries, 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, each_question_has_its_own_source_port_and_id) {
  eddy_loop *loop = test_loop();
  fake f;
  result r1 = {0}, r2 = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, ANSWER);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r1, NULL));
  EXPECT_OK(ask(loop, &o, &r2, NULL));
  cr_assert(test_run_until(loop, &r1.calls));
  cr_assert(test_run_until(loop, &r2.calls));
  EXPECT_EQ(f.udp_queries, 2);
  EXPECT_NE(f.from_ports[0], f.from_ports[1]);
  EXPECT_EQ(r1.err, 0);
  EXPECT_EQ(r2.err, 0);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, answer_with_wrong_id_is_ignored_then_right_one_taken) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, WRONG_ID);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 1); /* not the forged 9 */
  EXPECT_EQ(f.udp_queries, 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, answer_to_another_question_is_ignored) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, WRONG_Q);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, junk_and_the_query_echoed_back_are_ignored) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, JUNK_FIRST);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(r.msg[2] & 0x80, 0x80); /* the response, not the echo */
  EXPECT_EQ(a_of(&r), 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, question_name_is_matched_without_regard_to_case) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, ANSWER_UPPER);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, silent_server_times_out_and_the_next_one_answers) {
  eddy_loop *loop = test_loop();
  fake mute, good;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(100, 1);
  int64_t t0;
  fake_open(loop, &mute, SILENT);
  fake_open(loop, &good, ANSWER);
  add_server(&o, mute.port);
  add_server(&o, good.port);
  t0 = test_clock_ms();
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_GE(test_clock_ms() - t0, 95);
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 1);
  EXPECT_EQ(mute.udp_queries, 1);
  EXPECT_EQ(good.udp_queries, 1);
  fake_close(&mute);
  fake_close(&good);
  test_finish(loop);
}

Test(dns_exchange, no_answer_from_anyone_is_etimedout_after_every_round) {
  eddy_loop *loop = test_loop();
  fake mute;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(50, 3);
  fake_open(loop, &mute, SILENT);
  add_server(&o, mute.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, -ETIMEDOUT);
  EXPECT_EQ(r.len, 0);
  EXPECT_EQ(mute.udp_queries, 3);
  fake_close(&mute);
  test_finish(loop);
}

Test(dns_exchange, icmp_refused_moves_on_to_the_next_server_at_once) {
  eddy_loop *loop = test_loop();
  fake good;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(5000, 1);
  int64_t t0;
  int closed = closed_port(loop);
  fake_open(loop, &good, ANSWER);
  add_server(&o, closed);
  add_server(&o, good.port);
  t0 = test_clock_ms();
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_LT(test_clock_ms() - t0, 2000); /* not the 5 s timeout */
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(good.udp_queries, 1);
  fake_close(&good);
  test_finish(loop);
}

Test(dns_exchange, every_server_refusing_is_econnrefused) {
  eddy_loop *loop = test_loop();
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(5000, 2);
  add_server(&o, closed_port(loop));
  add_server(&o, closed_port(loop));
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, -ECONNREFUSED);
  test_finish(loop);
}

Test(dns_exchange, truncated_answer_is_asked_again_over_tcp) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &f, TRUNCATE);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 2); /* TCP's answer, past the stray frame */
  EXPECT_EQ(f.udp_queries, 1);
  EXPECT_EQ(f.tcp_queries, 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, ipv6_servers_over_udp_and_tcp) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  char text[40];
  fake_open_at(loop, &f, TRUNCATE, "::1");
  snprintf(text, sizeof text, "[::1]:%d", f.port);
  EXPECT_OK(eddy__dns_upstream_parse(text, &o.servers[o.nservers++]));
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 2);
  EXPECT_EQ(f.udp_queries, 1);
  EXPECT_EQ(f.tcp_queries, 1);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, silent_tcp_times_out_and_the_next_server_answers) {
  eddy_loop *loop = test_loop();
  fake mute, good;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(150, 1);
  fake_open(loop, &mute, TCP_SILENT);
  fake_open(loop, &good, ANSWER);
  add_server(&o, mute.port);
  add_server(&o, good.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 1);
  EXPECT_EQ(mute.tcp_queries, 1);
  fake_close(&mute);
  fake_close(&good);
  test_finish(loop);
}

Test(dns_exchange, tcp_refused_moves_on) {
  eddy_loop *loop = test_loop();
  fake mute, good;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &mute, TRUNCATE);
  eddy_listener_close(mute.l); /* TC=1 over UDP, nobody on TCP */
  mute.l = NULL;
  fake_open(loop, &good, ANSWER);
  add_server(&o, mute.port);
  add_server(&o, good.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a_of(&r), 1);
  EXPECT_EQ(good.udp_queries, 1);
  fake_close(&mute);
  fake_close(&good);
  test_finish(loop);
}

Test(dns_exchange, servfail_moves_on_and_is_given_when_all_fail) {
  eddy_loop *loop = test_loop();
  fake bad, good;
  result r = {0}, r2 = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1), o2 = opts_ms(2000, 2);
  fake_open(loop, &bad, SERVFAIL);
  fake_open(loop, &good, ANSWER);
  add_server(&o, bad.port);
  add_server(&o, good.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(rcode_of(&r), 0);
  EXPECT_EQ(a_of(&r), 1);
  add_server(&o2, bad.port);
  EXPECT_OK(ask(loop, &o2, &r2, NULL));
  cr_assert(test_run_until(loop, &r2.calls));
  EXPECT_EQ(r2.err, 0);
  EXPECT_EQ(rcode_of(&r2), EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_EQ(bad.udp_queries, 3); /* once, then twice round a list of one */
  fake_close(&bad);
  fake_close(&good);
  test_finish(loop);
}

Test(dns_exchange, cancel_closes_everything_and_calls_nothing) {
  eddy_loop *loop = test_loop();
  fake mute;
  result r = {0};
  eddy__dns_exchange *x = NULL;
  eddy__dns_exchange_opts o = opts_ms(50, 1);
  fake_open(loop, &mute, SILENT);
  add_server(&o, mute.port);
  EXPECT_OK(ask(loop, &o, &r, &x));
  cr_assert(test_run_until(loop, &mute.udp_queries));
  eddy__dns_exchange_cancel(x);
  test_run_for(loop, 120);
  EXPECT_EQ(r.calls, 0);
  fake_close(&mute);
  test_finish(loop);
}

Test(dns_exchange, cancel_during_tcp) {
  eddy_loop *loop = test_loop();
  fake mute;
  result r = {0};
  eddy__dns_exchange *x = NULL;
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &mute, TCP_SILENT);
  add_server(&o, mute.port);
  EXPECT_OK(ask(loop, &o, &r, &x));
  cr_assert(test_run_until(loop, &mute.tcp_queries));
  eddy__dns_exchange_cancel(x);
  test_run_for(loop, 50);
  EXPECT_EQ(r.calls, 0);
  fake_close(&mute);
  test_finish(loop);
}

Test(dns_exchange, cancel_while_tcp_connects) {
  eddy_loop *loop = test_loop();
  fake mute;
  result r = {0};
  eddy__dns_exchange *x = NULL;
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &mute, TCP_SILENT);
  add_server(&o, mute.port);
  eddy__fault_reset();
  EXPECT_OK(ask(loop, &o, &r, &x));
  /* Cancel as soon as the TCP connect has been issued, before it
   * reports: connect() calls are counted by the fault layer. */
  while (eddy__fault_calls(EDDY__SYS_CONNECT) < 2 && r.calls == 0)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(mute.accepted, 0);
  eddy__dns_exchange_cancel(x);
  test_run_for(loop, 50);
  EXPECT_EQ(r.calls, 0);
  fake_close(&mute);
  test_finish(loop);
}

Test(dns_exchange, close_all_ends_the_exchange_with_ecanceled) {
  eddy_loop *loop = test_loop();
  fake mute;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &mute, TCP_SILENT);
  add_server(&o, mute.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &mute.tcp_queries));
  eddy_buf_free(&mute.tin);
  eddy_loop_close_all(loop);
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, -ECANCELED);
  EXPECT_EQ(r.calls, 1);
  test_finish(loop);
}

Test(dns_exchange, zero_timeout_and_attempts_take_the_defaults) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(0, 0);
  fake_open(loop, &f, ANSWER);
  add_server(&o, f.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, bad_arguments_are_einval) {
  eddy_loop *loop = test_loop();
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(50, 1);
  static const uint8_t bad_name[] = "\100abc";
  EXPECT_EQ(ask(loop, &o, &r, NULL), -EINVAL); /* no server */
  add_server(&o, 53);
  EXPECT_EQ(eddy__dns_exchange_start(loop, &o, bad_name, 1, 1, on_done, &r,
                                     NULL),
            -EINVAL);
  o.servers[1].addr.ss_family = AF_UNIX;
  o.nservers = 2;
  EXPECT_EQ(ask(loop, &o, &r, NULL), -EINVAL);
  o.nservers = EDDY__DNS_UPSTREAMS_MAX + 1;
  EXPECT_EQ(ask(loop, &o, &r, NULL), -EINVAL);
  EXPECT_EQ(r.calls, 0);
  eddy__dns_exchange_cancel(NULL); /* harmless */
  test_finish(loop);
}

Test(dns_exchange, upstream_addresses_parse) {
  eddy__dns_upstream u;
  const struct sockaddr_in *in = (const struct sockaddr_in *)&u.addr;
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&u.addr;
  EXPECT_OK(eddy__dns_upstream_parse("192.0.2.1", &u));
  EXPECT_EQ(in->sin_family, AF_INET);
  EXPECT_EQ(ntohs(in->sin_port), 53);
  EXPECT_OK(eddy__dns_upstream_parse("192.0.2.1:5353", &u));
  EXPECT_EQ(ntohs(in->sin_port), 5353);
  EXPECT_OK(eddy__dns_upstream_parse("::1", &u));
  EXPECT_EQ(in6->sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(in6->sin6_port), 53);
  EXPECT_OK(eddy__dns_upstream_parse("[2001:db8::1]:54", &u));
  EXPECT_EQ(ntohs(in6->sin6_port), 54);
  EXPECT_EQ(u.addrlen, sizeof(struct sockaddr_in6));
  EXPECT_EQ(eddy__dns_upstream_parse("", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("host.example:53", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("192.0.2.1:", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("192.0.2.1:0", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("192.0.2.1:65536", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("192.0.2.1:5x", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("[::1", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("[::1]x", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse("[192.0.2.1]:53", &u), -EINVAL);
  EXPECT_EQ(eddy__dns_upstream_parse(NULL, &u), -EINVAL);
}

/* ---- Faults ---------------------------------------------------------------------- */

Test(dns_exchange, no_memory_at_start_is_enomem_and_no_callback) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(50, 1);
  fake_open(loop, &f, ANSWER);
  add_server(&o, f.port);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(ask(loop, &o, &r, NULL), -ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 2, ENOMEM); /* the socket's */
  EXPECT_EQ(ask(loop, &o, &r, NULL), -ENOMEM);
  eddy__fault_reset();
  test_run_for(loop, 20);
  EXPECT_EQ(r.calls, 0);
  EXPECT_EQ(f.udp_queries, 0);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, socket_failure_at_start_is_returned) {
  eddy_loop *loop = test_loop();
  fake f;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(50, 1);
  fake_open(loop, &f, ANSWER);
  add_server(&o, f.port);
  eddy__fault_fail_nth(EDDY__SYS_SOCKET, 1, EMFILE);
  EXPECT_EQ(ask(loop, &o, &r, NULL), -EMFILE);
  eddy__fault_reset();
  test_run_for(loop, 20);
  EXPECT_EQ(r.calls, 0);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_exchange, send_failure_at_start_moves_on) {
  eddy_loop *loop = test_loop();
  fake a, b;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &a, ANSWER);
  fake_open(loop, &b, ANSWER);
  add_server(&o, a.port);
  add_server(&o, b.port);
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, ENETUNREACH);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a.udp_queries, 0);
  EXPECT_EQ(b.udp_queries, 1);
  fake_close(&a);
  fake_close(&b);
  test_finish(loop);
}

Test(dns_exchange, connect_failure_at_start_moves_on) {
  eddy_loop *loop = test_loop();
  fake a, b;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &a, ANSWER);
  fake_open(loop, &b, ANSWER);
  add_server(&o, a.port);
  add_server(&o, b.port);
  eddy__fault_fail_nth(EDDY__SYS_CONNECT, 1, EADDRNOTAVAIL);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(a.udp_queries, 0);
  EXPECT_EQ(b.udp_queries, 1);
  fake_close(&a);
  fake_close(&b);
  test_finish(loop);
}

Test(dns_exchange, servfail_that_cannot_be_kept_is_eproto) {
  eddy_loop *loop = test_loop();
  fake bad;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(2000, 1);
  fake_open(loop, &bad, SERVFAIL);
  add_server(&o, bad.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  cr_assert(test_run_until(loop, &r.calls));
  eddy__fault_reset();
  EXPECT_EQ(r.err, -EPROTO);
  fake_close(&bad);
  test_finish(loop);
}

Test(dns_exchange, socket_failure_later_counts_as_a_failed_attempt) {
  eddy_loop *loop = test_loop();
  fake mute, good;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(60, 2);
  fake_open(loop, &mute, SILENT);
  fake_open(loop, &good, ANSWER);
  add_server(&o, mute.port);
  add_server(&o, good.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  /* The second attempt's socket fails: round two asks both again. */
  eddy__fault_fail_nth(EDDY__SYS_SOCKET, 1, EMFILE);
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(mute.udp_queries, 2);
  EXPECT_EQ(good.udp_queries, 1);
  fake_close(&mute);
  fake_close(&good);
  test_finish(loop);
}

Test(dns_exchange, every_socket_failing_later_reports_its_error) {
  eddy_loop *loop = test_loop();
  fake mute;
  result r = {0};
  eddy__dns_exchange_opts o = opts_ms(30, 3);
  fake_open(loop, &mute, SILENT);
  add_server(&o, mute.port);
  add_server(&o, mute.port);
  EXPECT_OK(ask(loop, &o, &r, NULL));
  eddy__fault_fail_after(EDDY__SYS_SOCKET, 1, ENFILE);
  cr_assert(test_run_until(loop, &r.calls));
  EXPECT_EQ(r.err, -ETIMEDOUT); /* the first attempt did time out */
  EXPECT_EQ(mute.udp_queries, 1);
  fake_close(&mute);
  test_finish(loop);
}

/* Every allocation of a truncated exchange (UDP, then TCP) fails in turn:
 * each run ends with the answer, -ENOMEM from start or the callback, or a
 * timeout (when the fake server's own allocation failed), and leaks
 * nothing. */
static void sweep(int kind) {
  for (uint64_t n = 1;; n++) {
    eddy_loop *loop = test_loop();
    fake f;
    result r = {0};
    eddy__dns_exchange_opts o = opts_ms(150, 1);
    int rc;
    fake_open(loop, &f, TRUNCATE);
    add_server(&o, f.port);
    eddy__fault_fail_nth(kind, n, ENOMEM);
    rc = ask(loop, &o, &r, NULL);
    if (rc == 0)
      cr_assert(test_run_until(loop, &r.calls));
    int fired = eddy__fault_calls(kind) >= n;
    eddy__fault_reset();
    if (rc != 0) {
      EXPECT_EQ(rc, -ENOMEM);
      EXPECT_EQ(r.calls, 0);
    } else {
      EXPECT_EQ(r.calls, 1);
      cr_assert(r.err == 0 || r.err == -ENOMEM || r.err == -ETIMEDOUT ||
                    r.err == -ECONNRESET || r.err == -EPIPE,
                "n=%d err %d", (int)n, r.err);
      if (r.err == 0)
        EXPECT_EQ(a_of(&r), 2);
    }
    fake_close(&f);
    test_finish(loop);
    if (!fired) {
      EXPECT_EQ(rc, 0);
      EXPECT_EQ(r.err, 0);
      break;
    }
    cr_assert(n < 200);
  }
}

Test(dns_exchange, fault_sweep_calloc) {
  sweep(EDDY__SYS_CALLOC);
}

Test(dns_exchange, fault_sweep_malloc) {
  sweep(EDDY__SYS_MALLOC);
}
