/* Cancellation at every stage of a Deferred's life (unfired, in its own
 * chain, paused on another, done), what the canceller may do, the
 * producer that fires late, and timeouts on the fake clock. */
#include "async_test.h"

TestSuite(cancel, .init = async_setup, .fini = async_teardown);

/* A producer: counts its canceller's calls and may fire from it. */
typedef struct producer {
  int cancels;
  int fire_code; /* non-zero: the canceller fails d with this */
  int fire_value;
  int cancel_again; /* the canceller cancels d again (reentrant) */
} producer;

static void canceller(eddy_deferred *d, void *arg) {
  producer *p = arg;
  p->cancels++;
  if (p->cancel_again)
    eddy_deferred_cancel(d);
  if (p->fire_code)
    EXPECT_OK(
        eddy_deferred_errback(d, p->fire_code, "stopped by the producer"));
  else if (p->fire_value)
    EXPECT_OK(eddy_deferred_callback(d, value_new(p->fire_value), value_free));
}

static eddy_deferred *produced(eddy_loop *loop, producer *p) {
  eddy_deferred *d = NULL;
  EXPECT_OK(eddy_deferred_new(loop, canceller, p, &d));
  return d;
}

Test(cancel, an_unfired_deferred_calls_its_canceller_and_fails_ecanceled) {
  eddy_loop *loop = test_loop();
  producer p = {0};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(p.cancels, 1);
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_STR(res.detail, "cancelled");
  EXPECT_EQ(eddy_deferred_called(d), 1);
  eddy_deferred_cancel(d); /* again: nothing */
  EXPECT_EQ(p.cancels, 1);
  EXPECT_EQ(res.fired, 1);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel, a_canceller_may_fire_with_its_own_error_or_even_a_value) {
  eddy_loop *loop = test_loop();
  producer p = {.fire_code = -ECONNABORTED};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, -ECONNABORTED);
  EXPECT_STR(res.detail, "stopped by the producer");
  eddy_deferred_free(d);

  p = (producer){.fire_value = 77};
  d = produced(loop, &p);
  res = (result){0};
  watch_int(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(res.value, 77);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel, a_reentrant_cancel_from_the_canceller_is_harmless) {
  eddy_loop *loop = test_loop();
  producer p = {.cancel_again = 1};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(p.cancels, 1);
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, -ECANCELED);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel, a_producer_that_fires_after_the_cancel_gets_ecanceled) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  result res = {0};
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &d)); /* no canceller */
  watch_result(d, &res);
  eddy_deferred_cancel(d);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_EQ(eddy_deferred_callback(d, value_new(1), value_free), -ECANCELED);
  EXPECT_EQ(eddy_deferred_errback(d, -EIO, "late"), -ECANCELED);
  EXPECT_EQ(values_freed, 1); /* the late value was not leaked */
  EXPECT_EQ(res.fired, 1);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel, after_firing_cancel_changes_nothing) {
  eddy_loop *loop = test_loop();
  producer p = {0};
  eddy_deferred *d = produced(loop, &p);
  EXPECT_OK(eddy_deferred_callback(d, value_new(3), value_free));
  eddy_deferred_cancel(d);
  EXPECT_EQ(p.cancels, 0);
  EXPECT_EQ(eddy_deferred_error(d), 0);
  EXPECT_EQ(value_of(d), 3);
  eddy_deferred_free(d);
  test_finish(loop);
}

static void cb_cancel_self(eddy_deferred *d, void *arg) {
  producer *p = arg;
  eddy_deferred_cancel(d); /* in its own chain: it has fired */
  EXPECT_EQ(p->cancels, 0);
  EXPECT_EQ(eddy_deferred_error(d), 0);
}

Test(cancel, from_inside_its_own_chain_cancel_changes_nothing) {
  eddy_loop *loop = test_loop();
  producer p = {0};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  EXPECT_OK(eddy_deferred_add_callback(d, cb_cancel_self, &p));
  watch_int(d, &res);
  EXPECT_OK(eddy_deferred_callback(d, value_new(5), value_free));
  EXPECT_EQ(res.value, 5);
  eddy_deferred_free(d);
  test_finish(loop);
}

