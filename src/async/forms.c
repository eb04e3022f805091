/* forms.c: Deferred forms of eddy's operations: connect (TLS included),
 * resolve, run a process to completion, wait for a child's exit, sleep,
 * thread-pool work, and "the stream has drained".
 *
 * Each form is a small producer: a struct holding the Deferred and what
 * the operation needs, freed when the operation reports back. The
 * canceller is the one place a producer learns that the consumer has gone
 * (async.h's contract): it sets d to NULL, stops what can be stopped, and
 * fails the Deferred with the operation's own words; an operation that
 * cannot be stopped at once (a connect's callback still to come, work
 * already running on a pool thread) finds d NULL when it reports, and
 * releases its result and the struct.
 *
 * Failures that the operation finds before it starts (a malformed
 * endpoint, a program that cannot be run) fail the Deferred instead of
 * being returned, so that a caller (a coroutine awaiting it) handles every
 * failure in one place.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "async/async.h"
#include "eddy/tls.h"
#include "net/net.h"
#include "sys/alloc.h"

static void close_stream(void *s) {
  eddy_stream_close(s);
}

/* ---- Connect ------------------------------------------------------------- */

typedef struct conn {
  eddy_deferred *d;  /* NULL once cancelled */
  eddy_connect *req; /* while connecting */
  eddy_stream *s;    /* during a TLS handshake */
  char name[EDDY_ENDPOINT_HOST_MAX + 16];
} conn;

static void conn_fail(conn *c, int code, const char *detail) {
  eddy_deferred *d = c->d;
  c->d = NULL;
  if (d)
    eddy_deferred_errback(d, code, "connect to %s: %s", c->name,
                          detail ? detail : eddy_strerror(code));
}

static void handshake_done(eddy_stream *s, void *arg) {
  conn *c = arg;
  eddy_deferred *d = c->d;
  eddy_tls_on_handshake(s, NULL);
  eddy_stream_set_callbacks(s, NULL, NULL);
  eddy__free(c);
  if (d == NULL) /* cancelled as the handshake completed */
    eddy_stream_abort(s);
  else
    eddy_deferred_callback(d, s, close_stream);
}

static void handshake_close(eddy_stream *s, int status, const char *detail,
                            void *arg) {
  conn *c = arg;
  (void)s;
  conn_fail(c, status ? status : EDDY_ETLS,
            detail ? detail : "closed during the TLS handshake");
  eddy__free(c);
}

static void on_connect(eddy_connect *req, eddy_stream *s, int status,
                       const char *detail, void *arg) {
  static const eddy_stream_callbacks handshaking = {NULL, NULL, NULL,
                                                    handshake_close};
  conn *c = arg;
  (void)req;
  c->req = NULL;
  if (c->d == NULL || status != 0 || s == NULL) {
    if (s)
      eddy_stream_abort(s);
    conn_fail(c, status ? status : -ECANCELED, detail);
    eddy__free(c);
    return;
  }
  if (eddy_stream_is_tls(s) && !eddy_tls_handshake_done(s)) {
    c->s = s;
    eddy_stream_set_callbacks(s, &handshaking, c);
    eddy_tls_on_handshake(s, handshake_done);
    return;
  }
  handshake_done(s, c);
}

static void conn_cancel(eddy_deferred *d, void *arg) {
  conn *c = arg;
  char reason[64];
  conn_fail(c, -ECANCELED,
            eddy__deferred_cancel_reason(d, reason, sizeof reason));
  if (c->req)
    eddy_connect_cancel(c->req); /* on_connect frees c */
  else if (c->s)
    eddy_stream_abort(c->s); /* handshake_close frees c */
}

static int connect_start(eddy_loop *loop, const eddy_endpoint *ep,
                         const char *text, const char *parse_err,
                         eddy_deferred **out) {
  conn *c = eddy__calloc(1, sizeof *c);
  int err;
  if (c == NULL)
    return -ENOMEM;
  err = eddy_deferred_new(loop, conn_cancel, c, &c->d);
  if (err) {
    eddy__free(c);
    return err;
  }
  *out = c->d;
  if (text)
    snprintf(c->name, sizeof c->name, "%s", text);
  else if (ep->kind == EDDY_ENDPOINT_UNIX)
    snprintf(c->name, sizeof c->name, "unix:%s", ep->path);
  else
    snprintf(c->name, sizeof c->name, "%s:%u", ep->host, ep->port);
  if (parse_err) {
    conn_fail(c, EDDY_EPARSE, parse_err);
    eddy__free(c);
    return 0;
  }
  err = eddy_connect_endpoint(loop, ep, on_connect, c, &c->req);
  if (err) {
    conn_fail(c, err, NULL);
    eddy__free(c);
  }
  return 0;
}

