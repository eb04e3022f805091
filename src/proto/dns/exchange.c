/* exchange.c: one question asked of upstream DNS servers.
 *
 * An exchange walks the server list `attempts` times round. Each attempt
 * is a fresh UDP socket bound to the wildcard address with port 0 and
 * connected to the server, so the kernel picks a random source port and
 * only the server's datagrams arrive; the question carries a fresh random
 * ID. A datagram that is not the answer (another ID, another question, not
 * a response, unparsable) is ignored and the wait goes on: an off-path
 * forger must guess both the port and the ID, and a stray late answer
 * changes nothing. An answer with TC=1 is asked again of the same server
 * over TCP (RFC 7766 framing), under the same per-attempt deadline.
 *
 * What ends an attempt: the deadline (-ETIMEDOUT), an ICMP error the
 * connected socket reports (-ECONNREFUSED for a closed port), a socket
 * that cannot be made or a send that fails, a TCP connection that fails or
 * closes before the answer, or an answer with SERVFAIL, REFUSED or NOTIMP.
 * The last such answer is kept, so that when every server fails the
 * caller gets it rather than a bare error.
 *
 * The exchange is a handle of its loop: eddy_loop_close_all ends it with
 * -ECANCELED through its callback, so an owner that is not a handle learns
 * of it. eddy__dns_exchange_cancel ends it silently.
 *
 * A TCP connect is given up by eddy_connect_cancel, whose callback still
 * comes later: the connect's argument is a small record of its own (tcp_try)
 * that outlives the exchange if need be and is freed by that callback. A
 * stream given up has its callbacks removed before it is aborted, so no
 * callback of it can reach a freed exchange.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/loop.h"
#include "eddy/buf.h"
#include "eddy/dns.h"
#include "eddy/net.h"
#include "net/net.h"
#include "proto/dns/exchange.h"
#include "sys/alloc.h"

#define DEFAULT_TIMEOUT_NS (2 * EDDY_NSEC_PER_SEC)
#define DEFAULT_ATTEMPTS 2
/* Header, the longest name, type and class, and an OPT record. */
#define QUERY_MAX (EDDY_DNS_HEADER_LEN + EDDY_DNS_NAME_MAX + 4 + 11)
#define TCP_FRAME_MAX (2 + 65535)

enum { ASKING, REPORTING, DONE };

typedef struct tcp_try {
  struct eddy__dns_exchange *x; /* NULL once the exchange gave it up */
  eddy_connect *req;
} tcp_try;

struct eddy__dns_exchange {
  eddy__handle h; /* first: the loop frees the exchange as a handle */
  eddy__dns_exchange_opts o;
  eddy__dns_exchange_cb cb;
  void *arg;
  int state;
  uint8_t qname[EDDY_DNS_NAME_MAX];
  uint16_t qtype, qclass;
  uint8_t query[QUERY_MAX];
  size_t qlen;
  uint16_t id;
  size_t server; /* index of the server asked now */
  int round;     /* rounds over the list begun so far, from 1 */
  /* The attempt under way: at most one of these is set. */
  eddy_udp *udp;
  tcp_try *tcp;      /* a TCP connect in flight */
  eddy_stream *s;    /* a TCP connection */
  eddy_buf in;       /* what the TCP connection has sent */
  eddy__timer timer; /* the attempt's deadline */
  eddy__soon report; /* the outcome, when no loop callback is running */
  int attempts_made; /* attempts ended */
  int refused;       /* attempts ended by -ECONNREFUSED */
  int timeouts;      /* attempts ended by their deadline */
  int last_err;      /* the last attempt's error */
  int final_err;     /* what report() says */
  uint8_t *saved;    /* the last SERVFAIL/REFUSED/NOTIMP answer, or NULL */
  size_t saved_len;
};

static void attempt(eddy__dns_exchange *x);
static void ask_tcp(eddy__dns_exchange *x);

/* ---- Random numbers -------------------------------------------------------- */

/* A random 16-bit ID. getrandom without flags draws from the kernel's
 * pool, which is seeded long before any DNS question; if it ever fails
 * the loop's clock and the exchange's address still give a varying ID. */
