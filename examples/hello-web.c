/* examples/hello-web.c: a web application on eddy's HTTP server.
 *
 *   hello-web --listen tcp:8080 [--static DIR]
 *   curl http://127.0.0.1:8080/            -> Hello, World!
 *   curl http://127.0.0.1:8080/hello/you   -> Hello, you!
 *   curl http://127.0.0.1:8080/api/time    -> the loop's clock, from an
 *                                             application mounted at /api
 *   curl http://127.0.0.1:8080/static/F    -> the file DIR/F, if --static
 *
 * A listener hands each connection to the server; routes map a method and
 * a path pattern to a handler; a handler answers with eddy_http_respond.
 * SIGINT or SIGTERM drains the server and stops. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <eddy.h>

static void hello(eddy_http_exchange *x, void *arg) {
  (void)arg;
  eddy_http_respond(x, 200, "text/plain", "Hello, World!", 13);
}

static void hello_name(eddy_http_exchange *x, void *arg) {
  const char *name;
  size_t len;
  char body[300];
  int n;
  (void)arg;
  eddy_http_param(x, "name", &name, &len);
  n = snprintf(body, sizeof body, "Hello, %.*s!\n",
               (int)(len > 256 ? 256 : len), name);
  eddy_http_respond(x, 200, "text/plain; charset=utf-8", body, (size_t)n);
}

static void loop_time(eddy_http_exchange *x, void *arg) {
  char body[64];
  int n = snprintf(body, sizeof body, "%.3f\n",
                   eddy_loop_now((eddy_loop *)arg) / 1e9);
  eddy_http_respond(x, 200, "text/plain", body, (size_t)n);
}

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  (void)l;
  eddy_http_server_serve(arg, s);
}

typedef struct app {
  eddy_loop *loop;
  eddy_http_server *srv;
} app;

static void on_stop(eddy_signal *h, int signum, void *arg) {
  app *a = arg;
  (void)h;
  (void)signum;
  eddy_http_server_drain(a->srv);
  eddy_loop_stop(a->loop);
}

int main(int argc, char **argv) {
  const char *listen = NULL, *dir = NULL;
  eddy_http_static *files = NULL;
  eddy_loop *loop;
  eddy_http_server *srv, *api;
  eddy_listener *l;
  eddy_signal *sig;
  app a;
  char err[256];
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--listen") == 0)
      listen = argv[i + 1];
    else if (strcmp(argv[i], "--static") == 0)
      dir = argv[i + 1];
  }
  if (listen == NULL || argc % 2 == 0) {
    fprintf(stderr, "usage: hello-web --listen ENDPOINT [--static DIR]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (eddy_loop_new(NULL, &loop) != 0 ||
      eddy_http_server_new(loop, NULL, &srv) != 0 ||
      eddy_http_server_new(loop, NULL, &api) != 0)
    return 1;
  eddy_http_route(srv, "GET", "/", hello, NULL);
  eddy_http_route(srv, "GET", "/hello/:name", hello_name, NULL);
  eddy_http_route(api, "GET", "/time", loop_time, loop);
  eddy_http_mount(srv, "/api", api);
  if (dir && (eddy_http_static_new(dir, NULL, &files) != 0 ||
              eddy_http_static_route(srv, "/static", files) != 0)) {
    fprintf(stderr, "hello-web: cannot serve %s\n", dir);
    return 1;
  }
  if (eddy_listen(loop, listen, on_accept, srv, &l, err, sizeof err) != 0) {
    fprintf(stderr, "hello-web: %s\n", err);
    return 1;
  }
  a.loop = loop;
  a.srv = srv;
  eddy_signal_start(loop, SIGINT, on_stop, &a, &sig);
  eddy_signal_start(loop, SIGTERM, on_stop, &a, &sig);
  printf("hello-web: listening on %s\n", listen);
  fflush(stdout);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED);
  eddy_http_server_free(srv);
  eddy_http_server_free(api);
  eddy_http_static_free(files);
  eddy_loop_close_all(loop);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(loop);
  return 0;
}
