/* Combinators: all (gatherResults), first success, and the per-item list
 * (DeferredList): empty input, all successes, a failure, items that fired
 * before they were combined, and cancellation of the combination. */
#include "async_test.h"

TestSuite(combine, .init = async_setup, .fini = async_teardown);

typedef struct items {
  eddy_deferred *d[8];
  int cancels[8];
} items;

static void count_cancel(eddy_deferred *d, void *arg) {
  (void)d;
  (*(int *)arg)++;
}

static void make_items(eddy_loop *loop, items *it, size_t n) {
  for (size_t i = 0; i < n; i++)
    EXPECT_OK(
        eddy_deferred_new(loop, count_cancel, &it->cancels[i], &it->d[i]));
}

static int list_int(const eddy_outcome_list *l, size_t i) {
  cr_assert(i < l->count);
  cr_assert(l->items[i].code == 0 && l->items[i].value != NULL);
  return *(int *)l->items[i].value;
}

/* Records the list value of a combination (borrowed: checked in the chain
 * by the callback below and summarized here). */
typedef struct seen {
  int fired, code;
  size_t count;
  int values[8];
  int codes[8];
  char details[8][64];
  char detail[256];
} seen;

static void cb_seen(eddy_deferred *d, void *arg) {
  seen *s = arg;
  s->fired++;
  s->code = eddy_deferred_error(d);
  if (s->code) {
    snprintf(s->detail, sizeof s->detail, "%s", eddy_deferred_detail(d));
    eddy_deferred_set_value(d, NULL, NULL);
    return;
  }
  const eddy_outcome_list *l = eddy_deferred_value(d);
  if (l == NULL)
    return;
  s->count = l->count;
  for (size_t i = 0; i < l->count && i < 8; i++) {
    s->codes[i] = l->items[i].code;
    s->values[i] = l->items[i].code ? -1 : list_int(l, i);
    snprintf(s->details[i], sizeof s->details[i], "%s",
             eddy_outcome_detail(&l->items[i]));
  }
}

/* ---- all -------------------------------------------------------------------------- */

Test(combine, all_of_nothing_fires_at_once_with_an_empty_list) {
  eddy_loop *loop = test_loop();
  eddy_deferred *out = NULL;
  seen s = {0};
  EXPECT_OK(eddy_deferred_all(loop, NULL, 0, &out));
  EXPECT_EQ(eddy_deferred_called(out), 1);
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  EXPECT_EQ(s.fired, 1);
  EXPECT_EQ(s.code, 0);
  EXPECT_EQ(s.count, 0);
  eddy_deferred_free(out);
  test_finish(loop);
}

Test(combine, all_fires_with_every_value_in_order_once_the_last_arrives) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  seen s = {0};
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_all(loop, it.d, 3, &out));
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  EXPECT_OK(eddy_deferred_callback(it.d[2], value_new(30), value_free));
  EXPECT_OK(eddy_deferred_callback(it.d[0], value_new(10), value_free));
  EXPECT_EQ(s.fired, 0);
  EXPECT_OK(eddy_deferred_callback(it.d[1], value_new(20), value_free));
  EXPECT_EQ(s.fired, 1);
  EXPECT_EQ(s.code, 0);
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.values[0], 10);
  EXPECT_EQ(s.values[1], 20);
  EXPECT_EQ(s.values[2], 30);
  EXPECT_EQ(values_freed, 0); /* the list holds them */
  eddy_deferred_free(out);
  EXPECT_EQ(values_freed, 3);
  test_finish(loop);
}

