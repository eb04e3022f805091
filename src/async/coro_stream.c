/* coro_stream.c: streams read and written with waiting calls.
 *
 * A coroutine stream puts a line reader (eddy/line.h) over the stream and
 * keeps it paused when no read waits (see complete()): a read sets what it
 * wants
 * (some bytes, exactly n, a line), switches the reader to raw or line mode
 * and resumes it. Bytes the reader already holds are delivered inside the
 * resume, and then the read completes without waiting; otherwise the
 * coroutine waits and the reader's callback completes the read and wakes
 * it. Whatever a callback does not take stays in the reader, for the next
 * read of either kind: the reader is the one buffer.
 *
 * The line reader is proto/line's, a layer above this one: the issue that
 * asked for coroutines asked for their line reads to be that framing, with
 * its length limit, rather than a second one. Only its public API
 * (eddy/line.h) is used, so the dependency is on a contract, not on
 * internals; moving the framing down to net would remove it.
 *
 * The handle outlives the stream: after the close callback, calls return
 * the close status, and the memory goes when the program closes the
 * handle (or the owner finishes).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "async/coro.h"
#include "sys/alloc.h"

enum op { OP_NONE, OP_READ, OP_BORROW, OP_EXACT, OP_LINE };

/* A borrow woken from inside another coroutine: the bytes could not be
 * lent (they would be gone by the time it runs), so it tries again. */
#define RETRY_BORROW 1

struct eddy_coro_stream {
  eddy__owned own;
  eddy_stream *s; /* NULL once closed */
  eddy_line *lr;  /* NULL once closed */
  int status;     /* after the close: its status, EDDY_ECLOSED if 0 */
  int eof;        /* the peer finished sending */
  int released;   /* the program closed the handle: free on the close */
  enum op op;
  eddy_coro *waiter;  /* set while a coroutine waits on a read */
  eddy_coro *drainer; /* set while a coroutine waits for the drain: one
                         coroutine may read while another writes */
  int done;           /* the op completed, with result */
  int result;
  char *buf;
  const char **lent; /* OP_BORROW: where the pointer goes */
  size_t cap, got;
  size_t *line_len;
};

/* The op ends with result, and a waiting coroutine continues (deferred
 * when the program is closing cs, whose caller may not expect the
 * coroutine to run inside its call).
 *
 * The reader is not paused here: pausing stops the stream, which costs a
 * system call to stop watching the descriptor and another to start again
 * on the next read, and a coroutine that reads in a loop would pay both
 * for every read. It is switched to raw mode instead, so that whatever it
 * delivers before the next read (the rest of this read's bytes, the lines
 * after this one) reaches on_raw with no op waiting, which takes nothing
 * and pauses: only then is the stream paused, and the bytes stay in the
 * reader. */
static void complete(eddy_coro_stream *cs, int result, int defer) {
  eddy_coro *w = cs->waiter;
  cs->op = OP_NONE;
  cs->done = 1;
  cs->result = result;
  if (cs->lr)
    eddy_line_set_raw(cs->lr, 1);
  if (w) {
    cs->waiter = NULL;
    eddy__coro_wake(w, result, defer);
  }
}

static size_t on_raw(eddy_line *lr, const char *data, size_t len, void *arg) {
  eddy_coro_stream *cs = arg;
  size_t n;
  (void)lr;
  if (cs->op == OP_READ) {
    n = len < cs->cap ? len : cs->cap;
    memcpy(cs->buf, data, n);
    complete(cs, (int)n, 0);
    return n;
  }
  if (cs->op == OP_BORROW) {
    /* Lent bytes stay valid while this callback is on the stack, which
     * the reading coroutine runs inside of when it resumes at once: in
     * its own read (no waiter yet), or woken from the loop's stack. */
    if (cs->waiter != NULL && eddy_coro_current() != NULL) {
      complete(cs, RETRY_BORROW, 0);
      eddy_line_pause(lr);
      return 0;
    }
    n = len < cs->cap ? len : cs->cap;
    *cs->lent = data;
    complete(cs, (int)n, 0);
    return n;
  }
  if (cs->op == OP_EXACT) {
    n = cs->cap - cs->got;
    if (n > len)
      n = len;
    memcpy(cs->buf + cs->got, data, n);
    cs->got += n;
    if (cs->got == cs->cap)
      complete(cs, (int)cs->cap, 0);
    return n;
  }
  eddy_line_pause(lr);
  return 0;
}

