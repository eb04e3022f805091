/* echo.c: `eddy echo --listen ENDPOINT...`: every byte a client sends comes
 * back. Flow control both ways: while a client does not read its echoes,
 * we stop reading from it, so a client can never make the server buffer
 * without bound. A client that half-closes still gets every echo, then
 * EOF. SIGTERM or SIGINT: stop accepting, give open connections --grace
 * seconds to finish, then exit 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"
#include "eddy.h"

#define MAX_LISTEN 16

typedef struct echo_server {
  eddy_loop *loop;
  eddy_listener *listeners[MAX_LISTEN];
  int nlisteners;
  long open;
  int stopping;
  eddy_timer *grace;
  double grace_s;
} echo_server;

typedef struct conn {
  echo_server *server;
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
  echo_server *srv = c->server;
  (void)s;
  if (status == 0)
    app_log(LOG_INFO, "echo: %s closed", c->peer);
  else
    app_log(LOG_INFO, "echo: %s closed: %s", c->peer, detail);
  free(c);
  if (--srv->open == 0 && srv->stopping)
    eddy_loop_stop(srv->loop);
}

static const eddy_stream_callbacks echo_callbacks = {
    .data = echo_data, .drain = echo_drain, .close = echo_closed};

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  echo_server *srv = arg;
  conn *c = malloc(sizeof *c);
  (void)l;
  if (c == NULL) {
    eddy_stream_abort(s);
    return;
  }
  c->server = srv;
  if (eddy_stream_peer_name(s, c->peer, sizeof c->peer) != 0)
    snprintf(c->peer, sizeof c->peer, "a client");
  srv->open++;
  app_log(LOG_INFO, "echo: connection from %s", c->peer);
  eddy_stream_set_callbacks(s, &echo_callbacks, c);
}

static void on_listener_error(eddy_listener *l, int err, const char *detail,
                              void *arg) {
  char name[128] = "";
  (void)arg;
  (void)eddy_listener_name(l, name, sizeof name);
  app_log(LOG_WARN, "echo: %s: %s (%s)", name, detail, eddy_strerror(err));
}

static void grace_over(eddy_timer *t, void *arg) {
  echo_server *srv = arg;
  (void)t;
  app_log(LOG_WARN, "echo: %ld connection(s) still open after %.1f s; closing them",
          srv->open, srv->grace_s);
  eddy_loop_stop(srv->loop);
}

static void on_signal(eddy_signal *h, int signum, void *arg) {
  echo_server *srv = arg;
  (void)h;
  if (srv->stopping)
    return;
  srv->stopping = 1;
  app_log(LOG_INFO, "echo: %s: no longer accepting; %ld connection(s) open",
          strsignal(signum), srv->open);
  for (int i = 0; i < srv->nlisteners; i++)
    eddy_listener_close(srv->listeners[i]);
  srv->nlisteners = 0;
  if (srv->open == 0 ||
      eddy_timer_start(srv->grace, (int64_t)(srv->grace_s * 1e9), 0) != 0)
    eddy_loop_stop(srv->loop);
}

static void usage(FILE *out) {
  fprintf(out,
          "Usage: eddy echo --listen ENDPOINT [--listen ENDPOINT...] [--grace S]\n"
          "\n"
          "Echoes every byte back to its sender.\n"
          "\n"
          "  --listen ENDPOINT  where to listen: tcp:PORT[:interface=ADDR],\n"
          "                     tcp6:PORT, unix:PATH[:mode=0660], fd:N,\n"
          "                     systemd:domain=INET:index=0 (repeatable)\n"
          "  --grace S          on SIGTERM/SIGINT, let open connections\n"
          "                     finish for S seconds (default 10)\n");
}

static int parse_args(int argc, char **argv, const char **eps, int *neps,
                      double *grace) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (app_option_value(argc, argv, &i, "--listen", &v)) {
      if (v == NULL || *neps == MAX_LISTEN) {
        fprintf(stderr, v ? "eddy echo: at most %d --listen\n"
                          : "eddy echo: --listen needs an endpoint\n", MAX_LISTEN);
        return 2;
      }
      eps[(*neps)++] = v;
    } else if (app_option_value(argc, argv, &i, "--grace", &v)) {
      char *end;
      *grace = v ? strtod(v, &end) : -1;
      if (v == NULL || *end || end == v || !(*grace >= 0 && *grace <= 86400)) {
        fprintf(stderr, "eddy echo: --grace needs seconds from 0 to 86400\n");
        return 2;
      }
    } else {
      fprintf(stderr, "eddy echo: unknown option '%s'; see 'eddy echo --help'\n", a);
      return 2;
    }
  }
  if (*neps == 0) {
    fprintf(stderr, "eddy echo: at least one --listen ENDPOINT is needed\n");
    return 2;
  }
  return -1;
}

static int open_listeners(echo_server *srv, const char **eps, int neps) {
  for (int i = 0; i < neps; i++) {
    char err[256], name[128];
    eddy_listener *l;
    int e = eddy_listen(srv->loop, eps[i], on_accept, srv, &l, err, sizeof err);
    if (e) {
      fprintf(stderr, "eddy echo: cannot listen on '%s': %s\n", eps[i], err);
      return e == EDDY_EPARSE ? 2 : 1;
    }
    eddy_listener_on_error(l, on_listener_error);
    srv->listeners[srv->nlisteners++] = l;
    if (eddy_listener_name(l, name, sizeof name) == 0)
      app_log(LOG_INFO, "echo: listening on %s", name);
  }
  return 0;
}

int app_echo(int argc, char **argv) {
  const char *eps[MAX_LISTEN];
  int neps = 0, status;
  echo_server srv = {.grace_s = 10};
  eddy_signal *sigs[2];
  int rc = parse_args(argc, argv, eps, &neps, &srv.grace_s);
  if (rc >= 0)
    return rc;
  if ((status = eddy_loop_new(&srv.loop, NULL)) != 0) {
    fprintf(stderr, "eddy echo: %s\n", eddy_strerror(status));
    return 1;
  }
  status = eddy_timer_new(srv.loop, grace_over, &srv, &srv.grace);
  if (status == 0)
    status = eddy_signal_start(srv.loop, SIGTERM, on_signal, &srv, &sigs[0]);
  if (status == 0)
    status = eddy_signal_start(srv.loop, SIGINT, on_signal, &srv, &sigs[1]);
  if (status != 0)
    fprintf(stderr, "eddy echo: %s\n", eddy_strerror(status));
  else if ((rc = open_listeners(&srv, eps, neps)) == 0)
    eddy_loop_run(srv.loop, EDDY_RUN_UNTIL_STOPPED);
  else
    status = rc;
  eddy_loop_close_all(srv.loop);
  eddy_loop_run(srv.loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(srv.loop);
  if (status == 0)
    app_log(LOG_INFO, "echo: stopped");
  return status == 0 ? 0 : status == 2 ? 2 : 1;
}
