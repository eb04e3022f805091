/* eddy/core.h: the loop, timers, call-soon, cross-thread calls, the thread
 * pool, signals and the clock.
 *
 * One loop per thread. Everything here must be called on the loop's thread,
 * except the functions whose names end in _threadsafe.
 *
 * Time is int64_t nanoseconds of CLOCK_MONOTONIC, read at most once per
 * loop turn, on first use (eddy_loop_now), so that every callback of a turn
 * sees the same time.
 *
 * One turn of the loop, in order:
 *   1. timers that are due fire;
 *   2. calls scheduled before this step run (eddy_loop_call_soon,
 *      eddy_call_schedule), those scheduled by step 1's timers included;
 *      one scheduled from these callbacks waits for the next turn;
 *   3. the loop waits for I/O (not at all if a call is scheduled, or in
 *      EDDY_RUN_NOWAIT mode; else until the next timer at most) and calls
 *      the stream, listener, signal and cross-thread callbacks of what is
 *      ready;
 *   4. if it waited, timers that came due while it waited fire;
 *   5. handles closed during the turn are freed.
 * So a call scheduled from an I/O callback runs on the next turn, after
 * that turn's due timers and before its I/O.
 *
 * Handles (eddy_timer, eddy_call, eddy_signal) are allocated by eddy and
 * released by their close call. Closing is safe from any callback, the
 * handle's own included: the memory is freed after the current callback
 * returns, at the end of the loop turn.
 */
#ifndef EDDY_CORE_H
#define EDDY_CORE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_NSEC_PER_MSEC INT64_C(1000000)
#define EDDY_NSEC_PER_SEC INT64_C(1000000000)

typedef struct eddy_loop eddy_loop;
typedef struct eddy_timer eddy_timer;
typedef struct eddy_signal eddy_signal;
typedef struct eddy_watch eddy_watch;
typedef struct eddy_work eddy_work;
typedef struct eddy_call eddy_call;

/* ---- Loop ---------------------------------------------------------------- */

typedef enum eddy_backend {
  EDDY_BACKEND_DEFAULT =
      0, /* $EDDY_BACKEND if set ("epoll", "poll"), else epoll */
  EDDY_BACKEND_EPOLL,
  EDDY_BACKEND_POLL,
} eddy_backend;

typedef struct eddy_loop_options {
  eddy_backend backend;
  /* Threads in the loop's pool; 0 means $EDDY_THREADPOOL_SIZE, else 4.
   * Threads are started lazily, on the first eddy_work_submit(). */
  unsigned threadpool_size;
  /* Non-zero: the loop's clock does not move by itself; eddy_loop_advance()
   * moves it and fires the timers that come due. See "Fake clock" below. */
  int fake_clock;
  /* Starting time of a fake clock, in nanoseconds. */
  int64_t fake_clock_start;
} eddy_loop_options;

/* Creates a loop. options may be NULL for the defaults. Returns 0 and sets
 * *loop, or -ENOMEM, EDDY_EBACKEND (a backend name in $EDDY_BACKEND that eddy
 * does not know), or the error of the system call that failed (-EMFILE...).
 * On failure nothing is left allocated. */
EDDY_API int eddy_loop_new(const eddy_loop_options *options, eddy_loop **loop);

/* Frees a loop. Returns -EBUSY, and frees nothing, while the loop still has
 * open handles (timers or signals not closed) or thread-pool work whose done
 * callback has not run: close them (eddy_loop_close_all) and run the loop
 * until idle first. Call-soon and cross-thread callbacks still queued are
 * dropped without being called. Returns 0 otherwise. */
EDDY_API int eddy_loop_free(eddy_loop *loop);

/* Closes every open handle of the loop (as if each close call were made) and
 * cancels all queued thread-pool work. Running work still finishes; run the
 * loop until idle to collect it. */
EDDY_API void eddy_loop_close_all(eddy_loop *loop);