typedef struct paused {
  eddy_deferred *inner;
} paused;

static void cb_wait_inner(eddy_deferred *d, void *arg) {
  paused *w = arg;
  EXPECT_OK(eddy_deferred_chain(d, w->inner));
}

/* Twisted's test_cancelNestedDeferred: cancelling the outer, paused on the
 * inner, cancels the inner; its error continues the outer chain. */
Test(cancel, a_paused_deferred_cancels_the_one_it_waits_on) {
  eddy_loop *loop = test_loop();
  producer po = {0}, pi = {0};
  eddy_deferred *outer = produced(loop, &po), *inner = produced(loop, &pi);
  paused w = {inner};
  result res = {0};
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_wait_inner, &w));
  watch_result(outer, &res);
  EXPECT_OK(eddy_deferred_callback(outer, value_new(1), value_free));
  EXPECT_EQ(eddy_deferred_paused(outer), 1);
  eddy_deferred_cancel(outer);
  EXPECT_EQ(po.cancels, 0); /* the outer had fired */
  EXPECT_EQ(pi.cancels, 1);
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_EQ(eddy_deferred_paused(outer), 0);
  eddy_deferred_free(outer);
  EXPECT_EQ(values_freed, 1);
  test_finish(loop);
}

Test(cancel, freeing_a_paused_deferred_cancels_and_frees_the_inner_one) {
  eddy_loop *loop = test_loop();
  producer pi = {0};
  eddy_deferred *outer = NULL, *inner = produced(loop, &pi);
  paused w = {inner};
  rec r = {0};
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &outer));
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_wait_inner, &w));
  EXPECT_OK(eddy_deferred_add_errback(outer, eb_record, &r));
  EXPECT_OK(eddy_deferred_callback(outer, NULL, NULL));
  eddy_deferred_free(outer);
  EXPECT_EQ(pi.cancels, 1);
  EXPECT_STR(r.trail, "e");
  EXPECT_EQ(r.code, -ECANCELED);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop); /* both are gone: nothing live */
}

/* A chain two levels deep, each level paused after replacing its value,
 * freed from the top: every Deferred and value goes (test_finish checks
 * that nothing of eddy's is live; ASan that no value leaked). */
static void cb_keep_then_wait(eddy_deferred *d, void *arg) {
  paused *w = arg;
  eddy_deferred_set_value(d, value_new(2), value_free);
  EXPECT_OK(eddy_deferred_chain(d, w->inner));
}

static void cb_inner_holds(eddy_deferred *d, void *arg) {
  paused *w = arg;
  eddy_deferred_set_value(d, value_new(3), value_free);
  EXPECT_OK(eddy_deferred_chain(d, w->inner)); /* pauses again */
}

Test(cancel, a_chain_cancelled_midway_frees_every_value_it_held) {
  eddy_loop *loop = test_loop();
  eddy_deferred *outer = NULL, *mid = NULL, *deepest = NULL;
  paused wo, wm;
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &outer));
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &mid));
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &deepest));
  wo.inner = mid;
  wm.inner = deepest;
  EXPECT_OK(eddy_deferred_add_callback(outer, cb_keep_then_wait, &wo));
  EXPECT_OK(eddy_deferred_add_callback(mid, cb_inner_holds, &wm));
  EXPECT_OK(eddy_deferred_callback(outer, value_new(1), value_free));
  EXPECT_OK(eddy_deferred_callback(mid, value_new(10), value_free));
  EXPECT_EQ(eddy_deferred_paused(outer), 1);
  EXPECT_EQ(eddy_deferred_paused(mid), 1);
  EXPECT_EQ(values_freed, 4); /* a chain that pauses drops its value */
  eddy_deferred_free(outer);
  EXPECT_EQ(values_freed, 4);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

