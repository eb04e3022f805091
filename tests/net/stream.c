/* Streams over socketpairs, pipes and files: reading, write-through,
 * buffering, flow control, half-close, close, abort, and injected faults. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define MS EDDY_NSEC_PER_MSEC

Test(stream, data_arrives_and_an_echo_goes_back) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {.echo = 1};
  char buf[16];
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  cr_assert(write(sv[1], "hello", 5) == 5);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(p.n, 5);
  cr_assert(memcmp(p.got, "hello", 5) == 0);
  EXPECT_EQ(read(sv[1], buf, sizeof buf), 5);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0); /* written through, not copied */
  close(sv[1]);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.eofs, 1);
  /* The eof callback did not close: the stream waits for us. */
  EXPECT_EQ(p.closes, 0);
  eddy_stream_close(p.s);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, 0);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, peer_eof_without_an_eof_callback_closes_cleanly) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  test_socketpair(sv);
  EXPECT_OK(
      eddy_stream_open(loop, sv[0], &test_peer_callbacks_no_eof, &p, &p.s));
  cr_assert(write(sv[1], "bye", 3) == 3);
  close(sv[1]);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.n, 3);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, 0);
  EXPECT_STR(p.detail, "closed");
  test_peer_free(&p);
  test_finish(loop);
}

/* The client sends, then half-closes; it must still get every echo, then
 * EOF once we shut down our side. */
Test(stream, a_client_that_half_closes_still_receives_all_echoes) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {.echo = 1, .shutdown_on_eof = 1};
  char big[50000], back[60000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('a' + i % 26);
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  cr_assert(write(sv[1], big, sizeof big) == (ssize_t)sizeof big);
  cr_assert(shutdown(sv[1], SHUT_WR) == 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(test_read_all(sv[1], back, sizeof back, 1000), sizeof big);
  cr_assert(memcmp(back, big, sizeof big) == 0);
  EXPECT_EQ(p.eofs, 1);
  EXPECT_EQ(p.closes, 1); /* both directions done: closed, cleanly */
  EXPECT_EQ(p.status, 0);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, a_short_write_buffers_only_the_unsent_tail) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char back[32];
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = 1, .is_short = 1};
  eddy__fault_set(EDDY__SYS_SENDMSG, &r);
  EXPECT_OK(eddy_stream_write(p.s, "0123456789", 10));
  EXPECT_EQ(eddy_stream_buffered(p.s), 5);
  EXPECT_OK(eddy_stream_write(p.s, "abc", 3)); /* queued behind, in order */
  EXPECT_EQ(eddy_stream_buffered(p.s), 8);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0);
  EXPECT_EQ(test_read_all(sv[1], back, 13, 1000), 13);
  cr_assert(memcmp(back, "0123456789abc", 13) == 0);
  /* Two sendmsg in all: the write-through, then one for both pieces. */
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SENDMSG), 2);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, eagain_after_readiness_is_not_an_error) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  cr_assert(write(sv[1], "x", 1) == 1);
  eddy__fault_fail_nth(EDDY__SYS_RECV, 1, EAGAIN);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(p.n, 0);
  EXPECT_EQ(p.closes, 0);
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EAGAIN);
  EXPECT_OK(eddy_stream_write(p.s, "y", 1)); /* EAGAIN: buffered */
  EXPECT_EQ(eddy_stream_buffered(p.s), 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(p.n, 1);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream,
     a_peer_reset_in_mid_write_closes_once_with_an_error_and_no_sigpipe) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char chunk[65536] = {0};
  signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  for (int i = 0; i < 8; i++)
    EXPECT_OK(eddy_stream_write(p.s, chunk, sizeof chunk));
  EXPECT_GT(eddy_stream_buffered(p.s), 0);
  close(sv[1]);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  cr_assert(p.status == -EPIPE || p.status == -ECONNRESET, "%s",
            eddy_errname(p.status));
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, a_write_error_is_returned_and_reported_once) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, ECONNRESET);
  EXPECT_EQ(eddy_stream_write(p.s, "x", 1), -ECONNRESET);
  EXPECT_EQ(p.closes, 0); /* never from inside our own call */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ECONNRESET);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, watermarks_bound_the_buffer_and_drain_tells_when_to_resume) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char chunk[4096] = {0}, sink[1 << 16];
  int writes = 0;
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_EQ(eddy_stream_set_watermarks(p.s, 10, 5), -EINVAL);
  EXPECT_OK(eddy_stream_set_watermarks(p.s, 8192, 32768));
  /* A producer that respects the high watermark. */
  while (!eddy_stream_over_high(p.s) && writes < 10000) {
    EXPECT_OK(eddy_stream_write(p.s, chunk, sizeof chunk));
    writes++;
  }
  EXPECT_EQ(eddy_stream_over_high(p.s), 1);
  EXPECT_LE(eddy_stream_buffered(p.s), 32768 + sizeof chunk);
  EXPECT_EQ(p.drains, 0);
  /* The consumer reads everything: the buffer drains. */
  for (int i = 0; i < 50 && p.drains == 0; i++) {
    (void)test_read_ready(sv[1], sink, sizeof sink, 100);
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  }
  EXPECT_EQ(p.drains, 1);
  EXPECT_LE(eddy_stream_buffered(p.s), 8192);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, pause_stops_delivery_and_resume_restarts_it) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  eddy_stream_pause(p.s);
  cr_assert(write(sv[1], "abc", 3) == 3);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0); /* nothing watched */
  EXPECT_EQ(p.n, 0);
  eddy_stream_resume(p.s);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(p.n, 3);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, close_flushes_the_buffer_first) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  static char big[300000], back[300000];
  memset(big, 'q', sizeof big);
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_OK(eddy_stream_write(p.s, big, sizeof big));
  EXPECT_GT(eddy_stream_buffered(p.s), 0);
  eddy_stream_close(p.s);
  EXPECT_EQ(eddy_stream_write(p.s, "x", 1), EDDY_ECLOSED);
  EXPECT_EQ(eddy_stream_shutdown(p.s), EDDY_ECLOSED);
  test_run_for(loop, 20);
  EXPECT_EQ(p.closes, 0); /* still flushing: the peer reads nothing yet */
  {
    size_t n = 0;
    int64_t end = test_clock_ms() + 10000;
    while (n < sizeof big && p.closes == 0 && test_clock_ms() < end) {
      n += test_read_ready(sv[1], back + n, sizeof back - n, 10);
      EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    }
    n += test_read_all(sv[1], back + n, sizeof back - n, 100);
    EXPECT_EQ(n, sizeof big);
  }
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, 0);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, a_close_that_cannot_flush_aborts_after_the_linger_time) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  static char big[300000];
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_EQ(eddy_stream_set_linger(p.s, -1), -EINVAL);
  EXPECT_OK(eddy_stream_set_linger(p.s, 30 * MS));
  EXPECT_OK(eddy_stream_write(p.s, big, sizeof big));
  eddy_stream_close(p.s);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

