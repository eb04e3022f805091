/* watch.c: the public descriptor watcher, a handle around the loop's own
 * eddy__io. It never reads, writes or closes the descriptor: it says when
 * the descriptor is ready, and the program does the rest. */
#include <errno.h>

#include "core/loop.h"
#include "sys/alloc.h"

struct eddy_watch {
  eddy__handle h;
  eddy__io io;
  eddy_watch_cb cb;
  void *arg;
};

static void on_ready(eddy_loop *loop, eddy__io *io, unsigned events) {
  eddy_watch *w = io->data;
  (void)loop;
  w->cb(w, (int)events, w->arg);
}

static void watch_close_handle(eddy__handle *h) {
  eddy_watch_close((eddy_watch *)h);
}

int eddy_watch_new(eddy_loop *loop, int fd, eddy_watch_cb cb, void *arg,
                   eddy_watch **out) {
  eddy_watch *w;
  if (fd < 0 || cb == NULL)
    return -EINVAL;
  if ((w = eddy__malloc(sizeof *w)) == NULL)
    return -ENOMEM;
  eddy__handle_init(loop, &w->h, watch_close_handle);
  eddy__io_init(&w->io, fd, on_ready, w);
  w->cb = cb;
  w->arg = arg;
  *out = w;
  return 0;
}

int eddy_watch_start(eddy_watch *w, int events) {
  unsigned want = (unsigned)events & (EDDY__IO_READ | EDDY__IO_WRITE);
  int err;
  if (w->h.flags & EDDY__HANDLE_CLOSING)
    return EDDY_ECLOSED;
  if ((unsigned)events != want)
    return -EINVAL;
  if (want == 0) {
    eddy__io_remove(w->h.loop, &w->io);
    return 0;
  }
  err = eddy__io_start(w->h.loop, &w->io, want);
  if (err == 0)
    eddy__io_stop(w->h.loop, &w->io, (EDDY__IO_READ | EDDY__IO_WRITE) & ~want);
  return err;
}

void eddy_watch_close(eddy_watch *w) {
  if (w->h.flags & EDDY__HANDLE_CLOSING)
    return;
  eddy__io_remove(w->h.loop, &w->io);
  eddy__handle_close(&w->h);
}
