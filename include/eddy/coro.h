/* eddy/coro.h: coroutines: sequential protocol code on the loop, in the
 * style of Diesel (`line = until_eol()`).
 *
 * A coroutine (eddy_coro) is a function that runs on a stack of its own,
 * on the loop's thread, and can wait: eddy_coro_read_line() reads like a
 * blocking call, but while the line has not arrived the coroutine is
 * suspended and the loop runs everything else. There is no second loop and
 * no thread: coroutines, callbacks and Deferreds share the one loop, the
 * same streams and the same timers, and only one of them runs at a time.
 *
 * Deferreds. A coroutine waits on a Deferred (eddy/async.h) with
 * eddy_coro_await(), and eddy_coro_join() gives a coroutine's result as a
 * Deferred, so the two styles compose both ways.
 *
 * Lifetime. eddy_coro_spawn() makes a coroutine; it starts on a coming
 * turn (the call-soon step), not inside the spawn call. Its function runs
 * exactly once, even when the coroutine is cancelled before it starts (its
 * first wait then returns -ECANCELED), so the function can always release
 * its argument. The value it returns (0 or a negative code, by convention)
 * is the coroutine's result. When the function has returned, the
 * coroutine's children are cancelled and waited for, what it owns is
 * closed (see "Ownership"), its stack goes back to the pool, and the done
 * callback is called. The eddy_coro pointer is valid until then: until the
 * done callback returns, or, without one, until the end of the loop turn in
 * which the coroutine finished. A coroutine is a handle of its loop:
 * eddy_loop_close_all() cancels it, and eddy_loop_free() returns -EBUSY
 * while one has not finished.
 *
 * Waiting calls (every eddy_coro_* function that takes the coroutine as
 * its first argument and is documented as "waits") may only be made by
 * that coroutine, from its own stack; made from anywhere else they return
 * -EPERM. Each returns 0 or a count on success, a negative code on error,
 * and -ECANCELED when the coroutine is cancelled, whether before the call
 * or while it waits; the wait is then undone at once: its timer stopped,
 * its connection attempt given up, its child process killed, and whatever
 * the call held released.
 *
 * Cancellation (eddy_coro_cancel) is sticky: once cancelled, every later
 * waiting call of the coroutine returns -ECANCELED at once, so a coroutine
 * that does not check every result still ends. Cancellation never
 * interrupts code that is running (there is no preemption): it takes
 * effect at the next wait.
 *
 * Structured scopes. eddy_coro_spawn_child() starts a coroutine that
 * belongs to another (its parent). eddy_coro_wait_children() waits until
 * all of a coroutine's children have finished. Cancelling a parent cancels
 * its children (and theirs); a parent that returns while children are
 * still running cancels them and waits for them before it finishes: no
 * child outlives its parent.
 *
 * Ownership. Streams opened for a coroutine (eddy_coro_stream) belong to
 * it, and so do processes and cleanups it registers (eddy_coro_own_process,
 * eddy_coro_defer): when the coroutine finishes, whatever it still owns is
 * closed (a stream closed, what was written to it still sent; a process
 * killed with SIGKILL and its handle closed; a cleanup called), in the
 * reverse order of registration. Nothing a coroutine forgets to close
 * leaks.
 *
 * Stacks. Each coroutine has a stack of its own, mapped with mmap() with
 * an inaccessible guard page below it, EDDY_CORO_STACK_DEFAULT bytes unless
 * the options say otherwise. Pages are only backed by memory when touched,
 * so an idle coroutine costs the few pages its deepest call used (see
 * bench/coro for the measured figure). Stacks of finished coroutines are
 * kept in a small per-thread pool for the next spawn. Each stack is two
 * memory mappings: Linux's default limit of 65530 mappings per process
 * (vm.max_map_count) bounds a process to about 32,000 live coroutines
 * unless the limit is raised; past it spawning returns -ENOMEM.
 *
 * Stack overflow. A coroutine that runs past the end of its stack touches
 * the guard page, and the program dies with the message
 *   eddy: coroutine stack overflow (stack size N)
 * on standard error and SIGSEGV. eddy installs a SIGSEGV handler for this,
 * running on an alternate signal stack, when the first coroutine is
 * spawned (or earlier, with eddy_coro_install_overflow_handler). It is the
 * one place where eddy prints anything by itself: the process is about to
 * die, and the message says why. A segmentation fault that is not a guard
 * page hit is passed to the handler that was installed before eddy's (or
 * the default action). Every thread that runs coroutines gets its own
 * alternate signal stack, unless it has one. A frame larger than a page
 * could step over the guard page; build code that keeps large arrays on
 * coroutine stacks with -fstack-clash-protection, which probes each page.
 *
 * Sanitizers. Under AddressSanitizer every switch is announced to it
 * (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber), so
 * that it knows which stack is in use and reports no false stack errors.
 *
 * The switch. On x86-64 and aarch64 eddy switches with a few lines of its
 * own assembly that save and restore only the callee-saved registers (see
 * src/async/switch.h for why this rather than Boost.Context); on other
 * architectures it uses ucontext. bench/coro measures both.
 */
