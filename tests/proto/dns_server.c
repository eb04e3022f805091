/* The authoritative server's per-message path (eddy__dns_respond): the
 * answer to every verdict, AA and the question's case, negative answers,
 * REFUSED or the forwarder outside the zones, other classes, and the size
 * limits of UDP (512, or the EDNS size) and TCP with TC=1. Each answer is
 * read back with the message iterator. */
#include <string.h>

#include "helpers.h"
#include "proto/dns/server.h"

#define ZONES EDDY_SOURCE_DIR "/tests/proto/zones/"

static eddy__dns_zone_db *db;
static eddy__dns_scratch sc;
static uint8_t out[65535];

static void load(void) {
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  int rc = eddy__dns_zone_db_add(db, ZONES "server.zone", NULL);
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
}

static void done(void) {
  eddy__dns_zone_db_free(db);
  db = NULL;
  EXPECT_LIVE(0);
}

/* A query for name/type; edns 0: none, else its UDP size. */
static size_t query(uint8_t *buf, const char *name, uint16_t type,
                    uint16_t edns) {
  uint8_t wire[EDDY_DNS_NAME_MAX];
  int n = eddy_dns_name_from_text(name, strlen(name), NULL, wire);
  cr_assert(n > 0);
  n = eddy_dns_query_write(buf, 512, 0x4242, EDDY_DNS_FLAG_RD, wire, type,
                           EDDY_DNS_CLASS_IN, edns, false);
  cr_assert(n > 0);
  return (size_t)n;
}

typedef struct reply {
  uint16_t id, flags, rcode;
  uint16_t count[4];
  int records[4]; /* read back by the iterator, per section */
  int opt;
  char qname[EDDY_DNS_NAME_TEXT_MAX];
} reply;

static reply read_reply(size_t len) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  reply r;
  int rc;
  memset(&r, 0, sizeof r);
  EXPECT_OK(eddy_dns_msg_parse(&m, out, len));
  r.id = m.id;
  r.flags = m.flags;
  r.rcode = m.flags & 15;
  memcpy(r.count, m.count, sizeof r.count);
  while ((rc = eddy_dns_msg_next(&m, &rr)) == 1) {
    r.records[rr.section]++;
    if (rr.section == EDDY_DNS_QUESTION)
      cr_assert(eddy_dns_name_to_text(rr.name, r.qname, sizeof r.qname) > 0);
    if (rr.type == EDDY_DNS_TYPE_OPT)
      r.opt++;
  }
  EXPECT_EQ(rc, 0);
  for (int s = 0; s < 4; s++)
    EXPECT_EQ(r.records[s], r.count[s]);
  return r;
}

static int respond(const uint8_t *msg, size_t len, int transport,
                   bool forward) {
  return eddy__dns_respond(db, msg, len, transport, forward, &sc, out,
                           sizeof out);
}

TestSuite(dns_server, .init = load, .fini = done);

Test(dns_server, an_answer_is_authoritative_and_echoes_the_case) {
  uint8_t q[512];
  size_t n = query(q, "WwW.Server.TEST.", EDDY_DNS_TYPE_A, 0);
  int len = respond(q, n, EDDY__DNS_UDP, false);
  cr_assert(len > 0);
  reply r = read_reply((size_t)len);
  EXPECT_EQ(r.id, 0x4242);
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_QR));
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_AA));
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_RD), "RD is copied");
  EXPECT_EQ(r.flags & EDDY_DNS_FLAG_RA, 0);
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_NOERROR);
  EXPECT_EQ(r.count[1], 1);
  EXPECT_EQ(r.opt, 0);
  cr_assert_str_eq(r.qname, "WwW.Server.TEST.");
  /* The answer's owner is compressed onto the question: the same bytes. */
  cr_assert(memmem(out + 12, (size_t)len - 12, "\x03WwW", 4) != NULL);
}

Test(dns_server, nxdomain_and_nodata_carry_the_soa) {
  uint8_t q[512];
  size_t n = query(q, "nope.server.test.", EDDY_DNS_TYPE_A, 1232);
  reply r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_NXDOMAIN);
  EXPECT_EQ(r.count[1], 0);
  EXPECT_EQ(r.count[2], 1);
  EXPECT_EQ(r.opt, 1);
  n = query(q, "www.server.test.", EDDY_DNS_TYPE_MX, 0);
  r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_NOERROR);
  EXPECT_EQ(r.count[1], 0);
  EXPECT_EQ(r.count[2], 1);
}

Test(dns_server, udp_without_edns_is_cut_at_512_with_tc) {
  uint8_t q[512];
  size_t n = query(q, "big.server.test.", EDDY_DNS_TYPE_A, 0);
  int len = respond(q, n, EDDY__DNS_UDP, false);
  cr_assert(len > 0 && len <= 512, "%d", len);
  reply r = read_reply((size_t)len);
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_TC));
  /* The rrset did not fit: it is left out whole (RFC 2181 section 9). */
  EXPECT_EQ(r.count[1], 0);
  /* Over TCP the same question gets all forty. */
  len = respond(q, n, EDDY__DNS_TCP, false);
  r = read_reply((size_t)len);
  EXPECT_EQ(r.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(r.count[1], 40);
}

