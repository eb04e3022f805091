/* eddy's allocator: the wrappers, eddy__grow, injected failures, the live
 * count and replacing the allocator. */
#include "sys_test.h"

static void alloc_test_reset(void) {
  eddy__fault_reset();
  cr_assert(eddy_allocator_set(NULL) == 0);
}

SYS_TEST_SUITE(alloc, alloc_test_reset);
SYS_TEST_SUITE(alloc_grow, alloc_test_reset);
SYS_TEST_SUITE(allocator_set, alloc_test_reset);

/* ---- wrappers ---- */

Test(alloc, malloc_calloc_realloc_free_round_trip_to_the_baseline) {
#ifndef EDDY_FAULTS
  cr_skip_test("the live count needs fault injection (-Dfaults=true)");
#endif
  long base = eddy__alloc_live();
  char *m = eddy__malloc(16);
  int *c = eddy__calloc(8, sizeof *c);
  char *r = eddy__realloc(NULL, 4);
  cr_assert(m && c && r);
  EXPECT_EQ(eddy__alloc_live(), base + 3);
  for (int i = 0; i < 8; i++)
    EXPECT_EQ(c[i], 0);
  memcpy(m, "0123456789abcdef", 16);
  m = eddy__realloc(m, 4096);
  cr_assert(m != NULL);
  EXPECT_EQ(memcmp(m, "0123456789abcdef", 16), 0);
  /* Growing a block is not a new allocation. */
  EXPECT_EQ(eddy__alloc_live(), base + 3);
  eddy__free(m);
  eddy__free(c);
  eddy__free(r);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

Test(alloc, zero_sizes_return_a_freeable_block) {
#ifndef EDDY_FAULTS
  cr_skip_test("the live count needs fault injection (-Dfaults=true)");
#endif
  long base = eddy__alloc_live();
  void *a = eddy__malloc(0);
  void *b = eddy__calloc(0, 0);
  void *c = eddy__calloc(0, 4);
  cr_assert(a && b && c);
  EXPECT_EQ(eddy__alloc_live(), base + 3);
  eddy__free(a);
  eddy__free(b);
  eddy__free(c);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

Test(alloc, free_of_null_does_nothing) {
  long base = eddy__alloc_live();
  eddy__free(NULL);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

Test(alloc, injected_malloc_failure_returns_null) {
  long base = eddy__alloc_live();
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  cr_assert(eddy__malloc(8) == NULL);
  EXPECT_EQ(eddy__alloc_live(), base);
  void *p = eddy__malloc(8);
  cr_assert(p != NULL);
  eddy__free(p);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_MALLOC), 2);
  expect_no_leaks();
}

Test(alloc, injected_calloc_failure_returns_null) {
  long base = eddy__alloc_live();
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  cr_assert(eddy__calloc(2, 8) == NULL);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

Test(alloc, injected_realloc_failure_leaves_the_block_untouched) {
  long base = eddy__alloc_live();
  char *p = eddy__malloc(6);
  memcpy(p, "keep!", 6);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  cr_assert(eddy__realloc(p, 1 << 20) == NULL);
  EXPECT_STR(p, "keep!");
  EXPECT_EQ(eddy__alloc_live(), base + 1);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  cr_assert(eddy__realloc(NULL, 8) == NULL);
  EXPECT_EQ(eddy__alloc_live(), base + 1);
  eddy__free(p);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

Test(alloc, short_rule_does_not_fail_an_allocation) {
  eddy__fault_rule r = {.mode = EDDY__FAULT_AFTER, .n = 1, .is_short = 1};
  eddy__fault_set(EDDY__SYS_MALLOC, &r);
  void *p = eddy__malloc(8);
  cr_assert(p != NULL);
  eddy__free(p);
  expect_no_leaks();
}

/* SQLite's way: fail allocation N for N = 1, 2, ... until the operation
 * succeeds; every failure must leave nothing live. */
static int build_three(void **out) {
  void *a = eddy__malloc(8), *b = NULL, *c = NULL;
  if (!a)
    return -ENOMEM;
  b = eddy__calloc(1, 8);
  if (!b)
    goto fail;
  c = eddy__realloc(NULL, 8);
  if (!c)
    goto fail;
  out[0] = a, out[1] = b, out[2] = c;
  return 0;
fail:
  eddy__free(a);
  eddy__free(b);
  return -ENOMEM;
}

Test(alloc, every_failing_step_leaves_nothing_live) {
  long base = eddy__alloc_live();
  void *out[3] = {NULL, NULL, NULL};
  int steps = 0;
  for (int n = 1; n < 10; n++) {
    eddy__fault_reset();
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, (uint64_t)n, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, (uint64_t)n - 1, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_REALLOC, (uint64_t)n - 2, ENOMEM);
    int r = build_three(out);
    EXPECT_EQ(eddy__alloc_live(), r == 0 ? base + 3 : base);
    if (r == 0)
      break;
    EXPECT_EQ(r, -ENOMEM);
    steps++;
  }
  EXPECT_EQ(steps, 3);
  for (int i = 0; i < 3; i++)
    eddy__free(out[i]);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

/* ---- eddy__grow ---- */

Test(alloc_grow, empty_array_starts_at_eight_then_doubles) {
  int *a = NULL;
  size_t cap = 0;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 1, sizeof *a));
  cr_assert(a != NULL);
  EXPECT_EQ(cap, 8);
  for (int i = 0; i < 8; i++)
    a[i] = i;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 9, sizeof *a));
  EXPECT_EQ(cap, 16);
  for (int i = 0; i < 8; i++)
    EXPECT_EQ(a[i], i);
  a[15] = 15;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 100, sizeof *a));
  EXPECT_EQ(cap, 128);
  a[127] = 127;
  eddy__free(a);
  EXPECT_EQ(eddy__alloc_live(), 0);
  expect_no_leaks();
}

