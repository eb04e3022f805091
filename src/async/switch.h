/* switch.h: the context switch under the coroutines.
 *
 * A context is a saved stack pointer: switching pushes the callee-saved
 * registers of the running code on its own stack, stores the stack
 * pointer, loads the other one and pops that context's registers. Only
 * what the calling convention says a call preserves is saved, which is all
 * a switch made through a function call has to keep; so a switch costs
 * about as much as a function call that pushes and pops a dozen registers
 * (see bench/coro for the measured figure, against swapcontext()).
 *
 * Why a small hand-written switch rather than Boost.Context's fcontext:
 * eddy needs exactly two operations (make and swap), on two architectures,
 * and they fit in forty lines of assembly per architecture that can be
 * read in full; fcontext would add a C++ project's build and packaging to
 * a C library for the same instructions. Other architectures, and builds
 * that define EDDY_CORO_UCONTEXT, use ucontext (makecontext/swapcontext),
 * which is slower because swapcontext also saves and restores the signal
 * mask with a system call.
 *
 * The floating-point control registers (x87 control word, MXCSR, FPCR)
 * are not switched: a coroutine that changes the rounding mode changes it
 * for the thread.
 */
#ifndef EDDY_ASYNC_SWITCH_H
#define EDDY_ASYNC_SWITCH_H

#include <stddef.h>

#if !defined(EDDY_CORO_UCONTEXT) &&                                            \
    !(defined(__x86_64__) || defined(__aarch64__))
#define EDDY_CORO_UCONTEXT 1
#endif

#ifdef EDDY_CORO_UCONTEXT
#include <ucontext.h>
typedef struct eddy__ctx {
  ucontext_t uc;
} eddy__ctx;
#else
typedef struct eddy__ctx {
  void *sp;
} eddy__ctx;
#endif

/* Prepares ctx to run fn(arg) on the stack [stack, stack + size) when it
 * is first switched to. fn must never return: it switches away for the
 * last time instead. */
void eddy__ctx_make(eddy__ctx *ctx, void *stack, size_t size,
                    void (*fn)(void *), void *arg);

/* Saves the running context in from and runs to. Returns when something
 * switches back to from. */
void eddy__ctx_swap(eddy__ctx *from, eddy__ctx *to);

/* "x86_64", "aarch64" or "ucontext": which switch this build uses. */
const char *eddy__ctx_kind(void);

#endif
