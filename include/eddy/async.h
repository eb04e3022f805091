/* eddy/async.h: Deferreds, Twisted's composable asynchronous results.
 *
 * A Deferred (eddy_deferred) stands for a result that is not there yet: a
 * connection being made, a name being resolved, a child that has not
 * exited. Whoever produces the result fires the Deferred once, with a value
 * (eddy_deferred_callback) or an error (eddy_deferred_errback); whoever
 * consumes it adds a chain of (callback, errback) pairs that process the
 * result in turn.
 *
 * ---- The chain ---------------------------------------------------------------
 *
 * A Deferred holds one current result: a value (a void pointer with the
 * function that frees it) or an error (a negative code, a detail sentence
 * and an optional payload). When it fires, the pairs run in the order they
 * were added, each on the current result:
 *
 *   - while the result is a value, the next pair's callback runs; while it
 *     is an error, the next pair's errback. A pair whose function for the
 *     current kind is NULL is passed over.
 *   - a callback or errback changes the result in place, with
 *     eddy_deferred_set_value (an errback that does this has handled the
 *     error: the chain goes back to callbacks), eddy_deferred_set_error (a
 *     callback that does this has failed: the chain skips to the next
 *     errback), eddy_deferred_wrap_error (the same error, with context
 *     added in front of its detail), or eddy_deferred_take_value. One that
 *     changes nothing passes the result on as it is: an errback that does
 *     nothing leaves the error in place (unlike Twisted, where returning
 *     None recovers; in C recovery is said, not implied).
 *   - a callback may hand over another Deferred (eddy_deferred_chain): the
 *     chain pauses when the callback returns, and goes on with that
 *     Deferred's result once it fires (at once if it already has).
 *   - a pair added to a Deferred that has fired, and is not paused or
 *     running, runs at once, before the add call returns.
 *
 * Everything runs synchronously, on the loop's thread, from inside the call
 * that fires the Deferred or adds the pair: nothing is deferred to a later
 * loop turn (as in Twisted).
 *
 * ---- Ownership and lifetime --------------------------------------------------
 *
 * A Deferred has one owner, who frees it with eddy_deferred_free(). The
 * functions that return a Deferred (eddy_deferred_new, _succeed, _fail,
 * the combinators and every form at the end of this page) make the caller
 * its owner. Handing a Deferred to eddy_deferred_chain() or to a
 * combinator (eddy_deferred_all, _first, _list) hands over ownership: the
 * caller must not touch it again, nor add pairs to it.
 *
 * Freeing a Deferred that has not fired cancels it first (its canceller
 * runs and its chain runs on -ECANCELED, so errbacks can release what their
 * arg holds), then releases it. Freeing a Deferred from inside one of its
 * own callbacks is safe: the memory is released when the chain stops
 * running. A Deferred paused on another one owns that other one, and
 * freeing (or cancelling) the outer cancels the inner.
 *
 * The producer (whatever will fire the Deferred) keeps its pointer until it
 * fires it, or until its canceller is called, whichever comes first; after
 * either it must forget the pointer. A producer that cannot stop its work
 * at once (a thread-pool job already running) marks it abandoned in the
 * canceller and releases the result itself when the work ends. A Deferred
 * made without a canceller must not be freed or cancelled before it fires
 * unless the producer is the same code and knows.
 *
 * Values are owned by the Deferred that holds them and freed with their
 * free function when they are replaced, when an error replaces them, or
 * when the Deferred is freed; eddy_deferred_take_value() takes one out. So
 * a chain cancelled midway leaks nothing.
 *
 * ---- Reentrancy ----------------------------------------------------------------
 *
 * From inside a callback of d: adding pairs to d appends them to the chain
 * being run (they run in this same pass); firing d again returns
 * -EALREADY; firing, cancelling or freeing any other Deferred is allowed
 * (its chain runs there and then); cancelling d does nothing (d has fired);
 * freeing d is deferred to the end of the pass. A chain of Deferreds paused
 * on each other recurses once per level when the innermost fires: nesting
 * depth, not chain length, costs stack.
 *
 * ---- Errors ------------------------------------------------------------------------
 *
 * An error's code is a negative errno value or an eddy code (EDDY_E...),
 * its detail a sentence that keeps the lower layer's words and adds the
 * context of each layer above ("connect to example.test:80: connection
 * refused"). Detail strings are copied; if the copy cannot be allocated the
 * detail falls back to eddy_strerror(code), so failing never fails.
 *
 * An error that reaches the end of a chain and is still there when the
 * Deferred is freed is reported through the unhandled-error hook
 * (eddy_deferred_set_unhandled_hook) as "Unhandled error in Deferred:
 * DETAIL". The cancellation that eddy_deferred_free() itself causes is not
 * reported (the owner has said it does not want the result); any other
 * cancellation or timeout left unhandled is. By default nothing is printed:
 * the library never prints by itself.
 *
 * All of this is for the loop's thread only.
 */
