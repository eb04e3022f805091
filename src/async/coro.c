/* coro.c: coroutines on the loop: spawn, the switch in and out, waiting
 * and waking, cancellation, children, ownership, sleep.
 *
 * Who runs a coroutine. Coroutines are always entered from the loop's own
 * stack (the "main" context of the thread), never from another coroutine:
 * a coroutine that wakes another, or cancels it, schedules it for the
 * call-soon step instead. A callback running on the main stack (a stream's
 * data, a timer) wakes a waiting coroutine directly, inside the callback,
 * which saves a loop turn per wait on the hot path (a coroutine echo
 * server reads and writes within the data callback, as a callback server
 * does). So there is one switch in and one switch out per wait, and the
 * call chain of coroutines is never deeper than one.
 *
 * The end of a coroutine is in two parts. On its own stack, after its
 * function returns: its children are cancelled and waited for (a wait that
 * cancellation cannot interrupt), then what it owns is released. Back on
 * the main stack: the stack goes back to the pool, the done callback runs,
 * the parent hears of it, and the handle closes (freed at the end of the
 * turn).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "async/coro.h"
#include "sys/alloc.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDDY__ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EDDY__ASAN)
#define EDDY__ASAN 1
#endif
#ifdef EDDY__ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/* The thread's main context, and the coroutine running, if any. */
static _Thread_local eddy__ctx main_ctx;
static _Thread_local eddy_coro *current;
#ifdef EDDY__ASAN
static _Thread_local const void *main_bottom;
static _Thread_local size_t main_size;
static _Thread_local void *main_fake;
#endif

/* ---- Switching ---------------------------------------------------------------- */

/* Main stack to co, and back when co switches out. */
static void switch_in(eddy_coro *co) {
  current = co;
  eddy__stack_running(&co->stack);
#ifdef EDDY__ASAN
  __sanitizer_start_switch_fiber(&main_fake, co->stack.lo, co->stack.size);
#endif
  eddy__ctx_swap(&main_ctx, &co->ctx);
#ifdef EDDY__ASAN
  __sanitizer_finish_switch_fiber(main_fake, NULL, NULL);
#endif
  current = NULL;
  eddy__stack_running(NULL);
}

/* co to the main stack; returns when co is switched in again. */
static void switch_out(eddy_coro *co) {
#ifdef EDDY__ASAN
  __sanitizer_start_switch_fiber(&co->fake_stack, main_bottom, main_size);
#endif
  eddy__ctx_swap(&co->ctx, &main_ctx);
#ifdef EDDY__ASAN
  __sanitizer_finish_switch_fiber(co->fake_stack, &main_bottom, &main_size);
#endif
}

static void finish(eddy_coro *co);

/* Runs co until it waits or ends. Main stack only. */
static void resume(eddy_coro *co) {
  switch_in(co);
  if (co->state == EDDY__CORO_DONE)
    finish(co);
}

/* ---- Waiting and waking ----------------------------------------------------- */

int eddy__coro_check(eddy_coro *co) {
  if (co == NULL || co != current)
    return -EPERM;
  if (co->cancelled && !co->shielded)
    return -ECANCELED;
  return 0;
}

int eddy__coro_wait(eddy_coro *co, void (*undo)(void *arg), void *arg) {
  co->waiting = 1;
  co->undo = undo;
  co->undo_arg = arg;
  switch_out(co);
  return co->wait_result;
}

void eddy__coro_wake(eddy_coro *co, int result, int defer) {
  if (!co->waiting)
    return;
  co->waiting = 0;
  co->undo = NULL;
  co->wait_result = result;
  if (current == NULL && !defer)
    resume(co);
  else
    eddy__soon_schedule(co->loop, &co->soon);
}

/* The call-soon step: a start, the end of a yield, or a wake made from
 * inside a coroutine. */
static void on_soon(eddy__soon *call, void *arg) {
  eddy_coro *co = arg;
  (void)call;
  if (co->waiting) { /* a yield */
    co->waiting = 0;
    co->wait_result = 0;
  }
  resume(co);
}

/* ---- Cancellation --------------------------------------------------------------- */

void eddy_coro_cancel(eddy_coro *co) {
  if (co->returned || co->state == EDDY__CORO_DONE)
    return;
  if (!co->cancelled) {
    co->cancelled = 1;
    for (eddy_coro *c = co->children; c != NULL; c = c->next_sibling)
      eddy_coro_cancel(c);
  }
  if (co->waiting && !co->shielded) {
    void (*undo)(void *) = co->undo;
    co->undo = NULL;
    if (undo)
      undo(co->undo_arg);
    eddy__coro_wake(co, -ECANCELED, 1);
  }
}

