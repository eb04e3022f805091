/* Regressions found in review: each test failed before its fix. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "helpers.h"
#include "core/loop.h"
#include "net/net.h"

static int fails_fast(const char *host, unsigned port,
                      struct sockaddr_storage *out, socklen_t *lens, int max) {
  (void)host;
  (void)port;
  (void)out;
  (void)lens;
  (void)max;
  return EDDY_ERESOLVE;
}
static int one_addr(const char *host, unsigned port,
                    struct sockaddr_storage *out, socklen_t *lens, int max) {
  (void)host;
  (void)max;
  lens[0] = (socklen_t)eddy__sockaddr_ip(AF_INET, "127.0.0.1", port, &out[0]);
  return 1;
}
static void cancel_soon(eddy_loop *l, void *arg) {
  (void)l;
  eddy_connect_cancel(arg);
}

/* 1 once the pool has posted a finished request for the loop to report. */
static int done_posted(void *arg) {
  eddy__pool *p = &((eddy_loop *)arg)->pool;
  int posted;
  pthread_mutex_lock(&p->lock);
  posted = p->done_head != NULL;
  pthread_mutex_unlock(&p->lock);
  return posted;
}

static void cancel_after_resolution(eddy__resolve_fn fn, int fault_connect) {
  eddy_loop *loop = test_loop();
  test_connect_result r = {0};
  eddy_connect *req;
  char err[100];
  eddy__resolve_hook = fn;
  EXPECT_OK(eddy_connect_to(loop, "tcp:host=name.example:port=9",
                            test_on_connect, &r, &req, err, sizeof err));
  /* The pool thread has finished; its done is posted. */
  cr_assert(test_wait_until(done_posted, loop, 10000),
            "the resolution was not posted within 10 s");
  /* cancel from a loop callback, before the loop drains the done list */
  EXPECT_OK(eddy_loop_call_soon(loop, cancel_soon, req));
  if (fault_connect)
    eddy__fault_fail_nth(EDDY__SYS_CONNECT, 1, ENETUNREACH);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy__fault_reset();
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -ECANCELED);
  if (r.s)
    eddy_stream_abort(r.s);
  test_finish(loop);
}

Test(connect_regress, cancel_after_a_failed_resolution_reports_ecanceled) {
  cancel_after_resolution(fails_fast, 0);
}
Test(connect_regress,
     cancel_after_resolution_with_a_connect_error_reports_ecanceled) {
  cancel_after_resolution(one_addr, 1);
}
