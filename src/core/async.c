/* async.c: the cross-thread wake-up, eddy_loop_call_threadsafe(), and the
 * call queues.
 *
 * Other threads hand the loop two kinds of things: calls (fn, arg) and
 * finished thread-pool work. Both go on lists guarded by async.lock, and the
 * first one after the loop last looked wakes it by making the wake-up
 * descriptor readable. The write happens under the lock, as does the drain,
 * so "signalled" is 1 exactly when the descriptor holds a wake-up: the loop
 * can test the flag instead of making a system call, and a descriptor never
 * stays readable with nothing queued (a host loop embedding eddy would
 * otherwise spin).
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

int eddy__calls_push(eddy__calls *q, eddy_callback fn, void *arg) {
  void *items = q->items;
  if (eddy__grow(&items, &q->cap, q->len + 1, sizeof(eddy__call)))
    return -ENOMEM;
  q->items = items;
  q->items[q->len].fn = fn;
  q->items[q->len].arg = arg;
  q->len++;
  return 0;
}

static void calls_swap(eddy__calls *a, eddy__calls *b) {
  eddy__calls t = *a;
  *a = *b;
  *b = t;
}

void eddy__calls_run(eddy_loop *loop, eddy__calls *q, eddy__calls *spare) {
  calls_swap(q, spare);
  for (size_t i = 0; i < spare->len; i++)
    spare->items[i].fn(loop, spare->items[i].arg);
  spare->len = 0;
}

static void drain_fd(eddy__async *a) {
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
void eddy__async_drain(eddy_loop *loop) {
  eddy__async *a = &loop->async;
  eddy__calls calls;
  eddy_work *done;
  pthread_mutex_lock(&a->lock);
  if (atomic_load(&a->signalled))
    drain_fd(a);
  atomic_store(&a->signalled, 0);
  calls = a->calls;
  a->calls = a->spare;
  done = a->done_head;
  a->done_head = a->done_tail = NULL;
  pthread_mutex_unlock(&a->lock);

  for (size_t i = 0; i < calls.len; i++)
    calls.items[i].fn(loop, calls.items[i].arg);
  calls.len = 0;
  pthread_mutex_lock(&a->lock);
  a->spare = calls;
  pthread_mutex_unlock(&a->lock);

  while (done) {
    eddy_work *next = done->next;
    eddy__work_complete(loop, done);
    done = next;
  }
}

static void async_cb(eddy_loop *loop, eddy__io *io, unsigned events) {
  (void)io;
  (void)events;
  eddy__async_drain(loop);
}

/* Wakes the loop. Call with async.lock held. */
static void wake_locked(eddy_loop *loop) {
  eddy__async *a = &loop->async;
  static const uint64_t one = 1;
  if (atomic_load(&a->signalled))
    return;
  atomic_store(&a->signalled, 1);
  if (a->rfd == a->wfd)
    (void)eddy__sys_write(a->wfd, &one, sizeof one);
  else
    (void)eddy__sys_write(a->wfd, "", 1);
}

static int open_fds(eddy__async *a) {
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

static void close_fds(eddy__async *a) {
  eddy__sys_close(a->rfd);
  if (a->wfd != a->rfd)
    eddy__sys_close(a->wfd);
}

static int watch(eddy_loop *loop) {
  eddy__async *a = &loop->async;
  eddy__io_init(&a->io, a->rfd, async_cb, NULL);
  a->io.internal = 1;
  return eddy__io_start(loop, &a->io, EDDY__IO_READ);
}

int eddy__async_init(eddy_loop *loop) {
  eddy__async *a = &loop->async;
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

void eddy__async_destroy(eddy_loop *loop) {
  eddy__async *a = &loop->async;
  eddy__io_remove(loop, &a->io);
  close_fds(a);
  pthread_mutex_destroy(&a->lock);
  eddy__free(a->calls.items);
  eddy__free(a->spare.items);
}

/* After fork(): the child gets new descriptors (the parent's are shared
 * with it) and a fresh lock (another thread may have held it at fork). */
int eddy__async_fork(eddy_loop *loop) {
  eddy__async *a = &loop->async;
  eddy__async old = *a;
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
  if (a->calls.len > 0 || a->done_head)
    wake_locked(loop);
  return 0;
}

int eddy_loop_call_threadsafe(eddy_loop *loop, eddy_callback fn, void *arg) {
  eddy__async *a = &loop->async;
  int err;
  pthread_mutex_lock(&a->lock);
  err = eddy__calls_push(&a->calls, fn, arg);
  if (err == 0)
    wake_locked(loop);
  pthread_mutex_unlock(&a->lock);
  return err;
}

void eddy__async_post_work(eddy_loop *loop, eddy_work *w) {
  eddy__async *a = &loop->async;
  pthread_mutex_lock(&a->lock);
  w->next = NULL;
  if (a->done_tail)
    a->done_tail->next = w;
  else
    a->done_head = w;
  a->done_tail = w;
  wake_locked(loop);
  pthread_mutex_unlock(&a->lock);
}
