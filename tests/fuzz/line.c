/* Fuzz target: the line splitter (src/proto/line/split.c) against a model.
 *
 * The input is a header and a body. The header picks the delimiter, the
 * maximum line length and a seed; the body is fed to the splitter in
 * pushes whose sizes come from the seed (zero-length pushes included), as
 * the stream layer feeds it: pull events until none, keep the rest. Lines
 * of the body act as commands, as a protocol would: "R<n>" switches to
 * raw mode for the next n bytes (then back to line mode), "P" pauses
 * (delivery stops until the next push).
 *
 * The model splits the whole body at once, in the obvious way; the events
 * (lines, raw bytes, too long reports, the unterminated rest) must be the
 * same. Any difference, or a sanitizer report, is a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/line/line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A log of events: a kind byte, a 4-byte length, the bytes. Raw bytes
 * are merged into one entry per run, since their chunks depend on the
 * pushes. */
typedef struct log {
  char *p;
  size_t n, cap;
  size_t raw_at; /* offset of the open raw entry's length, or SIZE_MAX */
} log_t;

static void put(log_t *l, const void *p, size_t n) {
  if (l->n + n > l->cap) {
    l->cap = (l->n + n) * 2 + 64;
    l->p = realloc(l->p, l->cap);
    if (l->p == NULL)
      abort();
  }
  if (n)
    memcpy(l->p + l->n, p, n);
  l->n += n;
}

static void event(log_t *l, char kind, const char *p, size_t n) {
  uint32_t len = (uint32_t)n;
  if (kind == 'R' && n == 0)
    return;
  if (kind == 'R' && l->raw_at != SIZE_MAX) {
    memcpy(&len, l->p + l->raw_at, 4);
    len += (uint32_t)n;
    memcpy(l->p + l->raw_at, &len, 4);
    put(l, p, n);
    return;
  }
  put(l, &kind, 1);
  l->raw_at = kind == 'R' ? l->n : SIZE_MAX;
  put(l, &len, 4);
  put(l, p, n);
}

/* "R<digits>" (at most 4): the raw byte count; -1 for any other line. */
static long raw_command(const char *p, size_t n) {
  long v = 0;
  if (n < 2 || n > 5 || p[0] != 'R')
    return -1;
  for (size_t i = 1; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

/* ---- The model ---- */

typedef struct config {
  const char *delim; /* NULL: the default */
  size_t delim_len;
  size_t max;
} config;

static void model(const config *c, const char *in, size_t len, log_t *out) {
  const char *delim = c->delim ? c->delim : "\n";
  size_t d = c->delim ? c->delim_len : 1, pos = 0, raw_left = 0;
  size_t limit = c->max + d - 1 + (c->delim ? 0 : 1);
  const char *rest = "";
  size_t rest_len = 0;
  while (pos < len) {
    const char *hit;
    size_t n;
    if (raw_left > 0) {
      n = len - pos < raw_left ? len - pos : raw_left;
      event(out, 'R', in + pos, n);
      raw_left -= n;
      pos += n;
      continue;
    }
    hit = memmem(in + pos, len - pos, delim, d);
    if (hit == NULL) {
      n = len - pos;
      if (n > limit)
        event(out, 'T', in + pos, c->max);
      else {
        rest = in + pos;
        rest_len = n;
      }
      break;
    }
    n = (size_t)(hit - (in + pos));
    if (c->delim == NULL && n > 0 && in[pos + n - 1] == '\r')
      n--;
    if (n > c->max) {
      event(out, 'T', in + pos, c->max);
    } else {
      long r = raw_command(in + pos, n);
      event(out, 'L', in + pos, n);
      if (r > 0)
        raw_left = (size_t)r;
    }
    pos = (size_t)(hit - in) + d;
  }
  event(out, 'E', rest, rest_len);
}

/* ---- The splitter, fed in pieces ---- */

typedef struct run {
  eddy__lines l;
  log_t *out;
  size_t raw_left;
  int paused;
} run;

static void pull(run *r) {
  const char *p;
  size_t n;
  int ev;
  while (!r->paused && (ev = eddy__lines_next(&r->l, &p, &n)) > 0) {
    if (ev == EDDY__LINES_LINE) {
      long cmd = raw_command(p, n);
      event(r->out, 'L', p, n);
      if (cmd > 0) {
        r->raw_left = (size_t)cmd;
        eddy__lines_set_raw(&r->l, 1);
      }
      if (n == 1 && p[0] == 'P')
        r->paused = 1;
    } else if (ev == EDDY__LINES_TOO_LONG) {
      event(r->out, 'T', p, n);
    } else {
      size_t take = n < r->raw_left ? n : r->raw_left;
      event(r->out, 'R', p, take);
      r->raw_left -= take;
      if (r->raw_left == 0)
        eddy__lines_set_raw(&r->l, 0);
      eddy__lines_used(&r->l, take);
    }
  }
  if (ev < 0 && !r->paused)
    abort(); /* no allocation fails here */
}

static void fed(const config *c, const char *in, size_t len, uint32_t seed,
                log_t *out) {
  run r = {.out = out};
  const char *rest;
  size_t n;
  if (eddy__lines_init(&r.l, c->delim, c->delim_len, c->max) != 0)
    abort();
  for (size_t pos = 0; pos < len;) {
    size_t k;
    char *copy;
    seed = seed * 1103515245u + 12345u;
    k = (seed >> 16) % 9 == 0 ? 0 : 1 + (seed >> 8) % 24;
    k = k < len - pos ? k : len - pos;
    /* A copy of exactly k bytes: reading past a push is caught. */
    copy = malloc(k ? k : 1);
    memcpy(copy, in + pos, k);
    eddy__lines_push(&r.l, copy, k);
    pull(&r);
    if (eddy__lines_keep(&r.l) != 0)
      abort();
    free(copy);
    while (r.paused) { /* resumed before the next push */
      r.paused = 0;
      pull(&r);
    }
    pos += k;
  }
  eddy__lines_rest(&r.l, &rest, &n);
  event(out, 'E', rest, n);
  eddy__lines_free(&r.l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct {
    const char *p;
    size_t n;
  } delims[] = {{NULL, 0},  {"\r\n", 2}, {"\0", 1},          {"--b", 3},
                {"aab", 3}, {"\n", 1},   {"--boundary", 10}, {"xx", 2}};
  log_t want = {.raw_at = SIZE_MAX}, got = {.raw_at = SIZE_MAX};
  config c;
  uint32_t seed;
  if (size < 3)
    return 0;
  c.delim = delims[data[0] % 8].p;
  c.delim_len = delims[data[0] % 8].n;
  c.max = data[1] < 200 ? 1 + data[1] % 16 : 100 + data[1];
  seed = data[2];
  model(&c, (const char *)data + 3, size - 3, &want);
  fed(&c, (const char *)data + 3, size - 3, seed, &got);
  if (want.n != got.n || memcmp(want.p, got.p, want.n) != 0) {
    fprintf(stderr, "line splitter and model differ (delimiter %u, max %zu)\n",
            data[0] % 8u, c.max);
    abort();
  }
  free(want.p);
  free(got.p);
  return 0;
}
