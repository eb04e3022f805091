/* process.c: spawning a child, reaping it, signalling it.
 *
 * Spawn: everything the child needs (pipes, /dev/null, the program's
 * candidate paths, the streams of the parent's ends) is made before the
 * child, so that a failure there leaves no child, and the child only makes
 * system calls (child.c). The parent resumes once the child has called
 * execve() or exited: an errno left in the spec means it failed, and that
 * child is reaped at once and the errno returned.
 *
 * Reap: a pidfd (readable once the child has ended) is watched like any
 * descriptor; without one (a kernel before 5.3, or pidfd_open failing), an
 * owned SIGCHLD handle. Both end in waitpid(pid, WNOHANG) on this child's
 * pid only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/loop.h"
#include "proc/proc.h"
#include "sys/alloc.h"
#include "sys/sys.h"

extern char **environ;

enum {
  EXITED = 1u << 0,      /* reaped; status recorded */
  CLOSED = 1u << 1,      /* eddy_process_close was called */
  TERMINATING = 1u << 2, /* eddy_process_terminate: KILL on timeout */
};

struct eddy_process {
  eddy__handle h;
  pid_t pid;
  unsigned opts; /* EDDY_PROCESS_* of the spawn */
  unsigned state;
  int pidfd; /* -1 when reaping on SIGCHLD */
  eddy__io io;
  eddy_signal *sigchld;
  eddy__timer timer; /* terminate's escalation to SIGKILL */
  eddy_process_exit_cb exit_cb;
  void *arg;
  int exit_status, term_signal;
};

/* What a spawn holds until it knows the outcome. */
typedef struct spawn {
  eddy__child child;
  int parent_end[3];      /* of each pipe; -1 otherwise */
  eddy_stream *stream[3]; /* made from parent_end */
  int devnull;
  char **paths;
} spawn;

static void escalate(eddy__timer *t, void *arg);

static int group_of(const eddy_process *p) {
  return (p->opts & (EDDY_PROCESS_NEW_GROUP | EDDY_PROCESS_NEW_SESSION)) != 0;
}

/* ---- Ending ------------------------------------------------------------------ */

static void release(eddy_process *p) {
  eddy__timer_stop(&p->timer);
  eddy__handle_close(&p->h);
}

static void stop_watching(eddy_process *p) {
  if (p->pidfd >= 0) {
    eddy__io_remove(p->h.loop, &p->io);
    eddy__sys_close(p->pidfd);
    p->pidfd = -1;
  }
  if (p->sigchld) {
    eddy_signal_close(p->sigchld);
    p->sigchld = NULL;
  }
}

static void reaped(eddy_process *p, int exit_status, int term_signal) {
  stop_watching(p);
  p->state |= EXITED;
  p->exit_status = exit_status;
  p->term_signal = term_signal;
  eddy__timer_stop(&p->timer);
  /* The leader of a group being stopped has gone; what it started goes
   * with it rather than outliving the stop. */
  if ((p->state & TERMINATING) && group_of(p))
    (void)eddy__sys_kill(-p->pid, SIGKILL);
  if (p->state & CLOSED)
    release(p);
  else if (p->exit_cb)
    p->exit_cb(p, exit_status, term_signal, p->arg);
}

/* waitpid on this child alone. Returns 1 if it was reaped (or can never
 * be: ECHILD, someone else reaped it), 0 if it is still running. */
static int try_reap(eddy_process *p) {
  int st = 0;
  pid_t r = eddy__sys_waitpid(p->pid, &st, WNOHANG);
  if (r == 0)
    return 0;
  if (r < 0)
    reaped(p, (int)r, 0);
  else if (WIFSIGNALED(st))
    reaped(p, 0, WTERMSIG(st));
  else
    reaped(p, WEXITSTATUS(st), 0);
  return 1;
}

static void on_pidfd(eddy_loop *loop, eddy__io *io, unsigned events) {
  (void)loop;
  (void)events;
  (void)try_reap(io->data);
}

