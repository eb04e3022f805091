/* The forwarder's answer cache: what is kept and for how long (positive
 * answers by their smallest TTL, negative ones by the SOA per RFC 2308,
 * nothing for SERVFAIL or a zero TTL), the answer rewritten for each
 * client (ID, question case, EDNS, TTLs lowered by age, truncation by
 * whole RRsets), least-recently-used eviction, the bound under a flood of
 * unique names, and allocation failures. Time is passed in by hand, as the
 * forwarder passes the loop's. */
#include <string.h>

#include "helpers.h"
#include "proto/dns/cache.h"

#define SEC 1000000000LL
#define T0 (1000 * SEC)

static eddy__dns_cache *cache;

static void setup(void) {
  EXPECT_OK(eddy__dns_cache_new(0, &cache));
}

static void teardown(void) {
  eddy__dns_cache_free(cache);
  cache = NULL;
  eddy__fault_reset();
  EXPECT_LIVE(0);
}

static const uint8_t *wire(const char *text) {
  static uint8_t out[4][EDDY_DNS_NAME_MAX];
  static int next;
  uint8_t *o = out[next++ & 3];
  cr_assert(eddy_dns_name_from_text(text, strlen(text), NULL, o) > 0);
  return o;
}

/* A client's query for name (case kept), parsed as a server would. */
static eddy_dns_query_t query(const char *name, uint16_t type, uint16_t id,
                              uint16_t edns) {
  uint8_t buf[600];
  eddy_dns_query_t q;
  int n = eddy_dns_query_write(buf, sizeof buf, id, EDDY_DNS_FLAG_RD,
                               wire(name), type, EDDY_DNS_CLASS_IN, edns,
                               false);
  cr_assert(n > 0);
  cr_assert(eddy_dns_query_parse(buf, (size_t)n, &q) ==
            EDDY_DNS_VERDICT_ANSWER);
  return q;
}

/* An upstream answer being written. */
typedef struct upmsg {
  uint8_t buf[8192];
  eddy_dns_writer_t w;
} upmsg;

static void up_begin(upmsg *m, const char *name, uint16_t type,
                     uint16_t rcode) {
  eddy_dns_query_t q = query(name, type, 0x4242, 1232);
  EXPECT_OK(eddy_dns_writer_init(&m->w, m->buf, sizeof m->buf, &q, rcode));
  eddy_dns_writer_set_flags(&m->w, EDDY_DNS_FLAG_RA | EDDY_DNS_FLAG_AA);
}

static void up_a(upmsg *m, int section, const char *owner, uint32_t ttl,
                 uint8_t last) {
  uint8_t a[4] = {192, 0, 2, last};
  EXPECT_OK(eddy_dns_writer_add(&m->w, section, wire(owner), EDDY_DNS_TYPE_A,
                                EDDY_DNS_CLASS_IN, ttl, a, 4));
}

static void up_cname(upmsg *m, const char *owner, const char *target,
                     uint32_t ttl) {
  const uint8_t *t = wire(target);
  EXPECT_OK(eddy_dns_writer_add(&m->w, EDDY_DNS_ANSWER, wire(owner),
                                EDDY_DNS_TYPE_CNAME, EDDY_DNS_CLASS_IN, ttl, t,
                                eddy_dns_name_len(t)));
}

static void up_soa(upmsg *m, const char *zone, uint32_t ttl, uint32_t min) {
  uint8_t rd[600];
  size_t n = 0;
  const uint8_t *mname = wire("ns1.example.com."),
                *rname = wire("h.example.com.");
  memcpy(rd, mname, eddy_dns_name_len(mname));
  n += eddy_dns_name_len(mname);
  memcpy(rd + n, rname, eddy_dns_name_len(rname));
  n += eddy_dns_name_len(rname);
  uint32_t nums[5] = {2026, 7200, 900, 1209600, min};
  for (int i = 0; i < 5; i++) {
    rd[n++] = (uint8_t)(nums[i] >> 24);
    rd[n++] = (uint8_t)(nums[i] >> 16);
    rd[n++] = (uint8_t)(nums[i] >> 8);
    rd[n++] = (uint8_t)nums[i];
  }
  EXPECT_OK(eddy_dns_writer_add(&m->w, EDDY_DNS_AUTHORITY, wire(zone),
                                EDDY_DNS_TYPE_SOA, EDDY_DNS_CLASS_IN, ttl, rd,
                                n));
}

static size_t up_end(upmsg *m) {
  return eddy_dns_writer_finish(&m->w);
}

/* Parses the answer for name/type into an entry and offers it to the
 * cache; returns what put said (1 kept, 0 not). */
