/* DNS messages: the query parser's verdicts (every malformation, EDNS),
 * the message iterator over real packets written out by hand from RFC
 * 1035's examples, and the response writer: byte-exact output,
 * compression where allowed and only there, truncation, OPT, the
 * question's case echoed; round trips writer -> iterator. */
#include <ctype.h>

#include "helpers.h"

TestSuite(dns_query);
TestSuite(dns_msg);
TestSuite(dns_writer);

static size_t W(const char *text, uint8_t out[EDDY_DNS_NAME_MAX]) {
  int n = eddy_dns_name_from_text(text, strlen(text), NULL, out);
  cr_assert(n > 0, "bad test name %s", text);
  return (size_t)n;
}

/* A query for www.Example.com A IN, RD set, id 0xBEEF; with an OPT record
 * (payload 4096, DO) if edns. */
static const uint8_t q_plain[] = {0xBE, 0xEF, 0x01, 0x00, 0,   1,   0,
                                  0,    0,    0,    0,    0, /* header */
                                  3,    'w',  'w',  'w',  7,   'E', 'x',
                                  'a',  'm',  'p',  'l',  'e', 3,   'c',
                                  'o',  'm',  0,    0,    1,   0,   1};
static const uint8_t q_edns[] = {0xBE, 0xEF, 0x01, 0x00, 0,    1,   0,
                                 0,    0,    0,    0,    1,    3,   'w',
                                 'w',  'w',  7,    'E',  'x',  'a', 'm',
                                 'p',  'l',  'e',  3,    'c',  'o', 'm',
                                 0,    0,    1,    0,    1, /* question */
                                 0,    0,    41,   0x10, 0x00, 0,   0,
                                 0x80, 0,    0,    0}; /* OPT */

static eddy_dns_verdict_t parse(const uint8_t *m, size_t n,
                                eddy_dns_query_t *q) {
  return eddy_dns_query_parse(m, n, q);
}

/* ---- the query parser ---- */

Test(dns_query, plain_query) {
  eddy_dns_query_t q;
  EXPECT_EQ(parse(q_plain, sizeof q_plain, &q), EDDY_DNS_VERDICT_ANSWER);
  EXPECT_EQ(q.id, 0xBEEF);
  EXPECT_EQ(q.flags, EDDY_DNS_FLAG_RD);
  EXPECT_EQ(q.opcode, 0);
  EXPECT_EQ(q.qtype, EDDY_DNS_TYPE_A);
  EXPECT_EQ(q.qclass, EDDY_DNS_CLASS_IN);
  EXPECT_EQ(q.qname_len, 17);
  cr_assert(memcmp(q.qname, q_plain + 12, 17) == 0);
  EXPECT_EQ(q.edns, 0);
  EXPECT_EQ(q.udp_size, 512);
}

Test(dns_query, edns_query) {
  eddy_dns_query_t q;
  EXPECT_EQ(parse(q_edns, sizeof q_edns, &q), EDDY_DNS_VERDICT_ANSWER);
  cr_assert(q.edns);
  cr_assert(q.edns_do);
  EXPECT_EQ(q.edns_version, 0);
  EXPECT_EQ(q.udp_size, 4096);
}

Test(dns_query, too_short_is_dropped) {
  eddy_dns_query_t q;
  for (size_t n = 0; n < 12; n++)
    EXPECT_EQ(parse(q_plain, n, &q), EDDY_DNS_VERDICT_DROP);
}

Test(dns_query, response_is_dropped) {
  uint8_t m[sizeof q_plain];
  eddy_dns_query_t q;
  memcpy(m, q_plain, sizeof m);
  m[2] |= 0x80;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_DROP);
}

Test(dns_query, other_opcodes_are_notimp) {
  uint8_t m[sizeof q_plain];
  eddy_dns_query_t q;
  for (int op = 1; op < 16; op++) {
    memcpy(m, q_plain, sizeof m);
    m[2] = (uint8_t)((m[2] & 0x87) | (op << 3));
    EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_NOTIMP);
    EXPECT_EQ(q.opcode, op);
    EXPECT_EQ(q.qname_len, 0);
  }
  /* Even with no question at all. */
  EXPECT_EQ(parse(m, 12, &q), EDDY_DNS_VERDICT_NOTIMP);
}

Test(dns_query, qdcount_other_than_one_is_formerr) {
  uint8_t m[sizeof q_plain];
  eddy_dns_query_t q;
  memcpy(m, q_plain, sizeof m);
  m[5] = 0;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
  EXPECT_EQ(q.id, 0xBEEF);
  m[5] = 2;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
  EXPECT_EQ(q.qname_len, 0);
}

