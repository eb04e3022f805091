/* web.c: `eddy web --listen ENDPOINT... --path DIR`: a static file server
 * on eddy's HTTP/1.1 server (src/proto/http).
 *
 * Files under DIR are served at "/" (see eddy/http.h, "Static files":
 * conditional requests, ranges, sendfile, no way out of DIR); tls:
 * endpoints serve HTTPS. Each request can be written to an access log in
 * the Combined Log Format (--access-log FILE, or - for standard output),
 * through a sink that never blocks the server. SIGTERM or SIGINT stops
 * accepting, closes idle keep-alive connections, lets requests in flight
 * finish for the grace time, then exits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/log.h"
#include "app/sink.h"

typedef struct web {
  app_server srv;
  const char *path, *index, *access_path;
  int listing;
  int workers;
  eddy_http_server *http;
  eddy_http_static *files;
  app_sink *access;
} web;

/* ---- The access log ---------------------------------------------------------- */

/* A field for the log: escaped (app_escape), and no '"' left to end it
 * early. */
static void field(char *out, size_t cap, const char *p, size_t n) {
  char tmp[2048];
  size_t o = 0;
  if (p == NULL || n == 0) {
    snprintf(out, cap, "-");
    return;
  }
  (void)app_escape(tmp, sizeof tmp, p, n);
  for (const char *t = tmp; *t && o + 5 < cap; t++) {
    if (*t == '"') {
      memcpy(out + o, "\\x22", 4);
      o += 4;
    } else {
      out[o++] = *t;
    }
  }
  out[o] = '\0';
}

static void header_field(const eddy_http_request *r, const char *name,
                         char *out, size_t cap) {
  const eddy_http_header *h = eddy_http_find_header(r, name);
  field(out, cap, h ? h->value : NULL, h ? h->value_len : 0);
}

static void access_line(const eddy_http_exchange *x, int status, uint64_t bytes,
                        void *arg) {
  web *w = arg;
  const eddy_http_request *r = eddy_http_request_of(x);
  eddy_stream *s = eddy_http_stream(x);
  char peer[64] = "-", when[40], method[64], target[2048], referer[512],
       agent[512], line[4096];
  time_t now = time(NULL);
  struct tm tm;
  int n;
  if (w->access == NULL)
    return;
  if (s == NULL || eddy_stream_peer_name(s, peer, sizeof peer) != 0)
    snprintf(peer, sizeof peer, "-");
  else if (peer[0] == '[') { /* "[::1]:5000" -> "::1" */
    char *end = strchr(peer, ']');
    if (end)
      *end = '\0';
    memmove(peer, peer + 1, strlen(peer));
  } else if (strrchr(peer, ':')) {
    *strrchr(peer, ':') = '\0';
  }
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  field(method, sizeof method, r->method_name, r->method_len);
  field(target, sizeof target, r->target, r->target_len);
  header_field(r, "Referer", referer, sizeof referer);
  header_field(r, "User-Agent", agent, sizeof agent);
  n = snprintf(line, sizeof line,
               "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu \"%s\" \"%s\"\n", peer,
               when, method, target, r->version_minor, status,
               (unsigned long long)bytes, referer, agent);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line) {
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  (void)app_sink_put(w->access, line, (size_t)n);
  app_sink_flush(w->access);
}

/* ---- Connections ------------------------------------------------------------------ */

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  web *w = arg;
  (void)l;
  if (app_server_set_idle(&w->srv, s) != 0 ||
      eddy_http_server_serve(w->http, s) != 0) {
    eddy_stream_abort(s);
    return;
  }
  w->srv.open++;
}

static void on_closed(eddy_http_server *srv, void *arg) {
  web *w = arg;
  (void)srv;
  app_server_closed_one(&w->srv);
}

static void on_stop(app_server *srv) {
  web *w = srv->arg;
  eddy_http_server_drain(w->http);
}

/* ---- Options ------------------------------------------------------------------------ */

