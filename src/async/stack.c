/* stack.c: coroutine stacks and the stack overflow report.
 *
 * Each stack is one mmap(): a PROT_NONE guard page at the bottom (stacks
 * grow down) and the usable pages above it. The kernel backs a page only
 * when it is first touched, so a 64 KiB stack costs what its coroutine's
 * deepest call used. Finished coroutines' stacks wait in a per-thread pool
 * (a few per size) for the next spawn, so a server that makes a coroutine
 * per connection maps a stack only when its number of connections grows.
 * A reused stack keeps the pages its last coroutine touched: that memory
 * is the price of not mapping again.
 *
 * Overflow: a coroutine that runs off the bottom of its stack faults on
 * the guard page. The SIGSEGV handler runs on an alternate signal stack
 * (the faulting stack has no room left) and looks whether the address lies
 * in the guard page of the coroutine running on this thread; if so it
 * writes one line with write(2), restores the default action and returns,
 * so that the faulting instruction runs again and the process dies of
 * SIGSEGV, as it would have without eddy, with the reason on stderr. Any
 * other fault goes to the handler that was there before eddy's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "async/stack.h"
#include "eddy/coro.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDDY__ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EDDY__ASAN)
#define EDDY__ASAN 1
#endif
#ifdef EDDY__ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Stacks kept per thread, of any sizes: a 64 KiB stack that a coroutine
 * used lightly costs a few pages of memory, and mapping one anew costs two
 * system calls and a page fault (bench/coro: eddy_spawn_ns). */
#define POOL_MAX 64

static _Thread_local eddy__stack pool[POOL_MAX];
static _Thread_local int pool_len;
static _Thread_local const eddy__stack *running;

/* The page size and the default stack size, found once per process. */
static size_t page_bytes, default_stack;
static pthread_once_t sizes_once = PTHREAD_ONCE_INIT;

/* $EDDY_CORO_STACK_SIZE (bytes) if set to a number, else
 * EDDY_CORO_STACK_DEFAULT. */
static void find_sizes(void) {
  const char *env = getenv("EDDY_CORO_STACK_SIZE");
  char *end;
  unsigned long long v = env ? strtoull(env, &end, 10) : 0;
  page_bytes = (size_t)sysconf(_SC_PAGESIZE);
  default_stack = env && *env && *end == '\0' && v > 0
                      ? (size_t)v
                      : EDDY_CORO_STACK_DEFAULT;
}

/* Set before any stack exists, so the signal handler reads it safely. */
static size_t page_size(void) {
  pthread_once(&sizes_once, find_sizes);
  return page_bytes;
}

size_t eddy__stack_round(size_t size) {
  size_t page = page_size();
  if (size == 0)
    size = default_stack;
  if (size < EDDY_CORO_STACK_MIN)
    size = EDDY_CORO_STACK_MIN;
  return (size + page - 1) / page * page;
}

static void unmap(eddy__stack *s) {
  munmap(s->lo - page_size(), s->size + page_size());
}

int eddy__stack_get(size_t size, eddy__stack *s) {
  size_t page = page_size();
  char *map;
  for (int i = pool_len - 1; i >= 0; i--) {
    if (pool[i].size == size) {
      *s = pool[i];
      pool[i] = pool[--pool_len];
#ifdef EDDY__ASAN
      /* Frames of the stack's last coroutine may still be poisoned. */
      __asan_unpoison_memory_region(s->lo, s->size);
#endif
      return 0;
    }
  }
  map = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED)
    return -ENOMEM;
  if (mprotect(map, page, PROT_NONE) != 0) {
    munmap(map, size + page);
    return -ENOMEM;
  }
  s->lo = map + page;
  s->size = size;
  return 0;
}

void eddy__stack_put(eddy__stack *s) {
#ifdef EDDY__ASAN
  __asan_unpoison_memory_region(s->lo, s->size);
#endif
  if (pool_len < POOL_MAX)
    pool[pool_len++] = *s;
  else
    unmap(s);
  s->lo = NULL;
}

void eddy__stack_running(const eddy__stack *s) {
  running = s;
}

/* ---- The overflow handler ---------------------------------------------------- */

static struct sigaction previous;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_err;

/* Decimal digits of v into buf (async-signal-safe); returns the length. */
static size_t format_size(char *buf, size_t v) {
  char tmp[24];
  size_t n = 0, len = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0)
    buf[len++] = tmp[--n];
  return len;
}

static void report_overflow(size_t size) {
  static const char head[] = "eddy: coroutine stack overflow (stack size ";
  char msg[sizeof head + 32];
  size_t len = sizeof head - 1;
  ssize_t w;
  memcpy(msg, head, len);
  len += format_size(msg + len, size);
  msg[len++] = ')';
  msg[len++] = '\n';
  w = write(2, msg, len);
  (void)w;
}

/* The previous handler's turn, as the kernel would have called it. */
static void chain(int sig, siginfo_t *info, void *uctx) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != NULL) {
      previous.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  /* The default action: restored, and the fault happens again on return. */
  signal(sig, SIG_DFL);
}

static void on_segv(int sig, siginfo_t *info, void *uctx) {
  const eddy__stack *s = running;
  uintptr_t addr = (uintptr_t)info->si_addr;
  if (s != NULL && addr >= (uintptr_t)s->lo - page_bytes &&
      addr < (uintptr_t)s->lo) {
    report_overflow(s->size);
    signal(sig, SIG_DFL);
    return;
  }
  chain(sig, info, uctx);
}

static _Thread_local int altstack_ready;

/* An alternate signal stack for this thread, unless it has one. The
 * mapping lives as long as the thread (a handler may need it at any time
 * until then); a thread that ends leaves it mapped, which is one small
 * mapping per thread that ever ran a coroutine. */
static int altstack_setup(void) {
  stack_t ss, old;
  size_t size = 64 * 1024;
  void *map;
  if (altstack_ready)
    return 0;
  if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) {
    altstack_ready = 1;
    return 0;
  }
  map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
  if (map == MAP_FAILED)
    return -ENOMEM;
  ss.ss_sp = map;
  ss.ss_size = size;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, NULL) != 0) {
    int err = -errno;
    munmap(map, size);
    return err;
  }
  altstack_ready = 1;
  return 0;
}

static void install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &previous) != 0)
    handler_err = -errno;
}

int eddy__stack_overflow_setup(void) {
  pthread_once(&handler_once, install_handler);
  if (handler_err != 0)
    return handler_err;
  return altstack_setup();
}

int eddy_coro_install_overflow_handler(void) {
  return eddy__stack_overflow_setup();
}
