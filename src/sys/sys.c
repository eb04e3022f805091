/* sys.c: the system-call wrappers. See sys.h for the rules they follow. */
#include "sys/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The length a "short" fault leaves: half, but at least one byte so that
 * the call still makes progress. */
static size_t shorten(size_t len) {
  return len > 1 ? len / 2 : len;
}

/* Applies a fault rule to a call that has a length. Returns 0 to go on
 * (possibly with *len shortened) or a negative errno to fail with. */
static int fault_len(int kind, size_t *len) {
  int f = eddy__fault_check(kind);
  if (f == EDDY__FAULT_SHORT) {
    *len = shorten(*len);
    return 0;
  }
  return f;
}

/* For a vector call, a short fault keeps half of the first non-empty
 * buffer only. */
static int shorten_iov(int f, const struct iovec **iov, int *iovcnt,
                       struct iovec *tmp) {
  if (f != EDDY__FAULT_SHORT)
    return f;
  /* The first non-empty buffer: a zero-length call would read as EOF. */
  for (int i = 0; i < *iovcnt; i++)
    if ((*iov)[i].iov_len > 0) {
      tmp->iov_base = (*iov)[i].iov_base;
      tmp->iov_len = shorten((*iov)[i].iov_len);
      *iov = tmp;
      *iovcnt = 1;
      break;
    }
  return 0;
}

static int fault_iov(int kind, const struct iovec **iov, int *iovcnt,
                     struct iovec *tmp) {
  return shorten_iov(eddy__fault_check(kind), iov, iovcnt, tmp);
}

/* A fault check for a call without a length: "short" means nothing. */
static int fault_plain(int kind) {
  int f = eddy__fault_check(kind);
  return f == EDDY__FAULT_SHORT ? 0 : f;
}

static ssize_t result(ssize_t r) {
  return r < 0 ? -errno : r;
}

int eddy__sys_socket(int domain, int type, int protocol) {
  int err = fault_plain(EDDY__SYS_SOCKET);
  return err ? err : (int)result(socket(domain, type, protocol));
}

int eddy__sys_socketpair(int domain, int type, int protocol, int fds[2]) {
  int err = fault_plain(EDDY__SYS_SOCKETPAIR);
  return err ? err : (int)result(socketpair(domain, type, protocol, fds));
}

int eddy__sys_bind(int fd, const struct sockaddr *addr, socklen_t len) {
  int err = fault_plain(EDDY__SYS_BIND);
  return err ? err : (int)result(bind(fd, addr, len));
}

int eddy__sys_listen(int fd, int backlog) {
  int err = fault_plain(EDDY__SYS_LISTEN);
  return err ? err : (int)result(listen(fd, backlog));
}

int eddy__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len,
                      int flags) {
  for (;;) {
    int r = fault_plain(EDDY__SYS_ACCEPT4);
    if (r == 0)
      r = (int)result(accept4(fd, addr, len, flags));
    if (r != -EINTR)
      return r;
  }
}

/* An injected EINTR still makes the real call, as a real EINTR means the
 * attempt was started; the caller must see what a real one would give. */
int eddy__sys_connect(int fd, const struct sockaddr *addr, socklen_t len) {
  int f = fault_plain(EDDY__SYS_CONNECT);
  int r = f;
  if (f == 0 || f == -EINTR)
    r = (int)result(connect(fd, addr, len));
  if (f == -EINTR && r == 0)
    r = -EINTR;
  return r == -EINTR ? -EINPROGRESS : r;
}

int eddy__sys_getsockopt(int fd, int level, int name, void *val,
                         socklen_t *len) {
  int err = fault_plain(EDDY__SYS_GETSOCKOPT);
  return err ? err : (int)result(getsockopt(fd, level, name, val, len));
}

int eddy__sys_setsockopt(int fd, int level, int name, const void *val,
                         socklen_t len) {
  int err = fault_plain(EDDY__SYS_SETSOCKOPT);
  return err ? err : (int)result(setsockopt(fd, level, name, val, len));
}