int eddy_deferred_connect(eddy_loop *loop, const char *endpoint,
                          eddy_deferred **out) {
  eddy_endpoint ep;
  char err[200];
  int r = eddy_endpoint_parse_client(endpoint, &ep, err, sizeof err);
  return connect_start(loop, &ep, endpoint, r ? err : NULL, out);
}

int eddy_deferred_connect_endpoint(eddy_loop *loop, const eddy_endpoint *ep,
                                   eddy_deferred **out) {
  return connect_start(loop, ep, NULL, NULL, out);
}

/* ---- Resolve ---------------------------------------------------------------- */

typedef struct lookup {
  eddy_deferred *d;
  eddy_work *req;
  eddy_resolved *res;
  int err;
  unsigned port;
  char host[EDDY_ENDPOINT_HOST_MAX];
} lookup;

void eddy_resolved_free(void *resolved) {
  eddy__free(resolved);
}

static int getaddrinfo_all(const char *host, unsigned port,
                           struct sockaddr_storage *out, socklen_t *lens,
                           int max) {
  struct addrinfo hints, *res, *ai;
  char service[8];
  int n = 0, err;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(service, sizeof service, "%u", port);
  err = getaddrinfo(host, service, &hints, &res);
  if (err)
    return err == EAI_MEMORY ? -ENOMEM : EDDY_ERESOLVE;
  for (ai = res; ai && n < max; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof *out)
      continue;
    memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
    lens[n++] = ai->ai_addrlen;
  }
  freeaddrinfo(res);
  return n > 0 ? n : EDDY_ERESOLVE;
}

/* On a pool thread: touches only the lookup's own fields. */
static void lookup_work(void *arg) {
  lookup *l = arg;
  eddy__resolve_fn fn = eddy__resolve_hook ? eddy__resolve_hook
                                           : getaddrinfo_all;
  int n = fn(l->host, l->port, l->res->addrs, l->res->lens, EDDY_RESOLVED_MAX);
  l->err = n < 0 ? n : 0;
  l->res->count = n < 0 ? 0 : n;
}

static void lookup_done(eddy_loop *loop, int status, void *arg) {
  lookup *l = arg;
  eddy_deferred *d = l->d;
  int err = status ? status : l->err;
  (void)loop;
  if (d == NULL)
    err = -ECANCELED;
  if (err == 0) {
    eddy_deferred_callback(d, l->res, eddy_resolved_free);
  } else {
    eddy__free(l->res);
    if (d)
      eddy_deferred_errback(d, err, "resolve %s: %s", l->host,
                            err == EDDY_ERESOLVE ? "cannot resolve host name"
                                                 : eddy_strerror(err));
  }
  eddy__free(l);
}

static void lookup_cancel(eddy_deferred *d, void *arg) {
  lookup *l = arg;
  char reason[64];
  l->d = NULL;
  eddy_deferred_errback(d, -ECANCELED, "resolve %s: %s", l->host,
                        eddy__deferred_cancel_reason(d, reason, sizeof reason));
  (void)eddy_work_cancel(l->req); /* -EBUSY: it ends on its thread */
}

int eddy_deferred_resolve(eddy_loop *loop, const char *host, unsigned port,
                          eddy_deferred **out) {
  lookup *l = eddy__calloc(1, sizeof *l);
  int err = -ENOMEM;
  if (l == NULL)
    return -ENOMEM;
  l->res = eddy__calloc(1, sizeof *l->res);
  if (l->res == NULL ||
      (err = eddy_deferred_new(loop, lookup_cancel, l, &l->d)) != 0) {
    eddy__free(l->res);
    eddy__free(l);
    return err;
  }
  *out = l->d;
  snprintf(l->host, sizeof l->host, "%s", host ? host : "");
  l->port = port;
  if (strlen(host ? host : "") >= sizeof l->host)
    err = -ENAMETOOLONG;
  else
    err = eddy_work_submit(loop, lookup_work, lookup_done, l, &l->req);
  if (err) {
    eddy_deferred_errback(l->d, err, "resolve %s: %s", l->host,
                          eddy_strerror(err));
    eddy__free(l->res);
    eddy__free(l);
  }
  return 0;
}

/* ---- Processes ------------------------------------------------------------------ */

typedef struct run {
  eddy_deferred *d;
  eddy_process *p; /* eddy_deferred_spawn */
  char file[256];
} run;

void eddy_process_result_free(void *result) {
  eddy_process_result *r = result;
  if (r == NULL)
    return;
  eddy__free(r->out);
  eddy__free(r->err);
  eddy__free(r);
}

static char *copy_bytes(const char *data, size_t len) {
  char *s = eddy__malloc(len + 1);
  if (s != NULL) {
    memcpy(s, data, len);
    s[len] = '\0';
  }
  return s;
}