#ifndef EDDY_ASYNC_H
#define EDDY_ASYNC_H

#include <stdarg.h>

#include "core.h"
#include "net.h"
#include "proc.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EDDY__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define EDDY__PRINTF(fmt, args)
#endif

typedef struct eddy_deferred eddy_deferred;

/* ---- Outcomes ------------------------------------------------------------------
 *
 * A result taken out of a Deferred, or one item of a combinator's list: a
 * value or an error, with what frees it. A zeroed eddy_outcome is the value
 * NULL. */
typedef struct eddy_outcome {
  int code;                   /* 0 for a value; a negative code: an error */
  void *value;                /* the value (code 0) */
  void (*value_free)(void *); /* frees value; NULL: nothing to free */
  char *detail;  /* error: the detail (NULL: eddy_strerror(code)); eddy
                   allocates it: leave it NULL in an outcome made by hand */
  void *payload; /* error: extra data for whoever handles it */
  void (*payload_free)(void *);
} eddy_outcome;

/* Frees what o holds (value, detail, payload) and zeroes it. */
EDDY_API void eddy_outcome_clear(eddy_outcome *o);

/* o's detail, or eddy_strerror(o->code) when it has none; "" for a value. */
EDDY_API const char *eddy_outcome_detail(const eddy_outcome *o);

/* The value of eddy_deferred_all and eddy_deferred_list: one outcome per
 * Deferred given, in the order given. Freed as a whole with the Deferred's
 * value (eddy_outcome_list_free); to keep one item's value, copy its
 * pointer and set its value_free to NULL. */
typedef struct eddy_outcome_list {
  size_t count;
  eddy_outcome *items;
} eddy_outcome_list;

/* Frees every item and the list (a value_free for a list; NULL is fine). */
EDDY_API void eddy_outcome_list_free(void *list);

/* ---- Making and firing -------------------------------------------------------------
 *
 * The canceller is called at most once, from eddy_deferred_cancel (or a
 * free or a timeout, which cancel), only while the Deferred has not fired.
 * It stops the work if it can and may fire the Deferred itself, typically
 * with eddy_deferred_errback and its own detail; if it does not, the
 * Deferred then fails with -ECANCELED ("cancelled"), or -ETIMEDOUT for a
 * timeout. After the canceller returns the producer must forget d. */
typedef void (*eddy_deferred_canceller)(eddy_deferred *d, void *arg);

/* Makes an unfired Deferred on loop (whose timers its timeout uses).
 * canceller may be NULL. Returns 0 and sets *out, -EINVAL for a NULL loop,
 * or -ENOMEM. */
EDDY_API int eddy_deferred_new(eddy_loop *loop,
                               eddy_deferred_canceller canceller, void *arg,
                               eddy_deferred **out);

/* Releases the owner's Deferred: cancels it if it has not fired (see
 * "Ownership" above), reports an unhandled error, frees the current value,
 * and frees the memory, at once or, from inside one of its callbacks, when
 * the chain stops running. NULL is ignored. */
EDDY_API void eddy_deferred_free(eddy_deferred *d);

/* The loop the Deferred was made on. */
EDDY_API eddy_loop *eddy_deferred_loop(const eddy_deferred *d);

