/* serve.c: what every server subcommand shares: --listen and --grace,
 * opening the listeners, logging, and the graceful stop on SIGTERM/SIGINT
 * (stop accepting, let open connections finish for the grace time, then
 * close what is left and return). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"

int app_server_option(app_server *srv, int argc, char **argv, int *i) {
  const char *v;
  if (app_option_value(argc, argv, i, "--listen", &v)) {
    if (v == NULL || srv->nendpoints == APP_MAX_LISTEN) {
      fprintf(stderr,
              v ? "eddy %s: at most %d --listen\n"
                : "eddy %s: --listen needs an endpoint\n",
              srv->name, APP_MAX_LISTEN);
      return -1;
    }
    srv->endpoints[srv->nendpoints++] = v;
    return 1;
  }
  if (app_option_value(argc, argv, i, "--grace", &v)) {
    char *end = NULL;
    srv->grace_s = v ? strtod(v, &end) : -1;
    if (v == NULL || end == v || *end ||
        !(srv->grace_s >= 0 && srv->grace_s <= 86400)) {
      fprintf(stderr, "eddy %s: --grace needs seconds from 0 to 86400\n",
              srv->name);
      return -1;
    }
    return 1;
  }
  return 0;
}

void app_server_closed_one(app_server *srv) {
  if (--srv->open == 0 && srv->stopping)
    eddy_loop_stop(srv->loop);
}

static void on_listener_error(eddy_listener *l, int err, const char *detail,
                              void *arg) {
  app_server *srv = arg;
  char name[128] = "";
  (void)eddy_listener_name(l, name, sizeof name);
  app_log(LOG_WARN, "%s: %s: %s (%s)", srv->name, name, detail,
          eddy_strerror(err));
}

static void grace_over(eddy_timer *t, void *arg) {
  app_server *srv = arg;
  (void)t;
  app_log(LOG_WARN,
          "%s: %ld connection(s) still open after %.1f s; closing them",
          srv->name, srv->open, srv->grace_s);
  eddy_loop_stop(srv->loop);
}

static void on_signal(eddy_signal *h, int signum, void *arg) {
  app_server *srv = arg;
  (void)h;
  if (srv->stopping)
    return;
  srv->stopping = 1;
  app_log(LOG_INFO, "%s: %s: no longer accepting; %ld connection(s) open",
          srv->name, strsignal(signum), srv->open);
  for (int i = 0; i < srv->nlisteners; i++)
    eddy_listener_close(srv->listeners[i]);
  srv->nlisteners = 0;
  if (srv->open == 0 ||
      eddy_timer_start(srv->grace, (int64_t)(srv->grace_s * 1e9), 0) != 0)
    eddy_loop_stop(srv->loop);
}

static int open_listeners(app_server *srv) {
  for (int i = 0; i < srv->nendpoints; i++) {
    char err[256], name[128];
    eddy_listener *l;
    int e = eddy_listen(srv->loop, srv->endpoints[i], srv->on_accept, srv->arg,
                        &l, err, sizeof err);
    if (e) {
      fprintf(stderr, "eddy %s: cannot listen on '%s': %s\n", srv->name,
              srv->endpoints[i], err);
      return e == EDDY_EPARSE ? 2 : 1;
    }
    eddy_listener_on_error(l, on_listener_error);
    srv->listeners[srv->nlisteners++] = l;
    if (eddy_listener_name(l, name, sizeof name) == 0)
      app_log(LOG_INFO, "%s: listening on %s", srv->name, name);
  }
  return 0;
}

int app_server_start(app_server *srv) {
  int e;
  if (srv->nendpoints == 0) {
    fprintf(stderr, "eddy %s: at least one --listen ENDPOINT is needed\n",
            srv->name);
    return 2;
  }
  if ((e = eddy_loop_new(NULL, &srv->loop)) != 0) {
    fprintf(stderr, "eddy %s: %s\n", srv->name, eddy_strerror(e));
    return 1;
  }
  return 0;
}

int app_server_run(app_server *srv) {
  eddy_signal *sigs[2];
  int status = eddy_timer_new(srv->loop, grace_over, srv, &srv->grace);
  if (status == 0)
    status = eddy_signal_start(srv->loop, SIGTERM, on_signal, srv, &sigs[0]);
  if (status == 0)
    status = eddy_signal_start(srv->loop, SIGINT, on_signal, srv, &sigs[1]);
  if (status != 0) {
    fprintf(stderr, "eddy %s: %s\n", srv->name, eddy_strerror(status));
    status = 1;
  } else if ((status = open_listeners(srv)) == 0) {
    eddy_loop_run(srv->loop, EDDY_RUN_UNTIL_STOPPED);
  }
  eddy_loop_close_all(srv->loop);
  eddy_loop_run(srv->loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(srv->loop);
  if (status == 0)
    app_log(LOG_INFO, "%s: stopped", srv->name);
  return status;
}
