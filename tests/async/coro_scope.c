/* coro_scope.c: children, their scope, and cancellation through it. */
#include "coro_test.h"

typedef struct family {
  int nchildren;
  int started, finished;
  int child_result; /* what each child returns */
  int waited;       /* eddy_coro_wait_children's result */
  int parent_done;
  int sleep_children; /* children sleep (until cancelled) */
} family;

static int child(eddy_coro *co, void *arg) {
  family *f = arg;
  int err = 0;
  f->started++;
  if (f->sleep_children)
    err = eddy_coro_sleep(co, 3600 * EDDY_NSEC_PER_SEC);
  else
    err = eddy_coro_yield(co);
  f->finished++;
  return err != 0 ? err : f->child_result;
}

static int parent(eddy_coro *co, void *arg) {
  family *f = arg;
  for (int i = 0; i < f->nchildren; i++)
    EXPECT_OK(eddy_coro_spawn_child(co, child, f, NULL, NULL));
  f->waited = eddy_coro_wait_children(co);
  f->parent_done = 1;
  return f->waited;
}

Test(coro_scope, a_scope_with_1000_children_waits_for_all_of_them) {
  eddy_loop *loop = test_loop();
  family f = {.nchildren = 1000};
  coro_done d = {0};
  coro_start(loop, parent, &f, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(f.started, 1000);
  EXPECT_EQ(f.finished, 1000);
  EXPECT_EQ(f.waited, 0);
  EXPECT_EQ(d.calls, 1);
  test_finish(loop);
}

Test(coro_scope, wait_children_returns_the_first_failure) {
  eddy_loop *loop = test_loop();
  family f = {.nchildren = 3, .child_result = -EIO};
  coro_done d = {0};
  coro_start(loop, parent, &f, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(f.waited, -EIO);
  EXPECT_EQ(d.result, -EIO);
  test_finish(loop);
}

Test(coro_scope, cancelling_the_parent_cancels_1000_sleeping_children) {
  eddy_loop *loop = test_fake_loop(0);
  family f = {.nchildren = 1000, .sleep_children = 1};
  coro_done d = {0};
  eddy_coro *co = coro_start(loop, parent, &f, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(f.started, 1000);
  EXPECT_EQ(f.finished, 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(f.finished, 1000);
  EXPECT_EQ(f.waited, -ECANCELED);
  /* The parent's result is its own; it finished after every child. */
  EXPECT_EQ(d.calls, 1);
  test_finish(loop);
}

static int walks_away(eddy_coro *co, void *arg) {
  family *f = arg;
  for (int i = 0; i < f->nchildren; i++)
    EXPECT_OK(eddy_coro_spawn_child(co, child, f, NULL, NULL));
  return 0; /* without waiting */
}

static void check_children_finished(eddy_coro *co, int result, void *arg) {
  family *f = arg;
  (void)co;
  (void)result;
  /* No child outlives its parent: all ended before this callback. */
  EXPECT_EQ(f->finished, f->nchildren);
  f->parent_done = 1;
}

Test(coro_scope, a_parent_that_returns_cancels_and_waits_for_its_children) {
  eddy_loop *loop = test_fake_loop(0);
  family f = {.nchildren = 50, .sleep_children = 1};
  eddy_coro *co;
  EXPECT_OK(eddy_coro_spawn(loop, walks_away, &f, NULL, &co));
  eddy_coro_on_done(co, check_children_finished, &f);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(f.parent_done, 1);
  EXPECT_EQ(f.finished, 50);
  test_finish(loop);
}

static int grandparent(eddy_coro *co, void *arg) {
  family *f = arg;
  EXPECT_OK(eddy_coro_spawn_child(co, parent, f, NULL, NULL));
  return eddy_coro_wait_children(co);
}

Test(coro_scope, cancellation_reaches_grandchildren) {
  eddy_loop *loop = test_fake_loop(0);
  family f = {.nchildren = 10, .sleep_children = 1};
  coro_done d = {0};
  eddy_coro *co = coro_start(loop, grandparent, &f, &d);
  for (int i = 0; i < 4; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(f.started, 10);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(f.finished, 10);
  EXPECT_EQ(d.result, -ECANCELED);
  test_finish(loop);
}

static int returns_at_once(eddy_coro *co, void *arg) {
  (void)co;
  (void)arg;
  return 0;
}

static int spawns_after_return(eddy_coro *co, void *arg) {
  eddy_coro **self = arg;
  *self = co;
  return 0;
}

static void spawn_from_done(eddy_coro *co, int result, void *arg) {
  (void)result;
  *(int *)arg = eddy_coro_spawn_child(co, returns_at_once, NULL, NULL, NULL);
}

Test(coro_scope, no_child_can_be_spawned_once_the_parent_has_returned) {
  eddy_loop *loop = test_loop();
  eddy_coro *co, *self = NULL;
  int err = 1;
  EXPECT_OK(eddy_coro_spawn(loop, spawns_after_return, &self, NULL, &co));
  eddy_coro_on_done(co, spawn_from_done, &err);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(err, EDDY_ECLOSED);
  test_finish(loop);
}
