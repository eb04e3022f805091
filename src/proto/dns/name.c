/* Domain names in wire form: parsing with decompression, comparison,
 * presentation text. See include/eddy/dns.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "eddy/common.h"
#include "eddy/dns.h"
#include "proto/dns/dns.h"

int eddy__dns_name_parse(const uint8_t *msg, size_t len, size_t limit,
                         size_t *off, uint8_t *out) {
  size_t pos = *off, end = 0, n = 0;
  int jumps = 0;
  bool jumped = false;
  if (limit > len)
    limit = len;
  for (;;) {
    if (pos >= limit)
      return EDDY_EPARSE;
    uint8_t c = msg[pos];
    if (c == 0) {
      out[n++] = 0;
      if (!jumped)
        end = pos + 1;
      *off = end;
      return (int)n;
    }
    if ((c & 0xC0) == 0xC0) {
      if (pos + 1 >= limit)
        return EDDY_EPARSE;
      size_t target = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
      /* Strictly backwards and past the header: every jump lowers pos,
       * so the walk ends. */
      if (target >= pos || target < EDDY_DNS_HEADER_LEN)
        return EDDY_EPARSE;
      /* Labels are bounded by the 255 bytes of out; chains of pointers
       * (legal, but never needed) by this count, so that a message of
       * many names cannot each walk a long chain. */
      if (++jumps > EDDY__DNS_JUMPS_MAX)
        return EDDY_EPARSE;
      if (!jumped)
        end = pos + 2;
      jumped = true;
      pos = target;
      /* Pointed-to bytes may lie anywhere before: the limit is now the
       * message. */
      limit = len;
      continue;
    }
    if (c & 0xC0) /* 0x40 and 0x80: extended and reserved label types */
      return EDDY_EPARSE;
    if (pos + 1 + c > limit || n + 1 + c + 1 > EDDY_DNS_NAME_MAX)
      return EDDY_EPARSE;
    memcpy(out + n, msg + pos, (size_t)c + 1);
    n += (size_t)c + 1;
    pos += (size_t)c + 1;
  }
}

int eddy_dns_name_parse(const uint8_t *msg, size_t len, size_t *off,
                        uint8_t out[EDDY_DNS_NAME_MAX]) {
  return eddy__dns_name_parse(msg, len, len, off, out);
}

int eddy_dns_name_check(const uint8_t *name, size_t len) {
  size_t n = 0;
  for (;;) {
    if (n >= len)
      return EDDY_EPARSE;
    uint8_t c = name[n];
    if (c == 0)
      return (int)n + 1;
    if (c > EDDY_DNS_LABEL_MAX || n + 1 + c >= len ||
        n + 1 + c + 1 > EDDY_DNS_NAME_MAX)
      return EDDY_EPARSE;
    n += (size_t)c + 1;
  }
}

size_t eddy_dns_name_len(const uint8_t *name) {
  size_t n = 0;
  while (name[n])
    n += (size_t)name[n] + 1;
  return n + 1;
}

int eddy_dns_name_labels(const uint8_t *name) {
  int k = 0;
  for (size_t n = 0; name[n]; n += (size_t)name[n] + 1)
    k++;
  return k;
}

bool eddy_dns_name_equal(const uint8_t *a, const uint8_t *b) {
  size_t n = 0;
  for (;;) {
    uint8_t c = a[n];
    if (c != b[n])
      return false;
    if (c == 0)
      return true;
    for (size_t i = n + 1; i <= n + c; i++)
      if (eddy__dns_lower(a[i]) != eddy__dns_lower(b[i]))
        return false;
    n += (size_t)c + 1;
  }
}

bool eddy_dns_name_is_subdomain(const uint8_t *name, const uint8_t *parent) {
  int skip = eddy_dns_name_labels(name) - eddy_dns_name_labels(parent);
  if (skip < 0)
    return false;
  size_t n = 0;
  while (skip-- > 0)
    n += (size_t)name[n] + 1;
  return eddy_dns_name_equal(name + n, parent);
}

size_t eddy_dns_name_lower(uint8_t *dst, const uint8_t *src) {
  size_t len = eddy_dns_name_len(src);
  for (size_t n = 0; n < len;) {
    uint8_t c = src[n];
    dst[n] = c;
    for (size_t i = n + 1; i <= n + c; i++)
      dst[i] = eddy__dns_lower(src[i]);
    n += (size_t)c + 1;
  }
  return len;
}

