/* stream.c: byte streams over non-blocking descriptors.
 *
 * Reading: up to four reads of 64 KiB per turn into a per-thread buffer (one
 * loop per thread, and delivered bytes are borrowed), so an idle stream
 * holds no read memory at all.
 *
 * Writing: write-through. With nothing queued, a write goes straight to the
 * kernel and only the unsent tail is copied. Queued pieces are segments:
 * copies (in blocks that later small writes fill up, so many small writes
 * coalesce), owned buffers, and file ranges for sendfile(). On writable,
 * one writev (sendmsg for sockets) sends every queued piece up to the next
 * file range.
 *
 * Ending: finish() closes the descriptors at once and puts the stream on
 * the loop's closing list; the close callback runs at the end of the turn,
 * from the loop, then the memory is freed.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/loop.h"
#include "eddy/net.h"
#include "net/net.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define READ_SIZE 65536
#define READS_PER_TURN 4
#define BLOCK_SIZE 16384
#define MAX_IOV 64

enum {
  PAUSED = 1u << 0,
  READ_EOF = 1u << 1,
  SHUT_WANTED = 1u << 2, /* shutdown once flushed */
  SHUT_DONE = 1u << 3,
  CLOSING = 1u << 4, /* close once flushed */
  DONE = 1u << 5,    /* descriptors closed; close callback pending */
  OVER_HIGH = 1u << 6,
  SOCKET = 1u << 7,
  LAYERED = 1u << 8,   /* bytes go through a layer (TLS), not descriptors */
  PAIR = 1u << 9,      /* a watcher of its own for wfd, just after the struct */
  COALESCE = 1u << 10, /* writes wait for the end of the turn */
  FLUSH_PENDING = 1u << 11, /* the end-of-turn flush is scheduled */
  IN_FLUSH = 1u << 12,      /* inside that flush */
};

typedef struct seg {
  char *base;
  size_t len, off; /* bytes in the segment; bytes already sent */
  size_t cap;      /* a copy block's capacity; 0 for other kinds */
  void (*free_fn)(void *);
  int file_fd;      /* >= 0: a sendfile range of len bytes from file_off */
  int pipe_ignored; /* SIGPIPE was ignored when the range was queued */
  off_t file_off;
} seg;

/* The fields are ordered so that no padding sits between them: a server
 * holds one of these per connection. */
struct eddy_stream {
  eddy__handle h;
  eddy__io rio; /* the socket, or the read end; with PAIR, the write end's
                   watcher follows the struct (wio()) */
  int rfd, wfd;
  unsigned flags;
  int status;
  eddy_stream_callbacks cb;
  void *arg;
  seg *segs;
  size_t head, nsegs, cap; /* live segments are segs[head, nsegs) */
  size_t buffered, low, high;
  /* Milliseconds, so that both fit where one int64_t would. */
  uint32_t linger_ms, idle_ms;
  /* One timer, two uses that never overlap: while the stream is open, the
   * idle timeout (if set); once a close waits for unsent data, the linger
   * time. */
  eddy__timer timer;
  const char *detail; /* a static string, or the layer's (freed after the
                         close callback) */
  const eddy__layer_ops *lops;
  void *layer;
  eddy__stream_watcher *watches; /* one-shot drain/end watchers */
  eddy__soon *flush; /* the end-of-turn flush, once coalescing was asked */
};

static _Thread_local char read_buf[READ_SIZE];

static void finish(eddy_stream *s, int status, const char *detail);
static void timer_expired(eddy__timer *t, void *arg);
static void touch(eddy_stream *s);
static void after_flush(eddy_stream *s);
static void on_read(eddy_loop *loop, eddy__io *io, unsigned events);
static void on_write(eddy_loop *loop, eddy__io *io, unsigned events);
static void on_io(eddy_loop *loop, eddy__io *io, unsigned events);
static void send_reset(eddy_stream *s);

/* ---- Interest ---------------------------------------------------------------- */

/* The write end's own watcher, for a pair of descriptors; NULL for a
 * socket, where rio serves both directions. */
static eddy__io *wio(eddy_stream *s) {
  return (s->flags & PAIR) ? (eddy__io *)(s + 1) : NULL;
}

static eddy__io *write_io(eddy_stream *s) {
  return (s->flags & PAIR) ? wio(s) : &s->rio;
}

/* A layered stream has no descriptors of its own; its layer stands in for
 * both directions until the stream shuts down. */
static int has_read(const eddy_stream *s) {
  return s->rfd >= 0 || (s->flags & LAYERED);
}

static int has_write(const eddy_stream *s) {
  return s->wfd >= 0 || (s->flags & (LAYERED | SHUT_DONE)) == LAYERED;
}

static int wants_read(const eddy_stream *s) {
  return has_read(s) && s->cb.data != NULL &&
         !(s->flags & (PAUSED | READ_EOF | CLOSING | DONE));
}

/* While an end-of-turn flush is due, the kernel is not asked to say the
 * socket is writable: the flush will try it. */
