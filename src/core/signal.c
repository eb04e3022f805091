/* signal.c: signals delivered as loop callbacks.
 *
 * A process-wide handler, installed while any loop watches the signal,
 * writes the signal number as one byte into the signal pipe of every loop
 * that watches it; each loop reads its pipe and calls its handles. This
 * self-pipe design (rather than signalfd) lets several loops in several
 * threads all see one signal, and needs no signal mask discipline from the
 * host program beyond what the pool threads already do (they block all
 * signals, so the kernel delivers to the other threads).
 *
 * The list of loops is read by the handler, so it is guarded by a lock the
 * handler can take: a blocking pipe holding one token. Reading the token
 * takes the lock; writing it back releases it. Both are async-signal-safe.
 * A thread that changes the list blocks every signal while it holds the
 * lock, so the handler can never interrupt its own lock holder.
 *
 * The handler uses the raw write() system call, not the sys layer: fault
 * injection takes a mutex, which a signal handler must not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/loop.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define EDDY__NSIG 65

struct eddy_signal {
  eddy__handle h;
  eddy_signal *prev, *next; /* the loop's signal handles */
  int signum;
  eddy_signal_cb cb;
  void *arg;
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int lock_pipe[2] = {-1, -1};
static int atfork_done;
static eddy__sigloop *loops;
static unsigned process_watch[EDDY__NSIG];
static struct sigaction saved[EDDY__NSIG];

static void lock_release(void) {
  char token = 0;
  while (write(lock_pipe[1], &token, 1) < 0 && errno == EINTR) {
  }
}

static void lock_take(void) {
  char token;
  while (read(lock_pipe[0], &token, 1) < 0 && errno == EINTR) {
  }
}

static int make_lock(void) {
  int err = eddy__sys_pipe2(lock_pipe, O_CLOEXEC);
  if (err)
    return err;
  lock_release();
  return 0;
}

/* In a child after fork() the lock must not be shared with the parent. */
static void lock_after_fork(void) {
  close(lock_pipe[0]);
  close(lock_pipe[1]);
  if (make_lock() != 0)
    lock_pipe[0] = lock_pipe[1] = -1;
}

/* Creates the lock on first use. A failure (EMFILE, say) is not sticky:
 * the next eddy_signal_start() tries again. */
static int ensure_lock(void) {
  int err = 0;
  pthread_mutex_lock(&init_lock);
  if (lock_pipe[0] < 0)
    err = make_lock();
  if (err == 0 && !atfork_done) {
    pthread_atfork(NULL, NULL, lock_after_fork);
    atfork_done = 1;
  }
  pthread_mutex_unlock(&init_lock);
  return err;
}

static void lock_all(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, old);
  lock_take();
}

