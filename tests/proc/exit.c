/* Exit and output: the exit callback, the order of exit and end of output,
 * kill and terminate with escalation, closing the handle, the host
 * program's own children, and eddy_process_output. */
#include "proc_test.h"

Test(exit, signal_that_ended_the_child_is_reported) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_run_sh(loop, &l, "kill -USR2 $$; sleep 5");
  EXPECT_EQ(l.exit_status, 0);
  EXPECT_EQ(l.term_signal, SIGUSR2);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(exit, kill_and_then_esrch_once_reaped) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_spawn_sleeper(loop, &l);
  EXPECT_OK(eddy_process_kill(l.p, 0));
  EXPECT_OK(eddy_process_kill(l.p, SIGTERM));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.exits, 1);
  EXPECT_EQ(l.term_signal, SIGTERM);
  EXPECT_EQ(eddy_process_kill(l.p, SIGTERM), -ESRCH);
  EXPECT_EQ(eddy_process_terminate(l.p, MS), -ESRCH);
  EXPECT_EQ(eddy_process_kill_group(l.p, SIGTERM), -EINVAL);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* A child that obeys SIGTERM ends by it, well before the timeout. */
Test(exit, terminate_ends_an_obedient_child_with_sigterm) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int64_t t0;
  life_spawn_sleeper(loop, &l);
  eddy_loop_update_time(loop);
  t0 = eddy_loop_now(loop);
  EXPECT_OK(eddy_process_terminate(l.p, 5000 * MS));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.term_signal, SIGTERM);
  eddy_loop_update_time(loop);
  EXPECT_LT(eddy_loop_now(loop) - t0, 4000 * MS);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* A child that ignores SIGTERM gets SIGKILL once the timeout passes, and
 * not before. */
Test(exit, terminate_escalates_to_sigkill_after_the_timeout) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/sh", "-c",
                        "trap '' TERM; echo ready; exec sleep 10", NULL};
  eddy_process_options o = life_options(&l, argv);
  int64_t t0;
  EXPECT_OK(life_spawn(loop, &l, &o));
  RUN_UNTIL(loop, l.out_len > 0, 5000);
  eddy_loop_update_time(loop);
  t0 = eddy_loop_now(loop);
  EXPECT_OK(eddy_process_terminate(l.p, 200 * MS));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.term_signal, SIGKILL);
  eddy_loop_update_time(loop);
  EXPECT_GE(eddy_loop_now(loop) - t0, 200 * MS);
  eddy_process_close(l.p);
  test_finish(loop);
}

static int gone_or_zombie(pid_t pid) {
  char path[64], line[256];
  FILE *f;
  int dead = 1;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return 1;
  if (fgets(line, sizeof line, f)) {
    char *close_paren = strrchr(line, ')');
    dead = close_paren && close_paren[2] == 'Z';
  }
  fclose(f);
  return dead;
}

static int gone_or_zombie_arg(void *pid) {
  return gone_or_zombie(*(pid_t *)pid);
}

/* 1 once pid runs sleep (the shell's exec is done) with SIGTERM ignored. */
static int ignores_term_in_sleep(void *arg) {
  char path[64], line[256];
  int in_sleep = 0, ignored = 0;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/status", (int)*(pid_t *)arg);
  if ((f = fopen(path, "r")) == NULL)
    return 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long mask;
    if (strcmp(line, "Name:\tsleep\n") == 0)
      in_sleep = 1;
    if (sscanf(line, "SigIgn: %llx", &mask) == 1)
      ignored = (mask >> (SIGTERM - 1)) & 1;
  }
  fclose(f);
  return in_sleep && ignored;
}

/* The leader of a group obeys SIGTERM but what it started does not: when
 * the leader ends, the rest of the group is killed at once, not left
 * running. */
