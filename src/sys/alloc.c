/* alloc.c: the replaceable allocator. */
#include "sys/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "eddy/common.h"
#include "sys/fault.h"

static eddy_allocator allocator = {malloc, calloc, realloc, free};

#ifdef EDDY_FAULTS
static atomic_long live;
long eddy__alloc_live(void) {
  return atomic_load(&live);
}
static void count(long delta) {
  atomic_fetch_add(&live, delta);
}
#else
static void count(long delta) {
  (void)delta;
}
#endif

int eddy_allocator_set(const eddy_allocator *a) {
  static const eddy_allocator libc = {malloc, calloc, realloc, free};
  if (a == NULL) {
    allocator = libc;
    return 0;
  }
  if (!a->malloc || !a->calloc || !a->realloc || !a->free)
    return -EINVAL;
  allocator = *a;
  return 0;
}

void *eddy__malloc(size_t size) {
  void *p;
  if (eddy__fault_check(EDDY__SYS_MALLOC) < 0)
    return NULL;
  p = allocator.malloc(size ? size : 1);
  if (p)
    count(1);
  return p;
}

void *eddy__calloc(size_t n, size_t size) {
  void *p;
  if (eddy__fault_check(EDDY__SYS_CALLOC) < 0)
    return NULL;
  p = allocator.calloc(n ? n : 1, size ? size : 1);
  if (p)
    count(1);
  return p;
}

void *eddy__realloc(void *ptr, size_t size) {
  void *p;
  if (eddy__fault_check(EDDY__SYS_REALLOC) < 0)
    return NULL;
  p = allocator.realloc(ptr, size);
  if (p && ptr == NULL)
    count(1);
  return p;
}

void eddy__free(void *ptr) {
  if (ptr == NULL)
    return;
  count(-1);
  allocator.free(ptr);
}

int eddy__grow(void **array, size_t *cap, size_t need, size_t elem) {
  size_t n = *cap ? *cap : 8;
  void *p;
  if (need <= *cap)
    return 0;
  while (n < need) {
    if (n > SIZE_MAX / 2)
      return -ENOMEM;
    n *= 2;
  }
  if (n > SIZE_MAX / elem)
    return -ENOMEM;
  p = eddy__realloc(*array, n * elem);
  if (p == NULL)
    return -ENOMEM;
  *array = p;
  *cap = n;
  return 0;
}
