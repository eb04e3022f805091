#include "helpers.h"

Test(loop, new_run_free_with_nothing_to_do) {
  eddy_loop *loop;
  EXPECT_OK(eddy_loop_new(&loop, NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_loop_free(loop));
}
