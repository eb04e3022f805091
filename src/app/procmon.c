/* procmon.c: `eddy procmon --process NAME=COMMAND... [--kill-timeout S]`,
 * a process monitor.
 *
 * Each command runs under /bin/sh -c in a process group of its own, so
 * that stopping it signals everything it started; and when the command
 * itself ends, what it left running in its group is killed (as systemd
 * does by default), so that a restart loop cannot pile up leftovers. Each
 * line it writes on stdout or stderr goes to the log prefixed with its
 * name, up to the end of the pipe, which may come after the restart. A
 * process that
 * exits is started again after a delay that doubles from 1 s up to 60 s,
 * and goes back to 1 s once the process has stayed up for a minute (a
 * crash loop backs off; a rare crash restarts soon). The three figures are
 * options, as in Twisted's procmon (minRestartDelay, maxRestartDelay,
 * threshold), mostly so that tests need not wait minutes. SIGTERM or SIGINT
 * stops every process (TERM to its group, KILL after the kill timeout) and
 * the program exits 0 once all of them are reaped; a second signal sends
 * KILL at once. SIGHUP, SIGUSR1 and SIGUSR2 are logged and change nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"

#define MAX_PROCESSES 64
/* A longer line is logged cut to this length; the rest of it is dropped. */
#define LINE_MAX_LEN 4096

typedef struct monitor monitor;

/* One output pipe of one run of a process, cut into lines by a line
 * reader. Each run has its own, freed when the pipe is closed. */
typedef struct pipe_lines {
  struct watched *w;
  eddy_stream *s;
  const char *label; /* "" for stdout, " (stderr)" */
} pipe_lines;

typedef struct watched {
  monitor *m;
  char name[64];
  const char *command;
  eddy_process *p; /* NULL while not running */
  eddy_timer *restart;
  int64_t started, delay;
} watched;

struct monitor {
  eddy_loop *loop;
  watched procs[MAX_PROCESSES];
  int n, running, stopping;
  double kill_timeout_s;
  double min_delay_s, max_delay_s; /* restart delays */
  double steady_s; /* up this long: the delay goes back to min_delay_s */
};

/* ---- Output -------------------------------------------------------------------- */

/* A child writes what it likes: escaped here, by length, so that a NUL
 * does not end the line early and ESC or CR cannot reach a terminal. */
static void emit(pipe_lines *pl, const char *line, size_t len) {
  static char text[LINE_MAX_LEN * 4 + 1];
  (void)app_escape(text, sizeof text, line, len);
  app_log(LOG_INFO, "%s%s: %s", pl->w->name, pl->label, text);
}

static void on_line(eddy_line *lr, const char *line, size_t len, void *arg) {
  (void)lr;
  emit(arg, line, len);
}

static void on_too_long(eddy_line *lr, const char *start, size_t len,
                        void *arg) {
  static char text[LINE_MAX_LEN * 4 + 1];
  pipe_lines *pl = arg;
  (void)lr;
  (void)app_escape(text, sizeof text, start, len);
  app_log(LOG_INFO, "%s%s: %s [cut: longer than %d bytes]", pl->w->name,
          pl->label, text, LINE_MAX_LEN);
}

/* A last line without its newline, at the end of the pipe. */
static void on_output_eof(eddy_line *lr, const char *rest, size_t len,
                          void *arg) {
  if (len > 0)
    emit(arg, rest, len);
  eddy_stream_close(eddy_line_stream(lr));
}

/* The pipe closed without its end read (procmon is stopping): what was
 * read of a last line is logged all the same. */
static void on_output_closed(eddy_line *lr, int status, const char *detail,
                             void *arg) {
  const char *rest;
  size_t len = eddy_line_pending(lr, &rest);
  (void)status;
  (void)detail;
  if (len > 0)
    emit(arg, rest, len);
  free(arg);
}

static const eddy_line_callbacks output_callbacks = {.line = on_line,
                                                     .too_long = on_too_long,
                                                     .eof = on_output_eof,
                                                     .close = on_output_closed};

