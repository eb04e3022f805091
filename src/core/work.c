/* work.c: the loop's thread pool.
 *
 * Each loop owns a pool, started on the first submission. Queued work sits
 * on a list guarded by pool.lock; a thread takes the oldest, runs it, puts
 * it on the pool's done list (same lock) and wakes the loop (wakeup.c); the
 * loop, woken, collects the done list through the wake-up's on_wake hook,
 * calls done and frees the request. A cancelled request takes the same
 * road with status -ECANCELED, so done is never called from inside
 * eddy_work_cancel.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/loop.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define EDDY__POOL_DEFAULT 4
#define EDDY__POOL_MAX 1024

static void list_push(eddy_work **head, eddy_work **tail, eddy_work *w) {
  w->next = NULL;
  w->prev = *tail;
  if (*tail)
    (*tail)->next = w;
  else
    *head = w;
  *tail = w;
}

static void list_unlink(eddy_work **head, eddy_work **tail, eddy_work *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    *head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else if (tail)
    *tail = w->prev;
}

/* With p->lock held: hands w to the loop. The wake-up takes its own lock
 * inside this one; the loop never takes them the other way round. */
static void post_done(eddy_loop *loop, eddy__pool *p, eddy_work *w) {
  w->next = NULL;
  if (p->done_tail)
    p->done_tail->next = w;
  else
    p->done_head = w;
  p->done_tail = w;
  eddy__wakeup_signal(loop);
}

static void *worker(void *arg) {
  eddy__pool *p = arg;
  eddy_work *w;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->shutdown && p->queue_head == NULL)
      pthread_cond_wait(&p->cond, &p->lock);
    if (p->queue_head == NULL)
      break;
    w = p->queue_head;
    list_unlink(&p->queue_head, &p->queue_tail, w);
    w->state = EDDY__WORK_RUNNING;
    w->prev = NULL;
    w->next = p->running;
    if (p->running)
      p->running->prev = w;
    p->running = w;
    pthread_mutex_unlock(&p->lock);

    w->work(w->arg);

    pthread_mutex_lock(&p->lock);
    list_unlink(&p->running, NULL, w);
    w->state = EDDY__WORK_DONE;
    post_done(w->loop, p, w);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static unsigned size_from_env(void) {
  const char *s = getenv("EDDY_THREADPOOL_SIZE");
  long n = s ? strtol(s, NULL, 10) : 0;
  if (n <= 0)
    return EDDY__POOL_DEFAULT;
  return n > EDDY__POOL_MAX ? EDDY__POOL_MAX : (unsigned)n;
}

static void complete(eddy_loop *loop, eddy_work *w) {
  loop->pool.pending--;
  w->done(loop, w->status, w->arg);
  eddy__free(w);
}

/* The wake-up's on_wake: reports the work finished since the last time. */
static void collect(eddy_loop *loop) {
  eddy__pool *p = &loop->pool;
  eddy_work *done;
  pthread_mutex_lock(&p->lock);
  done = p->done_head;
  p->done_head = p->done_tail = NULL;
  pthread_mutex_unlock(&p->lock);
  while (done) {
    eddy_work *next = done->next;
    complete(loop, done);
    done = next;
  }
}

void eddy__pool_init(eddy_loop *loop, unsigned size) {
  eddy__pool *p = &loop->pool;
  loop->wakeup.on_wake = collect;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->threads = NULL;
  p->nthreads = 0;
  p->size = size ? (size > EDDY__POOL_MAX ? EDDY__POOL_MAX : size)
                 : size_from_env();
  p->shutdown = 0;
  p->queue_head = p->queue_tail = p->running = NULL;
  p->done_head = p->done_tail = NULL;
  p->pending = 0;
}

/* Starts the pool's threads. Succeeds if at least one thread runs. */
static int start_threads(eddy__pool *p) {
  int err = 0;
  if (p->threads == NULL) {
    p->threads = eddy__calloc(p->size, sizeof(pthread_t));
    if (p->threads == NULL)
      return -ENOMEM;
  }
  while (p->nthreads < p->size) {
    err = eddy__sys_thread_create(&p->threads[p->nthreads], worker, p);
    if (err)
      break;
    p->nthreads++;
  }
  return p->nthreads > 0 ? 0 : err;
}

int eddy_work_submit(eddy_loop *loop, eddy_work_fn work, eddy_work_done_fn done,
                     void *arg, eddy_work **req) {
  eddy__pool *p = &loop->pool;
  eddy_work *w;
  int err;
  if (work == NULL || done == NULL)
    return -EINVAL;
  if (p->nthreads == 0 && (err = start_threads(p)) != 0)
    return err;
  w = eddy__malloc(sizeof *w);
  if (w == NULL)
    return -ENOMEM;
  w->loop = loop;
  w->work = work;
  w->done = done;
  w->arg = arg;
  w->state = EDDY__WORK_QUEUED;
  w->status = 0;
  pthread_mutex_lock(&p->lock);
  list_push(&p->queue_head, &p->queue_tail, w);
  pthread_cond_signal(&p->cond);
  pthread_mutex_unlock(&p->lock);
  p->pending++;
  if (req)
    *req = w;
  return 0;
}

int eddy_work_cancel(eddy_work *w) {
  eddy__pool *p = &w->loop->pool;
  int queued;
  pthread_mutex_lock(&p->lock);
  queued = w->state == EDDY__WORK_QUEUED;
  if (queued) {
    list_unlink(&p->queue_head, &p->queue_tail, w);
    w->state = EDDY__WORK_DONE;
    w->status = -ECANCELED;
    post_done(w->loop, p, w);
  }
  pthread_mutex_unlock(&p->lock);
  return queued ? 0 : -EBUSY;
}

void eddy__pool_cancel_all(eddy_loop *loop) {
  eddy__pool *p = &loop->pool;
  for (;;) {
    eddy_work *w;
    pthread_mutex_lock(&p->lock);
    w = p->queue_head;
    pthread_mutex_unlock(&p->lock);
    if (w == NULL || eddy_work_cancel(w) != 0)
      break;
  }
}

void eddy__pool_destroy(eddy_loop *loop) {
  eddy__pool *p = &loop->pool;
  pthread_mutex_lock(&p->lock);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  for (unsigned i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  eddy__free(p->threads);
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->lock);
}

/* After fork() only the forking thread exists in the child. Work that was
 * queued or running belongs to threads that are gone: it completes with
 * -ECANCELED. New threads start on the next submission. */
void eddy__pool_fork(eddy_loop *loop) {
  eddy__pool *p = &loop->pool;
  eddy_work *lists[2] = {p->queue_head, p->running};
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->queue_head = p->queue_tail = p->running = NULL;
  p->nthreads = 0;
  for (int i = 0; i < 2; i++) {
    eddy_work *w = lists[i];
    while (w) {
      eddy_work *next = w->next;
      w->state = EDDY__WORK_DONE;
      w->status = -ECANCELED;
      post_done(loop, p, w);
      w = next;
    }
  }
  /* Work the parent had finished but not yet reported is still on the
   * done list; the child's new wake-up descriptor must say so. */
  if (p->done_head)
    eddy__wakeup_signal(loop);
}
