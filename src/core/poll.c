/* poll.c: the poll() backend, portable to any POSIX system. One pollfd per
 * watched descriptor, kept in an array; a watcher records its slot. Slots
 * removed during dispatch are marked (fd = -1, which poll ignores) and
 * compacted afterwards, so that dispatch can walk the array safely. */
#include <errno.h>
#include <poll.h>

#include "core/loop.h"
#include "sys/alloc.h"
#include "sys/sys.h"

static int poll_init(eddy_loop *loop) {
  loop->be.poll.fds = NULL;
  loop->be.poll.len = loop->be.poll.cap = 0;
  loop->be.poll.dispatching = loop->be.poll.dirty = 0;
  return 0;
}

static void poll_destroy(eddy_loop *loop) {
  eddy__free(loop->be.poll.fds);
}

static short to_poll(unsigned events) {
  return (short)(((events & EDDY__IO_READ) ? POLLIN : 0) |
                 ((events & EDDY__IO_WRITE) ? POLLOUT : 0));
}

static void remove_slot(eddy_loop *loop, size_t slot) {
  struct pollfd *fds = loop->be.poll.fds;
  size_t last = --loop->be.poll.len;
  if (slot != last) {
    fds[slot] = fds[last];
    if (fds[slot].fd >= 0)
      loop->watchers[fds[slot].fd]->slot = (unsigned)slot;
  }
}

static int poll_update(eddy_loop *loop, eddy__io *io, unsigned events) {
  struct pollfd *fds;
  if (io->pevents == 0 && events != 0) {
    void *arr = loop->be.poll.fds;
    if (eddy__grow(&arr, &loop->be.poll.cap, loop->be.poll.len + 1,
                   sizeof(struct pollfd)))
      return -ENOMEM;
    loop->be.poll.fds = arr;
    io->slot = (unsigned)loop->be.poll.len++;
    loop->be.poll.fds[io->slot].fd = io->fd;
    loop->be.poll.fds[io->slot].revents = 0;
  }
  fds = loop->be.poll.fds;
  if (events == 0 && io->pevents != 0) {
    if (loop->be.poll.dispatching) {
      fds[io->slot].fd = -1;
      fds[io->slot].revents = 0;
      loop->be.poll.dirty = 1;
    } else
      remove_slot(loop, io->slot);
  } else if (events != 0)
    fds[io->slot].events = to_poll(events);
  io->pevents = events;
  return 0;
}

static void compact(eddy_loop *loop) {
  size_t i = 0;
  while (i < loop->be.poll.len) {
    if (loop->be.poll.fds[i].fd == -1)
      remove_slot(loop, i);
    else
      i++;
  }
  loop->be.poll.dirty = 0;
}

static int poll_wait_dispatch(eddy_loop *loop, int timeout_ms) {
  size_t len = loop->be.poll.len;
  int n = eddy__sys_poll(loop->be.poll.fds, (nfds_t)len, timeout_ms);
  if (n == -EINTR)
    return 0;
  if (n < 0)
    return n;
  loop->be.poll.dispatching = 1;
  for (size_t i = 0; i < len && n > 0; i++) {
    struct pollfd p = loop->be.poll.fds[i];
    unsigned events = 0;
    if (p.fd < 0 || p.revents == 0)
      continue;
    n--;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
      events = EDDY__IO_READ | EDDY__IO_WRITE;
    if (p.revents & POLLIN)
      events |= EDDY__IO_READ;
    if (p.revents & POLLOUT)
      events |= EDDY__IO_WRITE;
    eddy__io_dispatch(loop, p.fd, events);
  }
  loop->be.poll.dispatching = 0;
  if (loop->be.poll.dirty)
    compact(loop);
  return 0;
}

/* poll() keeps no kernel state, so nothing needs re-creating after fork. */
static int poll_reinit(eddy_loop *loop) {
  (void)loop;
  return 0;
}

const eddy__backend_ops eddy__poll_ops = {
    .name = "poll",
    .init = poll_init,
    .destroy = poll_destroy,
    .update = poll_update,
    .wait = poll_wait_dispatch,
    .reinit = poll_reinit,
};