int eddy_coro_cancelled(const eddy_coro *co) {
  return co->cancelled;
}

/* eddy_loop_close_all's close of the handle. */
static void close_handle(eddy__handle *h) {
  eddy_coro_cancel((eddy_coro *)h);
}

/* ---- Ownership --------------------------------------------------------------------- */

void eddy__coro_own(eddy_coro *co, eddy__owned *o,
                    void (*release)(eddy__owned *o)) {
  o->owner = co;
  o->release = release;
  o->prev = NULL;
  o->next = co->owned;
  if (co->owned)
    co->owned->prev = o;
  co->owned = o;
}

void eddy__coro_disown(eddy__owned *o) {
  if (o->owner == NULL)
    return;
  if (o->prev)
    o->prev->next = o->next;
  else
    o->owner->owned = o->next;
  if (o->next)
    o->next->prev = o->prev;
  o->owner = NULL;
  o->prev = o->next = NULL;
}

static void release_owned(eddy_coro *co) {
  while (co->owned) {
    eddy__owned *o = co->owned;
    eddy__coro_disown(o);
    o->release(o);
  }
}

typedef struct deferred_fn {
  eddy__owned own;
  void (*fn)(void *);
  void *arg;
} deferred_fn;

static void run_deferred(eddy__owned *o) {
  deferred_fn *d = (deferred_fn *)o;
  d->fn(d->arg);
  eddy__free(d);
}

int eddy_coro_defer(eddy_coro *co, void (*fn)(void *arg), void *arg) {
  deferred_fn *d = eddy__malloc(sizeof *d);
  if (d == NULL)
    return -ENOMEM;
  d->fn = fn;
  d->arg = arg;
  eddy__coro_own(co, &d->own, run_deferred);
  return 0;
}

typedef struct owned_process {
  eddy__owned own;
  eddy_process *p;
} owned_process;

static void release_process(eddy__owned *o) {
  owned_process *op = (owned_process *)o;
  eddy_process_kill(op->p, SIGKILL);
  eddy_process_close(op->p);
  eddy__free(op);
}

int eddy_coro_own_process(eddy_coro *co, eddy_process *p) {
  owned_process *op = eddy__malloc(sizeof *op);
  if (op == NULL)
    return -ENOMEM;
  op->p = p;
  eddy__coro_own(co, &op->own, release_process);
  return 0;
}

void eddy_coro_disown_process(eddy_coro *co, eddy_process *p) {
  for (eddy__owned *o = co->owned; o != NULL; o = o->next) {
    if (o->release == release_process && ((owned_process *)o)->p == p) {
      eddy__coro_disown(o);
      eddy__free(o);
      return;
    }
  }
}

/* ---- Children ------------------------------------------------------------------------ */

static void link_child(eddy_coro *parent, eddy_coro *c) {
  c->parent = parent;
  c->prev_sibling = NULL;
  c->next_sibling = parent->children;
  if (parent->children)
    parent->children->prev_sibling = c;
  parent->children = c;
  parent->nchildren++;
}

static void unlink_child(eddy_coro *c) {
  eddy_coro *parent = c->parent;
  if (c->prev_sibling)
    c->prev_sibling->next_sibling = c->next_sibling;
  else
    parent->children = c->next_sibling;
  if (c->next_sibling)
    c->next_sibling->prev_sibling = c->prev_sibling;
  parent->nchildren--;
  if (c->result != 0 && parent->child_err == 0)
    parent->child_err = c->result;
  if (parent->nchildren == 0 && parent->waiting_children)
    eddy__coro_wake(parent, 0, 0);
}

static void stop_waiting_children(void *arg) {
  ((eddy_coro *)arg)->waiting_children = 0;
}

int eddy_coro_wait_children(eddy_coro *co) {
  int err = eddy__coro_check(co);
  if (err != 0)
    return err;
  if (co->nchildren > 0) {
    co->waiting_children = 1;
    err = eddy__coro_wait(co, stop_waiting_children, co);
    co->waiting_children = 0;
    if (err != 0)
      return err;
  }
  err = co->child_err;
  co->child_err = 0;
  return err;
}

/* ---- The life of a coroutine ----------------------------------------------------------- */

