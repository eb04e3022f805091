/* client.c: the resolver and its lookups (eddy/resolver.h).
 *
 * A lookup is the list of names to ask (the candidates: the name as it is
 * and with each search domain, in the order glibc's res_search tries
 * them) and one upstream exchange (exchange.c) at a time, for the
 * candidate under way. An answer that ends the lookup goes to the caller
 * straight from the exchange's callback; a failure worth going on from
 * (NXDOMAIN, NODATA, SERVFAIL) is kept, in a copy, in case every later
 * candidate does worse.
 *
 * Resolvers and lookups are handles of the loop, so eddy_loop_close_all
 * ends lookups through their callbacks (-ECANCELED) and frees resolvers.
 * A lookup leaves its resolver's list as soon as it is decided (answered,
 * failed or cancelled), so a resolver closed from a callback never reaches
 * a lookup that is going away, and a lookup never touches a resolver after
 * that.
 *
 * The Deferred and coroutine forms are small producers over the callback
 * form, built the way src/async/forms.c and coro_net.c wrap a connect:
 * their state is on the heap and the lookup's callback, which always
 * comes, frees it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "async/async.h"
#include "async/coro.h"
#include "core/loop.h"
#include "eddy/resolver.h"
#include "net/net.h"
#include "proto/dns/exchange.h"
#include "sys/alloc.h"

#define CANDIDATES_MAX (EDDY_RESOLVER_SEARCH_MAX + 1)

struct eddy_resolver {
  eddy__handle h; /* first: the loop frees the resolver as a handle */
  eddy_resolver_conf conf;
  eddy__dns_exchange_opts xo;
  uint8_t search[EDDY_RESOLVER_SEARCH_MAX][EDDY_DNS_NAME_MAX];
  int nsearch;
  eddy_dns_lookup *lookups; /* undecided lookups */
  int closed;
  size_t first; /* options rotate: the server the next exchange asks first */
};

enum { ASKING, REPORTING, DONE };

/* How good a failure is to report when every candidate fails (glibc's
 * order: NODATA, then SERVFAIL, then NXDOMAIN). */
enum { KEPT_NONE, KEPT_NXDOMAIN, KEPT_SERVFAIL, KEPT_NODATA };

struct eddy_dns_lookup {
  eddy__handle h;   /* first */
  eddy_resolver *r; /* NULL once decided */
  eddy_dns_lookup *prev, *next;
  eddy_dns_lookup_cb cb;
  void *arg;
  int state;
  uint16_t qtype;
  uint8_t cand[CANDIDATES_MAX][EDDY_DNS_NAME_MAX];
  int ncand, at; /* candidates, and the one under way */
  eddy__dns_exchange *x;
  eddy__soon report;
  int status;
  int kept_kind;
  int kept_cand;
  uint8_t *kept; /* a copy of the kept answer */
  size_t kept_len;
};

/* ---- Answers ----------------------------------------------------------------- */

int eddy_dns_answer_records(const eddy_dns_answer *a, eddy_dns_msg_t *m) {
  eddy_dns_rr_t rr;
  int err;
  if (a == NULL || m == NULL)
    return -EINVAL;
  if ((err = eddy_dns_msg_parse(m, a->msg, a->len)) != 0)
    return err;
  for (unsigned i = 0; i < m->count[0]; i++)
    if (eddy_dns_msg_next(m, &rr) != 1)
      return EDDY_EPARSE;
  return 0;
}

eddy_dns_answer *eddy_dns_answer_copy(const eddy_dns_answer *a) {
  eddy_dns_answer *c = eddy__malloc(sizeof *c + a->len);
  if (c == NULL)
    return NULL;
  *c = *a;
  memcpy(c + 1, a->msg, a->len);
  c->msg = (const uint8_t *)(c + 1);
  return c;
}

void eddy_dns_answer_free(void *a) {
  eddy__free(a);
}

static void fill_answer(eddy_dns_answer *a, const eddy_dns_lookup *q, int cand,
                        const uint8_t *msg, size_t len) {
  memset(a, 0, sizeof *a);
  a->flags = (uint16_t)(msg[2] << 8 | msg[3]);
  a->rcode = a->flags & 15;
  a->qname_len = eddy_dns_name_len(q->cand[cand]);
  memcpy(a->qname, q->cand[cand], a->qname_len);
  a->qtype = q->qtype;
  a->ancount = (uint16_t)(msg[6] << 8 | msg[7]);
  a->msg = msg;
  a->len = len;
}

