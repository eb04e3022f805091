/* The Deferred's chain, case by case, after Twisted's test_defer: values
 * passed down and replaced, errors skipping to errbacks, recovery, a
 * nested Deferred pausing the chain, pairs added after firing or from
 * inside the chain, firing twice, and what is freed when. */
#include "async_test.h"

TestSuite(chain, .init = async_setup, .fini = async_teardown);

static eddy_deferred *fresh(eddy_loop *loop) {
  eddy_deferred *d = NULL;
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &d));
  cr_assert(d != NULL);
  return d;
}

Test(chain, callbacks_run_in_order_each_on_the_result_of_the_last) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_STR(r.trail, ""); /* nothing runs before the Deferred fires */
  EXPECT_EQ(eddy_deferred_called(d), 0);
  EXPECT_OK(eddy_deferred_callback(d, value_new(1), value_free));
  EXPECT_STR(r.trail, "++c");
  EXPECT_EQ(r.values[0], 1);
  EXPECT_EQ(r.values[1], 2);
  EXPECT_EQ(r.values[2], 3);
  EXPECT_EQ(eddy_deferred_called(d), 1);
  EXPECT_EQ(value_of(d), 3);
  EXPECT_EQ(values_freed, 2); /* the two replaced */
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 3);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(chain, an_error_skips_callbacks_to_the_next_errback) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_OK(eddy_deferred_add_callbacks(d, cb_record, eb_record, &r));
  EXPECT_OK(eddy_deferred_errback(d, -ECONNREFUSED, "connect: %s", "refused"));
  EXPECT_STR(r.trail, "e");
  EXPECT_EQ(r.code, -ECONNREFUSED);
  EXPECT_STR(r.detail, "connect: refused");
  /* An errback that does nothing leaves the error in place. */
  EXPECT_EQ(eddy_deferred_error(d), -ECONNREFUSED);
  EXPECT_STR(eddy_deferred_detail(d), "connect: refused");
  EXPECT_NULL(eddy_deferred_value(d));
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 1); /* and so it reached the end unhandled */
  test_finish(loop);
}

Test(chain, an_errback_that_sets_a_value_returns_to_the_callbacks) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_errback(d, eb_record, &r));
  EXPECT_OK(eddy_deferred_add_callbacks(d, cb_record, eb_recover, &r));
  EXPECT_OK(eddy_deferred_add_callbacks(d, cb_record, eb_record, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &r));
  EXPECT_OK(eddy_deferred_errback(d, -EIO, NULL));
  EXPECT_STR(r.trail, "erc+");
  EXPECT_EQ(r.values[2], 100);
  EXPECT_EQ(eddy_deferred_error(d), 0);
  EXPECT_EQ(value_of(d), 101);
  EXPECT_NULL(eddy_deferred_detail(d));
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 2);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

static void cb_fail(eddy_deferred *d, void *arg) {
  rec_mark(arg, 'f', value_of(d));
  EXPECT_EQ(eddy_deferred_set_error(d, -EPROTO, "bad answer %d", value_of(d)),
            -EPROTO);
}

Test(chain, a_callback_that_sets_an_error_fails_the_chain_from_there) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_fail, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_OK(eddy_deferred_add_errback(d, eb_recover, &r));
  EXPECT_OK(eddy_deferred_callback(d, value_new(7), value_free));
  /* The detail was formatted from the old value before it was freed. */
  EXPECT_STR(r.trail, "fr");
  EXPECT_EQ(r.code, -EPROTO);
  EXPECT_EQ(values_freed, 1);
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 2);
  test_finish(loop);
}

static void eb_wrap(eddy_deferred *d, void *arg) {
  (void)arg;
  EXPECT_EQ(eddy_deferred_wrap_error(d, "fetch %s", "/index.html"),
            -ECONNREFUSED);
}

