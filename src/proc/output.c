/* output.c: eddy_process_output, a program's stdout, stderr and exit
 * status delivered together.
 *
 * Three things must end before the callback: the exit, and end of file on
 * each pipe. They may end in any order (a grandchild can hold a pipe open
 * after the child has exited), so a count of what is still open decides. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "eddy/buf.h"
#include "proc/proc.h"
#include "sys/alloc.h"

typedef struct collect {
  eddy_process_output_cb cb;
  void *arg;
  eddy_process *p;
  eddy_stream *streams[2];
  eddy_buf out[2]; /* stdout, stderr; no cap: the caller asked for all */
  int pending;     /* the exit and the two pipes */
  int status, exit_status, term_signal;
} collect;

/* The bytes of b, NUL-terminated (the callback's contract) without
 * counting the NUL: it sits in the free space, which keep() always leaves. */
static const char *text(eddy_buf *b) {
  static char empty[1];
  if (eddy_buf_len(b) == 0)
    return empty;
  *b->last = '\0';
  return eddy_buf_data(b);
}

static void finish(collect *c) {
  if (--c->pending > 0)
    return;
  c->cb(text(&c->out[0]), eddy_buf_len(&c->out[0]), text(&c->out[1]),
        eddy_buf_len(&c->out[1]), c->status, c->exit_status, c->term_signal,
        c->arg);
  eddy_buf_free(&c->out[0]);
  eddy_buf_free(&c->out[1]);
  eddy_process_close(c->p);
  eddy__free(c);
}

/* Keeps len bytes, always leaving a byte of room for the terminating NUL:
 * reserving len + 1 and committing len. */
static int keep(eddy_buf *b, const char *data, size_t len) {
  char *space;
  size_t room;
  int err = eddy_buf_reserve(b, len + 1, &space, &room);
  if (err != 0)
    return err;
  memcpy(space, data, len);
  eddy_buf_commit(b, len);
  return 0;
}

/* Out of memory: the output can no longer be whole, so the child is not
 * left to run for nothing. */
static void give_up(collect *c, int err) {
  if (c->status == 0)
    c->status = err;
  (void)eddy_process_kill(c->p, SIGKILL);
  for (int i = 0; i < 2; i++)
    if (c->streams[i])
      eddy_stream_abort(c->streams[i]);
}

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  collect *c = arg;
  int i = s == c->streams[1];
  int err = keep(&c->out[i], data, len);
  if (err)
    give_up(c, err);
}

static void on_close(eddy_stream *s, int status, const char *detail,
                     void *arg) {
  collect *c = arg;
  (void)detail;
  c->streams[s == c->streams[1]] = NULL;
  if (status != 0 && status != -ECONNABORTED && c->status == 0)
    c->status = status;
  finish(c);
}

static void child_exited(eddy_process *p, int exit_status, int term_signal,
                         void *arg) {
  collect *c = arg;
  (void)p;
  c->exit_status = exit_status;
  c->term_signal = term_signal;
  finish(c);
}

static const eddy_stream_callbacks callbacks = {.data = on_data,
                                                .close = on_close};

int eddy_process_output(eddy_loop *loop, const eddy_process_options *o,
                        eddy_process_output_cb cb, void *arg) {
  eddy_process_options oo;
  collect *c;
  int err;
  if (o == NULL || cb == NULL)
    return -EINVAL;
  if ((c = eddy__calloc(1, sizeof *c)) == NULL)
    return -ENOMEM;
  c->cb = cb;
  c->arg = arg;
  c->pending = 3;
  eddy_buf_init(&c->out[0], 0);
  eddy_buf_init(&c->out[1], 0);
  oo = *o;
  oo.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &c->streams[0]};
  oo.stdio[2] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &c->streams[1]};
  oo.exit_cb = child_exited;
  oo.arg = c;
  if ((err = eddy_process_spawn(loop, &oo, &c->p)) != 0) {
    eddy__free(c);
    return err;
  }
  /* The handle is the collection's: eddy_loop_close_all must not close
   * it (that would drop the exit callback, and the collection with it);
   * it ends with the child, the callback, and then the collection. */
  eddy__process_own(c->p);
  eddy_stream_set_callbacks(c->streams[0], &callbacks, c);
  eddy_stream_set_callbacks(c->streams[1], &callbacks, c);
  return 0;
}