/* ---- Ending a lookup ------------------------------------------------------------ */

/* Takes q off its resolver's list: it is decided. */
static void detach(eddy_dns_lookup *q) {
  eddy_resolver *r = q->r;
  if (r == NULL)
    return;
  if (q->prev)
    q->prev->next = q->next;
  else
    r->lookups = q->next;
  if (q->next)
    q->next->prev = q->prev;
  q->prev = q->next = NULL;
  q->r = NULL;
}

/* Calls the callback (from a loop callback) and releases q. */
static void finish(eddy_dns_lookup *q, int status, const uint8_t *msg,
                   size_t len, int cand) {
  eddy_dns_answer a;
  detach(q);
  q->state = DONE; /* no exchange is left: its callback, or defer, ended it */
  eddy__soon_cancel(&q->report);
  if (status == 0)
    fill_answer(&a, q, cand, msg, len);
  q->cb(q, status, status == 0 ? &a : NULL, q->arg);
  eddy__free(q->kept);
  q->kept = NULL;
  eddy__handle_close(&q->h);
}

static void report_now(eddy__soon *call, void *arg) {
  eddy_dns_lookup *q = arg;
  (void)call;
  finish(q, q->status, NULL, 0, 0);
}

/* Decides q outside its exchange's callback: reported from the loop. */
static void defer(eddy_dns_lookup *q, int status) {
  detach(q);
  if (q->x) {
    eddy__dns_exchange_cancel(q->x);
    q->x = NULL;
  }
  q->status = status;
  q->state = REPORTING;
  eddy__soon_schedule(q->h.loop, &q->report);
}

/* ---- Candidates ----------------------------------------------------------------- */

static void on_exchange(int err, const uint8_t *msg, size_t len, void *arg);

/* The exchange options for the next question: the resolver's, with the
 * server list turned by one more each time under options rotate. */
static const eddy__dns_exchange_opts *
exchange_opts(eddy_resolver *r, eddy__dns_exchange_opts *o) {
  size_t n = r->xo.nservers;
  if (!r->conf.rotate || n < 2)
    return &r->xo;
  *o = r->xo;
  for (size_t i = 0; i < n; i++)
    o->servers[i] = r->xo.servers[(r->first + i) % n];
  r->first = (r->first + 1) % n;
  return o;
}

static int ask(eddy_dns_lookup *q) {
  eddy__dns_exchange_opts o;
  return eddy__dns_exchange_start(q->h.loop, exchange_opts(q->r, &o),
                                  q->cand[q->at], q->qtype, EDDY_DNS_CLASS_IN,
                                  on_exchange, q, &q->x);
}

/* Keeps the answer of a failed candidate if it is better than the one
 * kept. Memory short: the old one stays, which only makes the final
 * failure less precise. */
static void keep(eddy_dns_lookup *q, int kind, const uint8_t *msg, size_t len) {
  uint8_t *copy;
  if (kind < q->kept_kind)
    return;
  if (kind == q->kept_kind && kind != KEPT_NXDOMAIN)
    return; /* the first NODATA or SERVFAIL, the last NXDOMAIN */
  if ((copy = eddy__malloc(len)) == NULL)
    return;
  memcpy(copy, msg, len);
  eddy__free(q->kept);
  q->kept = copy;
  q->kept_len = len;
  q->kept_kind = kind;
  q->kept_cand = q->at;
}

/* What a candidate's answer means for the lookup: KEPT_NONE ends it. */
static int failure_kind(const uint8_t *msg, size_t len) {
  int rcode = msg[3] & 15;
  int ancount = msg[6] << 8 | msg[7];
  (void)len;
  if (rcode == EDDY_DNS_RCODE_NXDOMAIN)
    return KEPT_NXDOMAIN;
  if (rcode == EDDY_DNS_RCODE_SERVFAIL)
    return KEPT_SERVFAIL;
  if (rcode == EDDY_DNS_RCODE_NOERROR && ancount == 0)
    return KEPT_NODATA;
  return KEPT_NONE;
}