/* Hands a pipe to a line reader, or closes it. */
static void read_lines(pipe_lines *pl) {
  static const eddy_line_options opts = {.max_length = LINE_MAX_LEN};
  eddy_line *lr;
  int e = eddy_line_open(pl->s, &opts, &output_callbacks, pl, &lr);
  if (e != 0) {
    app_log(LOG_ERROR, "procmon: %s: cannot read its output: %s", pl->w->name,
            eddy_strerror(e));
    eddy_stream_abort(pl->s);
    free(pl);
  }
}

/* ---- Running and restarting -------------------------------------------------- */

static void start(watched *w);

static void restart_due(eddy_timer *t, void *arg) {
  (void)t;
  start(arg);
}

/* Schedules the next start, and doubles the delay after it. */
static void schedule(watched *w) {
  int64_t delay = w->delay, max = (int64_t)(w->m->max_delay_s * 1e9);
  w->delay = delay * 2 > max ? max : delay * 2;
  app_log(LOG_INFO, "procmon: %s: restarting in %.3g s", w->name,
          (double)delay / 1e9);
  if (eddy_timer_start(w->restart, delay, 0) != 0)
    app_log(LOG_ERROR, "procmon: %s: cannot schedule its restart", w->name);
}

static void all_reaped(monitor *m) {
  app_log(LOG_INFO, "procmon: every process has ended");
  eddy_loop_stop(m->loop);
}

static void on_exit_of(eddy_process *p, int exit_status, int term_signal,
                       void *arg) {
  watched *w = arg;
  monitor *m = w->m;
  int64_t up = eddy_loop_now(m->loop) - w->started;
  if (term_signal)
    app_log(LOG_INFO, "procmon: %s: killed by signal %d (%s) after %.1f s",
            w->name, term_signal, strsignal(term_signal), (double)up / 1e9);
  else
    app_log(LOG_INFO, "procmon: %s: exited with status %d after %.1f s",
            w->name, exit_status, (double)up / 1e9);
  /* Leftovers in its group would outlive it, and pile up over restarts. */
  (void)eddy_process_kill_group(p, SIGKILL);
  eddy_process_close(p);
  w->p = NULL;
  m->running--;
  if (m->stopping) {
    if (m->running == 0)
      all_reaped(m);
    return;
  }
  if (up >= (int64_t)(m->steady_s * 1e9))
    w->delay = (int64_t)(m->min_delay_s * 1e9);
  schedule(w);
}

static pipe_lines *new_lines(watched *w, const char *label) {
  pipe_lines *pl = calloc(1, sizeof *pl);
  if (pl) {
    pl->w = w;
    pl->label = label;
  }
  return pl;
}

static void start(watched *w) {
  monitor *m = w->m;
  const char *argv[] = {"/bin/sh", "-c", w->command, NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .flags = EDDY_PROCESS_NEW_GROUP,
                            .exit_cb = on_exit_of,
                            .arg = w};
  pipe_lines *out = new_lines(w, ""), *err = new_lines(w, " (stderr)");
  int e = out && err ? 0 : -ENOMEM;
  w->started = eddy_loop_now(m->loop);
  if (e == 0) {
    o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &out->s};
    o.stdio[2] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &err->s};
    e = eddy_process_spawn(m->loop, &o, &w->p);
  }
  if (e != 0) {
    app_log(LOG_ERROR, "procmon: %s: cannot start: %s", w->name,
            eddy_strerror(e));
    free(out);
    free(err);
    w->p = NULL;
    schedule(w);
    return;
  }
  m->running++;
  read_lines(out);
  read_lines(err);
  app_log(LOG_INFO, "procmon: %s: started, pid %d", w->name,
          (int)eddy_process_pid(w->p));
}

/* ---- Stopping ------------------------------------------------------------------- */

