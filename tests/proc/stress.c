/* Volume and numbers: 100 MB through a child while feeding it, a thousand
 * spawns, two loops in two threads spawning at once. */
#include <pthread.h>

#include "proc_test.h"

#define TOTAL (100u << 20)
#define CHUNK (256u << 10)

/* Feeds cat TOTAL bytes while reading them back: both directions must flow
 * at once, and flow control on one stream must not stall the other. The
 * bytes follow a pattern of prime period (251), so that a lost, repeated
 * or reordered block shows; the expected bytes at any offset are one
 * window of a prepared buffer, compared with memcmp. */
#define PERIOD 251

typedef struct pump {
  eddy_stream *in, *out;
  size_t sent, received;
  int mismatch, out_closed, shut;
  char pattern[CHUNK + PERIOD];
} pump;

static const char *expected_at(pump *p, size_t offset) {
  return p->pattern + offset % PERIOD;
}

static void feed(pump *p) {
  while (p->sent < TOTAL && !eddy_stream_over_high(p->in)) {
    size_t n = TOTAL - p->sent < CHUNK ? TOTAL - p->sent : CHUNK;
    EXPECT_OK(eddy_stream_write(p->in, expected_at(p, p->sent), n));
    p->sent += n;
  }
  if (p->sent == TOTAL && !p->shut) {
    p->shut = 1;
    EXPECT_OK(eddy_stream_shutdown(p->in));
  }
}

static void in_drain(eddy_stream *s, void *arg) {
  (void)s;
  feed(arg);
}

static void in_closed(eddy_stream *s, int st, const char *d, void *arg) {
  (void)s, (void)d;
  EXPECT_EQ(st, 0);
  ((pump *)arg)->in = NULL;
}

static void out_data(eddy_stream *s, const char *d, size_t n, void *arg) {
  pump *p = arg;
  (void)s;
  if (n > CHUNK || memcmp(d, expected_at(p, p->received), n) != 0)
    p->mismatch++;
  p->received += n;
}

static void out_closed(eddy_stream *s, int st, const char *d, void *arg) {
  (void)s, (void)d;
  EXPECT_EQ(st, 0);
  ((pump *)arg)->out_closed = 1;
}

Test(stress, hundred_megabytes_through_stdout_while_stdin_is_written,
     .timeout = 60) {
  eddy_loop *loop = test_loop();
  static pump p;
  life l = {0};
  const char *argv[] = {"/bin/cat", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  eddy_stream_callbacks in_cb = {.drain = in_drain, .close = in_closed};
  eddy_stream_callbacks out_cb = {.data = out_data, .close = out_closed};
  for (size_t i = 0; i < sizeof p.pattern; i++)
    p.pattern[i] = (char)(i % PERIOD * 7);
  o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &p.in};
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &p.out};
  EXPECT_OK(eddy_process_spawn(loop, &o, &l.p));
  eddy_stream_set_callbacks(p.in, &in_cb, &p);
  eddy_stream_set_callbacks(p.out, &out_cb, &p);
  feed(&p);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.sent, TOTAL);
  EXPECT_EQ(p.received, TOTAL);
  EXPECT_EQ(p.mismatch, 0);
  EXPECT_EQ(p.out_closed, 1);
  EXPECT_EQ(l.exits, 1);
  EXPECT_EQ(l.exit_status, 0);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* ---- A thousand spawns ---- */

#define SPAWNS 1000
#define IN_FLIGHT 16

typedef struct batch {
  eddy_loop *loop;
  int started, done, failed, nonzero;
  const char *program;
} batch;

static void start_one(batch *b);

/* Counts one exit and lets the handle go. */
static void count_exit(batch *b, eddy_process *p, int status, int sig) {
  b->done++;
  if (status != 0 || sig != 0)
    b->nonzero++;
  eddy_process_close(p);
}