Test(chain, wrap_error_keeps_the_code_and_the_lower_layers_words) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  result res = {0};
  EXPECT_OK(eddy_deferred_add_errback(d, eb_wrap, NULL));
  watch_result(d, &res);
  EXPECT_OK(eddy_deferred_errback(d, -ECONNREFUSED,
                                  "connect to example.test:80: %s",
                                  "connection refused"));
  EXPECT_EQ(res.code, -ECONNREFUSED);
  EXPECT_STR(res.detail,
             "fetch /index.html: connect to example.test:80: connection "
             "refused");
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(chain, an_error_without_detail_reads_as_its_strerror) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  EXPECT_OK(eddy_deferred_errback(d, -ETIMEDOUT, NULL));
  EXPECT_STR(eddy_deferred_detail(d), eddy_strerror(-ETIMEDOUT));
  eddy_deferred_set_value(d, NULL, NULL);
  /* A code that is not negative is not a value in disguise. */
  eddy_deferred_free(d);
  d = fresh(loop);
  EXPECT_OK(eddy_deferred_errback(d, 5, "odd"));
  EXPECT_EQ(eddy_deferred_error(d), -EINVAL);
  eddy_deferred_set_value(d, NULL, NULL);
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(chain, a_pair_added_after_firing_runs_at_once) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_callback(d, value_new(5), value_free));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &r));
  EXPECT_STR(r.trail, "+");
  EXPECT_OK(eddy_deferred_add_errback(d, eb_record, &r)); /* passed over */
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_STR(r.trail, "+c");
  EXPECT_EQ(r.values[1], 6);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(chain, firing_twice_is_refused_with_ealready_and_frees_the_value) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  int payload_frees_before;
  EXPECT_OK(eddy_deferred_callback(d, value_new(1), value_free));
  EXPECT_EQ(eddy_deferred_callback(d, value_new(2), value_free), -EALREADY);
  EXPECT_EQ(values_freed, 1);
  payload_frees_before = values_freed;
  EXPECT_EQ(eddy_deferred_errback_payload(d, -EIO, value_new(3), value_free,
                                          "late"),
            -EALREADY);
  EXPECT_EQ(values_freed, payload_frees_before + 1);
  EXPECT_EQ(value_of(d), 1); /* the first result stands */
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 3);
  test_finish(loop);
}

Test(chain, adding_nothing_is_einval) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  EXPECT_EQ(eddy_deferred_add_callbacks(d, NULL, NULL, NULL), -EINVAL);
  EXPECT_EQ(eddy_deferred_add_callback(d, NULL, NULL), -EINVAL);
  EXPECT_EQ(eddy_deferred_add_errback(d, NULL, NULL), -EINVAL);
  EXPECT_EQ(eddy_deferred_new(NULL, NULL, NULL, &d), -EINVAL);
  EXPECT_EQ(eddy_deferred_loop(d), loop);
  eddy_deferred_free(d);
  eddy_deferred_free(NULL);
  test_finish(loop);
}

Test(chain, many_pairs_grow_past_the_inline_four) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  for (int i = 0; i < 20; i++)
    EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &r));
  EXPECT_OK(eddy_deferred_callback(d, value_new(0), value_free));
  EXPECT_EQ(value_of(d), 20);
  EXPECT_EQ(strlen(r.trail), 20);
  eddy_deferred_free(d);
  test_finish(loop);
}

/* ---- A Deferred returned from a callback ----------------------------------------- */

typedef struct nest {
  eddy_deferred *inner; /* chained by cb_chain */
  rec *r;
  int status; /* what eddy_deferred_chain returned */
} nest;

static void cb_chain(eddy_deferred *d, void *arg) {
  nest *n = arg;
  rec_mark(n->r, 'n', value_of(d));
  n->status = eddy_deferred_chain(d, n->inner);
}