static void on_signal(eddy_signal *h, int signum, void *arg) {
  monitor *m = arg;
  (void)h;
  if (m->stopping) {
    app_log(LOG_WARN, "procmon: %s again: killing what is left",
            strsignal(signum));
    for (int i = 0; i < m->n; i++)
      if (m->procs[i].p)
        (void)eddy_process_kill_group(m->procs[i].p, SIGKILL);
    return;
  }
  m->stopping = 1;
  app_log(LOG_INFO, "procmon: %s: stopping %d process(es)", strsignal(signum),
          m->running);
  for (int i = 0; i < m->n; i++) {
    watched *w = &m->procs[i];
    eddy_timer_stop(w->restart);
    if (w->p &&
        eddy_process_terminate(w->p, (int64_t)(m->kill_timeout_s * 1e9)) != 0)
      (void)eddy_process_kill_group(w->p, SIGKILL);
  }
  if (m->running == 0)
    all_reaped(m);
}

/* SIGHUP, SIGUSR1, SIGUSR2: logged, and nothing else. Nothing is read
 * from files after start-up, so there is nothing for SIGHUP to reload; a
 * daemon's habit is to stay up, not to die of their default action. */
static void on_ignored(eddy_signal *h, int signum, void *arg) {
  (void)h;
  (void)arg;
  app_log(LOG_INFO, "procmon: %s: %s", strsignal(signum),
          signum == SIGHUP ? "nothing to reload" : "ignored");
}

/* ---- Options -------------------------------------------------------------------- */

static void usage(void) {
  printf(
      "Usage: eddy procmon --process NAME=COMMAND [--process ...] [OPTIONS]\n"
      "\n"
      "Runs each command under /bin/sh -c, logs its output line by line\n"
      "prefixed with its name, and restarts it when it exits (after 1 s,\n"
      "doubling up to 60 s; back to 1 s once it has stayed up a minute).\n"
      "SIGTERM or SIGINT stops them all and exits; SIGHUP, SIGUSR1 and\n"
      "SIGUSR2 are logged and ignored.\n"
      "\n"
      "  --process NAME=COMMAND  a process to run (repeatable; names unique)\n"
      "  --kill-timeout S        on stop, SIGKILL what is still running S\n"
      "                          seconds after SIGTERM (default 5)\n"
      "  --min-restart-delay S   the first restart delay (default 1)\n"
      "  --max-restart-delay S   the longest (default 60)\n"
      "  --threshold S           up this long, a process's next restart\n"
      "                          delay is the first again (default 60)\n");
}

/* A name is printable, without spaces or '=': it prefixes log lines. */
static int name_ok(const char *name, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c <= ' ' || c == 0x7f)
      return 0;
  }
  return 1;
}

/* Adds NAME=COMMAND; prints the problem and returns -1 if it is bad. */
static int add_process(monitor *m, const char *spec) {
  const char *eq = spec ? strchr(spec, '=') : NULL;
  size_t nlen = eq ? (size_t)(eq - spec) : 0;
  char quoted[160];
  watched *w;
  if (eq == NULL || nlen == 0 || eq[1] == '\0') {
    fprintf(stderr, "eddy procmon: --process needs NAME=COMMAND, got '%s'\n",
            app_quote(quoted, sizeof quoted, spec ? spec : ""));
    return -1;
  }
  if (nlen >= sizeof m->procs[0].name || m->n == MAX_PROCESSES) {
    fprintf(stderr,
            nlen >= sizeof m->procs[0].name
                ? "eddy procmon: process name too long in '%s'\n"
                : "eddy procmon: too many processes at '%s'\n",
            app_quote(quoted, sizeof quoted, spec));
    return -1;
  }
  if (!name_ok(spec, nlen)) {
    fprintf(stderr,
            "eddy procmon: process name in '%s' has a space or a control "
            "character; names prefix log lines\n",
            app_quote(quoted, sizeof quoted, spec));
    return -1;
  }
  for (int i = 0; i < m->n; i++)
    if (strlen(m->procs[i].name) == nlen &&
        strncmp(m->procs[i].name, spec, nlen) == 0) {
      fprintf(stderr, "eddy procmon: duplicate process name '%.*s'\n",
              (int)nlen, spec);
      return -1;
    }
  w = &m->procs[m->n++];
  memcpy(w->name, spec, nlen);
  w->name[nlen] = '\0';
  w->command = eq + 1;
  return 0;
}

