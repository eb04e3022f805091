/* helpers.h: assertions that print both sides, and small test utilities. */
#ifndef EDDY_TESTS_HELPERS_H
#define EDDY_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
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

#endif