Test(chain, a_nested_deferred_pauses_the_chain_until_it_fires) {
  eddy_loop *loop = test_loop();
  eddy_deferred *outer = fresh(loop), *inner = fresh(loop);
  rec r = {0};
  nest n = {inner, &r, 1};
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_chain, &n));
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_record, &r));
  EXPECT_OK(eddy_deferred_add_callback(inner, cb_add_one, &r));
  EXPECT_OK(eddy_deferred_callback(outer, value_new(1), value_free));
  EXPECT_OK(n.status);
  EXPECT_STR(r.trail, "n");
  EXPECT_EQ(eddy_deferred_paused(outer), 1);
  EXPECT_EQ(values_freed, 1); /* the outer value was dropped at the chain */
  /* Pairs added while paused wait too. */
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_record, &r));
  EXPECT_STR(r.trail, "n");
  EXPECT_OK(eddy_deferred_callback(inner, value_new(10), value_free));
  EXPECT_STR(r.trail, "n+cc");
  EXPECT_EQ(r.values[2], 11);
  EXPECT_EQ(eddy_deferred_paused(outer), 0);
  EXPECT_EQ(value_of(outer), 11);
  eddy_deferred_free(outer); /* owns inner, which is gone already */
  EXPECT_EQ(values_freed, 3);
  test_finish(loop);
}

Test(chain, a_nested_deferred_that_has_fired_continues_at_once) {
  eddy_loop *loop = test_loop();
  eddy_deferred *outer = fresh(loop), *inner = fresh(loop);
  rec r = {0};
  nest n = {inner, &r, 1};
  EXPECT_OK(eddy_deferred_callback(inner, value_new(42), value_free));
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_chain, &n));
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_record, &r));
  EXPECT_OK(eddy_deferred_callback(outer, value_new(1), value_free));
  EXPECT_STR(r.trail, "nc");
  EXPECT_EQ(r.values[1], 42);
  EXPECT_EQ(eddy_deferred_paused(outer), 0);
  eddy_deferred_free(outer);
  test_finish(loop);
}

Test(chain, a_nested_error_continues_the_outer_chain_at_its_errbacks) {
  eddy_loop *loop = test_loop();
  eddy_deferred *outer = fresh(loop), *inner = fresh(loop);
  rec r = {0};
  nest n = {inner, &r, 1};
  result res = {0};
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_chain, &n));
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_record, &r));
  watch_result(outer, &res);
  EXPECT_OK(eddy_deferred_callback(outer, value_new(1), value_free));
  EXPECT_OK(eddy_deferred_errback(inner, EDDY_ERESOLVE, "resolve x: no"));
  EXPECT_STR(r.trail, "n");
  EXPECT_EQ(res.code, EDDY_ERESOLVE);
  EXPECT_STR(res.detail, "resolve x: no");
  eddy_deferred_free(outer);
  EXPECT_EQ(unhandled.count, 0); /* the inner error moved out: not reported */
  test_finish(loop);
}

/* Twisted's test_nestedAsynchronousChainedDeferreds: three levels, the
 * innermost fired last. */
typedef struct level {
  eddy_deferred *next;
} level;

static void cb_chain_next(eddy_deferred *d, void *arg) {
  level *l = arg;
  EXPECT_OK(eddy_deferred_chain(d, l->next));
}

Test(chain, three_levels_of_nesting_resume_from_the_innermost) {
  eddy_loop *loop = test_loop();
  eddy_deferred *a = fresh(loop), *b = fresh(loop), *c = fresh(loop);
  level la = {b}, lb = {c};
  result res = {0};
  EXPECT_OK(eddy_deferred_add_callback(a, cb_chain_next, &la));
  EXPECT_OK(eddy_deferred_add_callback(b, cb_chain_next, &lb));
  watch_int(a, &res);
  EXPECT_OK(eddy_deferred_callback(a, NULL, NULL));
  EXPECT_OK(eddy_deferred_callback(b, NULL, NULL));
  EXPECT_EQ(res.fired, 0);
  EXPECT_OK(eddy_deferred_callback(c, value_new(3), value_free));
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.value, 3);
  eddy_deferred_free(a);
  EXPECT_EQ(values_freed, 1);
  test_finish(loop);
}

