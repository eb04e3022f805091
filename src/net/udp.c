/* udp.c: datagram sockets. No send queue on purpose: see eddy/net.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/loop.h"
#include "eddy/net.h"
#include "net/net.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define DATAGRAMS_PER_TURN 64
/* Batching (eddy_udp_set_batching): datagrams per recvmmsg, and replies
 * held for one sendmmsg, each of at most BATCH_SEND_MAX bytes (a larger
 * one goes out alone, in order). */
#define BATCH 32
#define BATCH_SLOT 65536
#define BATCH_SEND_MAX 2048

typedef struct udp_batch {
  int in_batch; /* inside the receive callbacks of a batch */
  unsigned nsend;
  struct mmsghdr rmsg[BATCH];
  struct iovec riov[BATCH];
  struct sockaddr_storage rfrom[BATCH];
  struct mmsghdr smsg[BATCH];
  struct iovec siov[BATCH];
  struct sockaddr_storage sto[BATCH];
  char sbuf[BATCH][BATCH_SEND_MAX];
  char rbuf[BATCH][BATCH_SLOT]; /* last: pages never written stay unused */
} udp_batch;

struct eddy_udp {
  eddy__handle h;
  eddy__io io;
  int fd, family;
  eddy_udp_recv_cb on_recv;
  eddy_udp_error_cb on_error;
  void *arg;
  uint64_t dropped;
  udp_batch *batch; /* NULL unless batching */
};

static _Thread_local char dgram[65536];

static void report(eddy_udp *u, int err) {
  if (u->on_error)
    u->on_error(u, err, u->arg);
}

/* Sends the replies held during a batch: one sendmmsg for all, unless the
 * kernel takes fewer. A reply the kernel cannot take now is dropped and
 * counted, as eddy_udp_send does; one it refuses is counted too, since
 * its sender has long returned. */
static void flush_sends(eddy_udp *u) {
  udp_batch *b = u->batch;
  unsigned i = 0;
  while (i < b->nsend) {
    int r = eddy__sys_sendmmsg(u->fd, b->smsg + i, b->nsend - i, MSG_NOSIGNAL);
    if (r > 0) {
      i += (unsigned)r;
    } else if (r == -EAGAIN || r == -ENOBUFS || r == 0) {
      u->dropped += b->nsend - i;
      break;
    } else {
      u->dropped++;
      i++;
    }
  }
  b->nsend = 0;
}

/* One batch per recvmmsg; returns 1 when the socket may hold more. */
static int read_batch(eddy_udp *u) {
  udp_batch *b = u->batch;
  int n;
  for (int i = 0; i < BATCH; i++) {
    b->riov[i].iov_base = b->rbuf[i];
    b->riov[i].iov_len = BATCH_SLOT;
    b->rmsg[i].msg_hdr = (struct msghdr){.msg_name = &b->rfrom[i],
                                         .msg_namelen = sizeof b->rfrom[i],
                                         .msg_iov = &b->riov[i],
                                         .msg_iovlen = 1};
  }
  n = eddy__sys_recvmmsg(u->fd, b->rmsg, BATCH, 0);
  if (n == -EAGAIN)
    return 0;
  if (n < 0) {
    report(u, n);
    return !(u->h.flags & EDDY__HANDLE_CLOSING);
  }
  b->in_batch = 1;
  for (int i = 0; i < n && !(u->h.flags & EDDY__HANDLE_CLOSING); i++)
    u->on_recv(u, b->rbuf[i], b->rmsg[i].msg_len,
               (struct sockaddr *)&b->rfrom[i], b->rmsg[i].msg_hdr.msg_namelen,
               u->arg);
  b->in_batch = 0;
  if (u->h.flags & EDDY__HANDLE_CLOSING)
    return 0; /* close flushed what was held */
  if (b->nsend > 0)
    flush_sends(u);
  /* Fewer than asked: the socket was emptied, and a read now would only
   * say EAGAIN (the poller reports anything new). */
  return n == BATCH;
}

