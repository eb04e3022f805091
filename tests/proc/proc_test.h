/* proc_test.h: what the subprocess tests share: a record of one child's
 * life (exit, output, end of output, in the order they came), spawning
 * helpers, and checks for zombies and descriptors. */
#ifndef EDDY_TESTS_PROC_TEST_H
#define EDDY_TESTS_PROC_TEST_H

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define MS EDDY_NSEC_PER_MSEC

/* One child: its exit, what it wrote, and the order of events. */
typedef struct life {
  eddy_process *p;
  eddy_stream *in, *out, *err;
  int exits, exit_status, term_signal;
  char out_buf[1 << 14], err_buf[1 << 14];
  size_t out_len, err_len;
  int out_eof, err_eof;           /* their stream was closed */
  int seq, exit_seq, out_eof_seq; /* order of the exit and stdout's end */
  int close_in_exit;              /* close the handle from the exit callback */
} life;

static inline void life_exit(eddy_process *p, int status, int sig, void *arg) {
  life *l = arg;
  l->exits++;
  l->exit_status = status;
  l->term_signal = sig;
  l->exit_seq = ++l->seq;
  if (l->close_in_exit)
    eddy_process_close(p);
}

static inline void keep(char *buf, size_t cap, size_t *len, const char *d,
                        size_t n) {
  size_t room = cap - 1 - *len;
  memcpy(buf + *len, d, n < room ? n : room);
  *len += n < room ? n : room;
  buf[*len] = '\0';
}

static inline void life_out(eddy_stream *s, const char *d, size_t n,
                            void *arg) {
  life *l = arg;
  (void)s;
  keep(l->out_buf, sizeof l->out_buf, &l->out_len, d, n);
}

static inline void life_err(eddy_stream *s, const char *d, size_t n,
                            void *arg) {
  life *l = arg;
  (void)s;
  keep(l->err_buf, sizeof l->err_buf, &l->err_len, d, n);
}

static inline void life_out_closed(eddy_stream *s, int st, const char *d,
                                   void *arg) {
  life *l = arg;
  (void)s, (void)st, (void)d;
  l->out_eof = 1;
  l->out = NULL;
  l->out_eof_seq = ++l->seq;
}

static inline void life_err_closed(eddy_stream *s, int st, const char *d,
                                   void *arg) {
  life *l = arg;
  (void)s, (void)st, (void)d;
  l->err_eof = 1;
  l->err = NULL;
}

static inline void life_in_closed(eddy_stream *s, int st, const char *d,
                                  void *arg) {
  (void)s, (void)st, (void)d;
  ((life *)arg)->in = NULL;
}

static const eddy_stream_callbacks life_out_cb = {.data = life_out,
                                                  .close = life_out_closed};
static const eddy_stream_callbacks life_err_cb = {.data = life_err,
                                                  .close = life_err_closed};
static const eddy_stream_callbacks life_in_cb = {.close = life_in_closed};

/* Options for argv with stdout and stderr on pipes into l. */
static inline eddy_process_options life_options(life *l,
                                                const char *const *argv) {
  eddy_process_options o = {0};
  o.file = argv[0];
  o.argv = argv;
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &l->out};
  o.stdio[2] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &l->err};
  o.exit_cb = life_exit;
  o.arg = l;
  return o;
}

/* Spawns with o; hooks up whatever pipes it asked for. */
static inline int life_spawn(eddy_loop *loop, life *l,
                             eddy_process_options *o) {
  int err = eddy_process_spawn(loop, o, &l->p);
  if (err)
    return err;
  if (l->out)
    eddy_stream_set_callbacks(l->out, &life_out_cb, l);
  if (l->err)
    eddy_stream_set_callbacks(l->err, &life_err_cb, l);
  if (l->in)
    eddy_stream_set_callbacks(l->in, &life_in_cb, l);
  return 0;
}

/* A child that sleeps until it is signalled, with no pipes. */
static inline void life_spawn_sleeper(eddy_loop *loop, life *l) {
  const char *argv[] = {"/bin/sleep", "10", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = l};
  EXPECT_OK(life_spawn(loop, l, &o));
}

/* sh -c script, output into l, run until the exit and both ends. */
static inline void life_run_sh(eddy_loop *loop, life *l, const char *script) {
  const char *argv[] = {"/bin/sh", "-c", script, NULL};
  eddy_process_options o = life_options(l, argv);
  EXPECT_OK(life_spawn(loop, l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l->exits, 1);
}

/* 1 if this process has no child left, reaped or not. */
static inline int no_children(void) {
  return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static inline int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  cr_assert(d != NULL);
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own */
}

/* Runs the loop until cond or the deadline (ms of real time); bounded so
 * that a broken test fails instead of hanging. */
static inline void tick(eddy_timer *t, void *arg) {
  (void)t, (void)arg;
}

#define RUN_UNTIL(loop, cond, ms)                                              \
  do {                                                                         \
    eddy_timer *tick_;                                                         \
    int64_t until_ = eddy_loop_now(loop) + (int64_t)(ms)*MS;                   \
    EXPECT_OK(eddy_timer_new(loop, tick, NULL, &tick_));                       \
    EXPECT_OK(eddy_timer_start(tick_, 10 * MS, 10 * MS));                      \
    while (!(cond) && eddy_loop_now(loop) < until_)                            \
      (void)eddy_loop_run(loop, EDDY_RUN_ONCE);                                \
    eddy_timer_close(tick_);                                                   \
  } while (0)

#endif