static uint16_t random_id(eddy__dns_exchange *x) {
  uint16_t id;
  if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t)sizeof id)
    id = (uint16_t)(eddy_loop_now(x->h.loop) ^ (uintptr_t)x ^
                    ((uintptr_t)x >> 16));
  return id;
}

/* ---- Ending ------------------------------------------------------------------ */

/* Closes the attempt under way, if any. */
static void drop_transport(eddy__dns_exchange *x) {
  eddy__timer_stop(&x->timer);
  if (x->udp) {
    eddy_udp_close(x->udp);
    x->udp = NULL;
  }
  if (x->tcp) {
    x->tcp->x = NULL; /* its callback, still to come, frees it */
    eddy_connect_cancel(x->tcp->req);
    x->tcp = NULL;
  }
  if (x->s) {
    eddy_stream_set_callbacks(x->s, NULL, NULL);
    eddy_stream_abort(x->s);
    x->s = NULL;
  }
  eddy_buf_reset(&x->in);
}

static void release(eddy__dns_exchange *x) {
  drop_transport(x);
  eddy__soon_cancel(&x->report);
  eddy_buf_free(&x->in);
  eddy__free(x->saved);
  x->saved = NULL;
  x->state = DONE;
  eddy__handle_close(&x->h);
}

/* Calls the callback (a loop callback is running) and releases x. msg
 * may point into x (the TCP buffer, the kept answer): the attempt is
 * closed only after the callback. */
static void finish(eddy__dns_exchange *x, int err, const uint8_t *msg,
                   size_t len) {
  x->state = DONE;
  eddy__timer_stop(&x->timer);
  x->cb(err, msg, len, x->arg);
  release(x);
}

static void report_now(eddy__soon *call, void *arg) {
  eddy__dns_exchange *x = arg;
  (void)call;
  if (x->final_err == 0 && x->saved)
    finish(x, 0, x->saved, x->saved_len);
  else
    finish(x, x->final_err, NULL, 0);
}

/* The outcome once every attempt has failed: the last failing answer if a
 * server gave one, else the error that best says what happened. */
static int overall_error(const eddy__dns_exchange *x) {
  if (x->saved)
    return 0;
  if (x->refused == x->attempts_made)
    return -ECONNREFUSED;
  if (x->timeouts > 0)
    return -ETIMEDOUT;
  return x->last_err ? x->last_err : -ETIMEDOUT;
}

/* Ends the attempt under way with err and starts the next one, or ends the
 * exchange when the rounds are over. Reports through the call-soon queue,
 * since the attempt may have failed inside a call of the caller's. */
static void next(eddy__dns_exchange *x, int err) {
  drop_transport(x);
  x->attempts_made++;
  x->last_err = err;
  if (err == -ECONNREFUSED)
    x->refused++;
  else if (err == -ETIMEDOUT)
    x->timeouts++;
  if (err == -ENOMEM) { /* no point going on: the next attempt needs memory */
    x->final_err = -ENOMEM;
    x->state = REPORTING;
    eddy__soon_schedule(x->h.loop, &x->report);
    return;
  }
  if (++x->server == x->o.nservers) {
    x->server = 0;
    if (x->round++ == x->o.attempts) {
      x->final_err = overall_error(x);
      x->state = REPORTING;
      eddy__soon_schedule(x->h.loop, &x->report);
      return;
    }
  }
  attempt(x);
}

static void deadline_passed(eddy__timer *t, void *arg) {
  (void)t;
  next(arg, -ETIMEDOUT);
}

/* ---- Answers ------------------------------------------------------------------ */

/* Whether msg[0..len) answers x's question: a response with x's ID and
 * exactly one question equal to x's (name without regard to case). */
static int matches(const eddy__dns_exchange *x, const uint8_t *msg,
                   size_t len) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t q;
  if (eddy_dns_msg_parse(&m, msg, len) != 0)
    return 0;
  if (m.id != x->id || !(m.flags & EDDY_DNS_FLAG_QR) || m.count[0] != 1 ||
      ((m.flags >> 11) & 15) != EDDY_DNS_OPCODE_QUERY)
    return 0;
  if (eddy_dns_msg_next(&m, &q) != 1)
    return 0;
  return q.type == x->qtype && q.rclass == x->qclass &&
         eddy_dns_name_equal(q.name, x->qname);
}

