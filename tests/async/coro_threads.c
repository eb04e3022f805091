/* coro_threads.c: coroutines on several threads at once, each on its own
 * loop: the running coroutine, the main context and the signal stack are
 * per thread. */
#include <pthread.h>

#include "coro_test.h"

typedef struct thread_run {
  int finished; /* coroutines that ran to their end */
  int failed;
} thread_run;

static int ping(eddy_coro *co, void *arg) {
  thread_run *t = arg;
  for (int i = 0; i < 100; i++) {
    if (eddy_coro_current() != co || eddy_coro_yield(co) != 0) {
      t->failed++;
      return -1;
    }
  }
  t->finished++;
  return 0;
}

static void *run_thread(void *arg) {
  thread_run *t = arg;
  eddy_loop *loop;
  if (eddy_loop_new(NULL, &loop) != 0) {
    t->failed++;
    return NULL;
  }
  for (int i = 0; i < 100; i++)
    if (eddy_coro_spawn(loop, ping, t, NULL, NULL) != 0)
      t->failed++;
  if (eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE) != 0 ||
      eddy_loop_free(loop) != 0)
    t->failed++;
  return NULL;
}

Test(coro_threads, loops_on_four_threads_run_their_coroutines_at_once) {
  pthread_t th[4];
  thread_run runs[4] = {{0}};
  for (int i = 0; i < 4; i++)
    cr_assert(pthread_create(&th[i], NULL, run_thread, &runs[i]) == 0);
  for (int i = 0; i < 4; i++) {
    cr_assert(pthread_join(th[i], NULL) == 0);
    EXPECT_EQ(runs[i].failed, 0);
    EXPECT_EQ(runs[i].finished, 100);
  }
  EXPECT_LIVE(0);
}