Test(alloc_grow, enough_capacity_does_not_reallocate) {
  char *a = NULL;
  size_t cap = 0;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 3, 1));
  char *before = a;
  uint64_t reallocs = eddy__fault_calls(EDDY__SYS_REALLOC);
  EXPECT_OK(eddy__grow((void **)&a, &cap, 8, 1));
  EXPECT_OK(eddy__grow((void **)&a, &cap, 0, 1));
  cr_assert(a == before);
  EXPECT_EQ(cap, 8);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_REALLOC), reallocs);
  eddy__free(a);
  expect_no_leaks();
}

Test(alloc_grow, grows_from_a_non_power_of_two_capacity) {
  char *a = eddy__malloc(3);
  size_t cap = 3;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 4, 1));
  EXPECT_EQ(cap, 6);
  EXPECT_OK(eddy__grow((void **)&a, &cap, 13, 1));
  EXPECT_EQ(cap, 24);
  a[23] = 1;
  eddy__free(a);
  expect_no_leaks();
}

Test(alloc_grow, byte_size_overflow_returns_enomem_and_leaves_array) {
  char *a = NULL;
  size_t cap = 0;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 8, 16));
  char *before = a;
  /* Doubling to 16 elements of SIZE_MAX / 8 bytes overflows size_t. */
  EXPECT_EQ(eddy__grow((void **)&a, &cap, 9, SIZE_MAX / 8), -ENOMEM);
  cr_assert(a == before);
  EXPECT_EQ(cap, 8);
  eddy__free(a);
  EXPECT_EQ(eddy__alloc_live(), 0);
  expect_no_leaks();
}

Test(alloc_grow, injected_failure_returns_enomem_and_leaves_array) {
  int *a = NULL;
  size_t cap = 0;
  EXPECT_OK(eddy__grow((void **)&a, &cap, 8, sizeof *a));
  for (int i = 0; i < 8; i++)
    a[i] = i * 3;
  int *before = a;
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy__grow((void **)&a, &cap, 9, sizeof *a), -ENOMEM);
  cr_assert(a == before);
  EXPECT_EQ(cap, 8);
  for (int i = 0; i < 8; i++)
    EXPECT_EQ(a[i], i * 3);
  eddy__free(a);
  EXPECT_EQ(eddy__alloc_live(), 0);
  expect_no_leaks();
}

/* For need > SIZE_MAX / 2 doubling would wrap the capacity to 0 and never
 * end; the timeout turns such a hang into a failure. */
