/* async.h: the Deferred's internals shared by the files of src/async
 * (combinators, the forms of eddy's operations). Nothing here is public
 * API. */
#ifndef EDDY_ASYNC_ASYNC_H
#define EDDY_ASYNC_ASYNC_H

#include "core/loop.h"
#include "eddy/async.h"

/* A consumer inside eddy (a paused outer Deferred, a combinator) that
 * owns d and takes its final result: fn(d, arg) runs each time d's chain
 * has run out of pairs with a result (not paused), and is expected to take
 * the result and free d. Setting it marks d as owned (eddy_deferred_chain
 * and the combinators refuse d after that) and, if d has fired and is
 * idle, calls fn at once. tag is the consumer's (a combinator's index). */
typedef void (*eddy__deferred_waiter)(eddy_deferred *d, void *arg);
void eddy__deferred_wait(eddy_deferred *d, eddy__deferred_waiter fn, void *arg,
                         size_t tag);
size_t eddy__deferred_tag(const eddy_deferred *d);
/* Frees d for an owner that no longer wants its result: no waiter is
 * called, and no error of d's is reported as unhandled. */
void eddy__deferred_discard(eddy_deferred *d);
/* For a canceller: why d is being cancelled, as the end of a detail:
 * "cancelled", or "timed out after N ms" (the Deferred turns a
 * -ECANCELED fired from the canceller into -ETIMEDOUT for a timeout). */
const char *eddy__deferred_cancel_reason(const eddy_deferred *d, char *buf,
                                         size_t len);

/* A detail made by printf into eddy's allocator, or NULL when fmt is NULL
 * or memory is short (the caller then falls back to eddy_strerror). */
char *eddy__vformat(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
char *eddy__format(const char *fmt, ...) EDDY__PRINTF(1, 2);

#endif
