/* Descriptor, polling and clock wrappers: close, pipe2, eventfd, open,
 * fstat, epoll_create1, epoll_ctl, epoll_wait, poll, now_ns. */
#include "sys_test.h"

#include <stdint.h>
#include <sys/eventfd.h>

SYS_TEST_SUITE(sys_close, sys_test_reset);
SYS_TEST_SUITE(sys_pipe2, sys_test_reset);
SYS_TEST_SUITE(sys_eventfd, sys_test_reset);
SYS_TEST_SUITE(sys_open, sys_test_reset);
SYS_TEST_SUITE(sys_fstat, sys_test_reset);
SYS_TEST_SUITE(sys_epoll, sys_test_reset);
SYS_TEST_SUITE(sys_poll, sys_test_reset);
SYS_TEST_SUITE(sys_clock, sys_test_reset);

/* ---- close ---- */

Test(sys_close, closes_the_descriptor) {
  int p[2];
  test_pipe(p);
  EXPECT_OK(eddy__sys_close(p[0]));
  EXPECT_EQ(fd_is_open(p[0]), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_CLOSE), 1);
  close(p[1]);
}

Test(sys_close, bad_descriptor_returns_ebadf) {
  int fd = lowest_free_fd();
  EXPECT_EQ(eddy__sys_close(fd), -EBADF);
}

Test(sys_close, eintr_is_success_and_not_retried) {
  int p[2];
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_CLOSE, 1, EINTR);
  EXPECT_OK(eddy__sys_close(p[0]));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_CLOSE), 1);
  /* As on Linux, the descriptor is released all the same. */
  EXPECT_EQ(fd_is_open(p[0]), 0);
  close(p[1]);
}

Test(sys_close, injected_eio_is_returned) {
  int p[2];
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_CLOSE, 1, EIO);
  EXPECT_EQ(eddy__sys_close(p[0]), -EIO);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_CLOSE), 1);
  EXPECT_EQ(fd_is_open(p[0]), 1);
  close_pair(p);
}

/* ---- pipe2 ---- */

