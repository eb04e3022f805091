/* eddy_tls_server.c: the eddy side of the TLS benchmark (run.sh runs nginx
 * with the same certificate and the same two answers as the other side).
 *
 *   eddy_tls_server --port P --cert PEM --key PEM --file BULK
 *
 * Listens on tls:P on 127.0.0.1 (eddy's endpoint string: accepted streams
 * are TLS already) and answers HTTP/1.0 requests, one per connection, or
 * HTTP/1.1 ones, one after another on a connection:
 *   GET /hs    a two-byte body, then close (the handshake benchmark);
 *   GET /bulk  the file BULK (the throughput benchmark asks for it again
 *              and again on one connection).
 * Anything else gets a 404 and a close. As nginx does with sendfile off
 * (which TLS without kernel TLS needs), the file is read with pread() into
 * a buffer and written from there, so both servers do the same work per
 * byte; the stream's watermarks pace the reading (write while not over the
 * high watermark, go on in the drain callback), so a slow client holds at
 * most a buffer's worth in memory.
 *
 * Runs until killed (run.sh sends SIGTERM). */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eddy.h"

#define REQ_MAX 4096
#define CHUNK 65536

typedef struct conn {
  char req[REQ_MAX]; /* the request being read, and any that follow it */
  size_t req_len;
  off_t off;     /* next file byte to send */
  int active;    /* sending the file */
  int keepalive; /* HTTP/1.1 without "Connection: close": read the next */
} conn;

static int file_fd = -1;
static off_t file_size;
static char chunk[CHUNK];

