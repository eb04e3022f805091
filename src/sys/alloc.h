/* alloc.h: eddy's allocator. Every allocation in eddy goes through these;
 * each passes through fault injection (kinds malloc, calloc, realloc). */
#ifndef EDDY_SYS_ALLOC_H
#define EDDY_SYS_ALLOC_H

#include <stddef.h>

void *eddy__malloc(size_t size);
void *eddy__calloc(size_t count, size_t size);
/* On failure returns NULL and leaves ptr untouched, like realloc(). size
 * must not be 0. */
void *eddy__realloc(void *ptr, size_t size);
void eddy__free(void *ptr);

/* Grows an array to hold at least need elements of size elem, doubling;
 * updates *cap. Returns 0 or -ENOMEM (array untouched). */
int eddy__grow(void **array, size_t *cap, size_t need, size_t elem);

#endif
