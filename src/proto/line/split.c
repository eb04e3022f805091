/* split.c: the line splitter (see line.h), a pull parser over lent bytes.
 *
 * The unread input is the buffer followed by the lent bytes. A delimiter is
 * looked for in the buffer first (from where the last search stopped),
 * then across the seam (a delimiter that begins in the buffer's tail and
 * ends in the lent bytes), then in the lent bytes. A line found wholly in
 * the lent bytes while the buffer is empty is handed out where it lies:
 * the hot path, no copy. Otherwise the lent bytes up to the end of the
 * delimiter are appended to the buffer and the line is taken from there.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "proto/line/line.h"

enum { NOT_FOUND, IN_BUF, IN_INPUT };

int eddy__lines_init(eddy__lines *l, const char *delim, size_t delim_len,
                     size_t max) {
  if (delim_len > EDDY_LINE_DELIMITER_MAX || (delim_len > 0 && delim == NULL))
    return -EINVAL;
  memset(l, 0, sizeof *l);
  if (delim == NULL || delim_len == 0) {
    l->delim[0] = '\n';
    l->delim_len = 1;
    l->strip_cr = 1;
  } else {
    memcpy(l->delim, delim, delim_len);
    l->delim_len = delim_len;
  }
  l->max = max ? max : EDDY_LINE_MAX_DEFAULT;
  l->limit = l->max + (l->delim_len - 1) + (size_t)l->strip_cr;
  if (l->limit < l->max) /* a max near SIZE_MAX: no line can be proven long */
    l->limit = (size_t)-1;
  /* No cap: a partial line is cut at limit, and kept input is at most what
   * one push lent. */
  eddy_buf_init(&l->buf, 0);
  return 0;
}

void eddy__lines_free(eddy__lines *l) {
  eddy_buf_free(&l->buf);
}

void eddy__lines_push(eddy__lines *l, const char *data, size_t len) {
  assert(l->in_len == 0 && l->raw_len == 0);
  l->in = data;
  l->in_len = len;
}

size_t eddy__lines_buffered(const eddy__lines *l) {
  return eddy_buf_len(&l->buf);
}

static const char *search(const eddy__lines *l, const char *p, size_t n) {
  if (l->delim_len == 1)
    return memchr(p, l->delim[0], n);
  return memmem(p, n, l->delim, l->delim_len);
}

/* A delimiter that begins in the buffer's last k bytes and ends in the
 * lent bytes: the earliest one, as the bytes of input through its end. */
static int across_seam(const eddy__lines *l, size_t *end) {
  size_t blen = eddy_buf_len(&l->buf), d = l->delim_len;
  const char *tail = eddy_buf_data(&l->buf);
  for (size_t k = d - 1; k >= 1; k--) {
    if (k > blen || d - k > l->in_len)
      continue;
    if (memcmp(tail + blen - k, l->delim, k) == 0 &&
        memcmp(l->in, l->delim + k, d - k) == 0) {
      *end = d - k;
      return 1;
    }
  }
  return 0;
}

/* The first delimiter in buffer + lent bytes. IN_BUF: *at is where it
 * begins in the buffer. IN_INPUT: *at is the count of lent bytes through
 * its end (it may begin in the buffer). Remembers how far the buffer was
 * searched in vain. */
static int find(eddy__lines *l, size_t *at) {
  size_t blen = eddy_buf_len(&l->buf), d = l->delim_len;
  const char *b = eddy_buf_data(&l->buf), *hit;
  if (blen > l->scanned) {
    if ((hit = search(l, b + l->scanned, blen - l->scanned)) != NULL) {
      *at = (size_t)(hit - b);
      return IN_BUF;
    }
    l->scanned = blen >= d ? blen - (d - 1) : 0;
  }
  if (l->in_len == 0)
    return NOT_FOUND;
  if (blen > 0 && d > 1 && across_seam(l, at))
    return IN_INPUT;
  if ((hit = search(l, l->in, l->in_len)) != NULL) {
    *at = (size_t)(hit - l->in) + d;
    return IN_INPUT;
  }
  return NOT_FOUND;
}

static void take_input(eddy__lines *l, size_t n) {
  if (n == 0) /* l->in may be NULL: nothing lent (a resume) */
    return;
  l->in += n;
  l->in_len -= n;
}

/* Keeps only the last delim_len - 1 bytes of buffer + lent bytes (the
 * start of a delimiter, maybe) while a too long line is skipped. */
