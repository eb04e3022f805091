/* portforward.c: `eddy portforward --listen ENDPOINT --connect ENDPOINT`.
 *
 * Each accepted connection gets a new outgoing one, and bytes flow both
 * ways. Flow control: when one side's write buffer passes its high
 * watermark, the other side stops being read until it drains, so a fast
 * producer and a slow consumer cannot make the relay's memory grow. A
 * half-close is passed through: EOF from one side becomes a shutdown of
 * the other after its buffer is flushed.
 *
 * Bounds, so that clients cannot pile up descriptors: a relay that moves
 * no byte for the idle timeout (default 300 s) is closed; and once one
 * direction has ended, the other gets the half-close timeout (default
 * 0.5 s, as socat's -t) of silence before the relay is closed, since a
 * target that never answers would otherwise hold both sockets for ever
 * (CLOSE-WAIT towards the client, FIN-WAIT-2 towards the target).
 * Connections are logged at the debug level, and the warnings about
 * failed connections at most ten a second: a flood of connections must
 * not flood the log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"

typedef struct relay relay;

typedef struct side {
  relay *r;
  eddy_stream *s;
  struct side *other;
} side;

struct relay {
  app_server *server;
  side in, out;
  eddy_connect *req;
  int open_sides;
  char peer[64];
};

static void relay_data(eddy_stream *s, const char *data, size_t len,
                       void *arg) {
  side *me = arg;
  (void)s;
  if (eddy_stream_write(me->other->s, data, len) != 0)
    return; /* the other side is closing; its close callback ends us */
  if (eddy_stream_over_high(me->other->s))
    eddy_stream_pause(me->s);
}

static void relay_drain(eddy_stream *s, void *arg) {
  side *me = arg;
  (void)s;
  if (me->other->s)
    eddy_stream_resume(me->other->s);
}

typedef struct pf {
  app_server srv;
  eddy_endpoint target;
  eddy_tls_ctx *tls; /* a tls: target: made once, shared by connections */
  double half_close_s;
} pf;

/* Half-close passed through; from now on, silence ends the relay sooner. */
static void relay_eof(eddy_stream *s, void *arg) {
  side *me = arg;
  pf *p = me->r->server->arg;
  int64_t bound = (int64_t)(p->half_close_s * 1e9);
  if (me->other->s == NULL)
    return;
  (void)eddy_stream_shutdown(me->other->s);
  if (p->half_close_s <= 0 ||
      (p->srv.idle_s > 0 && p->half_close_s >= p->srv.idle_s))
    return;
  if (eddy_stream_set_timeout(s, bound) != 0 ||
      eddy_stream_set_timeout(me->other->s, bound) != 0)
    eddy_stream_abort(s); /* unbounded is worse than ended */
}

/* A relay ends when both streams are closed and no connection attempt is
 * pending. */
static void maybe_free(relay *r) {
  if (r->open_sides > 0 || r->req != NULL)
    return;
  app_log(LOG_DEBUG, "portforward: %s closed", r->peer);
  app_server_closed_one(r->server);
  free(r);
}

static void relay_closed(eddy_stream *s, int status, const char *detail,
                         void *arg) {
  side *me = arg;
  relay *r = me->r;
  (void)s;
  me->s = NULL;
  r->open_sides--;
  /* A target whose certificate does not verify is a configuration problem
   * worth a warning; what a client does wrong, resets and the like are
   * not (app_server_log_close). */
  if (status == EDDY_ETLS && me == &r->out) {
    if (app_log_allow(&r->server->warnings, LOG_WARN, "portforward"))
      app_log(LOG_WARN, "portforward: %s: target side closed: %s", r->peer,
              detail);
  } else if (status != 0) {
    char who[96];
    snprintf(who, sizeof who, "%s: %s side", r->peer,
             me == &r->in ? "client" : "target");
    app_server_log_close(r->server, who, status, detail);
  }
  /* One side gone: the other flushes what it has, then closes (or is
   * reset if this side failed). */
  if (me->other->s) {
    if (status == 0)
      eddy_stream_close(me->other->s);
    else
      eddy_stream_abort(me->other->s);
  }
  if (me == &r->in && r->req)
    eddy_connect_cancel(r->req);
  maybe_free(r);
}

static const eddy_stream_callbacks relay_callbacks = {.data = relay_data,
                                                      .eof = relay_eof,
                                                      .drain = relay_drain,
                                                      .close = relay_closed};

/* While the target is being reached the client is not read (its bytes wait
 * in the kernel), but its end is still noticed. */
static const eddy_stream_callbacks waiting_callbacks = {.close = relay_closed};