Test(combine, all_fails_on_the_first_failure_and_cancels_the_rest) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  seen s = {0};
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_all(loop, it.d, 3, &out));
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  EXPECT_OK(eddy_deferred_callback(it.d[0], value_new(1), value_free));
  EXPECT_OK(eddy_deferred_errback(it.d[1], -ECONNREFUSED,
                                  "connect to b:80: connection refused"));
  EXPECT_EQ(s.fired, 1);
  EXPECT_EQ(s.code, -ECONNREFUSED);
  EXPECT_STR(s.detail, "item 1: connect to b:80: connection refused");
  EXPECT_EQ(it.cancels[2], 1);
  EXPECT_EQ(it.cancels[0], 0);
  EXPECT_EQ(values_freed, 1); /* item 0's value went with the list */
  eddy_deferred_free(out);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(combine, items_that_fired_before_they_were_combined_count_at_once) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  seen s = {0};
  make_items(loop, &it, 2);
  EXPECT_OK(eddy_deferred_callback(it.d[0], value_new(1), value_free));
  EXPECT_OK(eddy_deferred_callback(it.d[1], value_new(2), value_free));
  EXPECT_OK(eddy_deferred_all(loop, it.d, 2, &out));
  EXPECT_EQ(eddy_deferred_called(out), 1);
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  EXPECT_EQ(s.values[0], 1);
  EXPECT_EQ(s.values[1], 2);
  eddy_deferred_free(out);

  /* A failure already there decides before the others get a waiter. */
  memset(&it, 0, sizeof it);
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_errback(it.d[0], -EIO, "disk"));
  EXPECT_OK(eddy_deferred_all(loop, it.d, 3, &out));
  EXPECT_EQ(eddy_deferred_error(out), -EIO);
  EXPECT_EQ(it.cancels[1], 1);
  EXPECT_EQ(it.cancels[2], 1);
  eddy_deferred_set_value(out, NULL, NULL);
  eddy_deferred_free(out);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(combine, cancelling_all_cancels_every_pending_item) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  seen s = {0};
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_callback(it.d[1], value_new(5), value_free));
  EXPECT_OK(eddy_deferred_all(loop, it.d, 3, &out));
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  eddy_deferred_cancel(out);
  EXPECT_EQ(it.cancels[0], 1);
  EXPECT_EQ(it.cancels[1], 0);
  EXPECT_EQ(it.cancels[2], 1);
  EXPECT_EQ(s.code, -ECANCELED);
  EXPECT_STR(s.detail, "cancelled");
  EXPECT_EQ(values_freed, 1);
  eddy_deferred_free(out);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(combine, freeing_an_unfired_combination_frees_its_items) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  make_items(loop, &it, 4);
  EXPECT_OK(eddy_deferred_list(loop, it.d, 4, &out));
  eddy_deferred_free(out);
  for (int i = 0; i < 4; i++)
    EXPECT_EQ(it.cancels[i], 1);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

/* ---- first -------------------------------------------------------------------------- */

Test(combine, first_fires_with_the_first_success_and_cancels_the_others) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  result res = {0};
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_first(loop, it.d, 3, &out));
  watch_int(out, &res);
  EXPECT_OK(eddy_deferred_errback(it.d[0], -ECONNREFUSED, "a refused"));
  EXPECT_EQ(res.fired, 0); /* one failure is not the end */
  EXPECT_OK(eddy_deferred_callback(it.d[2], value_new(3), value_free));
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(res.value, 3);
  EXPECT_EQ(it.cancels[1], 1);
  EXPECT_EQ(it.cancels[0], 0);
  eddy_deferred_free(out);
  EXPECT_EQ(values_freed, 1);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(combine, first_fails_with_the_last_failure_when_all_fail) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  result res = {0};
  make_items(loop, &it, 2);
  EXPECT_OK(eddy_deferred_first(loop, it.d, 2, &out));
  watch_result(out, &res);
  EXPECT_OK(eddy_deferred_errback(it.d[1], -EHOSTUNREACH, "b unreachable"));
  EXPECT_OK(eddy_deferred_errback(it.d[0], -ECONNREFUSED, "a refused"));
  EXPECT_EQ(res.code, -ECONNREFUSED);
  EXPECT_STR(res.detail, "all 2 failed; last: a refused");
  eddy_deferred_free(out);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(combine, first_of_nothing_fails_at_once_with_enoent) {
  eddy_loop *loop = test_loop();
  eddy_deferred *out = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_first(loop, NULL, 0, &out));
  watch_result(out, &res);
  EXPECT_EQ(res.code, -ENOENT);
  EXPECT_STR(res.detail, "no Deferred to wait for");
  eddy_deferred_free(out);
  test_finish(loop);
}

