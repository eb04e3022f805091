/* The Deferred forms of core and proc: sleep on the fake clock, work on
 * the thread pool (a value, an error, cancelled while queued and while
 * running), a process run to completion, and waiting for a child's
 * exit. */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>

#include "async_test.h"

TestSuite(forms_core, .init = async_setup, .fini = async_teardown);

/* ---- Sleep ------------------------------------------------------------------------- */

Test(forms_core, sleep_fires_exactly_when_the_fake_clock_gets_there) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_sleep(loop, 100 * MS, &d));
  watch_result(d, &res);
  EXPECT_OK(eddy_loop_advance(loop, 99 * MS));
  EXPECT_EQ(res.fired, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1 * MS));
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, 0);
  EXPECT_NULL(res.ptr);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_core, a_cancelled_sleep_stops_its_timer) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_sleep(loop, 100 * MS, &d));
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_OK(eddy_loop_advance(loop, 200 * MS)); /* nothing fires */
  EXPECT_EQ(res.fired, 1);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_core, a_sleep_with_a_shorter_timeout_times_out) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_sleep(loop, 100 * MS, &d));
  EXPECT_OK(eddy_deferred_set_timeout(d, 40 * MS));
  watch_result(d, &res);
  EXPECT_OK(eddy_loop_advance(loop, 40 * MS));
  EXPECT_EQ(res.code, -ETIMEDOUT);
  EXPECT_STR(res.detail, "timed out after 40 ms");
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_core, sleep_on_a_real_clock_keeps_the_loop_running_until_it_fires) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_sleep(loop, 5 * MS, &d));
  watch_result(d, &res);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, 0);
  eddy_deferred_free(d);
  test_finish(loop);
}

/* ---- Work ---------------------------------------------------------------------------- */

typedef struct job_arg {
  int input;
  atomic_int ran, started;
  int gate[2]; /* a pipe: the job waits until it is readable (bounded) */
  int frees;
} job_arg;

static int square(void *arg, void **value) {
  job_arg *a = arg;
  atomic_fetch_add(&a->ran, 1);
  if (a->input < 0)
    return -EDOM;
  *value = value_new(a->input * a->input);
  return 0;
}

static int gated(void *arg, void **value) {
  job_arg *a = arg;
  struct pollfd p = {.fd = a->gate[0], .events = POLLIN};
  atomic_store(&a->started, 1);
  (void)poll(&p, 1, 10000);
  return square(arg, value);
}

static void arg_free(void *arg) {
  ((job_arg *)arg)->frees++;
}

Test(forms_core, work_fires_with_the_value_the_pool_thread_made) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  job_arg a = {.input = 7};
  result res = {0};
  EXPECT_OK(eddy_deferred_work(loop, square, &a, arg_free, value_free, &d));
  watch_int(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(res.value, 49);
  EXPECT_EQ(a.frees, 1);
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 1);
  test_finish(loop);
}

Test(forms_core, work_that_returns_an_error_fails_with_it) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  job_arg a = {.input = -1};
  result res = {0};
  EXPECT_OK(eddy_deferred_work(loop, square, &a, NULL, value_free, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, -EDOM);
  cr_assert(strncmp(res.detail, "work: ", 6) == 0, "%s", res.detail);
  eddy_deferred_free(d);
  test_finish(loop);
}

static int started(void *arg) {
  return atomic_load(&((job_arg *)arg)->started);
}

/* One pool thread: the first job holds it, the second waits in the queue
 * and is cancelled there (never runs); the first is cancelled while it
 * runs, and its value is freed when it ends. */
Test(forms_core, work_cancelled_queued_never_runs_and_running_drops_its_value) {
  eddy_loop_options o = {.threadpool_size = 1};
  eddy_loop *loop = NULL;
  eddy_deferred *first = NULL, *second = NULL;
  job_arg a = {.input = 3}, b = {.input = 4};
  result ra = {0}, rb = {0};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  EXPECT_OK(pipe(a.gate));
  EXPECT_OK(eddy_deferred_work(loop, gated, &a, arg_free, value_free, &first));
  EXPECT_OK(
      eddy_deferred_work(loop, square, &b, arg_free, value_free, &second));
  watch_result(first, &ra);
  watch_result(second, &rb);
  cr_assert(test_wait_until(started, &a, 10000));
  eddy_deferred_cancel(second);
  EXPECT_EQ(rb.code, -ECANCELED);
  EXPECT_STR(rb.detail, "work: cancelled");
  eddy_deferred_cancel(first);
  EXPECT_EQ(ra.code, -ECANCELED);
  EXPECT_EQ(write(a.gate[1], "x", 1), 1);
  eddy_deferred_free(first);
  eddy_deferred_free(second);
  test_finish(loop); /* waits for the running job */
  EXPECT_EQ(atomic_load(&a.ran), 1);
  EXPECT_EQ(atomic_load(&b.ran), 0);
  EXPECT_EQ(a.frees, 1);
  EXPECT_EQ(b.frees, 1);
  EXPECT_EQ(values_freed, 1); /* the running job's value */
  close(a.gate[0]);
  close(a.gate[1]);
}

