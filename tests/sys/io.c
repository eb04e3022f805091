/* Data wrappers: read, recv, recvmsg, write, writev, sendmsg, sendfile. Real success, injected failure, EINTR retry and short counts. */
#include "sys_test.h"

#include <sys/sendfile.h>

SYS_TEST_SUITE(sys_read, sys_test_reset);
SYS_TEST_SUITE(sys_recv, sys_test_reset);
SYS_TEST_SUITE(sys_recvmsg, sys_test_reset);
SYS_TEST_SUITE(sys_write, sys_test_reset);
SYS_TEST_SUITE(sys_writev, sys_test_reset);
SYS_TEST_SUITE(sys_sendmsg, sys_test_reset);
SYS_TEST_SUITE(sys_sendfile, sys_test_reset);

/* ---- read ---- */

Test(sys_read, returns_the_bytes_written_to_a_pipe) {
  int p[2];
  char buf[16] = {0};
  test_pipe(p);
  EXPECT_EQ(write(p[1], "hello", 5), 5);
  EXPECT_EQ(eddy__sys_read(p[0], buf, sizeof buf), 5);
  EXPECT_STR(buf, "hello");
  close_pair(p);
}

Test(sys_read, empty_nonblocking_pipe_returns_eagain) {
  int p[2];
  char buf[4];
  test_pipe(p);
  EXPECT_EQ(eddy__sys_read(p[0], buf, sizeof buf), -EAGAIN);
  close_pair(p);
}

Test(sys_read, eof_returns_zero) {
  int p[2];
  char buf[4];
  test_pipe(p);
  close(p[1]);
  EXPECT_EQ(eddy__sys_read(p[0], buf, sizeof buf), 0);
  close(p[0]);
}

Test(sys_read, retries_eintr_and_returns_data) {
  int p[2];
  char buf[16] = {0};
  test_pipe(p);
  EXPECT_EQ(write(p[1], "hello", 5), 5);
  eddy__fault_fail_nth(EDDY__SYS_READ, 1, EINTR);
  EXPECT_EQ(eddy__sys_read(p[0], buf, sizeof buf), 5);
  EXPECT_STR(buf, "hello");
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_READ), 2);
  close_pair(p);
}

Test(sys_read, injected_error_is_returned_and_data_stays_in_the_pipe) {
  int p[2];
  char buf[16] = {0};
  test_pipe(p);
  EXPECT_EQ(write(p[1], "hello", 5), 5);
  eddy__fault_fail_nth(EDDY__SYS_READ, 1, ECONNRESET);
  EXPECT_EQ(eddy__sys_read(p[0], buf, sizeof buf), -ECONNRESET);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_READ), 1);
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 5);
  close_pair(p);
}

Test(sys_read, short_rule_reads_half_the_length) {
  int p[2];
  char buf[16] = {0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  test_pipe(p);
  EXPECT_EQ(write(p[1], "abcdefgh", 8), 8);
  eddy__fault_set(EDDY__SYS_READ, &r);
  EXPECT_EQ(eddy__sys_read(p[0], buf, 8), 4);
  EXPECT_STR(buf, "abcd");
  EXPECT_EQ(eddy__sys_read(p[0], buf, sizeof buf), 4);
  close_pair(p);
}

Test(sys_read, short_rule_leaves_a_one_byte_read_at_one_byte) {
  int p[2];
  char c = 0;
  eddy__fault_rule r = {.mode = EDDY__FAULT_AFTER, .n = 1, .is_short = 1};
  test_pipe(p);
  EXPECT_EQ(write(p[1], "xy", 2), 2);
  eddy__fault_set(EDDY__SYS_READ, &r);
  EXPECT_EQ(eddy__sys_read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  close_pair(p);
}

/* ---- write ---- */

Test(sys_write, writes_bytes_into_a_pipe) {
  int p[2];
  char buf[16] = {0};
  test_pipe(p);
  EXPECT_EQ(eddy__sys_write(p[1], "hello", 5), 5);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 5);
  EXPECT_STR(buf, "hello");
  close_pair(p);
}

Test(sys_write, closed_reader_returns_epipe) {
  int p[2];
  struct sigaction ign = {.sa_handler = SIG_IGN};
  test_pipe(p);
  close(p[0]);
  cr_assert(sigaction(SIGPIPE, &ign, NULL) == 0);
  EXPECT_EQ(eddy__sys_write(p[1], "x", 1), -EPIPE);
  close(p[1]);
}

Test(sys_write, retries_eintr_and_writes_everything) {
  int p[2];
  char buf[16] = {0};
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_WRITE, 1, EINTR);
  EXPECT_EQ(eddy__sys_write(p[1], "hello", 5), 5);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WRITE), 2);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 5);
  EXPECT_STR(buf, "hello");
  close_pair(p);
}