Test(dns_query, truncated_question_is_formerr) {
  eddy_dns_query_t q;
  for (size_t n = 12; n < sizeof q_plain; n++) {
    EXPECT_EQ(parse(q_plain, n, &q), EDDY_DNS_VERDICT_FORMERR);
    EXPECT_EQ(q.qname_len, 0);
  }
}

Test(dns_query, bad_question_name_is_formerr) {
  uint8_t m[sizeof q_plain];
  eddy_dns_query_t q;
  memcpy(m, q_plain, sizeof m);
  m[12] = 0xC0; /* pointer to itself-ish */
  m[13] = 12;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
  m[12] = 0x43;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
}

Test(dns_query, counted_records_missing_is_formerr) {
  uint8_t m[sizeof q_plain];
  eddy_dns_query_t q;
  memcpy(m, q_plain, sizeof m);
  m[7] = 1; /* an answer record that is not there */
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
  /* The question was read: the answer can echo it. */
  EXPECT_EQ(q.qname_len, 17);
}

Test(dns_query, truncated_opt_is_formerr) {
  eddy_dns_query_t q;
  for (size_t n = sizeof q_plain; n < sizeof q_edns; n++)
    EXPECT_EQ(parse(q_edns, n, &q), EDDY_DNS_VERDICT_FORMERR);
}

Test(dns_query, trailing_bytes_are_ignored) {
  uint8_t m[sizeof q_edns + 3];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof q_edns);
  memset(m + sizeof q_edns, 0xFF, 3);
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_ANSWER);
}

Test(dns_query, small_payload_size_is_clamped) {
  uint8_t m[sizeof q_edns];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof m);
  m[sizeof q_plain + 3] = 0;
  m[sizeof q_plain + 4] = 100;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_ANSWER);
  EXPECT_EQ(q.udp_size, 512);
}

Test(dns_query, version_above_zero_is_badvers) {
  uint8_t m[sizeof q_edns];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof m);
  m[sizeof q_plain + 6] = 1; /* version */
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_BADVERS);
  EXPECT_EQ(q.edns_version, 1);
  EXPECT_EQ(q.qname_len, 17);
}

Test(dns_query, two_opts_are_formerr) {
  uint8_t m[sizeof q_edns + 11];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof q_edns);
  memcpy(m + sizeof q_edns, q_edns + sizeof q_plain, 11);
  m[11] = 2;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
}

Test(dns_query, opt_outside_additional_is_formerr) {
  uint8_t m[sizeof q_edns];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof m);
  m[11] = 0;
  m[7] = 1; /* in the answer section */
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
  m[7] = 0;
  m[9] = 1; /* in the authority section */
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
}

Test(dns_query, opt_not_owned_by_root_is_formerr) {
  uint8_t m[sizeof q_edns + 2];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof q_plain);
  size_t n = sizeof q_plain;
  m[n++] = 0xC0; /* owner: the question's name */
  m[n++] = 12;
  memcpy(m + n, q_edns + sizeof q_plain + 1, 10);
  n += 10;
  EXPECT_EQ(parse(m, n, &q), EDDY_DNS_VERDICT_FORMERR);
}

Test(dns_query, opt_options_skipped_and_checked) {
  uint8_t m[sizeof q_edns + 16];
  eddy_dns_query_t q;
  memcpy(m, q_edns, sizeof q_edns);
  size_t rdlen_at = sizeof q_edns - 2;
  /* A cookie option (10) of 8 bytes: 12 bytes of rdata. */
  m[rdlen_at + 1] = 12;
  uint8_t opt[12] = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  memcpy(m + sizeof q_edns, opt, 12);
  EXPECT_EQ(parse(m, sizeof q_edns + 12, &q), EDDY_DNS_VERDICT_ANSWER);
  cr_assert(q.edns);
  /* The option's length past the rdata. */
  m[sizeof q_edns + 3] = 9;
  EXPECT_EQ(parse(m, sizeof q_edns + 12, &q), EDDY_DNS_VERDICT_FORMERR);
  /* Half an option header. */
  m[sizeof q_edns + 3] = 8;
  m[rdlen_at + 1] = 14;
  EXPECT_EQ(parse(m, sizeof q_edns + 14, &q), EDDY_DNS_VERDICT_FORMERR);
}

Test(dns_query, other_records_in_query_are_skipped) {
  /* An authority record (an A) before the OPT: allowed, skipped. */
  uint8_t m[128];
  eddy_dns_query_t q;
  memcpy(m, q_plain, sizeof q_plain);
  size_t n = sizeof q_plain;
  const uint8_t rr[] = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4};
  memcpy(m + n, rr, sizeof rr);
  n += sizeof rr;
  memcpy(m + n, q_edns + sizeof q_plain, 11);
  n += 11;
  m[9] = 1;
  m[11] = 1;
  EXPECT_EQ(parse(m, n, &q), EDDY_DNS_VERDICT_ANSWER);
  cr_assert(q.edns);
}

