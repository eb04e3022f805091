/* output.c: eddy_process_output, a program's stdout, stderr and exit
 * status delivered together.
 *
 * Three things must end before the callback: the exit, and end of file on
 * each pipe. They may end in any order (a grandchild can hold a pipe open
 * after the child has exited), so a count of what is still open decides. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "proc/proc.h"
#include "sys/alloc.h"

typedef struct sink {
  char *data;
  size_t len, cap;
} sink;

typedef struct collect {
  eddy_process_output_cb cb;
  void *arg;
  eddy_process *p;
  eddy_stream *streams[2];
  sink out[2]; /* stdout, stderr */
  int pending; /* the exit and the two pipes */
  int status, exit_status, term_signal;
} collect;

static void finish(collect *c) {
  static char empty[1];
  if (--c->pending > 0)
    return;
  c->cb(c->out[0].data ? c->out[0].data : empty, c->out[0].len,
        c->out[1].data ? c->out[1].data : empty, c->out[1].len, c->status,
        c->exit_status, c->term_signal, c->arg);
  eddy__free(c->out[0].data);
  eddy__free(c->out[1].data);
  eddy_process_close(c->p);
  eddy__free(c);
}

/* Keeps len bytes, always leaving room for the terminating NUL. */
static int keep(sink *s, const char *data, size_t len) {
  void *arr = s->data;
  if (eddy__grow(&arr, &s->cap, s->len + len + 1, 1) != 0)
    return -ENOMEM;
  s->data = arr;
  memcpy(s->data + s->len, data, len);
  s->len += len;
  s->data[s->len] = '\0';
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
  oo = *o;
  oo.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &c->streams[0]};
  oo.stdio[2] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &c->streams[1]};
  oo.exit_cb = child_exited;
  oo.arg = c;
  if ((err = eddy_process_spawn(loop, &oo, &c->p)) != 0) {
    eddy__free(c);
    return err;
  }
  eddy_stream_set_callbacks(c->streams[0], &callbacks, c);
  eddy_stream_set_callbacks(c->streams[1], &callbacks, c);
  return 0;
}
