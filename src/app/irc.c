/* irc.c: `eddy irc`: an IRC server, the protocol in
 * src/proto/irc/server.c (see eddy/irc.h, "The server").
 *
 *   eddy irc --listen ENDPOINT... [--name SERVERNAME] [--motd FILE]
 *            [--password PASS] [--max-clients N] [--ping-timeout S]
 *            [--grace S]
 *
 * SIGTERM and SIGINT: every client is sent an ERROR line and its
 * connection closed once that is sent; the process exits 0 (after at
 * most --grace seconds for clients that do not read). SIGHUP reloads the
 * MOTD file and the certificates of tls: endpoints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"

#define MOTD_MAX (64 * 1024)

typedef struct irc_app {
  app_server srv;
  eddy_irc_server_options o;
  eddy_irc_server *irc;
  const char *motd_path;
  char *motd;
} irc_app;

static void on_client_closed(eddy_irc_server *irc, void *arg) {
  irc_app *app = arg;
  (void)irc;
  app_server_closed_one(&app->srv);
}

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  irc_app *app = arg;
  (void)l;
  /* The server counts the connection only once it takes it. */
  app->srv.open++;
  if (eddy_irc_server_serve(app->irc, s) != 0)
    app_server_closed_one(&app->srv);
}

static void on_stop(app_server *srv) {
  irc_app *app = (irc_app *)srv;
  eddy_irc_server_stop(app->irc, "Server shutting down");
}

static void on_close(app_server *srv) {
  irc_app *app = (irc_app *)srv;
  eddy_irc_server_free(app->irc);
  app->irc = NULL;
}

/* Reads the MOTD file: 0, or -1 with the reason printed to err. */
static int read_motd(const char *path, char **out, char *err, size_t cap) {
  FILE *f = fopen(path, "re");
  char *text;
  size_t n;
  if (f == NULL) {
    snprintf(err, cap, "--motd '%s': %s", path, strerror(errno));
    return -1;
  }
  text = malloc(MOTD_MAX + 1);
  if (text == NULL) {
    fclose(f);
    snprintf(err, cap, "--motd '%s': out of memory", path);
    return -1;
  }
  n = fread(text, 1, MOTD_MAX, f);
  if (ferror(f)) {
    snprintf(err, cap, "--motd '%s': %s", path, strerror(errno));
    fclose(f);
    free(text);
    return -1;
  }
  fclose(f);
  text[n] = '\0';
  /* NUL and CR would cut or break the lines sent: spaces instead. */
  for (size_t i = 0; i < n; i++)
    if (text[i] == '\0' || text[i] == '\r')
      text[i] = ' ';
  *out = text;
  return 0;
}

static void usage(void) {
  printf(
      "Usage: eddy irc --listen ENDPOINT [--listen ENDPOINT...]\n"
      "                [--name SERVERNAME] [--motd FILE] [--password PASS]\n"
      "                [--max-clients N] [--ping-timeout S] [--grace S]\n"
      "\n"
      "An IRC server (RFC 1459 and 2812, with IRCv3 capabilities\n"
      "multi-prefix and server-time) for the clients people use.\n"
      "\n"
      "  --listen ENDPOINT   tcp:6667:interface=127.0.0.1, tcp6:6667,\n"
      "                      unix:PATH, tls:6697:certKey=PEM, ...\n"
      "                      (repeatable)\n"
      "  --name SERVERNAME   the server's name (default irc.eddy.local)\n"
      "  --motd FILE         the message of the day (SIGHUP rereads it)\n"
      "  --password PASS     the password clients must give with PASS\n"
      "  --max-clients N     connections at once (default 10000)\n"
      "  --ping-timeout S    a client silent for S seconds is sent a\n"
      "                      PING, and dropped after S more without an\n"
      "                      answer (default 120)\n"
      "  --grace S           on SIGTERM/SIGINT, how long clients may\n"
      "                      take to be sent their last lines (default "
      "10)\n");
}

static int bad_option(const char *before, const char *value,
                      const char *after) {
  return app_usage_error("irc", before, value, after);
}