/* ---- the message iterator over real packets ---- */

/* RFC 1034 section 6.2.1's query for SRI-NIC.ARPA A, answered as RFC
 * 1035 section 4.1.4 would compress it: the answer's owner a pointer to
 * the question, then an NS record in the authority section whose owner
 * points into the question and whose rdata points back too, and an MX in
 * the additional section. */
static const uint8_t r_fixture[] = {
    0x12, 0x34, 0x85, 0x80, 0, 1, 0, 2, 0, 1, 0, 1,
    /* 12: SRI-NIC.ARPA. A IN */
    7, 'S', 'R', 'I', '-', 'N', 'I', 'C', 4, 'A', 'R', 'P', 'A', 0, 0, 1, 0, 1,
    /* 30: SRI-NIC.ARPA. 86400 A 26.0.0.73 */
    0xC0, 12, 0, 1, 0, 1, 0, 1, 0x51, 0x80, 0, 4, 26, 0, 0, 73,
    /* 46: SRI-NIC.ARPA. 86400 A 10.0.0.51 */
    0xC0, 12, 0, 1, 0, 1, 0, 1, 0x51, 0x80, 0, 4, 10, 0, 0, 51,
    /* 62: ARPA. NS F.ISI.ARPA. (rdata: F, ISI, pointer to ARPA) */
    0xC0, 20, 0, 2, 0, 1, 0, 1, 0x51, 0x80, 0, 8, 1, 'F', 3, 'I', 'S', 'I',
    0xC0, 20,
    /* 82: SRI-NIC.ARPA. MX 0 SRI-NIC.ARPA. */
    0xC0, 12, 0, 15, 0, 1, 0, 1, 0x51, 0x80, 0, 4, 0, 0, 0xC0, 12};

Test(dns_msg, real_response_walked) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  uint8_t n[EDDY_DNS_NAME_MAX];
  char t[EDDY_DNS_NAME_TEXT_MAX];
  EXPECT_OK(eddy_dns_msg_parse(&m, r_fixture, sizeof r_fixture));
  EXPECT_EQ(m.id, 0x1234);
  EXPECT_EQ(m.flags, 0x8580);

  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.section, EDDY_DNS_QUESTION);
  eddy_dns_name_to_text(rr.name, t, sizeof t);
  EXPECT_STR(t, "SRI-NIC.ARPA.");
  EXPECT_EQ(rr.type, EDDY_DNS_TYPE_A);

  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.section, EDDY_DNS_ANSWER);
  EXPECT_EQ(rr.ttl, 86400);
  EXPECT_EQ(rr.rdlen, 4);
  cr_assert(memcmp(rr.rdata, "\x1a\0\0\x49", 4) == 0);
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  cr_assert(memcmp(rr.rdata, "\x0a\0\0\x33", 4) == 0);

  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.section, EDDY_DNS_AUTHORITY);
  EXPECT_EQ(rr.type, EDDY_DNS_TYPE_NS);
  eddy_dns_name_to_text(rr.name, t, sizeof t);
  EXPECT_STR(t, "ARPA.");
  W("F.ISI.ARPA.", n);
  EXPECT_EQ(rr.rdlen, 12);
  cr_assert(memcmp(rr.rdata, n, 12) == 0);

  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.section, EDDY_DNS_ADDITIONAL);
  EXPECT_EQ(rr.type, EDDY_DNS_TYPE_MX);
  EXPECT_EQ(rr.rdlen, 2 + 14);
  cr_assert(memcmp(rr.rdata, "\0\0\7SRI-NIC\4ARPA", 16) == 0);

  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 0);
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 0);
}

Test(dns_msg, every_truncation_fails_cleanly) {
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_EQ(eddy_dns_msg_parse(&m, r_fixture, 11), EDDY_EPARSE);
  for (size_t len = 12; len < sizeof r_fixture; len++) {
    EXPECT_OK(eddy_dns_msg_parse(&m, r_fixture, len));
    int r;
    int k = 0;
    while ((r = eddy_dns_msg_next(&m, &rr)) == 1)
      k++;
    EXPECT_EQ(r, EDDY_EPARSE);
    cr_assert(k < 5);
    EXPECT_EQ(eddy_dns_msg_next(&m, &rr), EDDY_EPARSE); /* stays */
  }
}

/* Walks a copy of r_fixture changed at one offset; returns the last
 * result. */
static int walk_changed(size_t at, uint8_t v) {
  uint8_t b[sizeof r_fixture];
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  int r;
  memcpy(b, r_fixture, sizeof b);
  b[at] = v;
  EXPECT_OK(eddy_dns_msg_parse(&m, b, sizeof b));
  while ((r = eddy_dns_msg_next(&m, &rr)) == 1)
    ;
  return r;
}