/* Fires d with a value, which d owns from now on (value_free may be NULL).
 * Runs the chain before returning. Returns 0; -EALREADY if d has already
 * fired (Twisted's AlreadyCalledError: nothing is aborted); or -ECANCELED
 * if it was cancelled (so fired already): in both error cases value is
 * freed with value_free before the return. */
EDDY_API int eddy_deferred_callback(eddy_deferred *d, void *value,
                                    void (*value_free)(void *));

/* Fires d with an error: code (negative; a code >= 0 is taken as -EINVAL)
 * and a detail made by printf from fmt (NULL: eddy_strerror(code)).
 * Returns as eddy_deferred_callback does. */
EDDY_API int eddy_deferred_errback(eddy_deferred *d, int code, const char *fmt,
                                   ...) EDDY__PRINTF(3, 4);

/* The same with a payload that the error carries (freed with payload_free
 * when the error is replaced or d freed; on -EALREADY at once). */
EDDY_API int eddy_deferred_errback_payload(eddy_deferred *d, int code,
                                           void *payload,
                                           void (*payload_free)(void *),
                                           const char *fmt, ...)
    EDDY__PRINTF(5, 6);

/* Fires d with an outcome, moved out of o (o is zeroed, in every case).
 * Passes results from one Deferred to another. Returns as
 * eddy_deferred_callback does. */
EDDY_API int eddy_deferred_fire(eddy_deferred *d, eddy_outcome *o);

/* Twisted's succeed() and fail(): a new Deferred already fired, for a
 * function that must return a Deferred but has its answer at once.
 * Return 0 and set *out, or -ENOMEM (succeed frees value then). */
EDDY_API int eddy_deferred_succeed(eddy_loop *loop, void *value,
                                   void (*value_free)(void *),
                                   eddy_deferred **out);
EDDY_API int eddy_deferred_fail(eddy_loop *loop, eddy_deferred **out, int code,
                                const char *fmt, ...) EDDY__PRINTF(4, 5);

/* 1 once d has fired (cancellation included), 0 before. */
EDDY_API int eddy_deferred_called(const eddy_deferred *d);

/* 1 while d's chain waits on another Deferred (eddy_deferred_chain). */
EDDY_API int eddy_deferred_paused(const eddy_deferred *d);

/* ---- The chain ------------------------------------------------------------------ */

/* A callback or errback: d is the Deferred whose chain runs; the current
 * result is read and changed with the functions below. */
typedef void (*eddy_deferred_cb)(eddy_deferred *d, void *arg);

/* Appends a pair: callback runs on a value, errback on an error; either
 * may be NULL. If d has fired and is neither paused nor running, the chain
 * runs at once, this pair included. Returns 0, -EINVAL if both are NULL,
 * or -ENOMEM (the chain is unchanged). The first four pairs of a Deferred
 * are stored inside it: adding them never allocates. */
EDDY_API int eddy_deferred_add_callbacks(eddy_deferred *d,
                                         eddy_deferred_cb callback,
                                         eddy_deferred_cb errback, void *arg);

/* (callback, NULL). */
EDDY_API int eddy_deferred_add_callback(eddy_deferred *d, eddy_deferred_cb cb,
                                        void *arg);
/* (NULL, errback). */
EDDY_API int eddy_deferred_add_errback(eddy_deferred *d, eddy_deferred_cb eb,
                                       void *arg);
/* (fn, fn): Twisted's addBoth. */
EDDY_API int eddy_deferred_add_both(eddy_deferred *d, eddy_deferred_cb fn,
                                    void *arg);

/* ---- The current result ----------------------------------------------------------
 *
 * Meant for callbacks and errbacks; also valid on a fired Deferred outside
 * its chain (after the chain has run, the current result is its final
 * result). Before d fires the result is the value NULL. */

/* 0 while the current result is a value; the error's code otherwise. */
EDDY_API int eddy_deferred_error(const eddy_deferred *d);

/* The error's detail (eddy_strerror(code) if none was given); NULL while
 * the result is a value. Valid until the result changes. */