static void on_exchange(int err, const uint8_t *msg, size_t len, void *arg) {
  eddy_dns_lookup *q = arg;
  int kind;
  q->x = NULL;
  if (err) {
    finish(q, err, NULL, 0, 0);
    return;
  }
  kind = failure_kind(msg, len);
  if (kind == KEPT_NONE || (q->at + 1 == q->ncand && q->kept == NULL)) {
    finish(q, 0, msg, len, q->at);
    return;
  }
  keep(q, kind, msg, len);
  if (++q->at == q->ncand) { /* a kept answer exists: see the test above */
    finish(q, 0, q->kept, q->kept_len, q->kept_cand);
    return;
  }
  if ((err = ask(q)) != 0)
    finish(q, err, NULL, 0, 0);
}

/* The number of dots in name that separate labels (escaped ones do not). */
static int count_dots(const char *name, size_t len) {
  int dots = 0;
  for (size_t i = 0; i < len; i++) {
    if (name[i] == '\\')
      i++;
    else if (name[i] == '.')
      dots++;
  }
  return dots;
}

/* Whether the text ends with a dot that is not escaped. */
static int absolute(const char *name, size_t len) {
  size_t slashes = 0;
  if (len == 0 || name[len - 1] != '.')
    return 0;
  for (size_t i = len - 1; i > 0 && name[i - 1] == '\\'; i--)
    slashes++;
  return slashes % 2 == 0;
}

/* base (absolute, wire form) with domain (wire form) appended; 0 if the
 * result would be too long. */
static size_t join(uint8_t *out, const uint8_t *base, const uint8_t *domain) {
  size_t b = eddy_dns_name_len(base) - 1, d = eddy_dns_name_len(domain);
  if (b + d > EDDY_DNS_NAME_MAX)
    return 0;
  memcpy(out, base, b);
  memcpy(out + b, domain, d);
  return b + d;
}

static void add_candidate(eddy_dns_lookup *q, const uint8_t *name) {
  for (int i = 0; i < q->ncand; i++)
    if (eddy_dns_name_equal(q->cand[i], name))
      return;
  memcpy(q->cand[q->ncand++], name, eddy_dns_name_len(name));
}

static int make_candidates(eddy_dns_lookup *q, const eddy_resolver *r,
                           const char *name) {
  static const uint8_t root[1] = {0};
  uint8_t base[EDDY_DNS_NAME_MAX], joined[EDDY_DNS_NAME_MAX];
  size_t len = strlen(name);
  int as_is_first;
  if (len == 0)
    return EDDY_EPARSE;
  if (absolute(name, len)) {
    if (eddy_dns_name_from_text(name, len, NULL, base) < 0)
      return EDDY_EPARSE;
    add_candidate(q, base);
    return 0;
  }
  if (eddy_dns_name_from_text(name, len, root, base) < 0)
    return EDDY_EPARSE;
  as_is_first = count_dots(name, len) >= r->conf.ndots;
  if (as_is_first)
    add_candidate(q, base);
  for (int i = 0; i < r->nsearch; i++)
    if (join(joined, base, r->search[i]) > 0)
      add_candidate(q, joined);
  if (!as_is_first)
    add_candidate(q, base);
  return 0;
}

/* ---- Lookups ------------------------------------------------------------------------ */

static void lookup_close_handle(eddy__handle *h) {
  eddy_dns_lookup_cancel((eddy_dns_lookup *)h);
}

int eddy_resolver_lookup(eddy_resolver *r, const char *name, uint16_t qtype,
                         eddy_dns_lookup_cb cb, void *arg,
                         eddy_dns_lookup **out) {
  eddy_dns_lookup *q;
  int err;
  if (r == NULL || name == NULL || cb == NULL)
    return -EINVAL;
  if (r->closed)
    return EDDY_ECLOSED;
  if ((q = eddy__calloc(1, sizeof *q)) == NULL)
    return -ENOMEM;
  q->r = r;
  q->cb = cb;
  q->arg = arg;
  q->qtype = qtype;
  if ((err = make_candidates(q, r, name)) != 0) {
    eddy__free(q);
    return err;
  }
  eddy__handle_init(r->h.loop, &q->h, lookup_close_handle);
  eddy__soon_init(&q->report, report_now, q);
  if ((err = ask(q)) != 0) {
    q->state = DONE;
    q->r = NULL;
    eddy__handle_close(&q->h);
    return err;
  }
  q->next = r->lookups;
  if (r->lookups)
    r->lookups->prev = q;
  r->lookups = q;
  if (out)
    *out = q;
  return 0;
}