Test(sys_write, injected_error_is_returned_and_nothing_is_written) {
  int p[2];
  char buf[16];
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_WRITE, 1, ENOSPC);
  EXPECT_EQ(eddy__sys_write(p[1], "hello", 5), -ENOSPC);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), -EAGAIN);
  close_pair(p);
}

Test(sys_write, short_rule_writes_half_the_length) {
  int p[2];
  char buf[16] = {0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_WRITE, &r);
  EXPECT_EQ(eddy__sys_write(p[1], "abcdefgh", 8), 4);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 4);
  EXPECT_STR(buf, "abcd");
  close_pair(p);
}

Test(sys_write, short_rule_rounds_down_an_odd_length) {
  int p[2];
  char buf[16] = {0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_WRITE, &r);
  EXPECT_EQ(eddy__sys_write(p[1], "abcde", 5), 2);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 2);
  close_pair(p);
}

Test(sys_write, short_rule_leaves_a_one_byte_write_at_one_byte) {
  int p[2];
  char buf[4] = {0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_AFTER, .n = 1, .is_short = 1};
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_WRITE, &r);
  EXPECT_EQ(eddy__sys_write(p[1], "z", 1), 1);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 1);
  EXPECT_EQ(buf[0], 'z');
  close_pair(p);
}

/* ---- writev ---- */

Test(sys_writev, gathers_buffers_into_one_write) {
  int p[2];
  char buf[16] = {0};
  struct iovec iov[2] = {{(void *)"abcd", 4}, {(void *)"efgh", 4}};
  test_pipe(p);
  EXPECT_EQ(eddy__sys_writev(p[1], iov, 2), 8);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 8);
  EXPECT_STR(buf, "abcdefgh");
  close_pair(p);
}

Test(sys_writev, retries_eintr_and_writes_everything) {
  int p[2];
  char buf[16] = {0};
  struct iovec iov[2] = {{(void *)"ab", 2}, {(void *)"cd", 2}};
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_WRITEV, 1, EINTR);
  EXPECT_EQ(eddy__sys_writev(p[1], iov, 2), 4);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WRITEV), 2);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 4);
  EXPECT_STR(buf, "abcd");
  close_pair(p);
}

Test(sys_writev, injected_error_is_returned_and_nothing_is_written) {
  int p[2];
  char buf[16];
  struct iovec iov[1] = {{(void *)"ab", 2}};
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_WRITEV, 1, EPIPE);
  EXPECT_EQ(eddy__sys_writev(p[1], iov, 1), -EPIPE);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), -EAGAIN);
  close_pair(p);
}

Test(sys_writev, short_rule_writes_half_the_first_buffer_only) {
  int p[2];
  char buf[16] = {0};
  struct iovec iov[2] = {{(void *)"abcd", 4}, {(void *)"efgh", 4}};
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_WRITEV, &r);
  EXPECT_EQ(eddy__sys_writev(p[1], iov, 2), 2);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 2);
  EXPECT_STR(buf, "ab");
  close_pair(p);
}

