/* cache.c: the forwarder's answer cache. See cache.h.
 *
 * An entry is one allocation: its links, its key's name (lower-cased) and
 * its records packed one after another as
 *
 *   section(1) name_len(1) name type(2) class(2) ttl(4) rdlen(2) rdata
 *
 * (numbers big-endian, names and rdata as eddy_dns_msg_next gives them:
 * uncompressed), so that a hit walks the bytes once and hands each record
 * to eddy_dns_writer_add, which compresses afresh for the client.
 *
 * The hash is SipHash-2-4 under a key drawn at creation: the names come
 * from clients, and a fixed hash would let one choose names that all fall
 * in one chain. The bucket array starts small and doubles as entries come,
 * up to the power of two at or above the bound; if it cannot grow, chains
 * just get longer.
 */
#include "proto/dns/cache.h"

#include <errno.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "eddy/common.h"
#include "proto/dns/dns.h"
#include "sys/alloc.h"

#define NSEC 1000000000LL
#define FIRST_BUCKETS 16
#define RR_FIXED 12 /* section, name_len, type, class, ttl, rdlen */
#define TYPE_TSIG 250

typedef struct lru_link {
  struct lru_link *prev, *next;
} lru_link;

struct eddy__dns_cache_entry {
  lru_link lru; /* first: the cache's list head is a bare link */
  eddy__dns_cache_entry *hnext;
  uint64_t hash;
  int64_t stored, expires;
  uint32_t refs;
  uint32_t ttl;
  uint16_t qtype, qclass, rcode;
  bool cacheable, in_cache, tc;
  uint8_t name_len;
  uint32_t len; /* bytes of packed records after the name */
  uint8_t data[];
};

struct eddy__dns_cache {
  eddy__dns_cache_entry **buckets;
  size_t nbuckets, max_buckets, count, max;
  lru_link lru; /* next: most recently used; prev: least */
  uint64_t k0, k1;
};

/* ---- SipHash-2-4 ---- */

static inline uint64_t rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t v[4]) {
  v[0] += v[1];
  v[1] = rotl(v[1], 13) ^ v[0];
  v[0] = rotl(v[0], 32);
  v[2] += v[3];
  v[3] = rotl(v[3], 16) ^ v[2];
  v[0] += v[3];
  v[3] = rotl(v[3], 21) ^ v[0];
  v[2] += v[1];
  v[1] = rotl(v[1], 17) ^ v[2];
  v[2] = rotl(v[2], 32);
}

static inline uint64_t le64(const uint8_t *p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--)
    x = (x << 8) | p[i];
  return x;
}

static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *p, size_t n) {
  uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                   k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t m = le64(p + i);
    v[3] ^= m;
    sipround(v);
    sipround(v);
    v[0] ^= m;
  }
  uint64_t last = (uint64_t)n << 56;
  for (size_t j = 0; i + j < n; j++)
    last |= (uint64_t)p[i + j] << (8 * j);
  v[3] ^= last;
  sipround(v);
  sipround(v);
  v[0] ^= last;
  v[2] ^= 0xff;
  for (int r = 0; r < 4; r++)
    sipround(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- The cache ---- */

int eddy__dns_cache_new(size_t max, eddy__dns_cache **out) {
  eddy__dns_cache *c = eddy__calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  c->max = max ? max : EDDY__DNS_CACHE_DEFAULT_SIZE;
  c->max_buckets = FIRST_BUCKETS;
  while (c->max_buckets < c->max && c->max_buckets < ((size_t)1 << 40))
    c->max_buckets <<= 1;
  c->nbuckets = FIRST_BUCKETS;
  c->buckets = eddy__calloc(c->nbuckets, sizeof *c->buckets);
  if (c->buckets == NULL) {
    eddy__free(c);
    return -ENOMEM;
  }
  c->lru.prev = c->lru.next = &c->lru;
  uint8_t key[16];
  if (RAND_bytes(key, sizeof key) == 1) {
    c->k0 = le64(key);
    c->k1 = le64(key + 8);
  } else { /* no entropy: still better than a fixed key */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->k0 = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uintptr_t)c;
    c->k1 = (uint64_t)ts.tv_sec ^ (uintptr_t)&ts;
  }
  *out = c;
  return 0;
}