Test(dns_server, the_edns_size_is_the_limit_and_never_below_512) {
  uint8_t q[512];
  size_t n = query(q, "big.server.test.", EDDY_DNS_TYPE_A, 1232);
  reply r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(r.count[1], 40);
  n = query(q, "big.server.test.", EDDY_DNS_TYPE_A, 100);
  int len = respond(q, n, EDDY__DNS_UDP, false);
  cr_assert(len > 0 && len <= 512, "%d", len);
  r = read_reply((size_t)len);
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_TC));
  EXPECT_EQ(r.count[1], 0);
  EXPECT_EQ(r.opt, 1);
}

Test(dns_server, outside_the_zones_is_refused_or_forwarded) {
  uint8_t q[512];
  size_t n = query(q, "example.org.", EDDY_DNS_TYPE_A, 0);
  reply r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_REFUSED);
  EXPECT_EQ(r.flags & EDDY_DNS_FLAG_AA, 0);
  EXPECT_EQ(respond(q, n, EDDY__DNS_UDP, true), EDDY__DNS_RESPOND_FORWARD);
  cr_assert_str_eq((const char *)sc.q.qname + 1, "example\3org");
  /* A zone's own name is never forwarded. */
  n = query(q, "www.server.test.", EDDY_DNS_TYPE_A, 0);
  cr_assert(respond(q, n, EDDY__DNS_UDP, true) > 0);
}

Test(dns_server, another_class_is_refused_even_with_a_forwarder) {
  uint8_t q[512], wire[EDDY_DNS_NAME_MAX];
  int n = eddy_dns_name_from_text("www.server.test.", 16, NULL, wire);
  n = eddy_dns_query_write(q, sizeof q, 7, 0, wire, EDDY_DNS_TYPE_A,
                           EDDY_DNS_CLASS_CH, 0, false);
  reply r = read_reply((size_t)respond(q, (size_t)n, EDDY__DNS_UDP, true));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_REFUSED);
}

Test(dns_server, with_a_forwarder_every_answer_offers_recursion) {
  uint8_t q[512];
  size_t n = query(q, "www.server.test.", EDDY_DNS_TYPE_A, 0);
  reply r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, true));
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_RA));
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_AA));
  q[5] = 2; /* FORMERR too */
  r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, true));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_FORMERR);
  cr_assert(0 != (r.flags & EDDY_DNS_FLAG_RA));
  r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.flags & EDDY_DNS_FLAG_RA, 0);
}

Test(dns_server, zone_transfers_are_refused_and_not_forwarded) {
  uint8_t q[512];
  size_t n = query(q, "server.test.", EDDY_DNS_TYPE_AXFR, 0);
  reply r = read_reply((size_t)respond(q, n, EDDY__DNS_TCP, true));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_REFUSED);
  EXPECT_EQ(r.count[1], 0);
  n = query(q, "example.org.", EDDY_DNS_TYPE_IXFR, 0);
  r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, true));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_REFUSED);
}

Test(dns_server, verdicts_drop_formerr_notimp_badvers) {
  uint8_t q[512];
  size_t n = query(q, "www.server.test.", EDDY_DNS_TYPE_A, 1232);
  /* Shorter than a header, or a response: nothing. */
  EXPECT_EQ(respond(q, 11, EDDY__DNS_UDP, false), 0);
  q[2] |= 0x80;
  EXPECT_EQ(respond(q, n, EDDY__DNS_UDP, false), 0);
  q[2] &= 0x7f;
  /* Another opcode (STATUS): NOTIMP, no question echoed. */
  q[2] |= 2 << 3;
  reply r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_NOTIMP);
  EXPECT_EQ(r.count[0], 0);
  q[2] &= (uint8_t) ~(15 << 3);
  /* Two questions: FORMERR. */
  q[5] = 2;
  r = read_reply((size_t)respond(q, n, EDDY__DNS_UDP, false));
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_FORMERR);
  q[5] = 1;
  /* EDNS version 1: BADVERS, its upper bits in the OPT. */
  q[n - 11 + 6] = 1; /* the OPT's version byte */
  int len = respond(q, n, EDDY__DNS_UDP, false);
  r = read_reply((size_t)len);
  EXPECT_EQ(r.opt, 1);
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_BADVERS & 15);
  EXPECT_EQ(sc.verdict, EDDY_DNS_VERDICT_BADVERS);
}

Test(dns_server, an_rcode_alone_for_the_forwarders_failures) {
  uint8_t q[512];
  size_t n = query(q, "example.org.", EDDY_DNS_TYPE_A, 0);
  EXPECT_EQ(respond(q, n, EDDY__DNS_UDP, true), EDDY__DNS_RESPOND_FORWARD);
  int len = eddy__dns_respond_rcode(&sc.q, EDDY_DNS_RCODE_SERVFAIL, out,
                                    sizeof out);
  reply r = read_reply((size_t)len);
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_EQ(r.count[0], 1);
  EXPECT_EQ(eddy__dns_respond_rcode(&sc.q, EDDY_DNS_RCODE_SERVFAIL, out, 11),
            0);
}

Test(dns_server, no_zones_at_all_refuses) {
  uint8_t q[512];
  size_t n = query(q, "www.server.test.", EDDY_DNS_TYPE_A, 0);
  int len = eddy__dns_respond(NULL, q, n, EDDY__DNS_UDP, false, &sc, out,
                              sizeof out);
  reply r = read_reply((size_t)len);
  EXPECT_EQ(r.rcode, EDDY_DNS_RCODE_REFUSED);
}
