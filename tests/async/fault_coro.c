/* fault_coro.c: allocation failures swept over spawning and over what a
 * coroutine does (SQLite's way: fail the Nth allocation for N = 1, 2, ...
 * until the scenario completes). Each run must end with a clean negative
 * code or success, and nothing left allocated. The scenario spawns, makes
 * a child, a cleanup, a stream, writes, reads a line, awaits a Deferred
 * and joins a child through another. */
#include "coro_test.h"

static void nothing(void *arg) {
  (void)arg;
}

static int quick_child(eddy_coro *co, void *arg) {
  (void)arg;
  return eddy_coro_yield(co);
}

/* Awaits a Deferred sleep, then a child's join. */
static int await_both(eddy_coro *co) {
  eddy_deferred *d;
  eddy_coro *child;
  eddy_outcome o;
  int err = eddy_deferred_sleep(eddy_coro_loop(co), 1000, &d);
  if (err != 0)
    return err;
  err = eddy_coro_await(co, d, &o);
  eddy_outcome_clear(&o); /* a value, or an error's detail */
  if (err != 0)
    return err;
  if ((err = eddy_coro_spawn_child(co, quick_child, NULL, NULL, &child)) != 0)
    return err;
  if ((err = eddy_coro_join(child, &d)) != 0)
    return err;
  err = eddy_coro_await(co, d, &o);
  eddy_outcome_clear(&o);
  return err;
}

typedef struct scenario_state {
  int fd;
  int err;
} scenario_state;

/* A coroutine that makes every kind of allocation the layer makes. */
static int busy(eddy_coro *co, void *arg) {
  scenario_state *st = arg;
  eddy_coro_stream *cs;
  eddy_stream *s;
  char line[64];
  int err;
  if ((err = eddy_coro_defer(co, nothing, NULL)) != 0)
    goto out;
  if ((err = eddy_coro_spawn_child(co, quick_child, NULL, NULL, NULL)) != 0)
    goto out;
  if ((err = eddy_stream_open(eddy_coro_loop(co), st->fd, NULL, NULL, &s)) !=
      0) {
    st->fd = -1; /* the stream closed it */
    goto out;
  }
  st->fd = -1;
  if ((err = eddy_coro_stream_open(co, s, NULL, &cs)) != 0) {
    eddy_stream_close(s);
    goto out;
  }
  if ((err = eddy_coro_write(co, cs, "hi\n", 3)) != 0)
    goto out;
  err = eddy_coro_read_line(co, cs, line, sizeof line, NULL);
  if (err != 1)
    goto out;
  if ((err = eddy_coro_wait_children(co)) != 0)
    goto out;
  err = await_both(co);
out:
  st->err = err;
  return err;
}

static int scenario(void) {
  eddy_loop *loop = NULL;
  scenario_state st = {.fd = -1, .err = 0};
  int sv[2], err;
  err = eddy_loop_new(NULL, &loop);
  if (err != 0)
    return err;
  test_socketpair(sv);
  st.fd = sv[0];
  EXPECT_EQ(write(sv[1], "line\n", 5), 5);
  err = eddy_coro_spawn(loop, busy, &st, NULL, NULL);
  if (err == 0) {
    EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
    err = st.err;
  }
  if (st.fd >= 0)
    close(st.fd);
  close(sv[1]);
  eddy_loop_close_all(loop);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_loop_free(loop));
  return err;
}

static void sweep(int kind) {
  int completed = 0;
  for (uint64_t n = 1; n < 500 && !completed; n++) {
    int err;
    eddy__fault_fail_nth(kind, n, ENOMEM);
    err = scenario();
    cr_assert(err == 0 || err == -ENOMEM, "run %lu: %s", (unsigned long)n,
              eddy_errname(err));
    EXPECT_EQ(eddy__alloc_live(), 0);
    completed = eddy__fault_calls(kind) < n;
  }
  eddy__fault_reset();
  cr_assert(completed, "the scenario never completed");
}

Test(coro_faults,
     allocation_sweep_over_spawn_await_and_the_waiting_calls_malloc) {
  sweep(EDDY__SYS_MALLOC);
}

Test(coro_faults,
     allocation_sweep_over_spawn_await_and_the_waiting_calls_calloc) {
  sweep(EDDY__SYS_CALLOC);
}

Test(coro_faults,
     allocation_sweep_over_spawn_await_and_the_waiting_calls_realloc) {
  sweep(EDDY__SYS_REALLOC);
}