static void take_line(eddy_coro_stream *cs, const char *line, size_t len) {
  if (len >= cs->cap) {
    complete(cs, -EMSGSIZE, 0);
    return;
  }
  memcpy(cs->buf, line, len);
  cs->buf[len] = '\0';
  if (cs->line_len)
    *cs->line_len = len;
  complete(cs, 1, 0);
}

static void on_line(eddy_line *lr, const char *line, size_t len, void *arg) {
  eddy_coro_stream *cs = arg;
  if (cs->op != OP_LINE) {
    eddy_line_pause(lr);
    return;
  }
  take_line(cs, line, len);
}

static void on_too_long(eddy_line *lr, const char *start, size_t len,
                        void *arg) {
  eddy_coro_stream *cs = arg;
  (void)lr;
  (void)start;
  (void)len;
  if (cs->op == OP_LINE)
    complete(cs, EDDY_ETOOLONG, 0);
}

static void on_eof(eddy_line *lr, const char *rest, size_t len, void *arg) {
  eddy_coro_stream *cs = arg;
  (void)lr;
  cs->eof = 1;
  switch (cs->op) {
  case OP_READ:
  case OP_BORROW:
    complete(cs, 0, 0);
    break;
  case OP_EXACT:
    complete(cs, -ENODATA, 0);
    break;
  case OP_LINE:
    if (len > 0)
      take_line(cs, rest, len);
    else
      complete(cs, 0, 0);
    break;
  default:
    break;
  }
}

static void on_drain(eddy_line *lr, void *arg) {
  eddy_coro_stream *cs = arg;
  eddy_coro *w = cs->drainer;
  (void)lr;
  if (w) {
    cs->drainer = NULL;
    eddy__coro_wake(w, 0, 0);
  }
}

static void on_close(eddy_line *lr, int status, const char *detail, void *arg) {
  eddy_coro_stream *cs = arg;
  (void)lr;
  (void)detail;
  cs->s = NULL;
  cs->lr = NULL;
  cs->status = status < 0 ? status : EDDY_ECLOSED;
  /* A released handle has no waiters (the close woke them); a woken
   * coroutine may close cs, so cs is not touched after the last wake, and
   * the writer's wake, deferred, comes first. */
  if (cs->released) {
    eddy__free(cs);
    return;
  }
  if (cs->drainer) {
    eddy_coro *w = cs->drainer;
    cs->drainer = NULL;
    eddy__coro_wake(w, cs->status, 1);
  }
  if (cs->op != OP_NONE)
    complete(cs, cs->status, 0);
}

static const eddy_line_callbacks line_callbacks = {on_line,     on_raw,
                                                   on_too_long, on_eof,
                                                   on_drain,    on_close};

static void release(eddy__owned *o) {
  eddy_coro_stream_close((eddy_coro_stream *)o);
}

int eddy_coro_stream_open(eddy_coro *co, eddy_stream *s,
                          const eddy_line_options *lo, eddy_coro_stream **out) {
  eddy_coro_stream *cs;
  int err;
  if (co == NULL || s == NULL || out == NULL)
    return -EINVAL;
  cs = eddy__calloc(1, sizeof *cs);
  if (cs == NULL)
    return -ENOMEM;
  err = eddy_line_open(s, lo, &line_callbacks, cs, &cs->lr);
  if (err != 0) {
    eddy__free(cs);
    return err;
  }
  eddy_line_pause(cs->lr);
  cs->s = s;
  eddy__coro_own(co, &cs->own, release);
  *out = cs;
  return 0;
}

eddy_stream *eddy_coro_stream_get(const eddy_coro_stream *cs) {
  return cs->s;
}

void eddy_coro_stream_move(eddy_coro_stream *cs, eddy_coro *to) {
  eddy__coro_disown(&cs->own);
  eddy__coro_own(to, &cs->own, release);
}