typedef enum eddy_run_mode {
  /* Run until eddy_loop_stop() is called, or until the loop has nothing
   * that could make a callback happen: no active timer, watched descriptor,
   * signal handle, queued call or pending thread-pool work. */
  EDDY_RUN_UNTIL_IDLE = 0,
  /* Run until eddy_loop_stop() is called, even with nothing to do: the loop
   * then sleeps until a cross-thread call or a signal arrives. */
  EDDY_RUN_UNTIL_STOPPED,
  /* One turn: wait for at least one event (or the next timer), handle what
   * is ready, return. */
  EDDY_RUN_ONCE,
  /* One turn without waiting. */
  EDDY_RUN_NOWAIT,
} eddy_run_mode;

/* Runs the loop. Returns 1 if the loop still has active work, 0 if it is
 * idle, or a negative code if the backend failed (the loop is then left in a
 * state where run may be called again). Not reentrant: calling it from a
 * callback returns -EBUSY. */
EDDY_API int eddy_loop_run(eddy_loop *loop, eddy_run_mode mode);

/* Makes eddy_loop_run() return after the current turn. */
EDDY_API void eddy_loop_stop(eddy_loop *loop);

/* The time of the current turn, in nanoseconds: the clock is read on the
 * first call of a turn (or by the timers, if any), and every later call of
 * the turn returns the same value. */
EDDY_API int64_t eddy_loop_now(const eddy_loop *loop);

/* Reads the clock again (a real clock only; a fake clock is unaffected). */
EDDY_API void eddy_loop_update_time(eddy_loop *loop);

/* "epoll" or "poll". */
EDDY_API const char *eddy_loop_backend_name(const eddy_loop *loop);

/* ---- Embedding in another main loop --------------------------------------
 *
 * A host loop (GLib, Qt, its own poll()) drives eddy with three calls: watch
 * eddy_loop_backend_fd() for readability, sleep at most
 * eddy_loop_next_timeout(), then call eddy_loop_run(loop, EDDY_RUN_NOWAIT).
 */

/* A descriptor that becomes readable when the loop has I/O or cross-thread
 * work, or -ENOTSUP on the poll backend, which has none. */
EDDY_API int eddy_loop_backend_fd(eddy_loop *loop);

/* Nanoseconds until the loop next needs to run: 0 if work is queued now, the
 * time to the next timer, or -1 if there is no timer (wait on the backend
 * descriptor alone). */
EDDY_API int64_t eddy_loop_next_timeout(eddy_loop *loop);

/* ---- fork() --------------------------------------------------------------
 *
 * A child that keeps using a loop created before fork() must first call
 * eddy_loop_fork(): it re-creates what cannot be shared with the parent (the
 * epoll descriptor, the wake-up descriptor, the signal pipe) and
 * re-registers every watched descriptor. Thread-pool threads do not survive
 * fork(): work that was queued or running in the parent completes in the
 * child with status -ECANCELED. Returns 0 or a negative code. */
EDDY_API int eddy_loop_fork(eddy_loop *loop);

/* ---- Fake clock ----------------------------------------------------------
 *
 * With options.fake_clock, time moves only when the program says so, which
 * makes timer tests exact. eddy_loop_advance() moves the clock by delta_ns
 * and fires, in deadline order, every timer due by the new time (a timer
 * started by one of those callbacks fires too if it is due). The loop never
 * sleeps waiting for a timer of a fake clock, and in EDDY_RUN_UNTIL_IDLE
 * mode timers do not keep it running. Returns -EINVAL on a real clock or a
 * negative delta_ns. */
EDDY_API int eddy_loop_advance(eddy_loop *loop, int64_t delta_ns);

/* ---- Call soon ------------------------------------------------------------ */

typedef void (*eddy_callback)(eddy_loop *loop, void *arg);

/* Runs fn(loop, arg) once, in the call-soon step of a coming turn (see the
 * turn at the top of this page), in the order of the calls. A call made
 * from such a callback runs on the turn after. Cannot be cancelled (see
 * eddy_call for that). Returns 0 or -ENOMEM. */
EDDY_API int eddy_loop_call_soon(eddy_loop *loop, eddy_callback fn, void *arg);

