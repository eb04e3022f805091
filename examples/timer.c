/* examples/timer.c: a repeating timer that stops the loop after three
 * ticks, and a thread-pool job whose result arrives on the loop. */
#include <stdio.h>

#include <eddy.h>

static void tick(eddy_timer *t, void *arg) {
  int *ticks = arg;
  printf("tick %d at %.3f s\n", ++*ticks, eddy_loop_now(eddy_timer_loop(t)) / 1e9);
  if (*ticks == 3)
    eddy_timer_close(t);
}

static void slow_sum(void *arg) {
  long *sum = arg;
  for (long i = 1; i <= 100000000; i++)
    *sum += i;
}

static void sum_done(eddy_loop *loop, int status, void *arg) {
  (void)loop;
  printf("pool: sum %ld (status %s)\n", *(long *)arg,
         status ? eddy_errname(status) : "ok");
}

int main(void) {
  eddy_loop *loop;
  eddy_timer *t;
  int ticks = 0, err;
  long sum = 0;
  if ((err = eddy_loop_new(NULL, &loop)) != 0) {
    fprintf(stderr, "eddy_loop_new: %s\n", eddy_strerror(err));
    return 1;
  }
  eddy_timer_new(loop, tick, &ticks, &t);
  eddy_timer_start(t, 100 * EDDY_NSEC_PER_MSEC, 100 * EDDY_NSEC_PER_MSEC);
  eddy_work_submit(loop, slow_sum, sum_done, &sum, NULL);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  return eddy_loop_free(loop) == 0 ? 0 : 1;
}
