/* connect.c: outgoing connections that never block.
 *
 * States: RESOLVING (getaddrinfo on the pool; skipped for a numeric
 * address or a Unix path), TRYING (attempts in flight, Happy Eyeballs),
 * DONE (the callback has run or is about to). Every outcome reaches the
 * program through finish(), which calls the callback once, from the loop:
 * outcomes found inside eddy_connect_* itself are reported by a call-soon
 * (the report) so that the callback never runs inside the caller's own
 * call. The timers and the report live inside the request: a connection
 * allocates nothing for them.
 *
 * The layers the endpoint asks for (wrap.c) have their state made when
 * the connect starts, so a bad certificate path fails the call itself,
 * and are put on the winning stream before the callback gets it.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "core/loop.h"
#include "eddy/net.h"
#include "net/net.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define MAX_ADDRS 16
#define STAGGER_NS (250 * EDDY_NSEC_PER_MSEC)

enum { RESOLVING, TRYING, DONE };

typedef struct attempt {
  eddy__io io;
  int fd;
  struct eddy_connect *owner;
} attempt;

struct eddy_connect {
  eddy__handle h;
  eddy_connect_cb cb;
  void *arg;
  int state;
  int cancelled; /* the report will say -ECANCELED */
  eddy_endpoint ep;
  struct sockaddr_storage addrs[MAX_ADDRS];
  socklen_t lens[MAX_ADDRS];
  int naddrs, next;
  attempt att[MAX_ADDRS];
  int live; /* attempts in flight */
  eddy__timer deadline, stagger;
  eddy__soon report;
  eddy_work *work;
  int gai_err;       /* from the pool thread */
  eddy__wraps wraps; /* layers put on the connected stream */
  int status;
  char detail[160];
};

eddy__resolve_fn eddy__resolve_hook;

static void start_next(eddy_connect *c);
static void fail_with(eddy_connect *c, int err);

/* ---- Ending ---------------------------------------------------------------------- */

static void close_attempt(eddy_connect *c, attempt *a) {
  if (a->fd < 0)
    return;
  assert(c->live > 0); /* each open attempt is counted once */
  eddy__io_remove(c->h.loop, &a->io);
  eddy__sys_close(a->fd);
  a->fd = -1;
  c->live--;
}

static void release(eddy_connect *c) {
  eddy__timer_stop(&c->deadline);
  eddy__timer_stop(&c->stagger);
  eddy__soon_cancel(&c->report);
  for (int i = 0; i < MAX_ADDRS; i++)
    close_attempt(c, &c->att[i]);
  eddy__wraps_clear(&c->wraps);
  eddy__handle_close(&c->h);
}

/* Calls the callback now (we are in a loop callback) and releases c, unless
 * the pool still holds it: then the done callback releases it. */
static void finish(eddy_connect *c, eddy_stream *s, int status,
                   const char *detail) {
  if (c->state == DONE)
    return;
  c->state = DONE;
  if (detail == NULL)
    detail = status ? eddy_strerror(status) : "connected";
  snprintf(c->detail, sizeof c->detail, "%s", detail);
  c->cb(c, s, status, c->detail, c->arg);
  if (c->work == NULL)
    release(c);
}

static void report_now(eddy__soon *call, void *arg) {
  eddy_connect *c = arg;
  (void)call;
  if (c->cancelled)
    finish(c, NULL, -ECANCELED, "connection attempt cancelled");
  else
    fail_with(c, c->status);
}

/* An outcome found outside a loop callback: reported from the loop, on its
 * next call-soon step. Scheduling allocates nothing, so this cannot fail. */
static void defer(eddy_connect *c, int status) {
  c->status = status;
  eddy__soon_schedule(c->h.loop, &c->report);
}

static void fail_with(eddy_connect *c, int err) {
  char text[160];
  if (c->ep.kind == EDDY_ENDPOINT_UNIX)
    snprintf(text, sizeof text, "connect to %s: %s", c->ep.path,
             eddy_strerror(err));
  else
    snprintf(text, sizeof text, "connect to %.120s port %u: %s", c->ep.host,
             c->ep.port, eddy_strerror(err));
  finish(c, NULL, err, text);
}

/* ---- Attempts -------------------------------------------------------------------- */

static void won(eddy_connect *c, attempt *a) {
  eddy_stream *s;
  int fd = a->fd, err;
  assert(c->state == TRYING && c->live > 0);
  eddy__io_remove(c->h.loop, &a->io);
  a->fd = -1;
  c->live--;
  err = eddy__stream_adopt(c->h.loop, fd, c->ep.kind != EDDY_ENDPOINT_UNIX, &s);
  /* A layer's own start-up (a TLS handshake) runs on the stream: its
   * failures (a certificate that does not verify) reach the stream's close
   * callback with the reason. */
  if (err == 0 && (err = eddy__wraps_apply(&c->wraps, s, c->ep.host)) != 0)
    eddy_stream_abort(s);
  if (err)
    fail_with(c, err);
  else
    finish(c, s, 0, NULL);
}

