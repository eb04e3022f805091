/* serve.c: what every server subcommand shares: --listen and --grace,
 * opening the listeners, logging, and the signals: the graceful stop on
 * SIGTERM/SIGINT (stop accepting, let open connections finish for the
 * grace time, then close what is left and return); SIGHUP rereads the
 * certificates of tls: listeners, and what the subcommand's reload hook
 * rereads; SIGUSR1 and SIGUSR2 are logged and
 * ignored, as daemons do, rather than killing the server.
 *
 * The loop's signal handles only act once the loop runs, and start-up can
 * block before that (a certificate path that is a FIFO, a slow network
 * file system). Until then plain handlers hold the signals: a terminating
 * one removes the Unix socket files bound so far and dies of its signal; the
 * others are ignored. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/log.h"

int app_seconds_option(const char *cmd, int argc, char **argv, int *i,
                       const char *name, double min, double max, double *out) {
  const char *v;
  char *end = NULL;
  if (!app_option_value(argc, argv, i, name, &v))
    return 0;
  *out = v ? strtod(v, &end) : -1;
  if (v == NULL || end == v || *end || !(*out >= min && *out <= max)) {
    fprintf(stderr, "eddy %s: %s needs seconds from %g to %g\n", cmd, name, min,
            max);
    return -1;
  }
  return 1;
}

int app_server_option(app_server *srv, int argc, char **argv, int *i) {
  const char *v;
  int rc;
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
  if ((rc = app_seconds_option(srv->name, argc, argv, i, "--grace", 0, 86400,
                               &srv->grace_s)) != 0)
    return rc;
  return app_seconds_option(srv->name, argc, argv, i, "--idle-timeout", 0,
                            86400, &srv->idle_s);
}

void app_server_log_close(app_server *srv, const char *peer, int status,
                          const char *detail) {
  int scarce = status == -ENOMEM || status == -ENOBUFS || status == -EMFILE ||
               status == -ENFILE;
  if (!peer)
    peer = "a client";
  if (!scarce) {
    if (status == 0)
      app_log(LOG_DEBUG, "%s: %s closed", srv->name, peer);
    else
      app_log(LOG_DEBUG, "%s: %s closed: %s", srv->name, peer, detail);
  } else if (app_log_allow(&srv->warnings, LOG_WARN, srv->name)) {
    app_log(LOG_WARN, "%s: %s closed: %s", srv->name, peer, detail);
  }
}

int app_server_set_idle(app_server *srv, eddy_stream *s) {
  if (srv->idle_s <= 0)
    return 0;
  return eddy_stream_set_timeout(s, (int64_t)(srv->idle_s * 1e9));
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

/* ---- Signals before the loop runs ------------------------------------------ */

static char startup_paths[APP_MAX_LISTEN][EDDY_ENDPOINT_PATH_MAX];
static volatile sig_atomic_t startup_npaths;

/* Async-signal-safe: unlink, sigaction and raise only. */
static void startup_terminate(int signum) {
  struct sigaction dfl;
  for (int i = 0; i < startup_npaths; i++)
    (void)unlink(startup_paths[i]);
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  (void)sigaction(signum, &dfl, NULL);
  (void)raise(signum);
}

static void startup_ignore(int signum) {
  (void)signum;
}

static const int terminating[] = {SIGTERM, SIGINT};
static const int kept_alive[] = {SIGHUP, SIGUSR1, SIGUSR2};

/* on: the start-up handlers; off: the default dispositions again. A
 * handler rather than SIG_IGN for the ignored ones: an ignored disposition
 * would be inherited across exec. SA_RESTART: a blocking open or read goes
 * on. */
static void startup_signals(int on) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof terminating / sizeof *terminating; i++)
    sigaddset(&sa.sa_mask, terminating[i]);
  sa.sa_handler = on ? startup_terminate : SIG_DFL;
  for (size_t i = 0; i < sizeof terminating / sizeof *terminating; i++)
    (void)sigaction(terminating[i], &sa, NULL);
  sa.sa_handler = on ? startup_ignore : SIG_DFL;
  for (size_t i = 0; i < sizeof kept_alive / sizeof *kept_alive; i++)
    (void)sigaction(kept_alive[i], &sa, NULL);
}

/* Notes a Unix socket file the start-up handler must remove. Filled before
 * the count is raised, so the handler never reads half a path. */
static void startup_note_path(const eddy_endpoint *ep) {
  int n = startup_npaths;
  if (ep->kind != EDDY_ENDPOINT_UNIX || n == APP_MAX_LISTEN)
    return;
  snprintf(startup_paths[n], sizeof startup_paths[n], "%s", ep->path);
  startup_npaths = n + 1;
}

/* ---- Signals while the loop runs --------------------------------------------- */

