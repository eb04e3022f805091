/* hello.c: a program built outside the tree against an installed eddy
 * (tests/install/test_install.sh compiles it with pkg-config, shared and
 * static). It uses each part a user starts with: a loop, a timer, a pair of
 * streams over a socketpair, and the error names. */
#include <eddy.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

typedef struct state {
  eddy_stream *a, *b;
  int fired, got;
} state;

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  state *st = arg;
  printf("stream got: %.*s\n", (int)len, data);
  st->got = 1;
  if (st->fired)
    eddy_loop_stop(eddy_stream_loop(s));
}

static const eddy_stream_callbacks callbacks = {.data = on_data};

static void on_timer(eddy_timer *t, void *arg) {
  state *st = arg;
  st->fired = 1;
  printf("timer fired\n");
  if (st->got)
    eddy_loop_stop(eddy_timer_loop(t));
}

int main(void) {
  eddy_loop *loop;
  eddy_timer *t;
  state st = {0};
  int fds[2];
  printf("eddy %s\n", eddy_version());
  printf("strerror: %s\n", eddy_strerror(-ECONNREFUSED));
  if (eddy_loop_new(NULL, &loop) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0 ||
      eddy_stream_open(loop, fds[0], &callbacks, &st, &st.a) != 0 ||
      eddy_stream_open(loop, fds[1], &callbacks, &st, &st.b) != 0 ||
      eddy_timer_new(loop, on_timer, &st, &t) != 0)
    return 1;
  /* The run ends when both the bytes and the timer have come, in either
   * order (the test runs this under a timeout). */
  if (eddy_stream_write(st.a, "hello", 5) != 0 ||
      eddy_timer_start(t, 10 * EDDY_NSEC_PER_MSEC, 0) != 0)
    return 1;
  eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED);
  eddy_loop_close_all(loop);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  if (eddy_loop_free(loop) != 0)
    return 1;
  return st.fired && st.got ? 0 : 1;
}