#ifndef EDDY_CORO_H
#define EDDY_CORO_H

#include "async.h"
#include "line.h"
#include "net.h"
#include "proc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 64 KiB. Measured (tests/async, whose coroutines use every waiting call
 * here): the smallest stack that runs them all is 24 KiB, in a release
 * build and under AddressSanitizer alike; spawning a process is the
 * deepest call (its child runs on a 16 KiB buffer in the spawning frame),
 * and without it 12 KiB suffices in a release build. The default leaves
 * 40 KiB for the program's own frames. A larger default costs address
 * space, not memory: an idle coroutine's resident cost is the pages it
 * touched, about 4.3 KiB at any stack size (bench/coro). */
#define EDDY_CORO_STACK_DEFAULT (64 * 1024)
/* The smallest stack accepted (smaller sizes are raised to it). It holds
 * the simplest waits in a release build (not under AddressSanitizer, whose
 * frames are larger); a coroutine that connects needs 12 KiB in a release
 * build, one that spawns a process 24 KiB (see above). */
#define EDDY_CORO_STACK_MIN (8 * 1024)

typedef struct eddy_coro eddy_coro;

/* A coroutine's body. Its return value is the coroutine's result. */
typedef int (*eddy_coro_fn)(eddy_coro *co, void *arg);

/* Called once, from the loop, when the coroutine has finished (its
 * children finished, what it owned closed); co is valid until it returns. */
typedef void (*eddy_coro_done_cb)(eddy_coro *co, int result, void *arg);

typedef struct eddy_coro_options {
  /* Usable stack in bytes, rounded up to whole pages; 0: the default,
   * $EDDY_CORO_STACK_SIZE (bytes, read once) if set, else
   * EDDY_CORO_STACK_DEFAULT. The guard page comes on top. */
  size_t stack_size;
} eddy_coro_options;

/* ---- Spawning, waiting, cancelling ----------------------------------------- */

/* Makes a coroutine that will run fn(co, arg), starting on a coming turn.
 * options may be NULL. Returns 0 and sets *out (if out is not NULL); or,
 * with nothing made and fn never called: -ENOMEM (no memory, or no stack
 * could be mapped), -EINVAL (fn is NULL), or the error that kept the
 * overflow handler from being installed. */
EDDY_API int eddy_coro_spawn(eddy_loop *loop, eddy_coro_fn fn, void *arg,
                             const eddy_coro_options *options, eddy_coro **out);

/* The same, for a child of parent (see "Structured scopes"). Returns
 * EDDY_ECLOSED, with nothing made, if parent has returned from its function
 * already. A child of a cancelled parent starts cancelled. */
EDDY_API int eddy_coro_spawn_child(eddy_coro *parent, eddy_coro_fn fn,
                                   void *arg, const eddy_coro_options *options,
                                   eddy_coro **out);