static void unlock_all(const sigset_t *old) {
  lock_release();
  pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void handler(int signum) {
  int saved_errno = errno;
  unsigned char byte = (unsigned char)signum;
  lock_take();
  for (eddy__sigloop *s = loops; s; s = s->next)
    if (s->watch[signum] > 0 && s->wfd >= 0)
      (void)!write(s->wfd, &byte, 1); /* full pipe: already pending */
  lock_release();
  errno = saved_errno;
}

/* Calls every handle of this loop that watches signum. A callback may close
 * any handle: closed ones stay in memory until the end of the turn and keep
 * their next pointer, so the walk goes on past them. */
static void deliver(eddy_loop *loop, int signum) {
  eddy_signal *h = loop->sig.handles;
  while (h) {
    eddy_signal *next = h->next;
    if (h->signum == signum && !(h->h.flags & EDDY__HANDLE_CLOSING))
      h->cb(h, signum, h->arg);
    h = next;
  }
}

static void pipe_cb(eddy_loop *loop, eddy__io *io, unsigned events) {
  unsigned char buf[64];
  ssize_t n;
  (void)events;
  /* One read per turn: a signal storm cannot hold the loop. */
  n = eddy__sys_read(io->fd, buf, sizeof buf);
  for (ssize_t i = 0; i < n; i++)
    deliver(loop, buf[i]);
}

void eddy__signal_loop_init(eddy_loop *loop) {
  eddy__sigloop *s = &loop->sig;
  memset(s, 0, sizeof *s);
  s->rfd = s->wfd = -1;
}

static int open_pipe(eddy_loop *loop) {
  eddy__sigloop *s = &loop->sig;
  int fds[2];
  int err = eddy__sys_pipe2(fds, O_CLOEXEC | O_NONBLOCK);
  if (err)
    return err;
  eddy__io_init(&s->io, fds[0], pipe_cb, NULL);
  s->io.internal = 1;
  err = eddy__io_start(loop, &s->io, EDDY__IO_READ);
  if (err) {
    eddy__sys_close(fds[0]);
    eddy__sys_close(fds[1]);
    return err;
  }
  s->rfd = fds[0];
  s->wfd = fds[1];
  return 0;
}

static void close_pipe(eddy_loop *loop) {
  eddy__sigloop *s = &loop->sig;
  if (s->rfd < 0)
    return;
  eddy__io_remove(loop, &s->io);
  eddy__sys_close(s->rfd);
  eddy__sys_close(s->wfd);
  s->rfd = s->wfd = -1;
}

void eddy__signal_loop_destroy(eddy_loop *loop) {
  close_pipe(loop);
}

/* Installs the handler for signum if no loop watched it. Lock held. */
static int watch_locked(eddy_loop *loop, int signum) {
  eddy__sigloop *s = &loop->sig;
  if (process_watch[signum] == 0) {
    struct sigaction sa;
    int err;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    err = eddy__sys_sigaction(signum, &sa, &saved[signum]);
    if (err)
      return err;
  }
  process_watch[signum]++;
  s->watch[signum]++;
  if (!s->registered) {
    s->next = loops;
    loops = s;
    s->registered = 1;
  }
  return 0;
}

static void unwatch_locked(eddy_loop *loop, int signum) {
  eddy__sigloop *s = &loop->sig;
  s->watch[signum]--;
  if (--process_watch[signum] == 0)
    (void)eddy__sys_sigaction(signum, &saved[signum], NULL);
  if (s->nhandles == 0 && s->registered) {
    eddy__sigloop **pp = &loops;
    while (*pp != s)
      pp = &(*pp)->next;
    *pp = s->next;
    s->registered = 0;
  }
}

static void signal_close_handle(eddy__handle *h) {
  eddy_signal_close((eddy_signal *)h);
}

static int valid_signal(int signum) {
  return signum > 0 && signum < EDDY__NSIG && signum != SIGKILL &&
         signum != SIGSTOP;
}

int eddy_signal_start(eddy_loop *loop, int signum, eddy_signal_cb cb, void *arg,
                      eddy_signal **out) {
  eddy_signal *h;
  sigset_t old;
  int err;
  if (!valid_signal(signum) || cb == NULL)
    return -EINVAL;
  if ((err = ensure_lock()) != 0)
    return err;
  if (loop->sig.rfd < 0 && (err = open_pipe(loop)) != 0)
    return err;
  h = eddy__malloc(sizeof *h);
  if (h == NULL)
    return -ENOMEM;
  lock_all(&old);
  err = watch_locked(loop, signum);
  unlock_all(&old);
  if (err) {
    eddy__free(h);
    return err;
  }
  eddy__handle_init(loop, &h->h, signal_close_handle);
  h->signum = signum;
  h->cb = cb;
  h->arg = arg;
  h->prev = NULL;
  h->next = loop->sig.handles;
  if (h->next)
    h->next->prev = h;
  loop->sig.handles = h;
  loop->sig.nhandles++;
  *out = h;
  return 0;
}

void eddy_signal_close(eddy_signal *h) {
  eddy_loop *loop = h->h.loop;
  sigset_t old;
  if (eddy__handle_close(&h->h))
    return;
  /* Unlink, but keep h->next: a delivery walk may stand on h. */
  if (h->prev)
    h->prev->next = h->next;
  else
    loop->sig.handles = h->next;
  if (h->next)
    h->next->prev = h->prev;
  loop->sig.nhandles--;
  lock_all(&old);
  unwatch_locked(loop, h->signum);
  unlock_all(&old);
}

/* After fork(): the child's pipe must not be the parent's. */
int eddy__signal_loop_fork(eddy_loop *loop) {
  sigset_t old;
  int err;
  if (loop->sig.rfd < 0)
    return 0;
  lock_all(&old);
  close_pipe(loop);
  err = open_pipe(loop);
  unlock_all(&old);
  return err;
}

/* The number of this loop's open signal handles (they keep it alive). */
unsigned eddy__signal_count(const eddy_loop *loop) {
  return loop->sig.nhandles;
}

void eddy__signal_owned(eddy_signal *h) {
  h->h.flags |= EDDY__HANDLE_OWNED;
}
