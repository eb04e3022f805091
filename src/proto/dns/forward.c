/* forward.c: the caching forwarder. See forward.h.
 *
 * A question is keyed as the cache keys it (name lower-cased, type,
 * class). A hit is written straight into the caller's buffer. A miss
 * looks for an exchange in flight under the same key, in a chained hash
 * of pending exchanges, and joins it, or starts one; each client waiting
 * is a request in its pending exchange's list, holding a copy of the
 * client's parsed query so that its answer can be written for it alone
 * (its ID, its case, its EDNS, its size limit).
 *
 * When an exchange ends, its pending record leaves the hash first (so a
 * question asked from a callback starts afresh or hits the cache), the
 * answer is parsed into a cache entry, which is put in the cache if it is
 * cacheable (cache.h says what is kept how long), and each waiter gets the
 * entry written for its own query, in the order they came. No answer,
 * an answer that does not parse, one of another rcode than NOERROR or
 * NXDOMAIN, or no memory to hold it: SERVFAIL to each. Nothing failed is
 * cached: the next question asks again.
 *
 * A callback may cancel other requests, ask new questions, or free the
 * forwarder; the dispatch re-reads its list after each call and stops if
 * the forwarder is gone, freeing the rest.
 *
 * Clients waiting, and exchanges in flight, are bounded (max_waiting):
 * past the bound a question the cache cannot answer is turned away at
 * once, since under a flood of unique names each would hold memory and a
 * socket for a whole upstream timeout.
 *
 * Answers for waiters are written into one buffer of the forwarder (64
 * KiB, the most a TCP client takes), lent to each callback in turn.
 */
#include "proto/dns/forward.h"

#include <errno.h>
#include <string.h>

#include "proto/dns/cache.h"
#include "proto/dns/dns.h"
#include "sys/alloc.h"

#define ANSWER_MAX 65535
#define FIRST_BUCKETS 16
#define DEFAULT_MAX_WAITING 1024

typedef struct pending pending;

struct eddy__dns_forward_req {
  eddy__dns_forward_req *prev, *next;
  pending *p;
  eddy__dns_forward_cb cb;
  void *arg;
  size_t cap;
  eddy_dns_query_t q;
};

struct pending {
  pending *hnext;
  eddy__dns_forwarder *f;
  eddy__dns_exchange *x;
  eddy__dns_forward_req *first, *last;
  eddy__dns_cache_key key;
};

struct eddy__dns_forwarder {
  eddy_loop *loop;
  eddy__dns_exchange_opts opts;
  eddy__dns_cache *cache;
  pending **buckets;
  size_t nbuckets, npending;
  size_t nwaiting, max_waiting;
  uint8_t *buf; /* ANSWER_MAX bytes: the answers lent to callbacks */
  eddy__dns_forward_stats stats;
  bool dispatching; /* in on_exchange's calls */
  bool dead;        /* freed from one of them: on_exchange finishes it */
};

/* ---- The exchanges in flight ---- */

static bool same_key(const eddy__dns_cache_key *a,
                     const eddy__dns_cache_key *b) {
  return a->hash == b->hash && a->qtype == b->qtype && a->qclass == b->qclass &&
         a->name_len == b->name_len &&
         memcmp(a->name, b->name, a->name_len) == 0;
}

static pending **slot(const eddy__dns_forwarder *f, uint64_t hash) {
  return &f->buckets[hash & (f->nbuckets - 1)];
}

static pending *pending_find(const eddy__dns_forwarder *f,
                             const eddy__dns_cache_key *k) {
  pending *p = *slot(f, k->hash);
  while (p != NULL && !same_key(&p->key, k))
    p = p->hnext;
  return p;
}

/* Doubles the buckets when exchanges outnumber them; on -ENOMEM the
 * chains just get longer. */
static void pending_grow(eddy__dns_forwarder *f) {
  if (f->npending < f->nbuckets)
    return;
  size_t n = f->nbuckets * 2;
  pending **b = eddy__calloc(n, sizeof *b);
  if (b == NULL)
    return;
  for (size_t i = 0; i < f->nbuckets; i++) {
    pending *p = f->buckets[i], *next;
    for (; p != NULL; p = next) {
      next = p->hnext;
      p->hnext = b[p->key.hash & (n - 1)];
      b[p->key.hash & (n - 1)] = p;
    }
  }
  eddy__free(f->buckets);
  f->buckets = b;
  f->nbuckets = n;
}

