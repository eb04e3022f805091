/* The EINTR policy of every sys wrapper, from one table.
 *
 * sys.h states the rules: calls that can simply be made again are retried
 * (reads, writes, accept, waitpid, open, fcntl, ...); calls that take a
 * timeout (epoll_wait, poll) report -EINTR so that their caller recomputes
 * it; close() is never retried and counts EINTR as success; connect() turns
 * it into -EINPROGRESS. Calls the kernel does not interrupt (socket, bind,
 * getsockopt, fstat, ...) report it as they would any other error.
 *
 * Each row below makes one real call of a wrapper with a single EINTR
 * injected first, and checks the outcome its policy promises. A wrapper
 * that lost its retry loop (or gained one it must not have) fails here, and
 * a fault kind added to EDDY__FAULT_KINDS without a row fails the
 * completeness test at the end. The allocation kinds (malloc, calloc,
 * realloc) have no EINTR and no row. */
#include "sys_test.h"

#include <limits.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

SYS_TEST_SUITE(sys_eintr, sys_test_reset);
SYS_TEST_SUITE(sys_set_nonblock_cloexec, sys_test_reset);

enum policy {
  RETRY,       /* made again: succeeds, and the kind was checked twice */
  REPORT,      /* -EINTR, nothing done; the next call succeeds */
  CLOSE_OK,    /* 0, not retried, the descriptor released */
  IN_PROGRESS, /* connect(): -EINPROGRESS, not retried */
  LAST_VALUE,  /* the clock: the last value read */
};

/* What a row works on. Descriptors are -1 until set; teardown closes
 * whatever is left open, unlinks the file and reaps the child. */
typedef struct fx {
  int a, b, c; /* descriptors the setup made */
  int out[2];  /* descriptors the wrapper made */
  pid_t pid;   /* a child to reap, -1 once reaped */
  char path[32];
  int64_t t0;
} fx;

#define ANY LONG_MIN /* any result >= 0 */

typedef struct row {
  int kind;
  enum policy policy;
  void (*setup)(fx *f);
  long (*call)(fx *f);
  long want;     /* the successful result, or ANY */
  int calls;     /* checks of the kind one successful call makes */
  int again_err; /* REPORT: an errno the second call may give instead */
} row;

/* ---- Setups ---- */

static void no_setup(fx *f) {
  (void)f;
}

static void pair_with_hello(fx *f) {
  int sv[2];
  unix_pair(sv);
  f->a = sv[0];
  f->b = sv[1];
  cr_assert(write(f->b, "hello", 5) == 5);
}

static void empty_pair(fx *f) {
  int sv[2];
  unix_pair(sv);
  f->a = sv[0];
  f->b = sv[1];
}

static void pipe_with_hello(fx *f) {
  int p[2];
  test_pipe(p);
  f->a = p[0];
  f->b = p[1];
  cr_assert(write(f->b, "hello", 5) == 5);
}

static void file_with_hello(fx *f) {
  temp_file(f->path, "hello");
  f->c = open(f->path, O_RDONLY | O_CLOEXEC);
  cr_assert(f->c >= 0);
}

static void file_and_pair(fx *f) {
  file_with_hello(f);
  empty_pair(f);
}

static void inet_socket(fx *f) {
  f->a = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  cr_assert(f->a >= 0);
}

static void bound_socket(fx *f) {
  struct sockaddr_in in = {.sin_family = AF_INET};
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  inet_socket(f);
  cr_assert(bind(f->a, (struct sockaddr *)&in, sizeof in) == 0);
}

static void listener_and_client(fx *f) {
  struct sockaddr_in in;
  f->a = loopback_listener(&in);
  f->b = loopback_client(&in);
}

static void listener_and_socket(fx *f) {
  struct sockaddr_in in;
  f->c = loopback_listener(&in);
  inet_socket(f);
}

static void epoll_and_pipe(fx *f) {
  f->c = epoll_create1(EPOLL_CLOEXEC);
  cr_assert(f->c >= 0);
  pipe_with_hello(f);
}