Test(dns_msg, rdata_checks) {
  EXPECT_EQ(walk_changed(0, 0), 0);             /* unchanged: fine */
  EXPECT_EQ(walk_changed(41, 5), EDDY_EPARSE);  /* A rdlen 5 */
  EXPECT_EQ(walk_changed(41, 3), EDDY_EPARSE);  /* A rdlen 3 */
  EXPECT_EQ(walk_changed(73, 9), EDDY_EPARSE);  /* NS rdlen past its name */
  EXPECT_EQ(walk_changed(73, 7), EDDY_EPARSE);  /* NS name past rdlen */
  EXPECT_EQ(walk_changed(93, 5), EDDY_EPARSE);  /* MX rdlen */
  EXPECT_EQ(walk_changed(93, 1), EDDY_EPARSE);  /* MX shorter than 2 */
  EXPECT_EQ(walk_changed(97, 96), EDDY_EPARSE); /* MX name self pointer */
  EXPECT_EQ(walk_changed(11, 2), EDDY_EPARSE);  /* one more record */
  /* An unknown type is not looked into. */
  EXPECT_EQ(walk_changed(85, 99), 0);
}

Test(dns_msg, soa_and_srv_decompressed) {
  uint8_t b[512];
  size_t n = 0;
  const uint8_t head[] = {0, 1, 0x84, 0, 0, 0, 0, 2, 0, 0, 0, 0};
  memcpy(b, head, 12);
  n = 12;
  /* 12: example. SOA ns.example. (ns -> 12) host.example. serial...  */
  const uint8_t soa[] = {7,
                         'e',
                         'x',
                         'a',
                         'm',
                         'p',
                         'l',
                         'e',
                         0,
                         0,
                         6,
                         0,
                         1,
                         0,
                         0,
                         0,
                         60,
                         0,
                         2 + 2 + 2 + 4 + 2 + 20,
                         2,
                         'n',
                         's',
                         0xC0,
                         12,
                         4,
                         'h',
                         'o',
                         's',
                         't',
                         0xC0,
                         12,
                         0,
                         0,
                         0,
                         1,
                         0,
                         0,
                         0,
                         2,
                         0,
                         0,
                         0,
                         3,
                         0,
                         0,
                         0,
                         4,
                         0,
                         0,
                         0,
                         5};
  memcpy(b + n, soa, sizeof soa);
  n += sizeof soa;
  /* SRV 1 2 3 ns.example. compressed: accepted and decompressed. */
  const uint8_t srv[] = {0xC0, 12, 0, 33, 0, 1, 0, 0, 0,    60,
                         0,    8,  0, 1,  0, 2, 0, 3, 0xC0, 31};
  memcpy(b + n, srv, sizeof srv);
  n += sizeof srv;
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_OK(eddy_dns_msg_parse(&m, b, n));
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.type, EDDY_DNS_TYPE_SOA);
  const uint8_t want[] =
      "\2ns\7example\0\4host\7example\0"
      "\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0\5";
  EXPECT_EQ(rr.rdlen, sizeof want - 1);
  cr_assert(memcmp(rr.rdata, want, sizeof want - 1) == 0);
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.type, EDDY_DNS_TYPE_SRV);
  EXPECT_EQ(rr.rdlen, 6 + 12);
  cr_assert(memcmp(rr.rdata, "\0\1\0\2\0\3\2ns\7example", 18) == 0);
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 0);
  /* SOA with 19 fixed bytes. */
  b[12 + 18] = 31;
  EXPECT_OK(eddy_dns_msg_parse(&m, b, 12 + sizeof soa - 1));
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), EDDY_EPARSE);
}

/* ---- the writer ---- */

/* The answer eddy writes for q_plain with two A records: byte for byte,
 * as a compressing server writes it (RFC 1035 section 4.1.4). */
