/* DNS messages: the query parser, the message iterator and the response
 * writer. See include/eddy/dns.h. */
#include <errno.h>
#include <string.h>

#include "eddy/common.h"
#include "eddy/dns.h"
#include "proto/dns/dns.h"

/* ---- Queries ---- */

/* Skips (and checks) one resource record at *off. type, class, ttl and
 * the rdata's offset and length are returned; owner gets the name. */
static int read_rr(const uint8_t *msg, size_t len, size_t *off, uint8_t *owner,
                   uint16_t *type, uint16_t *rclass, uint32_t *ttl,
                   size_t *rdoff, size_t *rdlen) {
  size_t p = *off;
  int n = eddy__dns_name_parse(msg, len, len, &p, owner);
  if (n < 0)
    return n;
  if (len - p < 10)
    return EDDY_EPARSE;
  *type = eddy__dns_get16(msg + p);
  *rclass = eddy__dns_get16(msg + p + 2);
  *ttl = eddy__dns_get32(msg + p + 4);
  *rdlen = eddy__dns_get16(msg + p + 8);
  p += 10;
  if (len - p < *rdlen)
    return EDDY_EPARSE;
  *rdoff = p;
  *off = p + *rdlen;
  return n;
}

static int read_opt(const uint8_t *msg, size_t rdoff, size_t rdlen) {
  size_t p = rdoff, end = rdoff + rdlen;
  while (p < end) {
    if (end - p < 4)
      return EDDY_EPARSE;
    size_t olen = eddy__dns_get16(msg + p + 2);
    p += 4;
    if (end - p < olen)
      return EDDY_EPARSE;
    p += olen;
  }
  return 0;
}

eddy_dns_verdict_t eddy_dns_query_parse(const uint8_t *msg, size_t len,
                                        eddy_dns_query_t *q) {
  q->id = q->flags = 0;
  q->opcode = q->rcode = 0;
  q->qtype = q->qclass = 0;
  q->qname_len = 0;
  q->edns = false;
  q->edns_version = 0;
  q->edns_do = false;
  q->udp_size = EDDY_DNS_UDP_MIN;
  if (len < EDDY_DNS_HEADER_LEN)
    return EDDY_DNS_VERDICT_DROP;
  q->id = eddy__dns_get16(msg);
  q->flags = eddy__dns_get16(msg + 2);
  q->opcode = (uint8_t)((q->flags >> 11) & 15);
  q->rcode = (uint8_t)(q->flags & 15);
  if (q->flags & EDDY_DNS_FLAG_QR)
    return EDDY_DNS_VERDICT_DROP;
  if (q->opcode != EDDY_DNS_OPCODE_QUERY)
    return EDDY_DNS_VERDICT_NOTIMP;
  if (eddy__dns_get16(msg + 4) != 1)
    return EDDY_DNS_VERDICT_FORMERR;

  size_t off = EDDY_DNS_HEADER_LEN;
  int n = eddy__dns_name_parse(msg, len, len, &off, q->qname);
  if (n < 0 || len - off < 4)
    return EDDY_DNS_VERDICT_FORMERR;
  q->qname_len = (size_t)n;
  q->qtype = eddy__dns_get16(msg + off);
  q->qclass = eddy__dns_get16(msg + off + 2);
  off += 4;

  unsigned an = eddy__dns_get16(msg + 6), ns = eddy__dns_get16(msg + 8);
  unsigned ar = eddy__dns_get16(msg + 10);
  unsigned total = an + ns + ar;
  for (unsigned i = 0; i < total; i++) {
    uint8_t owner[EDDY_DNS_NAME_MAX];
    uint16_t type, rclass;
    uint32_t ttl;
    size_t rdoff, rdlen;
    if (read_rr(msg, len, &off, owner, &type, &rclass, &ttl, &rdoff, &rdlen) <
        0)
      return EDDY_DNS_VERDICT_FORMERR;
    if (type != EDDY_DNS_TYPE_OPT)
      continue;
    /* RFC 6891 6.1.1: one OPT, in the additional section, owned by the
     * root. */
    if (q->edns || i < an + ns || owner[0] != 0 ||
        read_opt(msg, rdoff, rdlen) < 0)
      return EDDY_DNS_VERDICT_FORMERR;
    q->edns = true;
    q->edns_version = (uint8_t)(ttl >> 16);
    q->edns_do = (ttl & 0x8000) != 0;
    q->udp_size = rclass < EDDY_DNS_UDP_MIN ? EDDY_DNS_UDP_MIN : rclass;
  }
  if (q->edns && q->edns_version > 0)
    return EDDY_DNS_VERDICT_BADVERS;
  return EDDY_DNS_VERDICT_ANSWER;
}