static int parse_options(irc_app *app, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int rc;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return -1;
    }
    if (app_option_value(argc, argv, &i, "--name", &v)) {
      if (v == NULL || v[0] == '\0' || strpbrk(v, " :!@,*?\r\n") ||
          strlen(v) > 63)
        return bad_option(
            "--name needs a server name (no spaces, at most "
            "63 bytes)",
            NULL, NULL);
      app->o.name = v;
    } else if (app_option_value(argc, argv, &i, "--motd", &v)) {
      if (v == NULL || v[0] == '\0')
        return bad_option("--motd needs a file", NULL, NULL);
      app->motd_path = v;
    } else if (app_option_value(argc, argv, &i, "--password", &v)) {
      if (v == NULL || v[0] == '\0' || strpbrk(v, " \r\n"))
        return bad_option("--password needs a word without spaces", NULL, NULL);
      app->o.password = v;
    } else if (app_option_value(argc, argv, &i, "--max-clients", &v)) {
      char *end;
      unsigned long long n;
      if (v == NULL)
        return bad_option("--max-clients needs a number", NULL, NULL);
      errno = 0;
      n = strtoull(v, &end, 10);
      if (errno || end == v || *end || v[0] == '-' || n < 1 || n > 1000000)
        return bad_option("--max-clients ", v,
                          " is not a number from 1 to 1000000");
      app->o.max_clients = (size_t)n;
    } else if ((rc = app_seconds_option("irc", argc, argv, &i, "--ping-timeout",
                                        1, 86400, &app->o.ping_timeout)) != 0) {
      if (rc < 0)
        return 2;
    } else if ((rc = app_server_option(&app->srv, argc, argv, &i)) != 0) {
      if (rc < 0)
        return 2;
    } else {
      return bad_option("unknown option ", argv[i], "; see 'eddy irc --help'");
    }
  }
  if (app->srv.nendpoints == 0)
    return bad_option("at least one --listen ENDPOINT is needed", NULL, NULL);
  return 0;
}

static int reload_motd(app_server *srv, int signum) {
  irc_app *app = (irc_app *)srv;
  char err[600], *text;
  if (app->motd_path == NULL)
    return 0;
  if (read_motd(app->motd_path, &text, err, sizeof err) != 0) {
    app_log(LOG_WARN, "irc: %s: %s; the old MOTD stays", strsignal(signum),
            err);
    return 1;
  }
  if (eddy_irc_server_set_motd(app->irc, text) != 0) {
    app_log(LOG_WARN, "irc: %s: out of memory; the old MOTD stays",
            strsignal(signum));
    free(text);
    return 1;
  }
  free(app->motd);
  app->motd = text;
  app_log(LOG_INFO, "irc: %s: reloaded the MOTD", strsignal(signum));
  return 1;
}

static int setup(irc_app *app) {
  char err[600];
  int e, status;
  if (app->motd_path &&
      read_motd(app->motd_path, &app->motd, err, sizeof err) != 0) {
    fprintf(stderr, "eddy irc: %s\n", err);
    return 1;
  }
  app->o.motd = app->motd;
  app->o.closed = on_client_closed;
  app->o.arg = app;
  if ((status = app_server_start(&app->srv)) != 0)
    return status;
  if ((e = eddy_irc_server_new(app->srv.loop, &app->o, &app->irc)) != 0) {
    fprintf(stderr, "eddy irc: %s\n", eddy_strerror(e));
    eddy_loop_close_all(app->srv.loop);
    eddy_loop_run(app->srv.loop, EDDY_RUN_UNTIL_IDLE);
    eddy_loop_free(app->srv.loop);
    return 1;
  }
  return 0;
}

int app_irc(int argc, char **argv) {
  irc_app *app = calloc(1, sizeof *app);
  int status;
  if (app == NULL) {
    fprintf(stderr, "eddy irc: out of memory\n");
    return 1;
  }
  app->srv.name = "irc";
  app->srv.grace_s = 10;
  app->srv.on_accept = on_accept;
  app->srv.arg = app;
  app->srv.reload = reload_motd;
  app->srv.on_stop = on_stop;
  app->srv.on_close = on_close;
  status = parse_options(app, argc, argv);
  if (status == 0)
    status = setup(app);
  else if (status < 0)
    status = 0; /* --help */
  if (status == 0 && app->irc)
    status = app_server_run(&app->srv);
  free(app->motd);
  free(app);
  return status;
}
