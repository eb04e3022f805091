/* Line framing: the splitter on its own (every split of the input gives
 * the same events), and the reader over real streams (socketpairs):
 * one-byte reads, pause, close and free from inside a callback, raw mode,
 * too long lines, the end of input, writing a line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "proto/line/line.h"

static void reset_faults(void) {
  eddy__fault_reset();
}

TestSuite(split, .init = reset_faults, .fini = reset_faults);
TestSuite(line, .init = reset_faults, .fini = reset_faults);

/* ---- A log of events: "L(abc)" a line, "T(ab)" too long, "R(xy)" raw,
 * "E(rest)" the end ---- */

typedef struct events {
  char log[8192];
  size_t n;
  size_t raw_left; /* a "R<n>" line asks for n raw bytes */
  int raw_open;    /* the last entry is raw bytes */
} events;

static void note(events *e, char kind, const char *p, size_t len) {
  int k;
  /* Raw bytes come in chunks that depend on the reads: one entry for a
   * run of them. */
  if (kind == 'R' && len == 0)
    return;
  if (kind == 'R' && e->raw_open && e->n > 0) {
    e->n--; /* reopen the last entry */
    kind = 0;
  }
  e->raw_open = kind == 'R' || kind == 0;
  if (kind == 0)
    k = snprintf(e->log + e->n, sizeof e->log - e->n, "%.*s)", (int)len, p);
  else
    k = snprintf(e->log + e->n, sizeof e->log - e->n, "%c(%.*s)", kind,
                 (int)len, p);
  cr_assert(k > 0 && (size_t)k < sizeof e->log - e->n, "log full");
  e->n += (size_t)k;
}

/* ---- The splitter, driven as line.c drives it ---- */

typedef struct driver {
  eddy__lines l;
  events e;
  int paused;
} driver;

static void drive_init(driver *d, const char *delim, size_t max) {
  memset(d, 0, sizeof *d);
  EXPECT_OK(eddy__lines_init(&d->l, delim, delim ? strlen(delim) : 0, max));
}

/* Pulls events until none, or a "P" line pauses. */
static void pull(driver *d) {
  const char *p;
  size_t n;
  int ev = 0;
  while (!d->paused && (ev = eddy__lines_next(&d->l, &p, &n)) > 0) {
    if (ev == EDDY__LINES_LINE) {
      note(&d->e, 'L', p, n);
      if (n >= 2 && p[0] == 'R' && p[1] >= '0' && p[1] <= '9') {
        d->e.raw_left = strtoul(p + 1, NULL, 10);
        eddy__lines_set_raw(&d->l, d->e.raw_left > 0);
      }
      if (n == 1 && p[0] == 'P')
        d->paused = 1;
    } else if (ev == EDDY__LINES_TOO_LONG) {
      note(&d->e, 'T', p, n);
    } else {
      size_t take = n < d->e.raw_left ? n : d->e.raw_left;
      note(&d->e, 'R', p, take);
      d->e.raw_left -= take;
      if (d->e.raw_left == 0)
        eddy__lines_set_raw(&d->l, 0);
      eddy__lines_used(&d->l, take);
    }
  }
  cr_assert(ev >= 0 || d->paused, "next failed: %d", ev);
}

static void feed(driver *d, const char *data, size_t len) {
  eddy__lines_push(&d->l, data, len);
  pull(d);
  EXPECT_OK(eddy__lines_keep(&d->l));
}

static void resume(driver *d) {
  d->paused = 0;
  pull(d);
}

static void end(driver *d) {
  const char *p;
  size_t n;
  while (d->paused)
    resume(d);
  eddy__lines_rest(&d->l, &p, &n);
  note(&d->e, 'E', p, n);
}

/* The events of input fed in chunks of size chunk (0: all at once), with
 * every pause resumed before the next chunk. */
