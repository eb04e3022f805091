/* Fuzz target: the HTTP/1.x request parser and the chunked decoder
 * (src/proto/http), each against itself.
 *
 * The first byte seeds how the input is cut into pushes; the rest is what
 * a client sent. The head is parsed whole, then again as a server would
 * meet it, a push at a time with prev_len; the verdicts (complete with the
 * same length, or refused with the same status) must agree, and every
 * span the parser reports must lie inside the input. When the head asks
 * for a chunked body, what follows it is decoded whole and then push by
 * push; the bodies and verdicts must agree. Any difference, or a sanitizer
 * report, is a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eddy/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXH 32

static uint32_t next(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 16;
}

static void inside(const char *buf, size_t len, const char *p, size_t n) {
  if (n > 0 && (p < buf || p + n > buf + len))
    abort();
}

static void check_spans(const char *buf, size_t len,
                        const eddy_http_request *r) {
  inside(buf, len, r->method_name, r->method_len);
  inside(buf, len, r->target, r->target_len);
  if (!(r->path_len == 1 && r->path[0] == '/'))
    inside(buf, len, r->path, r->path_len);
  inside(buf, len, r->query, r->query_len);
  inside(buf, len, r->host, r->host_len);
  if (r->nheaders > MAXH || r->head_len > len)
    abort();
  for (size_t i = 0; i < r->nheaders; i++) {
    inside(buf, len, r->headers[i].name, r->headers[i].name_len);
    inside(buf, len, r->headers[i].value, r->headers[i].value_len);
    if (r->headers[i].name_len == 0)
      abort();
  }
}

static const eddy_http_limits limits = {.max_request_line = 200,
                                        .max_head = 1000,
                                        .max_headers = 16};

/* The chunked body at body[0, n): whole, then in pushes. */
static void chunked(const char *body, size_t n, uint32_t seed) {
  char *whole = malloc(n + 1), *inc = malloc(n + 1), *piece = malloc(n + 1);
  eddy_http_chunked d = {.max_trailers = 300}, e = {.max_trailers = 300};
  size_t wlen = n, wrest = 0, ilen = 0, at = 0;
  int wrc, irc = 0;
  if (!whole || !inc || !piece)
    abort();
  memcpy(whole, body, n);
  wrc = eddy_http_chunked_decode(&d, whole, &wlen, &wrest);
  if (wrc == 1 && (wlen > n || wrest > n ||
                   memcmp(whole + n - wrest, body + n - wrest, wrest)))
    abort();
  while (at < n && irc == 0) {
    size_t k = 1 + next(&seed) % 16, len, rest = 0;
    if (k > n - at)
      k = n - at;
    memcpy(piece, body + at, k);
    len = k;
    irc = eddy_http_chunked_decode(&e, piece, &len, &rest);
    if (irc >= 0) {
      memcpy(inc + ilen, piece, len);
      ilen += len;
    }
    at += k;
  }
  if (wrc != irc || (wrc >= 0 && (wlen != ilen || memcmp(whole, inc, wlen))))
    abort();
  free(whole);
  free(inc);
  free(piece);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  eddy_http_header wh[MAXH], ih[MAXH];
  eddy_http_request w, r;
  const char *buf;
  size_t len, prev = 0, at = 0;
  uint32_t seed;
  int wrc, irc = 0;
  if (size < 1)
    return 0;
  seed = data[0];
  buf = (const char *)data + 1;
  len = size - 1;
  wrc = eddy_http_parse_request(buf, len, 0, &limits, wh, MAXH, &w);
  if (wrc == 1)
    check_spans(buf, len, &w);
  else if (wrc != 0 && (wrc != EDDY_EHTTP || w.status < 400 || !w.reason))
    abort();
  while (at < len && irc == 0) {
    at += 1 + next(&seed) % 32;
    if (at > len)
      at = len;
    irc = eddy_http_parse_request(buf, at, prev, &limits, ih, MAXH, &r);
    prev = at;
  }
  if (irc != wrc)
    abort();
  if (wrc == 1 && r.head_len != w.head_len)
    abort();
  if (wrc == EDDY_EHTTP && r.status != w.status)
    abort();
  if (wrc == 1 && (w.flags & EDDY_HTTP_CHUNKED))
    chunked(buf + w.head_len, len - w.head_len, seed);
  return 0;
}