Test(sys_writev, short_rule_leaves_a_one_byte_buffer_at_one_byte) {
  int p[2];
  char buf[16] = {0};
  struct iovec iov[2] = {{(void *)"a", 1}, {(void *)"bcd", 3}};
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_WRITEV, &r);
  EXPECT_EQ(eddy__sys_writev(p[1], iov, 2), 1);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 1);
  EXPECT_STR(buf, "a");
  close_pair(p);
}

/* ---- send / recv ---- */

Test(sys_recv, receives_and_honours_flags) {
  int sv[2];
  char buf[16] = {0};
  unix_pair(sv);
  EXPECT_EQ(write(sv[0], "pong", 4), 4);
  EXPECT_EQ(eddy__sys_recv(sv[1], buf, sizeof buf, MSG_PEEK), 4);
  memset(buf, 0, sizeof buf);
  EXPECT_EQ(eddy__sys_recv(sv[1], buf, sizeof buf, 0), 4);
  EXPECT_STR(buf, "pong");
  EXPECT_EQ(eddy__sys_recv(sv[1], buf, sizeof buf, 0), -EAGAIN);
  close_pair(sv);
}

Test(sys_recv, retries_eintr_and_returns_data) {
  int sv[2];
  char buf[16] = {0};
  unix_pair(sv);
  EXPECT_EQ(write(sv[0], "pong", 4), 4);
  eddy__fault_fail_nth(EDDY__SYS_RECV, 1, EINTR);
  EXPECT_EQ(eddy__sys_recv(sv[1], buf, sizeof buf, 0), 4);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_RECV), 2);
  EXPECT_STR(buf, "pong");
  close_pair(sv);
}

Test(sys_recv, injected_error_is_returned_and_data_stays) {
  int sv[2];
  char buf[16] = {0};
  unix_pair(sv);
  EXPECT_EQ(write(sv[0], "pong", 4), 4);
  eddy__fault_fail_nth(EDDY__SYS_RECV, 1, ECONNRESET);
  EXPECT_EQ(eddy__sys_recv(sv[1], buf, sizeof buf, 0), -ECONNRESET);
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(drain(sv[1], buf, sizeof buf), 4);
  close_pair(sv);
}

Test(sys_recv, short_rule_receives_half_and_one_byte_stays_one) {
  int sv[2];
  char buf[16] = {0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_AFTER, .n = 1, .is_short = 1};
  unix_pair(sv);
  EXPECT_EQ(write(sv[0], "abcdefgh", 8), 8);
  eddy__fault_set(EDDY__SYS_RECV, &r);
  EXPECT_EQ(eddy__sys_recv(sv[1], buf, 8, 0), 4);
  EXPECT_EQ(eddy__sys_recv(sv[1], buf + 4, 1, 0), 1);
  EXPECT_STR(buf, "abcde");
  close_pair(sv);
}

/* ---- sendmsg / recvmsg: pass a descriptor, as the proc layer will ---- */

static void send_fd(int sock, int fd, const char *text, int expect) {
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {(void *)text, strlen(text)};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  memset(&ctl, 0, sizeof ctl);
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof ctl.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  EXPECT_EQ(eddy__sys_sendmsg(sock, &m, MSG_NOSIGNAL), expect);
}

/* Receives text and a descriptor; returns the descriptor (or -1). */
static int recv_fd(int sock, char *text, size_t cap, ssize_t *n) {
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {text, cap};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  int fd = -1;
  memset(&ctl, 0, sizeof ctl);
  m.msg_control = ctl.buf;
  m.msg_controllen = sizeof ctl.buf;
  *n = eddy__sys_recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  if (*n > 0) {
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS)
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
  }
  return fd;
}

