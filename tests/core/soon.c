/* Call-soon that can be cancelled: the internal eddy__soon (on its owner's
 * memory) and the public eddy_call handle. Cancel before the run, cancel
 * from another call of the same turn, re-schedule from its own callback,
 * freeing the owner after a cancel, and the call's place in the turn. */
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"
#include "core/loop.h"

#define MS EDDY_NSEC_PER_MSEC

typedef struct trace {
  int order[32];
  int n;
} trace;

/* An owner with a call embedded in it, as a connection would have. */
typedef struct owner {
  eddy__soon call;
  trace *log;
  int id;
  eddy__soon *victim; /* cancelled by this call when it runs */
  eddy_loop *loop;
  int again; /* re-schedules itself this many times */
} owner;

static void owner_ran(eddy__soon *c, void *arg) {
  owner *o = arg;
  cr_assert(c == &o->call);
  o->log->order[o->log->n++] = o->id;
  if (o->victim)
    eddy__soon_cancel(o->victim);
  if (o->again > 0) {
    o->again--;
    eddy__soon_schedule(o->loop, c);
    EXPECT_EQ(eddy__soon_pending(c), 1);
  }
}

static void owner_init(owner *o, eddy_loop *loop, trace *log, int id) {
  *o = (owner){.log = log, .id = id, .loop = loop};
  eddy__soon_init(&o->call, owner_ran, o);
}

Test(soon, runs_in_the_next_call_soon_step_not_inside_schedule) {
  eddy_loop *loop = test_loop();
  trace log = {0};
  owner a, b;
  owner_init(&a, loop, &log, 1);
  owner_init(&b, loop, &log, 2);
  EXPECT_EQ(eddy__soon_pending(&a.call), 0);
  eddy__soon_schedule(loop, &a.call);
  eddy__soon_schedule(loop, &b.call);
  eddy__soon_schedule(loop, &a.call); /* already scheduled: keeps its place */
  EXPECT_EQ(log.n, 0);
  EXPECT_EQ(eddy__soon_pending(&a.call), 1);
  EXPECT_EQ(eddy_loop_next_timeout(loop), 0); /* the loop must not sleep */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(log.n, 2);
  EXPECT_EQ(log.order[0], 1);
  EXPECT_EQ(log.order[1], 2);
  EXPECT_EQ(eddy__soon_pending(&a.call), 0);
  test_finish(loop);
}

Test(soon, cancel_before_the_run_means_it_never_runs_and_is_idempotent) {
  eddy_loop *loop = test_loop();
  trace log = {0};
  owner a;
  owner_init(&a, loop, &log, 1);
  eddy__soon_cancel(&a.call); /* never scheduled: nothing to do */
  eddy__soon_schedule(loop, &a.call);
  eddy__soon_cancel(&a.call);
  eddy__soon_cancel(&a.call);
  EXPECT_EQ(eddy__soon_pending(&a.call), 0);
  /* Nothing scheduled: the loop is idle at once. */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 0);
  /* Cancelled calls can be scheduled again. */
  eddy__soon_schedule(loop, &a.call);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 1);
  test_finish(loop);
}

Test(soon, a_call_cancelled_by_an_earlier_call_of_the_same_turn_does_not_run) {
  eddy_loop *loop = test_loop();
  trace log = {0};
  owner a, b, c;
  owner_init(&a, loop, &log, 1);
  owner_init(&b, loop, &log, 2);
  owner_init(&c, loop, &log, 3);
  a.victim = &b.call;
  eddy__soon_schedule(loop, &a.call);
  eddy__soon_schedule(loop, &b.call);
  eddy__soon_schedule(loop, &c.call);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(log.n, 2);
  EXPECT_EQ(log.order[0], 1);
  EXPECT_EQ(log.order[1], 3);
  EXPECT_EQ(eddy__soon_pending(&b.call), 0);
  test_finish(loop);
}

Test(soon, rescheduled_from_its_own_callback_it_runs_next_turn_not_this_one) {
  eddy_loop *loop = test_loop();
  trace log = {0};
  owner a, b;
  owner_init(&a, loop, &log, 1);
  owner_init(&b, loop, &log, 2);
  a.again = 2;
  eddy__soon_schedule(loop, &a.call);
  eddy__soon_schedule(loop, &b.call);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1); /* a is scheduled */
  EXPECT_EQ(log.n, 2);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(log.n, 3);
  EXPECT_EQ(log.order[2], 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(log.n, 4);
  test_finish(loop);
}

Test(soon, the_owner_may_be_freed_after_cancel) {
  eddy_loop *loop = test_loop();
  trace log = {0};
  owner *a = malloc(sizeof *a), b;
  cr_assert(a != NULL);
  owner_init(a, loop, &log, 1);
  owner_init(&b, loop, &log, 2);
  eddy__soon_schedule(loop, &a->call);
  eddy__soon_schedule(loop, &b.call);
  eddy__soon_cancel(&a->call);
  free(a); /* ASan reports any later touch of it */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 1);
  EXPECT_EQ(log.order[0], 2);
  test_finish(loop);
}