static void pending_insert(eddy__dns_forwarder *f, pending *p) {
  pending **s = slot(f, p->key.hash);
  p->hnext = *s;
  *s = p;
  f->npending++;
  pending_grow(f);
}

static void pending_remove(eddy__dns_forwarder *f, pending *p) {
  pending **pp = slot(f, p->key.hash);
  while (*pp != p)
    pp = &(*pp)->hnext;
  *pp = p->hnext;
  p->hnext = NULL;
  f->npending--;
}

static void waiter_append(pending *p, eddy__dns_forward_req *r) {
  p->f->nwaiting++;
  r->p = p;
  r->next = NULL;
  r->prev = p->last;
  if (p->last != NULL)
    p->last->next = r;
  else
    p->first = r;
  p->last = r;
}

static void waiter_unlink(eddy__dns_forward_req *r) {
  pending *p = r->p;
  p->f->nwaiting--;
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    p->first = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  else
    p->last = r->prev;
  r->prev = r->next = NULL;
}

static void waiters_free(pending *p) {
  while (p->first != NULL) {
    eddy__dns_forward_req *r = p->first;
    waiter_unlink(r);
    eddy__free(r);
  }
}

/* ---- Answers ---- */

/* SERVFAIL for q, with its question if it fits (it always does in the 512
 * bytes every client takes), else the header alone. */
static size_t servfail(const eddy_dns_query_t *q, size_t cap, uint8_t *out) {
  eddy_dns_writer_t w;
  if (eddy_dns_writer_init(&w, out, cap, q, EDDY_DNS_RCODE_SERVFAIL) < 0) {
    eddy_dns_query_t bare = *q;
    bare.qname_len = 0;
    bare.edns = false;
    if (eddy_dns_writer_init(&w, out, cap, &bare, EDDY_DNS_RCODE_SERVFAIL) < 0)
      return 0;
  }
  eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_RA);
  return eddy_dns_writer_finish(&w);
}

/* The entry an upstream answer makes, or NULL if the clients are to get
 * SERVFAIL instead. */
static eddy__dns_cache_entry *answer_entry(eddy__dns_forwarder *f, pending *p,
                                           int err, const uint8_t *msg,
                                           size_t len) {
  eddy__dns_cache_entry *e = NULL;
  if (err < 0 || eddy__dns_cache_entry_new(&p->key, msg, len,
                                           eddy_loop_now(f->loop), &e) < 0)
    return NULL;
  uint16_t rcode = eddy__dns_cache_entry_rcode(e);
  if (rcode != EDDY_DNS_RCODE_NOERROR && rcode != EDDY_DNS_RCODE_NXDOMAIN) {
    eddy__dns_cache_entry_unref(e);
    return NULL;
  }
  eddy__dns_cache_put(f->cache, e);
  return e;
}

static void on_exchange(int err, const uint8_t *msg, size_t len, void *arg) {
  pending *p = arg;
  eddy__dns_forwarder *f = p->f;
  p->x = NULL;
  pending_remove(f, p);
  eddy__dns_cache_entry *e = answer_entry(f, p, err, msg, len);
  f->dispatching = true;
  while (p->first != NULL && !f->dead) {
    eddy__dns_forward_req *r = p->first;
    int n = -1;
    if (e != NULL)
      n = eddy__dns_cache_write(e, &r->q, r->cap, f->buf,
                                eddy_loop_now(f->loop));
    if (n <= 0) {
      n = (int)servfail(&r->q, r->cap, f->buf);
      f->stats.failures++;
    }
    eddy__dns_forward_cb cb = r->cb;
    void *cb_arg = r->arg;
    waiter_unlink(r);
    eddy__free(r);
    cb(cb_arg, f->buf, (size_t)n);
  }
  f->dispatching = false;
  waiters_free(p); /* those left when the forwarder went */
  eddy__free(p);
  eddy__dns_cache_entry_unref(e);
  if (f->dead) {
    eddy__free(f->buf);
    eddy__free(f);
  }
}

/* ---- The forwarder ---- */

