/* listener.c: listening sockets and the accept loop.
 *
 * The accept loop gives each errno a decision (see the policy in
 * eddy/net.h). The one that needs a trick is EMFILE/ENFILE: a level-
 * triggered listener whose backlog cannot be accepted stays readable, and
 * a naive loop spins at 100% CPU while clients hang. The listener keeps one
 * spare descriptor open; when out of descriptors it frees the spare,
 * accepts and closes what is waiting (so clients see a prompt close),
 * takes the spare back, and stops watching the socket for a while. The
 * trick is not airtight with threads (another thread may take the freed
 * descriptor first); the pause bounds the cost either way.
 *
 * Each accepted stream gets the layers its endpoint asked for (wrap.c)
 * before the program sees it; one that cannot get them is aborted and
 * reported like a stream that could not be made, and accepting goes on.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/loop.h"
#include "eddy/net.h"
#include "net/net.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define ACCEPTS_PER_TURN 64
#define PAUSE_NS (250 * EDDY_NSEC_PER_MSEC)

struct eddy_listener {
  eddy__handle h;
  eddy__io io;
  int fd;
  int spare; /* kept open for the EMFILE trick, -1 if it could not be */
  int family;
  eddy__wraps wraps; /* layers put on each accepted stream */
  eddy_accept_cb on_accept;
  eddy_listener_error_cb on_error;
  void *arg;
  eddy__timer pause; /* accepting resumes when it fires */
  int in_trouble;    /* an episode was reported; cleared by a good accept */
  char path[EDDY_ENDPOINT_PATH_MAX]; /* a Unix socket file to remove */
};

/* ---- The accept loop --------------------------------------------------------- */

static void report(eddy_listener *l, int err, const char *detail) {
  if (l->in_trouble)
    return;
  l->in_trouble = 1;
  if (l->on_error)
    l->on_error(l, err, detail, l->arg);
}

/* Stops accepting for a while. If even the timer cannot start, accepting
 * simply goes on: better a busy loop than a dead listener. */
static void pause_accepting(eddy_listener *l) {
  if (eddy__timer_start(&l->pause, PAUSE_NS) == 0)
    eddy__io_stop(l->h.loop, &l->io, EDDY__IO_READ);
}

static void resume_accepting(eddy__timer *t, void *arg) {
  eddy_listener *l = arg;
  (void)t;
  if (eddy__io_start(l->h.loop, &l->io, EDDY__IO_READ) != 0)
    pause_accepting(l);
}

static void open_spare(eddy_listener *l) {
  if (l->spare < 0)
    l->spare = eddy__sys_open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  if (l->spare < 0)
    l->spare = -1;
}

/* Out of descriptors: use the spare to accept and close what waits. */
static void shed_backlog(eddy_listener *l) {
  if (l->spare >= 0) {
    eddy__sys_close(l->spare);
    l->spare = -1;
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
      int fd = eddy__sys_accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        break;
      eddy__sys_close(fd);
    }
  }
  open_spare(l);
}

static void deliver(eddy_listener *l, int fd) {
  eddy_stream *s;
  int err;
  assert(fd >= 0 && !(l->h.flags & EDDY__HANDLE_CLOSING));
  err = eddy__stream_adopt(l->h.loop, fd,
                           l->family == AF_INET || l->family == AF_INET6, &s);
  if (err == 0 && (err = eddy__wraps_apply(&l->wraps, s, NULL)) != 0) {
    eddy_stream_set_callbacks(s, NULL, NULL);
    eddy_stream_abort(s);
  }
  if (err) {
    report(l, err, "could not set up an accepted connection");
    return;
  }
  l->in_trouble = 0;
  l->on_accept(l, s, l->arg);
}

/* Pending network errors that Linux accept4() passes on: the connection
 * is gone, the listener is fine. */
static int skippable(int err) {
  switch (err) {
  case -ECONNABORTED:
  case -EPROTO:
  case -EPERM:
  case -ENETDOWN:
  case -ENOPROTOOPT:
  case -EHOSTDOWN:
  case -ENONET:
  case -EHOSTUNREACH:
  case -EOPNOTSUPP:
  case -ENETUNREACH:
    return 1;
  default:
    return 0;
  }
}

static void on_acceptable(eddy_loop *loop, eddy__io *io, unsigned events) {
  eddy_listener *l = io->data;
  (void)loop;
  (void)events;
  for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
    int fd = eddy__sys_accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      deliver(l, fd);
      if (l->h.flags & EDDY__HANDLE_CLOSING)
        return;
      continue;
    }
    if (fd == -EAGAIN)
      return;
    if (skippable(fd))
      continue;
    if (fd == -EMFILE || fd == -ENFILE)
      report(l, fd, "out of file descriptors: refusing connections for now");
    else if (fd == -ENOBUFS || fd == -ENOMEM)
      report(l, fd, "out of kernel memory: accepting again shortly");
    else
      report(l, fd, "accept failed");
    /* The error callback may have closed the listener: its socket and
     * spare are gone, and shedding would open a spare nobody closes. */
    if (l->h.flags & EDDY__HANDLE_CLOSING)
      return;
    if (fd == -EMFILE || fd == -ENFILE)
      shed_backlog(l);
    pause_accepting(l);
    return;
  }
}

