/* nofaults.c: stand-ins for the fault-injection table in builds without
 * it (meson -Dfaults=false, the default).
 *
 * Most test files mix plain tests with tests that inject faults. Rather
 * than split every file, the programs of such a build link these: a test
 * that asks for a fault, or counts the calls of a kind, is skipped
 * (Criterion reports it as skipped, neither passed nor failed), and the
 * plain tests run as usual. Resetting the table is a no-op (there is
 * none), and the live-allocation count reads 0: the counting allocator is
 * compiled out, so the leak check at the end of each test is left to the
 * sanitizers. Files that test nothing but injection (tests/<layer>/fault*.c)
 * are not built at all. */
#include <criterion/criterion.h>

#include "sys/fault.h"

#ifdef EDDY_FAULTS
#error "tests/nofaults.c is for builds without fault injection"
#endif

static void needs_faults(void) {
  cr_skip_test("needs fault injection (meson -Dfaults=true)");
}

void eddy__fault_set(int kind, const eddy__fault_rule *rule) {
  (void)kind;
  (void)rule;
  needs_faults();
}

void eddy__fault_fail_nth(int kind, uint64_t n, int err) {
  (void)kind;
  (void)n;
  (void)err;
  needs_faults();
}

void eddy__fault_fail_after(int kind, uint64_t n, int err) {
  (void)kind;
  (void)n;
  (void)err;
  needs_faults();
}

void eddy__fault_reset(void) {
}

uint64_t eddy__fault_calls(int kind) {
  (void)kind;
  needs_faults();
  return 0;
}

int eddy__fault_parse(const char *spec) {
  (void)spec;
  needs_faults();
  return -1;
}

int eddy__fault_kind(const char *name) {
  (void)name;
  needs_faults();
  return -1;
}

long eddy__alloc_live(void) {
  return 0;
}
