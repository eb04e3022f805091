/* stack.h: coroutine stacks (mmap with a guard page below, a per-thread
 * pool) and the stack overflow report. */
#ifndef EDDY_ASYNC_STACK_H
#define EDDY_ASYNC_STACK_H

#include <stddef.h>

typedef struct eddy__stack {
  char *lo;    /* the lowest usable byte; the guard page lies just below */
  size_t size; /* usable bytes, a whole number of pages */
} eddy__stack;

/* The size a request becomes: at least EDDY_CORO_STACK_MIN, rounded up to
 * whole pages; 0 means EDDY_CORO_STACK_DEFAULT. */
size_t eddy__stack_round(size_t size);

/* A stack of size bytes (a rounded size), from the pool or newly mapped.
 * Returns 0 or -ENOMEM. Under AddressSanitizer a reused stack's shadow is
 * cleared. */
int eddy__stack_get(size_t size, eddy__stack *s);

/* Gives s back to the pool, or unmaps it when the pool is full. */
void eddy__stack_put(eddy__stack *s);

/* The stack of the coroutine running on this thread, for the overflow
 * handler (NULL: none is running). */
void eddy__stack_running(const eddy__stack *s);

/* Installs the SIGSEGV handler once per process, and an alternate signal
 * stack once per thread. Returns 0 or a negative errno. */
int eddy__stack_overflow_setup(void);

#endif