/* ---- Processes -------------------------------------------------------------------------- */

static const char *const sh_output[] = {"sh", "-c",
                                        "echo out; echo err >&2; exit 3", NULL};

Test(forms_core, process_output_gives_both_streams_and_the_exit_status) {
  eddy_loop *loop = test_loop();
  eddy_process_options o = {.file = "sh", .argv = sh_output};
  eddy_deferred *d = NULL;
  result res = {0};
  const eddy_process_result *r;
  EXPECT_OK(eddy_deferred_process_output(loop, &o, &d));
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, 0);
  r = eddy_deferred_value(d);
  EXPECT_STR(r->out, "out\n");
  EXPECT_EQ(r->out_len, 4);
  EXPECT_STR(r->err, "err\n");
  EXPECT_EQ(r->exit_status, 3); /* a value, not an error */
  EXPECT_EQ(r->term_signal, 0);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_core, a_program_that_cannot_run_fails_with_its_name) {
  eddy_loop *loop = test_loop();
  eddy_process_options o = {.file = "/nonexistent/prog"};
  eddy_deferred *d = NULL;
  eddy_process *p = (eddy_process *)1;
  result res = {0};
  EXPECT_OK(eddy_deferred_process_output(loop, &o, &d));
  watch_result(d, &res);
  EXPECT_EQ(res.code, -ENOENT);
  EXPECT_STR(res.detail, "run /nonexistent/prog: No such file or directory");
  eddy_deferred_free(d);
  EXPECT_OK(eddy_deferred_spawn(loop, &o, &p, &d));
  EXPECT_NULL(p);
  res = (result){0};
  watch_result(d, &res);
  EXPECT_EQ(res.code, -ENOENT);
  EXPECT_STR(res.detail, "spawn /nonexistent/prog: No such file or directory");
  eddy_deferred_free(d);
  test_finish(loop);
}

/* cat with stdin on a pipe the test holds: it runs until the test closes
 * the pipe. */
typedef struct held {
  int fds[2];
  const char *argv[2];
  eddy_process_options o;
} held;

static void held_init(held *h) {
  EXPECT_OK(pipe2(h->fds, O_CLOEXEC));
  h->argv[0] = "cat";
  h->argv[1] = NULL;
  h->o = (eddy_process_options){.file = "cat", .argv = h->argv};
  h->o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_FD, .fd = h->fds[0]};
}

Test(forms_core, a_cancelled_process_output_fails_at_once_and_cleans_up_later) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  held h;
  held_init(&h);
  EXPECT_OK(eddy_deferred_process_output(loop, &h.o, &d));
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_STR(res.detail, "run cat: cancelled");
  eddy_deferred_free(d);
  close(h.fds[0]);
  close(h.fds[1]); /* cat ends; its output is dropped */
  /* Until idle: the child's exit and the pipes' ends, and with them the
   * abandoned producer's release (test_finish's close-all would cut the
   * collection short). */
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_finish(loop);
}

Test(forms_core, spawn_fires_with_the_exit_status) {
  eddy_loop *loop = test_loop();
  static const char *const argv[] = {"sh", "-c", "exit 7", NULL};
  eddy_process_options o = {.file = "sh", .argv = argv};
  eddy_deferred *d = NULL;
  eddy_process *p = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_spawn(loop, &o, &p, &d));
  cr_assert(p != NULL);
  EXPECT_GT(eddy_process_pid(p), 0);
  watch_result(d, &res);
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(((eddy_process_result *)res.ptr)->exit_status, 7);
  EXPECT_NULL(((eddy_process_result *)res.ptr)->out);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(forms_core, a_lent_handle_can_kill_the_child_it_waits_for) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  eddy_process *p = NULL;
  result res = {0};
  held h;
  held_init(&h);
  EXPECT_OK(eddy_deferred_spawn(loop, &h.o, &p, &d));
  watch_result(d, &res);
  EXPECT_OK(eddy_process_kill(p, SIGTERM));
  cr_assert(test_run_until(loop, &res.fired));
  EXPECT_EQ(((eddy_process_result *)res.ptr)->term_signal, SIGTERM);
  eddy_deferred_free(d);
  close(h.fds[0]);
  close(h.fds[1]);
  test_finish(loop);
}

Test(forms_core, a_cancelled_wait_releases_the_handle_and_the_child_is_reaped) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  eddy_process *p = NULL;
  result res = {0};
  held h;
  held_init(&h);
  EXPECT_OK(eddy_deferred_spawn(loop, &h.o, &p, &d));
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_STR(res.detail, "wait for cat: cancelled");
  eddy_deferred_free(d);
  close(h.fds[0]);
  close(h.fds[1]);
  test_finish(loop); /* the loop runs until the child is reaped */
}