static int put(const char *name, uint16_t type, upmsg *m, int64_t now) {
  eddy__dns_cache_key k;
  eddy__dns_cache_entry *e;
  size_t len = up_end(m);
  eddy__dns_cache_key_make(cache, wire(name), type, EDDY_DNS_CLASS_IN, &k);
  EXPECT_OK(eddy__dns_cache_entry_new(&k, m->buf, len, now, &e));
  int r = eddy__dns_cache_put(cache, e);
  eddy__dns_cache_entry_unref(e);
  return r;
}

static eddy__dns_cache_entry *get(const char *name, uint16_t type,
                                  int64_t now) {
  eddy__dns_cache_key k;
  eddy__dns_cache_key_make(cache, wire(name), type, EDDY_DNS_CLASS_IN, &k);
  return eddy__dns_cache_get(cache, &k, now);
}

/* One A answer for name with the given TTL. */
static int put_a(const char *name, uint32_t ttl, int64_t now) {
  upmsg m;
  up_begin(&m, name, EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, name, ttl, 1);
  return put(name, EDDY_DNS_TYPE_A, &m, now);
}

/* A written answer, read back. */
typedef struct answer {
  eddy_dns_msg_t m;
  size_t n;
  uint16_t id, flags, count[4];
  uint8_t qname[EDDY_DNS_NAME_MAX];
  eddy_dns_rr_t rr[64];
  size_t nrr;
} answer;

static void read_answer(answer *a, const uint8_t *buf, size_t len) {
  eddy_dns_rr_t q;
  EXPECT_OK(eddy_dns_msg_parse(&a->m, buf, len));
  a->id = a->m.id;
  a->flags = a->m.flags;
  memcpy(a->count, a->m.count, sizeof a->count);
  cr_assert(eddy_dns_msg_next(&a->m, &q) == 1);
  memcpy(a->qname, q.name, q.name_len);
  a->nrr = 0;
  int r;
  while (a->nrr < 64 && (r = eddy_dns_msg_next(&a->m, &a->rr[a->nrr])) == 1)
    a->nrr++;
  EXPECT_EQ(r, 0);
}

static size_t write_for(const eddy__dns_cache_entry *e,
                        const eddy_dns_query_t *q, size_t cap, uint8_t *out,
                        int64_t now) {
  int n = eddy__dns_cache_write(e, q, cap, out, now);
  EXPECT_GT(n, 0);
  return (size_t)n;
}

/* ---- How long answers are kept ---- */

Test(dns_cache, positive_answer_kept_until_its_smallest_ttl, .init = setup,
     .fini = teardown) {
  upmsg m;
  up_begin(&m, "www.example.com.", EDDY_DNS_TYPE_A, 0);
  up_cname(&m, "www.example.com.", "web.example.com.", 300);
  up_a(&m, EDDY_DNS_ANSWER, "web.example.com.", 60, 1);
  up_a(&m, EDDY_DNS_ADDITIONAL, "other.example.com.", 5, 2);
  EXPECT_EQ(put("www.example.com.", EDDY_DNS_TYPE_A, &m, T0), 1);
  EXPECT_EQ(eddy__dns_cache_count(cache), 1);
  eddy__dns_cache_entry *e = get("www.example.com.", EDDY_DNS_TYPE_A, T0);
  cr_assert(e != NULL);
  /* The additional section's TTL does not count. */
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 60 * SEC);
  cr_assert(get("www.example.com.", EDDY_DNS_TYPE_A, T0 + 60 * SEC - 1) !=
            NULL);
  cr_assert(get("www.example.com.", EDDY_DNS_TYPE_A, T0 + 60 * SEC) == NULL);
  /* The expired entry found is dropped. */
  EXPECT_EQ(eddy__dns_cache_count(cache), 0);
}

Test(dns_cache, positive_ttl_is_capped_at_a_day, .init = setup,
     .fini = teardown) {
  EXPECT_EQ(put_a("a.example.", 7 * 86400, T0), 1);
  eddy__dns_cache_entry *e = get("a.example.", EDDY_DNS_TYPE_A, T0);
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 86400 * SEC);
  /* And so is the TTL handed out. */
  uint8_t out[512];
  answer a;
  eddy_dns_query_t q = query("a.example.", EDDY_DNS_TYPE_A, 1, 0);
  read_answer(&a, out, write_for(e, &q, sizeof out, out, T0 + 10 * SEC));
  EXPECT_EQ(a.rr[0].ttl, 86400 - 10);
}

