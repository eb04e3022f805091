/* Allocation failures swept SQLite's way over the Deferred: the Nth
 * allocation of each kind fails, for N = 1, 2, ... until the operation no
 * longer reaches an Nth; each run must end with -ENOMEM and nothing made,
 * or with a Deferred that fires (a value, or an error carrying the
 * failure), and with nothing of eddy's left live once it is freed. */
#include "async_test.h"

TestSuite(async_faults, .init = async_setup, .fini = async_teardown);

static const int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC,
                            EDDY__SYS_REALLOC};

/* An operation under test: returns what its call returned, with *out set
 * on success. */
typedef int (*op_fn)(eddy_loop *loop, eddy_deferred **out);

/* With through_run, the rule stays while the loop runs the operation to
 * its end, so that the allocations made on the way (a process's output
 * collected, a result copied) fail too; without, only the call's. */
static int through_run;

/* Runs op with the Nth allocation of kind failing; then runs the loop
 * until idle, checks the Deferred fired, frees it and the loop. Returns 1
 * while the Nth allocation was reached. */
static int run_with_fault(op_fn op, int kind, uint64_t n) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  int rc, reached;
  eddy__fault_fail_nth(kind, n, ENOMEM);
  rc = op(loop, &d);
  if (rc == 0 && through_run)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  reached = eddy__fault_calls(kind) >= n;
  eddy__fault_reset();
  if (rc != 0) {
    EXPECT_EQ(rc, -ENOMEM);
    cr_assert(d == NULL, "a failed call left a Deferred");
  } else {
    cr_assert(d != NULL);
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
    cr_assert(eddy_deferred_called(d), "kind %d nth %llu: never fired", kind,
              (unsigned long long)n);
    eddy_deferred_set_value(d, NULL, NULL); /* handled, whatever it was */
    eddy_deferred_free(d);
  }
  test_finish(loop);
  return reached;
}

static void sweep(op_fn op) {
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    uint64_t n = 1;
    while (run_with_fault(op, kinds[k], n)) {
      n++;
      cr_assert(n < 500, "the sweep does not end");
    }
  }
}

/* ---- The Deferred itself ----------------------------------------------------------- */

static void cb_nothing(eddy_deferred *d, void *arg) {
  (void)d, (void)arg;
}

/* A Deferred with ten pairs (past the inline four), fired with an error
 * whose detail is formatted, wrapped and recovered. */
static void eb_wrap_and_recover(eddy_deferred *d, void *arg) {
  (void)arg;
  eddy_deferred_wrap_error(d, "context %d", 1);
  cr_assert(eddy_deferred_detail(d) != NULL);
  eddy_deferred_set_value(d, NULL, NULL);
}

static int op_chain(eddy_loop *loop, eddy_deferred **out) {
  eddy_deferred *d = NULL;
  int err = eddy_deferred_new(loop, NULL, NULL, &d);
  if (err)
    return err;
  for (int i = 0; i < 10; i++) {
    err = eddy_deferred_add_callbacks(d, cb_nothing, NULL, NULL);
    if (err) {
      EXPECT_EQ(err, -ENOMEM);
      break; /* the chain is unchanged: fire it as it is */
    }
  }
  /* Without room for it the error stays: run_with_fault handles it. */
  (void)eddy_deferred_add_errback(d, eb_wrap_and_recover, NULL);
  eddy_deferred_errback(d, -EIO, "disk %s", "gone");
  *out = d;
  return 0;
}

Test(async_faults, sweep_over_a_chain_with_growth_details_and_wrapping) {
  sweep(op_chain);
}

Test(async_faults, a_detail_that_cannot_be_copied_falls_back_to_strerror) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &d));
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_OK(eddy_deferred_errback(d, -ECONNRESET, "peer %s", "reset"));
  eddy__fault_reset();
  EXPECT_EQ(eddy_deferred_error(d), -ECONNRESET);
  EXPECT_STR(eddy_deferred_detail(d), eddy_strerror(-ECONNRESET));
  /* Wrapping without memory keeps the detail it had. */
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_deferred_wrap_error(d, "fetch"), -ECONNRESET);
  eddy__fault_reset();
  EXPECT_STR(eddy_deferred_detail(d), eddy_strerror(-ECONNRESET));
  eddy_deferred_free(d);
  /* The unhandled report without memory still says something. */
  EXPECT_EQ(unhandled.count, 1);
  test_finish(loop);
}

Test(async_faults, a_pair_that_cannot_be_stored_leaves_the_chain_unchanged) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  rec r = {0};
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &d));
  for (int i = 0; i < 4; i++)
    EXPECT_OK(eddy_deferred_add_callback(d, cb_record, &r));
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_deferred_add_callback(d, cb_record, &r), -ENOMEM);
  eddy__fault_reset();
  EXPECT_OK(eddy_deferred_callback(d, NULL, NULL));
  EXPECT_STR(r.trail, "cccc");
  eddy_deferred_free(d);
  test_finish(loop);
}

/* ---- Combinators ------------------------------------------------------------------------ */

static int combine_kind;

static void item_cancel(eddy_deferred *d, void *arg) {
  (void)d, (void)arg;
}

