/* block.c: reference-counted blocks, found from their data pointer, and
 * the built-in wire formats. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/comet/comet.h"
#include "sys/alloc.h"

/* The header before a block's bytes. Two words: the bytes start at a
 * pointer-aligned address, which is all bytes need. */
typedef struct block_head {
  size_t refs;
  size_t len;
} block_head;

static block_head *head_of(const void *data) {
  return (block_head *)((char *)(uintptr_t)data - sizeof(block_head));
}

void *eddy_comet_block_new(size_t len) {
  block_head *h;
  if (len > SIZE_MAX - sizeof *h)
    return NULL;
  if ((h = eddy__malloc(sizeof *h + (len ? len : 1))) == NULL)
    return NULL;
  h->refs = 1;
  h->len = len;
  return h + 1;
}

void *eddy_comet_block_ref(void *data) {
  head_of(data)->refs++;
  return data;
}

void eddy_comet_block_unref(void *data) {
  block_head *h;
  if (data == NULL)
    return;
  h = head_of(data);
  if (--h->refs == 0)
    eddy__free(h);
}

size_t eddy_comet_block_refs(const void *data) {
  return head_of(data)->refs;
}

size_t eddy_comet_block_len(const void *data) {
  return head_of(data)->len;
}

/* ---- Server-sent events -------------------------------------------------- */

static int bad_field(const char *s) {
  return s && strpbrk(s, "\r\n") != NULL;
}

/* Calls emit(line, n) for each line of data: a CR, an LF or a CRLF ends
 * one, and the bytes after the last ending are a line too (empty if data
 * ends with one, or is empty), as the SSE parser will rebuild them. */
#define EACH_LINE(data, len, START, N, BODY)                                   \
  do {                                                                         \
    const char *p_ = (data), *e_ = p_ + (len);                                 \
    for (;;) {                                                                 \
      const char *q_ = p_;                                                     \
      while (q_ < e_ && *q_ != '\r' && *q_ != '\n')                            \
        q_++;                                                                  \
      {                                                                        \
        const char *START = p_;                                                \
        size_t N = (size_t)(q_ - p_);                                          \
        BODY;                                                                  \
      }                                                                        \
      if (q_ == e_)                                                            \
        break;                                                                 \
      p_ = q_ + (*q_ == '\r' && q_ + 1 < e_ && q_[1] == '\n' ? 2 : 1);         \
    }                                                                          \
  } while (0)

static char *put(char *w, const void *p, size_t n) {
  if (n)
    memcpy(w, p, n);
  return w + n;
}

int eddy_comet_sse_encode(eddy_buf *out, const char *event, const char *id,
                          const void *data, size_t len) {
  size_t need = 1, room;
  char *space, *w;
  int e;
  if (bad_field(event) || bad_field(id))
    return -EINVAL;
  if (data == NULL)
    len = 0;
  if (event)
    need += 7 + strlen(event) + 1;
  if (id)
    need += 4 + strlen(id) + 1;
  EACH_LINE((const char *)data, len, s, n, {
    (void)s;
    need += 6 + n + 1;
  });
  if ((e = eddy_buf_reserve(out, need, &space, &room)) != 0)
    return e;
  w = space;
  if (event) {
    w = put(w, "event: ", 7);
    w = put(w, event, strlen(event));
    *w++ = '\n';
  }
  if (id) {
    w = put(w, "id: ", 4);
    w = put(w, id, strlen(id));
    *w++ = '\n';
  }
  EACH_LINE((const char *)data, len, s, n, {
    w = put(w, "data: ", 6);
    w = put(w, s, n);
    *w++ = '\n';
  });
  *w++ = '\n';
  eddy_buf_commit(out, (size_t)(w - space));
  return 0;
}

int eddy__comet_encode_sse(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  char id[24];
  (void)arg;
  snprintf(id, sizeof id, "%llu", (unsigned long long)m->id);
  return eddy_comet_sse_encode(out, m->event, id, m->data, m->len);
}

int eddy__comet_encode_sse_chunked(const eddy_comet_msg *m, eddy_buf *out,
                                   void *arg) {
  char size[EDDY__COMET_CHUNK_DIGITS + 3];
  size_t n;
  int e;
  if ((e = eddy_buf_append(out, "00000000\r\n", EDDY__COMET_CHUNK_DIGITS + 2)))
    return e;
  if ((e = eddy__comet_encode_sse(m, out, arg)) != 0 ||
      (e = eddy_buf_append(out, "\r\n", 2)) != 0)
    return e;
  n = eddy_buf_len(out) - EDDY__COMET_CHUNK_DIGITS - 4;
  if (n > 0xffffffffu)
    return -EMSGSIZE;
  snprintf(size, sizeof size, "%08zx", n);
  memcpy(eddy_buf_data(out), size, EDDY__COMET_CHUNK_DIGITS);
  return 0;
}

int eddy__comet_encode_line(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  char *space;
  size_t room;
  int e;
  (void)arg;
  if ((e = eddy_buf_reserve(out, m->len + 1, &space, &room)) != 0)
    return e;
  for (size_t i = 0; i < m->len; i++) {
    char c = ((const char *)m->data)[i];
    space[i] = c == '\r' || c == '\n' ? ' ' : c;
  }
  space[m->len] = '\n';
  eddy_buf_commit(out, m->len + 1);
  return 0;
}

int eddy__comet_parse_id(const char *p, size_t n, uint64_t *v) {
  uint64_t r = 0;
  if (n == 0 || n > 20)
    return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(p[i] - '0');
    if (d > 9 || r > (UINT64_MAX - d) / 10)
      return -EINVAL;
    r = r * 10 + d;
  }
  *v = r;
  return 0;
}