static void lru_unlink(lru_link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

static void lru_push_front(eddy__dns_cache *c, lru_link *l) {
  l->next = c->lru.next;
  l->prev = &c->lru;
  c->lru.next->prev = l;
  c->lru.next = l;
}

static eddy__dns_cache_entry **bucket(const eddy__dns_cache *c, uint64_t h) {
  return &c->buckets[h & (c->nbuckets - 1)];
}

/* Takes e out of the table and the list and drops the cache's reference. */
static void drop(eddy__dns_cache *c, eddy__dns_cache_entry *e) {
  eddy__dns_cache_entry **pp = bucket(c, e->hash);
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  e->hnext = NULL;
  lru_unlink(&e->lru);
  e->in_cache = false;
  c->count--;
  eddy__dns_cache_entry_unref(e);
}

void eddy__dns_cache_free(eddy__dns_cache *c) {
  if (c == NULL)
    return;
  while (c->lru.next != &c->lru)
    drop(c, (eddy__dns_cache_entry *)c->lru.next);
  eddy__free(c->buckets);
  eddy__free(c);
}

void eddy__dns_cache_key_make(const eddy__dns_cache *c, const uint8_t *name,
                              uint16_t qtype, uint16_t qclass,
                              eddy__dns_cache_key *k) {
  uint8_t buf[EDDY_DNS_NAME_MAX + 4];
  k->name_len = eddy_dns_name_lower(k->name, name);
  k->qtype = qtype;
  k->qclass = qclass;
  memcpy(buf, k->name, k->name_len);
  eddy__dns_put16(buf + k->name_len, qtype);
  eddy__dns_put16(buf + k->name_len + 2, qclass);
  k->hash = siphash(c->k0, c->k1, buf, k->name_len + 4);
}

static bool same_key(const eddy__dns_cache_entry *e,
                     const eddy__dns_cache_key *k) {
  return e->hash == k->hash && e->qtype == k->qtype && e->qclass == k->qclass &&
         e->name_len == k->name_len &&
         memcmp(e->data, k->name, k->name_len) == 0;
}

static eddy__dns_cache_entry *find(const eddy__dns_cache *c,
                                   const eddy__dns_cache_key *k) {
  eddy__dns_cache_entry *e = *bucket(c, k->hash);
  while (e != NULL && !same_key(e, k))
    e = e->hnext;
  return e;
}

eddy__dns_cache_entry *eddy__dns_cache_get(eddy__dns_cache *c,
                                           const eddy__dns_cache_key *k,
                                           int64_t now) {
  eddy__dns_cache_entry *e = find(c, k);
  if (e == NULL)
    return NULL;
  if (now >= e->expires) {
    drop(c, e);
    return NULL;
  }
  lru_unlink(&e->lru);
  lru_push_front(c, &e->lru);
  return e;
}

/* Doubles the bucket array when the entries outnumber the buckets. On
 * -ENOMEM it stays as it is: lookups still work, a little slower. */
static void grow(eddy__dns_cache *c) {
  if (c->count < c->nbuckets || c->nbuckets >= c->max_buckets)
    return;
  size_t n = c->nbuckets * 2;
  eddy__dns_cache_entry **b = eddy__calloc(n, sizeof *b);
  if (b == NULL)
    return;
  for (size_t i = 0; i < c->nbuckets; i++) {
    eddy__dns_cache_entry *e = c->buckets[i], *next;
    for (; e != NULL; e = next) {
      next = e->hnext;
      e->hnext = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  eddy__free(c->buckets);
  c->buckets = b;
  c->nbuckets = n;
}

int eddy__dns_cache_put(eddy__dns_cache *c, eddy__dns_cache_entry *e) {
  if (!e->cacheable || e->in_cache)
    return e->in_cache ? 1 : 0;
  eddy__dns_cache_key k;
  memcpy(k.name, e->data, e->name_len);
  k.name_len = e->name_len;
  k.qtype = e->qtype;
  k.qclass = e->qclass;
  k.hash = e->hash;
  eddy__dns_cache_entry *old = find(c, &k);
  if (old != NULL)
    drop(c, old);
  while (c->count >= c->max)
    drop(c, (eddy__dns_cache_entry *)c->lru.prev);
  eddy__dns_cache_entry **b = bucket(c, e->hash);
  e->hnext = *b;
  *b = e;
  lru_push_front(c, &e->lru);
  e->in_cache = true;
  e->refs++;
  c->count++;
  grow(c);
  return 1;
}

size_t eddy__dns_cache_count(const eddy__dns_cache *c) {
  return c->count;
}

/* ---- Entries ---- */

void eddy__dns_cache_entry_ref(eddy__dns_cache_entry *e) {
  e->refs++;
}

void eddy__dns_cache_entry_unref(eddy__dns_cache_entry *e) {
  if (e != NULL && --e->refs == 0)
    eddy__free(e);
}

bool eddy__dns_cache_entry_cacheable(const eddy__dns_cache_entry *e) {
  return e->cacheable;
}

uint16_t eddy__dns_cache_entry_rcode(const eddy__dns_cache_entry *e) {
  return e->rcode;
}

int64_t eddy__dns_cache_entry_expires(const eddy__dns_cache_entry *e) {
  return e->expires;
}

/* What a first walk over an answer finds. */
typedef struct survey {
  size_t bytes;     /* packed size of the records kept */
  size_t records;   /* records kept */
  bool full;        /* records left out: EDDY__DNS_CACHE_ENTRY_MAX reached */
  bool soa;         /* an SOA in the authority section */
  size_t answers;   /* records kept from the answer section */
  uint32_t min_ttl; /* over the answer and authority sections */
  uint16_t rcode;   /* with the OPT's upper bits */
} survey;

static bool skipped(const eddy_dns_rr_t *rr) {
  return rr->section == EDDY_DNS_QUESTION || rr->type == EDDY_DNS_TYPE_OPT ||
         rr->type == TYPE_TSIG;
}

/* The TTL a record is kept with: 0 for the top bit set (RFC 2181 section
 * 8); an SOA of the authority section by min(TTL, minimum) (RFC 2308). */
static uint32_t rr_ttl(const eddy_dns_rr_t *rr) {
  uint32_t ttl = rr->ttl > 0x7FFFFFFFu ? 0 : rr->ttl;
  if (rr->section == EDDY_DNS_AUTHORITY && rr->type == EDDY_DNS_TYPE_SOA &&
      rr->rdlen >= 20) {
    uint32_t min = eddy__dns_get32(rr->rdata + rr->rdlen - 4);
    if (min > 0x7FFFFFFFu)
      min = 0;
    if (min < ttl)
      ttl = min;
  }
  return ttl;
}

static int survey_msg(const uint8_t *msg, size_t len, survey *s,
                      eddy_dns_rr_t *rr) {
  eddy_dns_msg_t m;
  int r;
  memset(s, 0, sizeof *s);
  s->min_ttl = UINT32_MAX;
  if (eddy_dns_msg_parse(&m, msg, len) < 0)
    return EDDY_EPARSE;
  s->rcode = m.flags & 15;
  while ((r = eddy_dns_msg_next(&m, rr)) == 1) {
    if (rr->type == EDDY_DNS_TYPE_OPT && rr->section == EDDY_DNS_ADDITIONAL)
      s->rcode = (uint16_t)(s->rcode | ((rr->ttl >> 24) << 4));
    if (skipped(rr) || s->full)
      continue;
    size_t need = RR_FIXED + rr->name_len + rr->rdlen;
    if (s->bytes + need > EDDY__DNS_CACHE_ENTRY_MAX) {
      s->full = true;
      continue;
    }
    s->bytes += need;
    s->records++;
    if (rr->section == EDDY_DNS_ANSWER)
      s->answers++;
    if (rr->section == EDDY_DNS_AUTHORITY && rr->type == EDDY_DNS_TYPE_SOA)
      s->soa = true;
    if (rr->section != EDDY_DNS_ADDITIONAL && rr_ttl(rr) < s->min_ttl)
      s->min_ttl = rr_ttl(rr);
  }
  return r < 0 ? EDDY_EPARSE : 0;
}

static bool negative(const survey *s) {
  return s->rcode == EDDY_DNS_RCODE_NXDOMAIN || s->answers == 0;
}

/* The longest an answer of its kind is kept, and the largest TTL it hands
 * out: a client should not keep it longer than the cache does. */
static uint32_t ttl_cap(const survey *s) {
  return negative(s) ? EDDY__DNS_CACHE_MAX_NEG_TTL : EDDY__DNS_CACHE_MAX_TTL;
}

/* How long an answer may be kept, in seconds; 0: not at all. */
static uint32_t cache_ttl(const survey *s, bool tc) {
  if (tc || s->full)
    return 0;
  if (s->rcode != EDDY_DNS_RCODE_NOERROR && s->rcode != EDDY_DNS_RCODE_NXDOMAIN)
    return 0;
  if ((negative(s) && !s->soa) || s->min_ttl == UINT32_MAX)
    return 0;
  return s->min_ttl < ttl_cap(s) ? s->min_ttl : ttl_cap(s);
}

/* Copies the first records (as the survey counted them) into e, each TTL
 * at most cap. */
static void pack(eddy__dns_cache_entry *e, const uint8_t *msg, size_t len,
                 size_t records, uint32_t cap, eddy_dns_rr_t *rr) {
  eddy_dns_msg_t m;
  uint8_t *p = e->data + e->name_len;
  size_t n = 0;
  eddy_dns_msg_parse(&m, msg, len);
  while (n < records && eddy_dns_msg_next(&m, rr) == 1) {
    if (skipped(rr))
      continue;
    p[0] = (uint8_t)rr->section;
    p[1] = (uint8_t)rr->name_len;
    memcpy(p + 2, rr->name, rr->name_len);
    p += 2 + rr->name_len;
    eddy__dns_put16(p, rr->type);
    eddy__dns_put16(p + 2, rr->rclass);
    uint32_t ttl = rr_ttl(rr);
    eddy__dns_put32(p + 4, ttl < cap ? ttl : cap);
    eddy__dns_put16(p + 8, (uint16_t)rr->rdlen);
    if (rr->rdlen > 0)
      memcpy(p + 10, rr->rdata, rr->rdlen);
    p += 10 + rr->rdlen;
    n++;
  }
  e->len = (uint32_t)(p - (e->data + e->name_len));
}

int eddy__dns_cache_entry_new(const eddy__dns_cache_key *k, const uint8_t *msg,
                              size_t len, int64_t now,
                              eddy__dns_cache_entry **out) {
  eddy_dns_rr_t rr;
  survey s;
  if (survey_msg(msg, len, &s, &rr) < 0)
    return EDDY_EPARSE;
  eddy__dns_cache_entry *e = eddy__malloc(sizeof *e + k->name_len + s.bytes);
  if (e == NULL)
    return -ENOMEM;
  memset(e, 0, sizeof *e);
  e->lru.prev = e->lru.next = &e->lru;
  e->hash = k->hash;
  e->qtype = k->qtype;
  e->qclass = k->qclass;
  e->name_len = (uint8_t)k->name_len;
  memcpy(e->data, k->name, k->name_len);
  e->refs = 1;
  e->rcode = s.rcode;
  e->tc = (eddy__dns_get16(msg + 2) & EDDY_DNS_FLAG_TC) != 0 || s.full;
  e->ttl = cache_ttl(&s, e->tc);
  e->cacheable = e->ttl > 0;
  e->stored = now;
  e->expires = now + (int64_t)e->ttl * NSEC;
  pack(e, msg, len, s.records, ttl_cap(&s), &rr);
  *out = e;
  return 0;
}

/* ---- Writing an answer ---- */

/* One packed record, read back. */
typedef struct packed_rr {
  int section;
  const uint8_t *name;
  size_t name_len;
  uint16_t type, rclass, rdlen;
  uint32_t ttl;
  const uint8_t *rdata;
} packed_rr;

static const uint8_t *unpack(const uint8_t *p, packed_rr *r) {
  r->section = p[0];
  r->name_len = p[1];
  r->name = p + 2;
  p += 2 + r->name_len;
  r->type = eddy__dns_get16(p);
  r->rclass = eddy__dns_get16(p + 2);
  r->ttl = eddy__dns_get32(p + 4);
  r->rdlen = eddy__dns_get16(p + 8);
  r->rdata = p + 10;
  return p + 10 + r->rdlen;
}

static bool same_rrset(const packed_rr *a, const packed_rr *b) {
  return a->section == b->section && a->type == b->type &&
         a->rclass == b->rclass && a->name_len == b->name_len &&
         eddy_dns_name_equal(a->name, b->name);
}

int eddy__dns_cache_write(const eddy__dns_cache_entry *e,
                          const eddy_dns_query_t *q, size_t cap, uint8_t *out,
                          int64_t now) {
  eddy_dns_writer_t w, snap;
  int rc = eddy_dns_writer_init(&w, out, cap, q, e->rcode);
  if (rc < 0)
    return -ENOSPC;
  eddy_dns_writer_set_flags(&w,
                            EDDY_DNS_FLAG_RA | (e->tc ? EDDY_DNS_FLAG_TC : 0));
  snap = w;
  int64_t age_ns = now > e->stored ? now - e->stored : 0;
  uint64_t age = (uint64_t)(age_ns / NSEC);
  const uint8_t *p = e->data + e->name_len, *end = p + e->len;
  packed_rr r, prev = {.section = -1};
  while (p < end) {
    p = unpack(p, &r);
    if (!same_rrset(&r, &prev))
      snap = w;
    prev = r;
    uint32_t ttl = r.ttl > age ? (uint32_t)(r.ttl - age) : 0;
    rc = eddy_dns_writer_add(&w, (eddy_dns_section_t)r.section, r.name, r.type,
                             r.rclass, ttl, r.rdata, r.rdlen);
    if (rc == -ENOSPC) {
      eddy_dns_writer_rollback(&w, &snap);
      if (r.section != EDDY_DNS_ADDITIONAL)
        eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_TC);
      break;
    }
    /* Any other error (rdata eddy_dns_msg_next passed but the writer does
     * not take) leaves that record out. */
  }
  return (int)eddy_dns_writer_finish(&w);
}
