/* Injected failures: pipe2, open, fork (clone), pidfd_open, waitpid, kill,
 * and every allocation of a spawn. Each must end in a clean error code
 * with no child, no descriptor and no memory left behind, and the loop
 * must still work afterwards. */
#include "proc_test.h"

/* A spawn with all three stdio pipes, expected to fail with err. */
static void spawn_fails(eddy_loop *loop, int err) {
  life l = {0};
  const char *argv[] = {"/bin/cat", NULL};
  eddy_process_options o = life_options(&l, argv);
  o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &l.in};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &l.p), err);
  cr_assert(l.p == NULL && l.in == NULL && l.out == NULL && l.err == NULL);
}

/* The loop still spawns, and the child runs to its end. */
static void still_works(eddy_loop *loop) {
  life l = {0};
  life_run_sh(loop, &l, "echo ok; exit 9");
  EXPECT_STR(l.out_buf, "ok\n");
  EXPECT_EQ(l.exit_status, 9);
  eddy_process_close(l.p);
}

static void check_clean(eddy_loop *loop, int fds) {
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(count_fds(), fds);
  EXPECT_EQ(no_children(), 1);
}

Test(proc_faults, each_pipe2_failing_leaves_nothing) {
  eddy_loop *loop = test_loop();
  int fds = count_fds();
  for (uint64_t n = 1; n <= 3; n++) {
    eddy__fault_fail_nth(EDDY__SYS_PIPE2, n, EMFILE);
    spawn_fails(loop, -EMFILE);
    check_clean(loop, fds);
  }
  eddy__fault_reset();
  still_works(loop);
  check_clean(loop, fds);
  test_finish(loop);
}

Test(proc_faults, socketpair_failing_leaves_nothing) {
  eddy_loop *loop = test_loop();
  eddy_stream *s = NULL;
  eddy_process *p = NULL;
  eddy_process_options o = {.file = "/bin/true"};
  int fds = count_fds();
  o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &s};
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_SOCKETPAIR, .stream = &s};
  eddy__fault_fail_nth(EDDY__SYS_SOCKETPAIR, 1, EMFILE);
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EMFILE);
  cr_assert(p == NULL && s == NULL);
  check_clean(loop, fds);
  test_finish(loop);
}

Test(proc_faults, dev_null_failing_to_open) {
  eddy_loop *loop = test_loop();
  eddy_process *p = NULL;
  eddy_process_options o = {.file = "/bin/true"};
  int fds = count_fds();
  eddy__fault_fail_nth(EDDY__SYS_OPEN, 1, ENFILE);
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -ENFILE);
  check_clean(loop, fds);
  test_finish(loop);
}

Test(proc_faults, fork_eagain_and_enomem_are_returned_and_the_loop_survives) {
  eddy_loop *loop = test_loop();
  int fds = count_fds();
  eddy__fault_fail_nth(EDDY__SYS_FORK, 1, EAGAIN);
  spawn_fails(loop, -EAGAIN);
  check_clean(loop, fds);
  eddy__fault_fail_nth(EDDY__SYS_FORK, 1, ENOMEM);
  spawn_fails(loop, -ENOMEM);
  check_clean(loop, fds);
  still_works(loop);
  check_clean(loop, fds);
  test_finish(loop);
}

/* A kernel without pidfd: reaping falls back to SIGCHLD. */
Test(proc_faults, pidfd_open_failing_falls_back_to_sigchld) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy__fault_fail_after(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  life_run_sh(loop, &l, "echo ok; exit 9");
  EXPECT_EQ(l.exit_status, 9);
  EXPECT_STR(l.out_buf, "ok\n");
  EXPECT_GE(eddy__fault_calls(EDDY__SYS_PIDFD_OPEN), 1);
  eddy_process_close(l.p);
  eddy__fault_reset();
  test_finish(loop);
  EXPECT_EQ(no_children(), 1);
}

static int is_zombie(void *p) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat",
           (int)eddy_process_pid((eddy_process *)p));
  return test_proc_state(path) == 'Z';
}

/* A child that ends at once, before the SIGCHLD handler is in place, is
 * still seen (eddy raises one SIGCHLD itself to cover that window). */
Test(proc_faults, sigchld_fallback_sees_a_child_that_ended_at_once) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy_process_options o = {.file = "/bin/true",
                            .exit_cb = life_exit,
                            .arg = &l};
  eddy__fault_fail_after(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  EXPECT_OK(life_spawn(loop, &l, &o));
  /* It has ended (a zombie) before the loop runs at all. */
  cr_assert(test_wait_until(is_zombie, l.p, 10000), "the child never ended");
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.exits, 1);
  eddy_process_close(l.p);
  eddy__fault_reset();
  test_finish(loop);
}

/* Neither pidfd nor a SIGCHLD handler: the child could never be reaped,
 * so the spawn kills it, reaps it and fails. */
