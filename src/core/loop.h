/* loop.h: the loop's internals, shared by the files of src/core and by the
 * layers above (through io.h). Nothing here is public API. */
#ifndef EDDY_CORE_LOOP_H
#define EDDY_CORE_LOOP_H

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "core/io.h"
#include "sys/sys.h"
#include "eddy/core.h"

/* ---- Handles --------------------------------------------------------------
 *
 * Every handle starts with an eddy__handle. Closing unlinks it from the
 * loop's open list and puts it on the closing list; the loop frees closing
 * handles at the end of each turn, after every callback of the turn has
 * returned, which is what makes close safe from any callback. */

#define EDDY__HANDLE_CLOSING 1u
/* Part of another handle (a stream's linger timer): closed by its owner,
 * never by eddy_loop_close_all, which could otherwise free it while the
 * owner still needs it on a later turn. */
#define EDDY__HANDLE_OWNED 2u

typedef struct eddy__handle eddy__handle;
struct eddy__handle {
  eddy_loop *loop;
  eddy__handle *prev, *next; /* the loop's open handles */
  eddy__handle *next_closing;
  unsigned flags;
  void (*close)(eddy__handle *h); /* the type's public close (close_all) */
  /* Called at the end of the turn, just before the memory is freed: where a
   * stream calls its close callback. May be NULL. */
  void (*finalize)(eddy__handle *h);
};

void eddy__handle_init(eddy_loop *loop, eddy__handle *h,
                       void (*close)(eddy__handle *h));
/* Moves h to the closing list; it is freed at the end of the turn. Returns
 * 0, or 1 if h was already closing (the caller then does nothing more). */
int eddy__handle_close(eddy__handle *h);

/* ---- Backends ------------------------------------------------------------- */

typedef struct eddy__backend_ops {
  const char *name;
  int (*init)(eddy_loop *loop);
  void (*destroy)(eddy_loop *loop);
  /* Sets the interest of io to events (0 removes it) and io->pevents. */
  int (*update)(eddy_loop *loop, eddy__io *io, unsigned events);
  /* Waits at most timeout_ms (-1: no limit) and dispatches what is ready.
   * Returns 0 (EINTR included: the caller recomputes its timeout) or a
   * negative code. */
  int (*wait)(eddy_loop *loop, int timeout_ms);
  /* After fork(): a new kernel object, every watcher registered again. */
  int (*reinit)(eddy_loop *loop);
} eddy__backend_ops;

extern const eddy__backend_ops eddy__epoll_ops;
extern const eddy__backend_ops eddy__poll_ops;

/* Calls the watcher of fd, if there is one and it still wants one of the
 * events; events may include both EDDY__IO_READ and EDDY__IO_WRITE for an
 * error or hang-up. Backends call this for each ready descriptor. */
void eddy__io_dispatch(eddy_loop *loop, int fd, unsigned events);

/* ---- Timer heap ------------------------------------------------------------
 * A 4-ary min-heap in one array, ordered by (deadline, seq): the key is kept
 * next to the pointer, so sifting never touches a timer's memory except to
 * record its new slot. */

typedef struct eddy__heap_entry {
  int64_t deadline;
  uint64_t seq;
  eddy_timer *timer;
} eddy__heap_entry;

void eddy__timers_run(eddy_loop *loop);
/* Marks a timer as part of another handle (see EDDY__HANDLE_OWNED). */
void eddy__timer_owned(eddy_timer *t);
void eddy__timers_free(eddy_loop *loop);

/* ---- Call soon ------------------------------------------------------------- */

typedef struct eddy__call {
  eddy_callback fn;
  void *arg;
} eddy__call;

typedef struct eddy__calls {
  eddy__call *items;
  size_t len, cap;
} eddy__calls;

int eddy__calls_push(eddy__calls *q, eddy_callback fn, void *arg);
/* Runs the calls of q in order; q is emptied first (into spare, whose
 * storage is swapped in), so calls queued by the callbacks wait for the
 * next run. */
void eddy__calls_run(eddy_loop *loop, eddy__calls *q, eddy__calls *spare);

/* ---- Cross-thread wake-up (async.c) ---------------------------------------- */

