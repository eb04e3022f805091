/* common.h: what eddy_spawn.c and uv_spawn.c share, so that both programs
 * do the same work: the counts. The clocks and the output format ("name
 * value" per line, times in nanoseconds) come from ../common.h. */
#ifndef BENCH_SPAWN_COMMON_H
#define BENCH_SPAWN_COMMON_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../common.h"

#define NSPAWNS 1000
#define STREAM_BYTES (INT64_C(1) << 30)

#endif