static void on_readable(eddy_loop *loop, eddy__io *io, unsigned events) {
  eddy_udp *u = io->data;
  (void)loop;
  (void)events;
  if (u->batch) {
    for (int read = 0; read < DATAGRAMS_PER_TURN; read += BATCH)
      if (!read_batch(u))
        return;
    return;
  }
  for (int i = 0; i < DATAGRAMS_PER_TURN; i++) {
    struct sockaddr_storage from;
    struct iovec iov = {dgram, sizeof dgram};
    struct msghdr m = {.msg_name = &from,
                       .msg_namelen = sizeof from,
                       .msg_iov = &iov,
                       .msg_iovlen = 1};
    ssize_t n = eddy__sys_recvmsg(u->fd, &m, 0);
    if (n == -EAGAIN)
      return;
    if (n < 0) {
      /* An ICMP error queued on the socket (connected sockets), or
       * something stranger: report it and go on. */
      report(u, (int)n);
    } else {
      u->on_recv(u, dgram, (size_t)n, (struct sockaddr *)&from, m.msg_namelen,
                 u->arg);
    }
    if (u->h.flags & EDDY__HANDLE_CLOSING)
      return;
  }
}

static void udp_close_handle(eddy__handle *h) {
  eddy_udp_close((eddy_udp *)h);
}

static void udp_finalize(eddy__handle *h) {
  eddy_udp *u = (eddy_udp *)h;
  eddy__free(u->batch);
  u->batch = NULL;
}

static int family_of(const char *addr) {
  return strchr(addr, ':') ? AF_INET6 : AF_INET;
}

/* Binds a datagram socket to addr:port. reuse: SO_REUSEADDR; reuseport:
 * SO_REUSEPORT. */
static int open_udp(eddy_loop *loop, const char *addr, unsigned port, int reuse,
                    int reuseport, eddy_udp_recv_cb on_recv, void *arg,
                    eddy_udp **out) {
  struct sockaddr_storage ss;
  int family, len, fd, err = 0, one = 1;
  eddy_udp *u;
  if (addr == NULL || on_recv == NULL || port > 65535)
    return -EINVAL;
  family = family_of(addr);
  if ((len = eddy__sockaddr_ip(family, addr, port, &ss)) < 0)
    return len;
  fd = eddy__sys_socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fd;
  if (reuse)
    err = eddy__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (err == 0 && reuseport)
    err = eddy__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (err == 0)
    err = eddy__sys_bind(fd, (struct sockaddr *)&ss, (socklen_t)len);
  if (err == 0 && (u = eddy__calloc(1, sizeof *u)) == NULL)
    err = -ENOMEM;
  if (err) {
    eddy__sys_close(fd);
    return err;
  }
  eddy__handle_init(loop, &u->h, udp_close_handle);
  u->h.finalize = udp_finalize;
  u->fd = fd;
  u->family = family;
  u->on_recv = on_recv;
  u->arg = arg;
  eddy__io_init(&u->io, fd, on_readable, u);
  if ((err = eddy__io_start(loop, &u->io, EDDY__IO_READ)) != 0) {
    eddy_udp_close(u);
    return err;
  }
  *out = u;
  return 0;
}

int eddy_udp_open(eddy_loop *loop, const char *addr, unsigned port, int reuse,
                  eddy_udp_recv_cb on_recv, void *arg, eddy_udp **out) {
  return open_udp(loop, addr, port, reuse, 0, on_recv, arg, out);
}

int eddy_udp_open_endpoint(eddy_loop *loop, const eddy_endpoint *ep,
                           eddy_udp_recv_cb on_recv, void *arg, eddy_udp **out,
                           char *err, size_t errlen) {
  const char *addr;
  int e;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (ep == NULL || ep->kind != EDDY_ENDPOINT_UDP) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "not a udp: endpoint");
    return -EINVAL;
  }
  addr = ep->host[0] ? ep->host : "0.0.0.0";
  e = open_udp(loop, addr, ep->port, 0, ep->reuseport, on_recv, arg, out);
  if (e != 0 && err != NULL && errlen > 0)
    snprintf(err, errlen, "udp: %s%s%s:%u: %s", strchr(addr, ':') ? "[" : "",
             addr, strchr(addr, ':') ? "]" : "", ep->port, eddy_strerror(e));
  return e;
}

void eddy_udp_on_error(eddy_udp *u, eddy_udp_error_cb cb) {
  u->on_error = cb;
}

int eddy_udp_connect(eddy_udp *u, const char *addr, unsigned port) {
  struct sockaddr_storage ss;
  int len = eddy__sockaddr_ip(u->family, addr, port, &ss);
  if (len < 0 || port > 65535)
    return -EINVAL;
  return eddy__sys_connect(u->fd, (struct sockaddr *)&ss, (socklen_t)len);
}