EDDY_API const char *eddy_deferred_detail(const eddy_deferred *d);

/* The error's payload, or NULL. */
EDDY_API void *eddy_deferred_payload(const eddy_deferred *d);

/* The value (borrowed: d still owns it), or NULL for an error. */
EDDY_API void *eddy_deferred_value(const eddy_deferred *d);

/* Takes the value out: the caller owns it (and frees it as its producer
 * documents); the current result becomes the value NULL. NULL for an
 * error (which stays). */
EDDY_API void *eddy_deferred_take_value(eddy_deferred *d);

/* Moves the whole current result into *o (the caller owns it and frees it
 * with eddy_outcome_clear); d's result becomes the value NULL, so an
 * error taken out this way counts as handled. */
EDDY_API void eddy_deferred_take_outcome(eddy_deferred *d, eddy_outcome *o);

/* Replaces the current result with a value (the old one is freed). An
 * errback that calls it has handled the error. */
EDDY_API void eddy_deferred_set_value(eddy_deferred *d, void *value,
                                      void (*value_free)(void *));

/* Replaces the current result with an error (the old one is freed; fmt may
 * be NULL, and may print the old detail: it is formatted first). Returns
 * code (-EINVAL for a code >= 0), for `return eddy_deferred_set_error(...)`
 * style. */
EDDY_API int eddy_deferred_set_error(eddy_deferred *d, int code,
                                     const char *fmt, ...) EDDY__PRINTF(3, 4);

/* The same with a payload. */
EDDY_API int eddy_deferred_set_error_payload(eddy_deferred *d, int code,
                                             void *payload,
                                             void (*payload_free)(void *),
                                             const char *fmt, ...)
    EDDY__PRINTF(5, 6);

/* Keeps the current error and its code, and puts context in front of its
 * detail: "CONTEXT: OLD DETAIL". Returns the code, or 0 (and does nothing)
 * while the result is a value. */
EDDY_API int eddy_deferred_wrap_error(eddy_deferred *d, const char *fmt, ...)
    EDDY__PRINTF(2, 3);

/* Called from a callback or errback of d: the chain pauses when it
 * returns, and goes on with inner's result once inner fires (at once if it
 * has fired). d takes ownership of inner in every case. Until then d's
 * current result is the value NULL (the old one is freed). Cancelling or
 * freeing d cancels inner. Returns 0, or -EINVAL (inner is NULL or d
 * itself, d is not running its chain, or inner is already owned by a
 * chain or a combinator, or waits on d) and then inner is freed (unless
 * it belongs to that other owner). Adding pairs to inner after this is
 * not allowed: its result is d's. */
EDDY_API int eddy_deferred_chain(eddy_deferred *d, eddy_deferred *inner);

/* ---- Cancellation and timeouts ------------------------------------------------------ */

/* Twisted's Deferred.cancel. Before d fires: calls the canceller, then, if
 * the canceller did not fire d, fails it with -ECANCELED ("cancelled"); a
 * later eddy_deferred_callback or _errback by a producer that did not
 * listen returns -ECANCELED and frees its value. While d is paused on an
 * inner Deferred: cancels the inner one (whose error, -ECANCELED unless its
 * canceller said otherwise, continues d's chain). After d has fired and
 * while it is not paused: nothing. Safe from any callback. */
EDDY_API void eddy_deferred_cancel(eddy_deferred *d);

/* Cancels d if it has not fired timeout_ns from now (the loop's clock, so
 * a fake clock drives it), and then fails it with -ETIMEDOUT ("timed out
 * after N ms") instead of -ECANCELED (also when the canceller fires it with
 * -ECANCELED itself). A second call replaces the first's deadline; a
 * negative timeout_ns removes it. The timer lives inside d (no
 * allocation) and is stopped when d fires. Returns 0, -EALREADY (d has
 * fired), or -ENOMEM (the loop's timer heap could not grow). */
EDDY_API int eddy_deferred_set_timeout(eddy_deferred *d, int64_t timeout_ns);