Test(dns_writer, answer_bytes_exact_with_case_echo) {
  eddy_dns_query_t q;
  uint8_t buf[512], owner[EDDY_DNS_NAME_MAX];
  eddy_dns_writer_t w;
  EXPECT_EQ(parse(q_plain, sizeof q_plain, &q), EDDY_DNS_VERDICT_ANSWER);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, q.udp_size, &q, 0));
  eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_AA);
  W("www.example.com.", owner); /* the zone's case */
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, 1, 1, 3600,
                                (const uint8_t *)"\xc0\0\2\1", 4));
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, 1, 1, 3600,
                                (const uint8_t *)"\xc0\0\2\2", 4));
  size_t len = eddy_dns_writer_finish(&w);
  const uint8_t want[] = {0xBE, 0xEF, 0x85, 0x00, 0,    1,    0,    2,   0,
                          0,    0,    0,    3,    'w',  'w',  'w',  7,   'E',
                          'x',  'a',  'm',  'p',  'l',  'e',  3,    'c', 'o',
                          'm',  0,    0,    1,    0,    1,    0xC0, 12,  0,
                          1,    0,    1,    0,    0,    0x0E, 0x10, 0,   4,
                          192,  0,    2,    1,    0xC0, 12,   0,    1,   0,
                          1,    0,    0,    0x0E, 0x10, 0,    4,    192, 0,
                          2,    2};
  EXPECT_EQ(len, sizeof want);
  cr_assert(memcmp(buf, want, sizeof want) == 0);
}

Test(dns_writer, compression_of_suffixes_and_rdata_names) {
  eddy_dns_query_t q;
  uint8_t buf[512], n1[EDDY_DNS_NAME_MAX], rd[600];
  eddy_dns_writer_t w;
  parse(q_plain, sizeof q_plain, &q);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, 0));
  /* CNAME www.Example.com -> web.example.com: rdata "web" + pointer to
   * 16 (example.com in the question). */
  size_t k = W("web.example.com.", rd);
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, q.qname,
                                EDDY_DNS_TYPE_CNAME, 1, 60, rd, k));
  const uint8_t want1[] = {0xC0, 12, 0, 5, 0,   1,   0,   0,    0,
                           60,   0,  6, 3, 'w', 'e', 'b', 0xC0, 16};
  cr_assert(memcmp(buf + 33, want1, sizeof want1) == 0);
  /* MX 10 mail.web.example.com: pointer to the CNAME's rdata. */
  rd[0] = 0;
  rd[1] = 10;
  k = 2 + W("mail.web.example.com.", rd + 2);
  W("example.com.", n1);
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY, n1, EDDY_DNS_TYPE_MX, 1,
                                60, rd, k));
  const uint8_t want2[] = {0xC0, 16, 0,  15, 0,   1,   0,   0,   0,    60, 0,
                           9,    0,  10, 4,  'm', 'a', 'i', 'l', 0xC0, 45};
  cr_assert(memcmp(buf + 33 + sizeof want1, want2, sizeof want2) == 0);
  /* SRV: its name written whole. */
  memcpy(rd, "\0\1\0\2\0\3", 6);
  k = 6 + W("mail.web.example.com.", rd + 6);
  size_t at = w.len;
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ADDITIONAL, n1, EDDY_DNS_TYPE_SRV,
                                1, 60, rd, k));
  EXPECT_EQ(w.len, at + 2 + 10 + k);
  cr_assert(memcmp(buf + at + 12, rd, k) == 0);
  /* An unknown type whose bytes look like a name: copied as is. */
  at = w.len;
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ADDITIONAL, n1, 65280, 1, 60,
                                rd + 6, k - 6));
  EXPECT_EQ(w.len, at + 2 + 10 + k - 6);
  size_t len = eddy_dns_writer_finish(&w);

  /* And the whole reads back as written. */
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_OK(eddy_dns_msg_parse(&m, buf, len));
  int kinds = 0;
  while (eddy_dns_msg_next(&m, &rr) == 1)
    kinds++;
  EXPECT_EQ(kinds, 5);
  EXPECT_EQ(m.pos, len);
}

