/* The fault-injection table: rule modes, the spec parser, EDDY_FAULTS. */
#include "sys_test.h"

SYS_TEST_SUITE(fault_rule, sys_test_reset);
SYS_TEST_SUITE(fault_parse, sys_test_reset);
/* No reset: these tests set EDDY_FAULTS before the first check. */
SYS_TEST_SUITE(fault_env, NULL);

/* Runs n checks of kind and writes each result into out. */
static void run_checks(int kind, int *out, int n) {
  for (int i = 0; i < n; i++)
    out[i] = eddy__fault_check(kind);
}

static void expect_sequence(int kind, const int *want, int n) {
  int got[32];
  cr_assert(n <= 32);
  run_checks(kind, got, n);
  for (int i = 0; i < n; i++)
    cr_assert(eq(int, got[i], want[i]), "check %d of kind %d", i + 1, kind);
}

/* ---- modes ---- */

Test(fault_rule, no_rule_never_fails_and_counts_calls) {
  int want[5] = {0, 0, 0, 0, 0};
  expect_sequence(EDDY__SYS_SOCKET, want, 5);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SOCKET), 5);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_BIND), 0);
}

Test(fault_rule, nth_fails_only_the_nth_call) {
  int want[6] = {0, 0, -EMFILE, 0, 0, 0};
  eddy__fault_fail_nth(EDDY__SYS_ACCEPT4, 3, EMFILE);
  expect_sequence(EDDY__SYS_ACCEPT4, want, 6);
}

Test(fault_rule, every_k_fails_each_kth_call) {
  int want[7] = {0, 0, -EAGAIN, 0, 0, -EAGAIN, 0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_EVERY, .n = 3, .err = EAGAIN};
  eddy__fault_set(EDDY__SYS_SENDMSG, &r);
  expect_sequence(EDDY__SYS_SENDMSG, want, 7);
}

Test(fault_rule, every_zero_never_fires) {
  int want[3] = {0, 0, 0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_EVERY, .n = 0, .err = EAGAIN};
  eddy__fault_set(EDDY__SYS_SENDMSG, &r);
  expect_sequence(EDDY__SYS_SENDMSG, want, 3);
}

Test(fault_rule, after_n_is_persistent_from_the_nth_call) {
  int want[6] = {0, 0, -ENOMEM, -ENOMEM, -ENOMEM, -ENOMEM};
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 3, ENOMEM);
  expect_sequence(EDDY__SYS_MALLOC, want, 6);
}

Test(fault_rule, short_rule_returns_the_short_marker) {
  int want[4] = {0, EDDY__FAULT_SHORT, 0, EDDY__FAULT_SHORT};
  eddy__fault_rule r = {.mode = EDDY__FAULT_EVERY, .n = 2, .is_short = 1};
  eddy__fault_set(EDDY__SYS_READ, &r);
  expect_sequence(EDDY__SYS_READ, want, 4);
}

Test(fault_rule, set_zeroes_the_call_counter) {
  int want[2] = {0, -EIO};
  run_checks(EDDY__SYS_READ, (int[3]){0}, 3);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_READ), 3);
  eddy__fault_fail_nth(EDDY__SYS_READ, 2, EIO);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_READ), 0);
  expect_sequence(EDDY__SYS_READ, want, 2);
}

Test(fault_rule, rules_are_per_kind) {
  eddy__fault_fail_after(EDDY__SYS_WRITE, 1, EIO);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_READ), 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_WRITE), -EIO);
}

Test(fault_rule, reset_clears_rules_and_counters) {
  eddy__fault_fail_after(EDDY__SYS_WRITE, 1, EIO);
  eddy__fault_fail_after(EDDY__SYS_CLOSE, 1, EIO);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_WRITE), -EIO);
  eddy__fault_reset();
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WRITE), 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_WRITE), 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_CLOSE), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WRITE), 1);
}

Test(fault_rule, off_mode_never_fires) {
  int want[3] = {0, 0, 0};
  eddy__fault_rule r = {.mode = EDDY__FAULT_OFF, .n = 1, .err = EIO};
  eddy__fault_set(EDDY__SYS_WRITE, &r);
  expect_sequence(EDDY__SYS_WRITE, want, 3);
}