static const char *split_run(const char *delim, size_t max, const char *in,
                             size_t len, size_t chunk) {
  static driver d;
  static char out[8192];
  drive_init(&d, delim, max);
  for (size_t i = 0; i < len;) {
    size_t k = chunk == 0 || len - i < chunk ? len - i : chunk;
    char *copy = malloc(k ? k : 1); /* over-reads past k crash under ASan */
    memcpy(copy, in + i, k);
    feed(&d, copy, k);
    free(copy);
    while (d.paused)
      resume(&d);
    i += k;
  }
  end(&d);
  eddy__lines_free(&d.l);
  snprintf(out, sizeof out, "%s", d.e.log);
  return out;
}

/* Every chunk size gives want. */
static void expect_split(const char *delim, size_t max, const char *in,
                         const char *want) {
  size_t len = strlen(in);
  for (size_t chunk = 0; chunk <= len; chunk++)
    cr_assert(strcmp(split_run(delim, max, in, len, chunk), want) == 0,
              "chunks of %zu: got %s, want %s", chunk,
              split_run(delim, max, in, len, chunk), want);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(split, lines_split_on_newline_with_an_optional_cr_dropped) {
  expect_split(NULL, 0, "one\ntwo\r\n\r\nthree\rx\n",
               "L(one)L(two)L()L(three\rx)E()");
  test_finish(test_fake_loop(0));
}

Test(split, delimiter_split_across_one_byte_reads_yields_one_line) {
  expect_split("\r\n", 0, "ab\r\ncd\r\n", "L(ab)L(cd)E()");
  expect_split("--boundary", 0, "x--bound--boundaryy--boundary",
               "L(x--bound)L(y)E()");
  test_finish(test_fake_loop(0));
}

Test(split, a_strict_crlf_delimiter_ignores_a_lone_newline) {
  expect_split("\r\n", 0, "a\nb\r\n", "L(a\nb)E()");
  test_finish(test_fake_loop(0));
}

Test(split, a_self_overlapping_delimiter_is_found_at_its_first_end) {
  expect_split("aab", 0, "xaaab1aab", "L(xa)L(1)E()");
  test_finish(test_fake_loop(0));
}

Test(split, a_nul_delimiter_splits_on_nul) {
  static const char in[] = "a\0bc\0";
  driver d;
  memset(&d, 0, sizeof d);
  EXPECT_OK(eddy__lines_init(&d.l, "\0", 1, 0));
  for (size_t i = 0; i < sizeof in - 1; i++)
    feed(&d, in + i, 1);
  end(&d);
  eddy__lines_free(&d.l);
  EXPECT_EQ(d.e.n, strlen("L(a)L(bc)E()"));
  cr_assert(strcmp(d.e.log, "L(a)L(bc)E()") == 0, "%s", d.e.log);
  test_finish(test_fake_loop(0));
}

Test(split, many_lines_in_one_read_are_delivered_without_copying) {
  driver d;
  static const char in[] = "a\nbb\nccc\n";
  const char *p;
  size_t n;
  drive_init(&d, NULL, 0);
  eddy__lines_push(&d.l, in, sizeof in - 1);
  EXPECT_EQ(eddy__lines_next(&d.l, &p, &n), EDDY__LINES_LINE);
  cr_assert(p == in && n == 1);
  EXPECT_EQ(eddy__lines_next(&d.l, &p, &n), EDDY__LINES_LINE);
  cr_assert(p == in + 2 && n == 2);
  EXPECT_EQ(eddy__lines_next(&d.l, &p, &n), EDDY__LINES_LINE);
  cr_assert(p == in + 5 && n == 3);
  EXPECT_EQ(eddy__lines_next(&d.l, &p, &n), EDDY__LINES_NONE);
  EXPECT_EQ(eddy__alloc_live(), 0); /* nothing was buffered */
  eddy__lines_free(&d.l);
  test_finish(test_fake_loop(0));
}

Test(split, a_line_too_long_is_reported_once_and_the_next_line_follows) {
  expect_split(NULL, 3, "abc\nabcd\nabcdefghij\nok\n",
               "L(abc)T(abc)T(abc)L(ok)E()");
  expect_split("--", 3, "abc--abcd-x--y--", "L(abc)T(abc)L(y)E()");
  test_finish(test_fake_loop(0));
}

Test(split, a_cr_before_the_newline_does_not_count_toward_the_maximum) {
  expect_split(NULL, 3, "abc\r\nabc\r\r\n", "L(abc)T(abc)E()");
  test_finish(test_fake_loop(0));
}

Test(split, a_last_line_without_delimiter_is_the_rest_unless_too_long) {
  expect_split(NULL, 4, "a\nxyz", "L(a)E(xyz)");
  expect_split(NULL, 4, "a\nxyzxyz", "L(a)T(xyzx)E()");
  test_finish(test_fake_loop(0));
}

Test(split, raw_mode_from_a_line_callback_takes_the_bytes_after_that_line) {
  expect_split(NULL, 0, "R3\nabcdef\ng\n", "L(R3)R(abc)L(def)L(g)E()");
  test_finish(test_fake_loop(0));
}

Test(split, raw_mode_bytes_may_contain_delimiters) {
  expect_split("\r\n", 0, "R5\r\na\r\nbcX\r\n", "L(R5)R(a\r\nbc)L(X)E()");
  test_finish(test_fake_loop(0));
}

Test(split, pausing_holds_the_buffered_lines_until_resume) {
  driver d;
  static const char in[] = "a\nP\nb\nc\npartial";
  drive_init(&d, NULL, 0);
  feed(&d, in, sizeof in - 1);
  cr_assert(strcmp(d.e.log, "L(a)L(P)") == 0, "%s", d.e.log);
  EXPECT_EQ(eddy__lines_buffered(&d.l), strlen("b\nc\npartial"));
  resume(&d);
  cr_assert(strcmp(d.e.log, "L(a)L(P)L(b)L(c)") == 0, "%s", d.e.log);
  feed(&d, "ly\n", 3);
  end(&d);
  cr_assert(strcmp(d.e.log, "L(a)L(P)L(b)L(c)L(partially)E()") == 0, "%s",
            d.e.log);
  eddy__lines_free(&d.l);
  test_finish(test_fake_loop(0));
}

Test(split, a_switch_to_raw_with_lines_already_buffered_keeps_them) {
  expect_split(NULL, 0, "P\nR2\nxy1\n2\n", "L(P)L(R2)R(xy)L(1)L(2)E()");
  test_finish(test_fake_loop(0));
}

Test(split, empty_input_and_empty_pushes_give_nothing) {
  driver d;
  drive_init(&d, NULL, 0);
  feed(&d, "", 0);
  feed(&d, NULL, 0);
  end(&d);
  cr_assert(strcmp(d.e.log, "E()") == 0);
  eddy__lines_free(&d.l);
  test_finish(test_fake_loop(0));
}

Test(split, a_delimiter_longer_than_the_maximum_is_refused) {
  eddy__lines l;
  char big[EDDY_LINE_DELIMITER_MAX + 1];
  memset(big, '-', sizeof big);
  EXPECT_EQ(eddy__lines_init(&l, big, sizeof big, 0), -EINVAL);
  EXPECT_OK(eddy__lines_init(&l, big, sizeof big - 1, 0));
  eddy__lines_free(&l);
  test_finish(test_fake_loop(0));
}

Test(split, no_memory_for_a_partial_line_is_reported) {
  eddy__lines l;
  const char *p;
  size_t n;
  EXPECT_OK(eddy__lines_init(&l, NULL, 0, 0));
  eddy__lines_push(&l, "partial", 7);
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy__lines_next(&l, &p, &n), -ENOMEM);
  eddy__fault_reset();
  EXPECT_EQ(eddy__lines_next(&l, &p, &n), EDDY__LINES_NONE);
  EXPECT_EQ(eddy__lines_buffered(&l), 7);
  eddy__lines_free(&l);
  test_finish(test_fake_loop(0));
}

