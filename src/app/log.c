/* log.c: timestamped lines on standard error, filtered by level. */
#include "app/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum app_log_level threshold = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

int app_log_set_level(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      threshold = (enum app_log_level)i;
      return 0;
    }
  return -1;
}

int app_log_enabled(enum app_log_level level) {
  return level <= threshold;
}

void app_log(enum app_log_level level, const char *fmt, ...) {
  char stamp[32];
  struct timespec ts;
  struct tm tm;
  va_list ap;
  if (level > threshold)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(stderr, "%s.%03ldZ %s: ", stamp, ts.tv_nsec / 1000000, names[level]);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}