/* Records which of n checks of kind fail, as a bitmap. */
static uint64_t failure_map(int kind, int n) {
  uint64_t map = 0;
  for (int i = 0; i < n; i++)
    if (eddy__fault_check(kind) != 0)
      map |= (uint64_t)1 << i;
  return map;
}

Test(fault_rule, probability_with_a_seed_is_deterministic) {
  EXPECT_OK(eddy__fault_parse("recv:ECONNRESET:p=0.5,seed=42"));
  uint64_t first = failure_map(EDDY__SYS_RECV, 64);
  EXPECT_OK(eddy__fault_parse("recv:ECONNRESET:p=0.5,seed=42"));
  uint64_t second = failure_map(EDDY__SYS_RECV, 64);
  EXPECT_EQ(first, second);
  /* Some fail and some do not: p=0.5 over 64 calls. */
  EXPECT_NE(first, 0);
  EXPECT_NE(first, UINT64_MAX);
  EXPECT_OK(eddy__fault_parse("recv:ECONNRESET:p=0.5,seed=43"));
  EXPECT_NE(failure_map(EDDY__SYS_RECV, 64), first);
}

Test(fault_rule, probability_zero_never_fires_and_one_always_fires) {
  eddy__fault_rule never = {.mode = EDDY__FAULT_PROB, .p = 0, .err = EIO};
  eddy__fault_rule always = {.mode = EDDY__FAULT_PROB, .p = 1, .err = EIO};
  eddy__fault_set(EDDY__SYS_READ, &never);
  eddy__fault_set(EDDY__SYS_WRITE, &always);
  EXPECT_EQ(failure_map(EDDY__SYS_READ, 64), 0);
  EXPECT_EQ(failure_map(EDDY__SYS_WRITE, 64), UINT64_MAX);
}

Test(fault_rule, probability_rate_is_close_to_p) {
  int fails = 0;
  EXPECT_OK(eddy__fault_parse("sendmsg:EAGAIN:p=0.25,seed=7"));
  for (int i = 0; i < 4000; i++)
    fails += eddy__fault_check(EDDY__SYS_SENDMSG) == -EAGAIN;
  EXPECT_GT(fails, 800);
  EXPECT_LT(fails, 1200);
}

static void *check_many(void *arg) {
  for (int i = 0; i < 1000; i++)
    eddy__fault_check(EDDY__SYS_EPOLL_CTL);
  return arg;
}

Test(fault_rule, counts_are_exact_across_threads) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    cr_assert(pthread_create(&t[i], NULL, check_many, NULL) == 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_EPOLL_CTL), 4000);
}

/* ---- kinds ---- */

Test(fault_parse, kind_names_map_to_kinds) {
  EXPECT_EQ(eddy__fault_kind("malloc"), EDDY__SYS_MALLOC);
  EXPECT_EQ(eddy__fault_kind("accept4"), EDDY__SYS_ACCEPT4);
  EXPECT_EQ(eddy__fault_kind("epoll_wait"), EDDY__SYS_EPOLL_WAIT);
  EXPECT_EQ(eddy__fault_kind("thread_create"), EDDY__SYS_THREAD_CREATE);
  EXPECT_EQ(eddy__fault_kind("accept"), -1);
  EXPECT_EQ(eddy__fault_kind("ACCEPT4"), -1);
  EXPECT_EQ(eddy__fault_kind(""), -1);
  expect_no_leaks();
}

/* ---- parser: valid specs ---- */

Test(fault_parse, installs_every_item_of_a_valid_spec) {
  int want[4] = {0, 0, -EMFILE, 0};
  int shorts = 0, errors = 0;
  EXPECT_OK(
      eddy__fault_parse("accept4:EMFILE:nth=3,sendmsg:short:p=0.1,seed=42"));
  expect_sequence(EDDY__SYS_ACCEPT4, want, 4);
  for (int i = 0; i < 1000; i++) {
    int f = eddy__fault_check(EDDY__SYS_SENDMSG);
    shorts += f == EDDY__FAULT_SHORT;
    errors += f < 0;
  }
  EXPECT_EQ(errors, 0);
  EXPECT_GT(shorts, 50);
  EXPECT_LT(shorts, 150);
  expect_no_leaks();
}

