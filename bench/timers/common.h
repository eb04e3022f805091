/* common.h: what eddy_timers.c and uv_timers.c share, so that both
 * programs do exactly the same work: the timer count, the delays (same PRNG,
 * same seed) and the lateness bookkeeping; the clocks and the output
 * format come from ../common.h. */
#ifndef BENCH_TIMERS_COMMON_H
#define BENCH_TIMERS_COMMON_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../common.h"

#define NTIMERS 1000000u
#define NTURNS 1000000u
#define SPREAD_MS 1000u
#define SEED UINT64_C(0x5eedbeefcafef00d)

/* splitmix64: tiny, deterministic and the same on every platform, unlike
 * rand(). */
static inline uint64_t prng_next(uint64_t *state) {
  uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Whole-millisecond delays in [0, SPREAD_MS): libuv cannot express less, so
 * eddy gets the same milliseconds in nanoseconds. The modulo bias over 2^64
 * is negligible. */
static inline uint32_t *make_delays_ms(void) {
  uint32_t *d = malloc(NTIMERS * sizeof *d);
  uint64_t s = SEED;
  if (d == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (uint32_t i = 0; i < NTIMERS; i++)
    d[i] = (uint32_t)(prng_next(&s) % SPREAD_MS);
  return d;
}

/* Timers due this long after the run began are past the backlog of those
 * that came due while the million were being scheduled: their lateness is
 * the loop's steady-state precision. */
#define STEADY_AFTER_NS INT64_C(200000000)

/* Lateness bookkeeping, filled in by the timer callbacks. */
typedef struct lateness {
  int64_t run_start;  /* MONOTONIC ns when the loop run began */
  int64_t max, min;   /* min < 0 would mean a timer fired early */
  int64_t steady_max; /* max over timers due STEADY_AFTER_NS into the run */
  int64_t sum;
  uint32_t fired;
} lateness;

/* A timer due before the run started cannot fire before it: measure from
 * whichever is later. */
static inline void lateness_record(lateness *l, int64_t deadline_ns) {
  int64_t now = mono_ns();
  int64_t due = deadline_ns > l->run_start ? deadline_ns : l->run_start;
  int64_t late = now - due;
  if (late > l->max)
    l->max = late;
  if (late < l->min)
    l->min = late;
  if (deadline_ns - l->run_start >= STEADY_AFTER_NS && late > l->steady_max)
    l->steady_max = late;
  l->sum += late;
  l->fired++;
}

/* Runs the statement TURN NTURNS times, in batches, and prints the cost of
 * one turn in tenths of a nanosecond: the mean over all turns, and the best
 * batch, which is the cost without the preemptions and interrupts a shared
 * machine adds. A macro, not a function taking a callback, so that the
 * measured call is a direct one in both programs. */
#define TURN_BATCHES 100u
#define EMPTY_TURNS(TURN)                                                     \
  do {                                                                        \
    int64_t total_ = 0, best_ = INT64_MAX;                                    \
    for (uint32_t b_ = 0; b_ < TURN_BATCHES; b_++) {                          \
      int64_t s_ = mono_ns(), d_;                                             \
      for (uint32_t i_ = 0; i_ < NTURNS / TURN_BATCHES; i_++) {               \
        TURN;                                                                 \
      }                                                                       \
      d_ = mono_ns() - s_;                                                    \
      total_ += d_;                                                           \
      if (d_ < best_)                                                         \
        best_ = d_;                                                           \
    }                                                                         \
    put_int("empty_turn_ns_x10", total_ * 10 / NTURNS);                           \
    put_int("empty_turn_best_ns_x10", best_ * 10 * TURN_BATCHES / NTURNS);        \
  } while (0)

#endif