/* ---- The reader over a stream ---- */

typedef struct reader {
  eddy_line *lr;
  events e;
  int fd; /* the other end of the socketpair */
  int eofs, closes, drains, status;
  char detail[96];
  int on_line; /* what the line callback does to "!" lines */
  int too_longs;
} reader;

enum { NOTHING, PAUSE, CLOSE, FREE, ABORT };

static void r_line(eddy_line *lr, const char *p, size_t n, void *arg) {
  reader *r = arg;
  note(&r->e, 'L', p, n);
  if (n >= 2 && p[0] == 'R' && p[1] >= '0' && p[1] <= '9') {
    r->e.raw_left = strtoul(p + 1, NULL, 10);
    eddy_line_set_raw(lr, 1);
  }
  if (n == 1 && p[0] == '!') {
    switch (r->on_line) {
    case PAUSE:
      eddy_line_pause(lr);
      break;
    case CLOSE:
      eddy_stream_close(eddy_line_stream(lr));
      break;
    case FREE:
      eddy_line_free(lr);
      r->lr = NULL;
      break;
    }
  }
}

static size_t r_raw(eddy_line *lr, const char *p, size_t n, void *arg) {
  reader *r = arg;
  size_t take = n < r->e.raw_left ? n : r->e.raw_left;
  note(&r->e, 'R', p, take);
  r->e.raw_left -= take;
  if (r->e.raw_left == 0)
    eddy_line_set_raw(lr, 0);
  return take;
}