Test(fault_parse, every_and_after_items) {
  int every[4] = {0, -EAGAIN, 0, -EAGAIN};
  int after[4] = {0, 0, -ENOMEM, -ENOMEM};
  EXPECT_OK(eddy__fault_parse("recv:EAGAIN:every=2,calloc:ENOMEM:after=3"));
  expect_sequence(EDDY__SYS_RECV, every, 4);
  expect_sequence(EDDY__SYS_CALLOC, after, 4);
  expect_no_leaks();
}

Test(fault_parse, a_later_item_for_the_same_kind_wins) {
  int want[3] = {0, -EPIPE, 0};
  EXPECT_OK(eddy__fault_parse("write:EIO:nth=1,write:EPIPE:nth=2"));
  expect_sequence(EDDY__SYS_WRITE, want, 3);
  expect_no_leaks();
}

Test(fault_parse, parsing_zeroes_the_counter_of_installed_kinds_only) {
  run_checks(EDDY__SYS_READ, (int[2]){0}, 2);
  run_checks(EDDY__SYS_WRITE, (int[2]){0}, 2);
  EXPECT_OK(eddy__fault_parse("read:EIO:nth=1"));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_READ), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WRITE), 2);
  expect_no_leaks();
}

Test(fault_parse, errno_names_include_aliases_and_eintr) {
  EXPECT_OK(eddy__fault_parse("poll:EINTR:nth=1,kill:ENOTSUP:nth=1"));
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_POLL), -EINTR);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_KILL), -ENOTSUP);
  expect_no_leaks();
}

Test(fault_parse, seed_alone_is_valid_and_installs_no_rule) {
  EXPECT_OK(eddy__fault_parse("seed=99"));
  for (int k = 0; k < EDDY__SYS_KIND_COUNT; k++)
    EXPECT_EQ(eddy__fault_check(k), 0);
  expect_no_leaks();
}

/* ---- parser: malformed specs ---- */

static const char *const bad_specs[] = {
    "nosuchcall:EIO:nth=1",                 /* unknown kind */
    "Read:EIO:nth=1",                       /* kinds are lower case */
    ":EIO:nth=1",                           /* empty kind */
    "read:EWHATEVER:nth=1",                 /* unknown errno */
    "read:eio:nth=1",                       /* errno names are upper case */
    "read::nth=1",                          /* empty errno */
    "read:EIO",                             /* missing "when" */
    "read",                                 /* only a kind */
    "read:EIO:",                            /* empty "when" */
    "read:EIO:sometimes",                   /* unknown mode */
    "read:EIO:nth=0",                       /* N starts at 1 */
    "read:EIO:every=0",                     /* K starts at 1 */
    "read:EIO:after=0",                     /* N starts at 1 */
    "read:EIO:nth=abc",                     /* not a number */
    "read:EIO:nth=",                        /* missing number */
    "read:EIO:nth=3x",                      /* trailing garbage */
    "read:EIO:nth=-1",                      /* negative */
    "read:EIO:nth= 3",                      /* leading blank */
    "read:EIO:nth=99999999999999999999999", /* out of range */
    "read:EIO:nth=1:extra",                 /* extra part */
    "read:EIO:p=2",                         /* probability above 1 */
    "read:EIO:p=-0.5",                      /* negative probability */
    "read:EIO:p=",                          /* missing probability */
    "read:EIO:p=0.5x",                      /* trailing garbage */
    "read:short:p=inf",                     /* infinite */
    "seed=",                                /* missing seed */
    "seed=abc",                             /* not a number */
    "seed=0",                               /* would freeze the generator */
};