/* The linger timer is part of the stream: with the loop's timer heap warm
 * and every allocation failing, a close that cannot flush still ends when
 * the linger time passes, and allocates nothing. */
Test(stream, a_lingering_close_allocates_nothing_for_its_timer) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  static char big[300000];
  eddy_timer *warm;
  long live;
  test_socketpair(sv);
  EXPECT_OK(eddy_timer_new(loop, test_stop_loop, NULL, &warm));
  EXPECT_OK(eddy_timer_start(warm, 1000 * MS, 0)); /* the heap has room */
  eddy_timer_stop(warm);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_OK(eddy_stream_set_linger(p.s, 20 * MS));
  EXPECT_OK(eddy_stream_write(p.s, big, sizeof big));
  live = eddy__alloc_live();
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_CALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  eddy_stream_close(p.s);
  EXPECT_EQ(eddy__alloc_live(), live);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy__fault_reset();
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ETIMEDOUT);
  eddy_timer_close(warm);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, abort_discards_the_buffer_and_reports_it) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  static char big[300000];
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_OK(eddy_stream_write(p.s, big, sizeof big));
  eddy_stream_abort(p.s);
  eddy_stream_abort(p.s);
  eddy_stream_close(p.s);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -ECONNABORTED);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, closing_from_the_data_callback_is_safe) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {.close_on_data = 1};
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  cr_assert(write(sv[1], "x", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, 0);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

static int freed;
static void count_free(void *ptr) {
  (void)ptr;
  freed++;
}

Test(stream, write_owned_sends_without_copying_and_frees_once) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  static char big[300000], back[300000];
  memset(big, 'o', sizeof big);
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_OK(eddy_stream_write_owned(p.s, big, sizeof big, count_free));
  EXPECT_EQ(freed, 0);
  EXPECT_OK(eddy_stream_write_owned(p.s, "tail", 4, NULL));
  {
    size_t n = 0;
    int64_t end = test_clock_ms() + 10000;
    while (n < sizeof big + 4 && freed == 0 && test_clock_ms() < end) {
      n += test_read_ready(sv[1], back + n, sizeof back - n, 10);
      EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    }
  }
  EXPECT_EQ(freed, 1);
  eddy_stream_close(p.s);
  EXPECT_EQ(eddy_stream_write_owned(p.s, big, 10, count_free), EDDY_ECLOSED);
  EXPECT_EQ(freed, 2); /* freed even when refused */
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, sendfile_sends_a_file_range_in_order) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char path[] = "/tmp/eddy-sendfile-XXXXXX", back[64];
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  cr_assert(write(fd, "0123456789", 10) == 10);
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_OK(eddy_stream_write(p.s, "<", 1));
  EXPECT_OK(eddy_stream_sendfile(p.s, fd, 2, 5));
  EXPECT_OK(eddy_stream_sendfile(p.s, fd, 0, 0)); /* nothing */
  EXPECT_EQ(eddy_stream_sendfile(p.s, -1, 0, 5), -EINVAL);
  EXPECT_OK(eddy_stream_write(p.s, ">", 1));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(test_read_all(sv[1], back, 7, 1000), 7);
  cr_assert(memcmp(back, "<23456>", 7) == 0);
  /* A file shorter than promised ends the stream. */
  EXPECT_OK(eddy_stream_sendfile(p.s, fd, 8, 5));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, -EIO);
  close(fd);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, a_pair_of_pipes_is_a_stream_and_shutdown_closes_the_write_end) {
  eddy_loop *loop = test_loop();
  int in[2], out[2];
  test_peer p = {.echo = 1};
  char back[8];
  cr_assert(pipe(in) == 0 && pipe(out) == 0);
  EXPECT_OK(eddy_stream_open_pair(loop, in[0], out[1], &test_peer_callbacks, &p,
                                  &p.s));
  cr_assert(write(in[1], "ping", 4) == 4);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(read(out[0], back, sizeof back), 4);
  EXPECT_OK(eddy_stream_shutdown(p.s));
  EXPECT_EQ(read(out[0], back, sizeof back), 0); /* EOF on our output */
  close(in[1]);
  {
    char name[16];
    EXPECT_OK(eddy_stream_peer_name(p.s, name, sizeof name));
    EXPECT_STR(name, "pipe");
  }
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  EXPECT_EQ(p.status, 0);
  close(out[0]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, one_way_streams_refuse_what_they_cannot_do) {
  eddy_loop *loop = test_loop();
  int in[2];
  test_peer p = {0};
  eddy_stream *s;
  cr_assert(pipe(in) == 0);
  EXPECT_OK(
      eddy_stream_open_pair(loop, in[0], -1, &test_peer_callbacks, &p, &s));
  EXPECT_EQ(eddy_stream_write(s, "x", 1), -EBADF);
  EXPECT_EQ(eddy_stream_set_nodelay(s, 1), -ENOTSUP);
  EXPECT_EQ(eddy_stream_open_pair(loop, -1, -1, &test_peer_callbacks, &p, &s),
            -EBADF);
  EXPECT_EQ(eddy_stream_open(loop, -1, &test_peer_callbacks, &p, &s), -EBADF);
  close(in[1]);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 1);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, creation_failures_close_the_descriptor_and_leak_nothing) {
  eddy_loop *loop = test_loop();
  int sv[2];
  eddy_stream *s = NULL;
  test_peer p = {0};
  test_socketpair(sv);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &s),
            -ENOMEM);
  EXPECT_EQ(fcntl(sv[0], F_GETFD), -1); /* the stream owned it */
  EXPECT_EQ(s, 0);
  test_socketpair(sv);
  eddy__fault_fail_nth(EDDY__SYS_FCNTL, 1, EBADF);
  EXPECT_EQ(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &s),
            -EBADF);
  EXPECT_EQ(fcntl(sv[0], F_GETFD), -1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.closes, 0); /* never handed out, never called */
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

