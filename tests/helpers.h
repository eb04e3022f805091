/* helpers.h: assertions that print both sides, and small test utilities. */
#ifndef EDDY_TESTS_HELPERS_H
#define EDDY_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eddy.h"

#define EXPECT_EQ(a, b) cr_assert(eq(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_NE(a, b) cr_assert(ne(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_LT(a, b) cr_assert(lt(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_LE(a, b) cr_assert(le(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_GE(a, b) cr_assert(ge(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_GT(a, b) cr_assert(gt(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_OK(expr) EXPECT_EQ((expr), 0)
#define EXPECT_STR(a, b) cr_assert(eq(str, (char *)(a), (char *)(b)))
/* eddy's live allocations are counted only where fault injection is
 * compiled in (-Dfaults=true, the suite's build); elsewhere the sanitizers
 * look for leaks and this checks nothing. */
#ifdef EDDY_FAULTS
#define EXPECT_LIVE(n) EXPECT_EQ(eddy__alloc_live(), (n))
#else
#define EXPECT_LIVE(n) ((void)0)
#endif

#include "sys/fault.h"

/* A loop on the backend $EDDY_BACKEND selects (the suite runs once per
 * backend). */
static inline eddy_loop *test_loop(void) {
  eddy_loop *loop = NULL;
  EXPECT_OK(eddy_loop_new(NULL, &loop));
  return loop;
}

static inline eddy_loop *test_fake_loop(int64_t start) {
  eddy_loop *loop = NULL;
  eddy_loop_options o = {.fake_clock = 1, .fake_clock_start = start};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  return loop;
}

/* Every test ends here: close what is left, run to idle, free the loop, and
 * check that eddy's allocator has nothing live. */
static inline void test_finish(eddy_loop *loop) {
  eddy_loop_close_all(loop);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_loop_free(loop));
  EXPECT_EQ(eddy__alloc_live(), 0);
}
/* ---- The stream fixture ------------------------------------------------------
 *
 * A stream and a record of what its callbacks saw, with switches for the
 * usual reactions (echo, close, shut down). Most stream, TLS and protocol
 * tests need one: open it over a descriptor (test_peer_open) or over one
 * end of a fresh socketpair whose other end the test drives by hand
 * (test_peer_socketpair). The received bytes grow on the heap, so every
 * test ends with test_peer_free for each peer, before test_finish. */

typedef struct test_peer {
  eddy_stream *s; /* NULL once the close callback has run */
  char *got;      /* every byte received, in order */
  size_t n, cap;
  int eofs, drains, closes, status;
  char detail[256];
  int echo;            /* write back what arrives */
  int close_on_data;   /* close (twice: the second must be harmless) */
  int close_on_eof;    /* close when the peer's end arrives */
  int shutdown_on_eof; /* half-close in answer to the peer's */
  int handshakes;      /* TLS handshakes completed (eddy_tls_on_handshake) */
} test_peer;

static inline void test_peer_data(eddy_stream *s, const char *d, size_t len,
                                  void *arg) {
  test_peer *p = arg;
  if (p->n + len > p->cap) {
    p->cap = (p->n + len) * 2;
    p->got = realloc(p->got, p->cap);
    cr_assert(p->got != NULL);
  }
  memcpy(p->got + p->n, d, len);
  p->n += len;
  if (p->echo)
    EXPECT_OK(eddy_stream_write(s, d, len));
  if (p->close_on_data) {
    eddy_stream_close(s);
    eddy_stream_close(s);
  }
}

static inline void test_peer_eof(eddy_stream *s, void *arg) {
  test_peer *p = arg;
  p->eofs++;
  if (p->shutdown_on_eof)
    EXPECT_OK(eddy_stream_shutdown(s));
  if (p->close_on_eof)
    eddy_stream_close(s);
}

static inline void test_peer_drain(eddy_stream *s, void *arg) {
  (void)s;
  ((test_peer *)arg)->drains++;
}

static inline void test_peer_close(eddy_stream *s, int status,
                                   const char *detail, void *arg) {
  test_peer *p = arg;
  (void)s;
  p->closes++;
  p->status = status;
  p->s = NULL;
  snprintf(p->detail, sizeof p->detail, "%s", detail);
}

static const eddy_stream_callbacks test_peer_callbacks = {test_peer_data,
                                                          test_peer_eof,
                                                          test_peer_drain,
                                                          test_peer_close};

/* The same without an eof callback: the stream then closes by itself when
 * the peer's end arrives. */