Test(exit, terminate_of_a_group_leaves_nothing_running) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {
      "/bin/sh", "-c", "(trap '' TERM; exec sleep 30) & echo $!; exec sleep 30",
      NULL};
  eddy_process_options o = life_options(&l, argv);
  pid_t grandchild;
  o.flags = EDDY_PROCESS_NEW_GROUP;
  EXPECT_OK(life_spawn(loop, &l, &o));
  RUN_UNTIL(loop, strchr(l.out_buf, '\n') != NULL, 5000);
  grandchild = atoi(l.out_buf);
  EXPECT_GT(grandchild, 0);
  /* The grandchild ignores SIGTERM once it has run sleep. */
  cr_assert(test_wait_until(ignores_term_in_sleep, &grandchild, 5000),
            "the grandchild %d never ignored SIGTERM", (int)grandchild);
  EXPECT_OK(eddy_process_terminate(l.p, 10000 * MS));
  RUN_UNTIL(loop, l.exits == 1, 5000);
  EXPECT_EQ(l.term_signal, SIGTERM);
  EXPECT_EQ(test_wait_until(gone_or_zombie_arg, &grandchild, 2000), 1);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* The child closes its stdout and goes on running: the end of output comes
 * first, the exit later. */
Test(exit, child_closes_stdout_early_and_keeps_running) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_run_sh(loop, &l, "echo bye; exec 1>&-; sleep 0.3; exit 3");
  EXPECT_STR(l.out_buf, "bye\n");
  EXPECT_EQ(l.exit_status, 3);
  EXPECT_EQ(l.out_eof, 1);
  EXPECT_LT(l.out_eof_seq, l.exit_seq);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* The child exits while a grandchild keeps the pipe: the exit comes first,
 * and the grandchild's output still arrives, then the end. */
Test(exit, child_exits_while_a_grandchild_keeps_the_pipe_open) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_run_sh(loop, &l, "(sleep 0.3; echo late) & echo early; exit 0");
  EXPECT_EQ(l.exit_status, 0);
  EXPECT_STR(l.out_buf, "early\nlate\n");
  EXPECT_EQ(l.out_eof, 1);
  EXPECT_LT(l.exit_seq, l.out_eof_seq);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(exit, closing_from_the_exit_callback) {
  eddy_loop *loop = test_loop();
  life l = {.close_in_exit = 1};
  life_run_sh(loop, &l, "exit 2");
  EXPECT_EQ(l.exit_status, 2);
  test_finish(loop);
}

/* Closed while running: no callback, but the child is still reaped when it
 * ends, so no zombie is left. */
Test(exit, closed_while_running_is_still_reaped) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/sleep", "0.2", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  EXPECT_OK(life_spawn(loop, &l, &o));
  eddy_process_close(l.p);
  eddy_process_close(l.p);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.exits, 0);
  EXPECT_EQ(no_children(), 1);
  test_finish(loop);
}

/* The host program forks a child of its own: eddy never reaps it, even
 * while reaping on SIGCHLD. */
static void host_child_untouched(int force_sigchld) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int status = 0;
  pid_t mine = fork();
  if (mine == 0)
    _exit(42);
  cr_assert(mine > 0);
  if (force_sigchld)
    eddy__fault_fail_after(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  life_run_sh(loop, &l, "sleep 0.1; exit 5");
  EXPECT_EQ(l.exit_status, 5);
  eddy_process_close(l.p);
  eddy__fault_reset();
  EXPECT_EQ(waitpid(mine, &status, 0), mine);
  EXPECT_EQ(WEXITSTATUS(status), 42);
  test_finish(loop);
}

Test(exit, host_programs_own_children_are_left_alone) {
  host_child_untouched(0);
}

Test(exit, host_programs_own_children_are_left_alone_with_sigchld) {
  host_child_untouched(1);
}

typedef struct got {
  int calls, status, exit_status, term_signal;
  char out[256], err[256];
  size_t out_len, err_len;
} got;

