/* buf.c: eddy_buf, a window of unread bytes in a block (see eddy/buf.h).
 *
 * Making room is the only interesting part: make_room() first tries the
 * free space, then the consumed bytes at the front (a memmove of what is
 * unread, cheaper than an allocation and usually small: buffers here hold
 * the tail of a read), and only then a larger block. The block is
 * reallocated before anything moves, so that a failed allocation leaves
 * the buffer exactly as it was.
 */
#include "eddy/buf.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sys/alloc.h"

static void check(const eddy_buf *b) {
  (void)b;
  assert(b->start <= b->pos && b->pos <= b->last && b->last <= b->end);
  assert((b->start == NULL) == (b->end == NULL));
  assert(b->cap == 0 || (size_t)(b->end - b->start) <= b->cap);
}

void eddy_buf_init(eddy_buf *b, size_t cap) {
  b->start = b->end = b->pos = b->last = NULL;
  b->cap = cap;
}

/* Moves the unread bytes to the front of the block. */
static void compact(eddy_buf *b) {
  size_t len = eddy_buf_len(b);
  if (b->pos == b->start)
    return;
  memmove(b->start, b->pos, len);
  b->pos = b->start;
  b->last = b->start + len;
}

/* The size of a block for need bytes: doubling from the current size (or
 * the minimum), never past the cap. */
static size_t block_size(const eddy_buf *b, size_t need) {
  size_t size = (size_t)(b->end - b->start);
  size_t limit = b->cap ? b->cap : SIZE_MAX;
  if (size < EDDY_BUF_MIN_BLOCK)
    size = EDDY_BUF_MIN_BLOCK;
  while (size < need && size <= limit / 2)
    size *= 2;
  if (size < need)
    size = need;
  return size < limit ? size : limit;
}

/* A block of size bytes holding the unread bytes at its front. */
static int grow(eddy_buf *b, size_t size) {
  size_t off = (size_t)(b->pos - b->start), len = eddy_buf_len(b);
  char *p;
  if (b->start == NULL)
    p = eddy__malloc(size);
  else
    p = eddy__realloc(b->start, size);
  if (p == NULL)
    return -ENOMEM;
  b->start = p;
  b->end = p + size;
  b->pos = p + off;
  b->last = b->pos + len;
  compact(b);
  return 0;
}

/* Makes at least n bytes of free space follow the unread bytes. */
static int make_room(eddy_buf *b, size_t n) {
  size_t len = eddy_buf_len(b), size = (size_t)(b->end - b->start);
  check(b);
  if (eddy_buf_room(b) >= n && b->start != NULL)
    return 0;
  if (n > SIZE_MAX - len || (b->cap && len + n > b->cap))
    return -ENOBUFS;
  if (size >= len + n && b->start != NULL) {
    compact(b);
    return 0;
  }
  return grow(b, block_size(b, len + n));
}

int eddy_buf_append(eddy_buf *b, const void *data, size_t len) {
  int err;
  if (len == 0)
    return 0;
  if ((err = make_room(b, len)) != 0)
    return err;
  memcpy(b->last, data, len);
  b->last += len;
  check(b);
  return 0;
}

void eddy_buf_consume(eddy_buf *b, size_t n) {
  size_t len = eddy_buf_len(b);
  check(b);
  if (n >= len) {
    b->pos = b->last = b->start;
    return;
  }
  b->pos += n;
}

int eddy_buf_reserve(eddy_buf *b, size_t n, char **space, size_t *room) {
  int err = make_room(b, n ? n : 1);
  if (err != 0)
    return err;
  *space = b->last;
  *room = eddy_buf_room(b);
  return 0;
}

void eddy_buf_commit(eddy_buf *b, size_t n) {
  check(b);
  assert(n <= eddy_buf_room(b));
  if (n > eddy_buf_room(b))
    n = eddy_buf_room(b);
  b->last += n;
}

void eddy_buf_reset(eddy_buf *b) {
  check(b);
  b->pos = b->last = b->start;
}

void eddy_buf_free(eddy_buf *b) {
  check(b);
  eddy__free(b->start);
  eddy_buf_init(b, b->cap);
}