static void r_too_long(eddy_line *lr, const char *p, size_t n, void *arg) {
  (void)lr;
  note(&((reader *)arg)->e, 'T', p, n);
  ((reader *)arg)->too_longs++;
}

static void r_eof(eddy_line *lr, const char *rest, size_t n, void *arg) {
  reader *r = arg;
  note(&r->e, 'E', rest, n);
  r->eofs++;
  eddy_stream_close(eddy_line_stream(lr));
}

static void r_drain(eddy_line *lr, void *arg) {
  (void)lr;
  ((reader *)arg)->drains++;
}

static void r_close(eddy_line *lr, int status, const char *detail, void *arg) {
  reader *r = arg;
  (void)lr;
  r->closes++;
  r->status = status;
  snprintf(r->detail, sizeof r->detail, "%s", detail);
  r->lr = NULL;
}

static const eddy_line_callbacks all_cb = {r_line, r_raw,   r_too_long,
                                           r_eof,  r_drain, r_close};
static const eddy_line_callbacks no_too_long = {r_line, r_raw,   NULL,
                                                r_eof,  r_drain, r_close};

static void open_reader(eddy_loop *loop, reader *r, const eddy_line_options *o,
                        const eddy_line_callbacks *cb) {
  int sv[2];
  eddy_stream *s;
  memset(r, 0, sizeof *r);
  cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  EXPECT_OK(eddy_stream_open(loop, sv[0], NULL, NULL, &s));
  EXPECT_OK(eddy_line_open(s, o, cb, r, &r->lr));
  r->fd = sv[1];
}

static void send_bytes(reader *r, const char *p, size_t n) {
  cr_assert(write(r->fd, p, n) == (ssize_t)n);
}

/* The same to a reader that may have ended its stream (no SIGPIPE). */
static void send_maybe(reader *r, const char *p, size_t n) {
  (void)send(r->fd, p, n, MSG_NOSIGNAL);
}

/* Sends one byte at a time, each read by its own turn of the loop. */
static void send_one_by_one(eddy_loop *loop, reader *r, const char *p) {
  for (; *p; p++) {
    send_maybe(r, p, 1);
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  }
}

