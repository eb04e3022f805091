/* Fuzz target: the WebSocket frame parser, the UTF-8 validator and the
 * permessage-deflate inflater (src/proto/ws), each checked against itself
 * or a slow model.
 *
 * The first byte picks the parser's flags and seeds how the rest is cut
 * into pushes. The frames are parsed in one push, then push by push; the
 * two runs must report the same events (headers, unmasked payload bytes,
 * frame ends) and the same verdict, and every span must lie inside its
 * push. Each frame's unmasked payload is validated as UTF-8 whole and in
 * pieces, and compared with a plain decoder written from RFC 3629; a frame
 * with RSV1 is inflated with a small bound, which must hold. The input is
 * also read as an HTTP response head. Any difference, or a sanitizer
 * report, is a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eddy/buf.h"
#include "eddy/http.h"
#include "eddy/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAYLOAD 4096
#define MAX_INFLATE 8192

static uint32_t next(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 16;
}

/* RFC 3629's definition, one code point at a time. */
static int model_utf8(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint32_t c = p[i], cp;
    size_t len;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07;
    else
      return -1;
    if (i + len > n)
      return -1;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return -1;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return -1;
    i += len;
  }
  return 0;
}

static void check_payload(const char *p, size_t n, int rsv1, uint32_t seed) {
  eddy_ws_utf8 v;
  int whole = eddy_ws_utf8_valid(p, n), inc = 0;
  size_t at = 0;
  if ((whole == 0) != (model_utf8((const uint8_t *)p, n) == 0))
    abort();
  eddy_ws_utf8_init(&v);
  while (at < n && inc == 0) {
    size_t k = 1 + next(&seed) % 7;
    if (k > n - at)
      k = n - at;
    inc = eddy_ws_utf8_feed(&v, p + at, k);
    at += k;
  }
  if (inc == 0)
    inc = eddy_ws_utf8_end(&v);
  if ((inc == 0) != (whole == 0))
    abort();
  if (rsv1) {
    eddy_buf out;
    eddy_buf_init(&out, 0);
    eddy_ws_inflate_once(p, n, 15, MAX_INFLATE, &out);
    if (eddy_buf_len(&out) > MAX_INFLATE)
      abort();
    eddy_buf_free(&out);
  }
}

/* One run: the events folded into a log of bytes. */
typedef struct run {
  eddy_ws_parser p;
  char *log;
  size_t len, cap;
  char payload[MAX_PAYLOAD];
  size_t plen;
  int verdict;
} run;

static void put(run *r, const void *d, size_t n) {
  if (r->len + n > r->cap) {
    r->cap = (r->len + n) * 2 + 64;
    r->log = realloc(r->log, r->cap);
    if (r->log == NULL)
      abort();
  }
  memcpy(r->log + r->len, d, n);
  r->len += n;
}

static void event(run *r, int ev, const char *span, size_t n, const char *buf,
                  size_t len, uint32_t seed) {
  char tag = (char)ev;
  /* A payload's spans depend on the pushes: only its bytes are logged. */
  if (ev != EDDY_WS_DATA)
    put(r, &tag, 1);
  if (ev == EDDY_WS_HEADER) {
    int f[4] = {r->p.fin, r->p.rsv1, r->p.opcode, r->p.masked};
    put(r, f, sizeof f);
    put(r, &r->p.length, sizeof r->p.length);
    r->plen = 0;
  } else if (ev == EDDY_WS_DATA) {
    char tmp[256];
    if (span < buf || span + n > buf + len || n == 0)
      abort();
    for (size_t at = 0; at < n;) {
      size_t k = n - at < sizeof tmp ? n - at : sizeof tmp;
      eddy_ws_unmask(tmp, span + at, k, r->p.masked ? r->p.mask : NULL,
                     r->p.offset - n + at);
      put(r, tmp, k);
      if (r->plen + k <= MAX_PAYLOAD)
        memcpy(r->payload + r->plen, tmp, k);
      r->plen += k;
      at += k;
    }
  } else if (ev == EDDY_WS_END && seed != 0 && r->plen <= MAX_PAYLOAD) {
    check_payload(r->payload, r->plen, r->p.rsv1, seed);
  }
}

static void feed(run *r, const char *buf, size_t len, uint32_t seed) {
  size_t off = 0;
  for (;;) {
    const char *span = NULL;
    size_t used = 0, n = 0;
    int ev = eddy_ws_parse(&r->p, buf + off, len - off, &used, &span, &n);
    if (used > len - off)
      abort();
    off += used;
    if (ev == 0) {
      if (off != len)
        abort();
      return;
    }
    if (ev < 0) {
      r->verdict = r->p.code;
      return;
    }
    event(r, ev, span, n, buf, len, seed);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const unsigned modes[] = {EDDY_WS_PARSE_SERVER, EDDY_WS_PARSE_CLIENT,
                                   EDDY_WS_PARSE_SERVER | EDDY_WS_PARSE_RSV1,
                                   EDDY_WS_PARSE_RSV1};
  run a, b;
  uint32_t seed;
  const char *in = (const char *)data + 1;
  size_t len, at = 0;
  if (size < 1)
    return 0;
  seed = data[0] | 1u;
  len = size - 1;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  eddy_ws_parser_init(&a.p, modes[data[0] & 3], (data[0] & 4) ? 100 : 0);
  eddy_ws_parser_init(&b.p, modes[data[0] & 3], (data[0] & 4) ? 100 : 0);
  feed(&a, in, len, seed);
  while (at < len && b.verdict == 0) {
    size_t k = 1 + next(&seed) % 16;
    if (k > len - at)
      k = len - at;
    feed(&b, in + at, k, 0);
    at += k;
  }
  if (a.verdict != b.verdict || a.len != b.len ||
      (a.len && memcmp(a.log, b.log, a.len) != 0))
    abort();
  free(a.log);
  free(b.log);
  {
    eddy_http_header h[16];
    eddy_http_response_head r;
    if (eddy_http_parse_response(in, len, 0, NULL, h, 16, &r) == 1 &&
        (r.head_len > len || r.nheaders > 16))
      abort();
  }
  return 0;
}
