/* The byte buffer: append, consume, compaction, growth, the cap, reading
 * into the free space, zero lengths, and allocation failures (each
 * allocation made to fail in turn: the buffer is unchanged, nothing
 * leaks). */
#include <string.h>

#include "helpers.h"

static void buf_reset_faults(void) {
  eddy__fault_reset();
}

TestSuite(buf, .init = buf_reset_faults, .fini = buf_reset_faults);

/* Every test ends with the buffer freed and the allocator's count at
 * zero (test_finish checks it). */
static void finish(eddy_buf *b) {
  eddy_buf_free(b);
  test_finish(test_fake_loop(0));
}

static void expect_bytes(const eddy_buf *b, const char *want) {
  EXPECT_EQ(eddy_buf_len(b), strlen(want));
  cr_assert(memcmp(eddy_buf_data(b), want, strlen(want)) == 0, "got '%.*s'",
            (int)eddy_buf_len(b), eddy_buf_data(b));
}

Test(buf, a_new_buffer_is_empty_and_allocates_nothing) {
  eddy_buf b;
  eddy_buf_init(&b, 100);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  EXPECT_EQ(eddy_buf_room(&b), 0);
  cr_assert(eddy_buf_data(&b) == NULL);
  EXPECT_EQ(eddy__alloc_live(), 0);
  EXPECT_EQ(b.cap, 100);
  finish(&b);
}

Test(buf, appended_bytes_are_read_back_in_order) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "hello", 5));
  EXPECT_OK(eddy_buf_append(&b, ", world", 7));
  expect_bytes(&b, "hello, world");
  EXPECT_LIVE(1);
  finish(&b);
}

Test(buf, consume_drops_from_the_front_without_moving_bytes) {
  eddy_buf b;
  char *before;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "abcdef", 6));
  before = eddy_buf_data(&b);
  eddy_buf_consume(&b, 2);
  expect_bytes(&b, "cdef");
  cr_assert(eddy_buf_data(&b) == before + 2);
  finish(&b);
}

Test(buf, consuming_everything_returns_the_window_to_the_front) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "abcdef", 6));
  eddy_buf_consume(&b, 6);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  cr_assert(b.pos == b.start && b.last == b.start);
  EXPECT_EQ(eddy_buf_room(&b), b.end - b.start);
  finish(&b);
}

Test(buf, consuming_more_than_is_unread_empties_the_buffer) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "abc", 3));
  eddy_buf_consume(&b, 99);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  EXPECT_OK(eddy_buf_append(&b, "x", 1));
  expect_bytes(&b, "x");
  finish(&b);
}

Test(buf, zero_length_operations_change_nothing) {
  eddy_buf b;
  eddy_buf_init(&b, 10);
  EXPECT_OK(eddy_buf_append(&b, NULL, 0));
  eddy_buf_consume(&b, 0);
  eddy_buf_commit(&b, 0);
  eddy_buf_reset(&b);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  EXPECT_EQ(eddy__alloc_live(), 0); /* still nothing allocated */
  EXPECT_OK(eddy_buf_append(&b, "ab", 2));
  EXPECT_OK(eddy_buf_append(&b, "zz", 0));
  eddy_buf_consume(&b, 0);
  expect_bytes(&b, "ab");
  finish(&b);
}

Test(buf, free_of_a_never_used_buffer_is_safe_and_it_can_be_used_again) {
  eddy_buf b;
  eddy_buf_init(&b, 8);
  eddy_buf_free(&b);
  eddy_buf_free(&b);
  EXPECT_OK(eddy_buf_append(&b, "12345678", 8));
  expect_bytes(&b, "12345678");
  eddy_buf_free(&b);
  EXPECT_EQ(b.cap, 8);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  finish(&b);
}

Test(buf, reset_drops_the_bytes_and_keeps_the_block) {
  eddy_buf b;
  char *block;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "abc", 3));
  block = b.start;
  eddy_buf_reset(&b);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  cr_assert(b.start == block);
  EXPECT_LIVE(1);
  finish(&b);
}

Test(buf, the_first_block_is_the_minimum_size) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "a", 1));
  EXPECT_EQ(b.end - b.start, EDDY_BUF_MIN_BLOCK);
  finish(&b);
}

Test(buf, the_block_doubles_as_bytes_accumulate) {
  eddy_buf b;
  char chunk[100];
  size_t total = 0;
  memset(chunk, 'x', sizeof chunk);
  eddy_buf_init(&b, 0);
  for (int i = 0; i < 30; i++) {
    size_t before = (size_t)(b.end - b.start);
    EXPECT_OK(eddy_buf_append(&b, chunk, sizeof chunk));
    total += sizeof chunk;
    size_t after = (size_t)(b.end - b.start);
    if (before && after != before)
      EXPECT_EQ(after, before * 2);
  }
  EXPECT_EQ(eddy_buf_len(&b), total);
  EXPECT_EQ(b.end - b.start, 4096);
  EXPECT_LIVE(1);
  finish(&b);
}