/* ---- Combinators ----------------------------------------------------------------------
 *
 * Each takes ownership of the n Deferreds in ds (n may be 0; ds may then
 * be NULL) in every case, even when it fails: those are then cancelled and
 * freed. Each returns 0 and sets *out, or -ENOMEM. Cancelling or freeing
 * *out cancels every item that has not fired, and *out fails with
 * -ECANCELED. Items that have fired already count at once.
 */

/* Twisted's gatherResults: fires with an eddy_outcome_list of every item's
 * value (all codes 0) once every item has succeeded; an empty ds fires at
 * once with an empty list. On the first item that fails, fails with its
 * code and "item I: DETAIL", and cancels the others. */
EDDY_API int eddy_deferred_all(eddy_loop *loop, eddy_deferred **ds, size_t n,
                               eddy_deferred **out);

/* The first success: fires with the value of the first item that
 * succeeds (moved into *out) and cancels the others. If every item fails,
 * fails with the code of the last failure and "all N failed; last: DETAIL";
 * an empty ds fails at once with -ENOENT. */
EDDY_API int eddy_deferred_first(eddy_loop *loop, eddy_deferred **ds, size_t n,
                                 eddy_deferred **out);

/* Twisted's DeferredList: fires, once every item has fired, with an
 * eddy_outcome_list holding each item's result, value or error (errors in
 * it count as handled). Never fails except by its own cancellation. */
EDDY_API int eddy_deferred_list(eddy_loop *loop, eddy_deferred **ds, size_t n,
                                eddy_deferred **out);

/* ---- The unhandled-error hook -------------------------------------------------------- */

/* Called with the error's code and the message "Unhandled error in
 * Deferred: DETAIL" (borrowed). */
typedef void (*eddy_deferred_unhandled_fn)(int code, const char *message,
                                           void *arg);

/* Sets the hook for every loop of the process (NULL: report nothing, the
 * default). Set it before loops run; it is not synchronized. */
EDDY_API void eddy_deferred_set_unhandled_hook(eddy_deferred_unhandled_fn fn,
                                               void *arg);

/* ---- Deferred forms of eddy's operations ------------------------------------------
 *
 * Each returns 0 and sets *out to a Deferred the caller owns, or -ENOMEM
 * (no Deferred is made, nothing is started). Every other failure, those
 * found at once included (a malformed endpoint, a program that cannot be
 * run), fails the Deferred, with a detail naming the operation and keeping
 * the lower layer's words. Cancelling stops the operation where it can, as
 * each says.
 */

/* Connects to a client endpoint string ("tcp:host=example.test:port=80",
 * "tls:example.test:443", "unix:/run/app.sock"). Fires with the
 * eddy_stream (the value; freeing it closes the stream: take it with
 * eddy_deferred_take_value and give it callbacks) once it is connected,
 * and for tls: once the handshake has completed. The stream has no
 * callbacks when it is handed over. Fails with the connect's code and
 * "connect to ENDPOINT: DETAIL" (EDDY_EPARSE for a bad string; the TLS
 * handshake's error for a failed handshake). Cancelling stops the connect
 * or aborts the stream during the handshake. */
EDDY_API int eddy_deferred_connect(eddy_loop *loop, const char *endpoint,
                                   eddy_deferred **out);

/* The same with a parsed endpoint (copied). */
EDDY_API int eddy_deferred_connect_endpoint(eddy_loop *loop,
                                            const eddy_endpoint *ep,
                                            eddy_deferred **out);

#define EDDY_RESOLVED_MAX 16

/* The value of eddy_deferred_resolve. Freed by the Deferred that holds it;
 * one taken out is freed with eddy_resolved_free. */
typedef struct eddy_resolved {
  int count; /* 1..EDDY_RESOLVED_MAX */
  socklen_t lens[EDDY_RESOLVED_MAX];
  struct sockaddr_storage addrs[EDDY_RESOLVED_MAX]; /* port filled in */
} eddy_resolved;

EDDY_API void eddy_resolved_free(void *resolved);

