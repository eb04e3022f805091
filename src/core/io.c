/* io.c: descriptor watchers, and the descriptor table the backends use to
 * find a watcher again before each callback. */
#include "core/io.h"

#include <errno.h>

#include "core/loop.h"
#include "sys/alloc.h"

void eddy__io_init(eddy__io *io, int fd, eddy__io_cb cb, void *data) {
  io->fd = fd;
  io->events = 0;
  io->pevents = 0;
  io->internal = 0;
  io->cb = cb;
  io->data = data;
  io->slot = 0;
}

static int table_reserve(eddy_loop *loop, int fd) {
  size_t old = loop->nwatchers;
  void *table = loop->watchers;
  if ((size_t)fd < old)
    return 0;
  if (eddy__grow(&table, &loop->nwatchers, (size_t)fd + 1, sizeof(eddy__io *)))
    return -ENOMEM;
  loop->watchers = table;
  for (size_t i = old; i < loop->nwatchers; i++)
    loop->watchers[i] = NULL;
  return 0;
}

static int set_events(eddy_loop *loop, eddy__io *io, unsigned events) {
  int was_active = io->events != 0;
  int err;
  if (events == io->events)
    return 0;
  err = loop->backend->update(loop, io, events);
  if (err)
    return err;
  io->events = events;
  loop->watchers[io->fd] = events ? io : NULL;
  if (!io->internal)
    loop->nactive_io += (unsigned)(events != 0) - (unsigned)was_active;
  return 0;
}

int eddy__io_start(eddy_loop *loop, eddy__io *io, unsigned events) {
  int err;
  if (io->fd < 0)
    return -EBADF;
  err = table_reserve(loop, io->fd);
  if (err)
    return err;
  return set_events(loop, io, io->events | events);
}

void eddy__io_stop(eddy_loop *loop, eddy__io *io, unsigned events) {
  unsigned want = io->events & ~events;
  if (set_events(loop, io, want) != 0 && want == 0) {
    /* The backend refused to forget the descriptor (it was closed
     * already); forget it here so that no callback can reach io. */
    loop->watchers[io->fd] = NULL;
    if (!io->internal && io->events)
      loop->nactive_io--;
    io->events = 0;
    io->pevents = 0;
  }
}

void eddy__io_remove(eddy_loop *loop, eddy__io *io) {
  eddy__io_stop(loop, io, io->events);
}

void eddy__io_dispatch(eddy_loop *loop, int fd, unsigned events) {
  eddy__io *io;
  if (fd < 0 || (size_t)fd >= loop->nwatchers)
    return;
  io = loop->watchers[fd];
  if (io == NULL)
    return;
  events &= io->events;
  if (events)
    io->cb(loop, io, events);
}