Test(chain, a_thousand_levels_of_nesting_fire_and_free_cleanly) {
  eddy_loop *loop = test_loop();
  enum { N = 1000 };
  eddy_deferred *ds[N];
  level ls[N];
  result res = {0};
  for (int i = 0; i < N; i++)
    ds[i] = fresh(loop);
  for (int i = 0; i + 1 < N; i++) {
    ls[i].next = ds[i + 1];
    EXPECT_OK(eddy_deferred_add_callback(ds[i], cb_chain_next, &ls[i]));
  }
  watch_int(ds[0], &res);
  for (int i = 0; i + 1 < N; i++)
    EXPECT_OK(eddy_deferred_callback(ds[i], NULL, NULL));
  EXPECT_OK(eddy_deferred_callback(ds[N - 1], value_new(N), value_free));
  EXPECT_EQ(res.value, N);
  eddy_deferred_free(ds[0]);
  test_finish(loop);
}

static void cb_chain_self(eddy_deferred *d, void *arg) {
  int *status = arg;
  *status = eddy_deferred_chain(d, d);
}

Test(chain, chaining_itself_or_outside_a_callback_is_einval) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop), *other = fresh(loop);
  int status = 0;
  EXPECT_EQ(eddy_deferred_chain(d, NULL), -EINVAL);
  EXPECT_EQ(eddy_deferred_chain(d, other), -EINVAL); /* not running: freed */
  EXPECT_OK(eddy_deferred_add_callback(d, cb_chain_self, &status));
  EXPECT_OK(eddy_deferred_callback(d, NULL, NULL));
  EXPECT_EQ(status, -EINVAL);
  EXPECT_EQ(eddy_deferred_paused(d), 0);
  eddy_deferred_free(d);
  test_finish(loop);
}

/* b waits on a; a's callback would then wait on b: refused, not a hang. */
Test(chain, a_cycle_of_nested_deferreds_is_refused) {
  eddy_loop *loop = test_loop();
  eddy_deferred *a = fresh(loop), *b = fresh(loop), *x = fresh(loop);
  level lb = {a};
  rec ra = {0};
  nest na = {b, &ra, 1};
  /* b's callback chains a: b then owns a and waits on it. */
  EXPECT_OK(eddy_deferred_add_callback(b, cb_chain_next, &lb));
  EXPECT_OK(eddy_deferred_callback(b, NULL, NULL));
  EXPECT_EQ(eddy_deferred_paused(b), 1);
  /* a's callback would chain b, which waits on a. b is not owned by a
   * chain, so the refusal frees it; a goes with it. */
  EXPECT_OK(eddy_deferred_add_callback(a, cb_chain, &na));
  EXPECT_OK(eddy_deferred_callback(a, value_new(1), value_free));
  EXPECT_EQ(na.status, -EINVAL);
  eddy_deferred_free(x);
  test_finish(loop);
}

/* ---- Reentrancy ---------------------------------------------------------------- */

static void cb_add_more(eddy_deferred *d, void *arg) {
  rec *r = arg;
  rec_mark(r, 'a', -1);
  if (strlen(r->trail) < 3)
    EXPECT_OK(eddy_deferred_add_callback(d, cb_add_more, r));
}

Test(chain, pairs_added_from_inside_the_chain_run_in_the_same_pass) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_add_more, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_OK(eddy_deferred_callback(d, NULL, NULL));
  EXPECT_STR(r.trail, "aca");
  eddy_deferred_free(d);
  test_finish(loop);
}

typedef struct refire {
  int again; /* eddy_deferred_callback from inside the chain */
  int cancel_noop;
} refire;

static void cb_fire_again(eddy_deferred *d, void *arg) {
  refire *f = arg;
  f->again = eddy_deferred_callback(d, value_new(9), value_free);
  eddy_deferred_cancel(d); /* fired: nothing */
  f->cancel_noop = eddy_deferred_error(d) == 0;
}

Test(chain, firing_from_inside_its_own_chain_is_ealready) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  refire f = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_fire_again, &f));
  EXPECT_OK(eddy_deferred_callback(d, value_new(1), value_free));
  EXPECT_EQ(f.again, -EALREADY);
  EXPECT_EQ(f.cancel_noop, 1);
  EXPECT_EQ(value_of(d), 1);
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 2);
  test_finish(loop);
}