static void attempt_failed(eddy_connect *c, attempt *a, int err) {
  close_attempt(c, a);
  c->status = err;
  if (c->next < c->naddrs)
    start_next(c);
  else if (c->live == 0)
    fail_with(c, err);
}

static void on_writable(eddy_loop *loop, eddy__io *io, unsigned events) {
  attempt *a = io->data;
  eddy_connect *c = a->owner;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  int err = eddy__sys_getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  (void)loop;
  (void)events;
  if (err == 0)
    err = -soerr;
  if (err == 0)
    won(c, a);
  else
    attempt_failed(c, a, err);
}

static int bind_local(eddy_connect *c, int fd, int family) {
  struct sockaddr_storage ss;
  int len;
  if (c->ep.bind_address[0] == '\0')
    return 0;
  len = eddy__sockaddr_ip(family, c->ep.bind_address, 0, &ss);
  if (len < 0)
    return -EAFNOSUPPORT; /* the local address is of the other family */
  return eddy__sys_bind(fd, (struct sockaddr *)&ss, (socklen_t)len);
}

/* Starts one attempt. Returns 0 (in flight or won) or the error. */
static int try_addr(eddy_connect *c, int i) {
  attempt *a = &c->att[i];
  int family = c->addrs[i].ss_family;
  int fd = eddy__sys_socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            0);
  int err;
  if (fd < 0)
    return fd;
  err = bind_local(c, fd, family);
  if (err == 0)
    err = eddy__sys_connect(fd, (struct sockaddr *)&c->addrs[i], c->lens[i]);
  if (err == -EAGAIN && family == AF_UNIX)
    err = -EAGAIN; /* a Unix listener's backlog is full: a real failure */
  else if (err == 0 || err == -EINPROGRESS)
    err = 0;
  if (err) {
    eddy__sys_close(fd);
    return err;
  }
  a->fd = fd;
  a->owner = c;
  c->live++;
  eddy__io_init(&a->io, fd, on_writable, a);
  err = eddy__io_start(c->h.loop, &a->io, EDDY__IO_WRITE);
  if (err) {
    close_attempt(c, a);
    return err;
  }
  return 0;
}

static void stagger_expired(eddy__timer *t, void *arg) {
  (void)t;
  start_next(arg);
}

/* Starts attempts until one is in flight (or none is left), then arms the
 * stagger timer for the next one. */
static void start_next(eddy_connect *c) {
  while (c->next < c->naddrs && c->state != DONE) {
    int err = try_addr(c, c->next++);
    if (err == 0) {
      if (c->next < c->naddrs)
        (void)eddy__timer_start(&c->stagger, STAGGER_NS);
      return;
    }
    c->status = err;
  }
  if (c->live == 0 && c->state != DONE)
    fail_with(c, c->status ? c->status : -EHOSTUNREACH);
}

static void deadline_passed(eddy__timer *t, void *arg) {
  eddy_connect *c = arg;
  (void)t;
  if (c->work)
    (void)eddy_work_cancel(c->work);
  fail_with(c, -ETIMEDOUT);
}

/* ---- Addresses ----------------------------------------------------------------------- */

/* RFC 8305 section 4: alternate the families, starting with the first
 * one getaddrinfo gave. */
static void interleave(eddy_connect *c) {
  struct sockaddr_storage a[MAX_ADDRS];
  socklen_t l[MAX_ADDRS];
  int used[MAX_ADDRS] = {0}, n = 0, want;
  if (c->naddrs == 0)
    return;
  want = c->addrs[0].ss_family;
  while (n < c->naddrs) {
    int pick = -1;
    for (int i = 0; i < c->naddrs && pick < 0; i++)
      if (!used[i] && c->addrs[i].ss_family == want)
        pick = i;
    for (int i = 0; i < c->naddrs && pick < 0; i++)
      if (!used[i])
        pick = i;
    assert(pick >= 0); /* fewer than naddrs are used */
    used[pick] = 1;
    a[n] = c->addrs[pick];
    l[n++] = c->lens[pick];
    want = want == AF_INET6 ? AF_INET : AF_INET6;
  }
  memcpy(c->addrs, a, sizeof a);
  memcpy(c->lens, l, sizeof l);
}

static int numeric(eddy_connect *c) {
  int len = eddy__sockaddr_ip(AF_INET, c->ep.host, c->ep.port, &c->addrs[0]);
  if (len < 0 || c->ep.host[0] == '\0')
    len = eddy__sockaddr_ip(AF_INET6, c->ep.host, c->ep.port, &c->addrs[0]);
  if (len < 0 || c->ep.host[0] == '\0')
    return 0;
  c->lens[0] = (socklen_t)len;
  c->naddrs = 1;
  return 1;
}

