/* examples/chat-coroutines.c: chat-callbacks.c's server, with coroutines and
 * the same options. One coroutine accepts; each client gets one that reads
 * its name and then its lines in sequence. Sends to the others never wait
 * (eddy_coro_write would, for the slowest reader): see chat-callbacks.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy.h>

typedef struct client {
  struct chat *chat;
  eddy_coro_stream *cs;
  char name[64]; /* its first line, cut to 63 bytes; "" until then */
  struct client *next;
  char line[EDDY_LINE_MAX_DEFAULT + 1];
} client;

typedef struct chat {
  const char *listen;
  eddy_coro *server;
  eddy_signal *sigint, *sigterm;
  client *clients; /* a list of every connected client, named or not */
  size_t max_backlog;
  int status;
} chat;

/* Sends "name: text\n" to every named client but the sender. */
static void broadcast(chat *c, client *from, const char *text, size_t len) {
  struct iovec iov[] = {{from->name, strlen(from->name)},
                        {": ", 2},
                        {(char *)text, len},
                        {"\n", 1}};
  for (client *to = c->clients; to != NULL; to = to->next) {
    eddy_stream *s = eddy_coro_stream_get(to->cs); /* NULL once closed */
    /* A write fails only if the stream is closing: its reader hears why. */
    if (to != from && to->name[0] != '\0' && s != NULL &&
        eddy_stream_writev(s, iov, 4) == 0 &&
        eddy_stream_buffered(s) > c->max_backlog) {
      fprintf(stderr, "chat: %s cannot keep up, disconnected\n", to->name);
      eddy_stream_abort(s);
    }
  }
}

/* A client's coroutine: its first line is its name, the others go out. */
static int serve_client(eddy_coro *co, void *arg) {
  client *cl = arg, **p;
  size_t len;
  int rc;
  while ((rc = eddy_coro_read_line(co, cl->cs, cl->line, sizeof cl->line,
                                   &len)) == 1) {
    if (cl->name[0] != '\0')
      broadcast(cl->chat, cl, cl->line, len);
    else if (snprintf(cl->name, sizeof cl->name, "%s", cl->line) > 0)
      fprintf(stderr, "chat: %s joined\n", cl->name);
  }
  fprintf(stderr, "chat: %s left%s%s\n", cl->name[0] ? cl->name : "a client",
          rc ? ": " : "", rc ? eddy_strerror(rc) : "");
  for (p = &cl->chat->clients; *p != cl; p = &(*p)->next)
    ;
  *p = cl->next;
  if (rc != 0 && eddy_coro_stream_get(cl->cs) != NULL)
    eddy_stream_abort(eddy_coro_stream_get(cl->cs)); /* drop its backlog */
  eddy_coro_stream_close(cl->cs);
  free(cl);
  return 0;
}

/* The server's coroutine: accepts, and starts a child for each client. */
static int serve(eddy_coro *co, void *arg) {
  chat *c = arg;
  eddy_coro_listener *l = NULL;
  eddy_coro_stream *cs;
  eddy_coro *child;
  char err[256];
  if (eddy_coro_listen(co, c->listen, &l, err, sizeof err) != 0) {
    fprintf(stderr, "chat: %s\n", err);
    c->status = 1;
  }
  while (c->status == 0 && eddy_coro_accept(co, l, &cs) == 0) {
    client *cl = calloc(1, sizeof *cl);
    if (cl == NULL ||
        eddy_coro_spawn_child(co, serve_client, cl, NULL, &child) != 0) {
      free(cl);
      eddy_coro_stream_close(cs);
    } else {
      cl->chat = c;
      cl->cs = cs;
      cl->next = c->clients;
      c->clients = cl;
      eddy_coro_stream_move(cs, child);
    }
  }
  eddy_signal_close(c->sigint); /* and the loop runs out of work */
  eddy_signal_close(c->sigterm);
  return c->status;
}

/* SIGINT or SIGTERM: cancel the server, and with it every client. */
static void on_signal(eddy_signal *h, int signum, void *arg) {
  chat *c = arg;
  (void)h;
  fprintf(stderr, "chat: %s, stopping\n", strsignal(signum));
  eddy_coro_cancel(c->server);
}

static int usage(const char *problem) {
  fprintf(stderr, "chat-coroutines: %s\n%s", problem,
          "usage: chat-coroutines --listen ENDPOINT [--max-backlog BYTES]\n");
  return 2;
}

int main(int argc, char **argv) {
  chat c = {.max_backlog = 16 << 20};
  char err[256], *end;
  eddy_endpoint ep;
  eddy_loop *loop;
  int rc;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      c.listen = argv[++i];
    } else if (strcmp(argv[i], "--max-backlog") == 0 && i + 1 < argc) {
      c.max_backlog = strtoull(argv[++i], &end, 10);
      if (*argv[i] < '0' || *argv[i] > '9' || *end != '\0')
        return usage("--max-backlog needs a number of bytes");
    } else {
      snprintf(err, sizeof err, "unknown or incomplete option '%s'", argv[i]);
      return usage(err);
    }
  }
  if (c.listen == NULL)
    return usage("--listen ENDPOINT is required");
  if (eddy_endpoint_parse_server(c.listen, &ep, err, sizeof err) != 0)
    return usage(err);
  if ((rc = eddy_loop_new(NULL, &loop)) != 0) {
    fprintf(stderr, "chat: %s\n", eddy_strerror(rc));
    return 1;
  }
  if ((rc = eddy_signal_start(loop, SIGINT, on_signal, &c, &c.sigint)) != 0 ||
      (rc = eddy_signal_start(loop, SIGTERM, on_signal, &c, &c.sigterm)) != 0 ||
      (rc = eddy_coro_spawn(loop, serve, &c, NULL, &c.server)) != 0) {
    fprintf(stderr, "chat: %s\n", eddy_strerror(rc));
    eddy_loop_close_all(loop);
  }
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  return eddy_loop_free(loop) == 0 && rc == 0 && c.status == 0 ? 0 : 1;
}
