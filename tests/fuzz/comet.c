/* Fuzz target: what src/proto/comet reads from outside and writes back.
 *
 * 1. A message id as a client sends it (Last-Event-ID, ?since=): the
 *    input's leading bytes (up to 32) are parsed and checked against a
 *    model in 128-bit arithmetic: accepted exactly when they are 1 to 20
 *    digits of a value that fits in 64 bits, with that value.
 * 2. An event as a client's EventSource reads it: the input is cut at its
 *    first two NULs into an event name, an id and the data (flags in the
 *    first byte say which are present); the encoding must be refused when
 *    the name or id holds a CR or LF, and otherwise, parsed back the way a
 *    browser does (lines ended by CR, LF or CRLF; "field: value" with one
 *    space dropped; data lines joined by LF; a blank line dispatches),
 *    give exactly one event with the same name, id and data (its line
 *    endings made LF).
 * Any difference, or a sanitizer report, is a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eddy/buf.h"
#include "eddy/comet.h"
#include "proto/comet/comet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_id(const uint8_t *p, size_t n) {
  unsigned __int128 v = 0;
  uint64_t got = 0;
  int ok = n >= 1 && n <= 20;
  for (size_t i = 0; ok && i < n; i++) {
    ok = p[i] >= '0' && p[i] <= '9';
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  ok = ok && v <= UINT64_MAX;
  if ((eddy__comet_parse_id((const char *)p, n, &got) == 0) != ok)
    abort();
  if (ok && got != (uint64_t)v)
    abort();
}

/* The event a browser reads from out[0, n): name, id and data, each a
 * malloc'd string with its length; returns the events dispatched. */
typedef struct event {
  char *name, *id, *data;
  size_t name_len, id_len, data_len;
  int has_name, has_id;
} event;

static void append(char **s, size_t *len, const char *p, size_t n) {
  char *r = realloc(*s, *len + n + 1);
  if (r == NULL)
    abort();
  memcpy(r + *len, p, n);
  *len += n;
  r[*len] = '\0';
  *s = r;
}

static int parse_stream(const char *p, size_t n, event *ev) {
  size_t i = 0;
  int events = 0, data_lines = 0;
  while (i < n) {
    size_t start = i, colon, vstart;
    while (i < n && p[i] != '\r' && p[i] != '\n')
      i++;
    if (i == n)
      abort(); /* every line the encoder writes is ended */
    size_t end = i;
    i += p[i] == '\r' && i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
    if (end == start) { /* a blank line: the event */
      events++;
      continue;
    }
    colon = start;
    while (colon < end && p[colon] != ':')
      colon++;
    vstart = colon < end ? colon + 1 : end;
    if (vstart < end && p[vstart] == ' ')
      vstart++;
    if (colon - start == 4 && memcmp(p + start, "data", 4) == 0) {
      if (data_lines++ > 0)
        append(&ev->data, &ev->data_len, "\n", 1);
      append(&ev->data, &ev->data_len, p + vstart, end - vstart);
    } else if (colon - start == 5 && memcmp(p + start, "event", 5) == 0) {
      ev->has_name = 1;
      append(&ev->name, &ev->name_len, p + vstart, end - vstart);
    } else if (colon - start == 2 && memcmp(p + start, "id", 2) == 0) {
      ev->has_id = 1;
      append(&ev->id, &ev->id_len, p + vstart, end - vstart);
    } else {
      abort(); /* the encoder writes no other field */
    }
  }
  return events;
}

/* The data with its CRLF and CR made LF. */
static char *normalised(const char *p, size_t n, size_t *out_len) {
  char *r = malloc(n + 1);
  size_t k = 0;
  if (r == NULL)
    abort();
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\r') {
      r[k++] = '\n';
      if (i + 1 < n && p[i + 1] == '\n')
        i++;
    } else {
      r[k++] = p[i];
    }
  }
  *out_len = k;
  return r;
}

static int same(const char *a, size_t an, const char *b, size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void check_event(const uint8_t *in, size_t size) {
  unsigned flags = size ? in[0] : 0;
  const char *p = size ? (const char *)in + 1 : "",
             *end = p + (size ? size - 1 : 0);
  const char *fields[2] = {NULL, NULL};
  char *strs[2] = {NULL, NULL};
  int refused = 0, rc;
  eddy_buf out;
  event ev = {0};
  size_t want_len;
  char *want;
  for (int f = 0; f < 2; f++) {
    const char *nul = memchr(p, 0, (size_t)(end - p));
    size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
    if (flags & (1u << f)) {
      strs[f] = malloc(n + 1);
      if (strs[f] == NULL)
        abort();
      memcpy(strs[f], p, n);
      strs[f][n] = '\0';
      fields[f] = strs[f];
      refused |= memchr(p, '\r', n) != NULL || memchr(p, '\n', n) != NULL;
      p = nul ? nul + 1 : end;
    }
  }
  eddy_buf_init(&out, 0);
  rc = eddy_comet_sse_encode(&out, fields[0], fields[1], p, (size_t)(end - p));
  if (refused) {
    if (rc != -EINVAL || eddy_buf_len(&out) != 0)
      abort();
  } else {
    if (rc != 0)
      abort();
    if (parse_stream(eddy_buf_data(&out), eddy_buf_len(&out), &ev) != 1)
      abort();
    want = normalised(p, (size_t)(end - p), &want_len);
    if (!same(ev.data ? ev.data : "", ev.data_len, want, want_len))
      abort();
    if (ev.has_name != (fields[0] != NULL) ||
        (fields[0] && !same(ev.name ? ev.name : "", ev.name_len, fields[0],
                            strlen(fields[0]))))
      abort();
    if (ev.has_id != (fields[1] != NULL) ||
        (fields[1] &&
         !same(ev.id ? ev.id : "", ev.id_len, fields[1], strlen(fields[1]))))
      abort();
    free(want);
  }
  eddy_buf_free(&out);
  free(ev.name);
  free(ev.id);
  free(ev.data);
  free(strs[0]);
  free(strs[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_id(data, size < 32 ? size : 32);
  check_event(data, size);
  return 0;
}
