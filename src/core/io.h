/* io.h: the descriptor-watch API that the layers above the loop use.
 *
 * Trigger semantics: level-triggered. While a watched descriptor is
 * readable (or writable) and the watcher wants that event, its callback is
 * called once per loop turn. Readiness is a hint, not a promise: a read or
 * write that follows may still return EAGAIN, and callers must treat that
 * as "nothing now", never as an error.
 *
 * Fairness: each callback must do a bounded amount of work per call (read
 * at most a fixed number of bytes, accept at most a fixed number of
 * connections) and return; it is called again next turn if the descriptor
 * is still ready. One turn dispatches up to 1024 ready descriptors on epoll
 * (the kernel rotates its ready list) and every ready one on poll, so a
 * descriptor that always has data cannot starve the others.
 *
 * An error or hang-up on the descriptor is reported as every event the
 * watcher wants, so that its next read or write finds the error or EOF.
 *
 * The watcher's memory belongs to its owner, who must remove it
 * (eddy__io_remove) before closing the descriptor or freeing the watcher.
 * Removing or changing any watcher from any callback is safe: the loop
 * looks each ready descriptor up again before calling its watcher.
 */
#ifndef EDDY_CORE_IO_H
#define EDDY_CORE_IO_H

#include <stddef.h>

typedef struct eddy_loop eddy_loop;
typedef struct eddy__io eddy__io;

#define EDDY__IO_READ 1u
#define EDDY__IO_WRITE 2u

typedef void (*eddy__io_cb)(eddy_loop *loop, eddy__io *io, unsigned events);

/* Small fields first and narrow, so that the struct is 32 bytes: every
 * connection embeds one. */
struct eddy__io {
  int fd;
  unsigned char events;   /* wanted: EDDY__IO_READ | EDDY__IO_WRITE */
  unsigned char pevents;  /* registered with the backend */
  unsigned char internal; /* does not keep the loop alive (wake-up, signal
                             pipe) */
  unsigned slot;          /* the poll backend's index (there are fewer
                             watched descriptors than int can count) */
  eddy__io_cb cb;
  void *data;
};

void eddy__io_init(eddy__io *io, int fd, eddy__io_cb cb, void *data);

/* Adds events to what io wants. Returns 0, -ENOMEM, or the backend's error
 * (-EPERM for a descriptor epoll cannot watch, such as a regular file). On
 * error io's interest is unchanged. */
int eddy__io_start(eddy_loop *loop, eddy__io *io, unsigned events);

/* Removes events from what io wants; with nothing left, the descriptor is
 * no longer watched. Never fails (a backend error here means the descriptor
 * was already closed, which the owner has broken the rule above for). */
void eddy__io_stop(eddy_loop *loop, eddy__io *io, unsigned events);

/* eddy__io_stop of everything. */
void eddy__io_remove(eddy_loop *loop, eddy__io *io);

#endif