Test(dns_cache, nxdomain_kept_by_soa_minimum_or_ttl_whichever_is_less,
     .init = setup, .fini = teardown) {
  upmsg m;
  up_begin(&m, "nx.example.com.", EDDY_DNS_TYPE_A, EDDY_DNS_RCODE_NXDOMAIN);
  up_soa(&m, "example.com.", 3600, 120);
  EXPECT_EQ(put("nx.example.com.", EDDY_DNS_TYPE_A, &m, T0), 1);
  eddy__dns_cache_entry *e = get("nx.example.com.", EDDY_DNS_TYPE_A, T0);
  EXPECT_EQ(eddy__dns_cache_entry_rcode(e), EDDY_DNS_RCODE_NXDOMAIN);
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 120 * SEC);

  up_begin(&m, "nx2.example.com.", EDDY_DNS_TYPE_A, EDDY_DNS_RCODE_NXDOMAIN);
  up_soa(&m, "example.com.", 30, 600);
  EXPECT_EQ(put("nx2.example.com.", EDDY_DNS_TYPE_A, &m, T0), 1);
  e = get("nx2.example.com.", EDDY_DNS_TYPE_A, T0);
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 30 * SEC);

  /* Negative answers are kept an hour at most. */
  up_begin(&m, "nx3.example.com.", EDDY_DNS_TYPE_A, EDDY_DNS_RCODE_NXDOMAIN);
  up_soa(&m, "example.com.", 86400, 86400);
  EXPECT_EQ(put("nx3.example.com.", EDDY_DNS_TYPE_A, &m, T0), 1);
  e = get("nx3.example.com.", EDDY_DNS_TYPE_A, T0);
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 3600 * SEC);
  uint8_t out[512];
  answer a;
  eddy_dns_query_t q = query("nx3.example.com.", EDDY_DNS_TYPE_A, 1, 0);
  read_answer(&a, out, write_for(e, &q, sizeof out, out, T0));
  EXPECT_EQ(a.rr[0].type, EDDY_DNS_TYPE_SOA);
  EXPECT_EQ(a.rr[0].ttl, 3600);
}

Test(dns_cache, nodata_kept_by_soa_and_written_with_its_soa, .init = setup,
     .fini = teardown) {
  upmsg m;
  uint8_t out[512];
  answer a;
  up_begin(&m, "www.example.com.", EDDY_DNS_TYPE_AAAA, 0);
  up_soa(&m, "example.com.", 3600, 300);
  EXPECT_EQ(put("www.example.com.", EDDY_DNS_TYPE_AAAA, &m, T0), 1);
  /* Not the A question's answer. */
  cr_assert(get("www.example.com.", EDDY_DNS_TYPE_A, T0) == NULL);
  eddy__dns_cache_entry *e = get("www.example.com.", EDDY_DNS_TYPE_AAAA,
                                 T0 + 100 * SEC);
  cr_assert(e != NULL);
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 300 * SEC);
  eddy_dns_query_t q = query("www.example.com.", EDDY_DNS_TYPE_AAAA, 7, 0);
  read_answer(&a, out, write_for(e, &q, sizeof out, out, T0 + 100 * SEC));
  EXPECT_EQ(a.flags & 15, 0);
  EXPECT_EQ(a.count[1], 0);
  EXPECT_EQ(a.count[2], 1);
  EXPECT_EQ(a.rr[0].type, EDDY_DNS_TYPE_SOA);
  /* The SOA's TTL is min(TTL, minimum) less the time spent in the cache
   * (RFC 2308 section 5). */
  EXPECT_EQ(a.rr[0].ttl, 200);
}

Test(dns_cache, negative_answer_without_soa_is_not_kept, .init = setup,
     .fini = teardown) {
  upmsg m;
  up_begin(&m, "nx.example.com.", EDDY_DNS_TYPE_A, EDDY_DNS_RCODE_NXDOMAIN);
  EXPECT_EQ(put("nx.example.com.", EDDY_DNS_TYPE_A, &m, T0), 0);
  up_begin(&m, "nodata.example.com.", EDDY_DNS_TYPE_A, 0);
  EXPECT_EQ(put("nodata.example.com.", EDDY_DNS_TYPE_A, &m, T0), 0);
  EXPECT_EQ(eddy__dns_cache_count(cache), 0);
}

