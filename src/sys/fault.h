/* fault.h: the fault-injection table (test builds only).
 *
 * Every system call and every allocation eddy makes has a kind. In a build
 * configured with -Dfaults=true, a rule per kind decides whether a call
 * fails (with a chosen errno) or is shortened (a read or write of fewer
 * bytes than asked). Rules come from the EDDY_FAULTS environment variable,
 * read once at the first check, or from the functions below:
 *
 *   EDDY_FAULTS="accept4:EMFILE:nth=3,send:short:p=0.1,seed=42"
 *
 *   nth=N    the Nth call of the kind fails, once
 *   every=K  every Kth call fails
 *   after=N  the Nth call and every later one fail (a persistent fault)
 *   p=P      each call fails with probability P (PRNG seeded by seed=S)
 *
 * An EINTR rule that keeps firing (every=1, after=N) on a call that the
 * sys layer retries makes that call retry forever: inject EINTR with nth=
 * or every=K > 1.
 *
 * Release builds compile the table out: eddy__fault_check() is a constant 0.
 */
#ifndef EDDY_SYS_FAULT_H
#define EDDY_SYS_FAULT_H

#include <stdint.h>

/* The list is laid out by hand, rows of related calls. */
/* clang-format off */
#define EDDY__FAULT_KINDS(X)                                                 \
  X(MALLOC, "malloc") X(CALLOC, "calloc") X(REALLOC, "realloc")              \
  X(SOCKET, "socket") X(BIND, "bind") X(LISTEN, "listen")                    \
  X(ACCEPT4, "accept4") X(CONNECT, "connect")                                \
  X(GETSOCKOPT, "getsockopt") X(SETSOCKOPT, "setsockopt")                    \
  X(RECV, "recv") X(RECVMSG, "recvmsg") X(READ, "read")                     \
  X(SENDMSG, "sendmsg") X(WRITE, "write")                                    \
  X(WRITEV, "writev") X(SENDFILE, "sendfile") X(CLOSE, "close")              \
  X(PIPE2, "pipe2") X(EVENTFD, "eventfd")                                    \
  X(EPOLL_CREATE1, "epoll_create1") X(EPOLL_CTL, "epoll_ctl")                \
  X(EPOLL_WAIT, "epoll_wait") X(POLL, "poll")                                \
  X(CLOCK_GETTIME, "clock_gettime") X(FORK, "fork") X(WAITPID, "waitpid")    \
  X(KILL, "kill") X(SIGACTION, "sigaction")                                  \
  X(OPEN, "open") X(FSTAT, "fstat")                                          \
  X(THREAD_CREATE, "thread_create") X(FCNTL, "fcntl")                      \
  X(SHUTDOWN, "shutdown") X(GETSOCKNAME, "getsockname")                     \
  X(GETPEERNAME, "getpeername") X(UNLINK, "unlink") X(CHMOD, "chmod")       \
  X(LSTAT, "lstat") X(PREAD, "pread") X(PIDFD_OPEN, "pidfd_open")        \
  X(SOCKETPAIR, "socketpair") X(RECVMMSG, "recvmmsg") X(SENDMMSG, "sendmmsg")
/* clang-format on */

enum eddy__fault_kind {
#define EDDY__FAULT_ENUM(id, name) EDDY__SYS_##id,
  EDDY__FAULT_KINDS(EDDY__FAULT_ENUM)
#undef EDDY__FAULT_ENUM
      EDDY__SYS_KIND_COUNT
};

/* Returned by eddy__fault_check for a "short" rule. */
#define EDDY__FAULT_SHORT 1

enum eddy__fault_mode {
  EDDY__FAULT_OFF = 0,
  EDDY__FAULT_NTH,
  EDDY__FAULT_EVERY,
  EDDY__FAULT_AFTER,
  EDDY__FAULT_PROB,
};

typedef struct eddy__fault_rule {
  enum eddy__fault_mode mode;
  uint64_t n;   /* N of nth/after, K of every */
  double p;     /* probability for EDDY__FAULT_PROB */
  int err;      /* positive errno to fail with; 0 with is_short */
  int is_short; /* shorten the call instead of failing it */
} eddy__fault_rule;

/* The functions below exist only in builds with EDDY_FAULTS; they are
 * declared in every build so that tests compile without it (tests/meson.build
 * links stand-ins that skip the test asking for a fault). */

/* Sets the rule of a kind and zeroes its call counter. */
void eddy__fault_set(int kind, const eddy__fault_rule *rule);

/* Shorthand rules. */
void eddy__fault_fail_nth(int kind, uint64_t n, int err);
void eddy__fault_fail_after(int kind, uint64_t n, int err);

/* Clears every rule and counter (and ignores EDDY_FAULTS from now on). */
void eddy__fault_reset(void);

/* Calls of a kind since its rule was last set or reset. */
uint64_t eddy__fault_calls(int kind);

/* Parses a spec in the EDDY_FAULTS syntax and installs its rules. Returns
 * 0, or -EINVAL (nothing installed) for a malformed spec. */
int eddy__fault_parse(const char *spec);

/* The kind named name ("accept4"), or -1. */
int eddy__fault_kind(const char *name);

/* Live allocations made through eddy's allocator (a leak check for tests). */
long eddy__alloc_live(void);

#ifdef EDDY_FAULTS

/* 0: make the call. A negative errno: fail it with that. EDDY__FAULT_SHORT:
 * make it with a shorter length. Counts the call. Thread-safe. */
int eddy__fault_check(int kind);

#else

static inline int eddy__fault_check(int kind) {
  (void)kind;
  return 0;
}

#endif

#endif