static int op_combine(eddy_loop *loop, eddy_deferred **out) {
  eddy_deferred *items[3] = {NULL};
  int err;
  for (int i = 0; i < 3; i++) {
    err = eddy_deferred_new(loop, item_cancel, NULL, &items[i]);
    if (err) {
      for (int j = 0; j < i; j++)
        eddy_deferred_free(items[j]);
      return err;
    }
  }
  EXPECT_OK(eddy_deferred_callback(items[0], value_new(1), value_free));
  if (combine_kind == 0)
    err = eddy_deferred_all(loop, items, 3, out);
  else if (combine_kind == 1)
    err = eddy_deferred_first(loop, items, 3, out);
  else
    err = eddy_deferred_list(loop, items, 3, out);
  if (err)
    return err;
  /* The other two fire, while the combination still owns them (first
   * decided on item 0 and freed them). */
  if (!eddy_deferred_called(*out))
    eddy_deferred_callback(items[1], value_new(2), value_free);
  if (!eddy_deferred_called(*out))
    eddy_deferred_errback(items[2], -EIO, "item two");
  return 0;
}

Test(async_faults, sweep_over_all_first_and_list) {
  for (combine_kind = 0; combine_kind < 3; combine_kind++)
    sweep(op_combine);
}

/* ---- Forms ---------------------------------------------------------------------------------- */

static int op_sleep(eddy_loop *loop, eddy_deferred **out) {
  return eddy_deferred_sleep(loop, 1 * MS, out);
}

static int op_timeout(eddy_loop *loop, eddy_deferred **out) {
  int err = eddy_deferred_sleep(loop, 1000 * MS, out);
  if (err == 0 && eddy_deferred_set_timeout(*out, 1 * MS) != 0)
    eddy_deferred_cancel(*out); /* the timer heap could not grow */
  return err;
}

static int square(void *arg, void **value) {
  (void)arg;
  *value = value_new(4);
  return 0;
}

static int op_work(eddy_loop *loop, eddy_deferred **out) {
  return eddy_deferred_work(loop, square, NULL, NULL, value_free, out);
}

static int op_resolve(eddy_loop *loop, eddy_deferred **out) {
  return eddy_deferred_resolve(loop, "127.0.0.1", 80, out);
}

static int refused;

static void accept_none(eddy_listener *l, eddy_stream *s, void *arg) {
  (void)l, (void)arg;
  eddy_stream_abort(s);
}

static int op_connect(eddy_loop *loop, eddy_deferred **out) {
  char text[64];
  snprintf(text, sizeof text, "tcp:127.0.0.1:%d", refused);
  return eddy_deferred_connect(loop, text, out);
}

static const char *const sh_true[] = {"sh", "-c", "echo hi", NULL};

static int op_output(eddy_loop *loop, eddy_deferred **out) {
  eddy_process_options o = {.file = "sh", .argv = sh_true};
  return eddy_deferred_process_output(loop, &o, out);
}

static int op_spawn(eddy_loop *loop, eddy_deferred **out) {
  eddy_process_options o = {.file = "sh", .argv = sh_true};
  eddy_process *p;
  return eddy_deferred_spawn(loop, &o, &p, out);
}

static int op_drained(eddy_loop *loop, eddy_deferred **out) {
  int sv[2], err;
  eddy_stream *s = NULL;
  test_socketpair(sv);
  close(sv[1]);
  err = eddy_stream_open(loop, sv[0], NULL, NULL, &s);
  if (err) /* the stream took sv[0] with it */
    return err;
  err = eddy_deferred_drained(s, out);
  eddy_stream_close(s);
  return err;
}

Test(async_faults, sweep_over_sleep_and_its_timeout) {
  sweep(op_sleep);
  sweep(op_timeout);
}

Test(async_faults, sweep_over_work) {
  sweep(op_work);
}

Test(async_faults, sweep_over_resolve) {
  sweep(op_resolve);
}

Test(async_faults, sweep_over_connect) {
  eddy_loop *loop = test_loop();
  eddy_listener *l = NULL;
  char err[200];
  EXPECT_OK(eddy_listen(loop, "tcp:0:interface=127.0.0.1", accept_none, NULL,
                        &l, err, sizeof err));
  refused = eddy_listener_port(l);
  eddy_listener_close(l);
  test_finish(loop);
  sweep(op_connect);
}

Test(async_faults, sweep_over_process_output_and_spawn) {
  sweep(op_output);
  sweep(op_spawn);
}

Test(async_faults, sweep_over_drained) {
  sweep(op_drained);
}

Test(async_faults, succeed_without_memory_frees_the_value_it_was_given) {
  eddy_loop *loop = test_loop();
  eddy_deferred *d = NULL;
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_deferred_succeed(loop, value_new(1), value_free, &d), -ENOMEM);
  EXPECT_EQ(values_freed, 1);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_deferred_fail(loop, &d, -EIO, "x"), -ENOMEM);
  eddy__fault_reset();
  test_finish(loop);
}

Test(async_faults, sweep_through_the_run_of_sleep_work_output_and_spawn) {
  through_run = 1;
  sweep(op_sleep);
  sweep(op_work);
  sweep(op_output);
  sweep(op_spawn);
  through_run = 0;
}