Test(dns_cache, servfail_refused_and_formerr_are_not_kept, .init = setup,
     .fini = teardown) {
  uint16_t rcodes[] = {EDDY_DNS_RCODE_SERVFAIL, EDDY_DNS_RCODE_REFUSED,
                       EDDY_DNS_RCODE_FORMERR, EDDY_DNS_RCODE_NOTIMP};
  for (size_t i = 0; i < sizeof rcodes / sizeof rcodes[0]; i++) {
    upmsg m;
    eddy__dns_cache_key k;
    eddy__dns_cache_entry *e;
    up_begin(&m, "x.example.", EDDY_DNS_TYPE_A, rcodes[i]);
    up_soa(&m, "example.", 3600, 300);
    size_t len = up_end(&m);
    eddy__dns_cache_key_make(cache, wire("x.example."), EDDY_DNS_TYPE_A,
                             EDDY_DNS_CLASS_IN, &k);
    EXPECT_OK(eddy__dns_cache_entry_new(&k, m.buf, len, T0, &e));
    cr_assert(eddy__dns_cache_entry_cacheable(e) == false);
    EXPECT_EQ(eddy__dns_cache_entry_rcode(e), rcodes[i]);
    EXPECT_EQ(eddy__dns_cache_put(cache, e), 0);
    eddy__dns_cache_entry_unref(e);
  }
  EXPECT_EQ(eddy__dns_cache_count(cache), 0);
}

