/* coro_echo.c: an echo server written with coroutines, one per
 * connection, to measure against `eddy echo` (callbacks): the same loop,
 * the same streams, the code in sequential style.
 *
 *   coro_echo PORT [STACK_BYTES] [copy]
 *
 * Listens on 127.0.0.1:PORT until SIGTERM or SIGINT. Each connection reads
 * with eddy_coro_read_borrow, the bytes lent from the stream's buffer and
 * written back from there, as the callback server writes from its data
 * callback; with "copy", eddy_coro_read into a buffer of the connection's
 * own (one memcpy more per read). */
#define _GNU_SOURCE

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"

#define BUF_SIZE 65536

static eddy_coro_options options;

static void release(void *p) {
  free(p);
}

static int copy_reads;

/* One connection, lending: read what came, write it back; the write waits
 * while the client does not read, which is the flow control. */
static int echo_borrow(eddy_coro *co, void *arg) {
  eddy_coro_stream *cs = arg;
  const char *data;
  int n;
  eddy_coro_stream_move(cs, co);
  while ((n = eddy_coro_read_borrow(co, cs, &data, BUF_SIZE)) > 0)
    if (eddy_coro_write(co, cs, data, (size_t)n) != 0)
      break;
  return 0;
}

/* The same, copying into the connection's buffer. */
static int echo(eddy_coro *co, void *arg) {
  eddy_coro_stream *cs = arg;
  char *buf = malloc(BUF_SIZE);
  int n;
  eddy_coro_stream_move(cs, co);
  if (buf == NULL || eddy_coro_defer(co, release, buf) != 0) {
    free(buf);
    return -1;
  }
  while ((n = eddy_coro_read(co, cs, buf, BUF_SIZE)) > 0)
    if (eddy_coro_write(co, cs, buf, (size_t)n) != 0)
      break;
  return 0;
}

static int serve(eddy_coro *co, void *arg) {
  const char *endpoint = arg;
  eddy_coro_listener *cl;
  eddy_coro_stream *cs;
  char err[256];
  if (eddy_coro_listen(co, endpoint, &cl, err, sizeof err) != 0) {
    fprintf(stderr, "coro_echo: %s\n", err);
    exit(1);
  }
  while (eddy_coro_accept(co, cl, &cs) == 0)
    if (eddy_coro_spawn_child(co, copy_reads ? echo : echo_borrow, cs, &options,
                              NULL) != 0)
      eddy_coro_stream_close(cs);
  return 0;
}

static void on_signal(eddy_signal *h, int signum, void *arg) {
  (void)h;
  (void)signum;
  eddy_coro_cancel(arg);
  eddy_loop_stop(eddy_coro_loop(arg));
}

int main(int argc, char **argv) {
  char endpoint[64];
  eddy_loop *loop;
  eddy_coro *server;
  eddy_signal *term, *intr;
  if (argc < 2) {
    fprintf(stderr, "usage: coro_echo PORT [STACK_BYTES]\n");
    return 2;
  }
  if (argc > 2)
    options.stack_size = (size_t)strtoul(argv[2], NULL, 10);
  copy_reads = argc > 3 && strcmp(argv[3], "copy") == 0;
  signal(SIGPIPE, SIG_IGN);
  snprintf(endpoint, sizeof endpoint, "tcp:%s:interface=127.0.0.1", argv[1]);
  if (eddy_loop_new(NULL, &loop) != 0 ||
      eddy_coro_spawn(loop, serve, endpoint, &options, &server) != 0 ||
      eddy_signal_start(loop, SIGTERM, on_signal, server, &term) != 0 ||
      eddy_signal_start(loop, SIGINT, on_signal, server, &intr) != 0) {
    fprintf(stderr, "coro_echo: cannot start\n");
    return 1;
  }
  eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED);
  return 0;
}