static void exited_child(fx *f) {
  f->pid = fork();
  cr_assert(f->pid >= 0);
  if (f->pid == 0)
    _exit(7);
}

static void clock_read_once(fx *f) {
  f->t0 = eddy__sys_now_ns();
}

/* A descriptor with neither O_NONBLOCK nor FD_CLOEXEC. */
static void plain_pipe(fx *f) {
  int p[2];
  cr_assert(pipe(p) == 0);
  f->a = p[0];
  f->b = p[1];
}

/* ---- Calls ---- */

static long call_socket(fx *f) {
  return f->out[0] = eddy__sys_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static long call_socketpair(fx *f) {
  return eddy__sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->out);
}

static long call_bind(fx *f) {
  struct sockaddr_in in = {.sin_family = AF_INET};
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return eddy__sys_bind(f->a, (struct sockaddr *)&in, sizeof in);
}

static long call_listen(fx *f) {
  return eddy__sys_listen(f->a, 8);
}

static long call_accept4(fx *f) {
  return f->out[0] = eddy__sys_accept4(f->a, NULL, NULL, SOCK_CLOEXEC);
}

static long call_connect(fx *f) {
  struct sockaddr_in in;
  socklen_t len = sizeof in;
  cr_assert(getsockname(f->c, (struct sockaddr *)&in, &len) == 0);
  return eddy__sys_connect(f->a, (struct sockaddr *)&in, len);
}

static long call_getsockopt(fx *f) {
  int type = 0;
  socklen_t len = sizeof type;
  long r = eddy__sys_getsockopt(f->a, SOL_SOCKET, SO_TYPE, &type, &len);
  return r == 0 && type != SOCK_STREAM ? -1 : r;
}