/* Sets the done callback (replacing any earlier one). */
EDDY_API void eddy_coro_on_done(eddy_coro *co, eddy_coro_done_cb cb, void *arg);

/* Cancels co and its children: the wait co is in, or its next one, returns
 * -ECANCELED (from a coming turn: never inside this call). Does nothing if
 * co has finished its function. Safe from anywhere on the loop's thread,
 * co itself included. */
EDDY_API void eddy_coro_cancel(eddy_coro *co);

/* 1 once co has been cancelled. */
EDDY_API int eddy_coro_cancelled(const eddy_coro *co);

/* Waits until every child of co has finished. Returns 0 if all returned 0
 * (or there were none), else the first non-zero result of a child, in the
 * order they finished; or -ECANCELED (the children are then cancelled too,
 * and still running: they are waited for when co returns). */
EDDY_API int eddy_coro_wait_children(eddy_coro *co);

/* The coroutine running on this thread, or NULL outside any. */
EDDY_API eddy_coro *eddy_coro_current(void);

EDDY_API eddy_loop *eddy_coro_loop(const eddy_coro *co);

/* ---- Deferreds: a coroutine waits on one, and its result is one ---------------- */

/* Waits until d fires and moves its result into *o (the caller owns it
 * and frees it with eddy_outcome_clear). Takes d in every case: it is
 * freed before the call returns. Returns 0 for a value (o->value), the
 * error's code for an error (o->code, with its detail and payload: the
 * error counts as handled), -ECANCELED when the coroutine is cancelled (d
 * is then cancelled and freed, its chain running on -ECANCELED so that
 * nothing it held leaks, and *o is empty), -ENOMEM (d freed, *o empty), or
 * -EINVAL for a NULL d. A d that has fired already returns at once. */
EDDY_API int eddy_coro_await(eddy_coro *co, eddy_deferred *d, eddy_outcome *o);

/* A Deferred (the caller owns it) that fires when co finishes: with the
 * value set by eddy_coro_set_value (NULL if none) when its function
 * returned 0, with an error of that code otherwise (its detail from
 * eddy_coro_set_detail, else eddy_strerror). Cancelling or freeing it
 * before it fires cancels co. One join per coroutine: a second returns
 * -EBUSY. Returns 0 and sets *out, or -ENOMEM. */
EDDY_API int eddy_coro_join(eddy_coro *co, eddy_deferred **out);

/* The value co's join Deferred fires with if co's function returns 0. co
 * owns it until then (value_free frees it if nobody joins, or if the
 * function fails); a second call frees the first value. */
EDDY_API void eddy_coro_set_value(eddy_coro *co, void *value,
                                  void (*value_free)(void *));

/* The detail of the join Deferred's error if co's function returns a
 * negative code (copied: "fetch index.html: connection refused"). Returns
 * 0 or -ENOMEM (the detail is then eddy_strerror's). */
EDDY_API int eddy_coro_set_detail(eddy_coro *co, const char *detail);

/* ---- Time ------------------------------------------------------------------- */

/* Waits ns nanoseconds of loop time (a fake clock's too). Returns 0, or
 * -ENOMEM if the timer could not be armed. */
EDDY_API int eddy_coro_sleep(eddy_coro *co, int64_t ns);

/* Lets the loop run one turn's other work, then continues. Returns 0. */
EDDY_API int eddy_coro_yield(eddy_coro *co);