Test(sys_pipe2, creates_a_connected_nonblocking_cloexec_pipe) {
  int p[2] = {-1, -1};
  char c = 0;
  EXPECT_OK(eddy__sys_pipe2(p, O_NONBLOCK | O_CLOEXEC));
  EXPECT_EQ(fcntl(p[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(p[1], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  EXPECT_EQ(write(p[1], "q", 1), 1);
  EXPECT_EQ(read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'q');
  close_pair(p);
}

Test(sys_pipe2, injected_emfile_leaves_array_and_table_unchanged) {
  int p[2] = {-7, -7};
  int before = lowest_free_fd();
  eddy__fault_fail_nth(EDDY__SYS_PIPE2, 1, EMFILE);
  EXPECT_EQ(eddy__sys_pipe2(p, O_CLOEXEC), -EMFILE);
  EXPECT_EQ(p[0], -7);
  EXPECT_EQ(p[1], -7);
  EXPECT_EQ(lowest_free_fd(), before);
}

Test(sys_pipe2, bad_flags_return_einval) {
  int p[2];
  EXPECT_EQ(eddy__sys_pipe2(p, 0x7fffffff), -EINVAL);
}

/* ---- eventfd ---- */

Test(sys_eventfd, counts_writes_and_reads_through_wrappers) {
  uint64_t v = 3, got = 0;
  int fd = eddy__sys_eventfd(2, EFD_NONBLOCK | EFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(eddy__sys_write(fd, &v, sizeof v), sizeof v);
  EXPECT_EQ(eddy__sys_read(fd, &got, sizeof got), sizeof got);
  EXPECT_EQ(got, 5);
  EXPECT_EQ(eddy__sys_read(fd, &got, sizeof got), -EAGAIN);
  close(fd);
}

Test(sys_eventfd, injected_failure_opens_nothing) {
  int before = lowest_free_fd();
  eddy__fault_fail_nth(EDDY__SYS_EVENTFD, 1, ENFILE);
  EXPECT_EQ(eddy__sys_eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), -ENFILE);
  EXPECT_EQ(lowest_free_fd(), before);
}

Test(sys_eventfd, bad_flags_return_einval) {
  EXPECT_EQ(eddy__sys_eventfd(0, 0x7fffffff), -EINVAL);
}

/* ---- open / fstat ---- */

Test(sys_open, opens_a_file_with_cloexec) {
  char path[32], buf[8] = {0};
  int fd;
  temp_file(path, "data");
  fd = eddy__sys_open(path, O_RDONLY | O_CLOEXEC, 0);
  unlink(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(read(fd, buf, sizeof buf), 4);
  EXPECT_STR(buf, "data");
  close(fd);
}

Test(sys_open, creates_with_the_given_mode) {
  char path[32] = "/tmp/eddy-sys-open-XXXXXX";
  struct stat st;
  int fd = mkstemp(path);
  close(fd);
  unlink(path);
  mode_t old = umask(0);
  fd = eddy__sys_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  umask(old);
  EXPECT_GE(fd, 0);
  EXPECT_OK(fstat(fd, &st));
  EXPECT_EQ(st.st_mode & 0777, 0640);
  close(fd);
  unlink(path);
}

Test(sys_open, missing_file_returns_enoent) {
  EXPECT_EQ(eddy__sys_open("/nonexistent/eddy/file", O_RDONLY, 0), -ENOENT);
}

Test(sys_open, retries_eintr) {
  char path[32];
  int fd;
  temp_file(path, "x");
  eddy__fault_fail_nth(EDDY__SYS_OPEN, 1, EINTR);
  fd = eddy__sys_open(path, O_RDONLY | O_CLOEXEC, 0);
  unlink(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_OPEN), 2);
  close(fd);
}

Test(sys_open, injected_emfile_opens_nothing) {
  char path[32];
  int before = lowest_free_fd();
  temp_file(path, "x");
  eddy__fault_fail_nth(EDDY__SYS_OPEN, 1, EMFILE);
  EXPECT_EQ(eddy__sys_open(path, O_RDONLY | O_CLOEXEC, 0), -EMFILE);
  unlink(path);
  EXPECT_EQ(lowest_free_fd(), before);
}

Test(sys_fstat, reports_size_and_type) {
  char path[32];
  struct stat st;
  int fd;
  temp_file(path, "twelve bytes");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  EXPECT_OK(eddy__sys_fstat(fd, &st));
  EXPECT_EQ(st.st_size, 12);
  EXPECT_EQ(S_ISREG(st.st_mode), 1);
  close(fd);
}

Test(sys_fstat, injected_failure_leaves_stat_untouched) {
  struct stat st;
  int p[2];
  test_pipe(p);
  memset(&st, 0xab, sizeof st);
  eddy__fault_fail_nth(EDDY__SYS_FSTAT, 1, EIO);
  EXPECT_EQ(eddy__sys_fstat(p[0], &st), -EIO);
  EXPECT_EQ(st.st_size, (off_t)0xabababababababab);
  close_pair(p);
}

Test(sys_fstat, bad_descriptor_returns_ebadf) {
  struct stat st;
  EXPECT_EQ(eddy__sys_fstat(-1, &st), -EBADF);
}

/* ---- epoll ---- */

Test(sys_epoll, create_ctl_and_wait_report_a_readable_pipe) {
  int p[2];
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, out[4];
  int ep = eddy__sys_epoll_create1(EPOLL_CLOEXEC);
  EXPECT_GE(ep, 0);
  EXPECT_EQ(fcntl(ep, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  test_pipe(p);
  EXPECT_OK(eddy__sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  EXPECT_EQ(eddy__sys_epoll_wait(ep, out, 4, 0), 0);
  EXPECT_EQ(write(p[1], "x", 1), 1);
  EXPECT_EQ(eddy__sys_epoll_wait(ep, out, 4, 1000), 1);
  EXPECT_EQ(out[0].data.u64, 42);
  EXPECT_EQ(out[0].events & EPOLLIN, EPOLLIN);
  EXPECT_OK(eddy__sys_epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
  EXPECT_EQ(eddy__sys_epoll_wait(ep, out, 4, 0), 0);
  close_pair(p);
  close(ep);
}

Test(sys_epoll, injected_create_failure_opens_nothing) {
  int before = lowest_free_fd();
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_CREATE1, 1, EMFILE);
  EXPECT_EQ(eddy__sys_epoll_create1(EPOLL_CLOEXEC), -EMFILE);
  EXPECT_EQ(lowest_free_fd(), before);
}

Test(sys_epoll, injected_ctl_failure_registers_nothing) {
  int p[2];
  struct epoll_event ev = {.events = EPOLLIN}, out[1];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  test_pipe(p);
  EXPECT_EQ(write(p[1], "x", 1), 1);
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_CTL, 1, ENOMEM);
  EXPECT_EQ(eddy__sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), -ENOMEM);
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0);
  /* Not registered: a real ADD now succeeds instead of EEXIST. */
  EXPECT_OK(eddy__sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  EXPECT_EQ(eddy__sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), -EEXIST);
  close_pair(p);
  close(ep);
}

Test(sys_epoll, wait_returns_eintr_without_retrying) {
  struct epoll_event out[1];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_WAIT, 1, EINTR);
  EXPECT_EQ(eddy__sys_epoll_wait(ep, out, 1, 0), -EINTR);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_EPOLL_WAIT), 1);
  close(ep);
}

Test(sys_epoll, real_failures_return_negative_errno) {
  struct epoll_event out[1];
  EXPECT_EQ(eddy__sys_epoll_create1(0x7fffffff), -EINVAL);
  EXPECT_EQ(eddy__sys_epoll_wait(-1, out, 1, 0), -EBADF);
}

/* ---- poll ---- */

Test(sys_poll, reports_a_readable_pipe) {
  int p[2];
  test_pipe(p);
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  EXPECT_EQ(eddy__sys_poll(&pf, 1, 0), 0);
  EXPECT_EQ(write(p[1], "x", 1), 1);
  EXPECT_EQ(eddy__sys_poll(&pf, 1, 1000), 1);
  EXPECT_EQ(pf.revents & POLLIN, POLLIN);
  close_pair(p);
}

Test(sys_poll, returns_eintr_without_retrying) {
  int p[2];
  test_pipe(p);
  struct pollfd pf = {.fd = p[0], .events = POLLIN, .revents = 0x55};
  eddy__fault_fail_nth(EDDY__SYS_POLL, 1, EINTR);
  EXPECT_EQ(eddy__sys_poll(&pf, 1, 0), -EINTR);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_POLL), 1);
  EXPECT_EQ(pf.revents, 0x55);
  close_pair(p);
}