Test(dns_writer, round_trip_every_type) {
  eddy_dns_query_t q;
  uint8_t buf[2048], owner[EDDY_DNS_NAME_MAX], rd[8][600];
  size_t rdlen[8];
  uint16_t types[8] = {EDDY_DNS_TYPE_NS,  EDDY_DNS_TYPE_CNAME,
                       EDDY_DNS_TYPE_PTR, EDDY_DNS_TYPE_MX,
                       EDDY_DNS_TYPE_SOA, EDDY_DNS_TYPE_SRV,
                       EDDY_DNS_TYPE_TXT, EDDY_DNS_TYPE_AAAA};
  rdlen[0] = W("ns1.Example.com.", rd[0]);
  rdlen[1] = W("x.EXAMPLE.com.", rd[1]);
  rdlen[2] = W("host.example.net.", rd[2]);
  memcpy(rd[3], "\0\5", 2);
  rdlen[3] = 2 + W("mx.example.com.", rd[3] + 2);
  size_t k = W("ns1.example.com.", rd[4]);
  k += W("admin.example.com.", rd[4] + k);
  memcpy(rd[4] + k, "12345678901234567890", 20);
  rdlen[4] = k + 20;
  memcpy(rd[5], "\0\1\0\2\0\3", 6);
  rdlen[5] = 6 + W("sip.example.com.", rd[5] + 6);
  memcpy(rd[6], "\5hello\5world", 12);
  rdlen[6] = 12;
  memcpy(rd[7], "0123456789abcdef", 16);
  rdlen[7] = 16;
  W("Example.com.", owner);

  parse(q_edns, sizeof q_edns, &q);
  eddy_dns_writer_t w;
  EXPECT_OK(eddy_dns_writer_init(&w, buf, sizeof buf, &q, 0));
  for (int i = 0; i < 8; i++)
    EXPECT_OK(
        eddy_dns_writer_add(&w, i < 6 ? EDDY_DNS_ANSWER : EDDY_DNS_ADDITIONAL,
                            owner, types[i], 1, (uint32_t)i, rd[i], rdlen[i]));
  size_t len = eddy_dns_writer_finish(&w);

  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_OK(eddy_dns_msg_parse(&m, buf, len));
  EXPECT_EQ(m.count[0], 1);
  EXPECT_EQ(m.count[1], 6);
  EXPECT_EQ(m.count[3], 3);
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  cr_assert(memcmp(rr.name, q_plain + 12, 17) == 0); /* case echoed */
  for (int i = 0; i < 8; i++) {
    EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
    EXPECT_EQ(rr.type, types[i]);
    EXPECT_EQ(rr.ttl, i);
    cr_assert(eddy_dns_name_equal(rr.name, owner));
    EXPECT_EQ(rr.rdlen, rdlen[i]);
    /* Names may come back in the case of an earlier occurrence. */
    uint8_t a[600], b[600];
    for (size_t j = 0; j < rdlen[i]; j++) {
      a[j] = (uint8_t)tolower(rr.rdata[j]);
      b[j] = (uint8_t)tolower(rd[i][j]);
    }
    cr_assert(memcmp(a, b, rdlen[i]) == 0, "type %d", types[i]);
  }
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  EXPECT_EQ(rr.type, EDDY_DNS_TYPE_OPT);
  EXPECT_EQ(rr.rclass, EDDY_DNS_EDNS_UDP_SIZE);
  EXPECT_EQ(rr.ttl, 0x8000); /* DO echoed */
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 0);
  EXPECT_EQ(m.pos, len);
}

Test(dns_writer, no_opt_without_edns) {
  eddy_dns_query_t q;
  uint8_t buf[512];
  eddy_dns_writer_t w;
  parse(q_plain, sizeof q_plain, &q);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, 0));
  EXPECT_EQ(eddy_dns_writer_finish(&w), sizeof q_plain);
  EXPECT_EQ(buf[11], 0);
  EXPECT_EQ(buf[2], 0x81); /* QR, RD */
}

Test(dns_writer, badvers_in_opt) {
  uint8_t m[sizeof q_edns], buf[512];
  eddy_dns_query_t q;
  eddy_dns_writer_t w;
  memcpy(m, q_edns, sizeof m);
  m[sizeof q_plain + 6] = 3;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_BADVERS);
  EXPECT_OK(
      eddy_dns_writer_init(&w, buf, q.udp_size, &q, EDDY_DNS_RCODE_BADVERS));
  size_t len = eddy_dns_writer_finish(&w);
  EXPECT_EQ(len, sizeof q_edns);
  EXPECT_EQ(buf[3] & 15, 0);
  EXPECT_EQ(buf[len - 11 + 5], 1); /* extended rcode: 16 >> 4 */
  EXPECT_EQ(buf[len - 11 + 6], 0); /* our version */
}

Test(dns_writer, formerr_and_notimp_without_question) {
  uint8_t m[sizeof q_plain], buf[512];
  eddy_dns_query_t q;
  eddy_dns_writer_t w;
  memcpy(m, q_plain, sizeof m);
  m[2] = 0x28 | 0x01; /* opcode 5 (UPDATE), RD */
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_NOTIMP);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, EDDY_DNS_RCODE_NOTIMP));
  EXPECT_EQ(eddy_dns_writer_finish(&w), 12);
  const uint8_t want[] = {0xBE, 0xEF, 0xA9, 0x04, 0, 0, 0, 0, 0, 0, 0, 0};
  cr_assert(memcmp(buf, want, 12) == 0);
  m[2] = 0x01;
  m[5] = 2;
  EXPECT_EQ(parse(m, sizeof m, &q), EDDY_DNS_VERDICT_FORMERR);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, EDDY_DNS_RCODE_FORMERR));
  eddy_dns_writer_set_rcode(&w, EDDY_DNS_RCODE_FORMERR);
  EXPECT_EQ(eddy_dns_writer_finish(&w), 12);
  EXPECT_EQ(buf[3], 1);
}

