/* combine.c: Deferreds made of others: all (gatherResults), first success,
 * and the per-item list (DeferredList).
 *
 * A combination owns its items: each item's waiter (async.h) hands its
 * final result to item_done() and the item is freed there. Everything the
 * combination needs is allocated when it is made, so nothing can fail once
 * items start to fire. The decision (fire *out) is taken last, after the
 * combination has let go of everything: firing runs the consumer's chain,
 * which may free *out, and so the combination must no longer be touched.
 */
#include <errno.h>
#include <string.h>

#include "async/async.h"
#include "sys/alloc.h"

typedef enum kind { ALL, FIRST, LIST } kind;

typedef struct combo {
  kind kind;
  eddy_deferred *out;
  eddy_deferred **items; /* NULL once an item has been taken */
  size_t n, pending;
  eddy_outcome_list *list; /* ALL and LIST: the results so far */
  eddy_outcome last;       /* FIRST: the last failure */
  int building;            /* items are still being handed their waiters */
} combo;

static void free_combo(combo *c) {
  eddy_outcome_list_free(c->list);
  eddy_outcome_clear(&c->last);
  eddy__free(c->items);
  eddy__free(c);
}

/* Lets go of the items that have not finished: each is cancelled and
 * freed without reaching item_done, its error unreported (it was the
 * combination's to handle, and the combination has decided). */
static void drop_items(combo *c) {
  for (size_t i = 0; i < c->n; i++) {
    eddy_deferred *item = c->items[i];
    if (item == NULL)
      continue;
    c->items[i] = NULL;
    eddy__deferred_discard(item);
  }
}

/* Lets go of everything and fires out with o. */
static void conclude(combo *c, eddy_outcome *o) {
  eddy_deferred *out = c->out;
  drop_items(c);
  free_combo(c);
  eddy_deferred_fire(out, o);
}

static void check(combo *c) {
  eddy_outcome o = {0};
  if (c->building || c->pending > 0)
    return;
  if (c->kind == FIRST) {
    o.code = c->last.code ? c->last.code : -ENOENT;
    o.detail = c->n ? eddy__format("all %zu failed; last: %s", c->n,
                                   eddy_outcome_detail(&c->last))
                    : eddy__format("no Deferred to wait for");
  } else {
    o.value = c->list;
    o.value_free = eddy_outcome_list_free;
    c->list = NULL;
  }
  conclude(c, &o);
}

static void item_done(eddy_deferred *item, void *arg) {
  combo *c = arg;
  size_t i = eddy__deferred_tag(item);
  eddy_outcome o;
  eddy_deferred_take_outcome(item, &o);
  c->items[i] = NULL;
  eddy_deferred_free(item);
  c->pending--;
  if (c->kind == ALL && o.code) {
    eddy_outcome e = {.code = o.code,
                      .payload = o.payload,
                      .payload_free = o.payload_free};
    e.detail = eddy__format("item %zu: %s", i, eddy_outcome_detail(&o));
    o.payload = NULL;
    eddy_outcome_clear(&o);
    conclude(c, &e);
  } else if (c->kind == FIRST && o.code == 0) {
    conclude(c, &o);
  } else if (c->kind == FIRST) {
    eddy_outcome_clear(&c->last);
    c->last = o;
    check(c);
  } else {
    c->list->items[i] = o;
    check(c);
  }
}

/* *out's canceller: every item is cancelled and dropped; then
 * eddy_deferred_cancel fails *out with -ECANCELED. */
static void cancel_combo(eddy_deferred *out, void *arg) {
  combo *c = arg;
  (void)out;
  drop_items(c);
  free_combo(c);
}

/* The items of a combination that could not be made. */
static void free_items(eddy_deferred **ds, size_t n) {
  for (size_t i = 0; i < n; i++)
    eddy_deferred_free(ds[i]);
}

static int make(kind k, eddy_loop *loop, eddy_deferred **ds, size_t n,
                eddy_deferred **out) {
  combo *c = eddy__calloc(1, sizeof *c);
  int err = -ENOMEM;
  if (c == NULL)
    goto fail;
  c->kind = k;
  c->n = n;
  c->items = eddy__calloc(n ? n : 1, sizeof *c->items);
  if (c->items == NULL)
    goto fail;
  if (k != FIRST) {
    c->list = eddy__calloc(1, sizeof *c->list);
    if (c->list == NULL)
      goto fail;
    c->list->items = eddy__calloc(n ? n : 1, sizeof *c->list->items);
    if (c->list->items == NULL)
      goto fail;
    c->list->count = n; /* only now: the free walks count items */
  }
  err = eddy_deferred_new(loop, cancel_combo, c, &c->out);
  if (err)
    goto fail;
  *out = c->out;
  c->building = 1;
  c->pending = n;
  for (size_t i = 0; i < n; i++)
    c->items[i] = ds[i];
  /* An item that has fired finishes inside eddy__deferred_wait; building
   * holds the decision until every item has its waiter, and a decision
   * taken by a failure (ALL) or a success (FIRST) stops the loop. */
  for (size_t i = 0; i < n; i++) {
    eddy_deferred *item = ds[i];
    eddy__deferred_wait(item, item_done, c, i);
    if (eddy_deferred_called(*out))
      return 0; /* c is gone; the remaining items were dropped */
  }
  c->building = 0;
  check(c);
  return 0;
fail:
  if (c) {
    eddy_outcome_list_free(c->list);
    eddy__free(c->items);
    eddy__free(c);
  }
  free_items(ds, n);
  return err;
}

int eddy_deferred_all(eddy_loop *loop, eddy_deferred **ds, size_t n,
                      eddy_deferred **out) {
  return make(ALL, loop, ds, n, out);
}

int eddy_deferred_first(eddy_loop *loop, eddy_deferred **ds, size_t n,
                        eddy_deferred **out) {
  return make(FIRST, loop, ds, n, out);
}

int eddy_deferred_list(eddy_loop *loop, eddy_deferred **ds, size_t n,
                       eddy_deferred **out) {
  return make(LIST, loop, ds, n, out);
}
