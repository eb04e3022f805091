/* log.h: the eddy program's log, on standard error. The library itself
 * never prints; the program does, at the level --log-level sets. */
#ifndef EDDY_APP_LOG_H
#define EDDY_APP_LOG_H

enum app_log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Returns 0, or -1 for a name that is not a level. */
int app_log_set_level(const char *name);
/* 1 if lines of this level are written (skip work for lines that are not). */
int app_log_enabled(enum app_log_level level);
void app_log(enum app_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