typedef struct other {
  eddy_deferred *target;
  rec *r;
} other;

static void cb_fire_other(eddy_deferred *d, void *arg) {
  other *o = arg;
  (void)d;
  rec_mark(o->r, 'o', -1);
  EXPECT_OK(eddy_deferred_callback(o->target, value_new(2), value_free));
  rec_mark(o->r, 'O', -1);
}

Test(chain, firing_another_deferred_from_a_callback_runs_its_chain_there) {
  eddy_loop *loop = test_loop();
  eddy_deferred *a = fresh(loop), *b = fresh(loop);
  rec r = {0};
  other o = {b, &r};
  EXPECT_OK(eddy_deferred_add_callback(b, cb_record, &r));
  EXPECT_OK(eddy_deferred_add_callback(a, cb_fire_other, &o));
  EXPECT_OK(eddy_deferred_callback(a, NULL, NULL));
  EXPECT_STR(r.trail, "ocO");
  eddy_deferred_free(a);
  eddy_deferred_free(b);
  test_finish(loop);
}

static void cb_free_self(eddy_deferred *d, void *arg) {
  rec_mark(arg, 'x', -1);
  eddy_deferred_free(d);
  /* The memory stays until the pass ends: reading is still fine. */
  EXPECT_EQ(eddy_deferred_called(d), 1);
}

Test(chain, freeing_from_its_own_callback_waits_for_the_pass_to_end) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_free_self, &r));
  EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  EXPECT_OK(eddy_deferred_callback(d, value_new(4), value_free));
  /* The pairs after the free still ran: their args may need releasing. */
  EXPECT_STR(r.trail, "xc");
  EXPECT_EQ(values_freed, 1);
  test_finish(loop);
}

/* ---- Results in and out ---------------------------------------------------------- */

Test(chain, take_value_hands_the_value_over_and_leaves_null) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  int *v;
  EXPECT_OK(eddy_deferred_callback(d, value_new(8), value_free));
  v = eddy_deferred_take_value(d);
  cr_assert(v != NULL);
  EXPECT_EQ(*v, 8);
  EXPECT_NULL(eddy_deferred_value(d));
  eddy_deferred_free(d);
  EXPECT_EQ(values_freed, 0);
  value_free(v);
  test_finish(loop);
}

Test(chain, an_error_carries_its_payload_until_it_is_replaced) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  eddy_outcome o;
  EXPECT_OK(eddy_deferred_errback_payload(d, -EPROTO, value_new(500),
                                          value_free, "status %d", 500));
  EXPECT_EQ(*(int *)eddy_deferred_payload(d), 500);
  EXPECT_NULL(eddy_deferred_take_value(d)); /* an error has no value */
  EXPECT_EQ(eddy_deferred_set_error_payload(d, -EIO, value_new(501), value_free,
                                            "again"),
            -EIO);
  EXPECT_EQ(values_freed, 1);
  eddy_deferred_take_outcome(d, &o);
  EXPECT_EQ(o.code, -EIO);
  EXPECT_STR(eddy_outcome_detail(&o), "again");
  EXPECT_EQ(*(int *)o.payload, 501);
  EXPECT_EQ(eddy_deferred_error(d), 0); /* taken out: handled */
  eddy_outcome_clear(&o);
  EXPECT_EQ(values_freed, 2);
  EXPECT_EQ(o.code, 0);
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(chain, fire_moves_an_outcome_from_one_deferred_to_another) {
  eddy_loop *loop = test_loop();
  eddy_deferred *a = fresh(loop), *b = fresh(loop);
  eddy_outcome o;
  result res = {0};
  watch_result(b, &res);
  EXPECT_OK(eddy_deferred_errback(a, -EPIPE, "write: broken"));
  eddy_deferred_take_outcome(a, &o);
  EXPECT_OK(eddy_deferred_fire(b, &o));
  EXPECT_EQ(o.code, 0);
  EXPECT_NULL(o.detail);
  EXPECT_EQ(res.code, -EPIPE);
  EXPECT_STR(res.detail, "write: broken");
  o = (eddy_outcome){.value = value_new(1), .value_free = value_free};
  EXPECT_EQ(eddy_deferred_fire(b, &o), -EALREADY);
  EXPECT_EQ(values_freed, 1);
  eddy_deferred_free(a);
  eddy_deferred_free(b);
  test_finish(loop);
}