/* ---- Messages ---- */

int eddy_dns_msg_parse(eddy_dns_msg_t *m, const uint8_t *buf, size_t len) {
  if (len < EDDY_DNS_HEADER_LEN)
    return EDDY_EPARSE;
  m->buf = buf;
  m->len = len;
  m->id = eddy__dns_get16(buf);
  m->flags = eddy__dns_get16(buf + 2);
  for (int i = 0; i < 4; i++)
    m->count[i] = eddy__dns_get16(buf + 4 + 2 * i);
  m->pos = EDDY_DNS_HEADER_LEN;
  m->section = EDDY_DNS_QUESTION;
  m->left = m->count[0];
  return 0;
}

/* Decompresses a name of rdata at *p (within end) into out at *o. */
static int rdata_name(const eddy_dns_msg_t *m, size_t end, size_t *p,
                      uint8_t *out, size_t *o) {
  int n = eddy__dns_name_parse(m->buf, m->len, end, p, out + *o);
  if (n < 0)
    return n;
  *o += (size_t)n;
  return 0;
}

static int rdata_fixed(const eddy_dns_msg_t *m, size_t end, size_t *p, size_t k,
                       uint8_t *out, size_t *o) {
  if (end - *p < k)
    return EDDY_EPARSE;
  memcpy(out + *o, m->buf + *p, k);
  *p += k;
  *o += k;
  return 0;
}

static int read_rdata(const eddy_dns_msg_t *m, eddy_dns_rr_t *rr, size_t p,
                      size_t rdlen) {
  size_t end = p + rdlen, o = 0;
  int e = 0;
  if ((rr->type == EDDY_DNS_TYPE_A && rdlen != 4) ||
      (rr->type == EDDY_DNS_TYPE_AAAA && rdlen != 16))
    return EDDY_EPARSE;
  switch (rr->type) {
  default:
    rr->rdata = m->buf + p;
    rr->rdlen = rdlen;
    return 0;
  case EDDY_DNS_TYPE_NS:
  case EDDY_DNS_TYPE_CNAME:
  case EDDY_DNS_TYPE_PTR:
    e = rdata_name(m, end, &p, rr->rdbuf, &o);
    break;
  case EDDY_DNS_TYPE_MX:
    if ((e = rdata_fixed(m, end, &p, 2, rr->rdbuf, &o)) == 0)
      e = rdata_name(m, end, &p, rr->rdbuf, &o);
    break;
  case EDDY_DNS_TYPE_SRV:
    if ((e = rdata_fixed(m, end, &p, 6, rr->rdbuf, &o)) == 0)
      e = rdata_name(m, end, &p, rr->rdbuf, &o);
    break;
  case EDDY_DNS_TYPE_SOA:
    if ((e = rdata_name(m, end, &p, rr->rdbuf, &o)) == 0 &&
        (e = rdata_name(m, end, &p, rr->rdbuf, &o)) == 0)
      e = rdata_fixed(m, end, &p, 20, rr->rdbuf, &o);
    break;
  }
  if (e < 0 || p != end)
    return EDDY_EPARSE;
  rr->rdata = rr->rdbuf;
  rr->rdlen = o;
  return 0;
}

