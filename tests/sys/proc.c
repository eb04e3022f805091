/* Process, signal and thread wrappers: waitpid, kill, sigaction,
 * thread_create, clone_vfork, pidfd_open, socketpair. */
#include "sys_test.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>

SYS_TEST_SUITE(sys_waitpid, sys_test_reset);
SYS_TEST_SUITE(sys_kill, sys_test_reset);
SYS_TEST_SUITE(sys_sigaction, sys_test_reset);
SYS_TEST_SUITE(sys_thread_create, sys_test_reset);
SYS_TEST_SUITE(sys_clone_vfork, sys_test_reset);
SYS_TEST_SUITE(sys_pidfd_open, sys_test_reset);
SYS_TEST_SUITE(sys_socketpair, sys_test_reset);

/* 1 if this process has no child left to wait for. */
static int no_children(void) {
  return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

/* Waits for pid and returns its exit code, or -signal if it was killed. */
static int reap(pid_t pid) {
  int status = 0;
  cr_assert(waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* ---- waitpid ---- */

Test(sys_waitpid, no_children_returns_echild) {
  EXPECT_EQ(eddy__sys_waitpid(-1, NULL, WNOHANG), -ECHILD);
}

Test(sys_waitpid, wnohang_on_a_running_child_returns_zero) {
  int p[2];
  test_pipe(p);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(p[1]);
    /* Blocks until the parent closes its write end. */
    while (read(p[0], &c, 1) < 0 && errno == EAGAIN)
      usleep(1000);
    _exit(0);
  }
  close(p[0]);
  EXPECT_EQ(eddy__sys_waitpid(pid, NULL, WNOHANG), 0);
  close(p[1]);
  EXPECT_EQ(reap(pid), 0);
}

Test(sys_waitpid, retries_eintr_and_reaps_the_child) {
  int status = 0;
  pid_t pid = fork();
  if (pid == 0)
    _exit(3);
  eddy__fault_fail_nth(EDDY__SYS_WAITPID, 1, EINTR);
  EXPECT_EQ(eddy__sys_waitpid(pid, &status, 0), pid);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WAITPID), 2);
  EXPECT_EQ(WEXITSTATUS(status), 3);
}

Test(sys_waitpid, injected_failure_leaves_the_child_unreaped) {
  int status = 0x1234;
  pid_t pid = fork();
  if (pid == 0)
    _exit(4);
  eddy__fault_fail_nth(EDDY__SYS_WAITPID, 1, ECHILD);
  EXPECT_EQ(eddy__sys_waitpid(pid, &status, 0), -ECHILD);
  EXPECT_EQ(status, 0x1234);
  EXPECT_EQ(reap(pid), 4);
}

/* ---- kill ---- */

Test(sys_kill, signal_zero_probes_this_process) {
  EXPECT_OK(eddy__sys_kill(getpid(), 0));
}

Test(sys_kill, terminates_a_child) {
  pid_t pid = fork();
  if (pid == 0) {
    for (;;)
      pause();
  }
  EXPECT_OK(eddy__sys_kill(pid, SIGTERM));
  EXPECT_EQ(reap(pid), -SIGTERM);
}

Test(sys_kill, injected_eperm_sends_nothing) {
  /* The rule first: without fault injection the test is skipped here,
   * before there is a child to leave behind. */
  eddy__fault_fail_nth(EDDY__SYS_KILL, 1, EPERM);
  pid_t pid = fork();
  if (pid == 0) {
    for (;;)
      pause();
  }
  EXPECT_EQ(eddy__sys_kill(pid, SIGTERM), -EPERM);
  EXPECT_EQ(waitpid(pid, NULL, WNOHANG), 0);
  kill(pid, SIGKILL);
  EXPECT_EQ(reap(pid), -SIGKILL);
}

Test(sys_kill, bad_signal_returns_einval) {
  EXPECT_EQ(eddy__sys_kill(getpid(), 9999), -EINVAL);
}

/* ---- clone_vfork ---- */

static int exit_with(void *arg) {
  syscall(SYS_exit_group, *(int *)arg);
  return 0;
}

Test(sys_clone_vfork, child_runs_on_its_stack_and_the_parent_resumes_after) {
  static char stack[16384] __attribute__((aligned(16)));
  int code = 5;
  pid_t pid = eddy__sys_clone_vfork(exit_with, stack + sizeof stack, &code);
  EXPECT_GT(pid, 0);
  EXPECT_EQ(reap(pid), 5);
}

Test(sys_clone_vfork, injected_failure_creates_no_child) {
  static char stack[16384] __attribute__((aligned(16)));
  int code = 0;
  eddy__fault_fail_nth(EDDY__SYS_FORK, 1, EAGAIN);
  EXPECT_EQ(eddy__sys_clone_vfork(exit_with, stack + sizeof stack, &code),
            -EAGAIN);
  EXPECT_EQ(no_children(), 1);
}

/* ---- pidfd_open ---- */