/* Resolves host (a name or a numeric address) for port on the loop's
 * thread pool (getaddrinfo, stream sockets, IPv6 and IPv4). Fires with an
 * eddy_resolved. Fails with EDDY_ERESOLVE and "resolve HOST: cannot
 * resolve host name" or -ENOMEM. Cancelling drops the answer (a lookup
 * already running finishes on its thread). */
EDDY_API int eddy_deferred_resolve(eddy_loop *loop, const char *host,
                                   unsigned port, eddy_deferred **out);

/* The value of eddy_deferred_process_output and eddy_deferred_spawn; one
 * taken out is freed with eddy_process_result_free. */
typedef struct eddy_process_result {
  int exit_status; /* as for eddy_process_exit_cb */
  int term_signal;
  char *out; /* stdout, NUL-terminated; NULL for eddy_deferred_spawn */
  size_t out_len;
  char *err; /* stderr, the same */
  size_t err_len;
} eddy_process_result;

EDDY_API void eddy_process_result_free(void *result);

/* Twisted's getProcessOutputAndValue over eddy_process_output(): fires
 * with an eddy_process_result once the child has exited and both pipes
 * have ended. A non-zero exit status is a value, not an error (the caller
 * decides). Fails with the spawn's code and "run FILE: DETAIL", or the
 * collection's (-ENOMEM). Cancelling abandons the output: the Deferred
 * fails at once, the child runs to its end and what it wrote is
 * discarded. */
EDDY_API int eddy_deferred_process_output(eddy_loop *loop,
                                          const eddy_process_options *o,
                                          eddy_deferred **out);

/* Spawns a child as eddy_process_spawn() does (o->exit_cb and o->arg are
 * ignored: the Deferred takes the exit) and returns a Deferred that fires
 * with an eddy_process_result (out and err NULL) when the child exits.
 * *p is the child's handle, lent: valid (for eddy_process_pid, _kill,
 * _terminate) until the Deferred's chain has run on the exit, or until
 * the Deferred is cancelled; eddy closes it then, and the caller never
 * does. Fails the Deferred with the spawn's code and "spawn FILE: DETAIL"
 * (*p is then NULL). Cancelling stops waiting and releases the handle;
 * the child is not signalled (kill or terminate it first for that) and is
 * still reaped when it ends. */
EDDY_API int eddy_deferred_spawn(eddy_loop *loop, const eddy_process_options *o,
                                 eddy_process **p, eddy_deferred **out);

/* Fires with the value NULL delay_ns from now (the loop's clock: a fake
 * clock makes it exact). Cancelling stops the timer. The timer lives in
 * the Deferred's producer and keeps the loop running. */
EDDY_API int eddy_deferred_sleep(eddy_loop *loop, int64_t delay_ns,
                                 eddy_deferred **out);

/* Twisted's deferToThread: fn(arg, &value) runs on a thread of the loop's
 * pool and returns 0 (the Deferred fires with value, freed with
 * value_free) or a negative code (it fails with "work: "
 * eddy_strerror(code)). arg_free(arg) (may be NULL) runs on the loop's
 * thread once fn can no longer run: after it ran or was cancelled. Failure
 * to start the pool fails the Deferred. Cancelling unqueues the work if it
 * has not started; if it has, its value is freed when it ends. */
typedef int (*eddy_deferred_work_fn)(void *arg, void **value);
EDDY_API int eddy_deferred_work(eddy_loop *loop, eddy_deferred_work_fn fn,
                                void *arg, void (*arg_free)(void *),
                                void (*value_free)(void *),
                                eddy_deferred **out);

/* "The stream has drained": fires with the value NULL once s's write buffer
 * is at or below its low watermark: at once (before returning) if s is not
 * over its high watermark, else when s would call its drain callback (which
 * it still does). Fails with EDDY_ECLOSED and "stream closed" if s is
 * closing, or with s's close status and detail if it closes first. Several
 * may wait on one stream. Cancelling stops waiting. s must outlive the
 * wait, which it does: a closing stream fails the Deferred before it is
 * freed. */
EDDY_API int eddy_deferred_drained(eddy_stream *s, eddy_deferred **out);

#ifdef __cplusplus
}
#endif
#endif