/* ---- Streams ------------------------------------------------------------------
 *
 * An eddy_coro_stream is a stream read and written with waiting calls. It
 * takes over the stream's callbacks (set none of your own afterwards), and
 * reads through a line reader (eddy/line.h), so lines and raw bytes can be
 * mixed: bytes read past a line stay for the next call of either kind. It
 * stops reading when bytes arrive that no read call waits for, so a
 * coroutine that does not read pushes back on its peer (TCP flow control),
 * and memory stays bounded (one read of the stream's, at most 64 KiB).
 *
 * The handle stays valid after the stream underneath has closed (a read
 * then returns the close status): the coroutine closes it with
 * eddy_coro_stream_close(), or leaves it to be closed when the coroutine
 * finishes. Any coroutine may wait on it, one at a time in a read and one
 * in a write (so one coroutine can read while another writes; a second
 * reader or writer gets -EBUSY); any code may write to it without waiting
 * (eddy_stream_write on eddy_coro_stream_get).
 */

typedef struct eddy_coro_stream eddy_coro_stream;

/* Makes s a coroutine stream owned by co, its lines framed as lo says
 * (NULL: the defaults of eddy/line.h: "\n" with an optional "\r" before
 * it, at most EDDY_LINE_MAX_DEFAULT bytes). Returns 0 and sets *out;
 * -EINVAL (bad line options); or -ENOMEM (s is left as it was, still the
 * caller's). */
EDDY_API int eddy_coro_stream_open(eddy_coro *co, eddy_stream *s,
                                   const eddy_line_options *lo,
                                   eddy_coro_stream **out);

/* The stream underneath, or NULL once it has closed. */
EDDY_API eddy_stream *eddy_coro_stream_get(const eddy_coro_stream *cs);

/* Gives cs to another coroutine (the one that will close it, or have it
 * closed when it finishes). */
EDDY_API void eddy_coro_stream_move(eddy_coro_stream *cs, eddy_coro *to);

/* Closes the stream (flushing what was written, as eddy_stream_close) and
 * releases the handle. cs must not be used afterwards. Any code may call it;
 * a coroutine waiting on cs gets EDDY_ECLOSED. */
EDDY_API void eddy_coro_stream_close(eddy_coro_stream *cs);

/* Waits for bytes and copies at most cap of them into buf. Returns the
 * count (> 0), 0 at the end of the stream (the peer finished sending), or
 * the error that closed the stream (-ECONNRESET...), EDDY_ECLOSED after it
 * closed cleanly, -ECANCELED, -EINVAL (cap 0). */
EDDY_API int eddy_coro_read(eddy_coro *co, eddy_coro_stream *cs, void *buf,
                            size_t cap);

/* The same without the copy: *data points at up to max bytes in the
 * stream's own buffer, lent until the coroutine's next waiting call (or
 * its return), and they count as read. For relaying bytes on: write them
 * (eddy_coro_write copies what it cannot send at once) before waiting on
 * anything else. Returns as eddy_coro_read. */
EDDY_API int eddy_coro_read_borrow(eddy_coro *co, eddy_coro_stream *cs,
                                   const char **data, size_t max);

/* Waits for exactly n bytes into buf. Returns n, -ENODATA if the stream
 * ended first (the bytes that came are lost), or as eddy_coro_read. n must
 * be at most INT_MAX. */
EDDY_API int eddy_coro_read_exact(eddy_coro *co, eddy_coro_stream *cs,
                                  void *buf, size_t n);

/* Waits for a line and copies it, without its delimiter ("\n" with an
 * optional "\r" before it), into buf, NUL-terminated; *len (if not NULL)
 * gets its length. Returns 1 for a line; 0 at the end of the stream (a
 * last line without a delimiter is returned as a line first);
 * EDDY_ETOOLONG for a line longer than the stream's line maximum (the rest
 * of it is skipped; the next call reads the line after it); -EMSGSIZE for
 * a line that does not fit in cap - 1 bytes (it is consumed); or as
 * eddy_coro_read. */
EDDY_API int eddy_coro_read_line(eddy_coro *co, eddy_coro_stream *cs, char *buf,
                                 size_t cap, size_t *len);

/* Writes len bytes (see eddy_stream_write), then, while the stream's
 * buffer is over its high watermark, waits until it drains to the low
 * one. Returns 0, or the stream's error, EDDY_ECLOSED, -ECANCELED (the
 * bytes are written all the same). */
