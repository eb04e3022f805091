/* coro_overflow.c: a coroutine that runs off its stack dies of SIGSEGV
 * with a message that says so, in a child process. And the smallest stack
 * still runs the calls a coroutine makes. */
#include <signal.h>
#include <sys/wait.h>

#include "coro_test.h"

/* Recurses until depth (more than any stack holds); the volatile array
 * keeps each frame real. */
static volatile int depth = 1 << 30;

static int __attribute__((noinline)) deeper(int n) {
  volatile char frame[256];
  frame[0] = (char)n;
  frame[255] = (char)n;
  if (n >= depth)
    return 0;
  return deeper(n + 1) + frame[0] + frame[255];
}

static int overflow(eddy_coro *co, void *arg) {
  (void)co;
  (void)arg;
  return deeper(0);
}

/* Runs body in a child with stderr on a pipe; returns the wait status and
 * what the child wrote. */
static int in_child(void (*body)(void), char *err, size_t cap) {
  int pipefd[2], status = 0;
  pid_t pid;
  cr_assert(pipe(pipefd) == 0);
  pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    body();
    _exit(0);
  }
  close(pipefd[1]);
  size_t n = test_read_all(pipefd[0], err, cap - 1, 10000);
  err[n] = '\0';
  close(pipefd[0]);
  /* Bounded: a child that has not ended 10 s after its stderr closed is
   * killed, and the test fails. */
  int64_t end = test_clock_ms() + 10000;
  pid_t got;
  struct timespec ms = {0, 1000000};
  while ((got = waitpid(pid, &status, WNOHANG)) == 0 && test_clock_ms() < end)
    nanosleep(&ms, NULL);
  if (got == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    cr_assert(0, "the child did not end");
  }
  cr_assert(got == pid);
  return status;
}

static void overflow_in_a_coroutine(void) {
  eddy_loop *loop = NULL;
  eddy_coro_options o = {.stack_size = 32 * 1024};
  if (eddy_loop_new(NULL, &loop) != 0 ||
      eddy_coro_spawn(loop, overflow, NULL, &o, NULL) != 0)
    _exit(2);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  _exit(3); /* not reached: the overflow kills the process */
}

Test(coro_overflow, a_stack_overflow_dies_of_sigsegv_with_a_message) {
  char err[8192];
  int status = in_child(overflow_in_a_coroutine, err, sizeof err);
  int signalled = WIFSIGNALED(status);
  cr_assert(signalled, "child status %#x, stderr: %s", status, err);
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
  cr_assert(strstr(err, "eddy: coroutine stack overflow (stack size 32768)") !=
                NULL,
            "stderr: %s", err);
}

static void own_handler(int sig) {
  (void)sig;
  _exit(42);
}

static void segv_outside_coroutines(void) {
  eddy_loop *loop = NULL;
  signal(SIGSEGV, own_handler);
  if (eddy_loop_new(NULL, &loop) != 0 ||
      eddy_coro_install_overflow_handler() != 0)
    _exit(2);
  raise(SIGSEGV);
  _exit(3);
}

Test(coro_overflow, another_segfault_goes_to_the_handler_installed_before) {
  char err[8192];
  int status = in_child(segv_outside_coroutines, err, sizeof err);
  int exited = WIFEXITED(status);
  cr_assert(exited, "child status %#x", status);
  EXPECT_EQ(WEXITSTATUS(status), 42);
  cr_assert(strstr(err, "coroutine stack overflow") == NULL, "stderr: %s", err);
}