Test(sys_pidfd_open, becomes_readable_when_the_child_ends) {
  pid_t pid = fork();
  struct pollfd pfd = {.events = POLLIN};
  if (pid == 0) {
    usleep(50 * 1000);
    _exit(0);
  }
  pfd.fd = eddy__sys_pidfd_open(pid, 0);
  EXPECT_GE(pfd.fd, 0);
  EXPECT_EQ(fcntl(pfd.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  EXPECT_EQ(poll(&pfd, 1, 5000), 1);
  EXPECT_EQ(reap(pid), 0);
  close(pfd.fd);
}

Test(sys_pidfd_open, injected_failure_and_a_pid_that_is_not_there) {
  eddy__fault_fail_nth(EDDY__SYS_PIDFD_OPEN, 1, ENOSYS);
  EXPECT_EQ(eddy__sys_pidfd_open(getpid(), 0), -ENOSYS);
  EXPECT_EQ(eddy__sys_pidfd_open(-5, 0), -EINVAL);
}

/* ---- socketpair ---- */

Test(sys_socketpair, makes_a_connected_pair) {
  int fds[2];
  char c = 0;
  EXPECT_OK(eddy__sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  EXPECT_EQ(write(fds[0], "x", 1), 1);
  EXPECT_EQ(read(fds[1], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  close(fds[0]);
  close(fds[1]);
}

Test(sys_socketpair, injected_failure_makes_nothing) {
  int fds[2] = {-7, -7};
  eddy__fault_fail_nth(EDDY__SYS_SOCKETPAIR, 1, EMFILE);
  EXPECT_EQ(eddy__sys_socketpair(AF_UNIX, SOCK_STREAM, 0, fds), -EMFILE);
  EXPECT_EQ(fds[0], -7);
}

/* ---- sigaction ---- */

static volatile sig_atomic_t usr2_seen;
static void on_usr2(int sig) {
  usr2_seen = sig;
}

Test(sys_sigaction, installs_a_handler_and_returns_the_old_one) {
  struct sigaction act = {.sa_handler = on_usr2}, old;
  sigemptyset(&act.sa_mask);
  memset(&old, 0, sizeof old);
  old.sa_handler = on_usr2;
  EXPECT_OK(eddy__sys_sigaction(SIGUSR2, &act, &old));
  cr_assert(old.sa_handler == SIG_DFL);
  usr2_seen = 0;
  raise(SIGUSR2);
  EXPECT_EQ(usr2_seen, SIGUSR2);
}

Test(sys_sigaction, injected_failure_installs_nothing) {
  struct sigaction act = {.sa_handler = on_usr2}, old, now;
  sigemptyset(&act.sa_mask);
  memset(&old, 0x5a, sizeof old);
  eddy__fault_fail_nth(EDDY__SYS_SIGACTION, 1, EINVAL);
  EXPECT_EQ(eddy__sys_sigaction(SIGUSR2, &act, &old), -EINVAL);
  cr_assert(sigaction(SIGUSR2, NULL, &now) == 0);
  cr_assert(now.sa_handler == SIG_DFL);
  EXPECT_EQ(((unsigned char *)&old)[0], 0x5a);
}

Test(sys_sigaction, uncatchable_signal_returns_einval) {
  struct sigaction act = {.sa_handler = on_usr2};
  EXPECT_EQ(eddy__sys_sigaction(SIGKILL, &act, NULL), -EINVAL);
}

/* ---- thread_create ---- */

/* Returns 1 if every catchable signal is blocked in the calling thread. */
static void *report_mask(void *arg) {
  sigset_t set;
  (void)arg;
  if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0)
    return NULL;
  /* The standard signals; glibc reserves 32 and 33 for itself. */
  for (int sig = 1; sig < 32; sig++)
    if (sig != SIGKILL && sig != SIGSTOP && !sigismember(&set, sig))
      return NULL;
  return (void *)1;
}

static int caller_blocks(int sig) {
  sigset_t set;
  cr_assert(pthread_sigmask(SIG_BLOCK, NULL, &set) == 0);
  return sigismember(&set, sig);
}

Test(sys_thread_create, runs_the_thread_with_every_signal_blocked) {
  pthread_t t;
  void *res = NULL;
  EXPECT_EQ(caller_blocks(SIGTERM), 0);
  EXPECT_OK(eddy__sys_thread_create(&t, report_mask, NULL));
  EXPECT_OK(pthread_join(t, &res));
  cr_assert(res == (void *)1, "the new thread left a signal unblocked");
  /* The caller's own mask is restored. */
  EXPECT_EQ(caller_blocks(SIGTERM), 0);
  EXPECT_EQ(caller_blocks(SIGINT), 0);
}

static void *set_flag(void *arg) {
  *(int *)arg = 1;
  return NULL;
}

Test(sys_thread_create, injected_failure_starts_nothing_and_keeps_the_mask) {
  pthread_t t;
  int ran = 0;
  memset(&t, 0x33, sizeof t);
  pthread_t before = t;
  eddy__fault_fail_nth(EDDY__SYS_THREAD_CREATE, 1, EAGAIN);
  EXPECT_EQ(eddy__sys_thread_create(&t, set_flag, &ran), -EAGAIN);
  EXPECT_EQ(memcmp(&t, &before, sizeof t), 0);
  EXPECT_EQ(caller_blocks(SIGTERM), 0);
  /* The real call works next and does run the function. */
  EXPECT_OK(eddy__sys_thread_create(&t, set_flag, &ran));
  EXPECT_OK(pthread_join(t, NULL));
  EXPECT_EQ(ran, 1);
}