/* SIGHUP: a new TLS context from each tls: listener's endpoint, read again
 * from its files. Connections in flight keep the context they started
 * with; a listener whose files no longer load keeps its old one. */
static void on_reload(eddy_signal *h, int signum, void *arg) {
  app_server *srv = arg;
  int ntls = 0;
  (void)h;
  for (int i = 0; i < srv->nlisteners; i++) {
    eddy_endpoint ep;
    eddy_tls_ctx *ctx;
    char err[600], name[128] = "";
    if (eddy_endpoint_parse_server(srv->endpoints[i], &ep, NULL, 0) != 0 ||
        !ep.tls)
      continue;
    ntls++;
    (void)eddy_listener_name(srv->listeners[i], name, sizeof name);
    if (eddy_tls_ctx_from_endpoint(&ep, 1, &ctx, err, sizeof err) != 0) {
      app_log(LOG_WARN, "%s: %s: %s: keeping the old certificate: %s",
              srv->name, strsignal(signum), name, err);
      continue;
    }
    eddy_listener_set_tls(srv->listeners[i], ctx);
    eddy_tls_ctx_free(ctx); /* the listener holds its own reference */
    app_log(LOG_INFO, "%s: %s: %s: reloaded the certificate", srv->name,
            strsignal(signum), name);
  }
  if (srv->reload)
    ntls += srv->reload(srv, signum);
  if (ntls == 0)
    app_log(LOG_INFO, "%s: %s: nothing to reload", srv->name,
            strsignal(signum));
}

static void on_ignored(eddy_signal *h, int signum, void *arg) {
  app_server *srv = arg;
  (void)h;
  app_log(LOG_INFO, "%s: %s: ignored", srv->name, strsignal(signum));
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
  if (srv->on_stop)
    srv->on_stop(srv);
  if (srv->open == 0 ||
      eddy_timer_start(srv->grace, (int64_t)(srv->grace_s * 1e9), 0) != 0)
    eddy_loop_stop(srv->loop);
}

