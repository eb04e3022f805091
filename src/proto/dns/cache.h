/* cache.h: the forwarder's answer cache (private to eddy).
 *
 * An entry is one upstream answer to one question, kept by its key: the
 * question's name lower-cased, its type and its class. The answer is kept
 * parsed (its records with names decompressed, the OPT left out), so that a
 * hit writes it straight into a client's answer with the writer of
 * eddy/dns.h, with the client's ID, question case, EDNS and size limit,
 * and the TTLs lowered by the time spent in the cache.
 *
 * How long an answer is kept (eddy__dns_cache_entry_new decides, from the
 * answer alone):
 *
 * - NOERROR with records in the answer section: the smallest TTL of the
 *   answer and authority sections, at most EDDY__DNS_CACHE_MAX_TTL;
 * - NXDOMAIN, or NOERROR with an empty answer section (NODATA): RFC 2308,
 *   min(SOA TTL, SOA minimum) of the SOA in the authority section, at most
 *   EDDY__DNS_CACHE_MAX_NEG_TTL; without an SOA it is not cached (RFC 2308
 *   section 5);
 * - a TTL of 0 (or one with the top bit set, which RFC 2181 section 8 says
 *   to read as 0): not cached;
 * - any other rcode (SERVFAIL, REFUSED, FORMERR, ...): not cached at all.
 *   The forwarder answers SERVFAIL for them, each time asking again.
 * - an answer with TC=1, or one whose records do not fit
 *   EDDY__DNS_CACHE_ENTRY_MAX bytes once decompressed: not cached.
 *
 * The TTLs handed out are capped the same way (a day, an hour), so that
 * no client keeps an answer longer than the cache would.
 *
 * The cache holds at most max entries; putting one more first drops the
 * least recently used (a lookup counts as a use). An expired entry is
 * dropped when a lookup finds it, or when the least recently used go.
 * Lookups, puts and drops cost O(1): a chained hash (SipHash with a random
 * key, since clients choose the names) and a doubly linked LRU list.
 * Memory is at most max entries of at most EDDY__DNS_CACHE_ENTRY_MAX bytes
 * each, plus a bucket array that grows to one pointer per entry.
 *
 * Entries are reference counted so that the forwarder can keep writing
 * one to the clients that waited for it even if it leaves the cache
 * meanwhile. Time is the loop's (eddy_loop_now), in nanoseconds.
 */
#ifndef EDDY_PROTO_DNS_CACHE_H
#define EDDY_PROTO_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eddy/dns.h"

/* Positive answers are kept at most a day, negative ones an hour (RFC
 * 2308 section 5 suggests one to three hours at most). */
#define EDDY__DNS_CACHE_MAX_TTL 86400u
#define EDDY__DNS_CACHE_MAX_NEG_TTL 3600u
/* The most bytes of records one entry holds (a TCP answer's limit). */
#define EDDY__DNS_CACHE_ENTRY_MAX 65535u
/* The number of entries when the caller says 0. */
#define EDDY__DNS_CACHE_DEFAULT_SIZE 10000u

typedef struct eddy__dns_cache eddy__dns_cache;
typedef struct eddy__dns_cache_entry eddy__dns_cache_entry;

/* A question's key: name lower-cased (wire form), type, class, and its
 * hash under the cache's key. Filled by eddy__dns_cache_key. */
typedef struct eddy__dns_cache_key {
  uint8_t name[EDDY_DNS_NAME_MAX];
  size_t name_len;
  uint16_t qtype, qclass;
  uint64_t hash;
} eddy__dns_cache_key;

/* Makes a cache of at most max entries (0: the default). Returns 0 and
 * sets *out, or -ENOMEM. */
int eddy__dns_cache_new(size_t max, eddy__dns_cache **out);

/* Drops every entry (entries still referenced elsewhere live on until
 * their last eddy__dns_cache_entry_unref) and frees the cache. NULL is
 * allowed. */
void eddy__dns_cache_free(eddy__dns_cache *c);

/* Fills k for the well-formed name (any case), type and class. */
void eddy__dns_cache_key_make(const eddy__dns_cache *c, const uint8_t *name,
                              uint16_t qtype, uint16_t qclass,
                              eddy__dns_cache_key *k);

/* The entry for k that has not expired at now, made the most recently
 * used; or NULL (an expired one found is dropped). The pointer is valid
 * until the cache is next changed, unless the caller takes a reference. */
eddy__dns_cache_entry *eddy__dns_cache_get(eddy__dns_cache *c,
                                           const eddy__dns_cache_key *k,
                                           int64_t now);

/* Parses the upstream answer msg[0..len) to the question k, received at
 * now, into a new entry (one reference, the caller's), deciding how long
 * it may be cached (see the top of this file). Returns 0 and sets *out,
 * EDDY_EPARSE if a record of the message is malformed, or -ENOMEM. */
int eddy__dns_cache_entry_new(const eddy__dns_cache_key *k, const uint8_t *msg,
                              size_t len, int64_t now,
                              eddy__dns_cache_entry **out);

/* Whether e may be cached (a TTL above 0, a cacheable rcode), and its
 * rcode (NOERROR, NXDOMAIN, or another the forwarder turns to SERVFAIL). */
bool eddy__dns_cache_entry_cacheable(const eddy__dns_cache_entry *e);
uint16_t eddy__dns_cache_entry_rcode(const eddy__dns_cache_entry *e);
/* The time e expires at (its arrival plus its TTL), in loop nanoseconds. */
int64_t eddy__dns_cache_entry_expires(const eddy__dns_cache_entry *e);

void eddy__dns_cache_entry_ref(eddy__dns_cache_entry *e);
/* Drops a reference; the last one frees e. NULL is allowed. */
void eddy__dns_cache_entry_unref(eddy__dns_cache_entry *e);

/* Puts e in the cache (which takes a reference of its own) if it is
 * cacheable, replacing an entry for the same key and dropping the least
 * recently used if the cache is full. Returns 1 if e was put, 0 if it is
 * not cacheable. Never fails. */
int eddy__dns_cache_put(eddy__dns_cache *c, eddy__dns_cache_entry *e);

/* Writes e as the answer to q into out[0..cap) at now: q's ID, question
 * (its case) and EDNS, e's rcode, RA set, AA clear, each TTL lowered by
 * the whole seconds e has been kept (never below 0). Records that do not
 * fit cap are left out: an RRset of the answer or authority section that
 * does not fit is taken out whole and TC set; additional records that do
 * not fit are left out silently (RFC 2181 section 9). Returns the length,
 * or -ENOSPC if cap cannot hold even the header and question. */
int eddy__dns_cache_write(const eddy__dns_cache_entry *e,
                          const eddy_dns_query_t *q, size_t cap, uint8_t *out,
                          int64_t now);

/* Entries in the cache now (expired ones not yet dropped included). */
size_t eddy__dns_cache_count(const eddy__dns_cache *c);

#endif
