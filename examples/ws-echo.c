/* examples/ws-echo.c: a WebSocket echo server on eddy's HTTP server.
 *
 *   ws-echo --listen tcp:8080 [--max-message N] [--ping-interval MS]
 *   curl http://127.0.0.1:8080/          -> a short text
 *   a WebSocket client at ws://127.0.0.1:8080/ws gets each message back
 *   as it sent it (text as text, binary as binary), with permessage-
 *   deflate if it offers it.
 *
 * A text message "close CODE [REASON]" makes the server start the close
 * handshake with that code, so that a test can see each code arrive. The
 * subprotocols "echo" and "chat" are chosen if offered. An Origin of
 * "http://evil.example" is refused (403), to show the hook. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy.h>

static eddy_ws_options wsopt;

static void on_message(eddy_ws *ws, int opcode, const char *data, size_t len,
                       void *arg) {
  (void)arg;
  if (opcode == EDDY_WS_TEXT && len >= 6 && memcmp(data, "close ", 6) == 0) {
    char *end;
    long code = strtol(data + 6, &end, 10);
    eddy_ws_close(ws, (int)code, *end == ' ' ? end + 1 : NULL);
    return;
  }
  eddy_ws_send(ws, opcode, data, len);
}

static int check_origin(const char *origin, size_t len, void *arg) {
  (void)arg;
  return !(origin && len == 19 &&
           memcmp(origin, "http://evil.example", 19) == 0);
}

static void ws_route(eddy_http_exchange *x, void *arg) {
  static const eddy_ws_callbacks cb = {.message = on_message};
  eddy_ws *ws;
  (void)arg;
  eddy_ws_accept(x, &wsopt, &cb, NULL, &ws);
}

static void index_page(eddy_http_exchange *x, void *arg) {
  static const char body[] = "WebSocket echo at /ws\n";
  (void)arg;
  eddy_http_respond(x, 200, "text/plain", body, sizeof body - 1);
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
  static const char *const protocols[] = {"echo", "chat"};
  const char *listen = NULL;
  eddy_loop *loop;
  eddy_http_server *srv;
  eddy_listener *l;
  eddy_signal *sig;
  app a;
  char err[256];
  wsopt.deflate = 1;
  wsopt.subprotocols = protocols;
  wsopt.nsubprotocols = 2;
  wsopt.check_origin = check_origin;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--listen") == 0)
      listen = argv[i + 1];
    else if (strcmp(argv[i], "--max-message") == 0)
      wsopt.max_message = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--ping-interval") == 0)
      wsopt.ping_interval_ns = strtoll(argv[i + 1], NULL, 10) * 1000000;
  }
  if (listen == NULL || argc % 2 == 0) {
    fprintf(stderr,
            "usage: ws-echo --listen ENDPOINT [--max-message N] "
            "[--ping-interval MS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (eddy_loop_new(NULL, &loop) != 0 ||
      eddy_http_server_new(loop, NULL, &srv) != 0)
    return 1;
  eddy_http_route(srv, "GET", "/", index_page, NULL);
  eddy_http_route(srv, "GET", "/ws", ws_route, NULL);
  if (eddy_listen(loop, listen, on_accept, srv, &l, err, sizeof err) != 0) {
    fprintf(stderr, "ws-echo: %s\n", err);
    return 1;
  }
  a.loop = loop;
  a.srv = srv;
  eddy_signal_start(loop, SIGINT, on_stop, &a, &sig);
  eddy_signal_start(loop, SIGTERM, on_stop, &a, &sig);
  printf("ws-echo: listening on %s\n", listen);
  fflush(stdout);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED);
  eddy_http_server_free(srv);
  eddy_loop_close_all(loop);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(loop);
  return 0;
}