int eddy__dns_forwarder_new(eddy_loop *loop,
                            const eddy__dns_forward_config *cfg,
                            eddy__dns_forwarder **out) {
  if (cfg->upstream.nservers == 0 ||
      cfg->upstream.nservers > EDDY__DNS_UPSTREAMS_MAX)
    return -EINVAL;
  eddy__dns_forwarder *f = eddy__calloc(1, sizeof *f);
  if (f == NULL)
    return -ENOMEM;
  f->loop = loop;
  f->opts = cfg->upstream;
  f->opts.rd = true;
  f->max_waiting = cfg->max_waiting ? cfg->max_waiting : DEFAULT_MAX_WAITING;
  f->nbuckets = FIRST_BUCKETS;
  f->buckets = eddy__calloc(f->nbuckets, sizeof *f->buckets);
  f->buf = eddy__malloc(ANSWER_MAX);
  int rc = -ENOMEM;
  if (f->buckets != NULL && f->buf != NULL)
    rc = eddy__dns_cache_new(cfg->cache_size, &f->cache);
  if (rc < 0) {
    eddy__free(f->buckets);
    eddy__free(f->buf);
    eddy__free(f);
    return rc;
  }
  *out = f;
  return 0;
}

void eddy__dns_forwarder_free(eddy__dns_forwarder *f) {
  if (f == NULL || f->dead)
    return;
  for (size_t i = 0; i < f->nbuckets; i++) {
    while (f->buckets[i] != NULL) {
      pending *p = f->buckets[i];
      f->buckets[i] = p->hnext;
      eddy__dns_exchange_cancel(p->x);
      waiters_free(p);
      eddy__free(p);
    }
  }
  eddy__free(f->buckets);
  f->buckets = NULL;
  eddy__dns_cache_free(f->cache);
  f->cache = NULL;
  if (f->dispatching) { /* on_exchange frees the rest when it is back */
    f->dead = true;
    return;
  }
  eddy__free(f->buf);
  eddy__free(f);
}

int eddy__dns_forward(eddy__dns_forwarder *f, const eddy_dns_query_t *q,
                      size_t cap, uint8_t *out, eddy__dns_forward_cb cb,
                      void *arg, eddy__dns_forward_req **req) {
  eddy__dns_cache_key k;
  int64_t now = eddy_loop_now(f->loop);
  if (req != NULL)
    *req = NULL;
  f->stats.queries++;
  eddy__dns_cache_key_make(f->cache, q->qname, q->qtype, q->qclass, &k);
  eddy__dns_cache_entry *e = eddy__dns_cache_get(f->cache, &k, now);
  if (e != NULL) {
    int n = eddy__dns_cache_write(e, q, cap, out, now);
    if (n > 0)
      f->stats.hits++;
    return n;
  }
  pending *p = pending_find(f, &k);
  if (f->nwaiting >= f->max_waiting ||
      (p == NULL && f->npending >= f->max_waiting)) {
    f->stats.overload++;
    return -EAGAIN;
  }
  eddy__dns_forward_req *r = eddy__malloc(sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  r->cb = cb;
  r->arg = arg;
  r->cap = cap > ANSWER_MAX ? ANSWER_MAX : cap;
  r->q = *q;
  if (p != NULL) {
    f->stats.joined++;
  } else {
    p = eddy__calloc(1, sizeof *p);
    if (p == NULL) {
      eddy__free(r);
      return -ENOMEM;
    }
    p->f = f;
    p->key = k;
    int rc = eddy__dns_exchange_start(f->loop, &f->opts, k.name, k.qtype,
                                      k.qclass, on_exchange, p, &p->x);
    if (rc < 0) {
      eddy__free(p);
      eddy__free(r);
      return rc;
    }
    pending_insert(f, p);
    f->stats.upstream++;
  }
  waiter_append(p, r);
  if (req != NULL)
    *req = r;
  return 0;
}

void eddy__dns_forward_cancel(eddy__dns_forward_req *req) {
  if (req == NULL)
    return;
  waiter_unlink(req);
  eddy__free(req);
}

void eddy__dns_forwarder_stats(const eddy__dns_forwarder *f,
                               eddy__dns_forward_stats *st) {
  *st = f->stats;
  st->entries = eddy__dns_cache_count(f->cache);
  st->inflight = f->npending;
  st->waiting = f->nwaiting;
}