Test(fault_parse, rejects_each_malformed_spec_and_installs_nothing) {
  for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++) {
    char spec[128];
    eddy__fault_reset();
    /* A valid item first: a rejected spec must not install it either. */
    snprintf(spec, sizeof spec, "kill:EPERM:nth=1,%s", bad_specs[i]);
    cr_assert(eq(int, eddy__fault_parse(spec), -EINVAL), "spec \"%s\"", spec);
    cr_assert(eq(int, eddy__fault_check(EDDY__SYS_KILL), 0),
              "spec \"%s\" installed its valid item", spec);
    cr_assert(eq(int, eddy__fault_check(EDDY__SYS_READ), 0),
              "spec \"%s\" installed a read rule", spec);
    cr_assert(eq(int, eddy__fault_parse(bad_specs[i]), -EINVAL),
              "spec \"%s\" alone", bad_specs[i]);
  }
  expect_no_leaks();
}

Test(fault_parse, rejected_spec_keeps_the_rules_already_installed) {
  eddy__fault_fail_nth(EDDY__SYS_WRITE, 2, EIO);
  EXPECT_EQ(eddy__fault_parse("write:EPIPE:nth=1,bogus"), -EINVAL);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_WRITE), 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_WRITE), -EIO);
  expect_no_leaks();
}

/* An empty item ("a,,b", a stray comma) is a typo, not nothing. */
Test(fault_parse, rejects_empty_items) {
  static const char *const empty[] = {
      "kill:EPERM:nth=1,,read:EIO:nth=1", /* empty item in the middle */
      "kill:EPERM:nth=1,",                /* trailing comma */
      ",kill:EPERM:nth=1",                /* leading comma */
      ",",                                /* only a comma */
  };
  for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
    eddy__fault_reset();
    cr_assert(eq(int, eddy__fault_parse(empty[i]), -EINVAL), "spec \"%s\"",
              empty[i]);
    cr_assert(eq(int, eddy__fault_check(EDDY__SYS_KILL), 0), "spec \"%s\"",
              empty[i]);
  }
  expect_no_leaks();
}

/* strtod() accepts "nan", which fails every comparison: it must not slip
 * past the range check as a rule that never fires. */
Test(fault_parse, rejects_nan_probability) {
  EXPECT_EQ(eddy__fault_parse("read:EIO:p=nan"), -EINVAL);
  expect_no_leaks();
}

/* ---- EDDY_FAULTS ---- */

/* Criterion runs each test in a fresh process, so nothing has made a fault
 * check yet when these start: EDDY_FAULTS is read at the first one. */
Test(fault_env, rules_from_the_environment_are_active) {
  int p[2];
  cr_assert(setenv("EDDY_FAULTS", "pipe2:ENFILE:nth=2,write:short:nth=1", 1) ==
            0);
  EXPECT_OK(eddy__sys_pipe2(p, O_CLOEXEC));
  EXPECT_EQ(eddy__sys_pipe2((int[2]){-1, -1}, O_CLOEXEC), -ENFILE);
  EXPECT_EQ(eddy__sys_write(p[1], "abcd", 4), 2);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_PIPE2), 2);
  close_pair(p);
  expect_no_leaks();
}

Test(fault_env, reset_ignores_the_environment_from_then_on) {
  cr_assert(setenv("EDDY_FAULTS", "kill:EPERM:after=1", 1) == 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_KILL), -EPERM);
  eddy__fault_reset();
  EXPECT_EQ(eddy__sys_kill(getpid(), 0), 0);
  expect_no_leaks();
}

Test(fault_env, first_explicit_call_reads_the_environment_first) {
  /* A rule set by a test is not overwritten by EDDY_FAULTS later. */
  cr_assert(setenv("EDDY_FAULTS", "kill:EPERM:after=1,read:EIO:after=1", 1) ==
            0);
  eddy__fault_fail_nth(EDDY__SYS_KILL, 2, ESRCH);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_KILL), 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_KILL), -ESRCH);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_READ), -EIO);
  expect_no_leaks();
}

Test(fault_env, malformed_environment_is_ignored) {
  cr_assert(setenv("EDDY_FAULTS", "kill:EPERM:after=1,bogus", 1) == 0);
  EXPECT_EQ(eddy__fault_check(EDDY__SYS_KILL), 0);
  expect_no_leaks();
}

Test(fault_env, empty_environment_installs_nothing) {
  cr_assert(setenv("EDDY_FAULTS", "", 1) == 0);
  EXPECT_EQ(eddy__sys_kill(getpid(), 0), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_KILL), 1);
  expect_no_leaks();
}