Test(dns_cache, zero_ttl_and_top_bit_ttl_are_not_kept, .init = setup,
     .fini = teardown) {
  EXPECT_EQ(put_a("zero.example.", 0, T0), 0);
  /* RFC 2181 section 8: a TTL with the top bit set reads as 0. */
  EXPECT_EQ(put_a("top.example.", 0x80000010u, T0), 0);
  upmsg m;
  up_begin(&m, "mixed.example.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "mixed.example.", 300, 1);
  up_a(&m, EDDY_DNS_ANSWER, "mixed.example.", 0, 2);
  EXPECT_EQ(put("mixed.example.", EDDY_DNS_TYPE_A, &m, T0), 0);
  EXPECT_EQ(eddy__dns_cache_count(cache), 0);
}

Test(dns_cache, truncated_upstream_answer_is_not_kept, .init = setup,
     .fini = teardown) {
  upmsg m;
  up_begin(&m, "tc.example.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "tc.example.", 300, 1);
  eddy_dns_writer_set_flags(&m.w, EDDY_DNS_FLAG_TC);
  EXPECT_EQ(put("tc.example.", EDDY_DNS_TYPE_A, &m, T0), 0);
}

Test(dns_cache, malformed_upstream_answer_is_refused, .init = setup,
     .fini = teardown) {
  upmsg m;
  eddy__dns_cache_key k;
  eddy__dns_cache_entry *e = NULL;
  up_begin(&m, "bad.example.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "bad.example.", 300, 1);
  size_t len = up_end(&m);
  eddy__dns_cache_key_make(cache, wire("bad.example."), EDDY_DNS_TYPE_A,
                           EDDY_DNS_CLASS_IN, &k);
  /* The last record cut short. */
  EXPECT_EQ(eddy__dns_cache_entry_new(&k, m.buf, len - 11 - 2, T0, &e),
            EDDY_EPARSE);
  EXPECT_EQ(eddy__dns_cache_entry_new(&k, m.buf, 5, T0, &e), EDDY_EPARSE);
  cr_assert(e == NULL);
}

/* ---- The answer each client gets ---- */

Test(dns_cache, hit_is_written_for_the_client_with_ttls_lowered_by_age,
     .init = setup, .fini = teardown) {
  upmsg m;
  uint8_t out[512];
  answer a;
  up_begin(&m, "www.example.com.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "www.example.com.", 300, 1);
  up_a(&m, EDDY_DNS_ANSWER, "www.example.com.", 100, 2);
  EXPECT_EQ(put("www.example.com.", EDDY_DNS_TYPE_A, &m, T0), 1);

  /* A client asking with other letters' case, another ID, and no EDNS. */
  int64_t now = T0 + 30 * SEC + SEC / 2;
  eddy__dns_cache_entry *e = get("WwW.ExAmple.COM.", EDDY_DNS_TYPE_A, now);
  cr_assert(e != NULL);
  eddy_dns_query_t q = query("WwW.ExAmple.COM.", EDDY_DNS_TYPE_A, 0xBEEF, 0);
  read_answer(&a, out, write_for(e, &q, sizeof out, out, now));
  EXPECT_EQ(a.id, 0xBEEF);
  EXPECT_NE(a.flags & EDDY_DNS_FLAG_QR, 0);
  EXPECT_NE(a.flags & EDDY_DNS_FLAG_RA, 0);
  EXPECT_NE(a.flags & EDDY_DNS_FLAG_RD, 0);
  EXPECT_EQ(a.flags & EDDY_DNS_FLAG_AA, 0);
  EXPECT_EQ(a.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(a.flags & 15, 0);
  cr_assert(memcmp(a.qname, q.qname, q.qname_len) == 0);
  EXPECT_EQ(a.count[1], 2);
  EXPECT_EQ(a.count[3], 0); /* the upstream's OPT is not copied */
  EXPECT_EQ(a.rr[0].ttl, 270);
  EXPECT_EQ(a.rr[1].ttl, 70);
  /* The owner is compressed against the question: the client's case. */
  cr_assert(memcmp(a.rr[0].name, q.qname, q.qname_len) == 0);

  /* With EDNS, the answer has an OPT of its own. */
  q = query("www.example.com.", EDDY_DNS_TYPE_A, 1, 1400);
  read_answer(&a, out, write_for(e, &q, sizeof out, out, now));
  EXPECT_EQ(a.count[3], 1);
  EXPECT_EQ(a.rr[2].type, EDDY_DNS_TYPE_OPT);
  EXPECT_EQ(a.rr[2].rclass, EDDY_DNS_EDNS_UDP_SIZE);
}

Test(dns_cache, ttl_never_goes_below_zero, .init = setup, .fini = teardown) {
  upmsg m;
  uint8_t out[512];
  answer a;
  up_begin(&m, "x.example.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "x.example.", 100, 1);
  up_a(&m, EDDY_DNS_ADDITIONAL, "y.example.", 10, 2);
  EXPECT_EQ(put("x.example.", EDDY_DNS_TYPE_A, &m, T0), 1);
  int64_t now = T0 + 50 * SEC;
  eddy__dns_cache_entry *e = get("x.example.", EDDY_DNS_TYPE_A, now);
  eddy_dns_query_t q = query("x.example.", EDDY_DNS_TYPE_A, 1, 0);
  read_answer(&a, out, write_for(e, &q, sizeof out, out, now));
  EXPECT_EQ(a.rr[0].ttl, 50);
  EXPECT_EQ(a.rr[1].ttl, 0);
}

/* An answer section of a CNAME and then 40 addresses: at 512 bytes the
 * addresses do not all fit, so their whole RRset goes and TC is set. */
Test(dns_cache, answer_too_big_for_the_client_loses_whole_rrsets_and_sets_tc,
     .init = setup, .fini = teardown) {
  upmsg m;
  uint8_t out[65535];
  answer a;
  up_begin(&m, "big.example.", EDDY_DNS_TYPE_A, 0);
  up_cname(&m, "big.example.", "many.example.", 300);
  for (int i = 0; i < 40; i++)
    up_a(&m, EDDY_DNS_ANSWER, "many.example.", 300, (uint8_t)i);
  EXPECT_EQ(put("big.example.", EDDY_DNS_TYPE_A, &m, T0), 1);
  eddy__dns_cache_entry *e = get("big.example.", EDDY_DNS_TYPE_A, T0);
  eddy_dns_query_t q = query("big.example.", EDDY_DNS_TYPE_A, 1, 0);
  size_t n = write_for(e, &q, q.udp_size, out, T0);
  cr_assert(n <= 512);
  read_answer(&a, out, n);
  EXPECT_NE(a.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(a.count[1], 1);
  EXPECT_EQ(a.rr[0].type, EDDY_DNS_TYPE_CNAME);

  /* Over TCP all of it fits. */
  read_answer(&a, out, write_for(e, &q, 65535, out, T0));
  EXPECT_EQ(a.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(a.count[1], 41);
}

Test(dns_cache, additional_records_that_do_not_fit_are_left_without_tc,
     .init = setup, .fini = teardown) {
  upmsg m;
  uint8_t out[600];
  answer a;
  up_begin(&m, "mx.example.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "mx.example.", 300, 1);
  for (int i = 0; i < 40; i++)
    up_a(&m, EDDY_DNS_ADDITIONAL, "extra.example.", 300, (uint8_t)i);
  EXPECT_EQ(put("mx.example.", EDDY_DNS_TYPE_A, &m, T0), 1);
  eddy__dns_cache_entry *e = get("mx.example.", EDDY_DNS_TYPE_A, T0);
  eddy_dns_query_t q = query("mx.example.", EDDY_DNS_TYPE_A, 1, 0);
  read_answer(&a, out, write_for(e, &q, 512, out, T0));
  EXPECT_EQ(a.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(a.count[1], 1);
  EXPECT_EQ(a.count[3], 0);
}

Test(dns_cache, cap_below_the_question_is_enospc, .init = setup,
     .fini = teardown) {
  uint8_t out[64];
  EXPECT_EQ(put_a("x.example.", 300, T0), 1);
  eddy__dns_cache_entry *e = get("x.example.", EDDY_DNS_TYPE_A, T0);
  eddy_dns_query_t q = query("x.example.", EDDY_DNS_TYPE_A, 1, 0);
  EXPECT_EQ(eddy__dns_cache_write(e, &q, 14, out, T0), -ENOSPC);
}

/* ---- Keys, replacement, eviction, the bound ---- */

Test(dns_cache, key_ignores_case_but_not_type_or_class, .init = setup,
     .fini = teardown) {
  eddy__dns_cache_key k;
  EXPECT_EQ(put_a("Mixed.Example.", 300, T0), 1);
  cr_assert(get("mixed.example.", EDDY_DNS_TYPE_A, T0) != NULL);
  cr_assert(get("MIXED.EXAMPLE.", EDDY_DNS_TYPE_A, T0) != NULL);
  cr_assert(get("mixed.example.", EDDY_DNS_TYPE_AAAA, T0) == NULL);
  eddy__dns_cache_key_make(cache, wire("mixed.example."), EDDY_DNS_TYPE_A,
                           EDDY_DNS_CLASS_CH, &k);
  cr_assert(eddy__dns_cache_get(cache, &k, T0) == NULL);
  cr_assert(get("other.example.", EDDY_DNS_TYPE_A, T0) == NULL);
}

Test(dns_cache, a_newer_answer_replaces_the_old_one, .init = setup,
     .fini = teardown) {
  EXPECT_EQ(put_a("x.example.", 300, T0), 1);
  EXPECT_EQ(put_a("x.example.", 20, T0 + SEC), 1);
  EXPECT_EQ(eddy__dns_cache_count(cache), 1);
  eddy__dns_cache_entry *e = get("x.example.", EDDY_DNS_TYPE_A, T0 + SEC);
  EXPECT_EQ(eddy__dns_cache_entry_expires(e), T0 + 21 * SEC);
}

Test(dns_cache, least_recently_used_goes_first, .fini = teardown) {
  EXPECT_OK(eddy__dns_cache_new(3, &cache));
  EXPECT_EQ(put_a("a.", 300, T0), 1);
  EXPECT_EQ(put_a("b.", 300, T0), 1);
  EXPECT_EQ(put_a("c.", 300, T0), 1);
  /* A lookup is a use: a is now newer than b. */
  cr_assert(get("a.", EDDY_DNS_TYPE_A, T0) != NULL);
  EXPECT_EQ(put_a("d.", 300, T0), 1);
  EXPECT_EQ(eddy__dns_cache_count(cache), 3);
  cr_assert(get("b.", EDDY_DNS_TYPE_A, T0) == NULL);
  /* Order now, newest first: a (just looked up... ) then d, c. */
  cr_assert(get("c.", EDDY_DNS_TYPE_A, T0) != NULL);
  cr_assert(get("a.", EDDY_DNS_TYPE_A, T0) != NULL);
  cr_assert(get("d.", EDDY_DNS_TYPE_A, T0) != NULL);
  /* c is now the least recently used. */
  EXPECT_EQ(put_a("e.", 300, T0), 1);
  cr_assert(get("c.", EDDY_DNS_TYPE_A, T0) == NULL);
  cr_assert(get("a.", EDDY_DNS_TYPE_A, T0) != NULL);
  cr_assert(get("d.", EDDY_DNS_TYPE_A, T0) != NULL);
  cr_assert(get("e.", EDDY_DNS_TYPE_A, T0) != NULL);
}

/* Ten times the bound of unique names: the count stays at the bound and
 * so do eddy's live allocations (one per entry, the bucket array, the
 * cache). */
Test(dns_cache, flood_of_unique_names_stays_within_the_bound,
     .fini = teardown) {
  enum { BOUND = 1000 };
  EXPECT_OK(eddy__dns_cache_new(BOUND, &cache));
  long base = eddy__alloc_live();
  for (int i = 0; i < 10 * BOUND; i++) {
    char name[64];
    snprintf(name, sizeof name, "n%d.flood.example.", i);
    EXPECT_EQ(put_a(name, 300, T0 + i), 1);
    cr_assert(eddy__dns_cache_count(cache) <= BOUND);
#ifdef EDDY_FAULTS
    cr_assert(eddy__alloc_live() <= base + BOUND);
#endif
  }
  (void)base;
  EXPECT_EQ(eddy__dns_cache_count(cache), BOUND);
  /* The newest are there, the oldest gone. */
  cr_assert(get("n9999.flood.example.", EDDY_DNS_TYPE_A, T0 + 10000) != NULL);
  cr_assert(get("n9000.flood.example.", EDDY_DNS_TYPE_A, T0 + 10000) != NULL);
  cr_assert(get("n8999.flood.example.", EDDY_DNS_TYPE_A, T0 + 10000) == NULL);
  cr_assert(get("n0.flood.example.", EDDY_DNS_TYPE_A, T0 + 10000) == NULL);
}

Test(dns_cache, entry_outlives_the_cache_while_referenced, .init = setup,
     .fini = teardown) {
  uint8_t out[512];
  EXPECT_EQ(put_a("x.example.", 300, T0), 1);
  eddy__dns_cache_entry *e = get("x.example.", EDDY_DNS_TYPE_A, T0);
  eddy__dns_cache_entry_ref(e);
  eddy__dns_cache_free(cache);
  cache = NULL;
  eddy_dns_query_t q = query("x.example.", EDDY_DNS_TYPE_A, 1, 0);
  write_for(e, &q, sizeof out, out, T0);
  eddy__dns_cache_entry_unref(e);
}

/* ---- Allocation failures ---- */

Test(dns_cache, new_fails_cleanly_without_memory, .fini = teardown) {
  for (int n = 1;; n++) {
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, (uint64_t)n, ENOMEM);
    int rc = eddy__dns_cache_new(10, &cache);
    eddy__fault_reset();
    if (rc == 0)
      break;
    EXPECT_EQ(rc, -ENOMEM);
    EXPECT_LIVE(0);
    cr_assert(n < 10);
  }
}

Test(dns_cache, entry_without_memory_is_enomem, .init = setup,
     .fini = teardown) {
  upmsg m;
  eddy__dns_cache_key k;
  eddy__dns_cache_entry *e = NULL;
  up_begin(&m, "x.example.", EDDY_DNS_TYPE_A, 0);
  up_a(&m, EDDY_DNS_ANSWER, "x.example.", 300, 1);
  size_t len = up_end(&m);
  eddy__dns_cache_key_make(cache, wire("x.example."), EDDY_DNS_TYPE_A,
                           EDDY_DNS_CLASS_IN, &k);
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy__dns_cache_entry_new(&k, m.buf, len, T0, &e), -ENOMEM);
  cr_assert(e == NULL);
}

/* The bucket array cannot grow: the cache goes on with longer chains. */
Test(dns_cache, buckets_that_cannot_grow_leave_the_cache_working,
     .fini = teardown) {
  EXPECT_OK(eddy__dns_cache_new(500, &cache));
  eddy__fault_fail_after(EDDY__SYS_CALLOC, 1, ENOMEM);
  for (int i = 0; i < 400; i++) {
    char name[64];
    snprintf(name, sizeof name, "g%d.example.", i);
    EXPECT_EQ(put_a(name, 300, T0), 1);
  }
  eddy__fault_reset();
  EXPECT_EQ(eddy__dns_cache_count(cache), 400);
  for (int i = 0; i < 400; i++) {
    char name[64];
    snprintf(name, sizeof name, "g%d.example.", i);
    cr_assert(get(name, EDDY_DNS_TYPE_A, T0) != NULL, "%s", name);
  }
  /* Once memory is back, the next put grows it again. */
  EXPECT_EQ(put_a("after.example.", 300, T0), 1);
  cr_assert(get("g7.example.", EDDY_DNS_TYPE_A, T0) != NULL);
}

/* ---- Hostile upstream answers ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static void up_mx(upmsg *m, const char *owner, const char *target) {
  uint8_t rd[EDDY_DNS_NAME_MAX + 2] = {0, 10};
  const uint8_t *t = wire(target);
  memcpy(rd + 2, t, eddy_dns_name_len(t));
  EXPECT_OK(eddy_dns_writer_add(&m->w, EDDY_DNS_ANSWER, wire(owner),
                                EDDY_DNS_TYPE_MX, EDDY_DNS_CLASS_IN, 300, rd,
                                2 + eddy_dns_name_len(t)));
}

/* Whether out[0..n) reads as a whole message. */
static void expect_well_formed(const uint8_t *out, size_t n) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  int r;
  EXPECT_OK(eddy_dns_msg_parse(&m, out, n));
  while ((r = eddy_dns_msg_next(&m, &rr)) == 1)
    ;
  EXPECT_EQ(r, 0);
}

/* Upstream answers with random bytes changed, cut short or lengthened:
 * each is refused (EDDY_EPARSE) or kept, and whatever is kept is written
 * for clients of every size limit as a well-formed answer within the
 * limit. Run under the sanitizers, this reads nothing it should not. */
Test(dns_cache, mangled_upstream_answers_are_refused_or_written_well_formed,
     .fini = teardown) {
  upmsg base[2];
  size_t blen[2];
  static uint8_t msg[8192], out[65535];
  EXPECT_OK(eddy__dns_cache_new(16, &cache));
  up_begin(&base[0], "www.example.com.", EDDY_DNS_TYPE_A, 0);
  up_cname(&base[0], "www.example.com.", "mail.example.com.", 300);
  up_mx(&base[0], "mail.example.com.", "mx.example.com.");
  up_a(&base[0], EDDY_DNS_ANSWER, "mail.example.com.", 300, 1);
  up_soa(&base[0], "example.com.", 3600, 300);
  up_a(&base[0], EDDY_DNS_ADDITIONAL, "mx.example.com.", 300, 2);
  blen[0] = up_end(&base[0]);
  up_begin(&base[1], "www.example.com.", EDDY_DNS_TYPE_A,
           EDDY_DNS_RCODE_NXDOMAIN);
  up_soa(&base[1], "example.com.", 3600, 300);
  blen[1] = up_end(&base[1]);
  eddy_dns_query_t qs[2] = {query("WWW.example.com.", EDDY_DNS_TYPE_A, 1, 0),
                            query("www.example.COM.", EDDY_DNS_TYPE_A, 2,
                                  4096)};
  size_t caps[3] = {512, 1232, 65535};
  int kept = 0, refused = 0;
  for (int i = 0; i < 20000; i++) {
    int b = (int)(next_random() & 1);
    size_t len = blen[b];
    memcpy(msg, base[b].buf, len);
    int flips = 1 + (int)(next_random() % 4);
    for (int f = 0; f < flips; f++)
      msg[EDDY_DNS_HEADER_LEN + next_random() % (len - EDDY_DNS_HEADER_LEN)] =
          (uint8_t)next_random();
    switch (next_random() % 4) {
    case 0:
      len = EDDY_DNS_HEADER_LEN + next_random() % (len - EDDY_DNS_HEADER_LEN);
      break;
    case 1:
      for (int g = 0; g < 32; g++)
        msg[len++] = (uint8_t)next_random();
      break;
    default:
      break;
    }
    eddy__dns_cache_key k;
    eddy__dns_cache_entry *e = NULL;
    eddy__dns_cache_key_make(cache, wire("www.example.com."), EDDY_DNS_TYPE_A,
                             EDDY_DNS_CLASS_IN, &k);
    int rc = eddy__dns_cache_entry_new(&k, msg, len, T0, &e);
    if (rc != 0) {
      EXPECT_EQ(rc, EDDY_EPARSE);
      refused++;
      continue;
    }
    kept++;
    eddy__dns_cache_put(cache, e);
    for (int c = 0; c < 3; c++) {
      const eddy_dns_query_t *q = &qs[c & 1];
      size_t cap = caps[c] < q->udp_size || c == 2 ? caps[c] : q->udp_size;
      int n = eddy__dns_cache_write(e, q, cap, out, T0 + 7 * SEC);
      EXPECT_GT(n, 0);
      EXPECT_LE(n, cap);
      expect_well_formed(out, (size_t)n);
    }
    eddy__dns_cache_entry_unref(e);
  }
  cr_assert(kept > 1000 && refused > 1000, "kept %d, refused %d", kept,
            refused);
}

/* ---- Cost ---- */

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* No timed assertion: the figure is printed for the record. A hit is a
 * key (lower-casing and SipHash), a lookup and the answer written. */
Test(dns_cache, cost_of_a_hit, .fini = teardown) {
  enum { NAMES = 10000, HITS = 200000 };
  uint8_t out[512];
  static eddy_dns_query_t qs[NAMES];
  EXPECT_OK(eddy__dns_cache_new(NAMES, &cache));
  for (int i = 0; i < NAMES; i++) {
    char name[64];
    snprintf(name, sizeof name, "Host%d.Example.COM.", i);
    upmsg m;
    up_begin(&m, name, EDDY_DNS_TYPE_A, 0);
    up_a(&m, EDDY_DNS_ANSWER, name, 300, (uint8_t)i);
    EXPECT_EQ(put(name, EDDY_DNS_TYPE_A, &m, T0), 1);
    qs[i] = query(name, EDDY_DNS_TYPE_A, (uint16_t)i, 1232);
  }
  size_t bytes = 0;
  double t0 = seconds();
  for (int i = 0; i < HITS; i++) {
    const eddy_dns_query_t *q = &qs[i % NAMES];
    eddy__dns_cache_key k;
    eddy__dns_cache_key_make(cache, q->qname, q->qtype, q->qclass, &k);
    eddy__dns_cache_entry *e = eddy__dns_cache_get(cache, &k, T0 + SEC);
    cr_assert(e != NULL);
    bytes += (size_t)eddy__dns_cache_write(e, q, sizeof out, out, T0 + SEC);
  }
  double t1 = seconds();
  cr_assert(bytes > (size_t)HITS * 40);
  fprintf(stderr, "dns_cache: %d hits over %d names in %.3f s (%.0f ns each)\n",
          HITS, NAMES, t1 - t0, (t1 - t0) * 1e9 / HITS);
}