Test(buf, one_large_append_gets_a_block_that_fits_it) {
  eddy_buf b;
  static char big[10000];
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "a", 1));
  EXPECT_OK(eddy_buf_append(&b, big, sizeof big));
  EXPECT_EQ(eddy_buf_len(&b), sizeof big + 1);
  EXPECT_GE(b.end - b.start, (int64_t)sizeof big + 1);
  finish(&b);
}

Test(buf, an_append_that_fits_after_compaction_moves_instead_of_growing) {
  eddy_buf b;
  char fill[EDDY_BUF_MIN_BLOCK];
  char *block;
  memset(fill, 'a', sizeof fill);
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, fill, sizeof fill)); /* the block is full */
  block = b.start;
  eddy_buf_consume(&b, sizeof fill - 3); /* "aaa" left */
  EXPECT_OK(eddy_buf_append(&b, "bcd", 3));
  cr_assert(b.start == block, "the block was reallocated");
  EXPECT_EQ(b.end - b.start, EDDY_BUF_MIN_BLOCK);
  cr_assert(b.pos == b.start, "not compacted");
  expect_bytes(&b, "aaabcd");
  finish(&b);
}

Test(buf, growing_also_moves_the_unread_bytes_to_the_front) {
  eddy_buf b;
  char fill[EDDY_BUF_MIN_BLOCK];
  static char more[EDDY_BUF_MIN_BLOCK];
  memset(fill, 'a', sizeof fill);
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, fill, sizeof fill));
  eddy_buf_consume(&b, 10);
  EXPECT_OK(eddy_buf_append(&b, more, sizeof more));
  cr_assert(b.pos == b.start);
  EXPECT_EQ(eddy_buf_len(&b), 2 * EDDY_BUF_MIN_BLOCK - 10);
  EXPECT_EQ(b.end - b.start, 2 * EDDY_BUF_MIN_BLOCK);
  finish(&b);
}

Test(buf, an_append_past_the_cap_fails_with_enobufs_and_changes_nothing) {
  eddy_buf b;
  char *data;
  eddy_buf_init(&b, 10);
  EXPECT_OK(eddy_buf_append(&b, "0123456", 7));
  data = eddy_buf_data(&b);
  EXPECT_EQ(eddy_buf_append(&b, "abcd", 4), -ENOBUFS);
  cr_assert(eddy_buf_data(&b) == data);
  expect_bytes(&b, "0123456");
  EXPECT_OK(eddy_buf_append(&b, "abc", 3)); /* exactly the cap */
  expect_bytes(&b, "0123456abc");
  EXPECT_EQ(eddy_buf_append(&b, "x", 1), -ENOBUFS);
  EXPECT_EQ(b.end - b.start, 10);
  finish(&b);
}

Test(buf, the_cap_counts_unread_bytes_so_consuming_makes_room_again) {
  eddy_buf b;
  eddy_buf_init(&b, 4);
  EXPECT_OK(eddy_buf_append(&b, "abcd", 4));
  eddy_buf_consume(&b, 3);
  EXPECT_OK(eddy_buf_append(&b, "efg", 3));
  expect_bytes(&b, "defg");
  finish(&b);
}

Test(buf, the_block_never_grows_past_the_cap) {
  eddy_buf b;
  static char big[3000];
  eddy_buf_init(&b, 1000);
  EXPECT_OK(eddy_buf_append(&b, big, 600)); /* doubling would give 1024 */
  EXPECT_LE(b.end - b.start, 1000);
  EXPECT_OK(eddy_buf_append(&b, big, 400));
  EXPECT_EQ(b.end - b.start, 1000);
  EXPECT_EQ(eddy_buf_append(&b, big, sizeof big), -ENOBUFS);
  finish(&b);
}

Test(buf, an_append_whose_size_overflows_fails_with_enobufs) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "ab", 2));
  EXPECT_EQ(eddy_buf_append(&b, "x", SIZE_MAX), -ENOBUFS);
  expect_bytes(&b, "ab");
  finish(&b);
}

Test(buf, reserve_then_commit_reads_straight_into_the_free_space) {
  eddy_buf b;
  char *space = NULL;
  size_t room = 0;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "head:", 5));
  EXPECT_OK(eddy_buf_reserve(&b, 100, &space, &room));
  EXPECT_GE(room, 100);
  cr_assert(space == b.last);
  EXPECT_EQ(room, eddy_buf_room(&b));
  memcpy(space, "body", 4); /* what a read() would do */
  eddy_buf_commit(&b, 4);
  expect_bytes(&b, "head:body");
  finish(&b);
}

Test(buf, reserve_of_zero_still_gives_room_for_a_read) {
  eddy_buf b;
  char *space = NULL;
  size_t room = 0;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_reserve(&b, 0, &space, &room));
  cr_assert(space != NULL);
  EXPECT_GE(room, 1);
  eddy_buf_commit(&b, 0);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  finish(&b);
}

