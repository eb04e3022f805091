/* coro_stream.c: reading and writing streams from coroutines, and
 * cancelling each kind of read and the write while they wait. */
#include <fcntl.h>

#include "coro_test.h"

/* A coroutine over one end of a socketpair, and what it saw. */
typedef struct reader {
  int fd; /* the coroutine's end, until it is a stream */
  eddy_coro_stream *cs;
  int results[8];
  char got[8][128];
  size_t lens[8];
  int n;        /* results recorded */
  int waiting;  /* set just before the wait under test */
  size_t exact; /* for read_exact */
  size_t cap;   /* buffer size for read / read_line */
  int max_line; /* line maximum (0: the default) */
  int rounds;   /* how many reads to make */
} reader;

static eddy_coro_stream *open_stream(eddy_coro *co, reader *r) {
  eddy_stream *s;
  eddy_line_options lo = {.max_length = (size_t)r->max_line};
  EXPECT_OK(eddy_stream_open(eddy_coro_loop(co), r->fd, NULL, NULL, &s));
  EXPECT_OK(eddy_coro_stream_open(co, s, &lo, &r->cs));
  return r->cs;
}

static int read_some(eddy_coro *co, void *arg) {
  reader *r = arg;
  eddy_coro_stream *cs = open_stream(co, r);
  for (int i = 0; i < r->rounds; i++) {
    r->waiting = 1;
    r->results[r->n] = eddy_coro_read(co, cs, r->got[r->n],
                                      r->cap ? r->cap : 127);
    r->n++;
  }
  return 0;
}

static int read_lines(eddy_coro *co, void *arg) {
  reader *r = arg;
  eddy_coro_stream *cs = open_stream(co, r);
  for (int i = 0; i < r->rounds; i++) {
    r->waiting = 1;
    r->results[r->n] = eddy_coro_read_line(co, cs, r->got[r->n],
                                           r->cap ? r->cap : 128,
                                           &r->lens[r->n]);
    r->n++;
  }
  return 0;
}

static int read_exact(eddy_coro *co, void *arg) {
  reader *r = arg;
  eddy_coro_stream *cs = open_stream(co, r);
  for (int i = 0; i < r->rounds; i++) {
    r->waiting = 1;
    r->results[r->n] = eddy_coro_read_exact(co, cs, r->got[r->n], r->exact);
    r->n++;
  }
  return 0;
}

/* A reader over a new socketpair; returns the test's end. */
static int start_reader(eddy_loop *loop, eddy_coro_fn fn, reader *r,
                        coro_done *d, eddy_coro **co) {
  int sv[2];
  test_socketpair(sv);
  r->fd = sv[0];
  *co = coro_start(loop, fn, r, d);
  return sv[1];
}

static int reads_done(eddy_loop *loop, reader *r, int n) {
  return coro_run_until(loop, &r->n, n);
}

static void put(int fd, const char *text) {
  EXPECT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

Test(coro_stream, read_returns_what_came_then_zero_at_the_end) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 2};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_some, &r, &d, &co);
  put(peer, "hello");
  EXPECT_EQ(reads_done(loop, &r, 1), 1);
  EXPECT_EQ(r.results[0], 5);
  EXPECT_EQ(memcmp(r.got[0], "hello", 5), 0);
  close(peer);
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  EXPECT_EQ(r.results[1], 0);
  test_finish(loop);
}

Test(coro_stream, a_small_buffer_leaves_the_rest_for_the_next_read) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 3, .cap = 4};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_some, &r, &d, &co);
  put(peer, "abcdefghij");
  EXPECT_EQ(reads_done(loop, &r, 3), 3);
  EXPECT_EQ(r.results[0], 4);
  EXPECT_EQ(r.results[1], 4);
  EXPECT_EQ(r.results[2], 2);
  EXPECT_EQ(memcmp(r.got[2], "ij", 2), 0);
  close(peer);
  test_finish(loop);
}

Test(coro_stream, read_line_strips_the_delimiter_and_keeps_the_rest) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 4};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_lines, &r, &d, &co);
  put(peer, "one\r\ntwo\nthr");
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  put(peer, "ee\nlast");
  close(peer);
  EXPECT_EQ(reads_done(loop, &r, 4), 4);
  EXPECT_EQ(r.results[0], 1);
  EXPECT_STR(r.got[0], "one");
  EXPECT_EQ(r.lens[0], 3);
  EXPECT_STR(r.got[1], "two");
  EXPECT_STR(r.got[2], "three");
  EXPECT_EQ(r.results[3], 1); /* a last line without its delimiter */
  EXPECT_STR(r.got[3], "last");
  test_finish(loop);
}

