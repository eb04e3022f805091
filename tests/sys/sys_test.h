/* sys_test.h: small utilities shared by the sys-layer tests. */
#ifndef EDDY_TESTS_SYS_TEST_H
#define EDDY_TESTS_SYS_TEST_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#include "sys/alloc.h"
#include "sys/fault.h"
#include "sys/sys.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define SYS_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define SYS_TEST_LSAN 1
#endif
#endif

/* Every sys test starts from an empty fault table, even when the suite is
 * run with EDDY_FAULTS set in the environment. */
static inline void sys_test_reset(void) {
  eddy__fault_reset();
}

/* Fails the test if memory leaked: eddy's live count must be back at
 * zero and LeakSanitizer must find nothing unreachable. LeakSanitizer's
 * own report at process exit comes after Criterion has counted the test
 * as passed (and so does anything a .fini hook asserts), so tests that
 * allocate call this at their end. */
static inline void expect_no_leaks(void) {
  EXPECT_EQ(eddy__alloc_live(), 0);
#ifdef SYS_TEST_LSAN
  cr_assert(__lsan_do_recoverable_leak_check() == 0,
            "LeakSanitizer found leaks (report above)");
#endif
}

/* A suite of sys tests: init (NULL for none) runs before each test, and a
 * hang fails after 10 s instead of stalling the run. */
#define SYS_TEST_SUITE(name, init_fn)                                          \
  TestSuite(name, .init = init_fn, .timeout = 10)

/* The descriptor number the next open() would get. A failed wrapper that
 * leaked a descriptor would change it. */
static inline int lowest_free_fd(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cr_assert(fd >= 0);
  close(fd);
  return fd;
}

/* 1 if fd is an open descriptor. */
static inline int fd_is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* A non-blocking, close-on-exec AF_UNIX stream pair. */
static inline void unix_pair(int sv[2]) {
  cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       sv) == 0);
}

static inline void close_pair(int sv[2]) {
  close(sv[0]);
  close(sv[1]);
}

/* A pipe; non-blocking both ends. */
static inline void test_pipe(int p[2]) {
  cr_assert(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
}

/* Bytes waiting to be read on fd (a non-blocking pipe or socket): drains
 * up to cap of them into buf. */
static inline ssize_t drain(int fd, void *buf, size_t cap) {
  ssize_t n = read(fd, buf, cap);
  return n < 0 ? -errno : n;
}

/* A loopback listener on 127.0.0.1 with a kernel-chosen port. */
static inline int loopback_listener(struct sockaddr_in *addr) {
  socklen_t len = sizeof *addr;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert(bind(fd, (struct sockaddr *)addr, sizeof *addr) == 0);
  cr_assert(listen(fd, 8) == 0);
  cr_assert(getsockname(fd, (struct sockaddr *)addr, &len) == 0);
  return fd;
}

/* A blocking client connected to addr. On loopback connect() returns once
 * the connection sits in the listener's accept queue. */
static inline int loopback_client(const struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  cr_assert(connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0);
  return fd;
}

/* A temporary file holding text; its path is written to path (which must
 * hold 32 bytes) and the file is unlinked by the caller. */
static inline void temp_file(char path[32], const char *text) {
  int fd;
  strcpy(path, "/tmp/eddy-sys-XXXXXX");
  fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
}

#endif