int eddy_dns_name_from_text(const char *text, size_t len, const uint8_t *origin,
                            uint8_t out[EDDY_DNS_NAME_MAX]) {
  const uint8_t *t = (const uint8_t *)text;
  size_t n = 0;     /* bytes written */
  size_t label = 0; /* where the current label's length byte is */
  size_t i = 0;
  bool absolute = false;
  if (len == 0)
    return EDDY_EPARSE;
  if (len == 1 && t[0] == '.') {
    out[0] = 0;
    return 1;
  }
  out[0] = 0;
  n = 1;
  while (i < len) {
    uint8_t c = t[i++];
    if (c == '.') {
      if (n == label + 1) /* empty label */
        return EDDY_EPARSE;
      out[label] = (uint8_t)(n - label - 1);
      if (i == len) {
        absolute = true;
        break;
      }
      label = n;
      if (n >= EDDY_DNS_NAME_MAX - 1)
        return EDDY_EPARSE;
      out[n++] = 0;
      continue;
    }
    if (c == '\\') {
      if (i >= len)
        return EDDY_EPARSE;
      if (t[i] >= '0' && t[i] <= '9') {
        if (i + 3 > len)
          return EDDY_EPARSE;
        unsigned v = 0;
        for (int k = 0; k < 3; k++) {
          if (t[i + k] < '0' || t[i + k] > '9')
            return EDDY_EPARSE;
          v = v * 10 + (unsigned)(t[i + k] - '0');
        }
        if (v > 255)
          return EDDY_EPARSE;
        c = (uint8_t)v;
        i += 3;
      } else {
        c = t[i++];
      }
    }
    /* Room for this byte and, after it, the root label. */
    if (n - label > EDDY_DNS_LABEL_MAX || n + 2 > EDDY_DNS_NAME_MAX)
      return EDDY_EPARSE;
    out[n++] = c;
  }
  if (!absolute) {
    if (n == label + 1)
      return EDDY_EPARSE;
    out[label] = (uint8_t)(n - label - 1);
    if (origin != NULL) {
      size_t olen = eddy_dns_name_len(origin);
      if (n + olen > EDDY_DNS_NAME_MAX)
        return EDDY_EPARSE;
      memcpy(out + n, origin, olen);
      return (int)(n + olen);
    }
  }
  if (n + 1 > EDDY_DNS_NAME_MAX)
    return EDDY_EPARSE;
  out[n++] = 0;
  return (int)n;
}

int eddy_dns_name_to_text(const uint8_t *name, char *out, size_t cap) {
  static const char special[] = ".\\\";()@$ ";
  size_t o = 0;
  if (cap > 0)
    out[0] = '\0';
  if (name[0] == 0) {
    if (cap < 2)
      return -ENOSPC;
    out[0] = '.';
    out[1] = '\0';
    return 1;
  }
  /* Each piece is written only if it and the NUL after it fit. */
  for (size_t n = 0; name[n]; n += (size_t)name[n] + 1) {
    for (size_t i = n + 1; i <= n + name[n]; i++) {
      uint8_t c = name[i];
      if (c < 0x20 || c >= 0x7F) {
        if (o + 4 >= cap)
          goto nospace;
        out[o++] = '\\';
        out[o++] = (char)('0' + c / 100);
        out[o++] = (char)('0' + c / 10 % 10);
        out[o++] = (char)('0' + c % 10);
      } else if (memchr(special, c, sizeof special - 1) != NULL) {
        if (o + 2 >= cap)
          goto nospace;
        out[o++] = '\\';
        out[o++] = (char)c;
      } else {
        if (o + 1 >= cap)
          goto nospace;
        out[o++] = (char)c;
      }
    }
    if (o + 1 >= cap)
      goto nospace;
    out[o++] = '.';
  }
  out[o] = '\0';
  return (int)o;
nospace:
  if (cap > 0)
    out[0] = '\0';
  return -ENOSPC;
}

/* ---- Types ---------------------------------------------------------------- */

static const struct {
  uint16_t type;
  const char *name;
} type_names[] = {
    {1, "A"},      {2, "NS"},      {5, "CNAME"},  {6, "SOA"},   {12, "PTR"},
    {13, "HINFO"}, {15, "MX"},     {16, "TXT"},   {28, "AAAA"}, {33, "SRV"},
    {35, "NAPTR"}, {39, "DNAME"},  {41, "OPT"},   {43, "DS"},   {46, "RRSIG"},
    {47, "NSEC"},  {48, "DNSKEY"}, {52, "TLSA"},  {64, "SVCB"}, {65, "HTTPS"},
    {99, "SPF"},   {251, "IXFR"},  {252, "AXFR"}, {255, "ANY"}, {257, "CAA"},
};

const char *eddy_dns_type_to_text(uint16_t type, char *out, size_t cap) {
  for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
    if (type_names[i].type == type) {
      snprintf(out, cap, "%s", type_names[i].name);
      return out;
    }
  snprintf(out, cap, "TYPE%u", (unsigned)type);
  return out;
}

int eddy_dns_type_from_text(const char *text, uint16_t *type) {
  unsigned long v = 0;
  const char *d;
  for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
    if (strcasecmp(text, type_names[i].name) == 0) {
      *type = type_names[i].type;
      return 0;
    }
  if (strncasecmp(text, "TYPE", 4) != 0 || text[4] == '\0')
    return EDDY_EPARSE;
  for (d = text + 4; *d; d++) {
    if (*d < '0' || *d > '9' ||
        (v = v * 10 + (unsigned long)(*d - '0')) > 65535)
      return EDDY_EPARSE;
  }
  *type = (uint16_t)v;
  return 0;
}