Test(coro_stream, read_line_reports_the_end_after_the_last_line) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 2};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_lines, &r, &d, &co);
  put(peer, "only\n");
  close(peer);
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  EXPECT_EQ(r.results[0], 1);
  EXPECT_EQ(r.results[1], 0);
  test_finish(loop);
}

Test(coro_stream, a_line_over_the_maximum_is_etoolong_and_skipped) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 2, .max_line = 8};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_lines, &r, &d, &co);
  put(peer, "0123456789abcdef\nok\n");
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  EXPECT_EQ(r.results[0], EDDY_ETOOLONG);
  EXPECT_EQ(r.results[1], 1);
  EXPECT_STR(r.got[1], "ok");
  close(peer);
  test_finish(loop);
}

Test(coro_stream, a_line_longer_than_the_buffer_is_emsgsize_and_consumed) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 2, .cap = 4};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_lines, &r, &d, &co);
  put(peer, "toolong\nok\n");
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  EXPECT_EQ(r.results[0], -EMSGSIZE);
  EXPECT_EQ(r.results[1], 1);
  EXPECT_STR(r.got[1], "ok");
  close(peer);
  test_finish(loop);
}

Test(coro_stream, read_exact_waits_for_all_the_bytes_across_writes) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 2, .exact = 6};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_exact, &r, &d, &co);
  put(peer, "abc");
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(r.n, 0);
  put(peer, "defgh");
  EXPECT_EQ(reads_done(loop, &r, 1), 1);
  EXPECT_EQ(r.results[0], 6);
  EXPECT_EQ(memcmp(r.got[0], "abcdef", 6), 0);
  close(peer); /* "gh" and then the end: short */
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  EXPECT_EQ(r.results[1], -ENODATA);
  test_finish(loop);
}

static int line_then_body(eddy_coro *co, void *arg) {
  reader *r = arg;
  eddy_coro_stream *cs = open_stream(co, r);
  r->results[0] = eddy_coro_read_line(co, cs, r->got[0], 128, &r->lens[0]);
  r->results[1] = eddy_coro_read_exact(co, cs, r->got[1], 4);
  r->results[2] = eddy_coro_read_line(co, cs, r->got[2], 128, &r->lens[2]);
  r->n = 3;
  return 0;
}

Test(coro_stream, lines_and_raw_reads_mix_on_one_stream) {
  eddy_loop *loop = test_loop();
  reader r = {0};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, line_then_body, &r, &d, &co);
  put(peer, "head\nBODYtail\n");
  EXPECT_EQ(reads_done(loop, &r, 3), 3);
  EXPECT_EQ(r.results[0], 1);
  EXPECT_STR(r.got[0], "head");
  EXPECT_EQ(r.results[1], 4);
  EXPECT_EQ(memcmp(r.got[1], "BODY", 4), 0);
  EXPECT_EQ(r.results[2], 1);
  EXPECT_STR(r.got[2], "tail");
  close(peer);
  test_finish(loop);
}

Test(coro_stream, a_reset_reaches_the_waiting_read_as_its_error) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 2};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_some, &r, &d, &co);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  /* A close with unread data sends a reset on TCP; on a socketpair the
   * reader sees the end: both must end the read, not hang it. */
  close(peer);
  EXPECT_EQ(reads_done(loop, &r, 2), 2);
  EXPECT_LE(r.results[0], 0);
  test_finish(loop);
}

/* ---- Cancelling a read of each kind -------------------------------------------- */

static void cancel_while_waiting(eddy_coro_fn fn, reader *r) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  eddy_coro *co;
  char buf[16];
  int peer = start_reader(loop, fn, r, &d, &co);
  put(peer, "par"); /* part of a line, or of the exact count */
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(r->waiting);
  EXPECT_EQ(r->n, 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(r->n, 0); /* never inside the cancel */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r->n, 2);
  EXPECT_EQ(r->results[0], -ECANCELED);
  /* Cancellation is sticky: the next read returned at once. */
  EXPECT_EQ(r->results[1], -ECANCELED);
  EXPECT_EQ(d.calls, 1);
  /* The coroutine owned the stream: it is closed. */
  EXPECT_EQ(test_read_all(peer, buf, sizeof buf, 1000), 0);
  close(peer);
  test_finish(loop);
}