static void output_done(const char *out, size_t out_len, const char *err,
                        size_t err_len, int status, int exit_status,
                        int term_signal, void *arg) {
  run *r = arg;
  eddy_deferred *d = r->d;
  eddy_process_result *res = NULL;
  if (d != NULL && status == 0) {
    res = eddy__calloc(1, sizeof *res);
    if (res) {
      res->out = copy_bytes(out, out_len);
      res->err = copy_bytes(err, err_len);
      res->out_len = out_len;
      res->err_len = err_len;
      res->exit_status = exit_status;
      res->term_signal = term_signal;
    }
    if (res == NULL || res->out == NULL || res->err == NULL) {
      eddy_process_result_free(res);
      res = NULL;
      status = -ENOMEM;
    }
  }
  if (d != NULL && res != NULL)
    eddy_deferred_callback(d, res, eddy_process_result_free);
  else if (d != NULL)
    eddy_deferred_errback(d, status, "run %s: collecting the output: %s",
                          r->file, eddy_strerror(status));
  eddy__free(r);
}

static void output_cancel(eddy_deferred *d, void *arg) {
  run *r = arg;
  char reason[64];
  r->d = NULL; /* output_done frees r when the child is done */
  eddy_deferred_errback(d, -ECANCELED, "run %s: %s", r->file,
                        eddy__deferred_cancel_reason(d, reason, sizeof reason));
}

static run *run_new(eddy_loop *loop, const eddy_process_options *o,
                    eddy_deferred_canceller canceller, eddy_deferred **out) {
  run *r = eddy__calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  if (eddy_deferred_new(loop, canceller, r, &r->d) != 0) {
    eddy__free(r);
    return NULL;
  }
  snprintf(r->file, sizeof r->file, "%s", o && o->file ? o->file : "(none)");
  *out = r->d;
  return r;
}

int eddy_deferred_process_output(eddy_loop *loop, const eddy_process_options *o,
                                 eddy_deferred **out) {
  run *r = run_new(loop, o, output_cancel, out);
  int err;
  if (r == NULL)
    return -ENOMEM;
  err = o ? eddy_process_output(loop, o, output_done, r) : -EINVAL;
  if (err) {
    eddy_deferred_errback(r->d, err, "run %s: %s", r->file, eddy_strerror(err));
    eddy__free(r);
  }
  return 0;
}

static void spawn_exit(eddy_process *p, int exit_status, int term_signal,
                       void *arg) {
  run *r = arg;
  eddy_deferred *d = r->d;
  eddy_process_result *res = eddy__calloc(1, sizeof *res);
  eddy__free(r);
  if (res == NULL) {
    eddy_deferred_errback(d, -ENOMEM, "wait for the exit of pid %d: %s",
                          (int)eddy_process_pid(p), eddy_strerror(-ENOMEM));
  } else {
    res->exit_status = exit_status;
    res->term_signal = term_signal;
    eddy_deferred_callback(d, res, eddy_process_result_free);
  }
  eddy_process_close(p); /* after the chain: it may still use p */
}

static void spawn_cancel(eddy_deferred *d, void *arg) {
  run *r = arg;
  char reason[64];
  eddy_deferred_errback(d, -ECANCELED, "wait for %s: %s", r->file,
                        eddy__deferred_cancel_reason(d, reason, sizeof reason));
  eddy_process_close(r->p); /* the exit callback is no longer called */
  eddy__free(r);
}

int eddy_deferred_spawn(eddy_loop *loop, const eddy_process_options *o,
                        eddy_process **p, eddy_deferred **out) {
  run *r = run_new(loop, o, spawn_cancel, out);
  eddy_process_options opts;
  int err = -EINVAL;
  *p = NULL;
  if (r == NULL)
    return -ENOMEM;
  if (o) {
    opts = *o;
    opts.exit_cb = spawn_exit;
    opts.arg = r;
    err = eddy_process_spawn(loop, &opts, &r->p);
  }
  if (err) {
    eddy_deferred_errback(r->d, err, "spawn %s: %s", r->file,
                          eddy_strerror(err));
    eddy__free(r);
    return 0;
  }
  *p = r->p;
  return 0;
}

/* ---- Sleep ------------------------------------------------------------------------ */

typedef struct nap {
  eddy_deferred *d;
  eddy__timer timer;
} nap;

static void nap_over(eddy__timer *t, void *arg) {
  nap *n = arg;
  eddy_deferred *d = n->d;
  (void)t;
  eddy__free(n);
  eddy_deferred_callback(d, NULL, NULL);
}

static void nap_cancel(eddy_deferred *d, void *arg) {
  nap *n = arg;
  (void)d;
  eddy__timer_stop(&n->timer);
  eddy__free(n);
}