/* ---- clock ---- */

Test(sys_clock, now_ns_is_monotonic_nanoseconds) {
  struct timespec ts;
  int64_t a = eddy__sys_now_ns();
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t mid = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  int64_t b = eddy__sys_now_ns();
  EXPECT_GT(a, 0);
  EXPECT_LE(a, mid);
  EXPECT_LE(mid, b);
}

Test(sys_clock, now_ns_repeats_the_last_value_when_the_clock_fails) {
  int64_t a = eddy__sys_now_ns();
  eddy__fault_fail_after(EDDY__SYS_CLOCK_GETTIME, 1, EINVAL);
  EXPECT_EQ(eddy__sys_now_ns(), a);
  EXPECT_EQ(eddy__sys_now_ns(), a);
  eddy__fault_reset();
  EXPECT_GE(eddy__sys_now_ns(), a);
}

/* ---- "short" on calls without a length ---- */

SYS_TEST_SUITE(sys_short, sys_test_reset);

static void *nothing(void *arg) {
  return arg;
}

/* A short rule on every kind at once: calls that have no length to shorten
 * are made for real and succeed. */
Test(sys_short, calls_without_a_length_ignore_short_rules) {
  eddy__fault_rule r = {.mode = EDDY__FAULT_AFTER, .n = 1, .is_short = 1};
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  struct epoll_event ev = {.events = EPOLLIN};
  struct stat st;
  int p[2], on = 1, v;
  socklen_t len = sizeof v;
  pid_t pid;
  pthread_t t;
  for (int k = 0; k < EDDY__SYS_KIND_COUNT; k++)
    eddy__fault_set(k, &r);

  int s = eddy__sys_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(s, 0);
  EXPECT_OK(eddy__sys_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  EXPECT_OK(eddy__sys_getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &len));
  EXPECT_OK(eddy__sys_bind(s, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(eddy__sys_listen(s, 1));
  EXPECT_OK(getsockname(s, (struct sockaddr *)&a, &alen));
  int c = eddy__sys_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_OK(eddy__sys_connect(c, (struct sockaddr *)&a, sizeof a));
  int acc = eddy__sys_accept4(s, NULL, NULL, SOCK_CLOEXEC);
  EXPECT_GE(acc, 0);
  EXPECT_OK(eddy__sys_pipe2(p, O_CLOEXEC | O_NONBLOCK));
  int e = eddy__sys_eventfd(0, EFD_CLOEXEC);
  EXPECT_GE(e, 0);
  int fd = eddy__sys_open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  EXPECT_OK(eddy__sys_fstat(fd, &st));
  int ep = eddy__sys_epoll_create1(EPOLL_CLOEXEC);
  EXPECT_GE(ep, 0);
  EXPECT_OK(eddy__sys_epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
  EXPECT_EQ(eddy__sys_epoll_wait(ep, &ev, 1, 0), 0);
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  EXPECT_EQ(eddy__sys_poll(&pf, 1, 0), 0);
  EXPECT_GT(eddy__sys_now_ns(), 0);
  EXPECT_OK(eddy__sys_kill(getpid(), 0));
  EXPECT_OK(eddy__sys_sigaction(SIGUSR2, NULL, NULL));
  pid = fork();
  if (pid == 0)
    _exit(0);
  EXPECT_EQ(eddy__sys_waitpid(pid, NULL, 0), pid);
  EXPECT_OK(eddy__sys_thread_create(&t, nothing, NULL));
  EXPECT_OK(pthread_join(t, NULL));
  int fds[] = {s, c, acc, p[0], p[1], e, fd, ep};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    EXPECT_OK(eddy__sys_close(fds[i]));
  /* Every kind was checked with the rule in place. */
  EXPECT_GE(eddy__fault_calls(EDDY__SYS_CLOSE), 8);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_THREAD_CREATE), 1);
}