static void turns(eddy_loop *loop, int n) {
  for (int i = 0; i < n; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
}

static void expect_log(const reader *r, const char *want) {
  cr_assert(strcmp(r->e.log, want) == 0, "got %s, want %s", r->e.log, want);
}

static void finish_reader(eddy_loop *loop, reader *r) {
  if (r->fd >= 0)
    close(r->fd);
  test_finish(loop);
}

Test(line, lines_arrive_whole_over_a_stream) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  send_bytes(&r, "hello\r\nworld\n", 13);
  turns(loop, 3);
  expect_log(&r, "L(hello)L(world)");
  finish_reader(loop, &r);
}

Test(line, delimiter_split_across_one_byte_reads_yields_one_line) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_options o = {.delimiter = "\r\n", .delimiter_len = 2};
  open_reader(loop, &r, &o, &all_cb);
  send_one_by_one(loop, &r, "ab\r\nc\r\n");
  expect_log(&r, "L(ab)L(c)");
  finish_reader(loop, &r);
}

Test(line, the_peer_end_gives_the_last_line_without_delimiter_to_eof) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  send_bytes(&r, "a\nlast", 6);
  shutdown(r.fd, SHUT_WR);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  expect_log(&r, "L(a)E(last)");
  EXPECT_EQ(r.eofs, 1);
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.status, 0);
  finish_reader(loop, &r);
}

Test(line, without_an_eof_callback_the_stream_closes_at_the_peer_end) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_callbacks cb = all_cb;
  cb.eof = NULL;
  open_reader(loop, &r, NULL, &cb);
  send_bytes(&r, "a\nlost", 6);
  shutdown(r.fd, SHUT_WR);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  expect_log(&r, "L(a)");
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.status, 0);
  finish_reader(loop, &r);
}

Test(line, a_too_long_line_closes_the_stream_by_default_with_a_clear_status) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_options o = {.max_length = 8};
  open_reader(loop, &r, &o, &no_too_long);
  send_bytes(&r, "ok\n0123456789\nnever\n", 20);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  expect_log(&r, "L(ok)");
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.status, EDDY_ETOOLONG);
  EXPECT_STR(r.detail, "line longer than 8 bytes");
  finish_reader(loop, &r);
}

Test(line, the_default_maximum_is_64_kib) {
  eddy_loop *loop = test_loop();
  reader r;
  static char big[70000];
  open_reader(loop, &r, NULL, &no_too_long);
  memset(big, 'x', sizeof big);
  send_bytes(&r, big, sizeof big);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.status, EDDY_ETOOLONG);
  EXPECT_STR(r.detail, "line longer than 65536 bytes");
  finish_reader(loop, &r);
}

Test(line, a_too_long_callback_skips_that_line_and_goes_on) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_options o = {.max_length = 4};
  open_reader(loop, &r, &o, &all_cb);
  send_one_by_one(loop, &r, "abcdefgh\nok\n");
  expect_log(&r, "T(abcd)L(ok)");
  EXPECT_EQ(r.too_longs, 1);
  EXPECT_EQ(r.closes, 0);
  finish_reader(loop, &r);
}

Test(line, pausing_inside_the_line_callback_holds_buffered_lines_until_resume) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  r.on_line = PAUSE;
  send_bytes(&r, "a\n!\nb\nc\n", 8);
  turns(loop, 3);
  expect_log(&r, "L(a)L(!)");
  send_bytes(&r, "d\n", 2);
  turns(loop, 3); /* paused: the new line waits in the kernel */
  expect_log(&r, "L(a)L(!)");
  eddy_line_resume(r.lr); /* the buffered lines, before it returns */
  expect_log(&r, "L(a)L(!)L(b)L(c)");
  turns(loop, 3);
  expect_log(&r, "L(a)L(!)L(b)L(c)L(d)");
  finish_reader(loop, &r);
}

Test(line, closing_inside_the_line_callback_stops_delivery) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  r.on_line = CLOSE;
  send_bytes(&r, "a\n!\nb\nc\n", 8);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  expect_log(&r, "L(a)L(!)");
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.status, 0);
  finish_reader(loop, &r);
}