Test(sys_sendmsg, passes_data_and_a_descriptor) {
  int sv[2], p[2], got;
  char buf[16] = {0};
  ssize_t n;
  unix_pair(sv);
  test_pipe(p);
  send_fd(sv[0], p[1], "fd", 2);
  got = recv_fd(sv[1], buf, sizeof buf, &n);
  EXPECT_EQ(n, 2);
  EXPECT_STR(buf, "fd");
  EXPECT_GE(got, 0);
  /* The received descriptor is the pipe's write end. */
  EXPECT_EQ(write(got, "!", 1), 1);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 1);
  EXPECT_EQ(buf[0], '!');
  close(got);
  close_pair(p);
  close_pair(sv);
}

Test(sys_sendmsg, retries_eintr) {
  int sv[2], p[2], got;
  char buf[16] = {0};
  ssize_t n;
  unix_pair(sv);
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EINTR);
  send_fd(sv[0], p[0], "x", 1);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG), 2);
  got = recv_fd(sv[1], buf, sizeof buf, &n);
  EXPECT_EQ(n, 1);
  EXPECT_GE(got, 0);
  close(got);
  close_pair(p);
  close_pair(sv);
}

Test(sys_sendmsg, injected_error_is_returned_and_nothing_is_sent) {
  int sv[2], p[2];
  char buf[16];
  unix_pair(sv);
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, ENOBUFS);
  send_fd(sv[0], p[0], "x", -ENOBUFS);
  EXPECT_EQ(drain(sv[1], buf, sizeof buf), -EAGAIN);
  close_pair(p);
  close_pair(sv);
}

/* Streams send through sendmsg, so a short rule shortens it as it does
 * writev: half of the first non-empty buffer. */
Test(sys_sendmsg, short_rule_halves_the_first_buffer) {
  int sv[2], p[2], got;
  char buf[16] = {0};
  ssize_t n;
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  unix_pair(sv);
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_SENDMSG, &r);
  send_fd(sv[0], p[0], "abcd", 2);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG), 1);
  got = recv_fd(sv[1], buf, sizeof buf, &n);
  EXPECT_EQ(n, 2);
  EXPECT_STR(buf, "ab");
  close(got);
  close_pair(p);
  close_pair(sv);
}

Test(sys_recvmsg, retries_eintr_and_returns_the_descriptor) {
  int sv[2], p[2], got;
  char buf[16] = {0};
  ssize_t n;
  unix_pair(sv);
  test_pipe(p);
  send_fd(sv[0], p[1], "hi", 2);
  eddy__fault_fail_nth(EDDY__SYS_RECVMSG, 1, EINTR);
  got = recv_fd(sv[1], buf, sizeof buf, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_RECVMSG), 2);
  EXPECT_GE(got, 0);
  EXPECT_EQ(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  close(got);
  close_pair(p);
  close_pair(sv);
}

Test(sys_recvmsg, injected_error_is_returned_and_message_stays_queued) {
  int sv[2], p[2], got;
  char buf[16] = {0};
  ssize_t n;
  unix_pair(sv);
  test_pipe(p);
  send_fd(sv[0], p[1], "hi", 2);
  eddy__fault_fail_nth(EDDY__SYS_RECVMSG, 1, ECONNRESET);
  got = recv_fd(sv[1], buf, sizeof buf, &n);
  EXPECT_EQ(n, -ECONNRESET);
  EXPECT_EQ(got, -1);
  got = recv_fd(sv[1], buf, sizeof buf, &n);
  EXPECT_EQ(n, 2);
  EXPECT_GE(got, 0);
  close(got);
  close_pair(p);
  close_pair(sv);
}

Test(sys_recvmsg, empty_socket_returns_eagain) {
  int sv[2];
  char buf[4];
  ssize_t n;
  unix_pair(sv);
  EXPECT_EQ(recv_fd(sv[1], buf, sizeof buf, &n), -1);
  EXPECT_EQ(n, -EAGAIN);
  close_pair(sv);
}

