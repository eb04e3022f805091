/* wakeup.c: the cross-thread wake-up and eddy_loop_call_threadsafe().
 *
 * Other threads wake the loop for two reasons: calls (fn, arg) queued by
 * eddy_loop_call_threadsafe, kept here on a list guarded by wakeup.lock,
 * and finished thread-pool work, which work.c keeps on its own list and
 * collects through the on_wake hook after each drain. The first wake-up
 * after the loop last looked makes the wake-up descriptor readable. The
 * write happens under the lock, as does the drain, so "signalled" is 1
 * exactly when the descriptor holds a wake-up: the loop can test the flag
 * instead of making a system call, and a descriptor never stays readable
 * with nothing queued (a host loop embedding eddy would otherwise spin).
 * on_wake runs after the flag is cleared, so work posted at any moment is
 * either collected by this drain or wakes the loop again (at worst once
 * for nothing).
 *
 * The descriptor is an eventfd; where eventfd() does not exist (ENOSYS) or
 * is refused (EINVAL), a non-blocking pipe. EAGAIN on the write means the
 * counter or the pipe is full, which means the loop will wake anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include "core/loop.h"
#include "sys/alloc.h"
#include "sys/sys.h"

static int calls_push(eddy__calls *q, eddy_callback fn, void *arg) {
  void *items = q->items;
  if (eddy__grow(&items, &q->cap, q->len + 1, sizeof(eddy__call)))
    return -ENOMEM;
  q->items = items;
  q->items[q->len].fn = fn;
  q->items[q->len].arg = arg;
  q->len++;
  return 0;
}

static void drain_fd(eddy__wakeup *a) {
  char buf[64];
  if (a->rfd == a->wfd) {
    (void)eddy__sys_read(a->rfd, buf, sizeof(uint64_t));
    return;
  }
  while (eddy__sys_read(a->rfd, buf, sizeof buf) == (ssize_t)sizeof buf) {
  }
}

/* Runs what other threads queued. Not reentrant (only the loop calls it),
 * so the spare list is always free to take the storage back. */
void eddy__wakeup_drain(eddy_loop *loop) {
  eddy__wakeup *w = &loop->wakeup;
  eddy__calls calls;
  pthread_mutex_lock(&w->lock);
  if (atomic_load(&w->signalled))
    drain_fd(w);
  atomic_store(&w->signalled, 0);
  calls = w->calls;
  w->calls = w->spare;
  pthread_mutex_unlock(&w->lock);

  for (size_t i = 0; i < calls.len; i++)
    calls.items[i].fn(loop, calls.items[i].arg);
  calls.len = 0;
  pthread_mutex_lock(&w->lock);
  w->spare = calls;
  pthread_mutex_unlock(&w->lock);

  if (w->on_wake)
    w->on_wake(loop);
}

static void wakeup_cb(eddy_loop *loop, eddy__io *io, unsigned events) {
  (void)io;
  (void)events;
  eddy__wakeup_drain(loop);
}

/* With w->lock held. */
static void wake_locked(eddy__wakeup *w) {
  static const uint64_t one = 1;
  if (atomic_load(&w->signalled))
    return;
  atomic_store(&w->signalled, 1);
  if (w->rfd == w->wfd)
    (void)eddy__sys_write(w->wfd, &one, sizeof one);
  else
    (void)eddy__sys_write(w->wfd, "", 1);
}

void eddy__wakeup_signal(eddy_loop *loop) {
  eddy__wakeup *w = &loop->wakeup;
  pthread_mutex_lock(&w->lock);
  wake_locked(w);
  pthread_mutex_unlock(&w->lock);
}

static int open_fds(eddy__wakeup *a) {
  int fds[2];
  int fd = eddy__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd >= 0) {
    a->rfd = a->wfd = fd;
    return 0;
  }
  if (fd != -ENOSYS && fd != -EINVAL)
    return fd;
  fd = eddy__sys_pipe2(fds, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return fd;
  a->rfd = fds[0];
  a->wfd = fds[1];
  return 0;
}

static void close_fds(eddy__wakeup *a) {
  eddy__sys_close(a->rfd);
  if (a->wfd != a->rfd)
    eddy__sys_close(a->wfd);
}

static int watch(eddy_loop *loop) {
  eddy__wakeup *a = &loop->wakeup;
  eddy__io_init(&a->io, a->rfd, wakeup_cb, NULL);
  a->io.internal = 1;
  return eddy__io_start(loop, &a->io, EDDY__IO_READ);
}

int eddy__wakeup_init(eddy_loop *loop) {
  eddy__wakeup *a = &loop->wakeup;
  int err = open_fds(a);
  if (err)
    return err;
  err = watch(loop);
  if (err) {
    close_fds(a);
    return err;
  }
  pthread_mutex_init(&a->lock, NULL);
  atomic_init(&a->signalled, 0);
  return 0;
}

void eddy__wakeup_destroy(eddy_loop *loop) {
  eddy__wakeup *a = &loop->wakeup;
  eddy__io_remove(loop, &a->io);
  close_fds(a);
  pthread_mutex_destroy(&a->lock);
  eddy__free(a->calls.items);
  eddy__free(a->spare.items);
}

/* After fork(): the child gets new descriptors (the parent's are shared
 * with it) and a fresh lock (another thread may have held it at fork). */
int eddy__wakeup_fork(eddy_loop *loop) {
  eddy__wakeup *a = &loop->wakeup;
  eddy__wakeup old = *a;
  int err = open_fds(a);
  if (err)
    return err;
  eddy__io_remove(loop, &old.io);
  close_fds(&old);
  err = watch(loop);
  if (err)
    return err;
  pthread_mutex_init(&a->lock, NULL);
  atomic_store(&a->signalled, 0);
  if (a->calls.len > 0)
    wake_locked(a);
  return 0;
}

int eddy_loop_call_threadsafe(eddy_loop *loop, eddy_callback fn, void *arg) {
  eddy__wakeup *a = &loop->wakeup;
  int err;
  pthread_mutex_lock(&a->lock);
  err = calls_push(&a->calls, fn, arg);
  if (err == 0)
    wake_locked(a);
  pthread_mutex_unlock(&a->lock);
  return err;
}
