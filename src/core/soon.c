/* soon.c: call-soon: the internal eddy__soon (a node its owner embeds), the
 * public eddy_call handle that wraps one, and eddy_loop_call_soon.
 *
 * The queue is a circular doubly linked list with a sentinel in the loop,
 * so scheduling appends in O(1) without allocating and cancelling unlinks
 * in O(1) without knowing which list the node is on. The call-soon phase
 * first moves the whole queue to a second list (the batch) and runs the
 * batch from its head: a call scheduled while the batch runs, its own
 * included, goes on the emptied queue and waits for the next turn; a call
 * cancelled while the batch runs is unlinked from the batch and never runs.
 *
 * eddy_loop_call_soon has no node of the caller's to use: it takes one from
 * a free list of the loop's (allocating only when the list is empty), so a
 * program that keeps calling it allocates nothing once warm, as the array
 * this replaced did.
 */
#include <errno.h>
#include <stddef.h>

#include "core/loop.h"
#include "sys/alloc.h"

/* ---- The queue --------------------------------------------------------------- */

static void queue_init(eddy__soon_queue *q) {
  q->head.prev = q->head.next = &q->head;
}

static int queue_empty(const eddy__soon_queue *q) {
  return q->head.next == &q->head;
}

static void unlink_node(eddy__soon *c) {
  c->prev->next = c->next;
  c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

/* Moves every node of from to the end of to; from is left empty. */
static void splice(eddy__soon_queue *from, eddy__soon_queue *to) {
  eddy__soon *first = from->head.next, *last = from->head.prev;
  if (first == &from->head)
    return;
  first->prev = to->head.prev;
  last->next = &to->head;
  to->head.prev->next = first;
  to->head.prev = last;
  queue_init(from);
}

void eddy__soon_init(eddy__soon *c, eddy__soon_fn fn, void *arg) {
  c->prev = c->next = NULL;
  c->fn = fn;
  c->arg = arg;
}

void eddy__soon_schedule(eddy_loop *loop, eddy__soon *c) {
  eddy__soon *head = &loop->soon.head;
  if (c->next != NULL)
    return;
  c->next = head;
  c->prev = head->prev;
  head->prev->next = c;
  head->prev = c;
}

void eddy__soon_cancel(eddy__soon *c) {
  if (c->next != NULL)
    unlink_node(c);
}

void eddy__soon_loop_init(eddy_loop *loop) {
  queue_init(&loop->soon);
  queue_init(&loop->batch);
  loop->soon_free = NULL;
}

/* The node is unlinked before its call, so the call may schedule it again
 * (for the next turn), cancel it (nothing to do) or free its owner. The
 * batch is re-read after every call: a call may cancel a later one. */
void eddy__soon_run(eddy_loop *loop) {
  eddy__soon_queue *batch = &loop->batch;
  splice(&loop->soon, batch);
  while (!queue_empty(batch)) {
    eddy__soon *c = batch->head.next;
    unlink_node(c);
    c->fn(c, c->arg);
  }
}

/* ---- eddy_loop_call_soon: nodes from the loop's free list --------------------- */

typedef struct plain_call {
  eddy__soon node; /* first: a free node is linked through node.arg */
  eddy_loop *loop;
  eddy_callback fn;
  void *arg;
} plain_call;

static void run_plain(eddy__soon *c, void *arg) {
  plain_call *p = (plain_call *)c;
  eddy_loop *loop = p->loop;
  eddy_callback fn = p->fn;
  (void)arg;
  /* Back on the free list first: fn may queue another call. */
  p->node.arg = loop->soon_free;
  loop->soon_free = p;
  fn(loop, p->arg);
}

int eddy_loop_call_soon(eddy_loop *loop, eddy_callback fn, void *arg) {
  plain_call *p = loop->soon_free;
  if (p != NULL)
    loop->soon_free = p->node.arg;
  else if ((p = eddy__malloc(sizeof *p)) == NULL)
    return -ENOMEM;
  eddy__soon_init(&p->node, run_plain, NULL);
  p->loop = loop;
  p->fn = fn;
  p->arg = arg;
  eddy__soon_schedule(loop, &p->node);
  return 0;
}

/* Only eddy_loop_call_soon's nodes can still be queued here: every other
 * node belongs to a handle, and the loop is not freed while one is open. */
void eddy__soon_loop_destroy(eddy_loop *loop) {
  eddy__soon_queue *qs[2] = {&loop->soon, &loop->batch};
  for (int i = 0; i < 2; i++)
    while (!queue_empty(qs[i])) {
      eddy__soon *c = qs[i]->head.next;
      unlink_node(c);
      if (c->fn == run_plain)
        eddy__free(c);
    }
  while (loop->soon_free) {
    plain_call *p = loop->soon_free;
    loop->soon_free = p->node.arg;
    eddy__free(p);
  }
}

/* ---- The public handle ----------------------------------------------------------- */

struct eddy_call {
  eddy__handle h;
  eddy__soon node;
  eddy_call_cb cb;
  void *arg;
};

static void run_handle(eddy__soon *c, void *arg) {
  eddy_call *call = arg;
  (void)c;
  call->cb(call, call->arg);
}

static void call_close_handle(eddy__handle *h) {
  eddy_call_close((eddy_call *)h);
}

int eddy_call_new(eddy_loop *loop, eddy_call_cb cb, void *arg,
                  eddy_call **out) {
  eddy_call *call;
  if (cb == NULL)
    return -EINVAL;
  if ((call = eddy__malloc(sizeof *call)) == NULL)
    return -ENOMEM;
  eddy__handle_init(loop, &call->h, call_close_handle);
  eddy__soon_init(&call->node, run_handle, call);
  call->cb = cb;
  call->arg = arg;
  *out = call;
  return 0;
}

int eddy_call_schedule(eddy_call *call) {
  if (call->h.flags & EDDY__HANDLE_CLOSING)
    return EDDY_ECLOSED;
  eddy__soon_schedule(call->h.loop, &call->node);
  return 0;
}

void eddy_call_cancel(eddy_call *call) {
  eddy__soon_cancel(&call->node);
}

int eddy_call_pending(const eddy_call *call) {
  return eddy__soon_pending(&call->node);
}

void eddy_call_close(eddy_call *call) {
  eddy__soon_cancel(&call->node);
  eddy__handle_close(&call->h);
}
