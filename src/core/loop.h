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
/* Part of another handle (a process's SIGCHLD watch): closed by its owner,
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

/* ---- Timers on their owner's memory (timer.c) ------------------------------
 *
 * An eddy__timer lives inside the object it belongs to (a stream's linger,
 * a connection attempt's deadline), as libuv's uv_timer_t lives in caller
 * memory and nginx's timer in ngx_event_t: arming it allocates nothing but
 * (rarely) a larger heap array, shared by the whole loop. It is not a
 * handle: eddy_loop_close_all never sees it, and its owner stops it before
 * the owner's memory goes. While armed it keeps the loop alive exactly as
 * a public timer does (both sit in the same heap); under a fake clock it
 * fires from eddy_loop_advance. The public eddy_timer is a handle wrapping
 * one. */

typedef struct eddy__timer eddy__timer;
typedef void (*eddy__timer_fn)(eddy__timer *timer, void *arg);

struct eddy__timer {
  eddy_loop *loop;
  eddy__timer_fn fn;
  void *arg;
  size_t slot; /* index in loop->heap, or EDDY__NO_SLOT when stopped */
};

#define EDDY__NO_SLOT SIZE_MAX

/* Makes a stopped timer. Cannot fail. */
void eddy__timer_init(eddy_loop *loop, eddy__timer *t, eddy__timer_fn fn,
                      void *arg);
/* Arms t to fire once, delay_ns after the turn's time (negative counts as
 * 0); re-arms it if it was armed. (Only the public eddy_timer repeats: the
 * owners inside eddy need one-shot timers, and a stream, the object there
 * are most of, is smaller without a period.) Returns 0, or -ENOMEM when
 * the heap could not grow (t is then stopped). */
int eddy__timer_start(eddy__timer *t, int64_t delay_ns);
/* Disarms t if armed. Idempotent; the owner calls it before freeing t. */
void eddy__timer_stop(eddy__timer *t);

static inline int eddy__timer_active(const eddy__timer *t) {
  return t->slot != EDDY__NO_SLOT;
}

/* The deadline of an armed timer in loop time, or -1. */
int64_t eddy__timer_deadline(const eddy__timer *t);

/* ---- Timer heap ------------------------------------------------------------
 * A 4-ary min-heap in one array, ordered by (deadline, seq): the key is kept
 * next to the pointer, so sifting never touches a timer's memory except to
 * record its new slot. */

typedef struct eddy__heap_entry {
  int64_t deadline;
  uint64_t seq;
  eddy__timer *timer;
} eddy__heap_entry;

void eddy__timers_run(eddy_loop *loop);
void eddy__timers_free(eddy_loop *loop);

/* ---- Call soon, cancellable, on the owner's memory (soon.c) -----------------
 *
 * "Run this on a coming turn unless cancelled first": an intrusive node the
 * owner embeds (a connection attempt's report, TLS's kick), so scheduling
 * never allocates and cannot fail, and cancelling is O(1). Scheduled calls
 * run in the call-soon phase of a turn, in the order they were scheduled;
 * one scheduled while that phase runs (from a call, even its own) waits for
 * the next turn. While any is scheduled the loop does not sleep. The
 * public eddy_loop_call_soon and eddy_call use the same queue. */

typedef struct eddy__soon eddy__soon;
typedef void (*eddy__soon_fn)(eddy__soon *call, void *arg);

struct eddy__soon {
  eddy__soon *prev, *next; /* on a queue of the loop; NULL when not */
  eddy__soon_fn fn;
  void *arg;
};

/* Makes an unscheduled call. Cannot fail. */
void eddy__soon_init(eddy__soon *c, eddy__soon_fn fn, void *arg);
/* Queues c on loop's call-soon queue. Does nothing if c is already
 * scheduled (it keeps its place). Cannot fail. */
void eddy__soon_schedule(eddy_loop *loop, eddy__soon *c);
/* Unqueues c if scheduled. Idempotent; after it returns, c may be freed. */
void eddy__soon_cancel(eddy__soon *c);

static inline int eddy__soon_pending(const eddy__soon *c) {
  return c->next != NULL;
}

/* A circular list with a sentinel: the loop's queue, and the batch being
 * run, which the queue is moved to at the start of the phase. */