static void one_done(eddy_process *p, int status, int sig, void *arg) {
  batch *b = arg;
  count_exit(b, p, status, sig);
  if (b->started < SPAWNS)
    start_one(b);
}

static void start_one(batch *b) {
  const char *argv[] = {b->program, NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = one_done,
                            .arg = b};
  eddy_process *p;
  b->started++;
  if (eddy_process_spawn(b->loop, &o, &p) != 0)
    b->failed++;
}

static void run_batch(batch *b) {
  for (int i = 0; i < IN_FLIGHT; i++)
    start_one(b);
  EXPECT_EQ(eddy_loop_run(b->loop, EDDY_RUN_UNTIL_IDLE), 0);
}

Test(stress, thousand_spawns_leave_no_zombie_and_no_descriptor, .timeout = 60) {
  batch b = {.loop = test_loop(), .program = "/bin/true"};
  int fds = count_fds();
  run_batch(&b);
  EXPECT_EQ(b.failed, 0);
  EXPECT_EQ(b.done, SPAWNS);
  EXPECT_EQ(b.nonzero, 0);
  EXPECT_EQ(no_children(), 1);
  EXPECT_EQ(count_fds(), fds);
  test_finish(b.loop);
}

/* The same on SIGCHLD, as on a kernel without pidfd. */
Test(stress, thousand_spawns_reaped_on_sigchld, .timeout = 60) {
  int fds = count_fds();
  batch b = {.loop = test_loop(), .program = "/bin/true"};
  eddy__fault_fail_after(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  run_batch(&b);
  eddy__fault_reset();
  EXPECT_EQ(b.failed, 0);
  EXPECT_EQ(b.done, SPAWNS);
  EXPECT_EQ(b.nonzero, 0);
  EXPECT_EQ(no_children(), 1);
  test_finish(b.loop);
  /* The loop's signal pipe went with the loop; the process-wide lock of
   * the signal handler (a pipe) stays for the life of the process. */
  EXPECT_EQ(count_fds(), fds + 2);
}

/* ---- Two loops, two threads ---- */

typedef struct worker {
  batch b;
} worker;

#define THREAD_SPAWNS 200

static void thread_done(eddy_process *p, int status, int sig, void *arg) {
  count_exit(arg, p, status, sig);
}

static void *spawner(void *arg) {
  worker *w = arg;
  const char *argv[] = {"/bin/sh", "-c", "exit 0", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = thread_done,
                            .arg = &w->b};
  eddy_loop_new(NULL, &w->b.loop);
  for (int i = 0; i < THREAD_SPAWNS; i++) {
    eddy_process *p;
    w->b.started++;
    if (eddy_process_spawn(w->b.loop, &o, &p) != 0)
      w->b.failed++;
    (void)eddy_loop_run(w->b.loop, EDDY_RUN_NOWAIT);
  }
  (void)eddy_loop_run(w->b.loop, EDDY_RUN_UNTIL_IDLE);
  return NULL;
}

static void two_threads(int fallback) {
  worker w[2] = {{{0}}, {{0}}};
  pthread_t t[2];
  if (fallback)
    eddy__fault_fail_after(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  for (int i = 0; i < 2; i++)
    cr_assert(pthread_create(&t[i], NULL, spawner, &w[i]) == 0);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  eddy__fault_reset();
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(w[i].b.failed, 0);
    EXPECT_EQ(w[i].b.done, THREAD_SPAWNS);
    EXPECT_EQ(w[i].b.nonzero, 0);
    EXPECT_OK(eddy_loop_free(w[i].b.loop));
  }
  EXPECT_EQ(no_children(), 1);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(stress, two_loops_in_two_threads_spawn_at_once, .timeout = 60) {
  two_threads(0);
}

/* On SIGCHLD every loop hears every child's end; each must reap only its
 * own, and none may be lost. */
Test(stress, two_loops_in_two_threads_on_sigchld, .timeout = 60) {
  two_threads(1);
}