static long call_setsockopt(fx *f) {
  int one = 1;
  return eddy__sys_setsockopt(f->a, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
}

static long call_recv(fx *f) {
  char buf[16];
  return eddy__sys_recv(f->a, buf, sizeof buf, 0);
}

static long call_recvmsg(fx *f) {
  char buf[16];
  struct iovec v = {buf, sizeof buf};
  struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
  return eddy__sys_recvmsg(f->a, &m, 0);
}

static long call_recvmmsg(fx *f) {
  char buf[16];
  struct iovec v = {buf, sizeof buf};
  struct mmsghdr m = {.msg_hdr = {.msg_iov = &v, .msg_iovlen = 1}};
  return eddy__sys_recvmmsg(f->a, &m, 1, 0);
}

static long call_sendmmsg(fx *f) {
  struct iovec v = {"hello", 5};
  struct mmsghdr m = {.msg_hdr = {.msg_iov = &v, .msg_iovlen = 1}};
  return eddy__sys_sendmmsg(f->a, &m, 1, MSG_NOSIGNAL);
}

static long call_read(fx *f) {
  char buf[16];
  return eddy__sys_read(f->a, buf, sizeof buf);
}

static long call_sendmsg(fx *f) {
  struct iovec v = {"hello", 5};
  struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
  return eddy__sys_sendmsg(f->a, &m, MSG_NOSIGNAL);
}

static long call_write(fx *f) {
  return eddy__sys_write(f->a, "hello", 5);
}

static long call_writev(fx *f) {
  struct iovec v[2] = {{"hel", 3}, {"lo", 2}};
  return eddy__sys_writev(f->a, v, 2);
}

static long call_sendfile(fx *f) {
  off_t off = 0;
  return eddy__sys_sendfile(f->a, f->c, &off, 5);
}

static long call_pread(fx *f) {
  char buf[16];
  return eddy__sys_pread(f->c, buf, sizeof buf, 1); /* "ello" */
}

/* The descriptor is released even when EINTR is reported. */
static long call_close(fx *f) {
  long r = eddy__sys_close(f->a);
  cr_assert(fd_is_open(f->a) == 0, "close left descriptor %d open", f->a);
  f->a = -1;
  return r;
}

static long call_pipe2(fx *f) {
  return eddy__sys_pipe2(f->out, O_CLOEXEC | O_NONBLOCK);
}

static long call_eventfd(fx *f) {
  return f->out[0] = eddy__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static long call_epoll_create1(fx *f) {
  return f->out[0] = eddy__sys_epoll_create1(EPOLL_CLOEXEC);
}

static long call_epoll_ctl(fx *f) {
  struct epoll_event ev = {.events = EPOLLIN};
  return eddy__sys_epoll_ctl(f->c, EPOLL_CTL_ADD, f->a, &ev);
}

static long call_epoll_wait(fx *f) {
  struct epoll_event ev;
  return eddy__sys_epoll_wait(f->c, &ev, 1, 0);
}

static long call_poll(fx *f) {
  struct pollfd p = {.fd = f->a, .events = POLLIN};
  return eddy__sys_poll(&p, 1, 0);
}

static long call_clock(fx *f) {
  (void)f;
  return (long)eddy__sys_now_ns();
}

/* The raw exit: _exit() would run the sanitizer's hooks on the borrowed
 * stack, in the parent's memory. */
static int child_exits(void *arg) {
  (void)arg;
  syscall(SYS_exit_group, 0);
  return 0;
}

static char clone_stack[64 * 1024] __attribute__((aligned(16)));

static long call_clone_vfork(fx *f) {
  pid_t pid = eddy__sys_clone_vfork(child_exits,
                                    clone_stack + sizeof clone_stack, NULL);
  if (pid > 0)
    f->pid = pid;
  return pid;
}

static long call_waitpid(fx *f) {
  int status = 0;
  pid_t r = eddy__sys_waitpid(f->pid, &status, 0);
  if (r == f->pid) {
    f->pid = -1;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    cr_assert(code == 7, "status %#x", status);
  }
  return r;
}

static long call_kill(fx *f) {
  (void)f;
  return eddy__sys_kill(getpid(), 0);
}

static long call_sigaction(fx *f) {
  struct sigaction old;
  (void)f;
  return eddy__sys_sigaction(SIGUSR2, NULL, &old);
}

static long call_open(fx *f) {
  return f->out[0] = eddy__sys_open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
}

static long call_fstat(fx *f) {
  struct stat st;
  return eddy__sys_fstat(f->c, &st);
}

static void *thread_returns(void *arg) {
  return arg;
}

static long call_thread_create(fx *f) {
  pthread_t t;
  long r = eddy__sys_thread_create(&t, thread_returns, NULL);
  (void)f;
  if (r == 0)
    cr_assert(pthread_join(t, NULL) == 0);
  return r;
}

/* 1 if fd is non-blocking; *cloexec says if it is close-on-exec. */
static int flags_of(int fd, int *cloexec) {
  *cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
  return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* fcntl is reached through eddy__sys_set_nonblock_cloexec, which makes
 * four calls on a descriptor with neither flag; the first is interrupted. */
static long call_fcntl(fx *f) {
  long r = eddy__sys_set_nonblock_cloexec(f->a);
  if (r == 0) {
    int cloexec, nonblock = flags_of(f->a, &cloexec);
    cr_assert(nonblock && cloexec, "nonblock %d cloexec %d", nonblock, cloexec);
  }
  return r;
}

static long call_shutdown(fx *f) {
  return eddy__sys_shutdown(f->a, SHUT_WR);
}

static long call_getsockname(fx *f) {
  struct sockaddr_in in;
  socklen_t len = sizeof in;
  return eddy__sys_getsockname(f->a, (struct sockaddr *)&in, &len);
}

static long call_getpeername(fx *f) {
  struct sockaddr_un un;
  socklen_t len = sizeof un;
  return eddy__sys_getpeername(f->a, (struct sockaddr *)&un, &len);
}

static long call_unlink(fx *f) {
  return eddy__sys_unlink(f->path);
}

static long call_chmod(fx *f) {
  return eddy__sys_chmod(f->path, 0600);
}

static long call_lstat(fx *f) {
  struct stat st;
  return eddy__sys_lstat(f->path, &st);
}

static long call_pidfd_open(fx *f) {
  return f->out[0] = eddy__sys_pidfd_open(getpid(), 0);
}

/* ---- The table ---- */

/* clang-format off */
static const row rows[] = {
  /* kind                     policy       setup                call                want calls again_err */
  {EDDY__SYS_SOCKET,          REPORT,      no_setup,            call_socket,        ANY, 1, 0},
  {EDDY__SYS_SOCKETPAIR,      REPORT,      no_setup,            call_socketpair,    0,   1, 0},
  {EDDY__SYS_BIND,            REPORT,      inet_socket,         call_bind,          0,   1, 0},
  {EDDY__SYS_LISTEN,          REPORT,      bound_socket,        call_listen,        0,   1, 0},
  {EDDY__SYS_ACCEPT4,         RETRY,       listener_and_client, call_accept4,       ANY, 1, 0},
  {EDDY__SYS_CONNECT,         IN_PROGRESS, listener_and_socket, call_connect,       0,   1, 0},
  {EDDY__SYS_GETSOCKOPT,      REPORT,      inet_socket,         call_getsockopt,    0,   1, 0},
  {EDDY__SYS_SETSOCKOPT,      REPORT,      inet_socket,         call_setsockopt,    0,   1, 0},
  {EDDY__SYS_RECV,            RETRY,       pair_with_hello,     call_recv,          5,   1, 0},
  {EDDY__SYS_RECVMSG,         RETRY,       pair_with_hello,     call_recvmsg,       5,   1, 0},
  {EDDY__SYS_READ,            RETRY,       pipe_with_hello,     call_read,          5,   1, 0},
  {EDDY__SYS_SENDMSG,         RETRY,       empty_pair,          call_sendmsg,       5,   1, 0},
  {EDDY__SYS_WRITE,           RETRY,       empty_pair,          call_write,         5,   1, 0},
  {EDDY__SYS_WRITEV,          RETRY,       empty_pair,          call_writev,        5,   1, 0},
  {EDDY__SYS_SENDFILE,        RETRY,       file_and_pair,       call_sendfile,      5,   1, 0},
  {EDDY__SYS_CLOSE,           CLOSE_OK,    empty_pair,          call_close,         0,   1, 0},
  {EDDY__SYS_PIPE2,           REPORT,      no_setup,            call_pipe2,         0,   1, 0},
  {EDDY__SYS_EVENTFD,         REPORT,      no_setup,            call_eventfd,       ANY, 1, 0},
  {EDDY__SYS_EPOLL_CREATE1,   REPORT,      no_setup,            call_epoll_create1, ANY, 1, 0},
  {EDDY__SYS_EPOLL_CTL,       REPORT,      epoll_and_pipe,      call_epoll_ctl,     0,   1, 0},
  {EDDY__SYS_EPOLL_WAIT,      REPORT,      epoll_and_pipe,      call_epoll_wait,    0,   1, 0},
  {EDDY__SYS_POLL,            REPORT,      pipe_with_hello,     call_poll,          1,   1, 0},
  {EDDY__SYS_CLOCK_GETTIME,   LAST_VALUE,  clock_read_once,     call_clock,         ANY, 1, 0},
  {EDDY__SYS_FORK,            REPORT,      no_setup,            call_clone_vfork,   ANY, 1, 0},
  {EDDY__SYS_WAITPID,         RETRY,       exited_child,        call_waitpid,       ANY, 1, 0},
  {EDDY__SYS_KILL,            REPORT,      no_setup,            call_kill,          0,   1, 0},
  {EDDY__SYS_SIGACTION,       REPORT,      no_setup,            call_sigaction,     0,   1, 0},
  {EDDY__SYS_OPEN,            RETRY,       no_setup,            call_open,          ANY, 1, 0},
  {EDDY__SYS_FSTAT,           REPORT,      file_with_hello,     call_fstat,         0,   1, 0},
  {EDDY__SYS_THREAD_CREATE,   REPORT,      no_setup,            call_thread_create, 0,   1, 0},
  {EDDY__SYS_FCNTL,           RETRY,       plain_pipe,          call_fcntl,         0,   4, 0},
  {EDDY__SYS_SHUTDOWN,        REPORT,      empty_pair,          call_shutdown,      0,   1, 0},
  {EDDY__SYS_GETSOCKNAME,     REPORT,      bound_socket,        call_getsockname,   0,   1, 0},
  {EDDY__SYS_GETPEERNAME,     REPORT,      empty_pair,          call_getpeername,   0,   1, 0},
  {EDDY__SYS_UNLINK,          REPORT,      file_with_hello,     call_unlink,        0,   1, 0},
  {EDDY__SYS_CHMOD,           REPORT,      file_with_hello,     call_chmod,         0,   1, 0},
  {EDDY__SYS_LSTAT,           REPORT,      file_with_hello,     call_lstat,         0,   1, 0},
  {EDDY__SYS_PREAD,           RETRY,       file_with_hello,     call_pread,         4,   1, 0},
  {EDDY__SYS_PIDFD_OPEN,      REPORT,      no_setup,            call_pidfd_open,    ANY, 1, ENOSYS},
  {EDDY__SYS_RECVMMSG,        RETRY,       pair_with_hello,     call_recvmmsg,      1,   1, 0},
  {EDDY__SYS_SENDMMSG,        RETRY,       empty_pair,          call_sendmmsg,      1,   1, 0},
};
/* clang-format on */

#define NROWS (sizeof rows / sizeof rows[0])

static const char *kind_name(int kind) {
  static const char *names[] = {
#define EDDY__FAULT_NAME(id, name) name,
      EDDY__FAULT_KINDS(EDDY__FAULT_NAME)
#undef EDDY__FAULT_NAME
  };
  return names[kind];
}

static void close_if_open(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void teardown(fx *f) {
  close_if_open(&f->a);
  close_if_open(&f->b);
  close_if_open(&f->c);
  close_if_open(&f->out[0]);
  close_if_open(&f->out[1]);
  if (f->pid > 0)
    cr_assert(waitpid(f->pid, NULL, 0) == f->pid);
  if (f->path[0])
    unlink(f->path);
}

static void expect_success(const row *r, long got, const char *when) {
  const char *name = kind_name(r->kind);
  if (r->want == ANY)
    cr_expect(got >= 0, "%s %s: %ld (%s)", name, when, got,
              eddy_errname((int)got));
  else
    cr_expect(got == r->want, "%s %s: %ld, want %ld (%s)", name, when, got,
              r->want, eddy_errname((int)got));
}

/* Runs one row: setup, one EINTR on the first check of the kind, the call,
 * the policy's checks. The checks go on after a failure, so that every
 * wrapper that breaks its policy is named. */
static void run_row(const row *r) {
  const char *name = kind_name(r->kind);
  fx f = {.a = -1, .b = -1, .c = -1, .out = {-1, -1}, .pid = -1};
  long got;
  uint64_t calls;
  r->setup(&f);
  eddy__fault_fail_nth(r->kind, 1, EINTR);
  got = r->call(&f);
  calls = eddy__fault_calls(r->kind);
  switch (r->policy) {
  case RETRY:
    expect_success(r, got, "after one EINTR");
    cr_expect(calls == (uint64_t)r->calls + 1,
              "%s: %llu checks, want %d (one retry)", name,
              (unsigned long long)calls, r->calls + 1);
    break;
  case REPORT:
    cr_expect(got == -EINTR, "%s: %ld (%s), want -EINTR reported", name, got,
              eddy_errname((int)got));
    cr_expect(calls == 1, "%s: %llu checks, want 1 (no retry)", name,
              (unsigned long long)calls);
    /* Nothing was done: the same call now succeeds. */
    got = r->call(&f);
    if (!(r->again_err && got == -r->again_err))
      expect_success(r, got, "called again");
    break;
  case CLOSE_OK:
    cr_expect(got == 0, "%s: %ld (%s), want 0", name, got,
              eddy_errname((int)got));
    cr_expect(calls == 1, "%s: retried", name);
    break;
  case IN_PROGRESS:
    cr_expect(got == -EINPROGRESS, "%s: %ld (%s), want -EINPROGRESS", name, got,
              eddy_errname((int)got));
    cr_expect(calls == 1, "%s: retried", name);
    break;
  case LAST_VALUE:
    cr_expect(got == f.t0, "%s: %ld, want the last value read %lld", name, got,
              (long long)f.t0);
    cr_expect(calls == 1, "%s: retried", name);
    break;
  }
  eddy__fault_reset();
  teardown(&f);
}

Test(sys_eintr, every_wrapper_retries_or_reports_eintr_as_its_policy_says) {
  for (size_t i = 0; i < NROWS; i++)
    run_row(&rows[i]);
  expect_no_leaks();
}

Test(sys_eintr, the_table_has_one_row_for_every_fault_kind_but_allocation) {
  int seen[EDDY__SYS_KIND_COUNT] = {0};
  for (size_t i = 0; i < NROWS; i++)
    seen[rows[i].kind]++;
  for (int k = 0; k < EDDY__SYS_KIND_COUNT; k++) {
    int alloc = k == EDDY__SYS_MALLOC || k == EDDY__SYS_CALLOC ||
                k == EDDY__SYS_REALLOC;
    cr_assert(seen[k] == (alloc ? 0 : 1), "kind %s has %d rows", kind_name(k),
              seen[k]);
  }
}

/* ---- eddy__sys_set_nonblock_cloexec ---- */

Test(sys_set_nonblock_cloexec, sets_both_flags_and_keeps_the_others) {
  int p[2], cloexec, fl;
  cr_assert(pipe(p) == 0);
  cr_assert(fcntl(p[1], F_SETFL, O_APPEND) == 0);
  EXPECT_EQ(flags_of(p[1], &cloexec), 0);
  EXPECT_EQ(cloexec, 0);
  EXPECT_OK(eddy__sys_set_nonblock_cloexec(p[1]));
  EXPECT_EQ(flags_of(p[1], &cloexec), 1);
  EXPECT_EQ(cloexec, 1);
  fl = fcntl(p[1], F_GETFL) & O_APPEND;
  cr_assert(fl != 0, "O_APPEND lost");
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_FCNTL), 4);
  close_pair(p);
}

Test(sys_set_nonblock_cloexec, a_descriptor_already_set_is_only_read) {
  int p[2], cloexec;
  test_pipe(p);
  EXPECT_OK(eddy__sys_set_nonblock_cloexec(p[0]));
  EXPECT_EQ(flags_of(p[0], &cloexec), 1);
  EXPECT_EQ(cloexec, 1);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_FCNTL), 2); /* F_GETFL, F_GETFD */
  close_pair(p);
}