/* ---- Unhandled errors -------------------------------------------------------------- */

Test(chain, an_unhandled_error_is_reported_once_when_freed_with_its_detail) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  EXPECT_OK(eddy_deferred_errback(d, -ECONNREFUSED,
                                  "connect to example.test:80: connection "
                                  "refused"));
  EXPECT_EQ(unhandled.count, 0); /* not before the free */
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 1);
  EXPECT_EQ(unhandled.code, -ECONNREFUSED);
  EXPECT_STR(unhandled.message,
             "Unhandled error in Deferred: connect to "
             "example.test:80: connection refused");
  test_finish(loop);
}

Test(chain, without_a_hook_nothing_is_reported_and_nothing_breaks) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  eddy_deferred_set_unhandled_hook(NULL, NULL);
  EXPECT_OK(eddy_deferred_errback(d, -EIO, "lost"));
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(chain, freeing_an_unfired_deferred_is_not_an_unhandled_error) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  rec r = {0};
  EXPECT_OK(eddy_deferred_add_errback(d, eb_record, &r));
  eddy_deferred_free(d);
  EXPECT_STR(r.trail, "e"); /* the errbacks saw the cancellation */
  EXPECT_EQ(r.code, -ECANCELED);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(chain, an_unfired_deferred_freed_leaks_nothing) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  for (int i = 0; i < 10; i++)
    EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &(rec){0}));
  eddy_deferred_free(d);
  test_finish(loop); /* checks eddy's allocator has nothing live */
}

static void cb_chain_then_free(eddy_deferred *d, void *arg) {
  nest *n = arg;
  EXPECT_OK(eddy_deferred_chain(d, n->inner));
  eddy_deferred_free(d);
}

/* The owner frees the outer Deferred in the callback that made it wait:
 * the inner one is cancelled, its -ECANCELED reaches the outer errbacks,
 * and nothing is reported or leaked. */
Test(chain, freeing_itself_right_after_chaining_cancels_the_inner_quietly) {
  eddy_loop *loop = test_loop();
  eddy_deferred *outer = fresh(loop), *inner = fresh(loop);
  rec r = {0};
  nest n = {inner, &r, 1};
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_chain_then_free, &n));
  EXPECT_OK(eddy_deferred_add_errback(outer, eb_record, &r));
  EXPECT_OK(eddy_deferred_callback(outer, value_new(1), value_free));
  EXPECT_STR(r.trail, "e");
  EXPECT_EQ(r.code, -ECANCELED);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(chain, an_outcome_with_a_positive_code_fires_as_einval) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = fresh(loop);
  eddy_outcome o = {.code = 3};
  EXPECT_OK(eddy_deferred_fire(d, &o));
  EXPECT_EQ(eddy_deferred_error(d), -EINVAL);
  eddy_deferred_cancel(NULL); /* ignored, as eddy_deferred_free(NULL) */
  eddy_deferred_set_value(d, NULL, NULL);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(chain, succeed_and_fail_make_deferreds_that_have_fired) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  rec r = {0};
  EXPECT_OK(eddy_deferred_succeed(loop, value_new(6), value_free, &d));
  EXPECT_EQ(eddy_deferred_called(d), 1);
  EXPECT_OK(eddy_deferred_add_callback(d, cb_add_one, &r));
  EXPECT_EQ(value_of(d), 7);
  eddy_deferred_free(d);
  EXPECT_OK(eddy_deferred_fail(loop, &d, -EHOSTUNREACH, "no route to %s",
                               "example.test"));
  EXPECT_OK(eddy_deferred_add_errback(d, eb_recover, &r));
  EXPECT_EQ(r.code, -EHOSTUNREACH);
  EXPECT_STR(r.trail, "+r");
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}