Test(dns_writer, truncation_keeps_message_whole) {
  eddy_dns_query_t q;
  uint8_t buf[512], owner[EDDY_DNS_NAME_MAX], txt[256];
  eddy_dns_writer_t w;
  parse(q_edns, sizeof q_edns, &q);
  q.udp_size = 512;
  W("www.example.com.", owner);
  txt[0] = 200;
  memset(txt + 1, 't', 200);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, q.udp_size, &q, 0));
  int added = 0, r;
  while ((r = eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, EDDY_DNS_TYPE_TXT,
                                  1, 60, txt, 201)) == 0)
    added++;
  EXPECT_EQ(r, -ENOSPC);
  EXPECT_EQ(added, 2); /* 33 + 2 * 213 = 459; a third would pass 512-11 */
  size_t before = w.len;
  eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_TC);
  /* A smaller additional record still fits. */
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ADDITIONAL, owner, EDDY_DNS_TYPE_A,
                                1, 60, (const uint8_t *)"\1\2\3\4", 4));
  EXPECT_EQ(w.len, before + 16);
  size_t len = eddy_dns_writer_finish(&w);
  cr_assert(len <= 512);
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_OK(eddy_dns_msg_parse(&m, buf, len));
  EXPECT_NE(m.flags & EDDY_DNS_FLAG_TC, 0);
  EXPECT_EQ(m.count[1], 2);
  EXPECT_EQ(m.count[3], 2);
  int k = 0;
  while ((r = eddy_dns_msg_next(&m, &rr)) == 1)
    k++;
  EXPECT_EQ(r, 0);
  EXPECT_EQ(k, 5);
}

Test(dns_writer, enospc_rolls_back_compression_table) {
  /* A record that fails after its owner was written must not leave a
   * compression entry pointing at bytes that are gone. */
  eddy_dns_query_t q;
  uint8_t buf[512], owner[EDDY_DNS_NAME_MAX], big[300];
  eddy_dns_writer_t w;
  parse(q_plain, sizeof q_plain, &q);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 200, &q, 0));
  W("other.name.test.", owner);
  memset(big, 0, sizeof big);
  int nc = w.ncomp;
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, 99, 1, 0, big, 200),
            -ENOSPC);
  EXPECT_EQ(w.ncomp, nc);
  EXPECT_EQ(w.len, sizeof q_plain);
  EXPECT_EQ(w.count[1], 0);
  /* Then the same name is written whole. */
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, 99, 1, 0, big, 4));
  cr_assert(memcmp(buf + sizeof q_plain, owner, 17) == 0);
}

Test(dns_writer, errors) {
  eddy_dns_query_t q;
  uint8_t buf[512], owner[EDDY_DNS_NAME_MAX];
  eddy_dns_writer_t w;
  parse(q_edns, sizeof q_edns, &q);
  EXPECT_EQ(eddy_dns_writer_init(&w, buf, 11, &q, 0), -EINVAL);
  EXPECT_EQ(eddy_dns_writer_init(&w, buf, 40, &q, 0), -ENOSPC);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, 0));
  W("a.", owner);
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_QUESTION, owner, 1, 1, 0,
                                (const uint8_t *)"abcd", 4),
            -EINVAL);
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY, owner, 1, 1, 0,
                                (const uint8_t *)"abcd", 4));
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, 1, 1, 0,
                                (const uint8_t *)"abcd", 4),
            -EINVAL);
  /* Names in NS / MX / SOA rdata must be well formed and fill it. */
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY, owner, 2, 1, 0,
                                (const uint8_t *)"\3ab", 3),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY, owner, 2, 1, 0,
                                (const uint8_t *)"\1a\0x", 4),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY, owner, 15, 1, 0,
                                (const uint8_t *)"\0", 1),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY, owner, 6, 1, 0,
                                (const uint8_t *)"\0\0\0\0\0", 5),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_writer_add(&w, EDDY_DNS_AUTHORITY,
                                (const uint8_t *)"\xC0\x0C", 1, 1, 0,
                                (const uint8_t *)"abcd", 4),
            EDDY_EPARSE);
  EXPECT_EQ(w.count[2], 1);
  EXPECT_EQ(w.len, sizeof q_plain + 3 + 10 + 4);
}