/* Keeps a failing answer to give if no server does better. */
static void keep_failure(eddy__dns_exchange *x, const uint8_t *msg,
                         size_t len) {
  uint8_t *copy = eddy__malloc(len);
  if (copy == NULL)
    return; /* the exchange goes on; the answer is just not kept */
  memcpy(copy, msg, len);
  eddy__free(x->saved);
  x->saved = copy;
  x->saved_len = len;
}

/* A matching answer came (tcp: over TCP): ends the attempt, or the
 * exchange. */
static void answered(eddy__dns_exchange *x, const uint8_t *msg, size_t len,
                     int tcp) {
  uint16_t flags = (uint16_t)(msg[2] << 8 | msg[3]);
  int rcode = flags & 15;
  if (!tcp && (flags & EDDY_DNS_FLAG_TC)) {
    ask_tcp(x);
    return;
  }
  if (rcode == EDDY_DNS_RCODE_SERVFAIL || rcode == EDDY_DNS_RCODE_REFUSED ||
      rcode == EDDY_DNS_RCODE_NOTIMP) {
    keep_failure(x, msg, len);
    next(x, -EPROTO);
    return;
  }
  finish(x, 0, msg, len);
}

/* ---- UDP ------------------------------------------------------------------------ */

static void on_datagram(eddy_udp *u, const char *data, size_t len,
                        const struct sockaddr *from, socklen_t fromlen,
                        void *arg) {
  eddy__dns_exchange *x = arg;
  (void)u;
  (void)from; /* the socket is connected: only the server's datagrams come */
  (void)fromlen;
  if (matches(x, (const uint8_t *)data, len))
    answered(x, (const uint8_t *)data, len, 0);
}

static void on_udp_error(eddy_udp *u, int err, void *arg) {
  (void)u;
  next(arg, err);
}

/* The server's address as text and its port, for eddy_udp_connect and
 * the TCP endpoint (the family was checked at the start). */
static void server_text(const eddy__dns_upstream *up, char *buf, size_t len,
                        unsigned *port) {
  const struct sockaddr *sa = (const struct sockaddr *)&up->addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    *port = ntohs(in->sin_port);
    inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len);
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    *port = ntohs(in6->sin6_port);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
  }
}

/* Opens the attempt's socket and sends the question. Returns 0 or the
 * error that stopped it. */
static int ask_udp(eddy__dns_exchange *x) {
  const eddy__dns_upstream *up = &x->o.servers[x->server];
  char host[INET6_ADDRSTRLEN];
  unsigned port;
  int v6 = up->addr.ss_family == AF_INET6, err;
  server_text(up, host, sizeof host, &port);
  err = eddy_udp_open(x->h.loop, v6 ? "::" : "0.0.0.0", 0, 0, on_datagram, x,
                      &x->udp);
  if (err)
    return err;
  eddy_udp_on_error(x->udp, on_udp_error);
  if ((err = eddy_udp_connect(x->udp, host, port)) != 0)
    return err;
  return eddy_udp_send(x->udp, x->query, x->qlen, NULL, 0);
}

/* Starts an attempt of the server x->server: a new ID, the deadline, a
 * new socket, the question. Returns 0 or the error that stopped it. */
static int try_server(eddy__dns_exchange *x) {
  int err;
  x->id = random_id(x);
  x->query[0] = (uint8_t)(x->id >> 8);
  x->query[1] = (uint8_t)x->id;
  err = eddy__timer_start(&x->timer, x->o.timeout_ns);
  return err ? err : ask_udp(x);
}

/* The next attempt; one that cannot start counts as failed. */
static void attempt(eddy__dns_exchange *x) {
  int err = try_server(x);
  if (err)
    next(x, err);
}

/* ---- TCP ------------------------------------------------------------------------ */

/* Reads the frames the connection has sent; an answer that matches ends
 * the attempt, others are skipped. */
