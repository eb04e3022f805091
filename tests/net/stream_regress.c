/* Regressions found in review: each test failed before its fix. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "net/net.h"

#define MS EDDY_NSEC_PER_MSEC

/* writev that runs out of memory half-way returns -ENOMEM ("nothing
 * queued") but leaves the first pieces queued. */
Test(stream_regress, writev_out_of_memory_queues_nothing) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  static char a[20000], b[20000];
  memset(a, 'A', sizeof a);
  memset(b, 'B', sizeof b);
  test_socketpair(sv);
  EXPECT_OK(
      eddy_stream_open(loop, sv[0], &test_peer_callbacks_no_eof, &p, &p.s));
  struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  /* The kernel takes nothing; then the copy block, then the segment
   * table, cannot be had. Either way nothing may stay queued. */
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EAGAIN);
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_stream_writev(p.s, iov, 2), -ENOMEM);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0);
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EAGAIN);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_stream_writev(p.s, iov, 2), -ENOMEM);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0);
  eddy__fault_reset();
  /* And the stream still works. */
  EXPECT_OK(eddy_stream_writev(p.s, iov, 2));
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

/* sendfile() on a socket raises SIGPIPE (no MSG_NOSIGNAL there). */
Test(stream_regress, sendfile_to_a_closed_socket_raises_no_sigpipe) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char path[] = "/tmp/eddy-rv-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  cr_assert(write(fd, "0123456789", 10) == 10);
  signal(SIGPIPE, SIG_DFL);
  test_socketpair(sv);
  EXPECT_OK(
      eddy_stream_open(loop, sv[0], &test_peer_callbacks_no_eof, &p, &p.s));
  close(sv[1]);
  int err = eddy_stream_sendfile(p.s, fd, 0, 10);
  EXPECT_EQ(err, -EPIPE);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

/* The same where the program ignores SIGPIPE (the mask is not needed). */
Test(stream_regress, sendfile_to_a_closed_socket_with_sigpipe_ignored) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char path[] = "/tmp/eddy-rv-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  cr_assert(write(fd, "0123456789", 10) == 10);
  signal(SIGPIPE, SIG_IGN);
  test_socketpair(sv);
  EXPECT_OK(
      eddy_stream_open(loop, sv[0], &test_peer_callbacks_no_eof, &p, &p.s));
  close(sv[1]);
  EXPECT_EQ(eddy_stream_sendfile(p.s, fd, 0, 10), -EPIPE);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -EPIPE);
  signal(SIGPIPE, SIG_DFL);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

/* A watcher failure inside a write ends the stream: the write returns the
 * same error as the close callback, not 0 ("written"). epoll only: the
 * poll backend makes no system call to change interest. */
Test(stream_regress, a_write_that_breaks_the_stream_returns_the_error) {
  eddy_loop *loop = test_loop();
  int sv[2], err;
  test_peer p = {0};
  if (strcmp(eddy_loop_backend_name(loop), "epoll") != 0) {
    test_finish(loop);
    cr_skip_test("epoll only");
  }
  test_socketpair(sv);
  EXPECT_OK(
      eddy_stream_open(loop, sv[0], &test_peer_callbacks_no_eof, &p, &p.s));
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EAGAIN);
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_CTL, 1, ENOMEM);
  err = eddy_stream_write(p.s, "hello", 5);
  eddy__fault_reset();
  close(sv[1]);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ENOMEM);
  EXPECT_EQ(err, -ENOMEM);
  test_peer_free(&p);
  test_finish(loop);
}

/* shutdown of a write-only stream: never closes. */
Test(stream_regress, shutdown_of_a_write_only_stream_closes_it) {
  eddy_loop *loop = test_loop();
  int out[2];
  test_peer p = {0};
  char buf[8];
  cr_assert(pipe(out) == 0);
  EXPECT_OK(eddy_stream_open_pair(loop, -1, out[1], &test_peer_callbacks_no_eof,
                                  &p, &p.s));
  EXPECT_OK(eddy_stream_write(p.s, "x", 1));
  EXPECT_OK(eddy_stream_shutdown(p.s));
  EXPECT_EQ(read(out[0], buf, sizeof buf), 1);
  EXPECT_EQ(read(out[0], buf, sizeof buf), 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  close(out[0]);
  test_peer_free(&p);
  test_finish(loop);
}
