/* eddy_timers.c: the timer benchmark on eddy (see uv_timers.c for the same
 * program on libuv, and run.sh for how the two are compared).
 *
 *   1. start 1,000,000 timers spread over one second, run until all fire;
 *   2. start 1,000,000 timers and stop them all;
 *   3. cost of one empty loop turn (EDDY_RUN_NOWAIT).
 *
 * Prints one "name value" line per metric, times in nanoseconds. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>

#include "eddy.h"

#include "common.h"

static lateness late;
static int64_t *deadlines; /* loop-time ns, per timer */

static void die_code(const char *what, int err) {
  fprintf(stderr, "eddy_timers: %s: %s\n", what, eddy_strerror(err));
  exit(1);
}

static void on_fire(eddy_timer *t, void *arg) {
  (void)t;
  lateness_record(&late, deadlines[(uintptr_t)arg]);
}

int main(void) {
  uint32_t *delay = make_delays_ms();
  eddy_timer **timers = malloc(NTIMERS * sizeof *timers);
  eddy_loop *loop;
  int64_t t0, t1, c0, c1, base;
  int err;

  deadlines = malloc(NTIMERS * sizeof *deadlines);
  if (timers == NULL || deadlines == NULL)
    die_code("malloc", -ENOMEM);
  if ((err = eddy_loop_new(NULL, &loop)) != 0)
    die_code("eddy_loop_new", err);
  /* Creating handles is not what is measured: only arming them. */
  for (uint32_t i = 0; i < NTIMERS; i++)
    if ((err = eddy_timer_new(loop, on_fire, (void *)(uintptr_t)i,
                              &timers[i])) != 0)
      die_code("eddy_timer_new", err);

  /* 1. Schedule, then fire. The loop clock is refreshed first so that the
   * deadlines are relative to "now", as libuv's are after uv_update_time.
   * The deadlines eddy will compute are known in advance: writing them down
   * now, rather than asking eddy_timer_deadline() afterwards, keeps the gap
   * between scheduling and running (a backlog of due timers) as small as it
   * can be. A sample is checked against eddy's own below. */
  eddy_loop_update_time(loop);
  base = eddy_loop_now(loop);
  for (uint32_t i = 0; i < NTIMERS; i++)
    deadlines[i] = base + (int64_t)delay[i] * EDDY_NSEC_PER_MSEC;
  t0 = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    if ((err = eddy_timer_start(timers[i],
                                (int64_t)delay[i] * EDDY_NSEC_PER_MSEC, 0)))
      die_code("eddy_timer_start", err);
  t1 = mono_ns();
  put_int("schedule_ns", t1 - t0);
  for (uint32_t i = 0; i < NTIMERS; i += NTIMERS / 100)
    if (eddy_timer_deadline(timers[i]) != deadlines[i]) {
      fprintf(stderr, "eddy_timers: timer %u: deadline %" PRId64
              ", expected %" PRId64 "\n", i, eddy_timer_deadline(timers[i]),
              deadlines[i]);
      return 1;
    }

  late.max = INT64_MIN;
  late.min = INT64_MAX;
  late.steady_max = INT64_MIN;
  c0 = cpu_ns();
  late.run_start = t0 = mono_ns();
  err = eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  t1 = mono_ns();
  c1 = cpu_ns();
  if (err < 0)
    die_code("eddy_loop_run", err);
  if (late.fired != NTIMERS) {
    fprintf(stderr, "eddy_timers: %u of %u timers fired\n", late.fired,
            NTIMERS);
    return 1;
  }
  put_int("fire_wall_ns", t1 - t0);
  put_int("fire_cpu_ns", c1 - c0);
  put_int("lateness_max_ns", late.max);
  put_int("lateness_mean_ns", late.sum / NTIMERS);
  put_int("lateness_min_ns", late.min);
  put_int("lateness_steady_max_ns", late.steady_max);

  /* 2. Schedule and cancel: the heap now has its full capacity, as in a
   * server that has been running a while. Stop in start order, which
   * removes from all over the heap. */
  eddy_loop_update_time(loop);
  t0 = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    (void)eddy_timer_start(timers[i], (int64_t)delay[i] * EDDY_NSEC_PER_MSEC,
                           0);
  t1 = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    eddy_timer_stop(timers[i]);
  put_int("cancel_start_ns", t1 - t0);
  put_int("cancel_ns", mono_ns() - t0);
  if (eddy_loop_run(loop, EDDY_RUN_NOWAIT) != 0 || late.fired != NTIMERS) {
    fprintf(stderr, "eddy_timers: loop still busy after stopping all\n");
    return 1;
  }

  for (uint32_t i = 0; i < NTIMERS; i++)
    eddy_timer_close(timers[i]);
  (void)eddy_loop_run(loop, EDDY_RUN_NOWAIT); /* frees the closed handles */
  if ((err = eddy_loop_free(loop)) != 0)
    die_code("eddy_loop_free", err);

  /* 3. Empty turns, on a fresh loop so nothing from above lingers. */
  if ((err = eddy_loop_new(NULL, &loop)) != 0)
    die_code("eddy_loop_new", err);
  EMPTY_TURNS((void)eddy_loop_run(loop, EDDY_RUN_NOWAIT));
  if ((err = eddy_loop_free(loop)) != 0)
    die_code("eddy_loop_free", err);

  free(timers);
  free(deadlines);
  free(delay);
  return 0;
}