static const eddy_stream_callbacks test_peer_callbacks_no_eof = {
    test_peer_data, NULL, test_peer_drain, test_peer_close};

static inline void test_peer_open(eddy_loop *loop, test_peer *p, int fd) {
  EXPECT_OK(eddy_stream_open(loop, fd, &test_peer_callbacks, p, &p->s));
}

/* A socketpair, close-on-exec, blocking on the test's side. */
static inline void test_socketpair(int sv[2]) {
  cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

/* p's stream over one end of a new socketpair; returns the other end,
 * which the test reads, writes and closes itself. */
static inline int test_peer_socketpair(eddy_loop *loop, test_peer *p) {
  int sv[2];
  test_socketpair(sv);
  test_peer_open(loop, p, sv[0]);
  return sv[1];
}

static inline void test_peer_free(test_peer *p) {
  free(p->got);
  p->got = NULL;
  p->n = p->cap = 0;
}

/* ---- The connect fixture ------------------------------------------------------- */

/* What a connect callback was given, and how often. */
typedef struct test_connect_result {
  int calls, status;
  eddy_stream *s;
  char detail[200];
} test_connect_result;

/* An eddy_connect_cb that records into the test_connect_result in arg. */
static inline void test_on_connect(eddy_connect *req, eddy_stream *s,
                                   int status, const char *detail, void *arg) {
  test_connect_result *r = arg;
  (void)req;
  r->calls++;
  r->status = status;
  r->s = s;
  snprintf(r->detail, sizeof r->detail, "%s", detail);
}

/* ---- Bounded waits ------------------------------------------------------------ */

static inline void test_stop_loop(eddy_timer *t, void *arg) {
  (void)arg;
  eddy_loop_stop(eddy_timer_loop(t));
}

/* Runs the loop for at most ms milliseconds, or until it is idle. */
static inline void test_run_for(eddy_loop *loop, int ms) {
  eddy_timer *t;
  EXPECT_OK(eddy_timer_new(loop, test_stop_loop, NULL, &t));
  EXPECT_OK(eddy_timer_start(t, ms * EDDY_NSEC_PER_MSEC, 0));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_timer_close(t);
}

/* Runs the loop until *flag is nonzero or 10 s pass; returns *flag. */
static inline int test_run_until(eddy_loop *loop, const int *flag) {
  int64_t end = eddy_loop_now(loop) + 10 * EDDY_NSEC_PER_SEC;
  while (!*flag && eddy_loop_now(loop) < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  return *flag;
}

/* CLOCK_MONOTONIC in milliseconds, for a test's own deadlines. */
static inline int64_t test_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to timeout_ms for cond(arg) to hold, looking every
 * millisecond; returns whether it held. For conditions no descriptor or
 * callback announces (another thread's or process's state): a test waits
 * for the situation it names, never for a fixed time. */
static inline int test_wait_until(int (*cond)(void *), void *arg,
                                  int timeout_ms) {
  int64_t end = test_clock_ms() + timeout_ms;
  struct timespec ms = {0, 1000000};
  while (!cond(arg)) {
    if (test_clock_ms() >= end)
      return cond(arg);
    nanosleep(&ms, NULL);
  }
  return 1;
}

/* The state letter of a process or thread in /proc ("R", "S", "Z", ...)
 * from the stat file at path, or 0 when it is gone. */
static inline char test_proc_state(const char *path) {
  char line[512], state = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  if (fgets(line, sizeof line, f)) {
    char *paren = strrchr(line, ')');
    if (paren && paren[1] == ' ')
      state = paren[2];
  }
  fclose(f);
  return state;
}

/* 1 when thread tid of this process is asleep (blocked in a system call
 * such as epoll_wait or poll). */
static inline int test_thread_sleeping(pid_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  return test_proc_state(path) == 'S';
}

/* One read of what fd has, waiting at most timeout_ms for it to be
 * readable: never blocks longer, even on a blocking descriptor. Returns the
 * count, 0 on silence, at the end, or on an error. */
static inline size_t test_read_ready(int fd, char *buf, size_t cap,
                                     int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  ssize_t r;
  if (poll(&p, 1, timeout_ms) != 1)
    return 0;
  r = read(fd, buf, cap);
  return r > 0 ? (size_t)r : 0;
}

/* Reads from a descriptor until cap bytes, its end, or timeout_ms of
 * silence. Returns the count. */
static inline size_t test_read_all(int fd, char *buf, size_t cap,
                                   int timeout_ms) {
  size_t n = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (n < cap && poll(&p, 1, timeout_ms) == 1) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  return n;
}
#endif
