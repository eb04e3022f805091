/* idle.c: the memory of idle coroutines.
 *
 *   idle N [STACK_BYTES]
 *
 * Spawns N coroutines on one loop, lets each start and wait (in
 * eddy_coro_sleep, for an hour), and prints the growth of this process's
 * resident memory (VmRSS) per coroutine, in KiB:
 *   idle_spawned       how many could be spawned (fewer than N when the
 *                      kernel refuses more mappings: each stack is two,
 *                      and vm.max_map_count is 65530 by default)
 *   idle_kb_per_coro   RSS growth / spawned: the touched stack pages, the
 *                      coroutine's own structure and its timer's slot
 *   idle_mb_total      RSS growth for all of them, in MiB
 *   idle_virtual_mb    address space reserved for their stacks
 *   idle_stack_bytes   the stack size used */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../common.h"
#include "eddy.h"

static int waiter(eddy_coro *co, void *arg) {
  (void)arg;
  return eddy_coro_sleep(co, 3600 * EDDY_NSEC_PER_SEC);
}

int main(int argc, char **argv) {
  eddy_coro_options o = {0};
  eddy_loop *loop;
  long n, spawned = 0, before, after;
  bench_name = "coro idle";
  if (argc < 2)
    die("usage: idle N [STACK_BYTES]");
  n = strtol(argv[1], NULL, 10);
  if (argc > 2)
    o.stack_size = (size_t)strtoul(argv[2], NULL, 10);
  if (eddy_loop_new(NULL, &loop) != 0)
    die("loop");
  /* One first, so the lazily made parts (signal stack, pool) are not
   * counted per coroutine. */
  if (eddy_coro_spawn(loop, waiter, NULL, &o, NULL) != 0)
    die("spawn");
  eddy_loop_run(loop, EDDY_RUN_NOWAIT);
  before = proc_rss_kb((long)getpid());
  for (long i = 1; i < n; i++) {
    int err = eddy_coro_spawn(loop, waiter, NULL, &o, NULL);
    if (err == -ENOMEM)
      break;
    if (err != 0)
      die("spawn: %s", eddy_strerror(err));
    spawned++;
  }
  eddy_loop_run(loop, EDDY_RUN_NOWAIT); /* each starts and waits */
  after = proc_rss_kb((long)getpid());
  put_int("idle_requested", n);
  put_int("idle_spawned", spawned + 1);
  put("idle_kb_per_coro", (double)(after - before) / (double)spawned);
  put("idle_mb_total", (double)(after - before) / 1024.0);
  put("idle_virtual_mb",
      (double)(spawned + 1) *
          (double)((o.stack_size ? o.stack_size : EDDY_CORO_STACK_DEFAULT) +
                   4096) /
          1048576.0);
  put_int("idle_stack_bytes",
          (int64_t)(o.stack_size ? o.stack_size : EDDY_CORO_STACK_DEFAULT));
  eddy_loop_close_all(loop);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(loop);
  return 0;
}