static void on_output(const char *out, size_t out_len, const char *err,
                      size_t err_len, int status, int exit_status,
                      int term_signal, void *arg) {
  got *g = arg;
  g->calls++;
  g->status = status;
  g->exit_status = exit_status;
  g->term_signal = term_signal;
  g->out_len = out_len;
  g->err_len = err_len;
  snprintf(g->out, sizeof g->out, "%s", out);
  snprintf(g->err, sizeof g->err, "%s", err);
}

Test(exit, output_and_status_together) {
  eddy_loop *loop = test_loop();
  got g = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 4",
                        NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv};
  EXPECT_OK(eddy_process_output(loop, &o, on_output, &g));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(g.calls, 1);
  EXPECT_EQ(g.status, 0);
  EXPECT_EQ(g.exit_status, 4);
  EXPECT_STR(g.out, "out\n");
  EXPECT_STR(g.err, "err\n");
  test_finish(loop);
}

/* The callback waits for the grandchild's output too. */
Test(exit, output_waits_for_the_end_of_both_pipes) {
  eddy_loop *loop = test_loop();
  got g = {0};
  const char *argv[] = {"/bin/sh", "-c",
                        "(sleep 0.2; echo late; echo e2 >&2) & echo early",
                        NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv};
  EXPECT_OK(eddy_process_output(loop, &o, on_output, &g));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(g.calls, 1);
  EXPECT_STR(g.out, "early\nlate\n");
  EXPECT_STR(g.err, "e2\n");
  test_finish(loop);
}

/* eddy_loop_close_all while the output is being collected: the pipes end,
 * the child is still reaped, the callback still runs once, and nothing
 * is left allocated (test_finish checks). */
Test(exit, output_survives_close_all) {
  eddy_loop *loop = test_loop();
  got g = {0};
  const char *argv[] = {"/bin/sh", "-c", "sleep 0.1; exit 3", NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv};
  EXPECT_OK(eddy_process_output(loop, &o, on_output, &g));
  eddy_loop_close_all(loop);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(g.calls, 1);
  EXPECT_EQ(g.exit_status, 3);
  test_finish(loop);
}

Test(exit, output_of_a_program_that_cannot_run) {
  eddy_loop *loop = test_loop();
  got g = {0};
  eddy_process_options o = {.file = "/nonexistent"};
  EXPECT_EQ(eddy_process_output(loop, &o, on_output, &g), -ENOENT);
  EXPECT_EQ(eddy_process_output(loop, NULL, on_output, &g), -EINVAL);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(g.calls, 0);
  test_finish(loop);
}

/* Out of memory while keeping the output: the child is killed and the
 * callback says why. */
Test(exit, output_out_of_memory_kills_the_child) {
  eddy_loop *loop = test_loop();
  got g = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo x; exec sleep 10", NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv};
  EXPECT_OK(eddy_process_output(loop, &o, on_output, &g));
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy__fault_reset();
  EXPECT_EQ(g.calls, 1);
  EXPECT_EQ(g.status, -ENOMEM);
  EXPECT_EQ(g.term_signal, SIGKILL);
  test_finish(loop);
}

Test(exit, output_without_memory_to_start) {
  eddy_loop *loop = test_loop();
  got g = {0};
  eddy_process_options o = {.file = "/bin/true"};
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_process_output(loop, &o, on_output, &g), -ENOMEM);
  eddy__fault_reset();
  EXPECT_EQ(eddy_process_output(loop, &o, NULL, &g), -EINVAL);
  EXPECT_EQ(no_children(), 1);
  test_finish(loop);
}

/* A read error on a pipe reaches the callback's status. */
Test(exit, output_read_error_is_the_status) {
  eddy_loop *loop = test_loop();
  got g = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo x", NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv};
  EXPECT_OK(eddy_process_output(loop, &o, on_output, &g));
  eddy__fault_fail_nth(EDDY__SYS_READ, 1, EIO);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy__fault_reset();
  EXPECT_EQ(g.calls, 1);
  EXPECT_EQ(g.status, -EIO);
  EXPECT_EQ(g.exit_status, 0);
  test_finish(loop);
}