int eddy_dns_msg_next(eddy_dns_msg_t *m, eddy_dns_rr_t *rr) {
  while (m->left == 0) {
    if (m->section >= EDDY_DNS_ADDITIONAL)
      return 0;
    m->section++;
    m->left = m->count[m->section];
  }
  size_t p = m->pos;
  int n = eddy__dns_name_parse(m->buf, m->len, m->len, &p, rr->name);
  if (n < 0)
    return n;
  rr->section = (eddy_dns_section_t)m->section;
  rr->name_len = (size_t)n;
  size_t fixed = m->section == EDDY_DNS_QUESTION ? 4 : 10;
  if (m->len - p < fixed)
    return EDDY_EPARSE;
  rr->type = eddy__dns_get16(m->buf + p);
  rr->rclass = eddy__dns_get16(m->buf + p + 2);
  rr->ttl = 0;
  rr->rdata = NULL;
  rr->rdlen = 0;
  if (m->section != EDDY_DNS_QUESTION) {
    rr->ttl = eddy__dns_get32(m->buf + p + 4);
    size_t rdlen = eddy__dns_get16(m->buf + p + 8);
    p += 10;
    if (m->len - p < rdlen || read_rdata(m, rr, p, rdlen) < 0)
      return EDDY_EPARSE;
    p += rdlen;
  } else {
    p += 4;
  }
  m->pos = p;
  m->left--;
  return 1;
}

/* ---- Writing ---- */

/* Whether the name written at off (our own output: pointers are sound)
 * equals the uncompressed name s, without regard to case. */
static bool written_equal(const uint8_t *buf, size_t off, const uint8_t *s) {
  for (;;) {
    uint8_t c = buf[off];
    if ((c & 0xC0) == 0xC0) {
      off = ((size_t)(c & 0x3F) << 8) | buf[off + 1];
      continue;
    }
    if (c != *s)
      return false;
    if (c == 0)
      return true;
    for (size_t i = 1; i <= c; i++)
      if (eddy__dns_lower(buf[off + i]) != eddy__dns_lower(s[i]))
        return false;
    off += (size_t)c + 1;
    s += (size_t)c + 1;
  }
}

static size_t limit(const eddy_dns_writer_t *w) {
  return w->cap - w->reserve;
}

/* Writes name at w->len, compressed if compress, and remembers where its
 * labels start. -ENOSPC if it does not fit (the caller rolls back). */
static int put_name(eddy_dns_writer_t *w, const uint8_t *name, bool compress) {
  size_t k = 0, match = SIZE_MAX;
  /* The longest suffix already written: k is where it starts in name. */
  size_t total = eddy_dns_name_len(name);
  /* Only names of the same length are compared: each remembered name
   * matches at most one suffix, so the search costs at most
   * EDDY_DNS_COMPRESS_MAX comparisons per name. */
  if (compress) {
    for (; name[k]; k += (size_t)name[k] + 1) {
      for (int i = 0; i < w->ncomp; i++)
        if (w->comp_len[i] == total - k && w->buf[w->comp[i]] == name[k] &&
            written_equal(w->buf, w->comp[i], name + k)) {
          match = w->comp[i];
          break;
        }
      if (match != SIZE_MAX)
        break;
    }
  }
  if (match == SIZE_MAX)
    k = total;
  size_t need = k + (match != SIZE_MAX ? 2 : 0);
  if (limit(w) - w->len < need)
    return -ENOSPC;
  memcpy(w->buf + w->len, name, k);
  for (size_t j = 0; j < k && name[j]; j += (size_t)name[j] + 1)
    if (w->len + j < 0x4000 && w->ncomp < EDDY_DNS_COMPRESS_MAX) {
      w->comp_len[w->ncomp] = (uint8_t)(total - j);
      w->comp[w->ncomp++] = (uint16_t)(w->len + j);
    }
  w->len += k;
  if (match != SIZE_MAX) {
    eddy__dns_put16(w->buf + w->len, (uint16_t)(0xC000 | match));
    w->len += 2;
  }
  return 0;
}

