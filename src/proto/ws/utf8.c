/* utf8.c: incremental UTF-8 validation (RFC 3629), for text messages and
 * close reasons. The state is the number of continuation bytes still due
 * and the range the next one must fall in: that range is what refuses
 * overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code
 * points past U+10FFFF (F4 90..BF) at their second byte, so a bad
 * sequence fails at the first byte that makes it bad, whatever fragment
 * it arrives in. Runs of ASCII are skipped eight bytes at a time. */
#include <string.h>

#include "eddy/ws.h"

#define FAILED 0xFFFFFFFFu

void eddy_ws_utf8_init(eddy_ws_utf8 *v) {
  v->need = 0;
  v->lo = 0x80;
  v->hi = 0xBF;
}

/* Starts a sequence at lead byte c: 0, or -1 if c cannot lead one. */
static int lead(eddy_ws_utf8 *v, uint8_t c) {
  v->lo = 0x80;
  v->hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    v->need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    v->need = 2;
    if (c == 0xE0)
      v->lo = 0xA0;
    else if (c == 0xED)
      v->hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    v->need = 3;
    if (c == 0xF0)
      v->lo = 0x90;
    else if (c == 0xF4)
      v->hi = 0x8F;
  } else {
    return -1;
  }
  return 0;
}

static size_t ascii_run(const uint8_t *p, size_t n) {
  size_t i = 0;
  uint64_t w;
  for (; n - i >= 8; i += 8) {
    memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ull)
      break;
  }
  while (i < n && p[i] < 0x80)
    i++;
  return i;
}

int eddy_ws_utf8_feed(eddy_ws_utf8 *v, const char *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  size_t i = 0;
  if (v->need == FAILED)
    return EDDY_EPARSE;
  while (i < len) {
    if (v->need == 0) {
      i += ascii_run(p + i, len - i);
      if (i == len)
        break;
      if (lead(v, p[i]) < 0)
        goto bad;
      i++;
      continue;
    }
    if (p[i] < v->lo || p[i] > v->hi)
      goto bad;
    v->lo = 0x80;
    v->hi = 0xBF;
    v->need--;
    i++;
  }
  return 0;
bad:
  v->need = FAILED;
  return EDDY_EPARSE;
}

int eddy_ws_utf8_end(const eddy_ws_utf8 *v) {
  return v->need == 0 ? 0 : EDDY_EPARSE;
}

int eddy_ws_utf8_valid(const char *data, size_t len) {
  eddy_ws_utf8 v;
  eddy_ws_utf8_init(&v);
  if (eddy_ws_utf8_feed(&v, data, len) < 0)
    return EDDY_EPARSE;
  return eddy_ws_utf8_end(&v);
}