/* ---- Opening --------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int code, const char *what,
                const char *name) {
  if (errlen > 0)
    snprintf(err, errlen, "%s %s: %s", what, name, eddy_strerror(code));
  return code;
}

static int set_int(int fd, int level, int opt, int value) {
  return eddy__sys_setsockopt(fd, level, opt, &value, sizeof value);
}

static int open_tcp(eddy_listener *l, const eddy_endpoint *ep, char *err,
                    size_t errlen) {
  struct sockaddr_storage ss;
  char name[EDDY_ENDPOINT_HOST_MAX + 16];
  int len, fd, e;
  l->family = ep->kind == EDDY_ENDPOINT_TCP6 ? AF_INET6 : AF_INET;
  len = eddy__sockaddr_ip(l->family, ep->host, ep->port, &ss);
  snprintf(name, sizeof name, l->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
           *ep->host ? ep->host : (l->family == AF_INET6 ? "::" : "0.0.0.0"),
           ep->port);
  if (len < 0)
    return fail(err, errlen, -EINVAL, "bad address", name);
  fd = eddy__sys_socket(l->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
  if (fd < 0)
    return fail(err, errlen, fd, "socket for", name);
  l->fd = fd;
  e = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  if (e == 0 && ep->reuseport)
    e = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (e == 0 && l->family == AF_INET6)
    e = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, ep->ipv6only != 0);
  if (e)
    return fail(err, errlen, e, "socket options for", name);
  e = eddy__sys_bind(fd, (struct sockaddr *)&ss, (socklen_t)len);
  if (e)
    return fail(err, errlen, e, "bind", name);
  e = eddy__sys_listen(fd, ep->backlog);
  return e ? fail(err, errlen, e, "listen on", name) : 0;
}

/* A socket file left by a server that died is removed; one that a live
 * server answers on, or a file that is not a socket, is left alone. */
static int clear_stale(const char *path, const struct sockaddr_un *un) {
  struct stat st;
  int fd, e;
  if (eddy__sys_lstat(path, &st) != 0)
    return 0;
  if (!S_ISSOCK(st.st_mode))
    return -EEXIST;
  /* Non-blocking: a live server whose backlog is full would hold a
   * blocking connect for ever; non-blocking, it says EAGAIN. */
  fd = eddy__sys_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fd;
  e = eddy__sys_connect(fd, (const struct sockaddr *)un, sizeof *un);
  eddy__sys_close(fd);
  if (e == 0 || e == -EINPROGRESS || e == -EAGAIN)
    return -EADDRINUSE;
  return e == -ECONNREFUSED ? eddy__sys_unlink(path) : 0;
}

static int open_unix(eddy_listener *l, const eddy_endpoint *ep, char *err,
                     size_t errlen) {
  struct sockaddr_un un;
  int fd, e;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  snprintf(un.sun_path, sizeof un.sun_path, "%s", ep->path);
  l->family = AF_UNIX;
  e = clear_stale(ep->path, &un);
  if (e)
    return fail(err, errlen, e == -EEXIST ? -EADDRINUSE : e,
                e == -EEXIST ? "not a socket, left alone:" : "socket file",
                ep->path);
  fd = eddy__sys_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail(err, errlen, fd, "socket for", ep->path);
  l->fd = fd;
  e = eddy__sys_bind(fd, (struct sockaddr *)&un, sizeof un);
  if (e)
    return fail(err, errlen, e, "bind", ep->path);
  snprintf(l->path, sizeof l->path, "%s", ep->path);
  if (ep->mode && (e = eddy__sys_chmod(ep->path, ep->mode)) != 0)
    return fail(err, errlen, e, "chmod", ep->path);
  e = eddy__sys_listen(fd, ep->backlog);
  return e ? fail(err, errlen, e, "listen on", ep->path) : 0;
}

/* An inherited descriptor must already be a listening socket. */
static int adopt_fd(eddy_listener *l, int fd, int want_domain, char *err,
                    size_t errlen) {
  char name[32];
  int v = 0, e;
  socklen_t len = sizeof v;
  snprintf(name, sizeof name, "fd %d", fd);
  e = eddy__sys_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
  if (e)
    return fail(err, errlen, e, "inherited", name);
  if (!v)
    return fail(err, errlen, -EINVAL,
                "inherited socket is not listening:", name);
  len = sizeof v;
  e = eddy__sys_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len);
  if (e == 0 && want_domain && v != want_domain)
    return fail(err, errlen, -EAFNOSUPPORT,
                "inherited socket of another domain:", name);
  l->family = v;
  e = eddy__sys_set_nonblock_cloexec(fd);
  if (e)
    return fail(err, errlen, e, "inherited", name);
  l->fd = fd;
  return 0;
}

/* systemd socket activation: LISTEN_PID names this process, LISTEN_FDS
 * counts descriptors from 3. */