Test(line, freeing_the_reader_inside_the_line_callback_leaves_the_stream) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_stream *s;
  open_reader(loop, &r, NULL, &all_cb);
  s = eddy_line_stream(r.lr);
  r.on_line = FREE;
  send_bytes(&r, "a\n!\nb\nc\n", 8);
  turns(loop, 3);
  expect_log(&r, "L(a)L(!)");
  cr_assert(r.lr == NULL);
  EXPECT_EQ(r.closes, 0); /* the stream is the program's again */
  EXPECT_OK(eddy_stream_write(s, "bye", 3));
  eddy_stream_close(s);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.closes, 0);
  finish_reader(loop, &r);
}

Test(line, raw_mode_switch_inside_a_callback_keeps_the_buffered_bytes) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  send_bytes(&r, "R4\nab\ncd\nafter\n", 15);
  turns(loop, 3);
  expect_log(&r, "L(R4)R(ab\nc)L(d)L(after)");
  send_one_by_one(loop, &r, "R3\nxyzw\n");
  expect_log(&r, "L(R4)R(ab\nc)L(d)L(after)L(R3)R(xyz)L(w)");
  finish_reader(loop, &r);
}

Test(line, write_appends_the_delimiter_in_one_write) {
  eddy_loop *loop = test_loop();
  reader r;
  char got[32] = {0};
  eddy_line_options o = {.delimiter = "\0", .delimiter_len = 1};
  open_reader(loop, &r, NULL, &all_cb);
  EXPECT_OK(eddy_line_write(r.lr, "hi", 2));
  EXPECT_EQ(read(r.fd, got, sizeof got), 4);
  EXPECT_STR(got, "hi\r\n");
  eddy_stream_close(eddy_line_stream(r.lr));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  close(r.fd);
  open_reader(loop, &r, &o, &all_cb);
  EXPECT_OK(eddy_line_write(r.lr, "hi", 2));
  EXPECT_EQ(read(r.fd, got, sizeof got), 3);
  cr_assert(memcmp(got, "hi\0", 3) == 0);
  finish_reader(loop, &r);
}

Test(line, drain_and_close_are_passed_on) {
  eddy_loop *loop = test_loop();
  reader r;
  static char big[1 << 20];
  char sink[65536];
  open_reader(loop, &r, NULL, &all_cb);
  EXPECT_OK(eddy_stream_write(eddy_line_stream(r.lr), big, sizeof big));
  while (r.drains == 0) {
    ssize_t n = read(r.fd, sink, sizeof sink);
    cr_assert(n > 0);
    turns(loop, 1);
  }
  eddy_stream_abort(eddy_line_stream(r.lr));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.status, -ECONNABORTED);
  finish_reader(loop, &r);
}

Test(line, open_refuses_a_long_delimiter_and_survives_no_memory) {
  eddy_loop *loop = test_loop();
  int sv[2];
  eddy_stream *s;
  eddy_line *lr = NULL;
  char big[EDDY_LINE_DELIMITER_MAX + 1] = {0};
  eddy_line_options o = {.delimiter = big, .delimiter_len = sizeof big};
  cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  EXPECT_OK(eddy_stream_open(loop, sv[0], NULL, NULL, &s));
  EXPECT_EQ(eddy_line_open(s, &o, &all_cb, NULL, &lr), -EINVAL);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_line_open(s, NULL, &all_cb, NULL, &lr), -ENOMEM);
  eddy__fault_reset();
  cr_assert(lr == NULL);
  eddy_stream_close(s);
  close(sv[1]);
  test_finish(loop);
}

Test(line, no_memory_for_a_partial_line_fails_the_stream) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  send_bytes(&r, "partial", 7);
  eddy__fault_parse("malloc:ENOMEM:p=1,realloc:ENOMEM:p=1");
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy__fault_reset();
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.status, -ENOMEM);
  EXPECT_STR(r.detail, "out of memory while buffering a line");
  finish_reader(loop, &r);
}

