/* sink.c: an output for whole lines that never blocks the loop (the log on
 * standard error, an access log).
 *
 * Lines go into one bounded buffer (64 KiB) and are written to the
 * descriptor when it can take them. While a loop is attached, a watcher
 * writes the buffer out whenever the descriptor is writable; a line that
 * does not fit is dropped and counted. So a reader that stalls (a full
 * pipe, a paused terminal, a stuck log shipper) costs lines, never the
 * server.
 *
 * A pipe, FIFO or terminal inherited as the descriptor is reopened through
 * /proc/self/fd/N, which gives a description of our own, so that making it
 * non-blocking does not change the parent's. A regular file is written
 * directly: a disk write does not wait on a reader. A socket, or a system
 * without /proc, shares the description; its O_NONBLOCK is cleared again
 * at exit.
 *
 * Without a loop (start-up, shut-down) a write that would block waits at
 * most 100 ms for the reader, once: after a wait that ran out, the next
 * lines stay buffered until the reader moves or the loop takes over. At
 * exit what is left gets one last wait of at most a second. */
#include "app/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define WAIT_MS 100
#define EXIT_WAIT_MS 1000
#define MAX_SINKS 4

struct app_sink {
  int fd;           /* where lines go */
  int inherited;    /* the descriptor the sink was made from */
  int shared_flags; /* the flags to restore on a shared description, or -1 */
  int direct;       /* a regular file: blocking writes */
  int stalled;      /* the last wait for the reader ran out */
  size_t len;       /* bytes waiting in buf */
  unsigned long dropped;
  eddy_watch *watch; /* while a loop is attached */
  char buf[BUF_SIZE];
};

static app_sink *sinks[MAX_SINKS];
static int nsinks;

static void flush_waiting(app_sink *s, int wait_ms);

static void at_exit(void) {
  for (int i = 0; i < nsinks; i++) {
    sinks[i]->stalled = 0;
    flush_waiting(sinks[i], EXIT_WAIT_MS);
    if (sinks[i]->shared_flags >= 0)
      (void)fcntl(sinks[i]->inherited, F_SETFL, sinks[i]->shared_flags);
  }
}

/* A description of our own for fd, non-blocking, where that can be had. */
static void choose_fd(app_sink *s, int fd) {
  struct stat st;
  char path[64];
  int own, flags;
  s->fd = s->inherited = fd;
  s->shared_flags = -1;
  if (fstat(fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    s->direct = 1; /* a file, or closed: nothing ever waits */
    return;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  own = S_ISSOCK(st.st_mode) ? -1
                             : open(path, O_WRONLY | O_APPEND | O_NONBLOCK |
                                              O_CLOEXEC | O_NOCTTY);
  if (own >= 0) {
    s->fd = own;
    return;
  }
  flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK) &&
      fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0)
    s->shared_flags = flags;
}

int app_sink_open_fd(int fd, app_sink **out) {
  app_sink *s;
  if (nsinks == MAX_SINKS || (s = calloc(1, sizeof *s)) == NULL)
    return -ENOMEM;
  choose_fd(s, fd);
  if (nsinks == 0)
    atexit(at_exit);
  sinks[nsinks++] = s;
  *out = s;
  return 0;
}

int app_sink_open_path(const char *path, app_sink **out) {
  int fd, e;
  if (strcmp(path, "-") == 0)
    return app_sink_open_fd(STDOUT_FILENO, out);
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0)
    return -errno;
  if ((e = app_sink_open_fd(fd, out)) != 0)
    close(fd);
  return e;
}

/* Writes what the buffer holds, without blocking (or blocking on a regular
 * file). Returns 0, or -1 if bytes are left because the descriptor would
 * block. A descriptor that fails otherwise (the reader is gone) takes
 * nothing more: the bytes are dropped. */
static int flush_some(app_sink *s) {
  size_t done = 0;
  int rc = 0;
  while (done < s->len) {
    ssize_t n = write(s->fd, s->buf + done, s->len - done);
    if (n > 0) {
      done += (size_t)n;
      s->stalled = 0;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      rc = -1;
      break;
    } else {
      done = s->len; /* lost for good: nobody can read it */
    }
  }
  memmove(s->buf, s->buf + done, s->len - done);
  s->len -= done;
  return rc;
}

/* Without a loop: a bounded wait for the reader (see the top). */
static void flush_waiting(app_sink *s, int wait_ms) {
  struct pollfd p = {.fd = s->fd, .events = POLLOUT};
  while (s->len > 0 && flush_some(s) != 0) {
    if (s->stalled || poll(&p, 1, wait_ms) <= 0) {
      s->stalled = 1;
      return;
    }
  }
}

static void on_writable(eddy_watch *w, int events, void *arg) {
  app_sink *s = arg;
  (void)events;
  if (flush_some(s) == 0 || s->len == 0)
    (void)eddy_watch_start(w, 0);
}

/* Starts writing what is buffered, with the loop or without it. */
static void kick(app_sink *s) {
  if (s->len == 0)
    return;
  if (s->watch == NULL) {
    flush_waiting(s, WAIT_MS);
    return;
  }
  if (flush_some(s) != 0 && eddy_watch_start(s->watch, EDDY_WRITABLE) != 0)
    flush_waiting(s, 0); /* cannot watch: keep what does not go at once */
}

size_t app_sink_room(const app_sink *s) {
  return BUF_SIZE - s->len;
}

int app_sink_put(app_sink *s, const char *line, size_t len) {
  if (len > BUF_SIZE - s->len) {
    s->dropped++;
    return -1;
  }
  memcpy(s->buf + s->len, line, len);
  s->len += len;
  return 0;
}

void app_sink_flush(app_sink *s) {
  kick(s);
}

unsigned long app_sink_take_dropped(app_sink *s) {
  unsigned long n = s->dropped;
  s->dropped = 0;
  return n;
}

int app_sink_attach_all(eddy_loop *loop) {
  int err = 0;
  for (int i = 0; i < nsinks; i++) {
    app_sink *s = sinks[i];
    int e;
    if (s->direct || s->watch)
      continue;
    if ((e = eddy_watch_new(loop, s->fd, on_writable, s, &s->watch)) == 0)
      kick(s);
    else
      err = e;
  }
  return err;
}

void app_sink_detach_all(void) {
  for (int i = 0; i < nsinks; i++) {
    app_sink *s = sinks[i];
    if (s->watch == NULL)
      continue;
    eddy_watch_close(s->watch);
    s->watch = NULL;
    s->stalled = 0; /* one more bounded wait, for what is left */
    kick(s);
  }
}