Test(alloc_grow, huge_element_count_returns_enomem, .timeout = 2) {
  char *a = NULL;
  size_t cap = 0;
  EXPECT_EQ(eddy__grow((void **)&a, &cap, SIZE_MAX, 1), -ENOMEM);
  EXPECT_EQ(eddy__grow((void **)&a, &cap, SIZE_MAX / 2 + 2, 1), -ENOMEM);
  cr_assert(a == NULL);
  EXPECT_EQ(cap, 0);
}

/* ---- eddy_allocator_set ---- */

static void *null_malloc(size_t s) {
  (void)s;
  return NULL;
}
static void *null_calloc(size_t n, size_t s) {
  (void)n, (void)s;
  return NULL;
}
static void *null_realloc(void *p, size_t s) {
  (void)p, (void)s;
  return NULL;
}

/* An allocator that is out of memory: NULL reaches the caller and nothing
 * is counted live. */
Test(allocator_set, allocator_failure_returns_null_and_counts_nothing) {
  static const eddy_allocator empty = {null_malloc, null_calloc, null_realloc,
                                       free};
  long base = eddy__alloc_live();
  char *a = NULL;
  size_t cap = 0;
  EXPECT_OK(eddy_allocator_set(&empty));
  cr_assert(eddy__malloc(8) == NULL);
  cr_assert(eddy__calloc(1, 8) == NULL);
  cr_assert(eddy__realloc(NULL, 8) == NULL);
  EXPECT_EQ(eddy__grow((void **)&a, &cap, 1, 1), -ENOMEM);
  cr_assert(a == NULL);
  EXPECT_EQ(cap, 0);
  EXPECT_EQ(eddy__alloc_live(), base);
  expect_no_leaks();
}

static int n_malloc, n_calloc, n_realloc, n_free;

static void *count_malloc(size_t s) {
  n_malloc++;
  return malloc(s);
}
static void *count_calloc(size_t n, size_t s) {
  n_calloc++;
  return calloc(n, s);
}
static void *count_realloc(void *p, size_t s) {
  n_realloc++;
  return realloc(p, s);
}
static void count_free(void *p) {
  n_free++;
  free(p);
}

static const eddy_allocator counting = {count_malloc, count_calloc,
                                        count_realloc, count_free};

Test(allocator_set, custom_allocator_receives_every_call) {
  EXPECT_OK(eddy_allocator_set(&counting));
  void *a = eddy__malloc(10);
  void *b = eddy__calloc(2, 5);
  a = eddy__realloc(a, 100);
  eddy__free(a);
  eddy__free(b);
  EXPECT_EQ(n_malloc, 1);
  EXPECT_EQ(n_calloc, 1);
  EXPECT_EQ(n_realloc, 1);
  EXPECT_EQ(n_free, 2);
  expect_no_leaks();
}

Test(allocator_set, injected_failure_does_not_reach_the_allocator) {
  EXPECT_OK(eddy_allocator_set(&counting));
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  cr_assert(eddy__malloc(10) == NULL);
  EXPECT_EQ(n_malloc, 0);
  expect_no_leaks();
}

Test(allocator_set, null_restores_the_c_library) {
  EXPECT_OK(eddy_allocator_set(&counting));
  EXPECT_OK(eddy_allocator_set(NULL));
  void *a = eddy__malloc(10);
  void *b = eddy__calloc(1, 1);
  a = eddy__realloc(a, 20);
  eddy__free(a);
  eddy__free(b);
  EXPECT_EQ(n_malloc + n_calloc + n_realloc + n_free, 0);
  expect_no_leaks();
}

Test(allocator_set, missing_function_is_rejected_and_keeps_the_current_one) {
  eddy_allocator partial[4];
  for (int i = 0; i < 4; i++)
    partial[i] = counting;
  partial[0].malloc = NULL;
  partial[1].calloc = NULL;
  partial[2].realloc = NULL;
  partial[3].free = NULL;
  EXPECT_OK(eddy_allocator_set(&counting));
  for (int i = 0; i < 4; i++)
    EXPECT_EQ(eddy_allocator_set(&partial[i]), -EINVAL);
  /* Still the counting allocator, all four functions. */
  void *a = eddy__malloc(1);
  eddy__free(a);
  EXPECT_EQ(n_malloc, 1);
  EXPECT_EQ(n_free, 1);
  expect_no_leaks();
}