/* The end of a coroutine, on its own stack: the scope closes. */
static void close_scope(eddy_coro *co) {
  co->returned = 1;
  if (co->nchildren > 0) {
    for (eddy_coro *c = co->children; c != NULL; c = c->next_sibling)
      eddy_coro_cancel(c);
    co->shielded = 1;
    co->waiting_children = 1;
    eddy__coro_wait(co, NULL, NULL);
    co->waiting_children = 0;
  }
  release_owned(co);
}

static void entry(void *arg) {
  eddy_coro *co = arg;
#ifdef EDDY__ASAN
  __sanitizer_finish_switch_fiber(NULL, &main_bottom, &main_size);
#endif
  co->state = EDDY__CORO_RUNNING;
  co->result = co->fn(co, co->arg);
  close_scope(co);
  co->state = EDDY__CORO_DONE;
#ifdef EDDY__ASAN
  /* NULL: this stack's fake frames can go, it is not coming back. */
  __sanitizer_start_switch_fiber(NULL, main_bottom, main_size);
#endif
  eddy__ctx_swap(&co->ctx, &main_ctx);
  __builtin_unreachable();
}

/* The end of a coroutine, on the main stack. */
static void finish(eddy_coro *co) {
  eddy__timer_stop(&co->timer);
  eddy__soon_cancel(&co->soon);
  eddy__stack_put(&co->stack);
  if (co->done)
    co->done(co, co->result, co->done_arg);
  eddy__coro_report(co);
  eddy__handle_close(&co->h);
  if (co->parent)
    unlink_child(co);
}

static void on_timer(eddy__timer *t, void *arg) {
  (void)t;
  eddy__coro_wake(arg, 0, 0);
}

static int spawn(eddy_loop *loop, eddy_coro *parent, eddy_coro_fn fn, void *arg,
                 const eddy_coro_options *o, eddy_coro **out) {
  eddy_coro *co;
  int err;
  if (fn == NULL)
    return -EINVAL;
  err = eddy__stack_overflow_setup();
  if (err != 0)
    return err;
  co = eddy__calloc(1, sizeof *co);
  if (co == NULL)
    return -ENOMEM;
  err = eddy__stack_get(eddy__stack_round(o ? o->stack_size : 0), &co->stack);
  if (err != 0) {
    eddy__free(co);
    return err;
  }
  co->loop = loop;
  co->fn = fn;
  co->arg = arg;
  co->state = EDDY__CORO_NEW;
  eddy__ctx_make(&co->ctx, co->stack.lo, co->stack.size, entry, co);
  eddy__soon_init(&co->soon, on_soon, co);
  eddy__timer_init(loop, &co->timer, on_timer, co);
  eddy__handle_init(loop, &co->h, close_handle);
  if (parent) {
    link_child(parent, co);
    if (parent->cancelled)
      co->cancelled = 1;
  }
  eddy__soon_schedule(loop, &co->soon);
  if (out)
    *out = co;
  return 0;
}

int eddy_coro_spawn(eddy_loop *loop, eddy_coro_fn fn, void *arg,
                    const eddy_coro_options *o, eddy_coro **out) {
  return spawn(loop, NULL, fn, arg, o, out);
}

int eddy_coro_spawn_child(eddy_coro *parent, eddy_coro_fn fn, void *arg,
                          const eddy_coro_options *o, eddy_coro **out) {
  if (parent->returned || parent->state == EDDY__CORO_DONE)
    return EDDY_ECLOSED;
  return spawn(parent->loop, parent, fn, arg, o, out);
}

void eddy_coro_on_done(eddy_coro *co, eddy_coro_done_cb cb, void *arg) {
  co->done = cb;
  co->done_arg = arg;
}

eddy_coro *eddy_coro_current(void) {
  return current;
}

eddy_loop *eddy_coro_loop(const eddy_coro *co) {
  return co->loop;
}

/* ---- Time --------------------------------------------------------------------------- */

static void stop_timer(void *arg) {
  eddy__timer_stop(&((eddy_coro *)arg)->timer);
}

int eddy_coro_sleep(eddy_coro *co, int64_t ns) {
  int err = eddy__coro_check(co);
  if (err != 0)
    return err;
  err = eddy__timer_start(&co->timer, ns);
  if (err != 0)
    return err;
  return eddy__coro_wait(co, stop_timer, co);
}

static void stop_yield(void *arg) {
  eddy__soon_cancel(&((eddy_coro *)arg)->soon);
}

int eddy_coro_yield(eddy_coro *co) {
  int err = eddy__coro_check(co);
  if (err != 0)
    return err;
  eddy__soon_schedule(co->loop, &co->soon);
  return eddy__coro_wait(co, stop_yield, co);
}
