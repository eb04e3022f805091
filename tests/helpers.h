/* helpers.h: assertions that print both sides, and small test utilities. */
#ifndef EDDY_TESTS_HELPERS_H
#define EDDY_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdint.h>

#include "eddy.h"

#define EXPECT_EQ(a, b) cr_assert(eq(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_NE(a, b) cr_assert(ne(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_LT(a, b) cr_assert(lt(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_LE(a, b) cr_assert(le(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_GE(a, b) cr_assert(ge(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_GT(a, b) cr_assert(gt(i64, (int64_t)(a), (int64_t)(b)))
#define EXPECT_OK(expr) EXPECT_EQ((expr), 0)
#define EXPECT_STR(a, b) cr_assert(eq(str, (char *)(a), (char *)(b)))



#include "sys/fault.h"

/* A loop on the backend $EDDY_BACKEND selects (the suite runs once per
 * backend). */
static inline eddy_loop *test_loop(void) {
  eddy_loop *loop = NULL;
  EXPECT_OK(eddy_loop_new(NULL, &loop));
  return loop;
}

static inline eddy_loop *test_fake_loop(int64_t start) {
  eddy_loop *loop = NULL;
  eddy_loop_options o = {.fake_clock = 1, .fake_clock_start = start};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  return loop;
}

/* Every test ends here: close what is left, run to idle, free the loop, and
 * check that eddy's allocator has nothing live. */
static inline void test_finish(eddy_loop *loop) {
  eddy_loop_close_all(loop);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_loop_free(loop));
  EXPECT_EQ(eddy__alloc_live(), 0);
}
#endif
