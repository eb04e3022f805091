/* Fuzz target: the authoritative server's whole per-message path
 * (src/proto/dns/server.c): parse the query, look it up in real zones
 * (tests/proto/zones/: CNAME chains, wildcards with RFC 4592's example,
 * delegations with glue, a rrset too large for 512 bytes), write the
 * answer.
 *
 * The input is one message; its last byte picks the transport (UDP or
 * TCP) and whether a forwarder is configured. Checks: the answer fits the
 * transport's limit (the client's EDNS size over UDP, at least 512); it
 * reads cleanly with the message iterator to its end, its counts exact;
 * it is a response with the query's ID; an answered question is echoed
 * byte for byte (decompressed); FORWARD comes only with a forwarder and for class IN;
 * no OPT in an answer to a query without one. Any failure, or a sanitizer
 * report, is a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"
#include "proto/dns/server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "dns_server fuzz: %s (line %d)\n", #c, __LINE__);        \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define ZONES EDDY_SOURCE_DIR "/tests/proto/zones/"

static eddy__dns_zone_db *db;
static eddy__dns_scratch sc;
static uint8_t out[65535];

static void add(const char *file, const char *origin) {
  int rc = eddy__dns_zone_db_add(db, file, origin);
  if (rc != 0) {
    fprintf(stderr, "dns_server fuzz: %s\n", eddy__dns_zone_db_error(db));
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  CHECK(eddy__dns_zone_db_new(&db) == 0);
  add(ZONES "example.zone", "example.com.");
  add(ZONES "other.zone", NULL);
  add(ZONES "child.zone", "child.example.com");
  add(ZONES "rfc4592.zone", NULL);
  add(ZONES "server.zone", NULL);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  int transport, forward, n, rc, opt = 0;
  size_t limit;
  if (size == 0)
    return 0;
  transport = data[size - 1] & 1 ? EDDY__DNS_TCP : EDDY__DNS_UDP;
  forward = (data[size - 1] & 2) != 0;
  size--;
  n = eddy__dns_respond(db, data, size, transport, forward, &sc, out,
                        sizeof out);
  if (n == EDDY__DNS_RESPOND_FORWARD) {
    CHECK(forward);
    CHECK(sc.verdict == EDDY_DNS_VERDICT_ANSWER);
    CHECK(sc.q.qclass == EDDY_DNS_CLASS_IN);
    return 0;
  }
  CHECK(n >= 0);
  if (n == 0) {
    CHECK(sc.verdict == EDDY_DNS_VERDICT_DROP);
    return 0;
  }
  CHECK(sc.verdict != EDDY_DNS_VERDICT_DROP);
  limit = transport == EDDY__DNS_TCP ? 65535 : sc.q.udp_size;
  CHECK(limit >= 512);
  CHECK((size_t)n <= limit);
  CHECK(eddy_dns_msg_parse(&m, out, (size_t)n) == 0);
  CHECK(m.id == sc.q.id);
  CHECK(m.flags & EDDY_DNS_FLAG_QR);
  while ((rc = eddy_dns_msg_next(&m, &rr)) == 1) {
    if (rr.type == EDDY_DNS_TYPE_OPT && rr.section == EDDY_DNS_ADDITIONAL)
      opt++;
  }
  CHECK(rc == 0);
  CHECK(m.pos == (size_t)n);
  CHECK(opt <= 1);
  if (!sc.q.edns)
    CHECK(opt == 0);
  if (sc.verdict == EDDY_DNS_VERDICT_ANSWER) {
    CHECK(m.count[0] == 1);
    /* The name as sent, decompressed: a question may point back into
     * itself, and the answer's question never does. */
    CHECK(memcmp(out + 12, sc.q.qname, sc.q.qname_len) == 0);
  }
  return 0;
}
