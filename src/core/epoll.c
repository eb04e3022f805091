/* epoll.c: the epoll backend (Linux). Level-triggered; interest changes go
 * to the kernel at once. */
#include <errno.h>
#include <sys/epoll.h>

#include "core/loop.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define EDDY__EPOLL_BATCH 1024

static int epoll_init(eddy_loop *loop) {
  int fd;
  loop->be.epoll.events = eddy__malloc(EDDY__EPOLL_BATCH *
                                       sizeof(struct epoll_event));
  if (loop->be.epoll.events == NULL)
    return -ENOMEM;
  fd = eddy__sys_epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    eddy__free(loop->be.epoll.events);
    return fd;
  }
  loop->be.epoll.fd = fd;
  return 0;
}

static void epoll_destroy(eddy_loop *loop) {
  eddy__sys_close(loop->be.epoll.fd);
  eddy__free(loop->be.epoll.events);
}

static uint32_t to_epoll(unsigned events) {
  return ((events & EDDY__IO_READ) ? EPOLLIN : 0u) |
         ((events & EDDY__IO_WRITE) ? EPOLLOUT : 0u);
}

static int ctl(eddy_loop *loop, int op, eddy__io *io, unsigned events) {
  struct epoll_event ev = {.events = to_epoll(events), .data.fd = io->fd};
  return eddy__sys_epoll_ctl(loop->be.epoll.fd, op, io->fd, &ev);
}

static int epoll_update(eddy_loop *loop, eddy__io *io, unsigned events) {
  int err;
  if (events == 0)
    err = ctl(loop, EPOLL_CTL_DEL, io, 0);
  else if (io->pevents == 0) {
    err = ctl(loop, EPOLL_CTL_ADD, io, events);
    /* A descriptor dup'ed from one still registered shares its entry. */
    if (err == -EEXIST)
      err = ctl(loop, EPOLL_CTL_MOD, io, events);
  } else
    err = ctl(loop, EPOLL_CTL_MOD, io, events);
  if (err == 0 || events == 0)
    io->pevents = events;
  return err;
}

static int epoll_wait_dispatch(eddy_loop *loop, int timeout_ms) {
  struct epoll_event *evs = loop->be.epoll.events;
  int n = eddy__sys_epoll_wait(loop->be.epoll.fd, evs, EDDY__EPOLL_BATCH,
                               timeout_ms);
  if (n == -EINTR)
    return 0;
  if (n < 0)
    return n;
  for (int i = 0; i < n; i++) {
    uint32_t e = evs[i].events;
    unsigned events = 0;
    if (e & (EPOLLERR | EPOLLHUP))
      events = EDDY__IO_READ | EDDY__IO_WRITE;
    if (e & EPOLLIN)
      events |= EDDY__IO_READ;
    if (e & EPOLLOUT)
      events |= EDDY__IO_WRITE;
    eddy__io_dispatch(loop, evs[i].data.fd, events);
  }
  return 0;
}

static int epoll_reinit(eddy_loop *loop) {
  int fd = eddy__sys_epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0)
    return fd;
  eddy__sys_close(loop->be.epoll.fd);
  loop->be.epoll.fd = fd;
  for (size_t i = 0; i < loop->nwatchers; i++) {
    eddy__io *io = loop->watchers[i];
    int err;
    if (io == NULL)
      continue;
    err = ctl(loop, EPOLL_CTL_ADD, io, io->events);
    if (err)
      return err;
  }
  return 0;
}

const eddy__backend_ops eddy__epoll_ops = {
    .name = "epoll",
    .init = epoll_init,
    .destroy = epoll_destroy,
    .update = epoll_update,
    .wait = epoll_wait_dispatch,
    .reinit = epoll_reinit,
};