typedef struct eddy__soon_queue {
  eddy__soon head;
} eddy__soon_queue;

void eddy__soon_loop_init(eddy_loop *loop);
/* Runs the batch scheduled before this call. */
void eddy__soon_run(eddy_loop *loop);
/* At eddy_loop_free: drops what is still queued, frees the spare nodes. */
void eddy__soon_loop_destroy(eddy_loop *loop);

/* ---- Cross-thread wake-up (wakeup.c) --------------------------------------- */

typedef struct eddy__call {
  eddy_callback fn;
  void *arg;
} eddy__call;

typedef struct eddy__calls {
  eddy__call *items;
  size_t len, cap;
} eddy__calls;

typedef struct eddy__wakeup {
  pthread_mutex_t lock;
  int rfd, wfd; /* eventfd twice, or a pipe */
  eddy__io io;
  atomic_int signalled;     /* 1 while a wake-up is pending */
  eddy__calls calls, spare; /* eddy_loop_call_threadsafe's, guarded by lock */
  /* Run by the loop after each drain: the thread pool's completions. */
  void (*on_wake)(eddy_loop *loop);
} eddy__wakeup;

int eddy__wakeup_init(eddy_loop *loop);
void eddy__wakeup_destroy(eddy_loop *loop);
int eddy__wakeup_fork(eddy_loop *loop);
/* Wakes the loop; any thread. Takes wakeup.lock, so it may be called with
 * another lock held (the pool's) but not with wakeup.lock itself. */
void eddy__wakeup_signal(eddy_loop *loop);
/* Handles what other threads queued, without waiting. */
void eddy__wakeup_drain(eddy_loop *loop);

/* ---- Thread pool (work.c) -------------------------------------------------- */

struct eddy_work {
  eddy_loop *loop;
  eddy_work_fn work;
  eddy_work_done_fn done;
  void *arg;
  int state;              /* EDDY__WORK_* */
  int status;             /* for done: 0 or -ECANCELED */
  eddy_work *prev, *next; /* the pool's queue, running list or done list */
};

enum { EDDY__WORK_QUEUED, EDDY__WORK_RUNNING, EDDY__WORK_DONE };

typedef struct eddy__pool {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t *threads;
  unsigned nthreads, size;
  int shutdown;
  eddy_work *queue_head, *queue_tail; /* queued, guarded by lock */
  eddy_work *running;                 /* started, guarded by lock */
  eddy_work *done_head, *done_tail;   /* finished or cancelled, for the
                                         loop to report; guarded by lock */
  size_t pending;                     /* submitted, done not yet called */
} eddy__pool;

void eddy__pool_init(eddy_loop *loop, unsigned size);
void eddy__pool_destroy(eddy_loop *loop);
void eddy__pool_cancel_all(eddy_loop *loop);
void eddy__pool_fork(eddy_loop *loop);

/* ---- Signals (signal.c) ---------------------------------------------------- */

typedef struct eddy__sigloop {
  struct eddy__sigloop *next; /* the process's loops watching signals */
  int rfd, wfd;               /* the loop's signal pipe, -1 until needed */
  eddy__io io;
  unsigned watch[65];   /* handles per signal number */
  eddy_signal *handles; /* this loop's signal handles */
  unsigned nhandles;
  int registered; /* on the process-wide list */
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
  int now_stale;  /* the clock is read on first use in a turn */
  uint64_t turns; /* turns begun: what one turn learned stays true in it */
  int fake_clock;
  int running, stop;

  eddy__heap_entry *heap;
  size_t heap_len, heap_cap;
  uint64_t timer_seq;
  int64_t timer_due; /* while a timer fires: the deadline it fired for */

  eddy__soon_queue soon;  /* scheduled for the next call-soon phase */
  eddy__soon_queue batch; /* the calls of the call-soon step under way */
  void *soon_free;        /* eddy_loop_call_soon's spare nodes */

  eddy__handle *handles; /* open */
  eddy__handle *closing;
  size_t nhandles;

  eddy__wakeup wakeup;
  eddy__pool pool;
  eddy__sigloop sig;
};

/* 1 if a call is scheduled for the next call-soon phase. */
static inline int eddy__soon_any(const eddy_loop *loop) {
  return loop->soon.head.next != &loop->soon.head;
}

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