Test(dns_writer, pointers_only_below_16k_in_tcp_messages) {
  static uint8_t buf[65535];
  eddy_dns_query_t q;
  uint8_t owner[EDDY_DNS_NAME_MAX], rd[EDDY_DNS_NAME_MAX];
  char t[64];
  eddy_dns_writer_t w;
  parse(q_plain, sizeof q_plain, &q);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 65535, &q, 0));
  /* Distinct owners, so the table fills and names go past 16K. */
  int i;
  for (i = 0; i < 3000; i++) {
    snprintf(t, sizeof t, "h%d.zone%d.example.com.", i, i % 100);
    W(t, owner);
    size_t k = W(t, rd);
    int r = eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, EDDY_DNS_TYPE_CNAME,
                                1, 0, rd, k);
    if (r == -ENOSPC)
      break;
    EXPECT_OK(r);
  }
  cr_assert(w.len > 0x4000);
  EXPECT_LE(w.ncomp, EDDY_DNS_COMPRESS_MAX);
  size_t len = eddy_dns_writer_finish(&w);
  /* Every record reads back and matches what was written. */
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  EXPECT_OK(eddy_dns_msg_parse(&m, buf, len));
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
  for (int j = 0; j < i; j++) {
    EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 1);
    snprintf(t, sizeof t, "h%d.zone%d.example.com.", j, j % 100);
    W(t, owner);
    cr_assert(eddy_dns_name_equal(rr.name, owner));
    cr_assert(eddy_dns_name_equal(rr.rdata, owner));
  }
  EXPECT_EQ(eddy_dns_msg_next(&m, &rr), 0);
}

Test(dns_writer, query_write) {
  uint8_t buf[512], name[EDDY_DNS_NAME_MAX];
  eddy_dns_query_t q;
  W("www.Example.com.", name);
  int n = eddy_dns_query_write(buf, sizeof buf, 0xBEEF, EDDY_DNS_FLAG_RD, name,
                               1, 1, 0, false);
  EXPECT_EQ(n, sizeof q_plain);
  cr_assert(memcmp(buf, q_plain, sizeof q_plain) == 0);
  n = eddy_dns_query_write(buf, sizeof buf, 0xBEEF, EDDY_DNS_FLAG_RD, name, 1,
                           1, 4096, true);
  EXPECT_EQ(n, sizeof q_edns);
  cr_assert(memcmp(buf, q_edns, sizeof q_edns) == 0);
  EXPECT_EQ(parse(buf, (size_t)n, &q), EDDY_DNS_VERDICT_ANSWER);
  EXPECT_EQ(eddy_dns_query_write(buf, sizeof q_edns - 1, 1, 0, name, 1, 1, 4096,
                                 true),
            -ENOSPC);
  EXPECT_EQ(eddy_dns_query_write(buf, sizeof buf, 1, 0,
                                 (const uint8_t *)"\xC0\x0C", 1, 1, 0, false),
            EDDY_EPARSE);
}

Test(dns_writer, empty_rdata) {
  eddy_dns_query_t q;
  uint8_t buf[512], owner[EDDY_DNS_NAME_MAX];
  eddy_dns_writer_t w;
  parse(q_plain, sizeof q_plain, &q);
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, 0));
  W("x.", owner);
  EXPECT_OK(
      eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, owner, 65280, 1, 0, NULL, 0));
  EXPECT_EQ(eddy_dns_writer_finish(&w), sizeof q_plain + 3 + 10);
}

/* RFC 1035 section 4.1.4's example: F.ISI.ARPA, then FOO.F.ISI.ARPA as
 * "FOO" and a pointer to it, then ARPA as a pointer into it, and the root
 * as a single zero byte (never a pointer). */
Test(dns_writer, rfc1035_compression_example) {
  eddy_dns_query_t q;
  uint8_t m[64], buf[512], n[EDDY_DNS_NAME_MAX];
  size_t k = eddy_dns_query_write(m, sizeof m, 7, 0,
                                  (const uint8_t *)"\1F\3ISI\4ARPA", 1, 1, 0,
                                  false);
  EXPECT_EQ(parse(m, k, &q), EDDY_DNS_VERDICT_ANSWER);
  eddy_dns_writer_t w;
  EXPECT_OK(eddy_dns_writer_init(&w, buf, 512, &q, 0));
  W("FOO.F.ISI.ARPA.", n);
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, n, 1, 1, 0,
                                (const uint8_t *)"abcd", 4));
  W("ARPA.", n);
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, n, 1, 1, 0,
                                (const uint8_t *)"abcd", 4));
  W(".", n);
  EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, n, 1, 1, 0,
                                (const uint8_t *)"abcd", 4));
  size_t len = eddy_dns_writer_finish(&w);
  const uint8_t foo[] = {3, 'F', 'O', 'O', 0xC0, 12};
  const uint8_t arpa[] = {0xC0, 18};
  size_t at = 12 + 12 + 4;
  cr_assert(memcmp(buf + at, foo, sizeof foo) == 0);
  at += sizeof foo + 14;
  cr_assert(memcmp(buf + at, arpa, sizeof arpa) == 0);
  at += sizeof arpa + 14;
  EXPECT_EQ(buf[at], 0);
  EXPECT_EQ(at + 1 + 14, len);
}