static void on_tcp_data(eddy_stream *s, const char *data, size_t len,
                        void *arg) {
  eddy__dns_exchange *x = arg;
  int err = eddy_buf_append(&x->in, data, len);
  (void)s;
  if (err) {
    next(x, err == -ENOBUFS ? -EPROTO : err);
    return;
  }
  while (eddy_buf_len(&x->in) >= 2) {
    const uint8_t *p = (const uint8_t *)eddy_buf_data(&x->in);
    size_t n = (size_t)p[0] << 8 | p[1];
    if (eddy_buf_len(&x->in) < 2 + n)
      return;
    if (matches(x, p + 2, n)) {
      answered(x, p + 2, n, 1);
      return;
    }
    eddy_buf_consume(&x->in, 2 + n);
  }
}

static void on_tcp_close(eddy_stream *s, int status, const char *detail,
                         void *arg) {
  eddy__dns_exchange *x = arg;
  (void)s; /* x->s: a stream given up has no callbacks any more */
  (void)detail;
  x->s = NULL; /* the stream is gone: nothing to abort */
  next(x, status ? status : -ECONNRESET);
}

static const eddy_stream_callbacks tcp_callbacks = {on_tcp_data, NULL, NULL,
                                                    on_tcp_close};

static void on_tcp_connect(eddy_connect *req, eddy_stream *s, int status,
                           const char *detail, void *arg) {
  tcp_try *t = arg;
  eddy__dns_exchange *x = t->x;
  uint8_t len[2];
  int err;
  (void)req;
  (void)detail;
  eddy__free(t);
  if (x == NULL) { /* given up meanwhile */
    if (s)
      eddy_stream_abort(s);
    return;
  }
  x->tcp = NULL;
  if (status != 0 || s == NULL) {
    next(x, status ? status : -ECONNREFUSED);
    return;
  }
  x->s = s;
  eddy_stream_set_callbacks(s, &tcp_callbacks, x);
  len[0] = (uint8_t)(x->qlen >> 8);
  len[1] = (uint8_t)x->qlen;
  err = eddy_stream_write(s, len, 2);
  if (err == 0)
    err = eddy_stream_write(s, x->query, x->qlen);
  if (err)
    next(x, err);
}

/* Asks the same server over TCP, under a fresh deadline. */
static void ask_tcp(eddy__dns_exchange *x) {
  const eddy__dns_upstream *up = &x->o.servers[x->server];
  eddy_endpoint ep;
  int err;
  drop_transport(x);
  memset(&ep, 0, sizeof ep);
  ep.kind = EDDY_ENDPOINT_TCP;
  ep.timeout_ns = x->o.timeout_ns;
  ep.verify = 1;
  server_text(up, ep.host, sizeof ep.host, &ep.port);
  err = eddy__timer_start(&x->timer, x->o.timeout_ns);
  if (err == 0 && (x->tcp = eddy__calloc(1, sizeof *x->tcp)) == NULL)
    err = -ENOMEM;
  if (err == 0) {
    x->tcp->x = x;
    err = eddy_connect_endpoint(x->h.loop, &ep, on_tcp_connect, x->tcp,
                                &x->tcp->req);
    if (err) {
      eddy__free(x->tcp);
      x->tcp = NULL;
    }
  }
  if (err)
    next(x, err);
}

/* ---- Starting and cancelling ---------------------------------------------------- */

/* eddy_loop_close_all: the exchange ends with -ECANCELED, reported from
 * the loop. */
static void close_handle(eddy__handle *h) {
  eddy__dns_exchange *x = (eddy__dns_exchange *)h;
  if (x->state == DONE)
    return;
  drop_transport(x);
  eddy__free(x->saved);
  x->saved = NULL;
  x->final_err = -ECANCELED;
  x->state = REPORTING;
  eddy__soon_schedule(x->h.loop, &x->report);
}

static int check_opts(const eddy__dns_exchange_opts *o) {
  if (o == NULL || o->nservers == 0 || o->nservers > EDDY__DNS_UPSTREAMS_MAX ||
      o->timeout_ns < 0 || o->attempts < 0)
    return -EINVAL;
  for (size_t i = 0; i < o->nservers; i++) {
    int f = o->servers[i].addr.ss_family;
    if (f != AF_INET && f != AF_INET6)
      return -EINVAL;
  }
  return 0;
}