ssize_t eddy__sys_read(int fd, void *buf, size_t len) {
  for (;;) {
    size_t n = len;
    ssize_t r = fault_len(EDDY__SYS_READ, &n);
    if (r == 0)
      r = result(read(fd, buf, n));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_recv(int fd, void *buf, size_t len, int flags) {
  for (;;) {
    size_t n = len;
    ssize_t r = fault_len(EDDY__SYS_RECV, &n);
    if (r == 0)
      r = result(recv(fd, buf, n, flags));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_recvmsg(int fd, struct msghdr *msg, int flags) {
  for (;;) {
    ssize_t r = fault_plain(EDDY__SYS_RECVMSG);
    if (r == 0)
      r = result(recvmsg(fd, msg, flags));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_write(int fd, const void *buf, size_t len) {
  for (;;) {
    size_t n = len;
    ssize_t r = fault_len(EDDY__SYS_WRITE, &n);
    if (r == 0)
      r = result(write(fd, buf, n));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_writev(int fd, const struct iovec *iov, int iovcnt) {
  for (;;) {
    struct iovec tmp;
    const struct iovec *v = iov;
    int cnt = iovcnt;
    ssize_t r = fault_iov(EDDY__SYS_WRITEV, &v, &cnt, &tmp);
    if (r == 0)
      r = result(writev(fd, v, cnt));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_sendmsg(int fd, const struct msghdr *msg, int flags) {
  for (;;) {
    struct msghdr m = *msg;
    struct iovec tmp;
    const struct iovec *v = msg->msg_iov;
    int cnt = (int)msg->msg_iovlen;
    ssize_t r = shorten_iov(eddy__fault_check(EDDY__SYS_SENDMSG), &v, &cnt,
                            &tmp);
    m.msg_iov = (struct iovec *)v;
    m.msg_iovlen = (size_t)cnt;
    if (r == 0)
      r = result(sendmsg(fd, &m, flags));
    if (r != -EINTR)
      return r;
  }
}

int eddy__sys_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags) {
  for (;;) {
    int r = fault_plain(EDDY__SYS_RECVMMSG);
    if (r == 0)
      r = (int)result(recvmmsg(fd, msgs, n, flags, NULL));
    if (r != -EINTR)
      return r;
  }
}

int eddy__sys_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags) {
  for (;;) {
    int r = fault_plain(EDDY__SYS_SENDMMSG);
    if (r == 0)
      r = (int)result(sendmmsg(fd, msgs, n, flags));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_sendfile(int out_fd, int in_fd, off_t *offset, size_t len) {
  for (;;) {
    size_t n = len;
    ssize_t r = fault_len(EDDY__SYS_SENDFILE, &n);
    if (r == 0)
      r = result(sendfile(out_fd, in_fd, offset, n));
    if (r != -EINTR)
      return r;
  }
}

ssize_t eddy__sys_pread(int fd, void *buf, size_t len, off_t offset) {
  for (;;) {
    size_t n = len;
    ssize_t r = fault_len(EDDY__SYS_PREAD, &n);
    if (r == 0)
      r = result(pread(fd, buf, n, offset));
    if (r != -EINTR)
      return r;
  }
}

/* Never retried: see sys.h. On Linux EINTR from close() still releases the
 * descriptor, so it is reported as success. */
int eddy__sys_close(int fd) {
  int r = fault_plain(EDDY__SYS_CLOSE);
  if (r == -EINTR)
    (void)close(fd); /* as on Linux: the descriptor is gone all the same */
  else if (r == 0)
    r = (int)result(close(fd));
  return r == -EINTR ? 0 : r;
}

int eddy__sys_pipe2(int fds[2], int flags) {
  int err = fault_plain(EDDY__SYS_PIPE2);
  return err ? err : (int)result(pipe2(fds, flags));
}

int eddy__sys_eventfd(unsigned initval, int flags) {
  int err = fault_plain(EDDY__SYS_EVENTFD);
  return err ? err : (int)result(eventfd(initval, flags));
}

int eddy__sys_open(const char *path, int flags, mode_t mode) {
  for (;;) {
    int r = fault_plain(EDDY__SYS_OPEN);
    if (r == 0)
      r = (int)result(open(path, flags, mode));
    if (r != -EINTR)
      return r;
  }
}

int eddy__sys_fstat(int fd, struct stat *st) {
  int err = fault_plain(EDDY__SYS_FSTAT);
  return err ? err : (int)result(fstat(fd, st));
}

int eddy__sys_epoll_create1(int flags) {
  int err = fault_plain(EDDY__SYS_EPOLL_CREATE1);
  return err ? err : (int)result(epoll_create1(flags));
}

int eddy__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  int err = fault_plain(EDDY__SYS_EPOLL_CTL);
  return err ? err : (int)result(epoll_ctl(epfd, op, fd, ev));
}

/* Not retried on EINTR: the caller recomputes its timeout. */
int eddy__sys_epoll_wait(int epfd, struct epoll_event *evs, int max,
                         int timeout_ms) {
  int err = fault_plain(EDDY__SYS_EPOLL_WAIT);
  return err ? err : (int)result(epoll_wait(epfd, evs, max, timeout_ms));
}

/* Not retried on EINTR: the caller recomputes its timeout. */
int eddy__sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms) {
  int err = fault_plain(EDDY__SYS_POLL);
  return err ? err : (int)result(poll(fds, n, timeout_ms));
}

static int clock_read(clockid_t clock, struct timespec *ts) {
  int err = fault_plain(EDDY__SYS_CLOCK_GETTIME);
  return err ? err : (int)result(clock_gettime(clock, ts));
}

int64_t eddy__sys_now_ns(void) {
  static _Thread_local int64_t last;
  struct timespec ts;
  if (clock_read(CLOCK_MONOTONIC, &ts) == 0)
    last = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  return last;
}

pid_t eddy__sys_clone_vfork(int (*fn)(void *), void *stack_top, void *arg) {
  int err = fault_plain(EDDY__SYS_FORK);
  return err ? err
             : (pid_t)result(
                   clone(fn, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, arg));
}

pid_t eddy__sys_waitpid(pid_t pid, int *status, int options) {
  for (;;) {
    pid_t r = fault_plain(EDDY__SYS_WAITPID);
    if (r == 0)
      r = (pid_t)result(waitpid(pid, status, options));
    if (r != -EINTR)
      return r;
  }
}

int eddy__sys_kill(pid_t pid, int sig) {
  int err = fault_plain(EDDY__SYS_KILL);
  return err ? err : (int)result(kill(pid, sig));
}

/* Through syscall(): the C library's wrapper is newer than the kernels eddy
 * supports, and the fallback (SIGCHLD) covers a kernel without it. */
int eddy__sys_pidfd_open(pid_t pid, unsigned flags) {
  int err = fault_plain(EDDY__SYS_PIDFD_OPEN);
  return err ? err : (int)result(syscall(SYS_pidfd_open, pid, flags));
}

int eddy__sys_sigaction(int sig, const struct sigaction *act,
                        struct sigaction *old) {
  int err = fault_plain(EDDY__SYS_SIGACTION);
  return err ? err : (int)result(sigaction(sig, act, old));
}

int eddy__sys_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  int err = fault_plain(EDDY__SYS_THREAD_CREATE);
  if (err)
    return err;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = -pthread_create(thread, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return err;
}

static int fcntl_retry(int fd, int cmd, int arg) {
  for (;;) {
    int r = fault_plain(EDDY__SYS_FCNTL);
    if (r == 0)
      r = (int)result(fcntl(fd, cmd, arg));
    if (r != -EINTR)
      return r;
  }
}

int eddy__sys_set_nonblock_cloexec(int fd) {
  int fl = fcntl_retry(fd, F_GETFL, 0);
  int fdfl;
  if (fl < 0)
    return fl;
  if (!(fl & O_NONBLOCK) &&
      (fl = fcntl_retry(fd, F_SETFL, fl | O_NONBLOCK)) < 0)
    return fl;
  fdfl = fcntl_retry(fd, F_GETFD, 0);
  if (fdfl < 0)
    return fdfl;
  if (!(fdfl & FD_CLOEXEC) &&
      (fdfl = fcntl_retry(fd, F_SETFD, fdfl | FD_CLOEXEC)) < 0)
    return fdfl;
  return 0;
}

int eddy__sys_shutdown(int fd, int how) {
  int err = fault_plain(EDDY__SYS_SHUTDOWN);
  return err ? err : (int)result(shutdown(fd, how));
}

int eddy__sys_getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
  int err = fault_plain(EDDY__SYS_GETSOCKNAME);
  return err ? err : (int)result(getsockname(fd, addr, len));
}

int eddy__sys_getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
  int err = fault_plain(EDDY__SYS_GETPEERNAME);
  return err ? err : (int)result(getpeername(fd, addr, len));
}

int eddy__sys_unlink(const char *path) {
  int err = fault_plain(EDDY__SYS_UNLINK);
  return err ? err : (int)result(unlink(path));
}

int eddy__sys_chmod(const char *path, mode_t mode) {
  int err = fault_plain(EDDY__SYS_CHMOD);
  return err ? err : (int)result(chmod(path, mode));
}

int eddy__sys_lstat(const char *path, struct stat *st) {
  int err = fault_plain(EDDY__SYS_LSTAT);
  return err ? err : (int)result(lstat(path, st));
}
