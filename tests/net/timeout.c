/* A stream's idle timeout, on the fake clock: when it fires (to the
 * nanosecond, and lazily no sooner than 63/64 of it after the last byte),
 * what resets it (bytes read, bytes sent), how the peer learns (an orderly
 * close, or a reset with bytes unsent), and how it gives way to the linger
 * time of a close. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define MS EDDY_NSEC_PER_MSEC
#define SEC EDDY_NSEC_PER_SEC

/* Delivers what the socketpair holds: one turn that does not wait. */
static void deliver(eddy_loop *loop) {
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
}

/* p's stream over one end of a loopback TCP connection (a reset means
 * something there, unlike on a socketpair); returns the test's end. */
static int tcp_peer(eddy_loop *loop, test_peer *p) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t alen = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c, s;
  int small = 4096;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(listen(l, 1) == 0);
  cr_assert(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
  c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(c >= 0 && connect(c, (struct sockaddr *)&a, sizeof a) == 0);
  s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  cr_assert(s >= 0);
  /* Small buffers: a megabyte written cannot all fit in the kernel. */
  cr_assert(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  cr_assert(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  close(l);
  test_peer_open(loop, p, s);
  return c;
}

/* What the test's end reads once the stream is gone: 0 for an orderly
 * close, -ECONNRESET for a reset. Bounded: the stream has already closed,
 * so the answer is waiting. */
static int peer_end(int fd) {
  char buf[65536];
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    ssize_t n;
    cr_assert(poll(&p, 1, 5000) == 1, "the peer never learnt of the end");
    n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0)
      return n == 0 ? 0 : -errno;
  }
}

Test(timeout, an_idle_stream_ends_at_its_timeout_and_not_a_nanosecond_sooner) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {0};
  int fd = tcp_peer(loop, &p);
  EXPECT_OK(eddy_stream_set_timeout(p.s, 1 * SEC));
  EXPECT_OK(eddy_loop_advance(loop, 1 * SEC - 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  cr_expect(strstr(p.detail, "idle timeout") != NULL, "detail: %s", p.detail);
  EXPECT_EQ(peer_end(fd), 0); /* nothing unsent: an orderly close */
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

Test(timeout, bytes_read_start_the_timeout_again) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {0};
  int fd = test_peer_socketpair(loop, &p);
  EXPECT_OK(eddy_stream_set_timeout(p.s, 1 * SEC));
  EXPECT_OK(eddy_loop_advance(loop, 500 * MS));
  cr_assert(write(fd, "x", 1) == 1);
  deliver(loop);
  EXPECT_EQ(p.n, 1);
  /* Idle from 0.5 s: due at 1.5 s, not at 1 s. */
  EXPECT_OK(eddy_loop_advance(loop, 1 * SEC - 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

/* Activity closer together than 1/64 of the timeout does not move the
 * timer each time; the stream still never ends before 63/64 of the timeout
 * after the last byte. */
Test(timeout, frequent_bytes_keep_a_stream_open_and_the_bound_holds) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {0};
  int fd = test_peer_socketpair(loop, &p);
  int64_t last = 0;
  EXPECT_OK(eddy_stream_set_timeout(p.s, 640 * MS));
  for (int i = 0; i < 200; i++) { /* 2 s of a byte every 10 ms */
    EXPECT_OK(eddy_loop_advance(loop, 10 * MS));
    cr_assert(write(fd, "x", 1) == 1);
    deliver(loop);
    last = eddy_loop_now(loop);
  }
  EXPECT_EQ(p.closes, 0);
  EXPECT_EQ(p.n, 200);
  EXPECT_OK(eddy_loop_advance(loop, 630 * MS - 1)); /* 63/64 of 640 ms */
  deliver(loop);
  EXPECT_EQ(p.closes, 0);
  EXPECT_OK(eddy_loop_advance(loop, 10 * MS + 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  cr_expect(eddy_loop_now(loop) - last <= 640 * MS);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

Test(timeout, bytes_sent_start_the_timeout_again) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {0};
  int fd = test_peer_socketpair(loop, &p);
  char buf[8];
  EXPECT_OK(eddy_stream_set_timeout(p.s, 1 * SEC));
  EXPECT_OK(eddy_loop_advance(loop, 800 * MS));
  EXPECT_OK(eddy_stream_write(p.s, "ping", 4));
  EXPECT_EQ(read(fd, buf, sizeof buf), 4);
  EXPECT_OK(eddy_loop_advance(loop, 800 * MS)); /* 1.6 s: idle 0.8 s */
  deliver(loop);
  EXPECT_EQ(p.closes, 0);
  EXPECT_OK(eddy_loop_advance(loop, 200 * MS));
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

/* A peer that does not read: the bytes stop moving, the stream is idle,
 * and what it could not send is dropped with a reset. */
Test(timeout, a_peer_that_does_not_read_gets_a_reset) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {0};
  int fd = tcp_peer(loop, &p);
  static char big[1 << 20];
  EXPECT_OK(eddy_stream_set_timeout(p.s, 1 * SEC));
  EXPECT_OK(eddy_stream_write(p.s, big, sizeof big));
  cr_assert(eddy_stream_buffered(p.s) > 0);
  EXPECT_OK(eddy_loop_advance(loop, 1 * SEC));
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  EXPECT_EQ(peer_end(fd), -ECONNRESET);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}

Test(timeout, zero_turns_it_off_and_bad_values_are_refused) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {.close_on_eof = 1};
  int fd = test_peer_socketpair(loop, &p);
  EXPECT_EQ(eddy_stream_set_timeout(p.s, -1), -EINVAL);
  EXPECT_EQ(eddy_stream_set_timeout(p.s, INT64_MAX), -EINVAL);
  EXPECT_EQ(eddy_stream_set_linger(p.s, INT64_MAX), -EINVAL);
  EXPECT_OK(eddy_stream_set_timeout(p.s, 1 * SEC));
  EXPECT_OK(eddy_stream_set_timeout(p.s, 0));
  EXPECT_OK(eddy_loop_advance(loop, 3600 * SEC));
  deliver(loop);
  EXPECT_EQ(p.closes, 0);
  close(fd);
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  cr_expect(p.status != -ETIMEDOUT, "status %d: %s", p.status, p.detail);
  test_peer_free(&p);
  test_finish(loop);
}

/* Once a close waits for unsent bytes, the linger time counts, not the
 * idle timeout. */
Test(timeout, a_lingering_close_keeps_its_linger_time) {
  eddy_loop *loop = test_fake_loop(0);
  test_peer p = {0};
  int fd = tcp_peer(loop, &p);
  static char big[1 << 20];
  EXPECT_OK(eddy_stream_set_timeout(p.s, 10 * MS));
  EXPECT_OK(eddy_stream_set_linger(p.s, 1 * SEC));
  EXPECT_OK(eddy_stream_write(p.s, big, sizeof big));
  eddy_stream_close(p.s);
  EXPECT_OK(eddy_loop_advance(loop, 1 * SEC - 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  deliver(loop);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  cr_expect(strstr(p.detail, "linger") != NULL, "detail: %s", p.detail);
  EXPECT_EQ(peer_end(fd), -ECONNRESET);
  close(fd);
  test_peer_free(&p);
  test_finish(loop);
}