static int put_bytes(eddy_dns_writer_t *w, const void *p, size_t n) {
  if (n == 0) /* p may be NULL then */
    return 0;
  if (limit(w) - w->len < n)
    return -ENOSPC;
  memcpy(w->buf + w->len, p, n);
  w->len += n;
  return 0;
}

/* The rdata of types whose names may be compressed (RFC 3597 section 4:
 * only those of RFC 1035; the ones eddy serves). */
static int put_rdata(eddy_dns_writer_t *w, uint16_t type, const uint8_t *rd,
                     size_t rdlen) {
  size_t pre = 0, names = 1, post = 0;
  switch (type) {
  case EDDY_DNS_TYPE_NS:
  case EDDY_DNS_TYPE_CNAME:
  case EDDY_DNS_TYPE_PTR:
    break;
  case EDDY_DNS_TYPE_MX:
    pre = 2;
    break;
  case EDDY_DNS_TYPE_SOA:
    names = 2;
    post = 20;
    break;
  default:
    return put_bytes(w, rd, rdlen);
  }
  size_t p = 0;
  int e;
  if (rdlen < pre)
    return EDDY_EPARSE;
  if ((e = put_bytes(w, rd, pre)) < 0)
    return e;
  p = pre;
  for (size_t i = 0; i < names; i++) {
    int n = eddy_dns_name_check(rd + p, rdlen - p);
    if (n < 0)
      return n;
    if ((e = put_name(w, rd + p, true)) < 0)
      return e;
    p += (size_t)n;
  }
  if (rdlen - p != post)
    return EDDY_EPARSE;
  return put_bytes(w, rd + p, post);
}

static void put_counts(eddy_dns_writer_t *w) {
  for (int i = 0; i < 4; i++)
    eddy__dns_put16(w->buf + 4 + 2 * i, w->count[i]);
}

int eddy_dns_writer_init(eddy_dns_writer_t *w, uint8_t *buf, size_t cap,
                         const eddy_dns_query_t *q, uint16_t rcode) {
  if (cap < EDDY_DNS_HEADER_LEN)
    return -EINVAL;
  if (cap > 65535)
    cap = 65535;
  w->buf = buf;
  w->cap = cap;
  w->len = EDDY_DNS_HEADER_LEN;
  w->reserve = q->edns ? 11 : 0;
  w->section = EDDY_DNS_ANSWER;
  memset(w->count, 0, sizeof w->count);
  w->edns = q->edns;
  w->edns_do = q->edns_do;
  w->rcode = rcode & 0xFFF;
  w->edns_udp_size = EDDY_DNS_EDNS_UDP_SIZE;
  w->ncomp = 0;
  if (cap < EDDY_DNS_HEADER_LEN + w->reserve)
    return -ENOSPC;
  uint16_t flags = (uint16_t)(EDDY_DNS_FLAG_QR | ((q->opcode & 15) << 11) |
                              (q->flags &
                               (EDDY_DNS_FLAG_RD | EDDY_DNS_FLAG_CD)) |
                              (rcode & 15));
  eddy__dns_put16(buf, q->id);
  eddy__dns_put16(buf + 2, flags);
  if (q->qname_len > 0) {
    int e = put_name(w, q->qname, false);
    uint8_t tc[4];
    eddy__dns_put16(tc, q->qtype);
    eddy__dns_put16(tc + 2, q->qclass);
    if (e < 0 || (e = put_bytes(w, tc, 4)) < 0)
      return e;
    w->count[EDDY_DNS_QUESTION] = 1;
  }
  put_counts(w);
  return 0;
}

void eddy_dns_writer_set_flags(eddy_dns_writer_t *w, uint16_t flags) {
  eddy__dns_put16(w->buf + 2, (uint16_t)(eddy__dns_get16(w->buf + 2) | flags));
}

void eddy_dns_writer_set_rcode(eddy_dns_writer_t *w, uint16_t rcode) {
  w->rcode = rcode & 0xFFF;
  uint16_t f = eddy__dns_get16(w->buf + 2);
  eddy__dns_put16(w->buf + 2, (uint16_t)((f & ~15u) | (rcode & 15)));
}

