/* line.c: eddy_line, line framing over a stream (see eddy/line.h).
 *
 * The stream's data callback lends its bytes to the splitter (split.c)
 * and pulls events out while delivery may go on: not paused, not freed,
 * the stream not closing. What is left when it stops is copied into the
 * splitter's buffer before the callback returns, and delivered first on
 * resume.
 *
 * A callback may free the reader: `depth` counts the deliveries running,
 * and the memory goes only when the outermost returns. The close callback
 * always runs from the loop (depth 0), after which the reader is freed
 * with its stream.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/uio.h>

#include "eddy/line.h"
#include "net/net.h"
#include "proto/line/line.h"
#include "sys/alloc.h"

struct eddy_line {
  eddy_stream *s;
  eddy_line_callbacks cb;
  void *arg;
  eddy__lines split;
  int paused;      /* eddy_line_pause, until eddy_line_resume */
  int freed;       /* eddy_line_free was called; free when depth is 0 */
  int depth;       /* deliveries running (a callback may resume: nested) */
  char detail[64]; /* the too long line's detail; outlives the close */
};

static const eddy_stream_callbacks stream_callbacks;

static int stopped(const eddy_line *lr) {
  return lr->paused || lr->freed || eddy__stream_closing(lr->s);
}

static void release(eddy_line *lr) {
  eddy__lines_free(&lr->split);
  eddy__free(lr);
}

static void too_long(eddy_line *lr, const char *p, size_t n) {
  if (lr->cb.too_long) {
    lr->cb.too_long(lr, p, n, lr->arg);
    return;
  }
  snprintf(lr->detail, sizeof lr->detail, "line longer than %zu bytes",
           lr->split.max);
  eddy__stream_fail(lr->s, EDDY_ETOOLONG, lr->detail);
}

/* Hands one event to its callback. */
static void dispatch(eddy_line *lr, int ev, const char *p, size_t n) {
  size_t used;
  switch (ev) {
  case EDDY__LINES_LINE:
    if (lr->cb.line)
      lr->cb.line(lr, p, n, lr->arg);
    break;
  case EDDY__LINES_RAW:
    used = lr->cb.raw ? lr->cb.raw(lr, p, n, lr->arg) : n;
    if (!lr->freed)
      eddy__lines_used(&lr->split, used);
    break;
  case EDDY__LINES_TOO_LONG:
    too_long(lr, p, n);
    break;
  default:
    eddy__stream_fail(lr->s, ev, "out of memory while buffering a line");
  }
}

/* Delivers events until there are none or delivery must stop. */
static void deliver(eddy_line *lr) {
  lr->depth++;
  while (!stopped(lr)) {
    const char *p = NULL;
    size_t n = 0;
    int ev = eddy__lines_next(&lr->split, &p, &n);
    if (ev == EDDY__LINES_NONE)
      break;
    dispatch(lr, ev, p, n);
  }
  lr->depth--;
}

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  eddy_line *lr = arg;
  (void)s;
  eddy__lines_push(&lr->split, data, len);
  deliver(lr);
  if (lr->freed) {
    if (lr->depth == 0)
      release(lr);
    return;
  }
  /* Stopped early: keep what is left for the resume (after a close
   * nothing will read it, but keeping is harmless and bounded). */
  if (eddy__lines_keep(&lr->split) != 0)
    eddy__stream_fail(lr->s, -ENOMEM, "out of memory while buffering a line");
}

static void on_eof(eddy_stream *s, void *arg) {
  eddy_line *lr = arg;
  const char *rest;
  size_t n;
  eddy__lines_rest(&lr->split, &rest, &n);
  if (lr->cb.eof == NULL) {
    eddy_stream_close(s);
    return;
  }
  lr->depth++;
  lr->cb.eof(lr, rest, n, lr->arg);
  lr->depth--;
  if (lr->freed && lr->depth == 0)
    release(lr);
}

static void on_drain(eddy_stream *s, void *arg) {
  eddy_line *lr = arg;
  (void)s;
  if (lr->cb.drain == NULL)
    return;
  lr->depth++;
  lr->cb.drain(lr, lr->arg);
  lr->depth--;
  if (lr->freed && lr->depth == 0)
    release(lr);
}

static void on_close(eddy_stream *s, int status, const char *detail,
                     void *arg) {
  eddy_line *lr = arg;
  (void)s;
  lr->depth++;
  if (lr->cb.close)
    lr->cb.close(lr, status, detail, lr->arg);
  lr->depth--;
  release(lr);
}

static const eddy_stream_callbacks stream_callbacks = {on_data, on_eof,
                                                       on_drain, on_close};

int eddy_line_open(eddy_stream *s, const eddy_line_options *o,
                   const eddy_line_callbacks *cb, void *arg, eddy_line **out) {
  static const eddy_line_options defaults;
  static const eddy_line_callbacks none;
  eddy_line *lr;
  int err;
  if (s == NULL || out == NULL)
    return -EINVAL;
  if (o == NULL)
    o = &defaults;
  if ((lr = eddy__calloc(1, sizeof *lr)) == NULL)
    return -ENOMEM;
  err = eddy__lines_init(&lr->split, o->delimiter, o->delimiter_len,
                         o->max_length);
  if (err != 0) {
    eddy__free(lr);
    return err;
  }
  lr->s = s;
  lr->cb = cb ? *cb : none;
  lr->arg = arg;
  eddy_stream_set_callbacks(s, &stream_callbacks, lr);
  *out = lr;
  return 0;
}

eddy_stream *eddy_line_stream(const eddy_line *lr) {
  return lr->s;
}

int eddy_line_write(eddy_line *lr, const void *line, size_t len) {
  static const char crlf[] = "\r\n";
  struct iovec iov[2] = {{(void *)line, len}, {NULL, 0}};
  if (lr->split.strip_cr) {
    iov[1].iov_base = (void *)crlf;
    iov[1].iov_len = 2;
  } else {
    iov[1].iov_base = lr->split.delim;
    iov[1].iov_len = lr->split.delim_len;
  }
  return eddy_stream_writev(lr->s, iov, 2);
}

void eddy_line_set_raw(eddy_line *lr, int raw) {
  eddy__lines_set_raw(&lr->split, raw);
}

int eddy_line_is_raw(const eddy_line *lr) {
  return lr->split.raw;
}

size_t eddy_line_pending(const eddy_line *lr, const char **data) {
  *data = eddy_buf_data(&lr->split.buf);
  return lr->split.skipping ? 0 : eddy__lines_buffered(&lr->split);
}

void eddy_line_pause(eddy_line *lr) {
  lr->paused = 1;
  eddy_stream_pause(lr->s);
}

void eddy_line_resume(eddy_line *lr) {
  if (!lr->paused || lr->freed)
    return;
  lr->paused = 0;
  if (lr->depth == 0) {
    deliver(lr);
    if (lr->freed) {
      release(lr);
      return;
    }
  }
  if (!lr->paused && !eddy__stream_closing(lr->s))
    eddy_stream_resume(lr->s);
}

void eddy_line_free(eddy_line *lr) {
  if (lr == NULL || lr->freed)
    return;
  lr->freed = 1;
  eddy_stream_set_callbacks(lr->s, NULL, NULL);
  if (lr->depth == 0)
    release(lr);
}