static void pending_at_close(eddy_line *lr, int status, const char *detail,
                             void *arg) {
  reader *r = arg;
  const char *p;
  size_t n = eddy_line_pending(lr, &p);
  r_close(lr, status, detail, arg);
  note(&r->e, 'C', p, n);
}

Test(line, a_partial_line_is_still_pending_in_the_close_callback) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_callbacks cb = all_cb;
  cb.close = pending_at_close;
  open_reader(loop, &r, NULL, &cb);
  send_bytes(&r, "a\ncut off", 9);
  turns(loop, 3);
  eddy_stream_close(eddy_line_stream(r.lr));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  expect_log(&r, "L(a)C(cut off)");
  finish_reader(loop, &r);
}

/* Found while fuzzing (a pause in the delivery that a resume started):
 * the harness stopped at the first resume; the reader must not. */
Test(line, a_pause_during_the_delivery_a_resume_started_holds_the_rest) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, &all_cb);
  r.on_line = PAUSE;
  send_bytes(&r, "!\na\n!\nb\npart", 12);
  turns(loop, 3);
  expect_log(&r, "L(!)");
  eddy_line_resume(r.lr);
  expect_log(&r, "L(!)L(a)L(!)");
  turns(loop, 3);
  expect_log(&r, "L(!)L(a)L(!)");
  eddy_line_resume(r.lr);
  expect_log(&r, "L(!)L(a)L(!)L(b)");
  send_bytes(&r, "ial\n", 4);
  turns(loop, 3);
  expect_log(&r, "L(!)L(a)L(!)L(b)L(partial)");
  finish_reader(loop, &r);
}

/* ---- Freeing from every callback, and the small calls ---- */

static void free_on_eof(eddy_line *lr, const char *rest, size_t n, void *arg) {
  reader *r = arg;
  note(&r->e, 'E', rest, n);
  eddy_stream *s = eddy_line_stream(lr);
  eddy_line_free(lr);
  r->lr = NULL;
  eddy_stream_close(s);
}

Test(line, freeing_the_reader_in_the_eof_callback_is_safe) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_callbacks cb = all_cb;
  cb.eof = free_on_eof;
  open_reader(loop, &r, NULL, &cb);
  send_bytes(&r, "a\nb", 3);
  shutdown(r.fd, SHUT_WR);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  expect_log(&r, "L(a)E(b)");
  EXPECT_EQ(r.closes, 0); /* the stream was no longer the reader's */
  finish_reader(loop, &r);
}

static void free_on_drain(eddy_line *lr, void *arg) {
  reader *r = arg;
  r->drains++;
  eddy_stream_close(eddy_line_stream(lr));
  eddy_line_free(lr);
  eddy_line_free(lr); /* a second free does nothing */
  r->lr = NULL;
}

Test(line, freeing_the_reader_in_the_drain_callback_is_safe) {
  eddy_loop *loop = test_loop();
  reader r;
  static char big[1 << 20];
  char sink[65536];
  eddy_line_callbacks cb = all_cb;
  cb.drain = free_on_drain;
  open_reader(loop, &r, NULL, &cb);
  EXPECT_OK(eddy_stream_write(eddy_line_stream(r.lr), big, sizeof big));
  while (r.drains == 0) {
    cr_assert(read(r.fd, sink, sizeof sink) > 0);
    turns(loop, 1);
  }
  cr_assert(r.lr == NULL);
  while (read(r.fd, sink, sizeof sink) > 0)
    turns(loop, 1);
  finish_reader(loop, &r);
}

static void pause_then_free(eddy_line *lr, const char *p, size_t n, void *arg) {
  reader *r = arg;
  note(&r->e, 'L', p, n);
  if (n == 1 && p[0] == '!')
    eddy_line_pause(lr);
  if (n == 1 && p[0] == 'x') {
    eddy_line_free(lr);
    r->lr = NULL;
  }
}