/* A cancellable call-soon (Twisted's callLater(0, ...) with its cancel): a
 * handle made once and scheduled any number of times. Scheduled calls of
 * both kinds share one queue and run in the order they were scheduled. */

typedef void (*eddy_call_cb)(eddy_call *call, void *arg);

/* Creates an unscheduled call. Returns 0 and sets *call, -EINVAL for a
 * NULL cb, or -ENOMEM. */
EDDY_API int eddy_call_new(eddy_loop *loop, eddy_call_cb cb, void *arg,
                           eddy_call **call);

/* Schedules cb(call, arg) for the call-soon step of a coming turn: this
 * turn's if that step has not begun, else the next turn's. Scheduling a
 * call already scheduled does nothing (it keeps its place). From its own
 * callback, it schedules the call again, for the next turn. Never
 * allocates. Returns 0, or EDDY_ECLOSED after eddy_call_close. */
EDDY_API int eddy_call_schedule(eddy_call *call);

/* Unschedules the call: cb will not run unless it is scheduled again.
 * Does nothing if it is not scheduled (already run, or cancelled). Safe
 * from any callback, including another call of the same turn. */
EDDY_API void eddy_call_cancel(eddy_call *call);

/* 1 if the call is scheduled and has not run yet, 0 otherwise. */
EDDY_API int eddy_call_pending(const eddy_call *call);

/* Cancels and releases the call. Safe from any callback, its own
 * included; the memory is freed after the current callback returns. */
EDDY_API void eddy_call_close(eddy_call *call);

/* The one cross-thread entry point: from any thread, runs fn(loop, arg) on
 * the loop's thread, soon, in the order of the calls of each thread. Wakes
 * the loop if it is sleeping. Returns 0 or -ENOMEM. */
EDDY_API int eddy_loop_call_threadsafe(eddy_loop *loop, eddy_callback fn,
                                       void *arg);

/* ---- Timers (Twisted's callLater / DelayedCall) ---------------------------
 *
 * A timer calls its callback once when its deadline passes, and then every
 * repeat_ns if repeat_ns > 0. Timers with the same deadline fire in the
 * order they were started. A timer started or reset from a timer callback
 * with a deadline already past fires on the next turn, never in the same
 * pass. A repeating timer that falls behind skips the missed periods rather
 * than firing in a burst. Start, stop and reset cost O(log n); a million
 * live timers is ordinary.
 */

typedef void (*eddy_timer_cb)(eddy_timer *timer, void *arg);

/* Creates a stopped timer. Returns 0 and sets *timer, or -ENOMEM. */
EDDY_API int eddy_timer_new(eddy_loop *loop, eddy_timer_cb cb, void *arg,
                            eddy_timer **timer);

/* Arms the timer to fire delay_ns from eddy_loop_now() (negative counts as
 * 0), then every repeat_ns if repeat_ns > 0. Re-arms it if it was active.
 * Returns 0, -ENOMEM (the timer heap could not grow; the timer is left
 * stopped), or EDDY_ECLOSED. */
EDDY_API int eddy_timer_start(eddy_timer *timer, int64_t delay_ns,
                              int64_t repeat_ns);

/* Cancels the timer if it is active; does nothing otherwise. */
EDDY_API void eddy_timer_stop(eddy_timer *timer);

/* Twisted's DelayedCall.reset: the timer fires delay_ns from now instead.
 * Returns 0, or -EINVAL if the timer is not active. */
EDDY_API int eddy_timer_reset(eddy_timer *timer, int64_t delay_ns);

/* Twisted's DelayedCall.delay: moves the deadline by delta_ns (may be
 * negative). Returns 0, or -EINVAL if the timer is not active. */
EDDY_API int eddy_timer_delay(eddy_timer *timer, int64_t delta_ns);

/* 1 if the timer is armed, 0 otherwise. */
EDDY_API int eddy_timer_active(const eddy_timer *timer);

/* The deadline of an active timer, in loop time; -1 if it is not active. */
EDDY_API int64_t eddy_timer_deadline(const eddy_timer *timer);

EDDY_API eddy_loop *eddy_timer_loop(const eddy_timer *timer);

