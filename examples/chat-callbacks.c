/* examples/chat-callbacks.c: a line-based chat server written with callbacks:
 *   chat-callbacks --listen ENDPOINT [--max-backlog BYTES]
 * A client's first line is its name; every later line goes to every other
 * client as "name: text\n". Each client is a stream with a line reader
 * (eddy/line.h) over it. Writes never wait: what a client has not read yet
 * stays in its stream's buffer, and a client whose buffer passes the bound
 * (16 MiB by default) is disconnected, so a slow client never delays the
 * others nor makes the server buffer without bound. A line over the line
 * reader's limit (64 KiB) ends its sender's connection, and says so. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy.h>

typedef struct client {
  struct chat *chat;
  eddy_line *lr;
  char name[64]; /* its first line, cut to 63 bytes; "" until then */
  struct client *next;
} client;

typedef struct chat {
  eddy_listener *listener;
  eddy_signal *sigint, *sigterm;
  client *clients; /* a list of every connected client, named or not */
  size_t max_backlog;
} chat;

/* Sends "name: text\n" to every named client but the sender. */
static void broadcast(chat *c, client *from, const char *text, size_t len) {
  struct iovec iov[] = {{from->name, strlen(from->name)},
                        {": ", 2},
                        {(char *)text, len},
                        {"\n", 1}};
  for (client *to = c->clients; to != NULL; to = to->next) {
    eddy_stream *s = eddy_line_stream(to->lr);
    /* A write fails only if the stream is closing: its close says why. */
    if (to != from && to->name[0] != '\0' &&
        eddy_stream_writev(s, iov, 4) == 0 &&
        eddy_stream_buffered(s) > c->max_backlog) {
      fprintf(stderr, "chat: %s cannot keep up, disconnected\n", to->name);
      eddy_stream_abort(s);
    }
  }
}

/* A client's first line is its name; the others go out. */
static void on_line(eddy_line *lr, const char *line, size_t len, void *arg) {
  client *cl = arg;
  (void)lr;
  if (cl->name[0] != '\0')
    broadcast(cl->chat, cl, line, len);
  else if (snprintf(cl->name, sizeof cl->name, "%.*s", (int)len, line) > 0)
    fprintf(stderr, "chat: %s joined\n", cl->name);
}

/* The peer finished sending: a last line without its "\n" still counts. */
static void on_eof(eddy_line *lr, const char *rest, size_t len, void *arg) {
  if (len > 0)
    on_line(lr, rest, len, arg);
  eddy_stream_close(eddy_line_stream(lr));
}

/* The last word on a client: called once, however it went. */
static void on_close(eddy_line *lr, int status, const char *detail, void *arg) {
  client *cl = arg, **p;
  (void)lr;
  fprintf(stderr, "chat: %s left%s%s\n", cl->name[0] ? cl->name : "a client",
          status ? ": " : "", status ? detail : "");
  for (p = &cl->chat->clients; *p != cl; p = &(*p)->next)
    ;
  *p = cl->next;
  free(cl);
}

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  static const eddy_line_callbacks cb = {.line = on_line,
                                         .eof = on_eof,
                                         .close = on_close};
  chat *c = arg;
  client *cl = calloc(1, sizeof *cl);
  (void)l;
  if (cl == NULL || eddy_line_open(s, NULL, &cb, cl, &cl->lr) != 0) {
    free(cl);
    eddy_stream_abort(s);
    return;
  }
  cl->chat = c;
  cl->next = c->clients;
  c->clients = cl;
}

/* SIGINT or SIGTERM: close everything; the loop then runs out of work. */
static void on_signal(eddy_signal *h, int signum, void *arg) {
  chat *c = arg;
  (void)h;
  fprintf(stderr, "chat: %s, stopping\n", strsignal(signum));
  eddy_listener_close(c->listener);
  eddy_signal_close(c->sigint);
  eddy_signal_close(c->sigterm);
  for (client *cl = c->clients; cl != NULL; cl = cl->next)
    eddy_stream_abort(eddy_line_stream(cl->lr));
}

static int usage(const char *problem) {
  fprintf(stderr, "chat-callbacks: %s\n%s", problem,
          "usage: chat-callbacks --listen ENDPOINT [--max-backlog BYTES]\n");
  return 2;
}

int main(int argc, char **argv) {
  chat c = {.max_backlog = 16 << 20};
  char err[256], *end, *listen = NULL;
  eddy_endpoint ep;
  eddy_loop *loop;
  int rc;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else if (strcmp(argv[i], "--max-backlog") == 0 && i + 1 < argc) {
      c.max_backlog = strtoull(argv[++i], &end, 10);
      if (*argv[i] < '0' || *argv[i] > '9' || *end != '\0')
        return usage("--max-backlog needs a number of bytes");
    } else {
      snprintf(err, sizeof err, "unknown or incomplete option '%s'", argv[i]);
      return usage(err);
    }
  }
  if (listen == NULL)
    return usage("--listen ENDPOINT is required");
  if (eddy_endpoint_parse_server(listen, &ep, err, sizeof err) != 0)
    return usage(err);
  if ((rc = eddy_loop_new(NULL, &loop)) != 0) {
    fprintf(stderr, "chat: %s\n", eddy_strerror(rc));
    return 1;
  }
  if ((rc = eddy_listener_open(loop, &ep, on_accept, &c, &c.listener, err,
                               sizeof err)) != 0 ||
      (rc = eddy_signal_start(loop, SIGINT, on_signal, &c, &c.sigint)) != 0 ||
      (rc = eddy_signal_start(loop, SIGTERM, on_signal, &c, &c.sigterm)) != 0) {
    fprintf(stderr, "chat: %s\n", c.listener ? eddy_strerror(rc) : err);
    eddy_loop_close_all(loop);
  }
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  return eddy_loop_free(loop) == 0 && rc == 0 ? 0 : 1;
}