int eddy_udp_set_batching(eddy_udp *u, int on) {
  if (u->h.flags & EDDY__HANDLE_CLOSING)
    return EDDY_ECLOSED;
  if (!on) {
    if (u->batch && u->batch->in_batch)
      return -EBUSY;
    eddy__free(u->batch);
    u->batch = NULL;
    return 0;
  }
  if (u->batch == NULL && (u->batch = eddy__malloc(sizeof *u->batch)) == NULL)
    return -ENOMEM;
  u->batch->in_batch = 0;
  u->batch->nsend = 0;
  return 0;
}

/* Holds a reply made inside a batch's callbacks: 1 if held, 0 if it must
 * go now. */
static int hold(eddy_udp *u, const void *data, size_t len,
                const struct sockaddr *to, socklen_t tolen) {
  udp_batch *b = u->batch;
  unsigned i;
  if (len > BATCH_SEND_MAX || tolen > sizeof b->sto[0]) {
    if (b->nsend > 0)
      flush_sends(u); /* what came first goes first */
    return 0;
  }
  if (b->nsend == BATCH)
    flush_sends(u);
  i = b->nsend++;
  memcpy(b->sbuf[i], data, len);
  b->siov[i] = (struct iovec){b->sbuf[i], len};
  if (to != NULL)
    memcpy(&b->sto[i], to, tolen);
  b->smsg[i].msg_hdr = (struct msghdr){.msg_name = to ? &b->sto[i] : NULL,
                                       .msg_namelen = to ? tolen : 0,
                                       .msg_iov = &b->siov[i],
                                       .msg_iovlen = 1};
  return 1;
}

int eddy_udp_send(eddy_udp *u, const void *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen) {
  struct iovec iov = {(void *)data, len};
  struct msghdr m = {.msg_name = (void *)to,
                     .msg_namelen = to ? tolen : 0,
                     .msg_iov = &iov,
                     .msg_iovlen = 1};
  ssize_t n;
  if (u->h.flags & EDDY__HANDLE_CLOSING)
    return EDDY_ECLOSED;
  if (u->batch && u->batch->in_batch && hold(u, data, len, to, tolen))
    return 0;
  n = eddy__sys_sendmsg(u->fd, &m, MSG_NOSIGNAL);
  if (n == -EAGAIN || n == -ENOBUFS) {
    u->dropped++;
    return 0;
  }
  return n < 0 ? (int)n : 0;
}

uint64_t eddy_udp_dropped(const eddy_udp *u) {
  return u->dropped;
}

int eddy_udp_port(const eddy_udp *u) {
  return eddy__sock_port(u->fd);
}

static int membership(eddy_udp *u, const char *group, const char *iface,
                      int join) {
  if (u->family == AF_INET) {
    struct ip_mreq mr;
    memset(&mr, 0, sizeof mr);
    if (inet_pton(AF_INET, group, &mr.imr_multiaddr) != 1 ||
        (iface && inet_pton(AF_INET, iface, &mr.imr_interface) != 1))
      return -EINVAL;
    return eddy__sys_setsockopt(u->fd, IPPROTO_IP,
                                join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                                &mr, sizeof mr);
  } else {
    struct ipv6_mreq mr;
    memset(&mr, 0, sizeof mr);
    if (inet_pton(AF_INET6, group, &mr.ipv6mr_multiaddr) != 1)
      return -EINVAL;
    (void)iface; /* IPv6 names interfaces by index; 0 lets the kernel pick */
    return eddy__sys_setsockopt(u->fd, IPPROTO_IPV6,
                                join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &mr,
                                sizeof mr);
  }
}

int eddy_udp_join(eddy_udp *u, const char *group, const char *iface) {
  return membership(u, group, iface, 1);
}

int eddy_udp_leave(eddy_udp *u, const char *group, const char *iface) {
  return membership(u, group, iface, 0);
}

int eddy_udp_set_broadcast(eddy_udp *u, int on) {
  int v = on != 0;
  return eddy__sys_setsockopt(u->fd, SOL_SOCKET, SO_BROADCAST, &v, sizeof v);
}

void eddy_udp_close(eddy_udp *u) {
  if (eddy__handle_close(&u->h))
    return;
  if (u->batch && u->batch->nsend > 0)
    flush_sends(u); /* replies already accepted from inside a batch */
  eddy__io_remove(u->h.loop, &u->io);
  eddy__sys_close(u->fd);
  u->fd = -1;
}