int eddy_dns_writer_add(eddy_dns_writer_t *w, eddy_dns_section_t section,
                        const uint8_t *name, uint16_t type, uint16_t rclass,
                        uint32_t ttl, const uint8_t *rdata, size_t rdlen) {
  if (section < EDDY_DNS_ANSWER || section > EDDY_DNS_ADDITIONAL ||
      (int)section < w->section || rdlen > 65535 || w->count[section] == 65535)
    return -EINVAL;
  if (eddy_dns_name_check(name, EDDY_DNS_NAME_MAX) < 0)
    return EDDY_EPARSE;
  size_t start = w->len;
  int ncomp = w->ncomp;
  uint8_t fixed[10];
  int e = put_name(w, name, true);
  if (e == 0) {
    eddy__dns_put16(fixed, type);
    eddy__dns_put16(fixed + 2, rclass);
    eddy__dns_put32(fixed + 4, ttl);
    eddy__dns_put16(fixed + 8, 0);
    e = put_bytes(w, fixed, 10);
  }
  size_t rdstart = w->len;
  if (e == 0)
    e = put_rdata(w, type, rdata, rdlen);
  if (e == 0 && w->len - rdstart > 65535)
    e = -ENOSPC;
  if (e < 0) {
    w->len = start;
    w->ncomp = ncomp;
    return e;
  }
  eddy__dns_put16(w->buf + rdstart - 2, (uint16_t)(w->len - rdstart));
  w->section = (int)section;
  w->count[section]++;
  put_counts(w);
  return 0;
}

void eddy_dns_writer_rollback(eddy_dns_writer_t *w,
                              const eddy_dns_writer_t *mark) {
  *w = *mark;
  put_counts(w);
}

size_t eddy_dns_writer_finish(eddy_dns_writer_t *w) {
  if (w->edns && w->reserve > 0) {
    uint8_t *p = w->buf + w->len;
    p[0] = 0;
    eddy__dns_put16(p + 1, EDDY_DNS_TYPE_OPT);
    eddy__dns_put16(p + 3, w->edns_udp_size);
    eddy__dns_put32(p + 5, ((uint32_t)(w->rcode >> 4) << 24) |
                               (w->edns_do ? 0x8000u : 0));
    eddy__dns_put16(p + 9, 0);
    w->len += 11;
    w->reserve = 0;
    w->count[EDDY_DNS_ADDITIONAL]++;
    put_counts(w);
  }
  w->section = 4; /* nothing more */
  return w->len;
}

int eddy_dns_query_write(uint8_t *buf, size_t cap, uint16_t id, uint16_t flags,
                         const uint8_t *name, uint16_t qtype, uint16_t qclass,
                         uint16_t edns_udp_size, bool edns_do) {
  int n = eddy_dns_name_check(name, EDDY_DNS_NAME_MAX);
  if (n < 0)
    return n;
  size_t need = EDDY_DNS_HEADER_LEN + (size_t)n + 4 + (edns_udp_size ? 11 : 0);
  if (cap < need)
    return -ENOSPC;
  memset(buf, 0, EDDY_DNS_HEADER_LEN);
  eddy__dns_put16(buf, id);
  eddy__dns_put16(buf + 2, flags & (uint16_t)~EDDY_DNS_FLAG_QR);
  eddy__dns_put16(buf + 4, 1);
  uint8_t *p = buf + EDDY_DNS_HEADER_LEN;
  memcpy(p, name, (size_t)n);
  p += n;
  eddy__dns_put16(p, qtype);
  eddy__dns_put16(p + 2, qclass);
  p += 4;
  if (edns_udp_size) {
    eddy__dns_put16(buf + 10, 1);
    p[0] = 0;
    eddy__dns_put16(p + 1, EDDY_DNS_TYPE_OPT);
    eddy__dns_put16(p + 3, edns_udp_size);
    eddy__dns_put32(p + 5, edns_do ? 0x8000u : 0);
    eddy__dns_put16(p + 9, 0);
  }
  return (int)need;
}
