/* log.h: the eddy program's log, on standard error. The library itself
 * never prints; the program does, at the level --log-level sets. Logging
 * never blocks the loop (lines are buffered, and dropped and counted when
 * the reader stalls), and every line is printable text: control bytes
 * from outside are escaped (log.c). */
#ifndef EDDY_APP_LOG_H
#define EDDY_APP_LOG_H

#include <stddef.h>

#include "eddy.h"

enum app_log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Returns 0, or -1 for a name that is not a level. */
int app_log_set_level(const char *name);
/* 1 if lines of this level are written (skip work for lines that are not). */
int app_log_enabled(enum app_log_level level);
/* One line (cut at 8 KiB, with " [cut]"); control bytes and invalid UTF-8
 * in the result are escaped (\n, \r, \t, \xNN). */
void app_log(enum app_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* While a loop runs, it writes the log whenever the descriptor can take
 * more (attach once the loop exists; detach before eddy_loop_close_all,
 * which would close the watcher). Returns 0 or a negative code (the log
 * then waits a bounded time per line, as without a loop). */
int app_log_attach(eddy_loop *loop);
void app_log_detach(void);

/* A rate limit for one kind of line (a warning per failed connection):
 * at most APP_LOG_BURST such lines per second; the number suppressed is
 * logged when the next second's first one is. Zero-initialised. */
#define APP_LOG_BURST 10
typedef struct app_log_limit {
  long second;
  unsigned count;
  unsigned long suppressed;
} app_log_limit;
/* 1 if one more line may be logged now (then logs what was suppressed
 * before it, prefixed with who); 0 if it is suppressed and counted. */
int app_log_allow(app_log_limit *l, enum app_log_level level, const char *who);

/* Untrusted text made printable for a log line or a message: the len
 * bytes of src, control bytes and invalid UTF-8 escaped, into dst (cap
 * bytes, NUL-terminated). Returns the bytes of src that fitted. */
size_t app_escape(char *dst, size_t cap, const void *src, size_t len);
/* The same for a string, cut to fit cap with "... (N bytes in all)" when
 * it is longer. Returns dst. */
const char *app_quote(char *dst, size_t cap, const char *s);

#endif