int eddy_deferred_sleep(eddy_loop *loop, int64_t delay_ns,
                        eddy_deferred **out) {
  nap *n = eddy__calloc(1, sizeof *n);
  int err;
  if (n == NULL)
    return -ENOMEM;
  err = eddy_deferred_new(loop, nap_cancel, n, &n->d);
  if (err) {
    eddy__free(n);
    return err;
  }
  *out = n->d;
  eddy__timer_init(loop, &n->timer, nap_over, n);
  err = eddy__timer_start(&n->timer, delay_ns);
  if (err) {
    eddy_deferred_errback(n->d, err, "sleep: %s", eddy_strerror(err));
    eddy__free(n);
  }
  return 0;
}

/* ---- Thread-pool work -------------------------------------------------------------- */

typedef struct job {
  eddy_deferred *d;
  eddy_work *req;
  eddy_deferred_work_fn fn;
  void *arg;
  void (*arg_free)(void *);
  void (*value_free)(void *);
  void *value; /* set on the pool thread */
  int rc;
} job;

static void job_work(void *arg) {
  job *j = arg;
  j->rc = j->fn(j->arg, &j->value);
}

static void job_done(eddy_loop *loop, int status, void *arg) {
  job *j = arg;
  eddy_deferred *d = j->d;
  int err = status ? status : j->rc;
  (void)loop;
  if (j->arg_free)
    j->arg_free(j->arg);
  if (err == 0 && d != NULL) {
    eddy_deferred_callback(d, j->value, j->value_free);
  } else {
    if (status == 0 && j->rc == 0 && j->value && j->value_free)
      j->value_free(j->value);
    if (d != NULL)
      eddy_deferred_errback(d, err < 0 ? err : -EINVAL, "work: %s",
                            eddy_strerror(err < 0 ? err : -EINVAL));
  }
  eddy__free(j);
}

static void job_cancel(eddy_deferred *d, void *arg) {
  job *j = arg;
  char reason[64];
  j->d = NULL;
  eddy_deferred_errback(d, -ECANCELED, "work: %s",
                        eddy__deferred_cancel_reason(d, reason, sizeof reason));
  (void)eddy_work_cancel(j->req); /* -EBUSY: job_done drops the value */
}

int eddy_deferred_work(eddy_loop *loop, eddy_deferred_work_fn fn, void *arg,
                       void (*arg_free)(void *), void (*value_free)(void *),
                       eddy_deferred **out) {
  job *j = eddy__calloc(1, sizeof *j);
  int err;
  if (j == NULL)
    return -ENOMEM;
  err = eddy_deferred_new(loop, job_cancel, j, &j->d);
  if (err) {
    eddy__free(j);
    return err;
  }
  *out = j->d;
  j->fn = fn;
  j->arg = arg;
  j->arg_free = arg_free;
  j->value_free = value_free;
  err = fn ? eddy_work_submit(loop, job_work, job_done, j, &j->req) : -EINVAL;
  if (err) {
    if (arg_free)
      arg_free(arg);
    eddy_deferred_errback(j->d, err, "work: %s", eddy_strerror(err));
    eddy__free(j);
  }
  return 0;
}

/* ---- Drained ------------------------------------------------------------------------ */

typedef struct drain_wait {
  eddy__stream_watcher w; /* first: the watch is the struct */
  eddy_deferred *d;
  eddy_stream *s;
} drain_wait;

static void drain_seen(eddy__stream_watcher *w, int ended, int status,
                       const char *detail) {
  drain_wait *dw = (drain_wait *)w;
  eddy_deferred *d = dw->d;
  eddy__free(dw);
  if (!ended)
    eddy_deferred_callback(d, NULL, NULL);
  else
    eddy_deferred_errback(d, status ? status : EDDY_ECLOSED, "%s",
                          detail ? detail : "stream closed");
}

static void drain_cancel(eddy_deferred *d, void *arg) {
  drain_wait *dw = arg;
  (void)d;
  eddy__stream_unwatch(dw->s, &dw->w);
  eddy__free(dw);
}

int eddy_deferred_drained(eddy_stream *s, eddy_deferred **out) {
  drain_wait *dw = eddy__calloc(1, sizeof *dw);
  int err;
  if (dw == NULL)
    return -ENOMEM;
  err = eddy_deferred_new(eddy_stream_loop(s), drain_cancel, dw, &dw->d);
  if (err) {
    eddy__free(dw);
    return err;
  }
  *out = dw->d;
  if (eddy__stream_closing(s)) {
    eddy__free(dw);
    eddy_deferred_errback(*out, EDDY_ECLOSED, "stream closed");
  } else if (!eddy_stream_over_high(s)) {
    eddy__free(dw);
    eddy_deferred_callback(*out, NULL, NULL);
  } else {
    dw->s = s;
    dw->w.fn = drain_seen;
    eddy__stream_watch(s, &dw->w);
  }
  return 0;
}