Test(stream, a_regular_file_is_refused_on_epoll) {
  eddy_loop *loop = test_loop();
  eddy_stream *s = NULL;
  test_peer p = {0};
  int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
  int err = eddy_stream_open(loop, fd, &test_peer_callbacks, &p, &s);
  if (strcmp(eddy_loop_backend_name(loop), "epoll") == 0) {
    EXPECT_EQ(err, -EPERM);
    EXPECT_EQ(fcntl(fd, F_GETFD), -1);
  } else {
    EXPECT_OK(err);
    eddy_stream_close(s);
  }
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_peer_free(&p);
  test_finish(loop);
}

/* Two streams; one peer floods. In each turn both get a callback. */
Test(stream, a_flooding_peer_does_not_starve_another_stream) {
  eddy_loop *loop = test_loop();
  int a[2], b[2];
  test_peer pa = {0}, pb = {0};
  static char flood[200000];
  test_socketpair(a);
  test_socketpair(b);
  cr_assert(fcntl(a[1], F_SETFL, O_NONBLOCK) == 0);
  EXPECT_OK(eddy_stream_open(loop, a[0], &test_peer_callbacks, &pa, &pa.s));
  EXPECT_OK(eddy_stream_open(loop, b[0], &test_peer_callbacks, &pb, &pb.s));
  (void)!write(a[1], flood, sizeof flood);
  cr_assert(write(b[1], "b", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(pb.n, 1);
  EXPECT_GT(pa.n, 0);
  EXPECT_LE(pa.n, 4 * 65536); /* a bounded amount per turn */
  close(a[1]);
  close(b[1]);
  test_peer_free(&pa);
  test_peer_free(&pb);
  test_finish(loop);
}

Test(stream, options_and_names_on_sockets) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char name[64];
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  EXPECT_EQ(eddy_stream_fd(p.s), sv[0]);
  EXPECT_EQ(eddy_stream_loop(p.s), (intptr_t)loop);
  EXPECT_OK(eddy_stream_peer_name(p.s, name, sizeof name));
  EXPECT_STR(name, "unix:");
  EXPECT_EQ(eddy_stream_set_keepalive(p.s, -1), -EINVAL);
  EXPECT_OK(eddy_stream_set_keepalive(p.s, 0));
  /* TCP options on a Unix socket: the kernel says no. */
  EXPECT_NE(eddy_stream_set_nodelay(p.s, 1), 0);
  eddy_stream_set_callbacks(p.s, NULL, NULL);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}

/* Copies queued after an owned buffer or a file range go into a block of
 * their own, never into the owner's memory. */
Test(stream, writes_queued_behind_owned_data_and_files_keep_their_order) {
  eddy_loop *loop = test_loop();
  int sv[2];
  test_peer p = {0};
  char owned[8] = "OWNED!!!", back[64];
  char path[] = "/tmp/eddy-order-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  unlink(path);
  cr_assert(write(fd, "file", 4) == 4);
  test_socketpair(sv);
  EXPECT_OK(eddy_stream_open(loop, sv[0], &test_peer_callbacks, &p, &p.s));
  /* Everything is queued: the kernel takes nothing at first. */
  eddy__fault_rule r = {.mode = EDDY__FAULT_EVERY, .n = 1, .err = EAGAIN};
  eddy__fault_set(EDDY__SYS_SENDMSG, &r);
  eddy__fault_set(EDDY__SYS_SENDFILE, &r);
  EXPECT_OK(eddy_stream_write(p.s, "a", 1));
  EXPECT_OK(eddy_stream_write_owned(p.s, owned, sizeof owned, NULL));
  EXPECT_OK(eddy_stream_write(p.s, "b", 1));
  EXPECT_OK(eddy_stream_sendfile(p.s, fd, 0, 4));
  EXPECT_OK(eddy_stream_write(p.s, "c", 1));
  EXPECT_EQ(eddy_stream_buffered(p.s), 15);
  cr_assert(memcmp(owned, "OWNED!!!", 8) == 0);
  eddy__fault_reset();
  for (int i = 0; i < 10 && eddy_stream_buffered(p.s) > 0; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(test_read_all(sv[1], back, 15, 1000), 15);
  cr_assert(memcmp(back, "aOWNED!!!bfilec", 15) == 0, "%.15s", back);
  close(fd);
  close(sv[1]);
  test_peer_free(&p);
  test_finish(loop);
}