static int open_systemd(eddy_listener *l, const eddy_endpoint *ep, char *err,
                        size_t errlen) {
  const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
  if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
    return fail(err, errlen, -ENOENT, "no sockets passed by systemd",
                "(LISTEN_PID/LISTEN_FDS)");
  if (ep->fd < 0 || ep->fd >= atoi(fds))
    return fail(err, errlen, -ENOENT, "systemd passed fewer sockets than index",
                "");
  return adopt_fd(l, 3 + ep->fd, ep->domain, err, errlen);
}

static void listener_close_handle(eddy__handle *h) {
  eddy_listener_close((eddy_listener *)h);
}

static int open_socket(eddy_listener *l, const eddy_endpoint *ep, char *err,
                       size_t errlen) {
  switch (ep->kind) {
  case EDDY_ENDPOINT_TCP:
  case EDDY_ENDPOINT_TCP6:
    return open_tcp(l, ep, err, errlen);
  case EDDY_ENDPOINT_UNIX:
    return open_unix(l, ep, err, errlen);
  case EDDY_ENDPOINT_FD:
    return adopt_fd(l, ep->fd, 0, err, errlen);
  case EDDY_ENDPOINT_SYSTEMD:
    return open_systemd(l, ep, err, errlen);
  case EDDY_ENDPOINT_UDP:
    return fail(err, errlen, -EINVAL,
                "udp: is a datagram endpoint, opened with "
                "eddy_udp_open_endpoint, not a listener",
                "");
  }
  return fail(err, errlen, -EINVAL, "unknown endpoint kind", "");
}

int eddy__listener_open_with(eddy_loop *loop, const eddy_endpoint *ep,
                             const eddy__wrap_ops *const *table,
                             eddy_accept_cb on_accept, void *arg,
                             eddy_listener **out, char *err, size_t errlen) {
  eddy_listener *l;
  int e;
  if (errlen > 0)
    err[0] = '\0';
  if (ep == NULL || on_accept == NULL)
    return -EINVAL;
  l = eddy__calloc(1, sizeof *l);
  if (l == NULL)
    return fail(err, errlen, -ENOMEM, "listener for", "endpoint");
  l->fd = l->spare = -1;
  l->on_accept = on_accept;
  l->arg = arg;
  eddy__handle_init(loop, &l->h, listener_close_handle);
  eddy__timer_init(loop, &l->pause, resume_accepting, l);
  e = eddy__wraps_from_endpoint(&l->wraps, table, ep, 1, err, errlen);
  if (e == 0)
    e = open_socket(l, ep, err, errlen);
  if (e == 0) {
    eddy__io_init(&l->io, l->fd, on_acceptable, l);
    if ((e = eddy__io_start(loop, &l->io, EDDY__IO_READ)) != 0)
      fail(err, errlen, e, "watching", "listener");
  }
  if (e) {
    /* An inherited descriptor stays the caller's when the open fails (as
     * it does when adopt_fd refuses it): only a socket we made is closed. */
    if (ep->kind == EDDY_ENDPOINT_FD || ep->kind == EDDY_ENDPOINT_SYSTEMD)
      l->fd = -1;
    eddy_listener_close(l);
    return e;
  }
  open_spare(l);
  *out = l;
  return 0;
}

int eddy_listener_open(eddy_loop *loop, const eddy_endpoint *ep,
                       eddy_accept_cb on_accept, void *arg, eddy_listener **out,
                       char *err, size_t errlen) {
  return eddy__listener_open_with(loop, ep, eddy__wrappers, on_accept, arg, out,
                                  err, errlen);
}

int eddy_listen(eddy_loop *loop, const char *text, eddy_accept_cb on_accept,
                void *arg, eddy_listener **out, char *err, size_t errlen) {
  eddy_endpoint ep;
  int e = eddy_endpoint_parse_server(text, &ep, err, errlen);
  return e ? e
           : eddy_listener_open(loop, &ep, on_accept, arg, out, err, errlen);
}

void eddy_listener_on_error(eddy_listener *l, eddy_listener_error_cb cb) {
  l->on_error = cb;
}

void eddy_listener_close(eddy_listener *l) {
  if (eddy__handle_close(&l->h))
    return;
  if (l->fd >= 0) {
    eddy__io_remove(l->h.loop, &l->io);
    eddy__sys_close(l->fd);
  }
  if (l->spare >= 0)
    eddy__sys_close(l->spare);
  eddy__timer_stop(&l->pause);
  if (l->path[0])
    (void)eddy__sys_unlink(l->path);
  l->fd = l->spare = -1;
  eddy__wraps_clear(&l->wraps);
}

int eddy__listener_wrap(eddy_listener *l, const eddy__wrap_ops *ops,
                        void *state) {
  return eddy__wraps_set(&l->wraps, ops, state);
}

int eddy_listener_name(const eddy_listener *l, char *buf, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int e = eddy__sys_getsockname(l->fd, (struct sockaddr *)&ss, &sl);
  return e ? e : eddy__sockaddr_format((struct sockaddr *)&ss, sl, buf, len);
}

int eddy_listener_port(const eddy_listener *l) {
  return eddy__sock_port(l->fd);
}