Test(sys_set_nonblock_cloexec, a_closed_descriptor_returns_ebadf) {
  EXPECT_EQ(eddy__sys_set_nonblock_cloexec(lowest_free_fd()), -EBADF);
}

/* Each of the four fcntl calls in turn is interrupted, and then fails. */
Test(sys_set_nonblock_cloexec, retries_eintr_and_reports_errors_at_every_step) {
  for (uint64_t n = 1; n <= 4; n++) {
    int p[2], cloexec;
    cr_assert(pipe(p) == 0);
    eddy__fault_fail_nth(EDDY__SYS_FCNTL, n, EINTR);
    EXPECT_OK(eddy__sys_set_nonblock_cloexec(p[0]));
    EXPECT_EQ(eddy__fault_calls(EDDY__SYS_FCNTL), 5);
    EXPECT_EQ(flags_of(p[0], &cloexec), 1);
    EXPECT_EQ(cloexec, 1);
    eddy__fault_fail_nth(EDDY__SYS_FCNTL, n, EPERM);
    EXPECT_EQ(eddy__sys_set_nonblock_cloexec(p[1]), -EPERM);
    EXPECT_EQ(eddy__fault_calls(EDDY__SYS_FCNTL), n);
    /* The steps before the failure took effect, the ones after did not. */
    EXPECT_EQ(flags_of(p[1], &cloexec), n >= 3);
    EXPECT_EQ(cloexec, 0);
    close_pair(p);
  }
  eddy__fault_reset();
}
