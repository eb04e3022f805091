/* uv_timers.c: the timer benchmark on libuv, the peer eddy is measured
 * against. Same work and output as eddy_timers.c; see that file.
 *
 * Deadlines: libuv's clock (uv_now) is in whole milliseconds and may come
 * from CLOCK_MONOTONIC_COARSE, which lags CLOCK_MONOTONIC by up to a
 * scheduler tick. Measuring lateness against libuv's own deadline would
 * charge libuv that lag, so the deadline used here is the intended one:
 * CLOCK_MONOTONIC when scheduling began plus the delay. */
#define _POSIX_C_SOURCE 200809L

#include <uv.h>

#include "common.h"

static lateness late;
static uv_timer_t *timers;
static int64_t *deadlines; /* MONOTONIC ns, per timer */

static void die_code(const char *what, int err) {
  fprintf(stderr, "uv_timers: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

static void on_fire(uv_timer_t *t) {
  lateness_record(&late, deadlines[t - timers]);
}

int main(void) {
  uint32_t *delay = make_delays_ms();
  uv_loop_t loop;
  int64_t t0, t1, c0, c1, base;
  int err;

  timers = malloc(NTIMERS * sizeof *timers);
  deadlines = malloc(NTIMERS * sizeof *deadlines);
  if (timers == NULL || deadlines == NULL)
    die_code("malloc", UV_ENOMEM);
  if ((err = uv_loop_init(&loop)) != 0)
    die_code("uv_loop_init", err);
  /* Not measured: only arming is. */
  for (uint32_t i = 0; i < NTIMERS; i++)
    (void)uv_timer_init(&loop, &timers[i]);

  /* 1. Schedule, then fire. */
  uv_update_time(&loop);
  base = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    deadlines[i] = base + (int64_t)delay[i] * 1000000;
  t0 = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    if ((err = uv_timer_start(&timers[i], on_fire, delay[i], 0)) != 0)
      die_code("uv_timer_start", err);
  t1 = mono_ns();
  put_int("schedule_ns", t1 - t0);

  late.max = INT64_MIN;
  late.min = INT64_MAX;
  late.steady_max = INT64_MIN;
  c0 = cpu_ns();
  late.run_start = t0 = mono_ns();
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  t1 = mono_ns();
  c1 = cpu_ns();
  if (late.fired != NTIMERS) {
    fprintf(stderr, "uv_timers: %u of %u timers fired\n", late.fired,
            NTIMERS);
    return 1;
  }
  put_int("fire_wall_ns", t1 - t0);
  put_int("fire_cpu_ns", c1 - c0);
  put_int("lateness_max_ns", late.max);
  put_int("lateness_mean_ns", late.sum / NTIMERS);
  put_int("lateness_min_ns", late.min);
  put_int("lateness_steady_max_ns", late.steady_max);

  /* 2. Schedule and cancel, in start order. */
  uv_update_time(&loop);
  t0 = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    (void)uv_timer_start(&timers[i], on_fire, delay[i], 0);
  t1 = mono_ns();
  for (uint32_t i = 0; i < NTIMERS; i++)
    (void)uv_timer_stop(&timers[i]);
  put_int("cancel_start_ns", t1 - t0);
  put_int("cancel_ns", mono_ns() - t0);
  if (uv_run(&loop, UV_RUN_NOWAIT) != 0 || late.fired != NTIMERS) {
    fprintf(stderr, "uv_timers: loop still busy after stopping all\n");
    return 1;
  }

  for (uint32_t i = 0; i < NTIMERS; i++)
    uv_close((uv_handle_t *)&timers[i], NULL);
  (void)uv_run(&loop, UV_RUN_DEFAULT); /* runs the close callbacks */
  if ((err = uv_loop_close(&loop)) != 0)
    die_code("uv_loop_close", err);

  /* 3. Empty turns, on a fresh loop. */
  if ((err = uv_loop_init(&loop)) != 0)
    die_code("uv_loop_init", err);
  EMPTY_TURNS((void)uv_run(&loop, UV_RUN_NOWAIT));
  if ((err = uv_loop_close(&loop)) != 0)
    die_code("uv_loop_close", err);

  free(timers);
  free(deadlines);
  free(delay);
  return 0;
}
