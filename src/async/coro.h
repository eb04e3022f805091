/* coro.h: the coroutine internals shared by the files of src/async: the
 * coroutine itself, the wait/wake primitive every waiting call is built
 * on, and the ownership list. */
#ifndef EDDY_ASYNC_CORO_H
#define EDDY_ASYNC_CORO_H

#include "async/stack.h"
#include "async/switch.h"
#include "core/loop.h"
#include "eddy/coro.h"

/* Something a coroutine owns: closed by release() when the coroutine
 * finishes, unless unlinked first. Embedded in what is owned. */
typedef struct eddy__owned eddy__owned;
struct eddy__owned {
  eddy__owned *prev, *next; /* the owner's list; prev NULL when first */
  eddy_coro *owner;         /* NULL when not on a list */
  void (*release)(eddy__owned *o);
};

enum eddy__coro_state {
  EDDY__CORO_NEW,     /* spawned, not yet started */
  EDDY__CORO_RUNNING, /* on its stack now, or suspended in a wait */
  EDDY__CORO_DONE,    /* its function returned and its scope is closed */
};

struct eddy_coro {
  eddy__handle h; /* first: the loop frees the coroutine as a handle */
  eddy_loop *loop;
  eddy_coro_fn fn;
  void *arg;
  eddy_coro_done_cb done;
  void *done_arg;
  eddy__ctx ctx;
  eddy__stack stack;
  int state;
  int returned;  /* fn has returned: no more children */
  int cancelled; /* sticky */
  int result;
  /* The wait under way: undo (if not NULL) takes back what the waiting
   * call set up, when the coroutine is cancelled instead of woken. */
  int waiting;
  int shielded; /* the final wait for the children: not cancellable */
  int wait_result;
  void (*undo)(void *arg);
  void *undo_arg;
  eddy__soon soon;   /* start, yield, and resumes from inside a coroutine */
  eddy__timer timer; /* eddy_coro_sleep */
  eddy_coro *parent;
  eddy_coro *children; /* the first child; siblings linked below */
  eddy_coro *prev_sibling, *next_sibling;
  size_t nchildren;
  int child_err;
  int waiting_children;
  eddy__owned *owned;  /* the most recently registered first */
  eddy_deferred *join; /* eddy_coro_join's, until it fires or is cancelled */
  void *value;         /* eddy_coro_set_value's */
  void (*value_free)(void *);
  char *detail;     /* eddy_coro_set_detail's */
  void *fake_stack; /* AddressSanitizer's, while switched away */
};

/* 0 if co may wait now; -EPERM if co is not the running coroutine;
 * -ECANCELED if it has been cancelled. Every waiting call starts here. */
int eddy__coro_check(eddy_coro *co);

/* Suspends the running coroutine co until eddy__coro_wake. If co is
 * cancelled meanwhile, undo(arg) is called (undo may be NULL) and the wait
 * returns -ECANCELED. Returns the woken result otherwise. */
int eddy__coro_wait(eddy_coro *co, void (*undo)(void *arg), void *arg);

/* Ends co's wait with result. From code running on the loop's own stack
 * co continues at once, inside this call; from inside a coroutine (or
 * with defer), on the coming call-soon step. Does nothing unless co is
 * waiting. */
void eddy__coro_wake(eddy_coro *co, int result, int defer);

/* Fires co's join Deferred, if any, and frees the value and detail it
 * did not take (coro_await.c). Main stack, once co is done. */
void eddy__coro_report(eddy_coro *co);

/* Puts o on co's list of owned things. */
void eddy__coro_own(eddy_coro *co, eddy__owned *o,
                    void (*release)(eddy__owned *o));
/* Takes o off its owner's list, if it is on one. */
void eddy__coro_disown(eddy__owned *o);

#endif
