/* coro_proc.c: running a program to completion with a waiting call.
 *
 * As eddy_process_output, three things must end: the exit and end of file
 * on each of the two pipes. The state is on the heap: a cancelled
 * coroutine kills the child and goes, and the last of the three frees the
 * state.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "async/coro.h"
#include "eddy/buf.h"
#include "sys/alloc.h"

typedef struct running {
  eddy_coro *co; /* NULL once the coroutine gave up */
  eddy_process *p;
  eddy_stream *pipes[2];
  eddy_buf out[2];
  int pending; /* the exit and the two pipes */
  int exited;  /* the exit was counted */
  int closed;  /* p was closed */
  int status;  /* 0, or -ENOMEM when output was lost */
  int exit_status, term_signal;
} running;

static void finished(running *r) {
  if (--r->pending > 0)
    return;
  if (!r->closed)
    eddy_process_close(r->p);
  if (r->co) {
    eddy__coro_wake(r->co, 0, 0);
    return; /* the coroutine takes the output and frees r */
  }
  eddy_buf_free(&r->out[0]);
  eddy_buf_free(&r->out[1]);
  eddy__free(r);
}

static int which(running *r, eddy_stream *s) {
  return r->pipes[0] == s ? 0 : 1;
}

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  running *r = arg;
  if (r->co == NULL)
    return;
  if (eddy_buf_append(&r->out[which(r, s)], data, len) != 0) {
    r->status = -ENOMEM;
    eddy_process_kill(r->p, SIGKILL);
    eddy_stream_abort(s);
  }
}

static void on_eof(eddy_stream *s, void *arg) {
  (void)arg;
  eddy_stream_close(s);
}

static void on_close(eddy_stream *s, int status, const char *detail,
                     void *arg) {
  running *r = arg;
  (void)status;
  (void)detail;
  r->pipes[which(r, s)] = NULL;
  finished(r);
}

static const eddy_stream_callbacks pipe_callbacks = {on_data, on_eof, NULL,
                                                     on_close};

static void on_exit(eddy_process *p, int exit_status, int term_signal,
                    void *arg) {
  running *r = arg;
  (void)p;
  r->exit_status = exit_status;
  r->term_signal = term_signal;
  r->exited = 1;
  finished(r);
}

/* The coroutine is cancelled: the child is killed, and its handle closed
 * at once rather than on its exit, because eddy_loop_close_all (which
 * cancels the coroutine) may have closed it already, and a closed
 * process's exit callback is never called: the exit counts as done now. The
 * loop still reaps the child. The last of the three frees r. */
static void give_up(void *arg) {
  running *r = arg;
  r->co = NULL;
  eddy_process_kill(r->p, SIGKILL);
  for (int i = 0; i < 2; i++)
    if (r->pipes[i])
      eddy_stream_abort(r->pipes[i]); /* their close callbacks come later */
  if (!r->exited) {
    eddy_process_close(r->p);
    r->closed = 1;
    r->exited = 1;
    finished(r); /* may free r, if the pipes had closed already */
  }
}

/* Moves b's bytes into a NUL-terminated string of eddy's allocator. */
static char *take(eddy_buf *b, size_t *len) {
  char *text;
  *len = eddy_buf_len(b);
  text = eddy__malloc(*len + 1);
  if (text == NULL)
    return NULL;
  if (*len > 0)
    memcpy(text, eddy_buf_data(b), *len);
  text[*len] = '\0';
  return text;
}

static int collect(running *r, eddy_coro_output *result) {
  int err = r->status;
  memset(result, 0, sizeof *result);
  if (err == 0) {
    result->out = take(&r->out[0], &result->out_len);
    result->err = take(&r->out[1], &result->err_len);
    if (result->out == NULL || result->err == NULL) {
      eddy_coro_output_free(result);
      err = -ENOMEM;
    }
    result->exit_status = r->exit_status;
    result->term_signal = r->term_signal;
  }
  eddy_buf_free(&r->out[0]);
  eddy_buf_free(&r->out[1]);
  eddy__free(r);
  return err;
}

int eddy_coro_run(eddy_coro *co, const eddy_process_options *o,
                  eddy_coro_output *result) {
  eddy_process_options opts;
  running *r;
  int err = eddy__coro_check(co);
  if (err != 0)
    return err;
  if ((r = eddy__calloc(1, sizeof *r)) == NULL)
    return -ENOMEM;
  eddy_buf_init(&r->out[0], 0);
  eddy_buf_init(&r->out[1], 0);
  opts = *o;
  opts.stdio[1] = (eddy_stdio){EDDY_STDIO_PIPE, -1, &r->pipes[0]};
  opts.stdio[2] = (eddy_stdio){EDDY_STDIO_PIPE, -1, &r->pipes[1]};
  opts.exit_cb = on_exit;
  opts.arg = r;
  err = eddy_process_spawn(co->loop, &opts, &r->p);
  if (err != 0) {
    eddy__free(r);
    return err;
  }
  r->co = co;
  r->pending = 3;
  eddy_stream_set_callbacks(r->pipes[0], &pipe_callbacks, r);
  eddy_stream_set_callbacks(r->pipes[1], &pipe_callbacks, r);
  err = eddy__coro_wait(co, give_up, r);
  if (err != 0) /* cancelled: the last callback frees r */
    return err;
  return collect(r, result);
}

void eddy_coro_output_free(eddy_coro_output *result) {
  eddy__free(result->out);
  eddy__free(result->err);
  result->out = result->err = NULL;
}