static int parse(monitor *m, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v;
    int rc;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return 0;
    }
    if (app_option_value(argc, argv, &i, "--process", &v)) {
      if (add_process(m, v) != 0)
        return 2;
      continue;
    }
    if ((rc = app_seconds_option("procmon", argc, argv, &i, "--kill-timeout", 0,
                                 3600, &m->kill_timeout_s)) ||
        (rc = app_seconds_option("procmon", argc, argv, &i,
                                 "--min-restart-delay", 0.001, 3600,
                                 &m->min_delay_s)) ||
        (rc = app_seconds_option("procmon", argc, argv, &i,
                                 "--max-restart-delay", 0.001, 3600,
                                 &m->max_delay_s)) ||
        (rc = app_seconds_option("procmon", argc, argv, &i, "--threshold", 0,
                                 3600, &m->steady_s))) {
      if (rc < 0)
        return 2;
      continue;
    }
    char quoted[160];
    fprintf(stderr,
            "eddy procmon: unknown option '%s'; see 'eddy procmon --help'\n",
            app_quote(quoted, sizeof quoted, argv[i]));
    return 2;
  }
  if (m->n == 0) {
    fprintf(stderr,
            "eddy procmon: at least one --process NAME=COMMAND is needed\n");
    return 2;
  }
  if (m->min_delay_s > m->max_delay_s) {
    fprintf(stderr,
            "eddy procmon: --min-restart-delay is above --max-restart-delay\n");
    return 2;
  }
  return -1; /* go on */
}

/* ---- Running -------------------------------------------------------------------- */

static int run(monitor *m) {
  static const int kept_alive[] = {SIGHUP, SIGUSR1, SIGUSR2};
  eddy_signal *sig;
  int err = eddy_signal_start(m->loop, SIGTERM, on_signal, m, &sig);
  if (err == 0)
    err = eddy_signal_start(m->loop, SIGINT, on_signal, m, &sig);
  for (size_t i = 0; i < sizeof kept_alive / sizeof *kept_alive && !err; i++)
    err = eddy_signal_start(m->loop, kept_alive[i], on_ignored, m, &sig);
  for (int i = 0; i < m->n && err == 0; i++) {
    watched *w = &m->procs[i];
    w->m = m;
    w->delay = (int64_t)(m->min_delay_s * 1e9);
    err = eddy_timer_new(m->loop, restart_due, w, &w->restart);
  }
  if (err) {
    fprintf(stderr, "eddy procmon: %s\n", eddy_strerror(err));
    return 1;
  }
  for (int i = 0; i < m->n; i++)
    start(&m->procs[i]);
  eddy_loop_run(m->loop, EDDY_RUN_UNTIL_STOPPED);
  return 0;
}

int app_procmon(int argc, char **argv) {
  monitor m = {0};
  int status;
  m.kill_timeout_s = 5;
  m.min_delay_s = 1;
  m.max_delay_s = 60;
  m.steady_s = 60;
  if ((status = parse(&m, argc, argv)) >= 0)
    return status;
  if ((status = eddy_loop_new(NULL, &m.loop)) != 0) {
    fprintf(stderr, "eddy procmon: %s\n", eddy_strerror(status));
    return 1;
  }
  (void)app_log_attach(m.loop); /* failing, it still logs, more slowly */
  status = run(&m);
  app_log_detach();
  eddy_loop_close_all(m.loop);
  eddy_loop_run(m.loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(m.loop);
  if (status == 0)
    app_log(LOG_INFO, "procmon: stopped");
  return status;
}