static int keep_seam_only(eddy__lines *l) {
  size_t keep = l->delim_len - 1, blen = eddy_buf_len(&l->buf);
  if (l->in_len >= keep) {
    eddy_buf_reset(&l->buf);
    take_input(l, l->in_len - keep);
  } else if (blen + l->in_len > keep) {
    eddy_buf_consume(&l->buf, blen + l->in_len - keep);
  }
  /* At most keep bytes, into a buffer that held them before or is empty:
   * this can only fail on a buffer that never allocated. */
  if (eddy_buf_append(&l->buf, l->in, l->in_len) != 0)
    return -ENOMEM;
  take_input(l, l->in_len);
  l->scanned = 0;
  return 0;
}

/* No delimiter anywhere: the lent bytes join the partial line, which is
 * reported if it is now surely too long. */
static int no_delimiter(eddy__lines *l, const char **p, size_t *n) {
  size_t blen = eddy_buf_len(&l->buf);
  if (l->skipping)
    return keep_seam_only(l) == 0 ? EDDY__LINES_NONE : -ENOMEM;
  if (blen == 0 && l->in_len > l->limit) { /* straight from the lent bytes */
    *p = l->in;
    *n = l->max;
    l->skipping = 1;
    take_input(l, l->in_len - (l->delim_len - 1));
    if (keep_seam_only(l) != 0)
      return -ENOMEM;
    return EDDY__LINES_TOO_LONG;
  }
  if (eddy_buf_append(&l->buf, l->in, l->in_len) != 0)
    return -ENOMEM;
  take_input(l, l->in_len);
  blen = eddy_buf_len(&l->buf);
  if (blen <= l->limit)
    return EDDY__LINES_NONE;
  *p = eddy_buf_data(&l->buf);
  *n = l->max;
  l->skipping = 1;
  /* Consuming moves no bytes: *p stays intact until the next append. */
  eddy_buf_consume(&l->buf, blen - (l->delim_len - 1));
  l->scanned = 0;
  return EDDY__LINES_TOO_LONG;
}

/* A raw chunk: the buffer first, then the lent bytes. */
static int raw_chunk(eddy__lines *l, const char **p, size_t *n) {
  size_t blen = eddy_buf_len(&l->buf);
  l->raw_in_buf = blen > 0;
  *p = blen > 0 ? eddy_buf_data(&l->buf) : l->in;
  *n = blen > 0 ? blen : l->in_len;
  l->raw_len = *n;
  return *n > 0 ? EDDY__LINES_RAW : EDDY__LINES_NONE;
}

/* Hands out line [p, p + len) as a line or as too long. */
static int line_event(eddy__lines *l, const char **p, size_t *n,
                      const char *line, size_t len) {
  if (l->strip_cr && len > 0 && line[len - 1] == '\r')
    len--;
  *p = line;
  *n = len > l->max ? l->max : len;
  return len > l->max ? EDDY__LINES_TOO_LONG : EDDY__LINES_LINE;
}

int eddy__lines_next(eddy__lines *l, const char **p, size_t *n) {
  assert(l->raw_len == 0); /* the last raw chunk was marked used */
  for (;;) {
    size_t at = 0, d = l->delim_len;
    const char *line;
    int where;
    if (l->raw)
      return raw_chunk(l, p, n);
    where = find(l, &at);
    if (where == NOT_FOUND)
      return no_delimiter(l, p, n);
    if (where == IN_INPUT && eddy_buf_len(&l->buf) > 0) {
      if (eddy_buf_append(&l->buf, l->in, at) != 0)
        return -ENOMEM;
      take_input(l, at);
      where = IN_BUF;
      at = eddy_buf_len(&l->buf) - d;
    }
    if (where == IN_BUF) {
      line = eddy_buf_data(&l->buf);
      eddy_buf_consume(&l->buf, at + d); /* moves no bytes */
      l->scanned = 0;
    } else {
      line = l->in;
      at -= d;
      take_input(l, at + d);
    }
    if (l->skipping) { /* the end of a line already reported */
      l->skipping = 0;
      continue;
    }
    return line_event(l, p, n, line, at);
  }
}

void eddy__lines_used(eddy__lines *l, size_t used) {
  if (used > l->raw_len)
    used = l->raw_len;
  if (l->raw_in_buf)
    eddy_buf_consume(&l->buf, used);
  else
    take_input(l, used);
  l->raw_len = 0;
  l->scanned = 0;
}

int eddy__lines_keep(eddy__lines *l) {
  int err = eddy_buf_append(&l->buf, l->in, l->in_len);
  take_input(l, l->in_len);
  return err;
}

void eddy__lines_set_raw(eddy__lines *l, int raw) {
  l->raw = raw != 0;
  if (l->raw)
    l->skipping = 0;
}

void eddy__lines_rest(eddy__lines *l, const char **p, size_t *n) {
  assert(l->in_len == 0);
  *p = eddy_buf_data(&l->buf);
  *n = l->skipping ? 0 : eddy_buf_len(&l->buf);
  eddy_buf_reset(&l->buf);
  l->scanned = 0;
  l->skipping = 0;
}
