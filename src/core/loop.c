/* loop.c: the loop itself: creation, the turn, handles, the clock,
 * embedding and fork.
 *
 * One turn:
 *   1. fire due timers (the clock is read only if there are timers, or
 *      when a callback asks for the time: an idle turn reads no clock);
 *   2. run the call-soon queue: what was scheduled before this step,
 *      including by the timers of step 1 (calls scheduled now wait for the
 *      next turn);
 *   3. wait for I/O: not at all if a call is scheduled or the mode says so,
 *      else until the next timer (rounded up to a whole millisecond, so a
 *      timer never fires early), and dispatch what is ready;
 *   4. if it waited, read the clock again and fire due timers (so that
 *      EDDY_RUN_ONCE waiting for a timer fires it);
 *   5. free the handles closed during the turn.
 * A call scheduled in steps 3 to 5 therefore runs in step 2 of the next
 * turn, after that turn's due timers, and the loop does not sleep first.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "sys/alloc.h"
#include "sys/sys.h"

/* ---- Handles ---------------------------------------------------------------- */

void eddy__handle_init(eddy_loop *loop, eddy__handle *h,
                       void (*close)(eddy__handle *h)) {
  h->loop = loop;
  h->flags = 0;
  h->close = close;
  h->finalize = NULL;
  h->next_closing = NULL;
  h->prev = NULL;
  h->next = loop->handles;
  if (h->next)
    h->next->prev = h;
  loop->handles = h;
  loop->nhandles++;
}

int eddy__handle_close(eddy__handle *h) {
  eddy_loop *loop = h->loop;
  if (h->flags & EDDY__HANDLE_CLOSING)
    return 1;
  h->flags |= EDDY__HANDLE_CLOSING;
  if (h->prev)
    h->prev->next = h->next;
  else
    loop->handles = h->next;
  if (h->next)
    h->next->prev = h->prev;
  loop->nhandles--;
  h->next_closing = loop->closing;
  loop->closing = h;
  return 0;
}

static void run_closing(eddy_loop *loop) {
  while (loop->closing) {
    eddy__handle *h = loop->closing;
    loop->closing = h->next_closing;
    if (h->finalize)
      h->finalize(h);
    eddy__free(h);
  }
}

/* One pass. A close may close other handles (a process its SIGCHLD watch)
 * or leave its handle open until its callback has run (a connection
 * attempt); closed handles stay in memory until the end of the turn and
 * keep their next pointer, so the walk is safe. */
void eddy_loop_close_all(eddy_loop *loop) {
  eddy__handle *h = loop->handles;
  while (h) {
    eddy__handle *next = h->next;
    if (!(h->flags & (EDDY__HANDLE_CLOSING | EDDY__HANDLE_OWNED)))
      h->close(h);
    h = next;
  }
  eddy__pool_cancel_all(loop);
}

/* ---- Creation --------------------------------------------------------------- */

static int pick_backend(const eddy_loop_options *o,
                        const eddy__backend_ops **out) {
  eddy_backend b = o ? o->backend : EDDY_BACKEND_DEFAULT;
  if (b == EDDY_BACKEND_DEFAULT) {
    const char *env = getenv("EDDY_BACKEND");
    if (env == NULL || *env == '\0' || strcmp(env, "epoll") == 0)
      b = EDDY_BACKEND_EPOLL;
    else if (strcmp(env, "poll") == 0)
      b = EDDY_BACKEND_POLL;
    else
      return EDDY_EBACKEND;
  }
  switch (b) {
  case EDDY_BACKEND_EPOLL:
    *out = &eddy__epoll_ops;
    return 0;
  case EDDY_BACKEND_POLL:
    *out = &eddy__poll_ops;
    return 0;
  default:
    return EDDY_EBACKEND;
  }
}

int eddy_loop_new(const eddy_loop_options *o, eddy_loop **out) {
  const eddy__backend_ops *ops;
  eddy_loop *loop;
  int err = pick_backend(o, &ops);
  if (err)
    return err;
  loop = eddy__calloc(1, sizeof *loop);
  if (loop == NULL)
    return -ENOMEM;
  loop->backend = ops;
  eddy__soon_loop_init(loop);
  loop->fake_clock = o ? o->fake_clock : 0;
  loop->now = loop->fake_clock ? o->fake_clock_start : eddy__sys_now_ns();
  err = ops->init(loop);
  if (err)
    goto fail_backend;
  err = eddy__wakeup_init(loop);
  if (err)
    goto fail_wakeup;
  eddy__pool_init(loop, o ? o->threadpool_size : 0);
  eddy__signal_loop_init(loop);
  *out = loop;
  return 0;

fail_wakeup:
  ops->destroy(loop);
  eddy__free(loop->watchers);
fail_backend:
  eddy__free(loop);
  return err;
}

int eddy_loop_free(eddy_loop *loop) {
  if (loop->running || loop->nhandles > 0 || loop->pool.pending > 0)
    return -EBUSY;
  run_closing(loop);
  eddy__pool_destroy(loop);
  eddy__signal_loop_destroy(loop);
  eddy__wakeup_destroy(loop);
  loop->backend->destroy(loop);
  eddy__timers_free(loop);
  eddy__soon_loop_destroy(loop);
  eddy__free(loop->watchers);
  eddy__free(loop);
  return 0;
}