void eddy_dns_lookup_cancel(eddy_dns_lookup *q) {
  if (q == NULL || q->state != ASKING)
    return;
  defer(q, -ECANCELED);
}

/* ---- Resolvers ---------------------------------------------------------------------- */

static void resolver_close_handle(eddy__handle *h) {
  eddy_resolver_close((eddy_resolver *)h);
}

/* The exchange options and search names of conf, checked. */
static int adopt_conf(eddy_resolver *r, const eddy_resolver_conf *c) {
  eddy__dns_exchange_opts *o = &r->xo;
  if (c->nservers < 0 || c->nservers > EDDY_RESOLVER_SERVERS_MAX ||
      c->nsearch < 0 || c->nsearch > EDDY_RESOLVER_SEARCH_MAX || c->ndots < 0 ||
      c->ndots > EDDY_RESOLVER_NDOTS_MAX || c->attempts < 1 ||
      c->attempts > EDDY_RESOLVER_ATTEMPTS_MAX || c->timeout_ns <= 0)
    return -EINVAL;
  memset(o, 0, sizeof *o);
  for (int i = 0; i < c->nservers; i++) {
    int f = c->servers[i].ss_family;
    if (f != AF_INET && f != AF_INET6)
      return -EINVAL;
    o->servers[i].addr = c->servers[i];
    o->servers[i].addrlen = c->server_lens[i];
  }
  o->nservers = (size_t)c->nservers;
  if (o->nservers == 0) {
    o->servers[0].addrlen = (socklen_t)eddy__sockaddr_ip(AF_INET, "127.0.0.1",
                                                         53,
                                                         &o->servers[0].addr);
    o->nservers = 1;
  }
  o->timeout_ns = c->timeout_ns;
  o->attempts = c->attempts;
  o->rd = true;
  o->edns_udp_size = c->edns_udp_size;
  for (int i = 0; i < c->nsearch; i++) {
    const char *s = c->search[i];
    size_t len = strnlen(s, sizeof c->search[i]);
    if (len == sizeof c->search[i] ||
        eddy_dns_name_from_text(s, len, NULL, r->search[i]) < 0)
      return -EINVAL;
  }
  r->nsearch = c->nsearch;
  return 0;
}

int eddy_resolver_new(eddy_loop *loop, const eddy_resolver_conf *conf,
                      eddy_resolver **out) {
  eddy_resolver_conf defaults;
  eddy_resolver *r;
  int err;
  if (loop == NULL || out == NULL)
    return -EINVAL;
  if (conf == NULL) {
    eddy_resolver_conf_init(&defaults);
    conf = &defaults;
  }
  if ((r = eddy__calloc(1, sizeof *r)) == NULL)
    return -ENOMEM;
  r->conf = *conf;
  if ((err = adopt_conf(r, conf)) != 0) {
    eddy__free(r);
    return err;
  }
  eddy__handle_init(loop, &r->h, resolver_close_handle);
  *out = r;
  return 0;
}

int eddy_resolver_new_system(eddy_loop *loop, const char *path,
                             eddy_resolver **out) {
  eddy_resolver_conf conf;
  int err = eddy_resolver_conf_load(&conf, path);
  if (err)
    return err;
  return eddy_resolver_new(loop, &conf, out);
}

const eddy_resolver_conf *eddy_resolver_get_conf(const eddy_resolver *r) {
  return &r->conf;
}

void eddy_resolver_close(eddy_resolver *r) {
  if (r == NULL || r->closed)
    return;
  r->closed = 1;
  while (r->lookups)
    eddy_dns_lookup_cancel(r->lookups); /* takes it off the list */
  eddy__handle_close(&r->h);
}

/* ---- The Deferred form -------------------------------------------------------------- */

typedef struct dlookup {
  eddy_deferred *d; /* NULL once cancelled */
  eddy_dns_lookup *q;
  char what[300]; /* "NAME TYPE" for details */
} dlookup;

