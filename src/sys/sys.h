/* sys.h: every system call eddy makes, one wrapper each.
 *
 * Conventions:
 * - A wrapper returns what the call returns on success (a descriptor, a
 *   count, 0) and a negative errno on failure, never -1 with errno.
 * - Wrappers retry EINTR when the call can simply be made again: reads,
 *   writes, accept, waitpid, open and the like. They do not retry calls that
 *   take a timeout (epoll_wait, poll): the caller must recompute the
 *   timeout, or its timers would drift late, so those return -EINTR.
 * - close() is never retried. On Linux the descriptor is released even when
 *   close() reports EINTR, and a retry could close a descriptor that another
 *   thread has just been given. eddy__sys_close() treats EINTR as success.
 * - connect() is not retried either: after EINTR the connection attempt goes
 *   on asynchronously, and a second connect() would report EALREADY. The
 *   wrapper maps EINTR to -EINPROGRESS, which callers already handle.
 * - Each call passes through eddy__fault_check() first (see fault.h).
 * - Descriptors are created close-on-exec and non-blocking where the call
 *   takes flags; callers pass the flags.
 */
#ifndef EDDY_SYS_SYS_H
#define EDDY_SYS_SYS_H

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "sys/fault.h"

int eddy__sys_socket(int domain, int type, int protocol);
int eddy__sys_socketpair(int domain, int type, int protocol, int fds[2]);
int eddy__sys_bind(int fd, const struct sockaddr *addr, socklen_t len);
int eddy__sys_listen(int fd, int backlog);
int eddy__sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int eddy__sys_connect(int fd, const struct sockaddr *addr, socklen_t len);
int eddy__sys_getsockopt(int fd, int level, int name, void *val,
                         socklen_t *len);
int eddy__sys_setsockopt(int fd, int level, int name, const void *val,
                         socklen_t len);

ssize_t eddy__sys_read(int fd, void *buf, size_t len);
ssize_t eddy__sys_recv(int fd, void *buf, size_t len, int flags);
ssize_t eddy__sys_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t eddy__sys_write(int fd, const void *buf, size_t len);
ssize_t eddy__sys_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t eddy__sys_sendmsg(int fd, const struct msghdr *msg, int flags);
/* recvmmsg and sendmmsg: the number of messages, or -errno (EINTR
 * retried). */
int eddy__sys_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);
int eddy__sys_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);
ssize_t eddy__sys_sendfile(int out_fd, int in_fd, off_t *offset, size_t len);
ssize_t eddy__sys_pread(int fd, void *buf, size_t len, off_t offset);

int eddy__sys_close(int fd);
int eddy__sys_pipe2(int fds[2], int flags);
int eddy__sys_eventfd(unsigned initval, int flags);
int eddy__sys_open(const char *path, int flags, mode_t mode);
int eddy__sys_fstat(int fd, struct stat *st);

int eddy__sys_epoll_create1(int flags);
int eddy__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int eddy__sys_epoll_wait(int epfd, struct epoll_event *evs, int max,
                         int timeout_ms);
int eddy__sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/* clone(CLONE_VM | CLONE_VFORK | SIGCHLD): a child that runs fn(arg) on
 * stack_top (it grows down) in the caller's memory; the calling thread
 * waits until the child has called execve() or exited. Checks the fault
 * table's "fork" kind (the one way eddy makes a child). Returns the
 * child's pid or a negative errno. */
pid_t eddy__sys_clone_vfork(int (*fn)(void *), void *stack_top, void *arg);
pid_t eddy__sys_waitpid(pid_t pid, int *status, int options);
int eddy__sys_kill(pid_t pid, int sig);
/* A descriptor that becomes readable when pid exits (Linux 5.3); -ENOSYS
 * on older kernels. Always close-on-exec. */
int eddy__sys_pidfd_open(pid_t pid, unsigned flags);
int eddy__sys_sigaction(int sig, const struct sigaction *act,
                        struct sigaction *old);

/* pthread_create() with every signal blocked in the new thread, so that
 * signals go to the threads that run loops. Returns 0 or a negative errno. */
int eddy__sys_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Sets O_NONBLOCK and FD_CLOEXEC on a descriptor eddy did not create. */
int eddy__sys_set_nonblock_cloexec(int fd);
int eddy__sys_shutdown(int fd, int how);
int eddy__sys_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int eddy__sys_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
int eddy__sys_unlink(const char *path);
int eddy__sys_chmod(const char *path, mode_t mode);
int eddy__sys_lstat(const char *path, struct stat *st);

/* Monotonic nanoseconds. clock_gettime(CLOCK_MONOTONIC) cannot fail on a
 * valid clock id; an injected failure returns the last value read. */
int64_t eddy__sys_now_ns(void);

#endif