Test(coro_stream, cancel_while_blocked_in_read_line) {
  reader r = {.rounds = 2};
  cancel_while_waiting(read_lines, &r);
}

Test(coro_stream, cancel_while_blocked_in_read_exact) {
  reader r = {.rounds = 2, .exact = 10};
  cancel_while_waiting(read_exact, &r);
}

Test(coro_stream, cancel_while_blocked_in_read) {
  reader r = {.rounds = 2};
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_some, &r, &d, &co);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(r.waiting);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.results[0], -ECANCELED);
  EXPECT_EQ(r.results[1], -ECANCELED);
  close(peer);
  test_finish(loop);
}

/* ---- Writing --------------------------------------------------------------------- */

typedef struct writer {
  int fd;
  size_t total; /* bytes to write, in 64 KiB pieces */
  size_t written;
  int result;
  int returned;
} writer;

static int write_lots(eddy_coro *co, void *arg) {
  static char block[65536];
  writer *w = arg;
  eddy_stream *s;
  eddy_coro_stream *cs;
  EXPECT_OK(eddy_stream_open(eddy_coro_loop(co), w->fd, NULL, NULL, &s));
  EXPECT_OK(eddy_coro_stream_open(co, s, NULL, &cs));
  while (w->written < w->total) {
    w->result = eddy_coro_write(co, cs, block, sizeof block);
    if (w->result != 0)
      break;
    w->written += sizeof block;
    /* The write waited while the buffer was over its high watermark. */
    EXPECT_LE(eddy_stream_buffered(s), 64 * 1024 + sizeof block);
  }
  w->returned = 1;
  return w->result;
}

Test(coro_stream, write_waits_while_the_peer_does_not_read) {
  eddy_loop *loop = test_loop();
  writer w = {.total = 8u << 20};
  coro_done d = {0};
  int sv[2];
  static char sink[1 << 16];
  size_t drained = 0;
  test_socketpair(sv);
  w.fd = sv[0];
  coro_start(loop, write_lots, &w, &d);
  test_run_for(loop, 50);
  EXPECT_EQ(w.returned, 0); /* waiting for the peer */
  EXPECT_LT(w.written, w.total);
  /* Reading lets it go on, to the end. */
  int64_t end = test_clock_ms() + 10000;
  while (!w.returned && test_clock_ms() < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    drained += test_read_ready(sv[1], sink, sizeof sink, 1);
  }
  EXPECT_EQ(w.returned, 1);
  EXPECT_EQ(w.result, 0);
  close(sv[1]);
  test_finish(loop);
  (void)drained;
}

Test(coro_stream, cancel_while_blocked_in_write) {
  eddy_loop *loop = test_loop();
  writer w = {.total = 8u << 20};
  coro_done d = {0};
  int sv[2];
  eddy_coro *co;
  test_socketpair(sv);
  w.fd = sv[0];
  co = coro_start(loop, write_lots, &w, &d);
  test_run_for(loop, 50);
  EXPECT_EQ(w.returned, 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(coro_run_until(loop, &w.returned, 1), 1);
  EXPECT_EQ(w.result, -ECANCELED);
  close(sv[1]); /* the stream's linger ends at once: the peer is gone */
  test_finish(loop);
}

/* ---- Closing a stream a coroutine waits on ------------------------------------------ */

typedef struct closer {
  reader r;
  int closed;
} closer;

static int close_it(eddy_coro *co, void *arg) {
  closer *c = arg;
  (void)co;
  eddy_coro_stream_close(c->r.cs);
  c->closed = 1;
  EXPECT_EQ(c->r.n, 0); /* the reader does not run inside the close */
  return 0;
}

Test(coro_stream, closing_a_stream_another_coroutine_waits_on_ends_its_read) {
  eddy_loop *loop = test_loop();
  closer c = {.r = {.rounds = 1}};
  coro_done d = {0}, dc = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_lines, &c.r, &d, &co);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(c.r.waiting);
  coro_start(loop, close_it, &c, &dc);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(c.closed, 1);
  EXPECT_EQ(c.r.results[0], EDDY_ECLOSED);
  close(peer);
  test_finish(loop);
}

/* ---- One reader and one writer on one stream --------------------------------------- */

typedef struct duplex {
  eddy_coro_stream *cs;
  int read_result, write_result;
  int read_done, write_done;
  size_t written;
} duplex;

static int duplex_reader(eddy_coro *co, void *arg) {
  duplex *x = arg;
  char line[64];
  x->read_result = eddy_coro_read_line(co, x->cs, line, sizeof line, NULL);
  x->read_done = 1;
  return 0;
}

