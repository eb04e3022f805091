/* app.h: what the eddy program's subcommands share. */
#ifndef EDDY_APP_APP_H
#define EDDY_APP_APP_H

/* If argv[*i] is the option name ("--listen VALUE" or "--listen=VALUE"),
 * sets *value (NULL when the value is missing), advances *i past a
 * separate value, and returns 1; otherwise returns 0. */
int app_option_value(int argc, char **argv, int *i, const char *name,
                     const char **value);

/* Prints "eddy CMD: BEFORE'VALUE'AFTER" (the value quoted as app_quote
 * does; just BEFORE when value is NULL) and returns 2, the usage status. */
int app_usage_error(const char *cmd, const char *before, const char *value,
                    const char *after);

#include "app/log.h"
#include "eddy.h"

#define APP_MAX_LISTEN 16

/* A server subcommand: its listeners and its graceful stop. */
typedef struct app_server {
  const char *name; /* "echo": prefixes messages and log lines */
  eddy_loop *loop;
  const char *endpoints[APP_MAX_LISTEN];
  int nendpoints;
  eddy_listener *listeners[APP_MAX_LISTEN];
  int nlisteners;
  eddy_accept_cb on_accept;
  void *arg;
  /* SIGHUP, after the listeners' certificates: what else the subcommand
   * can reread (portforward's target trust roots). Returns the number of
   * things it reloaded or tried to. May be NULL. */
  int (*reload)(struct app_server *srv, int signum);
  /* SIGTERM/SIGINT, once the listeners are closed: let idle connections
   * go (web's keep-alive ones). May be NULL. */
  void (*on_stop)(struct app_server *srv);
  /* Before the loop's handles are closed at the end of the run, whatever
   * made it end (a stop, a listener that failed to open): free what the
   * subcommand built on the loop. May be NULL. */
  void (*on_close)(struct app_server *srv);
  long open; /* connections open; the subcommand counts them */
  int stopping;
  double grace_s; /* default 10 */
  double idle_s;  /* a connection quiet this long is closed; 0: never */
  eddy_timer *grace;
  app_log_limit warnings; /* per-connection warnings, rate-limited */
} app_server;

/* The default of --idle-timeout, in seconds. */
#define APP_IDLE_TIMEOUT 300

/* Consumes --listen, --grace and --idle-timeout: returns 1 if argv[*i] was
 * one, 0 if not, -1 for a bad value (the message is printed; exit 2). */
int app_server_option(app_server *srv, int argc, char **argv, int *i);
/* Checks the options and creates the loop: 0, or an exit status. */
int app_server_start(app_server *srv);
/* Opens the listeners and runs until stopped; returns the exit status. */
int app_server_run(app_server *srv);
/* app_server_run in nworkers forked processes sharing the listeners, the
 * first one supervising them (serve.c); 0 workers: app_server_run. */
int app_server_run_workers(app_server *srv, int nworkers);
/* A connection ended: during a graceful stop, the last one stops the loop. */
void app_server_closed_one(app_server *srv);
/* Logs a connection's end (peer may be NULL when not kept): running out
 * of memory, descriptors or buffers is the operator's business, a warning
 * (rate-limited); every other end (a reset, a timeout, a peer's TLS
 * mistake) is the peer's, at debug level. */
void app_server_log_close(app_server *srv, const char *peer, int status,
                          const char *detail);
/* Gives an accepted stream the server's idle timeout: 0, or an error (the
 * caller aborts the stream: a connection that could sit idle for ever
 * must not be kept). */
int app_server_set_idle(app_server *srv, eddy_stream *s);
/* Reads a seconds option from min to max (argv[*i] named name): 1 if it
 * was that option, 0 if not, -1 for a bad value (the message names the
 * bounds; exit 2). */
int app_seconds_option(const char *cmd, int argc, char **argv, int *i,
                       const char *name, double min, double max, double *out);

int app_chat(int argc, char **argv);
int app_dns(int argc, char **argv);
int app_echo(int argc, char **argv);
int app_irc(int argc, char **argv);
int app_portforward(int argc, char **argv);
int app_procmon(int argc, char **argv);
int app_web(int argc, char **argv);

#endif