/* ---- sendfile ---- */

Test(sys_sendfile, copies_a_file_range_and_advances_the_offset) {
  char path[32], buf[32] = {0};
  int p[2], in;
  off_t off = 2;
  temp_file(path, "0123456789");
  in = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  test_pipe(p);
  EXPECT_EQ(eddy__sys_sendfile(p[1], in, &off, 5), 5);
  EXPECT_EQ(off, 7);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 5);
  EXPECT_STR(buf, "23456");
  close(in);
  close_pair(p);
}

Test(sys_sendfile, retries_eintr) {
  char path[32], buf[32] = {0};
  int p[2], in;
  off_t off = 0;
  temp_file(path, "abcdef");
  in = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_SENDFILE, 1, EINTR);
  EXPECT_EQ(eddy__sys_sendfile(p[1], in, &off, 6), 6);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDFILE), 2);
  EXPECT_EQ(off, 6);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 6);
  close(in);
  close_pair(p);
}

Test(sys_sendfile, injected_error_leaves_the_offset_unchanged) {
  char path[32], buf[32];
  int p[2], in;
  off_t off = 1;
  temp_file(path, "abcdef");
  in = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  test_pipe(p);
  eddy__fault_fail_nth(EDDY__SYS_SENDFILE, 1, EIO);
  EXPECT_EQ(eddy__sys_sendfile(p[1], in, &off, 6), -EIO);
  EXPECT_EQ(off, 1);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), -EAGAIN);
  close(in);
  close_pair(p);
}

Test(sys_sendfile, short_rule_sends_half) {
  char path[32], buf[32] = {0};
  int p[2], in;
  off_t off = 0;
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  temp_file(path, "abcdefgh");
  in = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_SENDFILE, &r);
  EXPECT_EQ(eddy__sys_sendfile(p[1], in, &off, 8), 4);
  EXPECT_EQ(off, 4);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 4);
  EXPECT_STR(buf, "abcd");
  close(in);
  close_pair(p);
}

Test(sys_sendfile, real_failure_on_bad_descriptor_returns_ebadf) {
  int p[2];
  off_t off = 0;
  test_pipe(p);
  EXPECT_EQ(eddy__sys_sendfile(p[1], -1, &off, 1), -EBADF);
  close_pair(p);
}

/* ---- real failures of the vector and message calls ---- */

Test(sys_writev, to_a_closed_peer_returns_epipe) {
  int sv[2];
  struct iovec iov[1] = {{(void *)"x", 1}};
  struct sigaction ign = {.sa_handler = SIG_IGN};
  cr_assert(sigaction(SIGPIPE, &ign, NULL) == 0);
  unix_pair(sv);
  close(sv[1]);
  EXPECT_EQ(eddy__sys_writev(sv[0], iov, 1), -EPIPE);
  close(sv[0]);
}

Test(sys_sendmsg, to_a_closed_peer_returns_epipe) {
  int sv[2];
  struct iovec iov = {(void *)"x", 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  unix_pair(sv);
  close(sv[1]);
  EXPECT_EQ(eddy__sys_sendmsg(sv[0], &m, MSG_NOSIGNAL), -EPIPE);
  close(sv[0]);
}

/* A short rule must not turn a non-empty vector into a zero-length call,
 * whose 0 the real calls never return (a read's 0 reads as EOF). */
Test(sys_writev, short_rule_skips_an_empty_first_buffer) {
  int p[2];
  char buf[16] = {0};
  struct iovec iov[2] = {{(void *)"", 0}, {(void *)"abcd", 4}};
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  test_pipe(p);
  eddy__fault_set(EDDY__SYS_WRITEV, &r);
  EXPECT_EQ(eddy__sys_writev(p[1], iov, 2), 2);
  EXPECT_EQ(drain(p[0], buf, sizeof buf), 2);
  EXPECT_STR(buf, "ab");
  close_pair(p);
}