/* ---- Clock ------------------------------------------------------------------ */

int64_t eddy_loop_now(const eddy_loop *loop) {
  /* Reading the clock late is still the turn's one reading: logically
   * const, as a cache is. */
  return eddy__now((eddy_loop *)loop);
}

void eddy_loop_update_time(eddy_loop *loop) {
  if (!loop->fake_clock) {
    loop->now = eddy__sys_now_ns();
    loop->now_stale = 0;
  }
}

/* A new turn: the next use of the time reads the clock. */
static void time_passes(eddy_loop *loop) {
  if (!loop->fake_clock)
    loop->now_stale = 1;
}

int eddy_loop_advance(eddy_loop *loop, int64_t delta_ns) {
  if (!loop->fake_clock || delta_ns < 0)
    return -EINVAL;
  loop->now += delta_ns;
  /* Each pass fires what was due when it began; repeat until a pass finds
   * nothing due, so timers started by callbacks fire too. */
  while (loop->heap_len > 0 && loop->heap[0].deadline <= loop->now)
    eddy__timers_run(loop);
  return 0;
}

const char *eddy_loop_backend_name(const eddy_loop *loop) {
  return loop->backend->name;
}

/* ---- The turn ----------------------------------------------------------------- */

static int timers_pending(const eddy_loop *loop) {
  return loop->heap_len > 0 && !loop->fake_clock;
}

static int alive(const eddy_loop *loop) {
  return loop->nactive_io > 0 || timers_pending(loop) || eddy__soon_any(loop) ||
         loop->closing != NULL || eddy__signal_count(loop) > 0 ||
         loop->pool.pending > 0 || atomic_load(&loop->wakeup.signalled);
}

/* How long the loop may sleep. The time is read afresh (not the turn's
 * cached time): the callbacks of this turn may have run for a while, and
 * sleeping the full interval from a stale time would make every timer
 * that much late. */
static int64_t timeout_ns(const eddy_loop *loop) {
  int64_t due;
  if (eddy__soon_any(loop) || loop->stop || loop->closing ||
      atomic_load(&loop->wakeup.signalled))
    return 0;
  if (!timers_pending(loop))
    return -1;
  due = loop->heap[0].deadline - eddy__sys_now_ns();
  return due > 0 ? due : 0;
}

int64_t eddy_loop_next_timeout(eddy_loop *loop) {
  eddy_loop_update_time(loop);
  return timeout_ns(loop);
}

/* Nanoseconds to whole milliseconds, rounded up, capped at INT_MAX. */
static int to_ms(int64_t ns) {
  int64_t ms;
  if (ns < 0)
    return -1;
  ms = (ns + EDDY_NSEC_PER_MSEC - 1) / EDDY_NSEC_PER_MSEC;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* The poll step. With nothing to watch but the wake-up descriptor and no
 * waiting to do, the kernel has nothing to tell: the flag says whether
 * another thread queued work, and no system call is made. */
static int poll_io(eddy_loop *loop, int64_t timeout) {
  if (timeout == 0 && loop->nactive_io == 0 && eddy__signal_count(loop) == 0) {
    if (atomic_load(&loop->wakeup.signalled))
      eddy__wakeup_drain(loop);
    return 0;
  }
  return loop->backend->wait(loop, to_ms(timeout));
}

static int turn(eddy_loop *loop, eddy_run_mode mode) {
  int64_t timeout = 0;
  int err;
  loop->turns++;
  time_passes(loop);
  eddy__timers_run(loop);
  eddy__soon_run(loop);
  if (mode != EDDY_RUN_NOWAIT &&
      (mode == EDDY_RUN_UNTIL_STOPPED || alive(loop)))
    timeout = timeout_ns(loop);
  err = poll_io(loop, timeout);
  if (timeout != 0) {
    /* The wait may have been for a timer: fire it in this turn. */
    time_passes(loop);
    eddy__timers_run(loop);
  }
  run_closing(loop);
  return err;
}

int eddy_loop_run(eddy_loop *loop, eddy_run_mode mode) {
  int err = 0;
  if (loop->running)
    return -EBUSY;
  loop->running = 1;
  loop->stop = 0;
  for (;;) {
    if (mode == EDDY_RUN_UNTIL_IDLE && !alive(loop))
      break;
    err = turn(loop, mode);
    if (err || loop->stop || mode == EDDY_RUN_ONCE || mode == EDDY_RUN_NOWAIT)
      break;
  }
  loop->running = 0;
  loop->stop = 0;
  return err ? err : alive(loop);
}

void eddy_loop_stop(eddy_loop *loop) {
  loop->stop = 1;
}

/* ---- Embedding and fork ----------------------------------------------------- */

int eddy_loop_backend_fd(eddy_loop *loop) {
  if (loop->backend != &eddy__epoll_ops)
    return -ENOTSUP;
  return loop->be.epoll.fd;
}

int eddy_loop_fork(eddy_loop *loop) {
  int err = loop->backend->reinit(loop);
  if (err)
    return err;
  err = eddy__wakeup_fork(loop);
  if (err)
    return err;
  eddy__pool_fork(loop);
  return eddy__signal_loop_fork(loop);
}