EDDY_API int eddy_coro_write(eddy_coro *co, eddy_coro_stream *cs,
                             const void *data, size_t len);

/* Waits for a connection to a client endpoint string ("tcp:host:port",
 * "tls:host:port", "unix:/path"); for tls: the handshake is under way when
 * it returns, and a failed handshake is the first read's error. Sets *out
 * to a stream owned by co. Returns 0, EDDY_EPARSE (err says why), or the
 * connect's error (err gets its detail); err may be NULL if errlen is 0. */
EDDY_API int eddy_coro_connect(eddy_coro *co, const char *endpoint,
                               eddy_coro_stream **out, char *err,
                               size_t errlen);

/* ---- Listeners ----------------------------------------------------------------
 *
 * An eddy_coro_listener queues the connections its listener accepts (at
 * most 128; past that new ones are reset) until a coroutine takes them.
 */

typedef struct eddy_coro_listener eddy_coro_listener;

/* Listens on a server endpoint string; the listener belongs to co. Returns
 * 0, -ENOMEM, EDDY_EPARSE, or eddy_listen's error (err says why). */
EDDY_API int eddy_coro_listen(eddy_coro *co, const char *endpoint,
                              eddy_coro_listener **out, char *err,
                              size_t errlen);

/* The listener underneath (for its name or port). */
EDDY_API eddy_listener *eddy_coro_listener_get(const eddy_coro_listener *cl);

/* Waits for a connection and makes it a stream owned by co. Returns 0,
 * -ENOMEM, -ECANCELED, EDDY_ECLOSED (the listener is closed). */
EDDY_API int eddy_coro_accept(eddy_coro *co, eddy_coro_listener *cl,
                              eddy_coro_stream **out);

/* Stops listening; connections queued and not yet taken are closed. */
EDDY_API void eddy_coro_listener_close(eddy_coro_listener *cl);

/* ---- Processes -------------------------------------------------------------------- */

/* What a program wrote and how it ended (eddy_coro_run). */
typedef struct eddy_coro_output {
  char *out, *err; /* NUL-terminated; eddy's allocator */
  size_t out_len, err_len;
  int exit_status, term_signal; /* as for eddy_process_exit_cb */
} eddy_coro_output;

/* Runs a program to completion (as eddy_process_output) and waits. Returns
 * 0 with *result filled (free it with eddy_coro_output_free), the spawn's
 * error, -ENOMEM, or -ECANCELED: the child is then killed (SIGKILL) and
 * reaped by the loop, and nothing is left in *result. */
EDDY_API int eddy_coro_run(eddy_coro *co, const eddy_process_options *o,
                           eddy_coro_output *result);

EDDY_API void eddy_coro_output_free(eddy_coro_output *result);

/* ---- Ownership ------------------------------------------------------------------- */

/* Makes co own p: if co finishes with p still registered, p is killed
 * (SIGKILL) and its handle closed. Returns 0 or -ENOMEM. */
EDDY_API int eddy_coro_own_process(eddy_coro *co, eddy_process *p);

/* Takes p back (the program closes it itself). Does nothing if co does not
 * own p. */
EDDY_API void eddy_coro_disown_process(eddy_coro *co, eddy_process *p);

/* Registers fn(arg), to be called when co finishes (after its children,
 * in the reverse order of registration with what else it owns). Returns 0
 * or -ENOMEM. */
EDDY_API int eddy_coro_defer(eddy_coro *co, void (*fn)(void *arg), void *arg);

/* ---- Stack overflow ---------------------------------------------------------------- */

/* Installs the stack overflow handler now (it is otherwise installed by the
 * first spawn), for a program that installs its own SIGSEGV handler after
 * and wants to chain to eddy's. Returns 0 or the error of sigaction or of
 * mapping the alternate signal stack. */
EDDY_API int eddy_coro_install_overflow_handler(void);

#ifdef __cplusplus
}
#endif
#endif
