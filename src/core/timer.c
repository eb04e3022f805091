/* timer.c: timers on a 4-ary min-heap: the internal eddy__timer, embedded
 * in its owner, and the public eddy_timer handle that wraps one.
 *
 * The heap is one array of (deadline, seq, timer) entries. A 4-ary heap is
 * half as deep as a binary one, and its four children share a cache line or
 * two, so a sift touches few lines; the timers themselves are written only
 * to record their slot. seq breaks ties, which gives timers with equal
 * deadlines the order in which they were started.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "sys/alloc.h"

struct eddy_timer {
  eddy__handle h;
  eddy_timer_cb cb;
  int64_t repeat; /* ns; 0 for a one-shot timer */
  eddy__timer t;  /* t.arg is the program's arg */
};

static int before(const eddy__heap_entry *a, const eddy__heap_entry *b) {
  return a->deadline < b->deadline ||
         (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(eddy__heap_entry *heap, size_t slot, eddy__heap_entry e) {
  heap[slot] = e;
  e.timer->slot = slot;
}

static void sift_up(eddy__heap_entry *heap, size_t slot) {
  eddy__heap_entry e = heap[slot];
  while (slot > 0) {
    size_t parent = (slot - 1) / 4;
    if (!before(&e, &heap[parent]))
      break;
    place(heap, slot, heap[parent]);
    slot = parent;
  }
  place(heap, slot, e);
}

/* The earliest of slot's children in a heap of len entries, or 0 (never a
 * child) if slot has none. */
static size_t least_child(const eddy__heap_entry *heap, size_t len,
                          size_t slot) {
  size_t first = slot * 4 + 1, best = first, end = first + 4;
  if (first >= len)
    return 0;
  if (end > len)
    end = len;
  for (size_t c = first + 1; c < end; c++)
    if (before(&heap[c], &heap[best]))
      best = c;
  return best;
}

static void sift_down(eddy__heap_entry *heap, size_t len, size_t slot) {
  eddy__heap_entry e = heap[slot];
  size_t best;
  while ((best = least_child(heap, len, slot)) != 0 &&
         before(&heap[best], &e)) {
    place(heap, slot, heap[best]);
    slot = best;
  }
  place(heap, slot, e);
}

static void heap_remove(eddy_loop *loop, size_t slot) {
  eddy__heap_entry *heap = loop->heap;
  size_t last = --loop->heap_len;
  heap[slot].timer->slot = EDDY__NO_SLOT;
  if (slot == last)
    return;
  place(heap, slot, heap[last]);
  if (slot > 0 && before(&heap[slot], &heap[(slot - 1) / 4]))
    sift_up(heap, slot);
  else
    sift_down(heap, loop->heap_len, slot);
}

/* Removes the root: the hot path of firing. The entry that fills the hole
 * comes from the bottom and almost always belongs near the bottom, so
 * rather than comparing it on the way down (as sift_down does), the hole
 * goes straight down along the smaller children to a leaf, and the entry
 * then sifts up from there, usually not at all (Floyd's trick): one
 * comparison fewer per level. */
static void heap_pop(eddy_loop *loop) {
  eddy__heap_entry *heap = loop->heap;
  size_t len = --loop->heap_len, slot = 0, best;
  eddy__heap_entry e;
  heap[0].timer->slot = EDDY__NO_SLOT;
  if (len == 0)
    return;
  e = heap[len];
  while ((best = least_child(heap, len, slot)) != 0) {
    place(heap, slot, heap[best]);
    slot = best;
  }
  heap[slot] = e;
  sift_up(heap, slot);
}

static int heap_insert(eddy_loop *loop, eddy__timer *t, int64_t deadline) {
  void *heap = loop->heap;
  eddy__heap_entry e = {deadline, loop->timer_seq++, t};
  if (eddy__grow(&heap, &loop->heap_cap, loop->heap_len + 1, sizeof e))
    return -ENOMEM;
  loop->heap = heap;
  loop->heap[loop->heap_len] = e;
  sift_up(loop->heap, loop->heap_len++);
  return 0;
}

/* ---- The internal timer ----------------------------------------------------- */

void eddy__timer_init(eddy_loop *loop, eddy__timer *t, eddy__timer_fn fn,
                      void *arg) {
  t->loop = loop;
  t->fn = fn;
  t->arg = arg;
  t->slot = EDDY__NO_SLOT;
}

int eddy__timer_start(eddy__timer *t, int64_t delay_ns) {
  eddy__timer_stop(t);
  if (delay_ns < 0)
    delay_ns = 0;
  return heap_insert(t->loop, t, eddy__now(t->loop) + delay_ns);
}

void eddy__timer_stop(eddy__timer *t) {
  if (t->slot != EDDY__NO_SLOT)
    heap_remove(t->loop, t->slot);
}

int64_t eddy__timer_deadline(const eddy__timer *t) {
  return t->slot == EDDY__NO_SLOT ? -1 : t->loop->heap[t->slot].deadline;
}

/* Moves an armed timer to a new deadline, as a new start (a new seq), so
 * that a timer moved from a callback cannot fire twice in one pass. The
 * entry is removed first, so the heap cannot need to grow. */
static int move(eddy__timer *t, int64_t deadline) {
  if (t->slot == EDDY__NO_SLOT)
    return -EINVAL;
  heap_remove(t->loop, t->slot);
  return heap_insert(t->loop, t, deadline);
}

/* ---- The public handle ------------------------------------------------------- */

static eddy_timer *handle_of(eddy__timer *t) {
  return (eddy_timer *)((char *)t - offsetof(eddy_timer, t));
}

/* A repeating timer is armed again before its callback runs, so that the
 * callback may stop or restart it. On time, the period stays exact;
 * behind, the missed periods are skipped. The timer was just taken off
 * the heap, so this insert cannot fail. */
static void fire_handle(eddy__timer *t, void *arg) {
  eddy_timer *h = handle_of(t);
  if (h->repeat > 0) {
    eddy_loop *loop = t->loop;
    int64_t now = eddy__now(loop), next = loop->timer_due + h->repeat;
    (void)heap_insert(loop, t, next > now ? next : now + h->repeat);
  }
  h->cb(h, arg);
}

static void timer_close_handle(eddy__handle *h) {
  eddy_timer_close((eddy_timer *)h);
}

int eddy_timer_new(eddy_loop *loop, eddy_timer_cb cb, void *arg,
                   eddy_timer **out) {
  eddy_timer *t = eddy__malloc(sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  eddy__handle_init(loop, &t->h, timer_close_handle);
  t->cb = cb;
  t->repeat = 0;
  eddy__timer_init(loop, &t->t, fire_handle, arg);
  *out = t;
  return 0;
}

int eddy_timer_start(eddy_timer *t, int64_t delay_ns, int64_t repeat_ns) {
  if (t->h.flags & EDDY__HANDLE_CLOSING)
    return EDDY_ECLOSED;
  t->repeat = repeat_ns > 0 ? repeat_ns : 0;
  return eddy__timer_start(&t->t, delay_ns);
}

void eddy_timer_stop(eddy_timer *t) {
  eddy__timer_stop(&t->t);
}

int eddy_timer_reset(eddy_timer *t, int64_t delay_ns) {
  return move(&t->t, eddy__now(t->h.loop) + (delay_ns > 0 ? delay_ns : 0));
}

int eddy_timer_delay(eddy_timer *t, int64_t delta_ns) {
  if (t->t.slot == EDDY__NO_SLOT)
    return -EINVAL;
  return move(&t->t, t->h.loop->heap[t->t.slot].deadline + delta_ns);
}

int eddy_timer_active(const eddy_timer *t) {
  return eddy__timer_active(&t->t);
}

int64_t eddy_timer_deadline(const eddy_timer *t) {
  return eddy__timer_deadline(&t->t);
}

eddy_loop *eddy_timer_loop(const eddy_timer *t) {
  return t->h.loop;
}

void eddy_timer_close(eddy_timer *t) {
  eddy__timer_stop(&t->t);
  eddy__handle_close(&t->h);
}

/* ---- Firing -------------------------------------------------------------------- */

/* Fires the timers due by the turn's time. Only timers started before this pass
 * (seq below the mark) fire: one started or moved by a callback waits for
 * the next pass even when already due, so a callback that re-arms itself
 * with no delay cannot keep this loop from returning. Since a timer armed
 * during the pass has a deadline of at least now, it sorts after every
 * timer that was due before the pass, so stopping at the first one is
 * enough. */
void eddy__timers_run(eddy_loop *loop) {
  uint64_t mark = loop->timer_seq;
  int64_t now;
  if (loop->heap_len == 0)
    return;
  now = eddy__now(loop);
  while (loop->heap_len > 0) {
    eddy__heap_entry e = loop->heap[0];
    eddy__timer *t = e.timer;
    if (e.deadline > now || e.seq >= mark)
      break;
    heap_pop(loop);
    loop->timer_due = e.deadline;
    t->fn(t, t->arg);
  }
}

void eddy__timers_free(eddy_loop *loop) {
  eddy__free(loop->heap);
  loop->heap = NULL;
  loop->heap_len = loop->heap_cap = 0;
}