typedef struct eddy__async {
  pthread_mutex_t lock;
  int rfd, wfd;             /* eventfd twice, or a pipe */
  eddy__io io;
  atomic_int signalled;     /* 1 while a wake-up is pending */
  eddy__calls calls, spare; /* guarded by lock */
  eddy_work *done_head, *done_tail; /* finished work, guarded by lock */
} eddy__async;

int eddy__async_init(eddy_loop *loop);
void eddy__async_destroy(eddy_loop *loop);
int eddy__async_fork(eddy_loop *loop);
/* Handles what other threads queued, without waiting. */
void eddy__async_drain(eddy_loop *loop);

/* ---- Thread pool (work.c) -------------------------------------------------- */

struct eddy_work {
  eddy_loop *loop;
  eddy_work_fn work;
  eddy_work_done_fn done;
  void *arg;
  int state;  /* EDDY__WORK_* */
  int status; /* for done: 0 or -ECANCELED */
  eddy_work *prev, *next; /* the pool's queue or running list, then the
                             async done list */
};

enum { EDDY__WORK_QUEUED, EDDY__WORK_RUNNING, EDDY__WORK_DONE };

/* Puts finished or cancelled work on the loop's done list and wakes it.
 * Any thread. */
void eddy__async_post_work(eddy_loop *loop, eddy_work *w);

typedef struct eddy__pool {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t *threads;
  unsigned nthreads, size;
  int shutdown;
  eddy_work *queue_head, *queue_tail; /* queued, guarded by lock */
  eddy_work *running;                 /* started, guarded by lock */
  size_t pending;                     /* submitted, done not yet called */
} eddy__pool;

void eddy__pool_init(eddy_loop *loop, unsigned size);
void eddy__pool_destroy(eddy_loop *loop);
void eddy__pool_cancel_all(eddy_loop *loop);
void eddy__pool_fork(eddy_loop *loop);
/* Calls done for a finished or cancelled request and frees it. */
void eddy__work_complete(eddy_loop *loop, eddy_work *w);

/* ---- Signals (signal.c) ---------------------------------------------------- */

typedef struct eddy__sigloop {
  struct eddy__sigloop *next; /* the process's loops watching signals */
  int rfd, wfd;               /* the loop's signal pipe, -1 until needed */
  eddy__io io;
  unsigned watch[65];         /* handles per signal number */
  eddy_signal *handles;       /* this loop's signal handles */
  unsigned nhandles;
  int registered;             /* on the process-wide list */
} eddy__sigloop;

void eddy__signal_loop_init(eddy_loop *loop);
void eddy__signal_loop_destroy(eddy_loop *loop);
int eddy__signal_loop_fork(eddy_loop *loop);

/* ---- The loop --------------------------------------------------------------- */

struct eddy_loop {
  const eddy__backend_ops *backend;
  union {
    struct {
      int fd;
      struct epoll_event *events;
    } epoll;
    struct {
      struct pollfd *fds;
      size_t len, cap;
      int dispatching, dirty;
    } poll;
  } be;

  eddy__io **watchers; /* by descriptor */
  size_t nwatchers;
  unsigned nactive_io; /* watchers with interest, not counting internal ones */

  int64_t now;
  int now_stale; /* the clock is read on first use in a turn */
  int fake_clock;
  int running, stop;

  eddy__heap_entry *heap;
  size_t heap_len, heap_cap;
  uint64_t timer_seq;

  eddy__calls soon, soon_spare;

  eddy__handle *handles; /* open */
  eddy__handle *closing;
  size_t nhandles;

  eddy__async async;
  eddy__pool pool;
  eddy__sigloop sig;
};

/* The turn's time. The clock is read at most once per turn, and only if
 * something needs the time: an idle turn reads no clock at all. */
static inline int64_t eddy__now(eddy_loop *loop) {
  if (loop->now_stale) {
    loop->now = eddy__sys_now_ns();
    loop->now_stale = 0;
  }
  return loop->now;
}
unsigned eddy__signal_count(const eddy_loop *loop);
/* Marks a signal handle as part of another handle (a process reaped on
 * SIGCHLD; see EDDY__HANDLE_OWNED). */
void eddy__signal_owned(eddy_signal *h);

#endif
