/* server.c: one message in, one answer out. See server.h. */
#include "proto/dns/server.h"

#include <errno.h>

/* Appends a section's entries, an rrset (the entries of one owner and
 * type, which the lookup keeps together) at a time. Returns 0, or -ENOSPC
 * when an rrset did not fit: it is then left out whole (RFC 2181 section
 * 9), with the ones before it kept. */
static int add_entries(eddy_dns_writer_t *w, eddy_dns_section_t section,
                       const eddy__dns_zone_entry *e, size_t n) {
  eddy_dns_writer_t before;
  for (size_t i = 0; i < n; i++) {
    const eddy__dns_zone_rr *rr = e[i].rr;
    int rc;
    if (i == 0 || rr->type != e[i - 1].rr->type ||
        (e[i].owner != e[i - 1].owner &&
         !eddy_dns_name_equal(e[i].owner, e[i - 1].owner)))
      before = *w;
    rc = eddy_dns_writer_add(w, section, e[i].owner, rr->type, rr->rclass,
                             e[i].ttl, rr->rdata, rr->rdlen);
    /* Stored records were checked when the zone loaded; any other
     * failure than room means a record the writer cannot carry, which is
     * left out rather than breaking the whole answer. */
    if (rc == -ENOSPC) {
      eddy_dns_writer_rollback(w, &before);
      return rc;
    }
  }
  return 0;
}

static size_t limit_of(const eddy_dns_query_t *q, int transport,
                       size_t outcap) {
  size_t limit = transport == EDDY__DNS_TCP ? 65535 : q->udp_size;
  return limit < outcap ? limit : outcap;
}

int eddy__dns_respond_rcode(const eddy_dns_query_t *q, uint16_t rcode,
                            uint8_t *out, size_t outcap) {
  eddy_dns_writer_t w;
  if (eddy_dns_writer_init(&w, out, outcap < 65535 ? outcap : 65535, q,
                           rcode) != 0)
    return 0;
  return (int)eddy_dns_writer_finish(&w);
}

static int answer(const eddy__dns_zone_db *db, int transport, bool forward,
                  eddy__dns_scratch *sc, uint8_t *out, size_t outcap) {
  const eddy_dns_query_t *q = &sc->q;
  eddy__dns_zone_result *res = &sc->res;
  eddy_dns_writer_t w;
  size_t limit = limit_of(q, transport, outcap);
  uint16_t flags = 0;

  /* Zone transfers are not offered (RFC 5936 lets a server refuse),
   * nor passed on. */
  bool transfer = q->qtype == EDDY_DNS_TYPE_AXFR ||
                  q->qtype == EDDY_DNS_TYPE_IXFR;
  if (q->qclass != EDDY_DNS_CLASS_IN || transfer || db == NULL ||
      eddy__dns_zone_lookup(db, q->qname, q->qtype, res) != 0) {
    res->rcode = EDDY__DNS_ZONE_REFUSED;
    res->an = res->ns = res->ar = 0;
    res->aa = 0;
    res->truncated = 0;
  }
  if (res->rcode == EDDY__DNS_ZONE_REFUSED && forward &&
      q->qclass == EDDY_DNS_CLASS_IN && !transfer)
    return EDDY__DNS_RESPOND_FORWARD;
  if (eddy_dns_writer_init(&w, out, limit, q, (uint16_t)res->rcode) != 0)
    return 0;
  if (res->aa)
    flags |= EDDY_DNS_FLAG_AA;
  /* RA says whether this server offers recursion (RFC 1035 4.1.1), not
   * where one answer came from. */
  if (forward)
    flags |= EDDY_DNS_FLAG_RA;
  if (add_entries(&w, EDDY_DNS_ANSWER, res->answer, res->an) != 0 ||
      add_entries(&w, EDDY_DNS_AUTHORITY, res->authority, res->ns) != 0)
    flags |= EDDY_DNS_FLAG_TC;
  else
    (void)add_entries(&w, EDDY_DNS_ADDITIONAL, res->additional, res->ar);
  /* An answer or authority section the lookup itself could not hold
   * whole is an answer cut short too; a full additional section is not
   * (RFC 2181 section 9). */
  if (res->truncated && transport == EDDY__DNS_UDP &&
      (res->an == EDDY__DNS_ZONE_MAX_AN || res->ns == EDDY__DNS_ZONE_MAX_NS))
    flags |= EDDY_DNS_FLAG_TC;
  eddy_dns_writer_set_flags(&w, flags);
  return (int)eddy_dns_writer_finish(&w);
}

int eddy__dns_respond(const eddy__dns_zone_db *db, const uint8_t *msg,
                      size_t len, int transport, bool forward,
                      eddy__dns_scratch *sc, uint8_t *out, size_t outcap) {
  eddy_dns_query_t *q = &sc->q;
  uint16_t rcode;
  eddy_dns_writer_t w;
  sc->verdict = eddy_dns_query_parse(msg, len, q);
  switch (sc->verdict) {
  case EDDY_DNS_VERDICT_ANSWER:
    return answer(db, transport, forward, sc, out, outcap);
  case EDDY_DNS_VERDICT_DROP:
    return 0;
  case EDDY_DNS_VERDICT_NOTIMP:
    rcode = EDDY_DNS_RCODE_NOTIMP;
    break;
  case EDDY_DNS_VERDICT_BADVERS:
    rcode = EDDY_DNS_RCODE_BADVERS;
    break;
  default:
    rcode = EDDY_DNS_RCODE_FORMERR;
    break;
  }
  if (eddy_dns_writer_init(&w, out, limit_of(q, transport, outcap), q, rcode) !=
      0)
    return 0;
  if (forward)
    eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_RA);
  return (int)eddy_dns_writer_finish(&w);
}