Test(soon, scheduling_allocates_nothing_and_survives_allocation_failure) {
  eddy_loop *loop = test_loop();
  trace log = {0};
  owner a;
  long live;
  owner_init(&a, loop, &log, 1);
  live = eddy__alloc_live();
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_CALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  eddy__soon_schedule(loop, &a.call);
  EXPECT_EQ(eddy__alloc_live(), live);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 1);
  eddy__fault_reset();
  test_finish(loop);
}

/* ---- Place in the turn ---------------------------------------------------------- */

typedef struct turn_ctx {
  owner call;
  trace log;
  eddy_timer *timer;
} turn_ctx;

static void timer_schedules(eddy_timer *t, void *arg) {
  turn_ctx *c = arg;
  c->log.order[c->log.n++] = 10;
  eddy__soon_schedule(eddy_timer_loop(t), &c->call.call);
}

Test(soon, a_call_scheduled_by_a_due_timer_runs_in_the_same_turn) {
  eddy_loop *loop = test_fake_loop(0);
  turn_ctx c = {0};
  owner_init(&c.call, loop, &c.log, 1);
  EXPECT_OK(eddy_timer_new(loop, timer_schedules, &c, &c.timer));
  EXPECT_OK(eddy_timer_start(c.timer, 0, 0));
  /* One turn: timers (step 1), then calls (step 2). */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(c.log.n, 2);
  EXPECT_EQ(c.log.order[0], 10);
  EXPECT_EQ(c.log.order[1], 1);
  test_finish(loop);
}

static void call_starts_timer(eddy__soon *s, void *arg) {
  turn_ctx *c = arg;
  (void)s;
  c->log.order[c->log.n++] = 1;
  EXPECT_OK(eddy_timer_start(c->timer, 0, 0));
}

static void timer_logs(eddy_timer *t, void *arg) {
  turn_ctx *c = arg;
  (void)t;
  c->log.order[c->log.n++] = 10;
}

static void timer_logs_io(eddy_timer *t, void *arg);

Test(soon, a_zero_timer_started_by_a_call_fires_on_the_next_turn_before_calls) {
  eddy_loop *loop = test_fake_loop(0);
  turn_ctx c = {0};
  owner again;
  owner_init(&again, loop, &c.log, 2);
  eddy__soon_init(&c.call.call, call_starts_timer, &c);
  EXPECT_OK(eddy_timer_new(loop, timer_logs, &c, &c.timer));
  eddy__soon_schedule(loop, &c.call.call);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(c.log.n, 1);
  eddy__soon_schedule(loop, &again.call);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(c.log.n, 3);
  EXPECT_EQ(c.log.order[1], 10); /* the timer, step 1 */
  EXPECT_EQ(c.log.order[2], 2);  /* then the call, step 2 */
  test_finish(loop);
}

/* From an I/O callback (step 3), a call waits for the next turn, and runs
 * after that turn's due timers: a zero-delay timer started in the same
 * callback fires first. */
typedef struct io_ctx {
  eddy__io io;
  owner call;
  trace log;
  eddy_timer *timer;
} io_ctx;

static void io_ready(eddy_loop *loop, eddy__io *io, unsigned events) {
  io_ctx *c = io->data;
  char byte;
  (void)events;
  EXPECT_EQ(read(io->fd, &byte, 1), 1);
  c->log.order[c->log.n++] = 100;
  eddy__io_remove(loop, io);
  eddy__soon_schedule(loop, &c->call.call);
  EXPECT_OK(eddy_timer_start(c->timer, 0, 0));
}

Test(soon, a_call_scheduled_by_io_runs_next_turn_after_its_due_timers) {
  eddy_loop *loop = test_loop();
  io_ctx c = {0};
  int fds[2];
  cr_assert(pipe(fds) == 0);
  owner_init(&c.call, loop, &c.log, 1);
  EXPECT_OK(eddy_timer_new(loop, timer_logs_io, &c, &c.timer));
  eddy__io_init(&c.io, fds[0], io_ready, &c);
  EXPECT_OK(eddy__io_start(loop, &c.io, EDDY__IO_READ));
  EXPECT_EQ(write(fds[1], "x", 1), 1);
  /* Without waiting, so that the turn has no step 4 to fire the timer. */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(c.log.n, 1); /* only the I/O: the call waits */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(c.log.n, 3);
  EXPECT_EQ(c.log.order[1], 10); /* the timer, step 1 */
  EXPECT_EQ(c.log.order[2], 1);  /* then the call, step 2 */
  close(fds[0]);
  close(fds[1]);
  test_finish(loop);
}

static void timer_logs_io(eddy_timer *t, void *arg) {
  io_ctx *c = arg;
  (void)t;
  c->log.order[c->log.n++] = 10;
}

/* ---- The public handle and eddy_loop_call_soon ------------------------------------ */

typedef struct pub {
  trace log;
  eddy_call *calls[3];
  int cancel_next, reschedule, close_self;
} pub;