/* Every SIGCHLD wakes every process handle of the loop; each checks its
 * own pid. Only the fallback pays for that. */
static void on_sigchld(eddy_signal *h, int signum, void *arg) {
  (void)h;
  (void)signum;
  (void)try_reap(arg);
}

/* Starts reaping a child just made. */
static int watch(eddy_loop *loop, eddy_process *p) {
  int fd = eddy__sys_pidfd_open(p->pid, 0);
  int err;
  if (fd >= 0) {
    eddy__io_init(&p->io, fd, on_pidfd, p);
    err = eddy__io_start(loop, &p->io, EDDY__IO_READ);
    if (err == 0) {
      p->pidfd = fd;
      return 0;
    }
    eddy__sys_close(fd);
  }
  err = eddy_signal_start(loop, SIGCHLD, on_sigchld, p, &p->sigchld);
  if (err)
    return err;
  eddy__signal_owned(p->sigchld);
  /* The child may have ended before the handler was there, and that
   * SIGCHLD is lost: one more makes the handle look. */
  (void)eddy__sys_kill(getpid(), SIGCHLD);
  return 0;
}

/* ---- Preparing ------------------------------------------------------------------ */

static int path_candidates(const char *file, const char *const *env,
                           char ***out) {
  const char *path = NULL;
  size_t flen = strlen(file), n = 1, size;
  char **v, *s;
  if (strchr(file, '/') == NULL) {
    for (const char *const *e = env; e && *e && path == NULL; e++)
      if (strncmp(*e, "PATH=", 5) == 0)
        path = *e + 5;
    if (path == NULL && (path = getenv("PATH")) == NULL)
      path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *c = path; *c; c++)
      n += *c == ':';
  }
  /* One block: n + 1 pointers, then the strings. */
  size = (n + 1) * sizeof(char *) +
         (path ? strlen(path) + n * (flen + 3) : flen + 1);
  if ((v = eddy__malloc(size)) == NULL)
    return -ENOMEM;
  s = (char *)(v + n + 1);
  if (path == NULL) {
    v[0] = memcpy(s, file, flen + 1);
    v[1] = NULL;
    *out = v;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    const char *end = strchr(path, ':');
    size_t dlen = end ? (size_t)(end - path) : strlen(path);
    v[i] = s;
    if (dlen == 0) /* an empty entry is the current directory */
      *s++ = '.';
    memcpy(s, path, dlen);
    s += dlen;
    *s++ = '/';
    memcpy(s, file, flen + 1);
    s += flen + 1;
    path += dlen + (end != NULL);
  }
  v[n] = NULL;
  *out = v;
  return 0;
}

static void undo(spawn *sp) {
  for (int i = 0; i < 3; i++) {
    if (sp->stream[i])
      eddy_stream_abort(sp->stream[i]); /* no callbacks yet: silent */
    else if (sp->parent_end[i] >= 0)
      eddy__sys_close(sp->parent_end[i]);
  }
}

static int made_here(eddy_stdio_kind kind) {
  return kind == EDDY_STDIO_PIPE || kind == EDDY_STDIO_SOCKETPAIR;
}

/* Closes what only the child needed. */
static void close_child_side(spawn *sp, const eddy_process_options *o) {
  for (int i = 0; i < 3; i++)
    if (made_here(o->stdio[i].kind) && sp->child.src[i] >= 0) {
      eddy__sys_close(sp->child.src[i]);
      sp->child.src[i] = -1;
    }
  if (sp->devnull >= 0)
    eddy__sys_close(sp->devnull);
  sp->devnull = -1;
}