static int duplex_writer(eddy_coro *co, void *arg) {
  static char block[65536];
  duplex *x = arg;
  while ((x->write_result = eddy_coro_write(co, x->cs, block, sizeof block)) ==
         0)
    x->written += sizeof block;
  x->write_done = 1;
  return 0;
}

static int duplex_owner(eddy_coro *co, void *arg) {
  duplex *x = arg;
  EXPECT_OK(eddy_coro_spawn_child(co, duplex_reader, x, NULL, NULL));
  EXPECT_OK(eddy_coro_spawn_child(co, duplex_writer, x, NULL, NULL));
  return eddy_coro_wait_children(co);
}

Test(coro_stream, one_coroutine_reads_while_another_waits_to_write) {
  eddy_loop *loop = test_loop();
  duplex x = {0};
  coro_done d = {0};
  int sv[2];
  eddy_stream *s;
  eddy_coro *owner;
  test_socketpair(sv);
  /* The owner opens the stream before its children start. */
  EXPECT_OK(eddy_coro_spawn(loop, duplex_owner, &x, NULL, &owner));
  eddy_coro_on_done(owner, coro_record_done, &d);
  EXPECT_OK(eddy_stream_open(loop, sv[0], NULL, NULL, &s));
  EXPECT_OK(eddy_coro_stream_open(owner, s, NULL, &x.cs));
  test_run_for(loop, 50);
  EXPECT_EQ(x.write_done, 0); /* the peer reads nothing: the writer waits */
  EXPECT_EQ(x.read_done, 0);
  /* The reader gets its line while the writer still waits. */
  EXPECT_EQ(write(sv[1], "hi\n", 3), 3);
  EXPECT_EQ(coro_run_until(loop, &x.read_done, 1), 1);
  EXPECT_EQ(x.read_result, 1);
  EXPECT_EQ(x.write_done, 0);
  /* Cancelling the owner cancels the waiting writer. */
  eddy_coro_cancel(owner);
  EXPECT_EQ(coro_run_until(loop, &d.calls, 1), 1);
  EXPECT_EQ(x.write_result, -ECANCELED);
  close(sv[1]);
  test_finish(loop);
}

Test(coro_stream, close_all_while_blocked_in_read_line_leaves_nothing) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 1};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_lines, &r, &d, &co);
  put(peer, "part");
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(r.waiting);
  test_finish(loop);
  EXPECT_EQ(r.results[0], -ECANCELED);
  close(peer);
}

/* ---- Borrowed reads -------------------------------------------------------------------- */

static int read_borrowed(eddy_coro *co, void *arg) {
  reader *r = arg;
  eddy_coro_stream *cs = open_stream(co, r);
  for (int i = 0; i < r->rounds; i++) {
    const char *data = NULL;
    r->waiting = 1;
    r->results[r->n] = eddy_coro_read_borrow(co, cs, &data,
                                             r->cap ? r->cap : 127);
    /* The bytes are valid until the next wait: copied out now. */
    if (r->results[r->n] > 0)
      memcpy(r->got[r->n], data, (size_t)r->results[r->n]);
    r->n++;
  }
  return 0;
}

Test(coro_stream, a_borrowed_read_lends_the_bytes_and_leaves_the_rest) {
  eddy_loop *loop = test_loop();
  reader r = {.rounds = 4, .cap = 4};
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_borrowed, &r, &d, &co);
  put(peer, "abcdefghij");
  EXPECT_EQ(reads_done(loop, &r, 3), 3);
  EXPECT_EQ(r.results[0], 4);
  EXPECT_EQ(memcmp(r.got[0], "abcd", 4), 0);
  EXPECT_EQ(memcmp(r.got[1], "efgh", 4), 0);
  EXPECT_EQ(r.results[2], 2);
  EXPECT_EQ(memcmp(r.got[2], "ij", 2), 0);
  close(peer);
  EXPECT_EQ(reads_done(loop, &r, 4), 4);
  EXPECT_EQ(r.results[3], 0);
  test_finish(loop);
}

Test(coro_stream, cancel_while_blocked_in_read_borrow) {
  reader r = {.rounds = 2};
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  eddy_coro *co;
  int peer = start_reader(loop, read_borrowed, &r, &d, &co);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  cr_assert(r.waiting);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.results[0], -ECANCELED);
  EXPECT_EQ(r.results[1], -ECANCELED);
  close(peer);
  test_finish(loop);
}
