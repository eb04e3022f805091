/* switch.c: what a coroutine switch costs.
 *
 *   eddy_switch_ns     one switch of eddy's own context switch
 *                      (src/async/switch.c), measured as a ping-pong
 *                      between the main context and one coroutine
 *                      context: 2 switches per round;
 *   ucontext_switch_ns the same with swapcontext(), the portable
 *                      alternative (it also saves and restores the signal
 *                      mask, a system call each time);
 *   eddy_yield_ns      one eddy_coro_yield() of a coroutine on a loop: two
 *                      switches and a trip through the loop's call-soon
 *                      queue (what a coroutine pays to let others run);
 *   eddy_spawn_ns      spawning a coroutine that returns at once and
 *                      collecting it (the stack comes from the pool).
 *
 * Each figure is the best of 5 rounds. Output: "name value" per line. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "../common.h"
#include "async/switch.h"
#include "eddy.h"

#define ROUNDS 5
#define SWITCHES 2000000
#define YIELDS 500000
#define SPAWNS 100000

static eddy__ctx main_ctx, co_ctx;
static volatile long pongs;

static void pong(void *arg) {
  (void)arg;
  for (;;) {
    pongs++;
    eddy__ctx_swap(&co_ctx, &main_ctx);
  }
}

static void *stack_of(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    die("mmap failed");
  return p;
}

static double eddy_switch_ns(void) {
  double best = 1e30;
  eddy__ctx_make(&co_ctx, stack_of(65536), 65536, pong, NULL);
  for (int r = 0; r < ROUNDS; r++) {
    int64_t t0 = mono_ns();
    for (int i = 0; i < SWITCHES / 2; i++)
      eddy__ctx_swap(&main_ctx, &co_ctx);
    double ns = (double)(mono_ns() - t0) / SWITCHES;
    if (ns < best)
      best = ns;
  }
  return best;
}

static ucontext_t uc_main, uc_co;

static void uc_pong(void) {
  for (;;) {
    pongs++;
    swapcontext(&uc_co, &uc_main);
  }
}

static double ucontext_switch_ns(void) {
  /* static: swapcontext returns twice, as far as the compiler knows */
  static double best = 1e30;
  getcontext(&uc_co);
  uc_co.uc_stack.ss_sp = stack_of(65536);
  uc_co.uc_stack.ss_size = 65536;
  uc_co.uc_link = NULL;
  makecontext(&uc_co, uc_pong, 0);
  for (int r = 0; r < ROUNDS; r++) {
    int64_t t0 = mono_ns();
    for (int i = 0; i < SWITCHES / 2; i++)
      swapcontext(&uc_main, &uc_co);
    double ns = (double)(mono_ns() - t0) / SWITCHES;
    if (ns < best)
      best = ns;
  }
  return best;
}

static int yielder(eddy_coro *co, void *arg) {
  (void)arg;
  for (int i = 0; i < YIELDS; i++)
    eddy_coro_yield(co);
  return 0;
}

static double eddy_yield_ns(void) {
  double best = 1e30;
  eddy_loop *loop;
  if (eddy_loop_new(NULL, &loop) != 0)
    die("loop");
  for (int r = 0; r < ROUNDS; r++) {
    if (eddy_coro_spawn(loop, yielder, NULL, NULL, NULL) != 0)
      die("spawn");
    int64_t t0 = mono_ns();
    eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
    double ns = (double)(mono_ns() - t0) / YIELDS;
    if (ns < best)
      best = ns;
  }
  eddy_loop_free(loop);
  return best;
}

static int nothing(eddy_coro *co, void *arg) {
  (void)co;
  (void)arg;
  return 0;
}

static double eddy_spawn_ns(void) {
  double best = 1e30;
  eddy_loop *loop;
  if (eddy_loop_new(NULL, &loop) != 0)
    die("loop");
  for (int r = 0; r < ROUNDS; r++) {
    int64_t t0 = mono_ns();
    /* In batches of 50, as a server's connections come and go: finished
     * stacks return to the pool and the next ones come from it. */
    for (int i = 0; i < SPAWNS; i += 50) {
      for (int j = 0; j < 50; j++)
        if (eddy_coro_spawn(loop, nothing, NULL, NULL, NULL) != 0)
          die("spawn");
      eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
    }
    double ns = (double)(mono_ns() - t0) / SPAWNS;
    if (ns < best)
      best = ns;
  }
  eddy_loop_free(loop);
  return best;
}

int main(void) {
  bench_name = "coro switch";
  printf("switch_kind_%s 1\n", eddy__ctx_kind());
  put("eddy_switch_ns", eddy_switch_ns());
  put("ucontext_switch_ns", ucontext_switch_ns());
  put("eddy_yield_ns", eddy_yield_ns());
  put("eddy_spawn_ns", eddy_spawn_ns());
  return 0;
}