static void usage(void) {
  printf(
      "Usage: eddy web --listen ENDPOINT [--listen ENDPOINT...] --path DIR\n"
      "                [--index NAME] [--listing] [--access-log FILE]\n"
      "                [--workers N] [--grace S] [--idle-timeout S]\n"
      "\n"
      "Serves the files under DIR over HTTP/1.1 (HTTPS on tls: endpoints).\n"
      "\n"
      "  --listen ENDPOINT   where to listen: tcp:PORT[:interface=ADDR],\n"
      "                      tcp6:PORT, unix:PATH, tls:PORT:certKey=PEM, ...\n"
      "                      (repeatable)\n"
      "  --path DIR          the directory to serve (default: .)\n"
      "  --index NAME        a directory's index file (default index.html)\n"
      "  --listing           list a directory that has no index file\n"
      "  --access-log FILE   log each request in the Combined Log Format\n"
      "                      to FILE (- for standard output)\n"
      "  --workers N         serve from N worker processes sharing the\n"
      "                      listeners, restarted if they die (0 to 64;\n"
      "                      default 0: this process serves)\n"
      "  --grace S           on SIGTERM/SIGINT, let requests in flight\n"
      "                      finish for S seconds (default 10)\n"
      "  --idle-timeout S    close a connection that moves no byte for S\n"
      "                      seconds (default 300; 0: never)\n");
}

/* A string option: 1 if argv[*i] was name (*dst set), 0 if not, -1 for a
 * missing or empty value (the message printed). */
static int text_option(int argc, char **argv, int *i, const char *name,
                       const char **dst) {
  const char *v;
  if (!app_option_value(argc, argv, i, name, &v))
    return 0;
  if (v == NULL || *v == '\0') {
    fprintf(stderr, "eddy web: %s needs a value\n", name);
    return -1;
  }
  *dst = v;
  return 1;
}

static int parse(web *w, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v;
    int rc;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return 0;
    }
    if ((rc = text_option(argc, argv, &i, "--path", &w->path)) ||
        (rc = text_option(argc, argv, &i, "--index", &w->index)) ||
        (rc = text_option(argc, argv, &i, "--access-log", &w->access_path))) {
      if (rc < 0)
        return 2;
      continue;
    }
    if (app_option_value(argc, argv, &i, "--workers", &v)) {
      char *end = NULL;
      long n = v ? strtol(v, &end, 10) : -1;
      if (v == NULL || end == v || *end || n < 0 || n > 64) {
        fprintf(stderr, "eddy web: --workers needs a number from 0 to 64\n");
        return 2;
      }
      w->workers = (int)n;
      continue;
    }
    if (strcmp(argv[i], "--listing") == 0) {
      w->listing = 1;
      continue;
    }
    if ((rc = app_server_option(&w->srv, argc, argv, &i)) < 0)
      return 2;
    if (rc == 0) {
      char quoted[160];
      fprintf(stderr, "eddy web: unknown option '%s'; see 'eddy web --help'\n",
              app_quote(quoted, sizeof quoted, argv[i]));
      return 2;
    }
  }
  return -1; /* go on */
}

int app_web(int argc, char **argv) {
  web w = {.srv = {.name = "web",
                   .grace_s = 10,
                   .idle_s = APP_IDLE_TIMEOUT,
                   .on_accept = on_accept,
                   .on_stop = on_stop},
           .path = "."};
  eddy_http_static_options so = {0};
  eddy_http_server_options ho = {0};
  char quoted[256];
  int rc, e;
  w.srv.arg = &w;
  if ((rc = parse(&w, argc, argv)) >= 0)
    return rc;
  so.index = w.index;
  so.listing = w.listing;
  if ((e = eddy_http_static_new(w.path, &so, &w.files)) != 0) {
    fprintf(stderr, "eddy web: cannot serve '%s': %s\n",
            app_quote(quoted, sizeof quoted, w.path), eddy_strerror(e));
    return 2;
  }
  if (w.access_path &&
      (e = app_sink_open_path(w.access_path, &w.access)) != 0) {
    fprintf(stderr, "eddy web: cannot open the access log '%s': %s\n",
            app_quote(quoted, sizeof quoted, w.access_path), eddy_strerror(e));
    eddy_http_static_free(w.files);
    return 2;
  }
  if ((rc = app_server_start(&w.srv)) != 0) {
    eddy_http_static_free(w.files);
    return rc;
  }
  ho.access = access_line;
  ho.closed = on_closed;
  ho.arg = &w;
  if (eddy_http_server_new(w.srv.loop, &ho, &w.http) != 0 ||
      eddy_http_static_route(w.http, "/", w.files) != 0) {
    fprintf(stderr, "eddy web: %s\n", eddy_strerror(-ENOMEM));
    eddy_http_server_free(w.http);
    eddy_http_static_free(w.files);
    eddy_loop_free(w.srv.loop);
    return 1;
  }
  app_log(LOG_INFO, "web: serving %s",
          app_quote(quoted, sizeof quoted, w.path));
  rc = app_server_run_workers(&w.srv, w.workers);
  /* The connections went with the loop; what is left is memory. */
  eddy_http_server_free(w.http);
  eddy_http_static_free(w.files);
  return rc;
}