void eddy_coro_stream_close(eddy_coro_stream *cs) {
  eddy__coro_disown(&cs->own);
  if (cs->drainer) {
    eddy_coro *w = cs->drainer;
    cs->drainer = NULL;
    eddy__coro_wake(w, EDDY_ECLOSED, 1);
  }
  if (cs->op != OP_NONE)
    complete(cs, EDDY_ECLOSED, 1);
  if (cs->s == NULL) {
    eddy__free(cs);
    return;
  }
  cs->released = 1;
  eddy_stream_close(cs->s);
}

/* ---- Waiting ------------------------------------------------------------------ */

/* A cancelled wait: the reader stops, the op is forgotten. */
static void undo(void *arg) {
  eddy_coro_stream *cs = arg;
  cs->op = OP_NONE;
  cs->waiter = NULL;
  if (cs->lr)
    eddy_line_pause(cs->lr);
}

/* Whether co may start an op on cs: 0, or the code to return. */
static int begin(eddy_coro *co, eddy_coro_stream *cs) {
  int err = eddy__coro_check(co);
  if (err != 0)
    return err;
  if (cs->op != OP_NONE)
    return -EBUSY;
  if (cs->s == NULL)
    return cs->status;
  return 0;
}

/* Runs the op set up in cs: first on what the reader holds, then, if that
 * was not enough, waiting for more. */
static int run(eddy_coro *co, eddy_coro_stream *cs, int raw) {
  cs->done = 0;
  eddy_line_set_raw(cs->lr, raw);
  eddy_line_resume(cs->lr);
  if (cs->done)
    return cs->result;
  cs->waiter = co;
  return eddy__coro_wait(co, undo, cs);
}

int eddy_coro_read(eddy_coro *co, eddy_coro_stream *cs, void *buf, size_t cap) {
  int err = begin(co, cs);
  if (err != 0)
    return err;
  if (cap == 0)
    return -EINVAL;
  if (cs->eof)
    return 0;
  cs->op = OP_READ;
  cs->buf = buf;
  cs->cap = cap > INT_MAX ? INT_MAX : cap;
  return run(co, cs, 1);
}

int eddy_coro_read_borrow(eddy_coro *co, eddy_coro_stream *cs,
                          const char **data, size_t max) {
  int r;
  do {
    int err = begin(co, cs);
    if (err != 0)
      return err;
    if (max == 0)
      return -EINVAL;
    if (cs->eof)
      return 0;
    cs->op = OP_BORROW;
    cs->lent = data;
    cs->cap = max > INT_MAX ? INT_MAX : max;
    r = run(co, cs, 1);
  } while (r == RETRY_BORROW);
  return r;
}

int eddy_coro_read_exact(eddy_coro *co, eddy_coro_stream *cs, void *buf,
                         size_t n) {
  int err = begin(co, cs);
  if (err != 0)
    return err;
  if (n > INT_MAX)
    return -EINVAL;
  if (n == 0)
    return 0;
  if (cs->eof)
    return -ENODATA;
  cs->op = OP_EXACT;
  cs->buf = buf;
  cs->cap = n;
  cs->got = 0;
  return run(co, cs, 1);
}

int eddy_coro_read_line(eddy_coro *co, eddy_coro_stream *cs, char *buf,
                        size_t cap, size_t *len) {
  int err = begin(co, cs);
  if (err != 0)
    return err;
  if (cap == 0)
    return -EINVAL;
  if (cs->eof)
    return 0;
  cs->op = OP_LINE;
  cs->buf = buf;
  cs->cap = cap;
  cs->line_len = len;
  return run(co, cs, 0);
}

static void undo_write(void *arg) {
  ((eddy_coro_stream *)arg)->drainer = NULL;
}

int eddy_coro_write(eddy_coro *co, eddy_coro_stream *cs, const void *data,
                    size_t len) {
  int err = eddy__coro_check(co);
  if (err != 0)
    return err;
  if (cs->drainer != NULL)
    return -EBUSY;
  if (cs->s == NULL)
    return cs->status;
  err = eddy_stream_write(cs->s, data, len);
  if (err != 0)
    return err;
  if (!eddy_stream_over_high(cs->s))
    return 0;
  cs->drainer = co;
  return eddy__coro_wait(co, undo_write, cs);
}