static void die(const char *what, int err, const char *detail) {
  fprintf(stderr, "eddy_tls_server: %s: %s%s%s\n", what, eddy_strerror(err),
          detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void next_request(eddy_stream *s, conn *c);

/* An answer is complete: the next request on a kept-alive connection, or
 * close (which flushes, sends close_notify and ends the connection). */
static void answered(eddy_stream *s, conn *c) {
  if (!c->keepalive) {
    eddy_stream_close(s);
    return;
  }
  eddy_stream_resume(s);
  next_request(s, c);
}

/* Writes file chunks until the stream's buffer passes its high watermark
 * (the drain callback comes back here) or the file is sent. */
static void pump(eddy_stream *s, conn *c) {
  while (c->active && !eddy_stream_over_high(s)) {
    size_t want = file_size - c->off < CHUNK ? (size_t)(file_size - c->off)
                                             : CHUNK;
    ssize_t n;
    if (want == 0) {
      c->active = 0;
      answered(s, c);
      return;
    }
    n = pread(file_fd, chunk, want, c->off);
    if (n <= 0) { /* the file shrank or failed: nothing sane left to send */
      c->active = 0;
      eddy_stream_abort(s);
      return;
    }
    c->off += n;
    /* Write-through: what the TLS layer does not take at once is copied,
     * so the static chunk can be reused at once. An error means the
     * stream is ending; its close callback frees the connection. */
    if (eddy_stream_write(s, chunk, (size_t)n) != 0) {
      c->active = 0;
      return;
    }
  }
}

enum { REQ_HS, REQ_BULK, REQ_OTHER };

static void answer(eddy_stream *s, conn *c, int what) {
  static const char hs[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 2\r\n\r\nok";
  static const char nf[] = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  char head[192];
  int n;
  /* No reading while answering: a request that follows waits in the
   * kernel (a reset from the peer still ends the stream, through the
   * writes). */
  eddy_stream_pause(s);
  if (what == REQ_BULK) {
    n = snprintf(head, sizeof head,
                 "HTTP/1.%d 200 OK\r\nContent-Type: application/octet-stream"
                 "\r\nContent-Length: %lld\r\n\r\n",
                 c->keepalive, (long long)file_size);
    if (eddy_stream_write(s, head, (size_t)n) != 0)
      return;
    c->active = 1;
    c->off = 0;
    pump(s, c);
    return;
  }
  c->keepalive = 0;
  if (what == REQ_HS)
    (void)eddy_stream_write(s, hs, sizeof hs - 1);
  else
    (void)eddy_stream_write(s, nf, sizeof nf - 1);
  eddy_stream_close(s);
}

/* Answers the first complete request in the buffer, if there is one. It
 * is taken out of the buffer first: answering may come back here for the
 * request after it. */
static void next_request(eddy_stream *s, conn *c) {
  char *end, *eol;
  size_t len;
  int what;
  c->req[c->req_len] = '\0';
  if ((end = strstr(c->req, "\r\n\r\n")) == NULL)
    return;
  len = (size_t)(end + 4 - c->req);
  what = strncmp(c->req, "GET /hs ", 8) == 0     ? REQ_HS
         : strncmp(c->req, "GET /bulk ", 10) == 0 ? REQ_BULK
                                                  : REQ_OTHER;
  /* HTTP/1.1 keeps the connection unless told otherwise; 1.0 does not
   * (this server never offers 1.0 keep-alive). */
  eol = memchr(c->req, '\r', len);
  c->keepalive = eol && eol - c->req >= 8 &&
                 memcmp(eol - 8, "HTTP/1.1", 8) == 0 &&
                 !memmem(c->req, len, "\nConnection: close", 18);
  memmove(c->req, c->req + len, c->req_len - len + 1);
  c->req_len -= len;
  answer(s, c, what);
}

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  conn *c = arg;
  size_t room = REQ_MAX - 1 - c->req_len;
  if (len > room) {
    eddy_stream_abort(s); /* not a request this benchmark makes */
    return;
  }
  memcpy(c->req + c->req_len, data, len);
  c->req_len += len;
  if (!c->active)
    next_request(s, c);
}

static void on_eof(eddy_stream *s, void *arg) {
  (void)arg;
  eddy_stream_close(s);
}

static void on_drain(eddy_stream *s, void *arg) {
  pump(s, arg);
}

static void on_close(eddy_stream *s, int status, const char *detail,
                     void *arg) {
  (void)s, (void)status, (void)detail;
  free(arg);
}

static const eddy_stream_callbacks callbacks = {on_data, on_eof, on_drain,
                                                on_close};

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  conn *c = malloc(sizeof *c);
  (void)l, (void)arg;
  if (c == NULL) {
    eddy_stream_abort(s);
    return;
  }
  c->req_len = 0;
  c->off = 0;
  c->active = 0;
  c->keepalive = 0;
  eddy_stream_set_callbacks(s, &callbacks, c);
}

int main(int argc, char **argv) {
  const char *port = NULL, *cert = NULL, *key = NULL, *file = NULL;
  char endpoint[2048], err[256] = "";
  eddy_loop *loop;
  eddy_listener *l;
  struct stat st;
  int rc;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = argv[i + 1];
    else if (strcmp(argv[i], "--cert") == 0)
      cert = argv[i + 1];
    else if (strcmp(argv[i], "--key") == 0)
      key = argv[i + 1];
    else if (strcmp(argv[i], "--file") == 0)
      file = argv[i + 1];
  }
  if (!port || !cert || !key || !file) {
    fprintf(stderr, "usage: eddy_tls_server --port P --cert PEM --key PEM "
                    "--file BULK\n");
    return 2;
  }
  if ((file_fd = open(file, O_RDONLY | O_CLOEXEC)) < 0 ||
      fstat(file_fd, &st) != 0)
    die(file, -errno, NULL);
  file_size = st.st_size;
  signal(SIGPIPE, SIG_IGN);
  if ((rc = eddy_loop_new(NULL, &loop)) != 0)
    die("eddy_loop_new", rc, NULL);
  /* The paths are run.sh's temporary files, which hold no colon (the
   * endpoint syntax would need it escaped). */
  snprintf(endpoint, sizeof endpoint,
           "tls:%s:interface=127.0.0.1:certKey=%s:privateKey=%s", port, cert,
           key);
  if ((rc = eddy_listen(loop, endpoint, on_accept, NULL, &l, err,
                        sizeof err)) != 0)
    die("listen", rc, err);
  rc = eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED);
  die("eddy_loop_run returned", rc, NULL);
  return 1;
}
