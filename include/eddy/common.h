/* eddy/common.h: error codes, the replaceable allocator, version.
 *
 * Every eddy function that can fail returns an int: 0 (or a count) on
 * success, a negative code on failure. System errors are negative errno
 * values (-ECONNREFUSED). eddy's own codes lie below every errno value.
 */
#ifndef EDDY_COMMON_H
#define EDDY_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EDDY_BUILDING) && defined(__GNUC__)
#define EDDY_API __attribute__((visibility("default")))
#else
#define EDDY_API
#endif

/* eddy's own error codes: X(name, value, description). */
#define EDDY_ERRNO_MAP(X)                                                      \
  X(EDDY_ECLOSED, -5001, "handle is closed")                                   \
  X(EDDY_EBACKEND, -5002, "unknown loop backend")                              \
  X(EDDY_ERESOLVE, -5003, "name resolution failed")                            \
  X(EDDY_ETLS, -5004, "TLS error")                                             \
  X(EDDY_ETRUNCATED, -5005, "connection closed without TLS close_notify")      \
  X(EDDY_EPARSE, -5006, "malformed input")                                     \
  X(EDDY_ETOOLONG, -5007, "line too long")                                     \
  X(EDDY_EHTTP, -5008, "malformed HTTP message")

enum {
#define EDDY__ERR_ENUM(name, value, text) name = value,
  EDDY_ERRNO_MAP(EDDY__ERR_ENUM)
#undef EDDY__ERR_ENUM
      EDDY_E__LAST = -6000
};

/* A human-readable text for code: strerror() for system errors, eddy's own
 * description otherwise. Never NULL; the string is static. */
EDDY_API const char *eddy_strerror(int code);

/* The symbolic name of code ("ECONNREFUSED", "EDDY_ETLS"); "EUNKNOWN" for a
 * code eddy does not know. Never NULL; the string is static. */
EDDY_API const char *eddy_errname(int code);

/* The allocator every eddy allocation goes through. All four functions must
 * be given. Set it before creating the first loop; changing it while eddy
 * memory is live is undefined. Passing NULL restores the C library's. */
typedef struct eddy_allocator {
  void *(*malloc)(size_t size);
  void *(*calloc)(size_t count, size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void (*free)(void *ptr);
} eddy_allocator;

/* Returns 0, or -EINVAL if a function pointer is missing. */
EDDY_API int eddy_allocator_set(const eddy_allocator *allocator);

/* "0.1.0" */
EDDY_API const char *eddy_version(void);

#ifdef __cplusplus
}
#endif
#endif