static int stdio_prepare(eddy_loop *loop, spawn *sp,
                         const eddy_process_options *o, int i) {
  const eddy_stdio *io = &o->stdio[i];
  int fds[2], err;
  switch (io->kind) {
  case EDDY_STDIO_NULL:
    if (sp->devnull < 0 &&
        (sp->devnull = eddy__sys_open("/dev/null", O_RDWR | O_CLOEXEC, 0)) <
            0) {
      err = sp->devnull;
      sp->devnull = -1;
      return err;
    }
    sp->child.src[i] = sp->devnull;
    return 0;
  case EDDY_STDIO_INHERIT:
    sp->child.src[i] = i;
    return 0;
  case EDDY_STDIO_FD:
    if (io->fd < 0)
      return -EBADF;
    sp->child.src[i] = io->fd;
    return 0;
  case EDDY_STDIO_SOCKETPAIR:
    if (io->stream == NULL)
      return -EINVAL;
    err = eddy__sys_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    if (err)
      return err;
    sp->child.src[i] = fds[1];
    sp->parent_end[i] = fds[0];
    if ((err = eddy_stream_open(loop, fds[0], NULL, NULL, &sp->stream[i])) != 0)
      sp->parent_end[i] = -1; /* the stream closed it */
    return err;
  case EDDY_STDIO_PIPE:
    if (io->stream == NULL)
      return -EINVAL;
    if ((err = eddy__sys_pipe2(fds, O_CLOEXEC)) != 0)
      return err;
    /* The child's end stays blocking: programs expect that. */
    sp->child.src[i] = fds[i == 0 ? 0 : 1];
    sp->parent_end[i] = fds[i == 0 ? 1 : 0];
    err = i == 0 ? eddy_stream_open_pair(loop, -1, fds[1], NULL, NULL,
                                         &sp->stream[i])
                 : eddy_stream_open_pair(loop, fds[0], -1, NULL, NULL,
                                         &sp->stream[i]);
    if (err)
      sp->parent_end[i] = -1; /* the stream closed it */
    return err;
  }
  return -EINVAL;
}

static int prepare(eddy_loop *loop, spawn *sp, const eddy_process_options *o) {
  int err;
  if (o->file == NULL || o->nextra < 0 || o->nextra > EDDY__CHILD_MAX_FDS - 3)
    return -EINVAL;
  if (o->file[0] == '\0') /* as execvp(): no such program */
    return -ENOENT;
  for (int i = 0; i < o->nextra; i++) {
    if (o->extra_fds[i] < 0)
      return -EBADF;
    sp->child.src[3 + i] = o->extra_fds[i];
  }
  sp->child.nfds = 3 + o->nextra;
  for (int i = 0; i < 3; i++)
    if ((err = stdio_prepare(loop, sp, o, i)) != 0)
      return err;
  if ((err = path_candidates(o->file, o->env, &sp->paths)) != 0)
    return err;
  sp->child.paths = sp->paths;
  return 0;
}

/* ---- Spawning ------------------------------------------------------------------- */

/* The child's stack: its frames are small (child.c calls nothing but
 * system calls), and the parent's thread waits while the child runs, so a
 * buffer in the parent's frame serves. */
#define CHILD_STACK 16384

/* The child, with every signal blocked, so that no handler of the parent's
 * runs in the child before the child has reset them (eddy's would write
 * into the parent's signal pipes). Returns once the child has executed the
 * program (0) or failed (its errno; it has exited, and is reaped here). */
static int run_child(spawn *sp, pid_t *pid) {
  _Alignas(16) char stack[CHILD_STACK];
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  sp->child.err = 0;
  *pid = eddy__sys_clone_vfork(eddy__child_main, stack + sizeof stack,
                               &sp->child);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (*pid < 0)
    return *pid;
  if (sp->child.err) {
    (void)eddy__sys_waitpid(*pid, NULL, 0);
    return -sp->child.err;
  }
  return 0;
}