Test(buf, reserve_past_the_cap_fails_and_leaves_the_outputs_alone) {
  eddy_buf b;
  char *space = (char *)&b;
  size_t room = 7;
  eddy_buf_init(&b, 8);
  EXPECT_OK(eddy_buf_append(&b, "abcdef", 6));
  EXPECT_EQ(eddy_buf_reserve(&b, 3, &space, &room), -ENOBUFS);
  cr_assert(space == (char *)&b);
  EXPECT_EQ(room, 7);
  EXPECT_OK(eddy_buf_reserve(&b, 2, &space, &room));
  EXPECT_EQ(room, 2);
  memcpy(space, "gh", 2);
  eddy_buf_commit(&b, 2);
  expect_bytes(&b, "abcdefgh");
  EXPECT_EQ(eddy_buf_reserve(&b, 0, &space, &room), -ENOBUFS); /* full */
  finish(&b);
}

Test(buf, reserve_compacts_before_it_grows) {
  eddy_buf b;
  char fill[EDDY_BUF_MIN_BLOCK];
  char *space, *block;
  size_t room;
  memset(fill, 'z', sizeof fill);
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, fill, sizeof fill));
  block = b.start;
  eddy_buf_consume(&b, 200);
  EXPECT_OK(eddy_buf_reserve(&b, 200, &space, &room));
  cr_assert(b.start == block);
  EXPECT_EQ(room, 200);
  finish(&b);
}

Test(buf, committing_the_whole_free_space_fills_the_block) {
  eddy_buf b;
  char *space;
  size_t room;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_reserve(&b, 4, &space, &room));
  eddy_buf_commit(&b, room);
  EXPECT_EQ(eddy_buf_len(&b), room);
  EXPECT_EQ(eddy_buf_room(&b), 0);
  finish(&b);
}

/* ---- Allocation failures, SQLite's way ---- */

/* A buffer with some history (consumed bytes, a grown block), then an
 * operation that must allocate: fail the Nth allocation for N = 1, 2, ...
 * until it succeeds. Each failure returns -ENOMEM and leaves the buffer as
 * it was; the success has every byte. */
static int grow_once(eddy_buf *b, int use_reserve) {
  static char big[5000];
  char *space;
  size_t room;
  int err;
  if (!use_reserve)
    return eddy_buf_append(b, big, sizeof big);
  if ((err = eddy_buf_reserve(b, sizeof big, &space, &room)) == 0) {
    memset(space, 0, sizeof big);
    eddy_buf_commit(b, sizeof big);
  }
  return err;
}

static void sweep(int use_reserve, int fresh) {
  for (uint64_t n = 1;; n++) {
    eddy_buf b;
    char *start, *pos;
    size_t len;
    int err;
    eddy_buf_init(&b, 0);
    if (!fresh) {
      EXPECT_OK(eddy_buf_append(&b, "0123456789", 10));
      eddy_buf_consume(&b, 4);
    }
    start = b.start;
    pos = b.pos;
    len = eddy_buf_len(&b);
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, n, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_REALLOC, n, ENOMEM);
    err = grow_once(&b, use_reserve);
    eddy__fault_reset();
    if (err == 0) {
      EXPECT_EQ(eddy_buf_len(&b), len + 5000);
      if (!fresh)
        cr_assert(memcmp(eddy_buf_data(&b), "456789", 6) == 0);
      eddy_buf_free(&b);
      EXPECT_EQ(eddy__alloc_live(), 0);
      EXPECT_GE(n, 2); /* the first allocation did fail */
      break;
    }
    EXPECT_EQ(err, -ENOMEM);
    cr_assert(b.start == start && b.pos == pos);
    EXPECT_EQ(eddy_buf_len(&b), len);
    if (!fresh)
      cr_assert(memcmp(eddy_buf_data(&b), "456789", 6) == 0);
    eddy_buf_free(&b);
    EXPECT_EQ(eddy__alloc_live(), 0);
    cr_assert(n < 10, "still failing after %d allocations", (int)n);
  }
}

Test(buf, append_to_a_fresh_buffer_survives_each_failed_allocation) {
  sweep(0, 1);
  test_finish(test_fake_loop(0));
}

Test(buf, append_that_grows_survives_each_failed_allocation) {
  sweep(0, 0);
  test_finish(test_fake_loop(0));
}

Test(buf, reserve_that_grows_survives_each_failed_allocation) {
  sweep(1, 0);
  sweep(1, 1);
  test_finish(test_fake_loop(0));
}

Test(buf, a_persistent_allocation_failure_keeps_returning_enomem) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_buf_append(&b, "abc", 3));
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  for (int i = 0; i < 3; i++)
    EXPECT_EQ(grow_once(&b, i & 1), -ENOMEM);
  eddy__fault_reset();
  expect_bytes(&b, "abc");
  finish(&b);
}