int eddy__resolve_all(const char *host, unsigned port,
                      struct sockaddr_storage *out, socklen_t *lens, int max) {
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

static void resolve_work(void *arg) {
  eddy_connect *c = arg;
  eddy__resolve_fn fn = eddy__resolve_hook ? eddy__resolve_hook
                                           : eddy__resolve_all;
  int n = fn(c->ep.host, c->ep.port, c->addrs, c->lens, MAX_ADDRS);
  c->gai_err = n < 0 ? n : 0;
  c->naddrs = n < 0 ? 0 : n;
}

static void resolve_done(eddy_loop *loop, int status, void *arg) {
  eddy_connect *c = arg;
  (void)loop;
  c->work = NULL;
  if (c->state == DONE) { /* timed out, or cancelled and reported */
    release(c);
    return;
  }
  if (c->cancelled) /* the report, already scheduled, ends it */
    return;
  if (status == 0 && c->gai_err == 0) {
    c->state = TRYING;
    interleave(c);
    start_next(c);
    return;
  }
  if (status == 0 && c->gai_err == EDDY_ERESOLVE) {
    char text[160];
    snprintf(text, sizeof text, "cannot resolve host name '%.120s'",
             c->ep.host);
    finish(c, NULL, EDDY_ERESOLVE, text);
    return;
  }
  fail_with(c, status ? status : c->gai_err);
}

/* ---- Starting ------------------------------------------------------------------------ */

static void connect_close_handle(eddy__handle *h) {
  eddy_connect_cancel((eddy_connect *)h);
}

static int unix_addr(eddy_connect *c) {
  struct sockaddr_un *un = (struct sockaddr_un *)&c->addrs[0];
  memset(un, 0, sizeof *un);
  un->sun_family = AF_UNIX;
  snprintf(un->sun_path, sizeof un->sun_path, "%s", c->ep.path);
  c->lens[0] = sizeof *un;
  c->naddrs = 1;
  return 0;
}

/* Arms the deadline. Fails only if the timer heap cannot grow. */
static int make_timers(eddy_connect *c) {
  eddy_loop *loop = c->h.loop;
  eddy__timer_init(loop, &c->deadline, deadline_passed, c);
  eddy__timer_init(loop, &c->stagger, stagger_expired, c);
  eddy__soon_init(&c->report, report_now, c);
  return eddy__timer_start(&c->deadline, c->ep.timeout_ns);
}

int eddy__connect_with(eddy_loop *loop, const eddy_endpoint *ep,
                       const eddy__wrap_ops *const *table,
                       const eddy__wrap_ops *ops, void *state,
                       eddy_connect_cb cb, void *arg, eddy_connect **req,
                       char *errbuf, size_t errlen) {
  eddy_connect *c;
  int err;
  if (ep == NULL || cb == NULL ||
      (ep->kind != EDDY_ENDPOINT_TCP && ep->kind != EDDY_ENDPOINT_UNIX))
    return -EINVAL;
  if ((c = eddy__calloc(1, sizeof *c)) == NULL)
    return -ENOMEM;
  eddy__handle_init(loop, &c->h, connect_close_handle);
  c->cb = cb;
  c->arg = arg;
  c->ep = *ep;
  for (int i = 0; i < MAX_ADDRS; i++)
    c->att[i].fd = -1;
  err = make_timers(c);
  if (err == 0 && ops)
    err = eddy__wraps_set(&c->wraps, ops, state);
  else if (err == 0)
    err = eddy__wraps_from_endpoint(&c->wraps, table, ep, 0, errbuf, errlen);
  if (err == 0 && ep->kind == EDDY_ENDPOINT_TCP && !numeric(c))
    err = eddy_work_submit(loop, resolve_work, resolve_done, c, &c->work);
  else if (err == 0 && ep->kind == EDDY_ENDPOINT_UNIX)
    unix_addr(c);
  if (err) {
    c->state = DONE;
    release(c);
    return err;
  }
  if (req)
    *req = c;
  if (c->work == NULL) {
    c->state = TRYING;
    /* Attempts start now; a failure found at once is reported next turn. */
    while (c->next < c->naddrs && c->live == 0) {
      int e = try_addr(c, c->next++);
      if (e)
        c->status = e;
    }
    if (c->live == 0)
      defer(c, c->status);
  }
  return 0;
}

int eddy_connect_to(eddy_loop *loop, const char *text, eddy_connect_cb cb,
                    void *arg, eddy_connect **req, char *err, size_t errlen) {
  eddy_endpoint ep;
  int e = eddy_endpoint_parse_client(text, &ep, err, errlen);
  return e ? e
           : eddy__connect_with(loop, &ep, NULL, NULL, NULL, cb, arg, req, err,
                                errlen);
}

int eddy_connect_endpoint(eddy_loop *loop, const eddy_endpoint *ep,
                          eddy_connect_cb cb, void *arg, eddy_connect **req) {
  return eddy__connect_with(loop, ep, NULL, NULL, NULL, cb, arg, req, NULL, 0);
}

void eddy_connect_cancel(eddy_connect *c) {
  if (c->state == DONE)
    return;
  c->cancelled = 1;
  if (c->work)
    (void)eddy_work_cancel(c->work); /* done will run either way */
  for (int i = 0; i < MAX_ADDRS; i++)
    close_attempt(c, &c->att[i]);
  eddy__timer_stop(&c->deadline);
  eddy__timer_stop(&c->stagger);
  defer(c, -ECANCELED);
}