static int wants_write(const eddy_stream *s) {
  return has_write(s) && s->nsegs > s->head &&
         !(s->flags & (DONE | FLUSH_PENDING));
}

static int set_io(eddy_loop *loop, eddy__io *io, unsigned event, int on) {
  if (on)
    return eddy__io_start(loop, io, event);
  eddy__io_stop(loop, io, event);
  return 0;
}

/* Brings the watchers in line with the stream's state. */
static int watch(eddy_stream *s) {
  eddy_loop *loop = s->h.loop;
  int err = 0;
  if (s->flags & DONE)
    return 0;
  if (s->flags & LAYERED) {
    assert(s->rfd < 0 && s->wfd < 0);
    s->lops->want(s->layer, wants_read(s), wants_write(s));
    return 0;
  }
  if (s->rfd >= 0)
    err = set_io(loop, &s->rio, EDDY__IO_READ, wants_read(s));
  if (err == 0 && s->wfd >= 0)
    err = set_io(loop, write_io(s), EDDY__IO_WRITE, wants_write(s));
  return err;
}

/* The same; a failure (the watcher table could not grow) ends the stream,
 * which could never make progress. */
static void update(eddy_stream *s) {
  int err = watch(s);
  if (err)
    finish(s, err, NULL);
}

/* ---- Creation ------------------------------------------------------------------ */

