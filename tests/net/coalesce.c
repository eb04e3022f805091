/* eddy_stream_set_coalesce: the writes of one turn leave together, in one
 * system call, at the end of the turn; in order with what was queued
 * before; through a close, an error, an abort; and off again, at once. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

/* Reads the test's end until want bytes came (or 5 s), running the loop. */
static size_t read_peer(eddy_loop *loop, int fd, char *buf, size_t want) {
  size_t n = 0;
  int64_t end = test_clock_ms() + 5000;
  while (n < want && test_clock_ms() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    if (poll(&p, 1, 2) == 1) {
      ssize_t r = recv(fd, buf + n, want - n, MSG_DONTWAIT);
      if (r <= 0)
        break;
      n += (size_t)r;
    }
  }
  return n;
}

static int frees;
static void count_free(void *p) {
  (void)p;
  frees++;
}

Test(coalesce, the_writes_of_a_turn_go_in_one_call_in_order) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  static char owned[] = "three";
  struct iovec iov[2] = {{"tw", 2}, {"o,", 2}};
  char got[64] = {0};
  uint64_t before;
  frees = 0;
  EXPECT_OK(eddy_stream_set_coalesce(p.s, 1));
  before = eddy__fault_calls(EDDY__SYS_SENDMSG);
  EXPECT_OK(eddy_stream_write(p.s, "one,", 4));
  EXPECT_OK(eddy_stream_writev(p.s, iov, 2));
  EXPECT_OK(eddy_stream_write_owned(p.s, owned, 5, count_free));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG), before); /* not yet */
  EXPECT_EQ(eddy_stream_buffered(p.s), 13);
  EXPECT_EQ(read_peer(loop, peer, got, 13), 13);
  cr_expect(memcmp(got, "one,two,three", 13) == 0, "%s", got);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG) - before, 1);
  EXPECT_EQ(frees, 1);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0);
  /* The next turn's write leaves at the end of that turn. */
  EXPECT_OK(eddy_stream_write(p.s, "four", 4));
  EXPECT_EQ(read_peer(loop, peer, got, 4), 4);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG) - before, 2);
  /* Off: at once again. */
  EXPECT_OK(eddy_stream_set_coalesce(p.s, 0));
  EXPECT_OK(eddy_stream_write(p.s, "five", 4));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG) - before, 3);
  EXPECT_EQ(read_peer(loop, peer, got, 4), 4);
  close(peer);
  eddy_stream_close(p.s);
  test_peer_free(&p);
  test_finish(loop);
}

/* More than the socket takes: the rest goes as it becomes writable. */
Test(coalesce, a_large_turn_is_sent_whole) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  size_t size = 4u << 20;
  char *data = malloc(size), *got = malloc(size);
  cr_assert(data && got);
  for (size_t i = 0; i < size; i++)
    data[i] = (char)(i * 7);
  EXPECT_OK(eddy_stream_set_coalesce(p.s, 1));
  for (size_t off = 0; off < size; off += 65536)
    EXPECT_OK(eddy_stream_write(p.s, data + off, 65536));
  EXPECT_EQ(read_peer(loop, peer, got, size), size);
  cr_expect(memcmp(got, data, size) == 0);
  free(data);
  free(got);
  close(peer);
  eddy_stream_close(p.s);
  test_peer_free(&p);
  test_finish(loop);
}

/* A close right after the writes: they arrive, then the end. */
Test(coalesce, a_close_after_the_writes_sends_them_first) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  char got[16] = {0};
  EXPECT_OK(eddy_stream_set_coalesce(p.s, 1));
  EXPECT_OK(eddy_stream_write(p.s, "last words", 10));
  eddy_stream_close(p.s);
  EXPECT_EQ(read_peer(loop, peer, got, 10), 10);
  cr_expect(memcmp(got, "last words", 10) == 0);
  cr_expect(test_run_until(loop, &p.closes));
  EXPECT_EQ(p.status, 0);
  EXPECT_EQ(recv(peer, got, sizeof got, 0), 0); /* the end */
  close(peer);
  test_peer_free(&p);
  test_finish(loop);
}

/* The peer is gone: the write returns 0, the close callback says why. */
Test(coalesce, an_error_at_the_flush_reaches_the_close_callback) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  static char owned[] = "lost";
  frees = 0;
  EXPECT_OK(eddy_stream_set_coalesce(p.s, 1));
  close(peer);
  EXPECT_OK(eddy_stream_write_owned(p.s, owned, 4, count_free));
  cr_assert(test_run_until(loop, &p.closes));
  cr_expect(p.status == -EPIPE || p.status == -ECONNRESET, "%d", p.status);
  EXPECT_EQ(frees, 1);
  test_peer_free(&p);
  test_finish(loop);
}

/* Aborted with a flush due: nothing is sent, nothing leaks. */
Test(coalesce, an_abort_cancels_the_flush) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  char got[8];
  uint64_t before = eddy__fault_calls(EDDY__SYS_SENDMSG);
  EXPECT_OK(eddy_stream_set_coalesce(p.s, 1));
  EXPECT_OK(eddy_stream_write(p.s, "never", 5));
  eddy_stream_abort(p.s);
  cr_assert(test_run_until(loop, &p.closes));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG), before);
  cr_expect(recv(peer, got, sizeof got, 0) <= 0);
  close(peer);
  test_peer_free(&p);
  test_finish(loop);
}

/* Without memory for the flush, coalescing stays off and writes go at
 * once. */
Test(coalesce, without_memory_writes_stay_immediate) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  char got[4];
  uint64_t before;
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_stream_set_coalesce(p.s, 1), -ENOMEM);
  eddy__fault_reset();
  before = eddy__fault_calls(EDDY__SYS_SENDMSG);
  EXPECT_OK(eddy_stream_write(p.s, "now", 3));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG) - before, 1);
  EXPECT_EQ(read_peer(loop, peer, got, 3), 3);
  close(peer);
  eddy_stream_close(p.s);
  test_peer_free(&p);
  test_finish(loop);
}
