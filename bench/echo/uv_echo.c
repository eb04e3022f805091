/* uv_echo.c: the TCP echo server on libuv, the peer `eddy echo` is measured
 * against. Usage: uv_echo PORT (listens on 127.0.0.1:PORT).
 *
 * Written the way a careful libuv program would be, and doing the same work
 * as src/app/echo.c, so that the comparison is of the engines:
 *   - one reused 64 KiB read buffer (uv_read_start's alloc callback hands
 *     out the same static buffer every time; an idle connection holds none);
 *   - write-through: uv_try_write first, and only the bytes the kernel did
 *     not take are copied, into one allocation holding the uv_write_t and
 *     the bytes, freed in the write callback (eddy copies the same tail);
 *   - flow control like eddy echo's: reading stops while more than 64 KiB
 *     wait to be written and starts again at 16 KiB or less;
 *   - TCP_NODELAY on accepted connections (eddy sets it on every accepted
 *     TCP stream), backlog 511 (eddy's default);
 *   - on EOF: shut down once the queued echoes are written, then close (eddy
 *     echo has no eof callback, so it closes once flushed); on an error:
 *     close at once.
 * SIGPIPE is ignored (libuv writes with writev, not MSG_NOSIGNAL); SIGTERM
 * ends the process. */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)

typedef struct conn {
  uv_tcp_t tcp; /* first: the handle's address is the conn's */
  int paused;
} conn;

typedef struct wreq {
  uv_write_t req;
  char data[]; /* the unsent tail, copied */
} wreq;

static char read_buf[65536];

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = read_buf;
  buf->len = sizeof read_buf;
}

static void on_close(uv_handle_t *h) { free(h); }

static void close_conn(uv_stream_t *s) {
  if (!uv_is_closing((uv_handle_t *)s))
    uv_close((uv_handle_t *)s, on_close);
}

static void on_write(uv_write_t *req, int status) {
  uv_stream_t *s = req->handle;
  conn *c = (conn *)s;
  free(req);
  if (status < 0) {
    close_conn(s); /* a no-op if the write was cancelled by our close */
    return;
  }
  if (c->paused && uv_stream_get_write_queue_size(s) <= LOW_WATER &&
      !uv_is_closing((uv_handle_t *)s)) {
    c->paused = 0;
    if (uv_read_start(s, on_alloc, on_read) != 0)
      close_conn(s);
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  close_conn(req->handle);
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = (conn *)s;
  if (nread > 0) {
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int n = uv_try_write(s, &b, 1);
    if (n == UV_EAGAIN)
      n = 0;
    if (n < 0) {
      close_conn(s);
      return;
    }
    if (n < nread) {
      size_t rest = (size_t)nread - (size_t)n;
      wreq *w = malloc(sizeof *w + rest);
      uv_buf_t wb;
      if (w == NULL) {
        close_conn(s);
        return;
      }
      memcpy(w->data, buf->base + n, rest);
      wb = uv_buf_init(w->data, (unsigned)rest);
      if (uv_write(&w->req, s, &wb, 1, on_write) != 0) {
        free(w);
        close_conn(s);
        return;
      }
      if (uv_stream_get_write_queue_size(s) > HIGH_WATER) {
        c->paused = 1;
        uv_read_stop(s);
      }
    }
  } else if (nread == UV_EOF) {
    uv_shutdown_t *req = malloc(sizeof *req);
    uv_read_stop(s);
    if (req == NULL || uv_shutdown(req, s, on_shutdown) != 0) {
      free(req);
      close_conn(s);
    }
  } else if (nread < 0) {
    close_conn(s);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  conn *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  (void)uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  int port, err;
  if (argc != 2 || (port = atoi(argv[1])) <= 0 || port > 65535) {
    fprintf(stderr, "usage: uv_echo PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_init(loop, &server);
  if ((err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) != 0 ||
      (err = uv_listen((uv_stream_t *)&server, 511, on_connection)) != 0) {
    fprintf(stderr, "uv_echo: cannot listen on 127.0.0.1:%d: %s\n", port,
            uv_strerror(err));
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