static void dlookup_fail(dlookup *dl, int code, const char *reason) {
  eddy_deferred *d = dl->d;
  dl->d = NULL;
  if (d)
    eddy_deferred_errback(d, code, "look up %s: %s", dl->what,
                          reason ? reason : eddy_strerror(code));
}

static void dlookup_done(eddy_dns_lookup *q, int status,
                         const eddy_dns_answer *a, void *arg) {
  dlookup *dl = arg;
  eddy_deferred *d = dl->d;
  eddy_dns_answer *copy;
  (void)q;
  if (d == NULL || status != 0) {
    dlookup_fail(dl, status ? status : -ECANCELED, NULL);
    eddy__free(dl);
    return;
  }
  if ((copy = eddy_dns_answer_copy(a)) == NULL) {
    dlookup_fail(dl, -ENOMEM, NULL);
    eddy__free(dl);
    return;
  }
  dl->d = NULL;
  eddy__free(dl);
  eddy_deferred_callback(d, copy, eddy_dns_answer_free);
}

static void dlookup_cancel(eddy_deferred *d, void *arg) {
  dlookup *dl = arg;
  char reason[64];
  dlookup_fail(dl, -ECANCELED,
               eddy__deferred_cancel_reason(d, reason, sizeof reason));
  eddy_dns_lookup_cancel(dl->q); /* dlookup_done frees dl */
}

int eddy_deferred_dns_lookup(eddy_resolver *r, const char *name, uint16_t qtype,
                             eddy_deferred **out) {
  dlookup *dl;
  char tbuf[EDDY_DNS_TYPE_TEXT_MAX];
  int err;
  if (r == NULL || name == NULL || out == NULL)
    return -EINVAL;
  if ((dl = eddy__calloc(1, sizeof *dl)) == NULL)
    return -ENOMEM;
  if ((err = eddy_deferred_new(r->h.loop, dlookup_cancel, dl, &dl->d)) != 0) {
    eddy__free(dl);
    return err;
  }
  *out = dl->d;
  snprintf(dl->what, sizeof dl->what, "%.250s %s", name,
           eddy_dns_type_to_text(qtype, tbuf, sizeof tbuf));
  err = eddy_resolver_lookup(r, name, qtype, dlookup_done, dl, &dl->q);
  if (err) {
    dlookup_fail(dl, err, NULL);
    eddy__free(dl);
  }
  return 0;
}

/* ---- The coroutine form ------------------------------------------------------------- */

typedef struct cwait {
  eddy_coro *co; /* NULL once the coroutine gave up */
  eddy_dns_lookup *q;
  int status;
  eddy_dns_answer *a;
} cwait;

static void cwait_done(eddy_dns_lookup *q, int status, const eddy_dns_answer *a,
                       void *arg) {
  cwait *c = arg;
  (void)q;
  if (c->co == NULL) {
    eddy__free(c);
    return;
  }
  c->status = status;
  if (status == 0 && (c->a = eddy_dns_answer_copy(a)) == NULL)
    c->status = -ENOMEM;
  eddy__coro_wake(c->co, 0, 0);
}

static void cwait_give_up(void *arg) {
  cwait *c = arg;
  c->co = NULL;
  eddy_dns_lookup_cancel(c->q); /* cwait_done frees c */
}

int eddy_coro_dns_lookup(eddy_coro *co, eddy_resolver *r, const char *name,
                         uint16_t qtype, eddy_dns_answer **out) {
  cwait *c;
  int err;
  if (out)
    *out = NULL;
  if (co == NULL || out == NULL)
    return -EINVAL;
  if ((err = eddy__coro_check(co)) != 0)
    return err;
  if ((c = eddy__calloc(1, sizeof *c)) == NULL)
    return -ENOMEM;
  c->co = co;
  err = eddy_resolver_lookup(r, name, qtype, cwait_done, c, &c->q);
  if (err) {
    eddy__free(c);
    return err;
  }
  if ((err = eddy__coro_wait(co, cwait_give_up, c)) != 0)
    return err; /* cancelled: cwait_done frees c */
  err = c->status;
  *out = c->a;
  eddy__free(c);
  return err;
}
