/* echo.c: `eddy echo --listen ENDPOINT...`: every byte a client sends comes
 * back. Flow control: while a client does not read its echoes, we stop
 * reading from it, so no client can make the server buffer without bound.
 * A client that half-closes still gets every echo, then EOF. A client
 * that moves no byte either way for the idle timeout (default 300 s) is
 * closed, so that quiet connections cannot pile up. Connections are
 * logged at the debug level: a flood of them must not flood the log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"

typedef struct conn {
  app_server *server;
  char peer[64];
} conn;

static void echo_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  (void)arg;
  if (eddy_stream_write(s, data, len) != 0)
    return; /* the stream is closing and its close callback will say why */
  if (eddy_stream_over_high(s))
    eddy_stream_pause(s);
}

static void echo_drain(eddy_stream *s, void *arg) {
  (void)arg;
  eddy_stream_resume(s);
}

static void echo_closed(eddy_stream *s, int status, const char *detail,
                        void *arg) {
  conn *c = arg;
  app_server *srv = c->server;
  (void)s;
  app_server_log_close(srv, c->peer, status, detail);
  free(c);
  app_server_closed_one(srv);
}

/* Without debug logging there is no peer name to keep: a connection then
 * costs its stream and nothing else. */
static void echo_closed_quietly(eddy_stream *s, int status, const char *detail,
                                void *arg) {
  (void)s;
  if (status != 0)
    app_server_log_close(arg, NULL, status, detail);
  app_server_closed_one(arg);
}

static const eddy_stream_callbacks echo_callbacks = {.data = echo_data,
                                                     .drain = echo_drain,
                                                     .close = echo_closed};
static const eddy_stream_callbacks quiet_callbacks = {
    .data = echo_data, .drain = echo_drain, .close = echo_closed_quietly};

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  app_server *srv = arg;
  conn *c;
  (void)l;
  if (app_server_set_idle(srv, s) != 0) {
    eddy_stream_abort(s);
    return;
  }
  if (!app_log_enabled(LOG_DEBUG)) {
    srv->open++;
    eddy_stream_set_callbacks(s, &quiet_callbacks, srv);
    return;
  }
  c = malloc(sizeof *c);
  if (c == NULL) {
    eddy_stream_abort(s);
    return;
  }
  c->server = srv;
  if (eddy_stream_peer_name(s, c->peer, sizeof c->peer) != 0)
    snprintf(c->peer, sizeof c->peer, "a client");
  srv->open++;
  app_log(LOG_DEBUG, "echo: connection from %s", c->peer);
  eddy_stream_set_callbacks(s, &echo_callbacks, c);
}

static void usage(void) {
  printf(
      "Usage: eddy echo --listen ENDPOINT [--listen ENDPOINT...] [--grace S]\n"
      "                 [--idle-timeout S]\n"
      "\n"
      "Echoes every byte back to its sender.\n"
      "\n"
      "  --listen ENDPOINT  where to listen: tcp:PORT[:interface=ADDR],\n"
      "                     tcp6:PORT, unix:PATH[:mode=0660], fd:N,\n"
      "                     systemd:domain=INET:index=0,\n"
      "                     tls:PORT:certKey=PEM[:privateKey=PEM] "
      "(repeatable)\n"
      "  --grace S          on SIGTERM/SIGINT, let open connections\n"
      "                     finish for S seconds (default 10)\n"
      "  --idle-timeout S   close a connection that moves no byte either\n"
      "                     way for S seconds (default 300; 0: never)\n");
}

int app_echo(int argc, char **argv) {
  app_server srv = {.name = "echo",
                    .grace_s = 10,
                    .idle_s = APP_IDLE_TIMEOUT,
                    .on_accept = on_accept};
  int rc;
  srv.arg = &srv;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return 0;
    }
    rc = app_server_option(&srv, argc, argv, &i);
    if (rc < 0)
      return 2;
    if (rc == 0) {
      char quoted[160];
      fprintf(stderr,
              "eddy echo: unknown option '%s'; see 'eddy echo --help'\n",
              app_quote(quoted, sizeof quoted, argv[i]));
      return 2;
    }
  }
  if ((rc = app_server_start(&srv)) != 0)
    return rc;
  return app_server_run(&srv);
}
