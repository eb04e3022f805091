/* Fuzz target: the DNS wire format (src/proto/dns/).
 *
 * The input is one message. It is parsed as a query (the server's view)
 * and as a full message (the forwarder's view): every record is walked,
 * and every name it yields must be well formed and survive presentation
 * text both ways. Then a response is written as a server would: the
 * header and question echoed from the query, and the parsed records
 * copied back through the writer section by section (TC on a full answer
 * section), under a size limit of the client's UDP size or 65535 (the
 * last input byte picks). The output is parsed again: it must read
 * cleanly to its end, echo the question byte for byte, and hold exactly
 * the records that were accepted, equal to the input's (names without
 * regard to case, since compression may take an earlier occurrence's).
 * Any difference, or a sanitizer report, is a crash.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "dns fuzz: %s (line %d)\n", #c, __LINE__);               \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define MAX_RECORDS 8192

static uint8_t out[65535];
static uint8_t added[MAX_RECORDS];

static void check_name(const uint8_t *name, size_t len) {
  char text[EDDY_DNS_NAME_TEXT_MAX];
  uint8_t back[EDDY_DNS_NAME_MAX], low[EDDY_DNS_NAME_MAX];
  CHECK(len >= 1 && len <= EDDY_DNS_NAME_MAX);
  CHECK(eddy_dns_name_check(name, len) == (int)len);
  CHECK(eddy_dns_name_len(name) == len);
  int t = eddy_dns_name_to_text(name, text, sizeof text);
  CHECK(t > 0 && (size_t)t == strlen(text));
  CHECK(eddy_dns_name_from_text(text, (size_t)t, NULL, back) == (int)len);
  CHECK(memcmp(back, name, len) == 0);
  CHECK(eddy_dns_name_lower(low, name) == len);
  CHECK(eddy_dns_name_equal(low, name));
  CHECK(eddy_dns_name_is_subdomain(name, (const uint8_t *)""));
  CHECK(eddy_dns_name_is_subdomain(name, low));
  CHECK(eddy_dns_name_labels(name) <= 127);
}

static bool has_names(uint16_t type) {
  switch (type) {
  case EDDY_DNS_TYPE_NS:
  case EDDY_DNS_TYPE_CNAME:
  case EDDY_DNS_TYPE_PTR:
  case EDDY_DNS_TYPE_MX:
  case EDDY_DNS_TYPE_SOA:
  case EDDY_DNS_TYPE_SRV:
    return true;
  }
  return false;
}

static bool same_rdata(const eddy_dns_rr_t *a, const eddy_dns_rr_t *b) {
  if (a->rdlen != b->rdlen)
    return false;
  if (!has_names(a->type))
    return memcmp(a->rdata, b->rdata, a->rdlen) == 0;
  for (size_t i = 0; i < a->rdlen; i++)
    if (tolower(a->rdata[i]) != tolower(b->rdata[i]))
      return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static eddy_dns_query_t q;
  static eddy_dns_rr_t rr, rr2;
  eddy_dns_msg_t m, m2;

  eddy_dns_verdict_t v = eddy_dns_query_parse(data, size, &q);
  if (q.qname_len > 0)
    check_name(q.qname, q.qname_len);
  CHECK(q.udp_size >= EDDY_DNS_UDP_MIN);

  /* The whole message. */
  int r = eddy_dns_msg_parse(&m, data, size);
  CHECK((r == 0) == (size >= 12));
  if (r < 0) {
    CHECK(v == EDDY_DNS_VERDICT_DROP);
    return 0;
  }
  int nrec = 0;
  while ((r = eddy_dns_msg_next(&m, &rr)) == 1) {
    check_name(rr.name, rr.name_len);
    if (has_names(rr.type))
      CHECK(rr.rdlen <= EDDY_DNS_RDATA_NAMES_MAX);
    if (rr.section != EDDY_DNS_QUESTION &&
        (rr.type == EDDY_DNS_TYPE_NS || rr.type == EDDY_DNS_TYPE_CNAME ||
         rr.type == EDDY_DNS_TYPE_PTR))
      check_name(rr.rdata, rr.rdlen);
    if (rr.section == EDDY_DNS_QUESTION && nrec == 0 && q.qname_len > 0) {
      CHECK(rr.name_len == q.qname_len);
      CHECK(memcmp(rr.name, q.qname, q.qname_len) == 0);
      CHECK(rr.type == q.qtype && rr.rclass == q.qclass);
    }
    nrec++;
  }
  CHECK(r == 0 || r == EDDY_EPARSE);
  CHECK(m.pos <= size);
  if (v == EDDY_DNS_VERDICT_DROP)
    return 0;

  /* The response. */
  static const uint16_t rcode[] = {
      [EDDY_DNS_VERDICT_ANSWER] = EDDY_DNS_RCODE_NOERROR,
      [EDDY_DNS_VERDICT_FORMERR] = EDDY_DNS_RCODE_FORMERR,
      [EDDY_DNS_VERDICT_NOTIMP] = EDDY_DNS_RCODE_NOTIMP,
      [EDDY_DNS_VERDICT_BADVERS] = EDDY_DNS_RCODE_BADVERS,
  };
  size_t cap = (data[size - 1] & 1) ? 65535 : q.udp_size;
  eddy_dns_writer_t w;
  r = eddy_dns_writer_init(&w, out, cap, &q, rcode[v]);
  CHECK(r == 0); /* 512 bytes always hold a header, question and OPT */
  CHECK(eddy_dns_msg_parse(&m, data, size) == 0);
  int i = 0;
  bool truncated = false;
  while (eddy_dns_msg_next(&m, &rr) == 1 && i < MAX_RECORDS) {
    added[i] = 0;
    if (rr.section != EDDY_DNS_QUESTION && rr.type != EDDY_DNS_TYPE_OPT) {
      size_t before = w.len;
      r = eddy_dns_writer_add(&w, rr.section, rr.name, rr.type, rr.rclass,
                              rr.ttl, rr.rdata, rr.rdlen);
      CHECK(r == 0 || r == -ENOSPC);
      if (r == 0)
        added[i] = 1;
      else {
        CHECK(w.len == before);
        if (rr.section == EDDY_DNS_ANSWER && !truncated) {
          eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_TC);
          truncated = true;
        }
      }
    }
    i++;
  }
  int n = i;
  size_t len = eddy_dns_writer_finish(&w);
  CHECK(len <= cap);

  /* Read back: header, question, then the accepted records in order. */
  CHECK(eddy_dns_msg_parse(&m2, out, len) == 0);
  CHECK(m2.id == q.id);
  CHECK(m2.flags & EDDY_DNS_FLAG_QR);
  CHECK(((m2.flags >> 11) & 15) == q.opcode);
  CHECK((m2.flags & 15) == (rcode[v] & 15));
  CHECK(!!(m2.flags & EDDY_DNS_FLAG_TC) == truncated);
  if (q.qname_len > 0) {
    CHECK(eddy_dns_msg_next(&m2, &rr2) == 1);
    CHECK(rr2.section == EDDY_DNS_QUESTION);
    CHECK(rr2.name_len == q.qname_len);
    CHECK(memcmp(rr2.name, q.qname, q.qname_len) == 0);
    CHECK(rr2.type == q.qtype && rr2.rclass == q.qclass);
  } else {
    CHECK(m2.count[0] == 0);
  }
  CHECK(eddy_dns_msg_parse(&m, data, size) == 0);
  for (i = 0; i < n; i++) {
    CHECK(eddy_dns_msg_next(&m, &rr) == 1);
    if (!added[i])
      continue;
    CHECK(eddy_dns_msg_next(&m2, &rr2) == 1);
    CHECK(rr2.section == rr.section);
    CHECK(rr2.type == rr.type && rr2.rclass == rr.rclass);
    CHECK(rr2.ttl == rr.ttl);
    CHECK(eddy_dns_name_equal(rr2.name, rr.name));
    CHECK(same_rdata(&rr, &rr2));
  }
  if (q.edns) {
    CHECK(eddy_dns_msg_next(&m2, &rr2) == 1);
    CHECK(rr2.type == EDDY_DNS_TYPE_OPT && rr2.name[0] == 0);
    CHECK((rr2.ttl >> 24) == (uint32_t)(rcode[v] >> 4));
  }
  CHECK(eddy_dns_msg_next(&m2, &rr2) == 0);
  CHECK(m2.pos == len);
  return 0;
}