Test(proc_faults, no_way_to_reap_fails_the_spawn_without_a_zombie) {
  int fds = count_fds();
  eddy_loop *loop = test_loop();
  eddy__fault_fail_after(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  eddy__fault_fail_nth(EDDY__SYS_SIGACTION, 1, EINVAL);
  spawn_fails(loop, -EINVAL);
  eddy__fault_reset();
  EXPECT_EQ(no_children(), 1);
  test_finish(loop);
  /* Only the signal handler's process-wide lock (a pipe) remains. */
  EXPECT_EQ(count_fds(), fds + 2);
}

Test(proc_faults, waitpid_eintr_is_retried) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy__fault_fail_nth(EDDY__SYS_WAITPID, 1, EINTR);
  life_run_sh(loop, &l, "exit 6");
  EXPECT_EQ(l.exit_status, 6);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WAITPID), 2);
  eddy_process_close(l.p);
  test_finish(loop);
  EXPECT_EQ(no_children(), 1);
}

/* waitpid says the child is not ours (something else reaped it): the exit
 * callback reports -ECHILD, once, and eddy lets go of the pid. */
Test(proc_faults, waitpid_echild_is_reported_once) {
  eddy_loop *loop = test_loop();
  life l = {0};
  pid_t pid;
  eddy__fault_fail_nth(EDDY__SYS_WAITPID, 1, ECHILD);
  life_run_sh(loop, &l, "exit 6");
  EXPECT_EQ(l.exit_status, -ECHILD);
  EXPECT_EQ(l.term_signal, 0);
  pid = eddy_process_pid(l.p);
  eddy_process_close(l.p);
  test_finish(loop);
  /* The child is still a zombie: eddy did not reap what it said it could
   * not; the test does. */
  EXPECT_EQ(waitpid(pid, NULL, 0), pid);
}

Test(proc_faults, kill_failing_is_reported) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_spawn_sleeper(loop, &l);
  eddy__fault_fail_nth(EDDY__SYS_KILL, 1, EPERM);
  EXPECT_EQ(eddy_process_kill(l.p, SIGTERM), -EPERM);
  eddy__fault_fail_nth(EDDY__SYS_KILL, 1, EPERM);
  EXPECT_EQ(eddy_process_terminate(l.p, 10 * MS), -EPERM);
  EXPECT_OK(eddy_process_terminate(l.p, 10 * MS));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.term_signal, SIGTERM);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* The escalation timer is part of the process: terminate allocates
 * nothing, unless the loop's timer heap must grow. */
Test(proc_faults, terminate_allocates_nothing_for_its_timer) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy_timer *warm;
  long live;
  life_spawn_sleeper(loop, &l);
  EXPECT_OK(eddy_timer_new(loop, NULL, NULL, &warm));
  EXPECT_OK(eddy_timer_start(warm, EDDY_NSEC_PER_SEC, 0)); /* heap room */
  eddy_timer_close(warm);
  live = eddy__alloc_live();
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_OK(eddy_process_terminate(l.p, 10 * MS));
  EXPECT_EQ(eddy__alloc_live(), live);
  eddy__fault_reset();
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.term_signal, SIGTERM);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(proc_faults, terminate_when_the_timer_heap_cannot_grow_sends_nothing) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_spawn_sleeper(loop, &l);
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_process_terminate(l.p, 10 * MS), -ENOMEM);
  eddy__fault_reset();
  EXPECT_OK(eddy_process_kill(l.p, 0)); /* still running */
  EXPECT_OK(eddy_process_kill(l.p, SIGKILL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.term_signal, SIGKILL);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* SQLite's way: fail the Nth allocation of a spawn with three pipes, for
 * N = 1, 2, ... until the spawn succeeds. */
Test(proc_faults, every_allocation_failing_in_turn) {
  eddy_loop *loop = test_loop();
  int fds = count_fds();
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC, EDDY__SYS_REALLOC};
  for (size_t k = 0; k < 3; k++) {
    for (uint64_t n = 1;; n++) {
      life l = {0};
      const char *argv[] = {"/bin/cat", NULL};
      eddy_process_options o = life_options(&l, argv);
      int err;
      o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &l.in};
      eddy__fault_fail_nth(kinds[k], n, ENOMEM);
      err = eddy_process_spawn(loop, &o, &l.p);
      eddy__fault_reset();
      if (err == 0) {
        EXPECT_OK(eddy_stream_shutdown(l.in));
        eddy_stream_set_callbacks(l.out, &life_out_cb, &l);
        eddy_stream_set_callbacks(l.err, &life_err_cb, &l);
        EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
        EXPECT_EQ(l.exits, 1);
        eddy_process_close(l.p);
        check_clean(loop, fds);
        break;
      }
      EXPECT_EQ(err, -ENOMEM);
      check_clean(loop, fds);
      cr_assert(n < 100);
    }
  }
  test_finish(loop);
}