static int start(eddy_loop *loop, spawn *sp, const eddy_process_options *o,
                 eddy_process *p) {
  int err = prepare(loop, sp, o);
  pid_t pid;
  if (err)
    return err;
  sp->child.argv = (char *const *)o->argv;
  sp->child.envp = (char *const *)(o->env ? o->env
                                          : (const char *const *)environ);
  sp->child.cwd = o->cwd;
  sp->child.flags = o->flags;
  sp->child.uid = o->uid;
  sp->child.gid = o->gid;
  sp->child.max_fd = sysconf(_SC_OPEN_MAX);
  err = run_child(sp, &pid);
  close_child_side(sp, o);
  if (err)
    return err;
  p->pid = pid;
  if ((err = watch(loop, p)) != 0) {
    /* It runs, but nothing would ever reap it. */
    (void)eddy__sys_kill(pid, SIGKILL);
    (void)eddy__sys_waitpid(pid, NULL, 0);
  }
  return err;
}

void eddy__process_own(eddy_process *p) {
  p->h.flags |= EDDY__HANDLE_OWNED;
}

static void process_close_handle(eddy__handle *h) {
  eddy_process_close((eddy_process *)h);
}

int eddy_process_spawn(eddy_loop *loop, const eddy_process_options *o,
                       eddy_process **out) {
  spawn sp;
  eddy_process *p;
  int err;
  if (o == NULL || out == NULL)
    return -EINVAL;
  memset(&sp, 0, sizeof sp);
  sp.devnull = -1;
  for (int i = 0; i < 3; i++)
    sp.parent_end[i] = sp.child.src[i] = -1;
  if ((p = eddy__calloc(1, sizeof *p)) == NULL)
    return -ENOMEM;
  p->pidfd = -1;
  {
    const char *def_argv[] = {o->file, NULL};
    eddy_process_options oo = *o;
    if (oo.argv == NULL)
      oo.argv = def_argv;
    err = start(loop, &sp, &oo, p);
  }
  close_child_side(&sp, o);
  eddy__free(sp.paths);
  if (err) {
    undo(&sp);
    eddy__free(p);
    return err;
  }
  eddy__handle_init(loop, &p->h, process_close_handle);
  eddy__timer_init(loop, &p->timer, escalate, p);
  p->opts = o->flags;
  p->exit_cb = o->exit_cb;
  p->arg = o->arg;
  for (int i = 0; i < 3; i++)
    if (sp.stream[i])
      *o->stdio[i].stream = sp.stream[i];
  *out = p;
  return 0;
}

/* ---- Signalling -------------------------------------------------------------------- */

pid_t eddy_process_pid(const eddy_process *p) {
  return p->pid;
}

int eddy_process_exited(const eddy_process *p) {
  return (p->state & EXITED) != 0;
}

int eddy_process_kill(eddy_process *p, int signum) {
  if (p->state & EXITED)
    return -ESRCH;
  return eddy__sys_kill(p->pid, signum);
}

int eddy_process_kill_group(eddy_process *p, int signum) {
  if (!group_of(p))
    return -EINVAL;
  return eddy__sys_kill(-p->pid, signum);
}

static int signal_all(eddy_process *p, int signum) {
  return group_of(p) ? eddy_process_kill_group(p, signum)
                     : eddy_process_kill(p, signum);
}

static void escalate(eddy__timer *t, void *arg) {
  eddy_process *p = arg;
  (void)t;
  if (!(p->state & EXITED))
    (void)signal_all(p, SIGKILL);
}

int eddy_process_terminate(eddy_process *p, int64_t timeout_ns) {
  int err;
  if (p->state & EXITED)
    return -ESRCH;
  /* The timer first: if even the heap cannot grow, nothing is sent. */
  if ((err = eddy__timer_start(&p->timer, timeout_ns)) != 0)
    return err;
  if ((err = signal_all(p, SIGTERM)) != 0) {
    eddy__timer_stop(&p->timer);
    return err;
  }
  p->state |= TERMINATING;
  return 0;
}

void eddy_process_close(eddy_process *p) {
  if (p->state & CLOSED)
    return;
  p->state |= CLOSED;
  p->exit_cb = NULL;
  if (p->state & EXITED)
    release(p);
}