Test(combine, cancelling_first_cancels_the_pending_items) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  result res = {0};
  make_items(loop, &it, 2);
  EXPECT_OK(eddy_deferred_first(loop, it.d, 2, &out));
  watch_result(out, &res);
  EXPECT_OK(eddy_deferred_errback(it.d[0], -EIO, "x"));
  eddy_deferred_cancel(out);
  EXPECT_EQ(it.cancels[1], 1);
  EXPECT_EQ(res.code, -ECANCELED);
  eddy_deferred_free(out);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

/* ---- list -------------------------------------------------------------------------- */

Test(combine, list_waits_for_every_item_and_keeps_values_and_errors) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  seen s = {0};
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_list(loop, it.d, 3, &out));
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  EXPECT_OK(eddy_deferred_errback(it.d[1], -ETIMEDOUT, "b timed out"));
  EXPECT_OK(eddy_deferred_callback(it.d[0], value_new(1), value_free));
  EXPECT_EQ(s.fired, 0);
  EXPECT_OK(eddy_deferred_callback(it.d[2], value_new(3), value_free));
  EXPECT_EQ(s.fired, 1);
  EXPECT_EQ(s.code, 0);
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.values[0], 1);
  EXPECT_EQ(s.codes[1], -ETIMEDOUT);
  EXPECT_STR(s.details[1], "b timed out");
  EXPECT_EQ(s.values[2], 3);
  eddy_deferred_free(out);
  EXPECT_EQ(values_freed, 2);
  EXPECT_EQ(unhandled.count, 0); /* errors in the list count as handled */
  test_finish(loop);
}

Test(combine, list_of_nothing_fires_at_once_with_an_empty_list) {
  eddy_loop *loop = test_loop();
  eddy_deferred *out = NULL;
  seen s = {0};
  EXPECT_OK(eddy_deferred_list(loop, NULL, 0, &out));
  EXPECT_OK(eddy_deferred_add_both(out, cb_seen, &s));
  EXPECT_EQ(s.fired, 1);
  EXPECT_EQ(s.count, 0);
  eddy_deferred_free(out);
  test_finish(loop);
}

Test(combine, a_kept_item_value_survives_the_list) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *out = NULL;
  eddy_outcome_list *l;
  int *kept;
  make_items(loop, &it, 1);
  EXPECT_OK(eddy_deferred_list(loop, it.d, 1, &out));
  EXPECT_OK(eddy_deferred_callback(it.d[0], value_new(9), value_free));
  l = eddy_deferred_value(out);
  kept = l->items[0].value;
  l->items[0].value_free = NULL; /* the header's way to keep one */
  eddy_deferred_free(out);
  EXPECT_EQ(values_freed, 0);
  EXPECT_EQ(*kept, 9);
  value_free(kept);
  test_finish(loop);
}

/* A combination of combinations, and of a nested chain: the items are
 * any Deferreds. */
Test(combine, combinations_nest) {
  eddy_loop *loop = test_loop();
  items it = {0};
  eddy_deferred *inner = NULL, *out = NULL, *pair[2];
  result res = {0};
  make_items(loop, &it, 3);
  EXPECT_OK(eddy_deferred_all(loop, it.d, 2, &inner));
  pair[0] = inner;
  pair[1] = it.d[2];
  EXPECT_OK(eddy_deferred_first(loop, pair, 2, &out));
  watch_result(out, &res);
  EXPECT_OK(eddy_deferred_callback(it.d[0], value_new(1), value_free));
  EXPECT_OK(eddy_deferred_callback(it.d[1], value_new(2), value_free));
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(it.cancels[2], 1);
  EXPECT_EQ(((eddy_outcome_list *)res.ptr)->count, 2);
  eddy_deferred_free(out);
  EXPECT_EQ(values_freed, 2);
  test_finish(loop);
}