Test(line, freeing_the_reader_during_the_delivery_a_resume_started_is_safe) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line_callbacks cb = all_cb;
  eddy_stream *s;
  cb.line = pause_then_free;
  open_reader(loop, &r, NULL, &cb);
  s = eddy_line_stream(r.lr);
  send_bytes(&r, "!\nx\nnever\n", 10);
  turns(loop, 3);
  expect_log(&r, "L(!)");
  eddy_line_resume(r.lr);
  expect_log(&r, "L(!)L(x)");
  cr_assert(r.lr == NULL);
  eddy_stream_close(s);
  finish_reader(loop, &r);
}

Test(line, free_from_outside_any_callback_drops_the_buffered_bytes) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_stream *s;
  open_reader(loop, &r, NULL, &all_cb);
  s = eddy_line_stream(r.lr);
  send_bytes(&r, "a\npartial", 9);
  turns(loop, 3);
  eddy_line_free(r.lr);
  eddy_line_free(NULL);
  eddy_stream_close(s);
  expect_log(&r, "L(a)");
  finish_reader(loop, &r);
}

Test(line, modes_and_resume_without_pause_are_plain_calls) {
  eddy_loop *loop = test_loop();
  reader r;
  eddy_line *lr = NULL;
  const char *p;
  open_reader(loop, &r, NULL, &all_cb);
  EXPECT_EQ(eddy_line_is_raw(r.lr), 0);
  eddy_line_set_raw(r.lr, 1);
  EXPECT_EQ(eddy_line_is_raw(r.lr), 1);
  eddy_line_set_raw(r.lr, 0);
  eddy_line_resume(r.lr); /* not paused: nothing happens */
  EXPECT_EQ(eddy_line_pending(r.lr, &p), 0);
  EXPECT_EQ(eddy_line_open(NULL, NULL, &all_cb, NULL, &lr), -EINVAL);
  EXPECT_EQ(eddy_line_open(eddy_line_stream(r.lr), NULL, NULL, NULL, NULL),
            -EINVAL);
  finish_reader(loop, &r);
}

Test(line, a_reader_without_callbacks_drops_lines_and_raw_bytes) {
  eddy_loop *loop = test_loop();
  reader r;
  open_reader(loop, &r, NULL, NULL);
  send_bytes(&r, "a\nb\n", 4);
  turns(loop, 3);
  eddy_line_set_raw(r.lr, 1);
  send_bytes(&r, "raw", 3);
  turns(loop, 3);
  EXPECT_EQ(r.e.n, 0);
  finish_reader(loop, &r);
}

/* SQLite's way: the Nth allocation of a run with lines split across reads
 * fails, for N = 1, 2, ... until none does. Each run either delivers every
 * line or ends the stream with -ENOMEM; nothing leaks. */
Test(line, each_failed_allocation_ends_the_stream_cleanly_or_not_at_all) {
  for (uint64_t n = 1;; n++) {
    eddy_loop *loop = test_loop();
    reader r;
    eddy_line_options o = {.delimiter = "--", .delimiter_len = 2};
    open_reader(loop, &r, &o, &all_cb);
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, n, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_REALLOC, n, ENOMEM);
    send_one_by_one(loop, &r, "ab-");
    send_maybe(&r, "-cd--ef", 7);
    turns(loop, 2);
    send_maybe(&r, "gh--", 4);
    turns(loop, 2);
    int done = eddy__fault_calls(EDDY__SYS_MALLOC) < n &&
               eddy__fault_calls(EDDY__SYS_REALLOC) < n;
    eddy__fault_reset();
    if (r.closes) {
      EXPECT_EQ(r.status, -ENOMEM);
    } else {
      expect_log(&r, "L(ab)L(cd)L(efgh)");
    }
    finish_reader(loop, &r);
    if (done)
      break;
    cr_assert(n < 50);
  }
}