static int is_socket(int fd) {
  struct stat st;
  return eddy__sys_fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int is_tcp(int fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (eddy__sys_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
    return 0;
  return domain == AF_INET || domain == AF_INET6;
}

static void stream_close_handle(eddy__handle *h) {
  eddy_stream_abort((eddy_stream *)h);
}

/* Tells each watcher, removed first, that s drained (ended 0) or ended.
 * A drain pass stops when s is over its high watermark again or done: a
 * watcher added by a callback of this pass waits for the next drain. */
static void notify_watches(eddy_stream *s, int ended) {
  eddy__stream_watcher *w;
  while ((w = s->watches) != NULL) {
    if (!ended && (s->flags & (OVER_HIGH | DONE)))
      return;
    eddy__stream_unwatch(s, w);
    w->fn(w, ended, s->status, s->detail);
  }
}

void eddy__stream_watch(eddy_stream *s, eddy__stream_watcher *w) {
  w->prev = NULL;
  w->next = s->watches;
  if (s->watches)
    s->watches->prev = w;
  s->watches = w;
}

void eddy__stream_unwatch(eddy_stream *s, eddy__stream_watcher *w) {
  if (w->prev)
    w->prev->next = w->next;
  else if (s->watches == w)
    s->watches = w->next;
  else
    return; /* not watching */
  if (w->next)
    w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

static void stream_finalize(eddy__handle *h) {
  eddy_stream *s = (eddy_stream *)h;
  notify_watches(s, 1);
  if (s->cb.close)
    s->cb.close(s, s->status, s->detail, s->arg);
  if (s->flags & LAYERED)
    s->lops->release(s->layer);
}

static void close_fds(int rfd, int wfd) {
  if (rfd >= 0)
    eddy__sys_close(rfd);
  if (wfd >= 0 && wfd != rfd)
    eddy__sys_close(wfd);
}

static int prepare_fd(int fd) {
  return fd < 0 ? 0 : eddy__sys_set_nonblock_cloexec(fd);
}

/* A stream not yet watching its descriptors, or NULL. */
static eddy_stream *stream_alloc(eddy_loop *loop, int rfd, int wfd,
                                 unsigned flags) {
  /* A pair needs a second watcher; a socket (most streams) does not, and
   * an idle connection is only this struct. */
  size_t extra = rfd != wfd ? sizeof(eddy__io) : 0;
  eddy_stream *s = eddy__calloc(1, sizeof *s + extra);
  if (s == NULL)
    return NULL;
  eddy__handle_init(loop, &s->h, stream_close_handle);
  s->h.finalize = stream_finalize;
  s->rfd = rfd;
  s->wfd = wfd;
  s->flags = flags;
  s->low = 16384;
  s->high = 65536;
  s->linger_ms = 30000;
  eddy__timer_init(loop, &s->timer, timer_expired, s);
  eddy__io_init(&s->rio, rfd, rfd == wfd ? on_io : on_read, s);
  if (extra) {
    s->flags |= PAIR;
    eddy__io_init(wio(s), wfd, on_write, s);
  }
  return s;
}

/* Builds a stream on descriptors already non-blocking and close-on-exec.
 * On failure the descriptors are closed. */
static int stream_new(eddy_loop *loop, int rfd, int wfd, unsigned flags,
                      const eddy_stream_callbacks *cb, void *arg,
                      eddy_stream **out) {
  eddy_stream *s = stream_alloc(loop, rfd, wfd, flags);
  int err;
  if (s == NULL) {
    close_fds(rfd, wfd);
    return -ENOMEM;
  }
  if (cb)
    s->cb = *cb;
  s->arg = arg;
  err = watch(s);
  if (err) {
    /* Never handed out, so no close callback: just release it. */
    s->cb.close = NULL;
    finish(s, err, NULL);
    return err;
  }
  *out = s;
  return 0;
}

int eddy__stream_layer(eddy_stream *s, const eddy__layer_ops *ops, void *layer,
                       eddy_stream **lower) {
  eddy_loop *loop = s->h.loop;
  eddy_stream *low;
  if (s->flags & LAYERED)
    return -EALREADY;
  if (s->flags & (CLOSING | DONE | SHUT_WANTED | SHUT_DONE | READ_EOF) ||
      s->rfd < 0 || s->wfd < 0)
    return EDDY_ECLOSED;
  if ((low = stream_alloc(loop, s->rfd, s->wfd, s->flags & SOCKET)) == NULL)
    return -ENOMEM;
  /* The descriptors, and the bytes queued before the switch (which go out
   * as they were written, ahead of anything the layer sends), move to the
   * new lower stream; s keeps its callbacks, flags and watermarks. */
  eddy__io_remove(loop, &s->rio);
  if (s->flags & PAIR)
    eddy__io_remove(loop, wio(s));
  low->segs = s->segs;
  low->head = s->head;
  low->nsegs = s->nsegs;
  low->cap = s->cap;
  low->buffered = s->buffered;
  low->low = s->low;
  low->high = s->high;
  low->linger_ms = s->linger_ms;
  /* A program waiting for drain still gets it, once the transport has
   * sent what was queued (eddy__stream_layer_drained). */
  low->flags |= s->flags & OVER_HIGH;
  s->segs = NULL;
  s->head = s->nsegs = s->cap = s->buffered = 0;
  s->rfd = s->wfd = -1;
  s->flags = (s->flags & ~SOCKET) | LAYERED;
  s->lops = ops;
  s->layer = layer;
  *lower = low;
  (void)watch(s); /* tells the layer what s wants */
  return 0;
}

void *eddy__stream_layer_of(const eddy_stream *s, const eddy__layer_ops *ops) {
  return (s->flags & LAYERED) && s->lops == ops ? s->layer : NULL;
}

void eddy__stream_fail(eddy_stream *s, int status, const char *detail) {
  finish(s, status, detail);
}

void eddy__stream_layer_drained(eddy_stream *s) {
  if ((s->flags & (OVER_HIGH | DONE)) == OVER_HIGH && s->buffered <= s->low)
    after_flush(s);
}

int64_t eddy__stream_linger(const eddy_stream *s) {
  return (int64_t)s->linger_ms * EDDY_NSEC_PER_MSEC;
}

void *eddy__stream_arg(const eddy_stream *s) {
  return s->arg;
}

int eddy__stream_closing(const eddy_stream *s) {
  return (s->flags & (CLOSING | DONE)) != 0;
}

int eddy__stream_adopt(eddy_loop *loop, int fd, int tcp, eddy_stream **out) {
  int err = stream_new(loop, fd, fd, SOCKET, NULL, NULL, out);
  if (err == 0 && tcp)
    (void)eddy_stream_set_nodelay(*out, 1);
  return err;
}

int eddy_stream_open_pair(eddy_loop *loop, int rfd, int wfd,
                          const eddy_stream_callbacks *cb, void *arg,
                          eddy_stream **out) {
  int err = (rfd < 0 && wfd < 0) ? -EBADF : prepare_fd(rfd);
  if (err == 0 && wfd != rfd)
    err = prepare_fd(wfd);
  if (err) {
    close_fds(rfd, wfd);
    return err;
  }
  return stream_new(loop, rfd, wfd, rfd == wfd && is_socket(rfd) ? SOCKET : 0u,
                    cb, arg, out);
}

int eddy_stream_open(eddy_loop *loop, int fd, const eddy_stream_callbacks *cb,
                     void *arg, eddy_stream **out) {
  int err;
  if (fd < 0)
    return -EBADF;
  err = eddy_stream_open_pair(loop, fd, fd, cb, arg, out);
  if (err == 0 && ((*out)->flags & SOCKET) && is_tcp(fd))
    (void)eddy_stream_set_nodelay(*out, 1);
  return err;
}

void eddy_stream_set_callbacks(eddy_stream *s, const eddy_stream_callbacks *cb,
                               void *arg) {
  static const eddy_stream_callbacks none;
  s->cb = cb ? *cb : none;
  s->arg = arg;
  update(s);
}

/* ---- The write queue ------------------------------------------------------------- */

static void seg_release(seg *g) {
  if (g->free_fn)
    g->free_fn(g->base);
}

static void queue_free(eddy_stream *s) {
  for (size_t i = s->head; i < s->nsegs; i++)
    seg_release(&s->segs[i]);
  eddy__free(s->segs);
  s->segs = NULL;
  s->head = s->nsegs = s->cap = 0;
  s->buffered = 0;
}

static seg *seg_push(eddy_stream *s) {
  void *arr = s->segs;
  assert(s->head <= s->nsegs && s->nsegs <= s->cap);
  if (s->head > 0 && s->nsegs == s->cap) {
    memmove(s->segs, s->segs + s->head, (s->nsegs - s->head) * sizeof(seg));
    s->nsegs -= s->head;
    s->head = 0;
  }
  if (eddy__grow(&arr, &s->cap, s->nsegs + 1, sizeof(seg)))
    return NULL;
  s->segs = arr;
  memset(&s->segs[s->nsegs], 0, sizeof(seg));
  s->segs[s->nsegs].file_fd = -1;
  return &s->segs[s->nsegs++];
}

/* Makes room for need more bytes at the tail of the queue: the last copy
 * block if it has the room (an owned buffer or a file range never does),
 * else a new block. Returns the block's segment, or NULL (-ENOMEM) with
 * nothing changed, so that a write is queued whole or not at all. */
static seg *reserve(eddy_stream *s, size_t need) {
  seg *last = s->nsegs > s->head ? &s->segs[s->nsegs - 1] : NULL;
  size_t cap = need > BLOCK_SIZE ? need : BLOCK_SIZE;
  char *block;
  if (last && last->cap > 0 && last->cap - last->len >= need) {
    assert(last->file_fd < 0 && last->len <= last->cap);
    return last;
  }
  if ((block = eddy__malloc(cap)) == NULL)
    return NULL;
  if ((last = seg_push(s)) == NULL) {
    eddy__free(block);
    return NULL;
  }
  last->base = block;
  last->cap = cap;
  last->free_fn = eddy__free;
  return last;
}

static void append(eddy_stream *s, seg *g, const char *p, size_t len) {
  assert(g->cap - g->len >= len); /* reserve() made the room */
  memcpy(g->base + g->len, p, len);
  g->len += len;
  s->buffered += len;
}

/* Drops n sent bytes from the head of the queue: never more than it holds,
 * since the kernel or the layer took them from its segments. */
static void consume(eddy_stream *s, size_t n) {
  assert(n <= s->buffered);
  s->buffered -= n;
  while (n > 0) {
    seg *g = &s->segs[s->head];
    size_t left;
    assert(s->head < s->nsegs && g->off < g->len);
    left = g->len - g->off;
    size_t take = n < left ? n : left;
    g->off += take;
    n -= take;
    if (g->off == g->len) {
      seg_release(g);
      s->head++;
    }
  }
  if (s->head == s->nsegs) {
    assert(s->buffered == 0); /* every queued byte is in a live segment */
    s->head = s->nsegs = 0;
  }
}

/* ---- Sending ----------------------------------------------------------------------- */

static ssize_t send_iov(eddy_stream *s, struct iovec *iov, int n) {
  if (s->flags & LAYERED)
    return s->lops->send(s->layer, iov, n);
  if (s->flags & SOCKET) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return eddy__sys_sendmsg(s->wfd, &m, MSG_NOSIGNAL);
  }
  return eddy__sys_writev(s->wfd, iov, n);
}

/* A layer (TLS) must see the file's bytes: they are read into a buffer of
 * their own, since a sendfile() called from a data callback must not
 * overwrite the bytes that callback is still looking at. */
static ssize_t send_file_layered(eddy_stream *s, seg *g, off_t off) {
  static _Thread_local char file_buf[READ_SIZE];
  size_t want = g->len - g->off < READ_SIZE ? g->len - g->off : READ_SIZE;
  struct iovec iov;
  ssize_t n = eddy__sys_pread(g->file_fd, file_buf, want, off);
  if (n <= 0)
    return n;
  iov.iov_base = file_buf;
  iov.iov_len = (size_t)n;
  return s->lops->send(s->layer, &iov, 1);
}

/* sendfile() has no MSG_NOSIGNAL: on a socket whose peer is gone it would
 * raise SIGPIPE. Unless the program ignores the signal (as servers do:
 * then the three calls this costs are saved), it is blocked around the
 * call, and one it raised is taken back before the mask is restored. */
static ssize_t send_file(eddy_stream *s, seg *g, off_t *off) {
  sigset_t pipe_set, old, pending;
  ssize_t n;
  int was_pending;
  if (s->flags & LAYERED)
    return send_file_layered(s, g, *off);
  if (!(s->flags & SOCKET) || g->pipe_ignored)
    return eddy__sys_sendfile(s->wfd, g->file_fd, off, g->len - g->off);
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  n = eddy__sys_sendfile(s->wfd, g->file_fd, off, g->len - g->off);
  if (n == -EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return n;
}

/* One system call's worth of the queue. Returns 0 or a fatal error. */
static int flush_once(eddy_stream *s) {
  seg *g;
  ssize_t n;
  assert(s->head < s->nsegs); /* callers flush a queue that holds bytes */
  g = &s->segs[s->head];
  if (g->file_fd >= 0) {
    off_t off = g->file_off + (off_t)g->off;
    n = send_file(s, g, &off);
    if (n == 0)
      return -EIO; /* the file is shorter than promised */
  } else {
    struct iovec iov[MAX_IOV];
    int k = 0;
    for (size_t i = s->head; i < s->nsegs && k < MAX_IOV; i++) {
      if (s->segs[i].file_fd >= 0)
        break;
      iov[k].iov_base = s->segs[i].base + s->segs[i].off;
      iov[k++].iov_len = s->segs[i].len - s->segs[i].off;
    }
    n = send_iov(s, iov, k);
  }
  if (n == -EAGAIN)
    return 0;
  if (n < 0)
    return (int)n;
  consume(s, (size_t)n);
  touch(s);
  return 0;
}

/* The end of the turn for a coalescing stream: what its writes queued goes
 * in one system call (and the rest as the socket takes it). */
static void turn_flush(eddy__soon *c, void *arg) {
  eddy_stream *s = arg;
  int err = 0;
  (void)c;
  s->flags = (s->flags & ~FLUSH_PENDING) | IN_FLUSH;
  if (!(s->flags & DONE) && s->nsegs > s->head && has_write(s))
    err = flush_once(s);
  if (err)
    finish(s, err, err == -EIO ? "the file to send ended early" : NULL);
  else if (!(s->flags & DONE))
    after_flush(s);
  s->flags &= ~IN_FLUSH;
  if (s->flags & DONE) { /* finish left the flush to be freed here */
    eddy__free(s->flush);
    s->flush = NULL;
  }
}

static void on_write(eddy_loop *loop, eddy__io *io, unsigned events) {
  eddy_stream *s = io->data;
  int err;
  (void)loop;
  (void)events;
  if (s->nsegs == s->head)
    return;
  err = flush_once(s);
  if (err) {
    finish(s, err, err == -EIO ? "the file to send ended early" : NULL);
    return;
  }
  after_flush(s);
}

static void do_shutdown(eddy_stream *s) {
  s->flags = (s->flags & ~SHUT_WANTED) | SHUT_DONE;
  if (s->flags & LAYERED) {
    int err = s->lops->shutdown(s->layer);
    if (err)
      finish(s, err, NULL);
    return;
  }
  if (s->wfd == s->rfd) {
    (void)eddy__sys_shutdown(s->wfd, SHUT_WR);
    return;
  }
  eddy__io_remove(s->h.loop, wio(s));
  eddy__sys_close(s->wfd);
  s->wfd = -1;
}

/* What follows progress on the queue: drain, shutdown, close. */
static void after_flush(eddy_stream *s) {
  int empty = s->nsegs == s->head;
  if ((s->flags & OVER_HIGH) && s->buffered <= s->low) {
    s->flags &= ~OVER_HIGH;
    if (s->cb.drain)
      s->cb.drain(s, s->arg);
    notify_watches(s, 0);
    if (s->flags & DONE)
      return;
    empty = s->nsegs == s->head;
  }
  if (empty && (s->flags & CLOSING)) {
    finish(s, 0, NULL);
    return;
  }
  if (empty && (s->flags & SHUT_WANTED)) {
    do_shutdown(s);
    if (s->flags & DONE)
      return;
    if ((s->flags & READ_EOF) || !has_read(s)) { /* nothing left either way */
      finish(s, 0, NULL);
      return;
    }
  }
  update(s);
}

static int writable(const eddy_stream *s) {
  if (s->flags & (CLOSING | DONE | SHUT_WANTED | SHUT_DONE))
    return EDDY_ECLOSED;
  return has_write(s) ? 0 : -EBADF;
}

/* Tries the system call with nothing queued. Returns bytes taken (0 on
 * EAGAIN) or a fatal error. A coalescing stream takes nothing now: its
 * flush at the end of the turn sends what the turn wrote, together. */
static ssize_t write_through(eddy_stream *s, const struct iovec *iov, int n) {
  ssize_t r;
  if (s->flags & COALESCE) {
    if (!(s->flags & FLUSH_PENDING)) {
      s->flags |= FLUSH_PENDING;
      eddy__soon_schedule(s->h.loop, s->flush);
    }
    return 0;
  }
  if (s->nsegs > s->head)
    return 0;
  r = send_iov(s, (struct iovec *)iov, n > MAX_IOV ? MAX_IOV : n);
  if (r > 0)
    touch(s);
  return r == -EAGAIN ? 0 : r;
}

/* Queues what write_through left, then updates flow control. Returns 0,
 * -ENOMEM (nothing queued), or the error that ended the stream. */
static int queue_rest(eddy_stream *s, const struct iovec *iov, int n,
                      size_t sent) {
  size_t need = 0, skip = sent;
  seg *g;
  for (int i = 0; i < n; i++)
    need += iov[i].iov_len;
  assert(sent <= need); /* write_through sent part of these very bytes */
  need -= sent;
  if (need > 0) {
    if ((g = reserve(s, need)) == NULL)
      return -ENOMEM;
    for (int i = 0; i < n; i++) {
      size_t len = iov[i].iov_len;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      append(s, g, (const char *)iov[i].iov_base + skip, len - skip);
      skip = 0;
    }
  }
  if (s->buffered > s->high)
    s->flags |= OVER_HIGH;
  update(s);
  return (s->flags & DONE) ? s->status : 0;
}

int eddy_stream_writev(eddy_stream *s, const struct iovec *iov, int n) {
  ssize_t sent;
  int err = writable(s);
  if (err)
    return err;
  sent = write_through(s, iov, n);
  if (sent < 0) {
    finish(s, (int)sent, NULL);
    return (int)sent;
  }
  err = queue_rest(s, iov, n, (size_t)sent);
  if (err && sent > 0) {
    /* Part is gone, the rest could not be kept: the byte stream would
     * have a hole, so the stream ends. */
    finish(s, err, "out of memory while buffering a write");
  }
  return err;
}

int eddy_stream_write(eddy_stream *s, const void *data, size_t len) {
  struct iovec iov = {(void *)data, len};
  return eddy_stream_writev(s, &iov, 1);
}

int eddy_stream_write_owned(eddy_stream *s, void *data, size_t len,
                            void (*free_fn)(void *)) {
  struct iovec iov = {data, len};
  ssize_t sent;
  seg *g;
  int err = writable(s);
  if (err == 0) {
    sent = write_through(s, &iov, 1);
    if (sent < 0) {
      finish(s, (int)sent, NULL);
      err = (int)sent;
    } else if ((size_t)sent < len) {
      if ((g = seg_push(s)) == NULL) {
        err = -ENOMEM;
        if (sent > 0)
          finish(s, err, "out of memory while buffering a write");
      } else {
        g->base = data;
        g->len = len;
        g->off = (size_t)sent;
        g->free_fn = free_fn;
        s->buffered += len - (size_t)sent;
        if (s->buffered > s->high)
          s->flags |= OVER_HIGH;
        update(s);
        return (s->flags & DONE) ? s->status : 0;
      }
    }
  }
  if (free_fn)
    free_fn(data);
  return err;
}

/* An owned file range's free function: its base holds the descriptor. */
static void close_owned(void *base) {
  (void)eddy__sys_close((int)(intptr_t)base);
}

static int send_file_range(eddy_stream *s, int fd, off_t offset, size_t len,
                           int owned) {
  seg *g;
  int err = writable(s);
  if (err == 0 && (fd < 0 || offset < 0))
    err = -EINVAL;
  if (err == 0 && len > 0 && (g = seg_push(s)) == NULL)
    err = -ENOMEM;
  if (err || len == 0) {
    if (owned && fd >= 0)
      (void)eddy__sys_close(fd);
    return err;
  }
  g->file_fd = fd;
  g->file_off = offset;
  g->len = len;
  {
    struct sigaction sa;
    g->pipe_ignored = sigaction(SIGPIPE, NULL, &sa) == 0 &&
                      sa.sa_handler == SIG_IGN;
  }
  if (owned) {
    g->base = (char *)(intptr_t)fd;
    g->free_fn = close_owned;
  }
  s->buffered += len;
  if (s->nsegs - s->head == 1 && (err = flush_once(s)) != 0) {
    finish(s, err, err == -EIO ? "the file to send ended early" : NULL);
    return err;
  }
  if (s->buffered > s->high)
    s->flags |= OVER_HIGH;
  update(s);
  return (s->flags & DONE) ? s->status : 0;
}

int eddy_stream_sendfile(eddy_stream *s, int fd, off_t offset, size_t len) {
  return send_file_range(s, fd, offset, len, 0);
}

int eddy_stream_sendfile_owned(eddy_stream *s, int fd, off_t offset,
                               size_t len) {
  return send_file_range(s, fd, offset, len, 1);
}

/* ---- Reading ------------------------------------------------------------------------ */

static void on_eof(eddy_stream *s) {
  s->flags |= READ_EOF;
  touch(s);
  if (s->cb.eof == NULL) {
    eddy_stream_close(s);
    return;
  }
  s->cb.eof(s, s->arg);
  if (s->flags & DONE)
    return;
  if ((s->flags & SHUT_DONE) || !has_write(s)) /* nothing left either way */
    finish(s, 0, NULL);
  else
    update(s);
}

/* Reads while each read fills the buffer (more is likely waiting), up to
 * READS_PER_TURN reads: a busy stream saves a trip through the poller per
 * 64 KiB, and still cannot hold the loop. */
static void on_read(eddy_loop *loop, eddy__io *io, unsigned events) {
  eddy_stream *s = io->data;
  ssize_t n = READ_SIZE;
  (void)loop;
  (void)events;
  /* A data callback may hand the stream to a layer (STARTTLS): then the
   * descriptor belongs to the new lower stream, which reads from now on. */
  for (int i = 0; i < READS_PER_TURN && n == READ_SIZE && wants_read(s) &&
                  !(s->flags & LAYERED);
       i++) {
    if (s->flags & SOCKET)
      n = eddy__sys_recv(s->rfd, read_buf, READ_SIZE, 0);
    else
      n = eddy__sys_read(s->rfd, read_buf, READ_SIZE);
    if (n > 0) {
      touch(s);
      s->cb.data(s, read_buf, (size_t)n, s->arg);
    } else if (n == 0)
      on_eof(s);
    else if (n != -EAGAIN)
      finish(s, (int)n, NULL);
  }
}

/* A layer's reads are bounded by what its transport delivered, so they go
 * on until the layer has nothing more (or the stream pauses or ends). */
static void on_read_layered(eddy_stream *s) {
  /* Not read_buf: the layer's own input may be lying there, lent by the
   * transport's read. */
  static _Thread_local char layer_buf[READ_SIZE];
  while (wants_read(s)) {
    ssize_t n = s->lops->recv(s->layer, layer_buf, READ_SIZE);
    if (n > 0) {
      touch(s);
      s->cb.data(s, layer_buf, (size_t)n, s->arg);
    } else if (n == 0)
      on_eof(s);
    else if (n == -EAGAIN)
      return;
    else
      finish(s, (int)n, NULL);
  }
}

void eddy__stream_layer_ready(eddy_stream *s, unsigned events) {
  assert(s->flags & LAYERED);
  /* No watcher will call again: send until the layer takes no more (it
   * says when it can, as a descriptor's watcher would) or all is gone. */
  while ((events & EDDY__IO_WRITE) && wants_write(s)) {
    size_t before = s->buffered;
    on_write(s->h.loop, &s->rio, events);
    if (s->buffered == before)
      break;
  }
  if ((events & EDDY__IO_READ) && !(s->flags & DONE))
    on_read_layered(s);
}

/* One watcher for a socket: write first (so that a closing stream's last
 * bytes go before a read could end it), then read. */
static void on_io(eddy_loop *loop, eddy__io *io, unsigned events) {
  eddy_stream *s = io->data;
  if (events & EDDY__IO_WRITE) {
    on_write(loop, io, events);
    if (s->flags & DONE)
      return;
  }
  if (events & EDDY__IO_READ)
    on_read(loop, io, events);
}

/* ---- Ending --------------------------------------------------------------------------- */

static void finish(eddy_stream *s, int status, const char *detail) {
  if (s->flags & DONE)
    return;
  s->flags |= DONE;
  if (detail == NULL && status != 0 && (s->flags & LAYERED))
    detail = s->lops->detail(s->layer, status);
  if (s->flags & LAYERED)
    s->lops->finish(s->layer, status);
  if (s->rfd >= 0)
    eddy__io_remove(s->h.loop, &s->rio);
  if (s->wfd >= 0 && s->wfd != s->rfd)
    eddy__io_remove(s->h.loop, wio(s));
  close_fds(s->rfd, s->wfd);
  s->rfd = s->wfd = -1;
  queue_free(s);
  eddy__timer_stop(&s->timer);
  if (s->flush && !(s->flags & IN_FLUSH)) {
    eddy__soon_cancel(s->flush);
    eddy__free(s->flush);
    s->flush = NULL;
  }
  s->status = status;
  if (detail == NULL)
    detail = status == 0 ? "closed" : eddy_strerror(status);
  s->detail = detail;
  eddy__handle_close(&s->h);
}

/* A closing stream's linger time is over; or an open one has been idle
 * for its timeout (its peer learns by a reset only if bytes were left
 * unsent: otherwise by an orderly close). */
static void timer_expired(eddy__timer *t, void *arg) {
  eddy_stream *s = arg;
  (void)t;
  if (s->flags & CLOSING) {
    send_reset(s);
    finish(s, -ETIMEDOUT, "linger time expired with data unsent");
    return;
  }
  if (s->buffered > 0)
    send_reset(s);
  finish(s, -ETIMEDOUT, "idle timeout: no bytes moved either way");
}

/* Bytes moved: the idle timeout starts again. Lazily: the timer is moved
 * only once its deadline lags the new one by 1/64 of the timeout, so a
 * busy stream touches the timer heap a few times per timeout, not once per
 * read. */
static void touch(eddy_stream *s) {
  int64_t idle, due;
  if (s->idle_ms == 0 || (s->flags & CLOSING))
    return;
  idle = (int64_t)s->idle_ms * EDDY_NSEC_PER_MSEC;
  due = eddy_loop_now(s->h.loop) + idle;
  if (due - eddy__timer_deadline(&s->timer) > idle / 64)
    (void)eddy__timer_start(&s->timer, idle);
}

void eddy_stream_close(eddy_stream *s) {
  if (s->flags & (CLOSING | DONE))
    return;
  s->flags |= CLOSING;
  if (s->nsegs == s->head || !has_write(s)) {
    finish(s, 0, NULL);
    return;
  }
  update(s);
  if (s->flags & DONE)
    return;
  /* Only a heap that cannot grow fails this: then no linger limit,
   * rather than no close. */
  (void)eddy__timer_start(&s->timer,
                          (int64_t)s->linger_ms * EDDY_NSEC_PER_MSEC);
}

/* SO_LINGER with a zero time: close() sends a reset, not a FIN. */
static void send_reset(eddy_stream *s) {
  struct linger l = {1, 0};
  if ((s->flags & SOCKET) && s->rfd >= 0)
    (void)eddy__sys_setsockopt(s->rfd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void eddy_stream_abort(eddy_stream *s) {
  if (s->flags & DONE)
    return;
  send_reset(s);
  finish(s, -ECONNABORTED, "aborted");
}

int eddy_stream_shutdown(eddy_stream *s) {
  int err = writable(s);
  if (err)
    return err;
  s->flags |= SHUT_WANTED;
  if (s->nsegs == s->head)
    after_flush(s);
  return 0;
}

/* ---- Flow control and options ---------------------------------------------------------- */

size_t eddy_stream_buffered(const eddy_stream *s) {
  eddy_stream *low = (s->flags & LAYERED) ? s->lops->lower(s->layer) : NULL;
  return s->buffered + (low ? eddy_stream_buffered(low) : 0);
}

int eddy_stream_over_high(const eddy_stream *s) {
  return s->buffered > s->high;
}

int eddy_stream_set_watermarks(eddy_stream *s, size_t low, size_t high) {
  if (low > high)
    return -EINVAL;
  s->low = low;
  s->high = high;
  if (s->buffered > high)
    s->flags |= OVER_HIGH;
  return 0;
}

void eddy_stream_pause(eddy_stream *s) {
  s->flags |= PAUSED;
  update(s);
}

void eddy_stream_resume(eddy_stream *s) {
  s->flags &= ~PAUSED;
  update(s);
}

/* Nanoseconds to whole milliseconds, rounded up: a bound is never cut
 * short. -EINVAL if negative or beyond 49 days. */
static int to_ms(int64_t ns, uint32_t *ms) {
  if (ns < 0 || ns / EDDY_NSEC_PER_MSEC >= UINT32_MAX)
    return -EINVAL;
  *ms = (uint32_t)((ns + EDDY_NSEC_PER_MSEC - 1) / EDDY_NSEC_PER_MSEC);
  return 0;
}

int eddy_stream_set_linger(eddy_stream *s, int64_t linger_ns) {
  return to_ms(linger_ns, &s->linger_ms);
}

int eddy_stream_set_timeout(eddy_stream *s, int64_t idle_ns) {
  int err = to_ms(idle_ns, &s->idle_ms);
  if (err || (s->flags & (CLOSING | DONE)))
    return err;
  if (s->idle_ms == 0) {
    eddy__timer_stop(&s->timer);
    return 0;
  }
  return eddy__timer_start(&s->timer, (int64_t)s->idle_ms * EDDY_NSEC_PER_MSEC);
}

static int tcp_option(eddy_stream *s, int level, int name, int value) {
  if (s->flags & LAYERED) {
    eddy_stream *low = s->lops->lower(s->layer);
    return low ? tcp_option(low, level, name, value) : -ENOTSUP;
  }
  if (!(s->flags & SOCKET) || s->rfd < 0)
    return -ENOTSUP;
  return eddy__sys_setsockopt(s->rfd, level, name, &value, sizeof value);
}

int eddy_stream_set_coalesce(eddy_stream *s, int on) {
  if (!on) {
    s->flags &= ~COALESCE; /* a flush already due still runs */
    return 0;
  }
  if (s->flags & DONE)
    return EDDY_ECLOSED;
  if (s->flush == NULL) {
    if ((s->flush = eddy__malloc(sizeof *s->flush)) == NULL)
      return -ENOMEM;
    eddy__soon_init(s->flush, turn_flush, s);
  }
  s->flags |= COALESCE;
  return 0;
}

int eddy_stream_set_nodelay(eddy_stream *s, int on) {
  return tcp_option(s, IPPROTO_TCP, TCP_NODELAY, on != 0);
}

int eddy_stream_set_keepalive(eddy_stream *s, int idle_s) {
  int err;
  if (idle_s < 0)
    return -EINVAL;
  err = tcp_option(s, SOL_SOCKET, SO_KEEPALIVE, idle_s > 0);
  if (err == 0 && idle_s > 0)
    err = tcp_option(s, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
  return err;
}

int eddy_stream_fd(const eddy_stream *s) {
  if (s->flags & LAYERED) {
    eddy_stream *low = s->lops->lower(s->layer);
    return low ? eddy_stream_fd(low) : -1;
  }
  return s->rfd >= 0 ? s->rfd : s->wfd;
}

eddy_loop *eddy_stream_loop(const eddy_stream *s) {
  return s->h.loop;
}

int eddy_stream_peer_name(const eddy_stream *s, char *buf, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int err;
  if (s->flags & LAYERED) {
    eddy_stream *low = s->lops->lower(s->layer);
    if (low)
      return eddy_stream_peer_name(low, buf, len);
    snprintf(buf, len, "closed");
    return 0;
  }
  if (!(s->flags & SOCKET) || s->rfd < 0) {
    snprintf(buf, len, "pipe");
    return 0;
  }
  err = eddy__sys_getpeername(s->rfd, (struct sockaddr *)&ss, &sl);
  if (err)
    return err;
  return eddy__sockaddr_format((struct sockaddr *)&ss, sl, buf, len);
}