static void on_connected(eddy_connect *req, eddy_stream *s, int status,
                         const char *detail, void *arg) {
  relay *r = arg;
  (void)req;
  r->req = NULL;
  if (status != 0 || r->in.s == NULL) {
    pf *p = r->server->arg;
    if (status != 0 && status != -ECANCELED &&
        app_log_allow(&p->srv.warnings, LOG_WARN, "portforward"))
      app_log(LOG_WARN, "portforward: %s: %s", r->peer, detail);
    if (s)
      eddy_stream_abort(s);
    if (r->in.s)
      eddy_stream_close(r->in.s);
    maybe_free(r);
    return;
  }
  if (app_server_set_idle(r->server, s) != 0) {
    eddy_stream_abort(s);
    eddy_stream_abort(r->in.s);
    maybe_free(r);
    return;
  }
  r->out.s = s;
  r->open_sides++;
  eddy_stream_set_callbacks(s, &relay_callbacks, &r->out);
  eddy_stream_set_callbacks(r->in.s, &relay_callbacks, &r->in);
}

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  pf *p = arg;
  relay *r;
  (void)l;
  if (app_server_set_idle(&p->srv, s) != 0 ||
      (r = calloc(1, sizeof *r)) == NULL) {
    eddy_stream_abort(s);
    return;
  }
  r->server = &p->srv;
  r->in = (side){r, s, &r->out};
  r->out = (side){r, NULL, &r->in};
  r->open_sides = 1;
  if (eddy_stream_peer_name(s, r->peer, sizeof r->peer) != 0)
    snprintf(r->peer, sizeof r->peer, "a client");
  p->srv.open++;
  app_log(LOG_DEBUG, "portforward: connection from %s", r->peer);
  eddy_stream_set_callbacks(s, &waiting_callbacks, &r->in);
  int e = p->tls ? eddy_connect_tls(p->srv.loop, &p->target, p->tls,
                                    on_connected, r, &r->req)
                 : eddy_connect_endpoint(p->srv.loop, &p->target, on_connected,
                                         r, &r->req);
  if (e != 0) {
    if (app_log_allow(&p->srv.warnings, LOG_WARN, "portforward"))
      app_log(LOG_WARN, "portforward: %s: cannot connect: %s", r->peer,
              eddy_strerror(e));
    r->req = NULL;
    eddy_stream_abort(s); /* its close callback frees the relay */
  }
}

/* SIGHUP: a tls: target's trust roots read again. New connections use the
 * new context; those in flight keep the one they started with. If the
 * files no longer load, the old context stays. */
static int reload_target(app_server *srv, int signum) {
  pf *p = srv->arg;
  eddy_tls_ctx *ctx;
  char err[600];
  if (!p->target.tls)
    return 0;
  if (eddy_tls_ctx_from_endpoint(&p->target, 0, &ctx, err, sizeof err) != 0) {
    app_log(LOG_WARN,
            "portforward: %s: target: keeping the old trust roots: %s",
            strsignal(signum), err);
    return 1;
  }
  eddy_tls_ctx_free(p->tls);
  p->tls = ctx;
  app_log(LOG_INFO, "portforward: %s: target: reloaded the trust roots",
          strsignal(signum));
  return 1;
}

static void usage(void) {
  printf(
      "Usage: eddy portforward --listen ENDPOINT --connect ENDPOINT [--grace "
      "S]\n"
      "                        [--idle-timeout S] [--half-close-timeout S]\n"
      "\n"
      "Relays each accepted connection to a new connection to the target.\n"
      "\n"
      "  --listen ENDPOINT   where to listen (tcp:PORT, unix:PATH, ...;\n"
      "                      repeatable)\n"
      "  --connect ENDPOINT  the target: tcp:host=H:port=P[:timeout=S],\n"
      "                      tls:host=H:port=P[:trustRoots=PEM][:verify=no]\n"
      "                      or unix:path=P\n"
      "  --grace S           on SIGTERM/SIGINT, let open connections\n"
      "                      finish for S seconds (default 10)\n"
      "  --idle-timeout S    close a relay that moves no byte for S\n"
      "                      seconds (default 300; 0: never)\n"
      "  --half-close-timeout S\n"
      "                      once one direction has ended, close the relay\n"
      "                      after S seconds of silence in the other\n"
      "                      (default 0.5; 0: never)\n");
}

int app_portforward(int argc, char **argv) {
  pf p = {.srv = {.name = "portforward",
                  .grace_s = 10,
                  .idle_s = APP_IDLE_TIMEOUT,
                  .on_accept = on_accept,
                  .reload = reload_target},
          .half_close_s = 0.5};
  const char *target = NULL;
  char err[256], quoted[256], detail[512];
  int rc;
  p.srv.arg = &p;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return 0;
    }
    if (app_option_value(argc, argv, &i, "--connect", &v)) {
      if (v == NULL) {
        fprintf(stderr, "eddy portforward: --connect needs an endpoint\n");
        return 2;
      }
      if (target != NULL) {
        fprintf(stderr,
                "eddy portforward: --connect is given twice; a "
                "relay has one target\n");
        return 2;
      }
      target = v;
      continue;
    }
    if ((rc = app_seconds_option("portforward", argc, argv, &i,
                                 "--half-close-timeout", 0, 86400,
                                 &p.half_close_s)) != 0) {
      if (rc < 0)
        return 2;
      continue;
    }
    rc = app_server_option(&p.srv, argc, argv, &i);
    if (rc < 0)
      return 2;
    if (rc == 0) {
      fprintf(stderr,
              "eddy portforward: unknown option '%s'; see 'eddy portforward "
              "--help'\n",
              app_quote(quoted, sizeof quoted, argv[i]));
      return 2;
    }
  }
  if (target == NULL) {
    fprintf(stderr, "eddy portforward: --connect ENDPOINT is needed\n");
    return 2;
  }
  if (eddy_endpoint_parse_client(target, &p.target, err, sizeof err) != 0) {
    fprintf(stderr, "eddy portforward: bad --connect '%s': %s\n",
            app_quote(quoted, sizeof quoted, target),
            app_quote(detail, sizeof detail, err));
    return 2;
  }
  /* Certificate files are read now, so a bad path stops the program at
   * once instead of failing every connection. */
  if (p.target.tls &&
      eddy_tls_ctx_from_endpoint(&p.target, 0, &p.tls, err, sizeof err) != 0) {
    fprintf(stderr, "eddy portforward: bad --connect '%s': %s\n",
            app_quote(quoted, sizeof quoted, target),
            app_quote(detail, sizeof detail, err));
    return 2;
  }
  if ((rc = app_server_start(&p.srv)) == 0)
    rc = app_server_run(&p.srv);
  eddy_tls_ctx_free(p.tls);
  return rc;
}
