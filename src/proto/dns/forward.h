/* forward.h: the caching forwarder behind `eddy dns --forward` (private).
 *
 * A question outside every zone goes to the forwarder. It answers from its
 * cache when it can (positive answers kept by their smallest TTL, negative
 * ones, NXDOMAIN and NODATA, by the SOA's minimum per RFC 2308), else asks
 * the upstreams through exchange.h; identical questions in flight share
 * one upstream exchange. The cache is bounded in entries, the least
 * recently used going first, so its memory stays within the bound under a
 * flood of unique names.
 *
 * Every answer is written afresh for the client that asked: its ID, its
 * question with the case it used, its EDNS (an OPT only if it sent one,
 * the upstream's OPT never copied), TTLs lowered by the time spent in the
 * cache, RA set, AA clear, and the client's size limit (an RRset of the
 * answer or authority section that does not fit is left out whole and
 * TC=1 set; additional records that do not fit are left out silently).
 *
 * What is cached how long is cache.h's business: positive answers by
 * their smallest TTL (a day at most), negative ones by min(SOA TTL, SOA
 * minimum) (an hour at most), nothing without a TTL above 0, nothing
 * truncated, and no failure: SERVFAIL, REFUSED and the like from upstream,
 * or no answer at all, reach the client as SERVFAIL and are asked again
 * the next time.
 */
#ifndef EDDY_PROTO_DNS_FORWARD_H
#define EDDY_PROTO_DNS_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "eddy/core.h"
#include "eddy/dns.h"
#include "proto/dns/exchange.h"

typedef struct eddy__dns_forwarder eddy__dns_forwarder;
typedef struct eddy__dns_forward_req eddy__dns_forward_req;

typedef struct eddy__dns_forward_config {
  eddy__dns_exchange_opts upstream; /* servers, timeout, attempts; rd set */
  size_t cache_size;                /* entries; 0: 10000 */
  /* The most clients waiting for upstream answers at once, and the most
   * exchanges in flight (each holds a socket); past either, a question
   * that the cache cannot answer is turned away with -EAGAIN, so a flood
   * of unique names costs bounded memory and descriptors. 0: 1024. */
  size_t max_waiting;
} eddy__dns_forward_config;

typedef struct eddy__dns_forward_stats {
  uint64_t queries;  /* questions given to eddy__dns_forward */
  uint64_t hits;     /* answered from the cache */
  uint64_t upstream; /* exchanges started */
  uint64_t joined;   /* questions that joined an exchange in flight */
  uint64_t failures; /* waiters answered SERVFAIL (no usable answer) */
  size_t entries;    /* in the cache now */
  uint64_t overload; /* questions turned away: max_waiting reached */
  size_t inflight;   /* upstream exchanges in flight now */
  size_t waiting;    /* clients waiting for them now */
} eddy__dns_forward_stats;

/* Called once with the answer to send to the client: msg[0..len),
 * borrowed for the call. Never called from inside eddy__dns_forward. */
typedef void (*eddy__dns_forward_cb)(void *arg, const uint8_t *msg, size_t len);

/* Makes a forwarder on loop asking cfg->upstream (copied; RD is set
 * whatever cfg says). Returns 0 and sets *out, or -ENOMEM, or -EINVAL (no
 * upstream, or more than EDDY__DNS_UPSTREAMS_MAX). */
int eddy__dns_forwarder_new(eddy_loop *loop,
                            const eddy__dns_forward_config *cfg,
                            eddy__dns_forwarder **out);

/* Cancels every request still waiting (their callbacks are not called)
 * and frees the forwarder and its cache. NULL is allowed. Safe from inside
 * a forward callback: the waiters not yet called are not called.
 *
 * eddy_loop_close_all ends the exchanges in flight: their waiters are
 * called with SERVFAIL; the forwarder itself is not a handle and is still
 * to be freed. */
void eddy__dns_forwarder_free(eddy__dns_forwarder *f);

/* Answers q (parsed, verdict ANSWER) for a client whose size limit is cap
 * (q->udp_size over UDP, 65535 over TCP), with out a buffer of at least
 * cap bytes.
 *
 * Returns the answer's length (> 0) when the cache held it: it is written
 * in out, and cb is not called. Returns 0 when an upstream exchange was
 * started or joined: *req is set (req may be NULL if the caller never
 * cancels), and cb(arg, ...) is called later with the answer (or a
 * SERVFAIL written by the forwarder if no upstream answered, or answered
 * with another rcode than NOERROR or NXDOMAIN, or the answer could not be
 * held), unless eddy__dns_forward_cancel(*req) comes first. *req is no
 * longer valid once cb has been called.
 *
 * Returns a negative code if neither could be done, and the caller answers
 * SERVFAIL itself: -EAGAIN when max_waiting clients already wait (or as
 * many exchanges are in flight and a new one is needed), -ENOMEM, or the
 * error eddy__dns_exchange_start gave (a socket that could not be made:
 * -EMFILE and the like); -ENOSPC if cap cannot hold the question (never
 * for cap >= 512). Allocates nothing on a hit. */
int eddy__dns_forward(eddy__dns_forwarder *f, const eddy_dns_query_t *q,
                      size_t cap, uint8_t *out, eddy__dns_forward_cb cb,
                      void *arg, eddy__dns_forward_req **req);

/* The client is gone: its callback will not be called. The upstream
 * exchange goes on for the others who share it (and for the cache). Only
 * before the callback has run; NULL is allowed. */
void eddy__dns_forward_cancel(eddy__dns_forward_req *req);

void eddy__dns_forwarder_stats(const eddy__dns_forwarder *f,
                               eddy__dns_forward_stats *st);

#endif
