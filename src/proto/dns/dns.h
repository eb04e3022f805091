/* Internals shared by the DNS wire files (src/proto/dns/). */
#ifndef EDDY_PROTO_DNS_DNS_H
#define EDDY_PROTO_DNS_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "eddy/dns.h"

/* The most compression pointers one name may follow: one per label of
 * the longest name (127) and one more. */
#define EDDY__DNS_JUMPS_MAX 128

/* eddy_dns_name_parse with a limit: the name's own bytes (before any
 * pointer) must lie before limit (the end of an rdata); bytes reached
 * through a pointer may lie anywhere before len. */
int eddy__dns_name_parse(const uint8_t *msg, size_t len, size_t limit,
                         size_t *off, uint8_t *out);

/* An ASCII letter in lower case (RFC 4343: names compare without regard
 * to ASCII case); every other byte as it is. */
static inline uint8_t eddy__dns_lower(uint8_t c) {
  return (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static inline uint16_t eddy__dns_get16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t eddy__dns_get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | p[3];
}

static inline void eddy__dns_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static inline void eddy__dns_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

#endif