/* ---- Timeouts ------------------------------------------------------------------- */

Test(cancel, a_timeout_fails_with_etimedout_exactly_when_due) {
  eddy_loop *loop = test_fake_loop(0);
  producer p = {0};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_result(d, &res);
  EXPECT_OK(eddy_deferred_set_timeout(d, 250 * MS));
  EXPECT_OK(eddy_loop_advance(loop, 249 * MS));
  EXPECT_EQ(res.fired, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1 * MS));
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(p.cancels, 1);
  EXPECT_EQ(res.code, -ETIMEDOUT);
  EXPECT_STR(res.detail, "timed out after 250 ms");
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel, a_canceller_firing_ecanceled_on_timeout_becomes_etimedout) {
  eddy_loop *loop = test_fake_loop(0);
  producer p = {.fire_code = -ECANCELED};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_result(d, &res);
  EXPECT_OK(eddy_deferred_set_timeout(d, 10 * MS));
  EXPECT_OK(eddy_loop_advance(loop, 10 * MS));
  EXPECT_EQ(res.code, -ETIMEDOUT);
  EXPECT_STR(res.detail, "stopped by the producer");
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel, firing_in_time_stops_the_timeout) {
  eddy_loop *loop = test_fake_loop(0);
  producer p = {0};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_int(d, &res);
  EXPECT_OK(eddy_deferred_set_timeout(d, 100 * MS));
  EXPECT_OK(eddy_loop_advance(loop, 50 * MS));
  EXPECT_OK(eddy_deferred_callback(d, value_new(1), value_free));
  EXPECT_OK(eddy_loop_advance(loop, 100 * MS));
  EXPECT_EQ(res.fired, 1);
  EXPECT_EQ(res.code, 0);
  EXPECT_EQ(p.cancels, 0);
  EXPECT_EQ(eddy_deferred_set_timeout(d, 10 * MS), -EALREADY);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(cancel,
     a_second_timeout_replaces_the_first_and_a_negative_one_removes_it) {
  eddy_loop *loop = test_fake_loop(0);
  producer p = {0};
  eddy_deferred *d = produced(loop, &p);
  result res = {0};
  watch_result(d, &res);
  EXPECT_OK(eddy_deferred_set_timeout(d, 10 * MS));
  EXPECT_OK(eddy_deferred_set_timeout(d, 30 * MS));
  EXPECT_OK(eddy_loop_advance(loop, 20 * MS));
  EXPECT_EQ(res.fired, 0);
  EXPECT_OK(eddy_deferred_set_timeout(d, -1));
  EXPECT_OK(eddy_loop_advance(loop, 1000 * MS));
  EXPECT_EQ(res.fired, 0);
  eddy_deferred_free(d); /* unfired: cancelled, not reported */
  EXPECT_EQ(res.code, -ECANCELED);
  EXPECT_EQ(unhandled.count, 0);
  test_finish(loop);
}

Test(cancel, freeing_a_deferred_with_a_timeout_stops_its_timer) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_deferred *d = NULL;
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &d));
  EXPECT_OK(eddy_deferred_set_timeout(d, 10 * MS));
  eddy_deferred_free(d);
  EXPECT_EQ(eddy_loop_next_timeout(loop), -1);
  EXPECT_OK(
      eddy_loop_advance(loop, 20 * MS)); /* nothing fires on freed memory */
  test_finish(loop);
}

Test(cancel, an_unhandled_timeout_is_reported_when_freed) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_deferred *d = NULL;
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &d));
  EXPECT_OK(eddy_deferred_set_timeout(d, 5 * MS));
  EXPECT_OK(eddy_loop_advance(loop, 5 * MS));
  eddy_deferred_free(d);
  EXPECT_EQ(unhandled.count, 1);
  EXPECT_EQ(unhandled.code, -ETIMEDOUT);
  EXPECT_STR(unhandled.message,
             "Unhandled error in Deferred: timed out after "
             "5 ms");
  test_finish(loop);
}
