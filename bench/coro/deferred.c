/* deferred.c: what a Deferred's chain costs, per callback.
 *
 *   1. a Deferred made, fired with a value and freed, with no pairs: the
 *      fixed cost (deferred_base_ns);
 *   2. the same with K pass-through callbacks, K = 4 (stored inline in the
 *      Deferred) and K = 16 (past the inline four: one allocation more);
 *      the cost per callback is (time(K) - time(0)) / K
 *      (deferred_per_cb_inline_ns, deferred_per_cb_16_ns);
 *   3. the same with callbacks added after firing (each runs at once,
 *      inside the add call): deferred_per_cb_after_fire_ns;
 *   4. one level of nesting (a callback that chains a fired Deferred):
 *      deferred_nested_ns per level.
 *
 * Prints one "name value" line per metric (bench/common.h), the best of
 * REPEAT rounds, times in nanoseconds. Built and run by itself:
 *
 *   meson setup build-bench --buildtype=release -Dtests=false
 *   ninja -C build-bench libeddy.a
 *   cc -std=c11 -O2 -Iinclude bench/coro/deferred.c build-bench/libeddy.a \
 *      -lpthread -o build-bench/deferred
 *   build-bench/deferred
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>

#include "eddy.h"

#include "../common.h"

#define ROUNDS 200000
#define REPEAT 5

static eddy_loop *loop;
static volatile long sink;

static void die_code(const char *what, int err) {
  fprintf(stderr, "deferred: %s: %s\n", what, eddy_strerror(err));
  exit(1);
}

static void pass(eddy_deferred *d, void *arg) {
  (void)arg;
  sink += (long)(intptr_t)eddy_deferred_value(d);
}

static void chain_fired(eddy_deferred *d, void *arg) {
  int err = eddy_deferred_chain(d, arg);
  if (err)
    die_code("chain", err);
}

/* Nanoseconds per round: make, add k pairs (before or after firing),
 * fire, free. */
static double rounds(int k, int after) {
  int64_t t0 = mono_ns();
  for (int i = 0; i < ROUNDS; i++) {
    eddy_deferred *d;
    int err = eddy_deferred_new(loop, NULL, NULL, &d);
    if (err)
      die_code("new", err);
    if (after)
      eddy_deferred_callback(d, (void *)(intptr_t)1, NULL);
    for (int j = 0; j < k; j++)
      if ((err = eddy_deferred_add_callback(d, pass, NULL)) != 0)
        die_code("add", err);
    if (!after)
      eddy_deferred_callback(d, (void *)(intptr_t)1, NULL);
    eddy_deferred_free(d);
  }
  return (double)(mono_ns() - t0) / ROUNDS;
}

/* Nanoseconds per round of an outer Deferred whose callback chains an
 * inner one that has fired. */
static double nested(void) {
  int64_t t0 = mono_ns();
  for (int i = 0; i < ROUNDS; i++) {
    eddy_deferred *outer, *inner;
    int err = eddy_deferred_new(loop, NULL, NULL, &outer);
    if (err == 0)
      err = eddy_deferred_new(loop, NULL, NULL, &inner);
    if (err)
      die_code("new", err);
    eddy_deferred_callback(inner, (void *)(intptr_t)2, NULL);
    eddy_deferred_add_callback(outer, chain_fired, inner);
    eddy_deferred_add_callback(outer, pass, NULL);
    eddy_deferred_callback(outer, (void *)(intptr_t)1, NULL);
    eddy_deferred_free(outer);
  }
  return (double)(mono_ns() - t0) / ROUNDS;
}

static double best(double a, double b) {
  return a < b ? a : b;
}

int main(void) {
  double base = 1e18, k4 = 1e18, k16 = 1e18, after = 1e18, nest = 1e18;
  double plain2 = 1e18;
  int err = eddy_loop_new(NULL, &loop);
  if (err)
    die_code("loop", err);
  bench_name = "deferred";
  for (int r = 0; r < REPEAT; r++) {
    base = best(base, rounds(0, 0));
    k4 = best(k4, rounds(4, 0));
    k16 = best(k16, rounds(16, 0));
    after = best(after, rounds(4, 1));
    plain2 = best(plain2, rounds(1, 0));
    nest = best(nest, nested());
  }
  put("deferred_base_ns", base);
  put("deferred_per_cb_inline_ns", (k4 - base) / 4);
  put("deferred_per_cb_16_ns", (k16 - base) / 16);
  put("deferred_per_cb_after_fire_ns", (after - base) / 4);
  /* Two Deferreds and a pair against one Deferred and a pair. */
  put("deferred_nested_ns", nest - plain2);
  if (sink == 42)
    printf("\n");
  eddy_loop_free(loop);
  return 0;
}
