/* eddy/buf.h: the byte buffer.
 *
 * An eddy_buf is a window of unread bytes inside one block of memory, in
 * the manner of nginx's ngx_buf_t:
 *
 *     start        pos              last             end
 *       |  consumed  |     unread     |   free space   |
 *
 * Bytes are appended at last (or read straight into the free space with
 * eddy_buf_reserve and eddy_buf_commit) and consumed from pos. Consuming
 * moves no bytes; a buffer that empties starts again at the front of its
 * block. When an append does not fit behind last, the unread bytes are
 * first moved to the front of the block if that makes room (compaction),
 * and only otherwise the block grows, doubling, never past the buffer's
 * cap.
 *
 * It is a value type: the program declares one (in its own struct, on the
 * stack) and calls eddy_buf_init; eddy allocates only the block, through
 * eddy's allocator, and eddy_buf_free releases it. The fields are public so
 * that the accessors below can be inline; read them, but change them only
 * through these functions.
 *
 * Pointers into the block (eddy_buf_data, the space eddy_buf_reserve gives)
 * stay valid until the next call that may move the block: eddy_buf_append,
 * eddy_buf_reserve, eddy_buf_reset, eddy_buf_free. eddy_buf_consume and
 * eddy_buf_commit never move the bytes.
 *
 * A buffer is not thread-safe; it belongs to whoever holds it.
 */
#ifndef EDDY_BUF_H
#define EDDY_BUF_H

#include <stddef.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The smallest block a buffer allocates: small appends do not pay for
 * several reallocations on their way up. */
#define EDDY_BUF_MIN_BLOCK 256

typedef struct eddy_buf {
  char *start; /* the block's first byte; NULL until the first allocation
                  (and again after eddy_buf_free) */
  char *end;   /* one past the block's last byte; NULL with start */
  char *pos;   /* the first unread byte; start <= pos <= last. The unread
                  bytes may be changed in place by the holder (they are its
                  own copy), but not moved */
  char *last;  /* one past the last unread byte; last <= end. [last, end)
                  is the free space that appends and reads fill */
  size_t cap;  /* the most the block may grow to, and so the most unread
                  bytes the buffer can hold; fixed at eddy_buf_init */
} eddy_buf;

/* Makes b an empty buffer that will hold at most cap bytes (cap 0: no
 * limit but memory). Allocates nothing; cannot fail. A buffer needs no
 * eddy_buf_free until something was appended, but one is always safe. */
EDDY_API void eddy_buf_init(eddy_buf *b, size_t cap);

/* The unread bytes: eddy_buf_len(b) of them from eddy_buf_data(b). data is
 * NULL for a buffer that never allocated. */
static inline char *eddy_buf_data(const eddy_buf *b) {
  return b->pos;
}
static inline size_t eddy_buf_len(const eddy_buf *b) {
  return (size_t)(b->last - b->pos);
}

/* Free bytes behind the unread ones (without compacting or growing). */
static inline size_t eddy_buf_room(const eddy_buf *b) {
  return (size_t)(b->end - b->last);
}

/* Copies len bytes behind the unread ones, compacting or growing the block
 * as needed (so pointers into it are invalidated). Returns 0; -ENOBUFS if
 * the unread bytes would then exceed the cap; -ENOMEM if the block could
 * not grow. On either error the buffer is unchanged (the same block, the
 * same bytes, the same pointers). len 0 does nothing and returns 0. data
 * must not point into b's own free space. */
EDDY_API int eddy_buf_append(eddy_buf *b, const void *data, size_t len);

/* Drops the first n unread bytes (all of them if n is larger). Moves no
 * bytes and never fails; once nothing is unread, the window goes back to
 * the front of the block. */
EDDY_API void eddy_buf_consume(eddy_buf *b, size_t n);

/* Makes sure at least n bytes of free space follow the unread bytes
 * (compacting or growing as eddy_buf_append does), for a read() straight
 * into the buffer. On success returns 0 and sets *space to the first free
 * byte and *room to the whole free space (>= n, and >= 1 when n is 0 so
 * that a read always has somewhere to go). Errors as eddy_buf_append's
 * (-ENOBUFS when the unread bytes plus n would pass the cap, -ENOMEM), with
 * the buffer unchanged and *space, *room untouched. The space is valid
 * until the next call that may move the block. */
EDDY_API int eddy_buf_reserve(eddy_buf *b, size_t n, char **space,
                              size_t *room);

/* Adds the first n bytes of the free space (written through the pointer
 * eddy_buf_reserve gave) to the unread bytes. n must be at most
 * eddy_buf_room(b): a larger n is a bug, caught by an assert in debug
 * builds and clamped to the room otherwise. */
EDDY_API void eddy_buf_commit(eddy_buf *b, size_t n);

/* Drops every unread byte and keeps the block for reuse. */
EDDY_API void eddy_buf_reset(eddy_buf *b);

/* Releases the block; b is then empty, with the same cap, and may be used
 * again. */
EDDY_API void eddy_buf_free(eddy_buf *b);

#ifdef __cplusplus
}
#endif
#endif