static void pub_ran(eddy_call *call, void *arg) {
  pub *p = arg;
  int id = call == p->calls[0] ? 0 : call == p->calls[1] ? 1 : 2;
  p->log.order[p->log.n++] = id;
  if (p->cancel_next && id == 0)
    eddy_call_cancel(p->calls[1]);
  if (p->reschedule > 0 && id == 0) {
    p->reschedule--;
    EXPECT_OK(eddy_call_schedule(call));
    EXPECT_EQ(eddy_call_pending(call), 1);
  }
  if (p->close_self && id == 2) {
    eddy_call_close(call);
    EXPECT_EQ(eddy_call_schedule(call), EDDY_ECLOSED);
  }
}

static void plain_ran(eddy_loop *loop, void *arg) {
  pub *p = arg;
  (void)loop;
  p->log.order[p->log.n++] = 7;
}

static eddy_loop *pub_loop(pub *p) {
  eddy_loop *loop = test_loop();
  for (int i = 0; i < 3; i++)
    EXPECT_OK(eddy_call_new(loop, pub_ran, p, &p->calls[i]));
  return loop;
}

Test(call, handles_and_plain_calls_share_one_queue_in_schedule_order) {
  pub p = {0};
  eddy_loop *loop = pub_loop(&p);
  EXPECT_OK(eddy_call_schedule(p.calls[1]));
  EXPECT_OK(eddy_loop_call_soon(loop, plain_ran, &p));
  EXPECT_OK(eddy_call_schedule(p.calls[0]));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(p.log.n, 3);
  EXPECT_EQ(p.log.order[0], 1);
  EXPECT_EQ(p.log.order[1], 7);
  EXPECT_EQ(p.log.order[2], 0);
  test_finish(loop);
}

Test(call, cancel_before_the_run_and_from_an_earlier_call_of_the_turn) {
  pub p = {.cancel_next = 1};
  eddy_loop *loop = pub_loop(&p);
  EXPECT_OK(eddy_call_schedule(p.calls[2]));
  eddy_call_cancel(p.calls[2]);
  eddy_call_cancel(p.calls[2]);
  EXPECT_EQ(eddy_call_pending(p.calls[2]), 0);
  EXPECT_OK(eddy_call_schedule(p.calls[0]));
  EXPECT_OK(eddy_call_schedule(p.calls[1]));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.log.n, 1);
  EXPECT_EQ(p.log.order[0], 0);
  test_finish(loop);
}

Test(call, rescheduled_from_its_own_callback_it_runs_on_the_next_turn) {
  pub p = {.reschedule = 1};
  eddy_loop *loop = pub_loop(&p);
  EXPECT_OK(eddy_call_schedule(p.calls[0]));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(p.log.n, 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(p.log.n, 2);
  test_finish(loop);
}

Test(call, close_from_its_own_callback_and_close_all_release_it) {
  pub p = {.close_self = 1};
  eddy_loop *loop = pub_loop(&p);
  EXPECT_OK(eddy_call_schedule(p.calls[2]));
  EXPECT_OK(eddy_call_schedule(p.calls[1]));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(p.log.n, 2);
  /* close_all closes calls 0 and 1; a scheduled one is cancelled. */
  EXPECT_OK(eddy_call_schedule(p.calls[1]));
  eddy_loop_close_all(loop);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.log.n, 2);
  test_finish(loop);
}

Test(call, a_closed_call_scheduled_earlier_in_the_turn_does_not_run) {
  pub p = {0};
  eddy_loop *loop = pub_loop(&p);
  EXPECT_OK(eddy_call_schedule(p.calls[0]));
  eddy_call_close(p.calls[0]);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(p.log.n, 0);
  test_finish(loop);
}

Test(call, creation_failures_return_enomem_or_einval_and_leave_nothing) {
  eddy_loop *loop = test_loop();
  eddy_call *call = NULL;
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_call_new(loop, pub_ran, NULL, &call), -ENOMEM);
  EXPECT_EQ(eddy_call_new(loop, NULL, NULL, &call), -EINVAL);
  EXPECT_EQ(call, NULL);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_finish(loop);
}

static void count_plain(eddy_loop *loop, void *arg) {
  (void)loop;
  (*(int *)arg)++;
}

Test(call, call_soon_reuses_its_nodes_once_warm) {
  eddy_loop *loop = test_loop();
  int hits = 0;
  long live;
  for (int i = 0; i < 4; i++)
    EXPECT_OK(eddy_loop_call_soon(loop, count_plain, &hits));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  live = eddy__alloc_live();
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  for (int i = 0; i < 4; i++)
    EXPECT_OK(eddy_loop_call_soon(loop, count_plain, &hits));
  EXPECT_EQ(eddy_loop_call_soon(loop, count_plain, &hits), -ENOMEM);
  EXPECT_EQ(eddy__alloc_live(), live);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(hits, 8);
  eddy__fault_reset();
  test_finish(loop);
}
