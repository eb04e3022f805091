/* common.h: what eddy_spawn.c and uv_spawn.c share, so that both programs
 * do the same work: the counts, the clocks, the output format ("name
 * value" per line, times in nanoseconds). */
#ifndef BENCH_SPAWN_COMMON_H
#define BENCH_SPAWN_COMMON_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NSPAWNS 1000
#define STREAM_BYTES (INT64_C(1) << 30)

static inline int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
/* The parent's CPU: what the library costs, without the children's. */
static inline int64_t cpu_ns(void) {
  return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static inline void put(const char *name, int64_t v) {
  printf("%s %" PRId64 "\n", name, v);
}

#endif
