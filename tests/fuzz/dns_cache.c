/* Fuzz target: the forwarder's cache (src/proto/dns/cache.c), which keeps
 * answers from upstream servers and writes them again for each client.
 *
 * The input is an upstream answer; its first byte picks the client's size
 * limit and whether it sent EDNS, the rest is the message. The question
 * is the message's own (or a fixed one when it has none), so the cache
 * sees what the forwarder would hand it. The entry is parsed, put in a
 * small shared cache (so eviction runs across inputs), and written for a
 * client with another ID and the question in another case. Checks: the
 * answer fits the limit, reads cleanly to its end with exact counts, has
 * the client's ID, QR and RA set and AA clear, echoes the client's
 * question byte for byte, and carries an OPT exactly when the client sent
 * one. Any failure, or a sanitizer report, is a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"
#include "proto/dns/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "dns_cache fuzz: %s (line %d)\n", #c, __LINE__);         \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static eddy__dns_cache *cache;
static uint8_t out[65535];

/* The message's question, or www.example.com. A IN. */
static void question(const uint8_t *msg, size_t len, uint8_t *name,
                     uint16_t *qtype, uint16_t *qclass) {
  static const uint8_t fixed[] = "\3www\7example\3com";
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  memcpy(name, fixed, sizeof fixed);
  *qtype = EDDY_DNS_TYPE_A;
  *qclass = EDDY_DNS_CLASS_IN;
  if (eddy_dns_msg_parse(&m, msg, len) == 0 && m.count[0] > 0 &&
      eddy_dns_msg_next(&m, &rr) == 1) {
    memcpy(name, rr.name, rr.name_len);
    *qtype = rr.type;
    *qclass = rr.rclass;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t name[EDDY_DNS_NAME_MAX], qbuf[512];
  uint16_t qtype, qclass;
  eddy__dns_cache_key k;
  eddy__dns_cache_entry *e;
  eddy_dns_query_t q;
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  size_t cap;
  bool edns;
  int n, rc, opt = 0;
  if (size < 1)
    return 0;
  if (cache == NULL)
    CHECK(eddy__dns_cache_new(4, &cache) == 0);
  edns = data[0] & 1;
  cap = (data[0] >> 1) == 127 ? 65535 : 512 + (size_t)(data[0] >> 1) * 8;
  data++;
  size--;
  question(data, size, name, &qtype, &qclass);
  eddy__dns_cache_key_make(cache, name, qtype, qclass, &k);
  if (eddy__dns_cache_entry_new(&k, data, size, 1000000000, &e) != 0)
    return 0;
  (void)eddy__dns_cache_put(cache, e);

  /* The client's question: the same name with its case flipped. */
  for (size_t i = 0; i < eddy_dns_name_len(name); i++)
    if ((name[i] | 32) >= 'a' && (name[i] | 32) <= 'z')
      name[i] ^= 32;
  n = eddy_dns_query_write(qbuf, sizeof qbuf, 0xbeef, EDDY_DNS_FLAG_RD, name,
                           qtype, qclass, edns ? (uint16_t)cap : 0, false);
  CHECK(n > 0);
  CHECK(eddy_dns_query_parse(qbuf, (size_t)n, &q) == EDDY_DNS_VERDICT_ANSWER);
  if (!edns)
    cap = 512;
  n = eddy__dns_cache_write(e, &q, cap, out, 3000000000);
  eddy__dns_cache_entry_unref(e);
  CHECK(n > 0);
  CHECK((size_t)n <= cap);
  CHECK(eddy_dns_msg_parse(&m, out, (size_t)n) == 0);
  CHECK(m.id == 0xbeef);
  CHECK(m.flags & EDDY_DNS_FLAG_QR);
  CHECK(m.flags & EDDY_DNS_FLAG_RA);
  CHECK((m.flags & EDDY_DNS_FLAG_AA) == 0);
  CHECK(m.count[0] == 1);
  CHECK(memcmp(out + 12, q.qname, q.qname_len) == 0);
  while ((rc = eddy_dns_msg_next(&m, &rr)) == 1)
    if (rr.type == EDDY_DNS_TYPE_OPT && rr.section != EDDY_DNS_QUESTION) {
      CHECK(rr.section == EDDY_DNS_ADDITIONAL);
      opt++;
    }
  CHECK(rc == 0);
  CHECK(m.pos == (size_t)n);
  CHECK(opt == (edns ? 1 : 0));
  return 0;
}
