/* child.c: the child's side of a spawn, between clone() and execve().
 *
 * The child is made with clone(CLONE_VM | CLONE_VFORK), as vfork() does:
 * it runs on a small stack of the parent's, in the parent's memory, while
 * the parent's thread waits for it to call execve() or exit. That costs
 * no copy of the parent's page tables (a fork() of a large process, or of
 * one under AddressSanitizer, copies many), and it makes the exec error
 * report simple: the child stores its errno in the spec, and the parent
 * reads it once it resumes.
 *
 * Sharing the parent's memory (and, in a threaded program, running while
 * the parent's other threads run) sets the rules here:
 * - nothing but raw system calls: no allocation, no lock, no C library
 *   function that a sanitizer intercepts (its _exit() would run a leak
 *   check, its sigaction() and write() consult its own state);
 * - no instrumented stack frames (no_sanitize_address), so that no shadow
 *   memory of the parent's is left poisoned;
 * - no writes to the parent's memory but the one errno word;
 * - signal handlers: the child has its own table (no CLONE_SIGHAND), and
 *   the parent blocked every signal before clone(), so no handler of the
 *   parent's can run here before they are reset.
 * errno itself is the parent thread's (the same thread pointer); the
 * parent does not look at it across the spawn.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc/proc.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define CHILD __attribute__((no_sanitize_address, no_sanitize("undefined")))

/* The kernel's struct sigaction (not the C library's, which differs). */
struct ksigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

/* A raw system call: its result, or -errno. */
CHILD static long sys(long r) {
  return r < 0 ? -errno : r;
}

CHILD static _Noreturn void fail(eddy__child *c, long err) {
  c->err = (int)-err;
  for (;;)
    syscall(SYS_exit_group, 127);
}

/* Every handler the parent installed goes back to the default action: the
 * program must not start with eddy's handler (which writes into the
 * parent's signal pipes). Ignored signals stay ignored (nohup relies on
 * that), except SIGPIPE, which the eddy program ignores for itself. */
CHILD static void reset_signals(void) {
  struct ksigaction dfl = {.handler = SIG_DFL};
  for (int s = 1; s < NSIG; s++) {
    struct ksigaction old;
    if (s == SIGKILL || s == SIGSTOP ||
        syscall(SYS_rt_sigaction, s, NULL, &old, sizeof old.mask) != 0)
      continue;
    if (old.handler == SIG_DFL)
      continue;
    if (old.handler != SIG_IGN || s == SIGPIPE)
      (void)syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);
  }
}

/* Credentials through raw system calls: the C library's setuid() would
 * try to reach the parent's other threads. */
CHILD static long set_ids(const eddy__child *c) {
  long r = 0;
  if (c->flags & EDDY_PROCESS_SET_GID) {
    if ((r = sys(syscall(SYS_setgroups, 0, NULL))) < 0 ||
        (r = sys(syscall(SYS_setgid, c->gid))) < 0)
      return r;
  }
  if (c->flags & EDDY_PROCESS_SET_UID)
    r = sys(syscall(SYS_setuid, c->uid));
  return r < 0 ? r : 0;
}

CHILD static long set_group(const eddy__child *c) {
  long r;
  if (c->flags & EDDY_PROCESS_NEW_SESSION)
    return (r = sys(syscall(SYS_setsid))) < 0 ? r : 0;
  if (c->flags & EDDY_PROCESS_NEW_GROUP)
    return sys(syscall(SYS_setpgid, 0, 0));
  return 0;
}

/* Moves *fd above the descriptors being set up, so that no dup onto a
 * target can close it first. */
CHILD static long lift(int *fd, int n) {
  long moved;
  if (*fd < n) {
    if ((moved = sys(syscall(SYS_fcntl, *fd, F_DUPFD_CLOEXEC, n))) < 0)
      return moved;
    *fd = (int)moved;
  }
  return 0;
}

/* Lays out 0..nfds-1, then marks everything above close-on-exec: the
 * program gets no descriptor it was not given. src is the child's own
 * copy: the parent's spec must not change. */
CHILD static long set_fds(const eddy__child *c) {
  int src[EDDY__CHILD_MAX_FDS];
  int n = c->nfds;
  long r;
  for (int i = 0; i < n; i++) {
    src[i] = c->src[i];
    if (src[i] != i && (r = lift(&src[i], n)) < 0)
      return r;
  }
  for (int i = 0; i < n; i++) {
    if (src[i] == i) {
      /* Inherited as it is; only the flag must go. A closed descriptor
       * (EBADF) stays closed. */
      (void)syscall(SYS_fcntl, i, F_SETFD, 0);
    } else if ((r = sys(syscall(SYS_dup3, src[i], i, 0))) < 0) {
      return r;
    }
  }
  if (syscall(SYS_close_range, (unsigned)n, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    /* Before Linux 5.11: one call per possible descriptor. */
    for (long fd = n; fd < c->max_fd; fd++)
      (void)syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
  }
  return 0;
}

/* execve() over the candidates as execvp() does: a missing one is skipped;
 * EACCES is remembered and reported if no candidate runs; any other error
 * (ENOEXEC, E2BIG...) ends the search. */
CHILD static long run(const eddy__child *c) {
  long err = -ENOENT;
  int denied = 0;
  for (char *const *p = c->paths; *p; p++) {
    err = sys(syscall(SYS_execve, *p, c->argv, c->envp));
    if (err == -EACCES)
      denied = 1;
    else if (err != -ENOENT && err != -ENOTDIR)
      return err;
  }
  return denied ? -EACCES : err;
}

CHILD int eddy__child_main(void *arg) {
  eddy__child *c = arg;
  uint64_t none = 0;
  long r;
  reset_signals();
  if ((r = set_group(c)) < 0 || (r = set_ids(c)) < 0 || (r = set_fds(c)) < 0)
    fail(c, r);
  if (c->cwd && (r = sys(syscall(SYS_chdir, c->cwd))) < 0)
    fail(c, r);
  /* The parent blocked every signal around clone(); the program starts
   * with none blocked. */
  (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
  fail(c, run(c));
}