static int open_listeners(app_server *srv) {
  for (int i = 0; i < srv->nendpoints; i++) {
    char err[256], name[128];
    eddy_listener *l;
    eddy_endpoint ep;
    int e = eddy_endpoint_parse_server(srv->endpoints[i], &ep, err, sizeof err);
    if (e == 0)
      e = eddy_listener_open(srv->loop, &ep, srv->on_accept, srv->arg, &l, err,
                             sizeof err);
    if (e) {
      /* Both may hold the argument's bytes: a path, a host name. */
      char quoted[256], detail[512];
      fprintf(stderr, "eddy %s: cannot listen on '%s': %s\n", srv->name,
              app_quote(quoted, sizeof quoted, srv->endpoints[i]),
              app_quote(detail, sizeof detail, err));
      return e == EDDY_EPARSE ? 2 : 1;
    }
    startup_note_path(&ep);
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

/* The loop's signal handles, started once the listeners are open (each
 * replaces the start-up handler until it is closed). */
static int start_signals(app_server *srv) {
  static const struct {
    int signum;
    eddy_signal_cb cb;
  } table[] = {{SIGTERM, on_signal},
               {SIGINT, on_signal},
               {SIGHUP, on_reload},
               {SIGUSR1, on_ignored},
               {SIGUSR2, on_ignored}};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
    eddy_signal *h;
    int e = eddy_signal_start(srv->loop, table[i].signum, table[i].cb, srv, &h);
    if (e)
      return e;
  }
  return 0;
}

/* The grace timer, the listeners and the signal handles: 0, or the exit
 * status (the message printed). */
static int prepare(app_server *srv) {
  int e = eddy_timer_new(srv->loop, grace_over, srv, &srv->grace);
  int status;
  if (e == 0 && (status = open_listeners(srv)) != 0)
    return status;
  if (e == 0)
    e = start_signals(srv);
  if (e) {
    fprintf(stderr, "eddy %s: %s\n", srv->name, eddy_strerror(e));
    return 1;
  }
  return 0;
}

/* The end of a server: its loop's handles closed (the listeners remove
 * their socket files), the loop freed, the default signal dispositions
 * back. */
static void close_loop(app_server *srv) {
  if (srv->on_close)
    srv->on_close(srv);
  eddy_loop_close_all(srv->loop);
  eddy_loop_run(srv->loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(srv->loop);
  startup_npaths = 0;
  startup_signals(0);
}

int app_server_run(app_server *srv) {
  int status;
  startup_signals(1);
  (void)app_log_attach(srv->loop); /* failing, it still logs, more slowly */
  if ((status = prepare(srv)) == 0)
    eddy_loop_run(srv->loop, EDDY_RUN_UNTIL_STOPPED);
  app_log_detach();
  close_loop(srv);
  if (status == 0)
    app_log(LOG_INFO, "%s: stopped", srv->name);
  return status;
}

/* ---- Worker processes ----------------------------------------------------------
 *
 * With workers, the listeners are opened once, then each worker is a fork
 * that serves them on its own poller (eddy_loop_fork), and the first
 * process only supervises: a worker that dies is started again (at most
 * once a second), SIGTERM and SIGINT are passed on and the workers
 * drained (SIGKILL for any still running 5 s after their grace time),
 * SIGHUP, SIGUSR1 and SIGUSR2 are passed on. A worker that ends does not
 * close its listeners (a unix: socket file would go while the others
 * serve it); the supervisor does, last. */

#define MAX_WORKERS 64

typedef struct worker {
  pid_t pid; /* 0: to be started */
  time_t started;
} worker;

static pid_t start_worker(app_server *srv, const sigset_t *old) {
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  /* The signals stay blocked until the loop has its own signal pipe: one
   * caught before would be written to the pipe shared with the
   * supervisor, and lost. Blocked, it waits for the new pipe. */
  if (eddy_loop_fork(srv->loop) != 0)
    _exit(1);
  (void)sigprocmask(SIG_SETMASK, old, NULL);
  (void)app_log_attach(srv->loop);
  eddy_loop_run(srv->loop, EDDY_RUN_UNTIL_STOPPED);
  app_log_detach();
  _exit(0);
}

static void signal_workers(const worker *w, int n, int signum) {
  for (int i = 0; i < n; i++)
    if (w[i].pid > 0)
      (void)kill(w[i].pid, signum);
}

/* Reaps every worker that has ended; returns how many are still running. */
static int reap(app_server *srv, worker *w, int n, int stopping) {
  int status, alive = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
    for (int i = 0; i < n; i++) {
      if (w[i].pid != pid)
        continue;
      w[i].pid = 0;
      if (!stopping)
        app_log(LOG_WARN, "%s: worker %d %s %d; starting another", srv->name,
                (int)pid, WIFSIGNALED(status) ? "killed by signal" : "exited",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
  for (int i = 0; i < n; i++)
    alive += w[i].pid > 0;
  return alive;
}

int app_server_run_workers(app_server *srv, int nworkers) {
  static const int watched[] = {SIGCHLD, SIGTERM, SIGINT,
                                SIGHUP,  SIGUSR1, SIGUSR2};
  worker w[MAX_WORKERS] = {{0, 0}};
  sigset_t set, old;
  time_t stop_at = 0;
  int status, stopping = 0, alive = 0;
  if (nworkers <= 0)
    return app_server_run(srv);
  if (nworkers > MAX_WORKERS)
    nworkers = MAX_WORKERS;
  startup_signals(1);
  (void)app_log_attach(srv->loop);
  if ((status = prepare(srv)) != 0) {
    app_log_detach();
    close_loop(srv);
    return status;
  }
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof watched / sizeof *watched; i++)
    sigaddset(&set, watched[i]);
  (void)sigprocmask(SIG_BLOCK, &set, &old);
  app_log_detach(); /* the supervisor runs no loop: its lines go directly */
  app_log(LOG_INFO, "%s: %d worker processes", srv->name, nworkers);
  for (;;) {
    struct timespec tick = {0, 200 * 1000 * 1000};
    time_t now = time(NULL);
    int sig;
    for (int i = 0; i < nworkers && !stopping; i++)
      if (w[i].pid == 0 && now - w[i].started >= 1) {
        w[i].started = now;
        if ((w[i].pid = start_worker(srv, &old)) < 0) {
          app_log(LOG_ERROR, "%s: cannot start a worker: %s", srv->name,
                  eddy_strerror(-errno));
          w[i].pid = 0;
        }
      }
    sig = sigtimedwait(&set, NULL, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      if (!stopping) {
        app_log(LOG_INFO, "%s: %s: stopping the workers", srv->name,
                strsignal(sig));
        stopping = 1;
        stop_at = time(NULL);
      }
      signal_workers(w, nworkers, sig);
    } else if (sig == SIGHUP || sig == SIGUSR1 || sig == SIGUSR2) {
      signal_workers(w, nworkers, sig);
    }
    alive = reap(srv, w, nworkers, stopping);
    if (stopping && alive == 0)
      break;
    if (stopping && time(NULL) - stop_at > (time_t)srv->grace_s + 5)
      signal_workers(w, nworkers, SIGKILL);
  }
  (void)sigprocmask(SIG_SETMASK, &old, NULL);
  close_loop(srv);
  app_log(LOG_INFO, "%s: stopped", srv->name);
  return 0;
}