/* Stops and releases the timer. Safe from any callback; the memory is freed
 * after the current callback returns. */
EDDY_API void eddy_timer_close(eddy_timer *timer);

/* ---- Thread pool (Twisted's deferToThread) ---------------------------------
 *
 * work(arg) runs on one of the loop's pool threads; then done(loop, status,
 * arg) runs on the loop's thread with status 0, or -ECANCELED if the work
 * was cancelled before it started. done is called exactly once per
 * submission. Pool threads block every signal.
 */

typedef void (*eddy_work_fn)(void *arg);
typedef void (*eddy_work_done_fn)(eddy_loop *loop, int status, void *arg);

/* Queues work. *req (if req is not NULL) identifies the submission for
 * eddy_work_cancel() until done is called. Returns 0, -ENOMEM, or the error
 * that stopped the first pool thread from starting (-EAGAIN). */
EDDY_API int eddy_work_submit(eddy_loop *loop, eddy_work_fn work,
                              eddy_work_done_fn done, void *arg,
                              eddy_work **req);

/* Cancels queued work: done will run with -ECANCELED on the next turn and
 * work will not run. Returns 0, or -EBUSY if the work has already started
 * (it will then complete normally). */
EDDY_API int eddy_work_cancel(eddy_work *req);

/* ---- Signals ---------------------------------------------------------------
 *
 * A signal handle calls its callback on the loop's thread each time the
 * signal arrives (deliveries that arrive close together may be coalesced,
 * as the kernel coalesces them). When several loops, in one thread or many,
 * watch the same signal, each of them gets the callback. eddy installs its
 * handler when the first handle for a signal starts and restores the
 * previous disposition when the last one closes. SIGKILL and SIGSTOP cannot
 * be watched.
 */

typedef void (*eddy_signal_cb)(eddy_signal *handle, int signum, void *arg);

/* Returns 0 and sets *handle, -EINVAL for a signal that cannot be caught,
 * -ENOMEM, or the error of a failed system call. */
EDDY_API int eddy_signal_start(eddy_loop *loop, int signum, eddy_signal_cb cb,
                               void *arg, eddy_signal **handle);

/* Stops watching and releases the handle. Safe from any callback. */
EDDY_API void eddy_signal_close(eddy_signal *handle);

/* ---- Descriptor watchers ---------------------------------------------------
 *
 * For a descriptor that eddy does not read or write itself (a library's
 * socket, a log pipe): the callback says it is ready, the program does the
 * I/O. Level-triggered: the callback runs once per loop turn while the
 * descriptor is ready and the event is wanted, so it must read or write
 * (or stop wanting the event). Readiness is a hint: the I/O that follows
 * may still find EAGAIN. An error or hang-up is reported as every wanted
 * event, so that the next read or write finds it. The descriptor must stay
 * open until the watcher is closed (or stopped), and must be non-blocking
 * for the loop never to block on it.
 */

#define EDDY_READABLE 1
#define EDDY_WRITABLE 2

typedef void (*eddy_watch_cb)(eddy_watch *w, int events, void *arg);

/* A watcher of fd, wanting nothing yet. Returns 0, -EINVAL (fd < 0 or no
 * callback) or -ENOMEM. */
EDDY_API int eddy_watch_new(eddy_loop *loop, int fd, eddy_watch_cb cb,
                            void *arg, eddy_watch **out);

/* Sets what the watcher wants: EDDY_READABLE, EDDY_WRITABLE, both, or 0 to
 * stop. While it wants something it keeps the loop running. Returns 0,
 * -EINVAL for other bits, EDDY_ECLOSED after close, -ENOMEM, or the
 * poller's error (-EPERM: epoll cannot watch a regular file); on error
 * what it wanted is unchanged. */
EDDY_API int eddy_watch_start(eddy_watch *w, int events);

/* Stops watching and releases the watcher; the descriptor stays open.
 * Safe from any callback, its own included. */
EDDY_API void eddy_watch_close(eddy_watch *w);

#ifdef __cplusplus
}
#endif
#endif