int eddy__dns_exchange_start(eddy_loop *loop,
                             const eddy__dns_exchange_opts *opts,
                             const uint8_t *qname, uint16_t qtype,
                             uint16_t qclass, eddy__dns_exchange_cb cb,
                             void *arg, eddy__dns_exchange **out) {
  eddy__dns_exchange *x;
  uint16_t flags;
  int n, err;
  if (loop == NULL || cb == NULL || qname == NULL || check_opts(opts) != 0 ||
      eddy_dns_name_check(qname, EDDY_DNS_NAME_MAX) < 0)
    return -EINVAL;
  if ((x = eddy__calloc(1, sizeof *x)) == NULL)
    return -ENOMEM;
  x->o = *opts;
  if (x->o.timeout_ns == 0)
    x->o.timeout_ns = DEFAULT_TIMEOUT_NS;
  if (x->o.attempts == 0)
    x->o.attempts = DEFAULT_ATTEMPTS;
  x->cb = cb;
  x->arg = arg;
  x->round = 1;
  memcpy(x->qname, qname, eddy_dns_name_len(qname));
  x->qtype = qtype;
  x->qclass = qclass;
  flags = (uint16_t)((opts->rd ? EDDY_DNS_FLAG_RD : 0) |
                     (opts->cd ? EDDY_DNS_FLAG_CD : 0));
  n = eddy_dns_query_write(x->query, sizeof x->query, 0, flags, qname, qtype,
                           qclass, opts->edns_udp_size, false);
  if (n < 0) {
    eddy__free(x);
    return -EINVAL;
  }
  x->qlen = (size_t)n;
  eddy_buf_init(&x->in, TCP_FRAME_MAX);
  eddy__handle_init(loop, &x->h, close_handle);
  eddy__timer_init(loop, &x->timer, deadline_passed, x);
  eddy__soon_init(&x->report, report_now, x);
  /* A first socket that cannot be made, or no memory, is the caller's to
   * hear at once; a send that fails moves on to the next server. */
  err = try_server(x);
  if (err == -ENOMEM || (err && x->udp == NULL)) {
    release(x);
    return err;
  }
  if (err)
    next(x, err);
  if (out)
    *out = x;
  return 0;
}

void eddy__dns_exchange_cancel(eddy__dns_exchange *x) {
  if (x == NULL || x->state == DONE)
    return;
  release(x);
}

/* ---- Upstream addresses ---------------------------------------------------------- */

static int parse_port(const char *s, unsigned *port) {
  unsigned v = 0;
  if (*s == '\0')
    return -EINVAL;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -EINVAL;
    v = v * 10 + (unsigned)(*s - '0');
    if (v > 65535)
      return -EINVAL;
  }
  if (v == 0)
    return -EINVAL;
  *port = v;
  return 0;
}

int eddy__dns_upstream_parse(const char *text, eddy__dns_upstream *u) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *colon, *port_text = NULL;
  unsigned port = 53;
  size_t hlen;
  int family, len;
  if (text == NULL || u == NULL)
    return -EINVAL;
  if (text[0] == '[') { /* [V6] or [V6]:PORT */
    const char *close = strchr(text, ']');
    if (close == NULL)
      return -EINVAL;
    hlen = (size_t)(close - text - 1);
    text++;
    if (close[1] == ':')
      port_text = close + 2;
    else if (close[1] != '\0')
      return -EINVAL;
    family = AF_INET6;
  } else if ((colon = strchr(text, ':')) != NULL && strchr(colon + 1, ':')) {
    hlen = strlen(text); /* a bare IPv6 address: no port */
    family = AF_INET6;
  } else {
    hlen = colon ? (size_t)(colon - text) : strlen(text);
    port_text = colon ? colon + 1 : NULL;
    family = AF_INET;
  }
  if (hlen == 0 || hlen >= sizeof host)
    return -EINVAL;
  memcpy(host, text, hlen);
  host[hlen] = '\0';
  if (port_text && parse_port(port_text, &port) != 0)
    return -EINVAL;
  len = eddy__sockaddr_ip(family, host, port, &u->addr);
  if (len < 0)
    return -EINVAL;
  u->addrlen = (socklen_t)len;
  return 0;
}
