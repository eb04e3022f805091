/* child.c: the child's side of a spawn, between fork() and execve().
 *
 * In a threaded program a child of fork() may only make async-signal-safe
 * calls: another thread may have held the allocator's lock, or the fault
 * table's, at the moment of the fork. So nothing here allocates or goes
 * through the sys layer; the parent prepared every string and array. Any
 * failure is reported through the status pipe, which execve() closes on
 * success (it is close-on-exec): the parent reads either an errno or end
 * of file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc/proc.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static _Noreturn void fail(int fd, int err) {
  while (write(fd, &err, sizeof err) < 0 && errno == EINTR) {
  }
  _exit(127);
}

/* Every handler the parent installed goes back to the default action: the
 * program must not start with eddy's handler (which writes into the
 * parent's signal pipes). Ignored signals stay ignored (nohup relies on
 * that), except SIGPIPE, which the eddy program ignores for itself. */
static void reset_signals(void) {
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int s = 1; s < NSIG; s++) {
    struct sigaction old;
    if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &old) != 0)
      continue;
    if (old.sa_handler == SIG_DFL)
      continue;
    if (old.sa_handler != SIG_IGN || s == SIGPIPE)
      (void)sigaction(s, &dfl, NULL);
  }
}

/* Credentials through raw system calls: the C library's setuid() would
 * try to reach the parent's other threads, which the child does not have. */
static int set_ids(const eddy__child *c) {
  if ((c->flags & EDDY_PROCESS_SET_GID) &&
      (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setgid, c->gid) != 0))
    return errno;
  if ((c->flags & EDDY_PROCESS_SET_UID) && syscall(SYS_setuid, c->uid) != 0)
    return errno;
  return 0;
}

/* Moves fd above the descriptors being set up, so that no dup2() onto a
 * target can close it first. */
static int lift(int *fd, int n) {
  int moved;
  if (*fd < 0 || *fd >= n)
    return 0;
  moved = fcntl(*fd, F_DUPFD_CLOEXEC, n);
  if (moved < 0)
    return errno;
  *fd = moved;
  return 0;
}

/* Lays out 0..nfds-1, then marks everything above close-on-exec: the
 * program gets no descriptor it was not given. */
static int set_fds(eddy__child *c) {
  int n = c->nfds, err;
  if ((err = lift(&c->status_fd, n)) != 0)
    return err;
  for (int i = 0; i < n; i++)
    if (c->src[i] != i && (err = lift(&c->src[i], n)) != 0)
      return err;
  for (int i = 0; i < n; i++) {
    if (c->src[i] == i) {
      /* Inherited as it is; only the flag must go. A closed descriptor
       * (EBADF) stays closed. */
      (void)fcntl(i, F_SETFD, 0);
    } else if (dup2(c->src[i], i) < 0) {
      return errno;
    }
  }
  if (syscall(SYS_close_range, (unsigned)n, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    /* Before Linux 5.11: one call per possible descriptor. */
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = n; fd < max; fd++)
      (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  }
  return 0;
}

/* execve() over the candidates as execvp() does: a missing one is skipped;
 * EACCES is remembered and reported if no candidate runs; any other error
 * (ENOEXEC, E2BIG...) ends the search. */
static int run(const eddy__child *c) {
  int err = ENOENT, denied = 0;
  for (char *const *p = c->paths; *p; p++) {
    execve(*p, c->argv, c->envp);
    err = errno;
    if (err == EACCES)
      denied = 1;
    else if (err != ENOENT && err != ENOTDIR)
      return err;
  }
  return denied ? EACCES : err;
}

void eddy__child_exec(eddy__child *c) {
  sigset_t none;
  int err;
  reset_signals();
  if ((c->flags & EDDY_PROCESS_NEW_SESSION) && setsid() < 0)
    fail(c->status_fd, errno);
  if ((c->flags & EDDY_PROCESS_NEW_GROUP) &&
      !(c->flags & EDDY_PROCESS_NEW_SESSION) && setpgid(0, 0) != 0)
    fail(c->status_fd, errno);
  if ((err = set_ids(c)) != 0 || (err = set_fds(c)) != 0)
    fail(c->status_fd, err);
  if (c->cwd && chdir(c->cwd) != 0)
    fail(c->status_fd, errno);
  /* The parent blocked every signal around fork(); the program starts with
   * none blocked. */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  fail(c->status_fd, run(c));
}
