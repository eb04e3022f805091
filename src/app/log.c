/* log.c: timestamped lines on standard error, filtered by level, that
 * never block the loop (they go through a sink, sink.c: a stalled reader
 * costs lines, which are counted and the count logged, never the server)
 * and never carry raw control bytes. */
#include "app/log.h"
#include "app/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 8192 /* a longer line is cut */
#define WARN_ROOM 160     /* the dropped-lines note */

static enum app_log_level threshold = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

static app_sink *err_sink;

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

/* ---- Escaping ------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (at most n bytes) that is
 * not a C1 control character, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len;
  unsigned cp;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    len = 2, cp = s[0] & 0x1fu;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    len = 3, cp = s[0] & 0x0fu;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    len = 4, cp = s[0] & 0x07u;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3fu);
  }
  if ((len == 3 && cp < 0x800) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
    return 0;
  return len;
}

/* Escapes one unit of s (a byte, or a UTF-8 sequence) into o, which has
 * room for at least 4 bytes. Returns the bytes of s taken; *olen gets the
 * bytes written. */
static size_t escape_one(const unsigned char *s, size_t n, char *o,
                         size_t *olen) {
  static const char hex[] = "0123456789abcdef";
  size_t u;
  if (s[0] >= 0x20 && s[0] < 0x7f) {
    o[0] = (char)s[0];
    *olen = 1;
    return 1;
  }
  if (s[0] >= 0x80 && (u = utf8_len(s, n)) > 0) {
    memcpy(o, s, u);
    *olen = u;
    return u;
  }
  o[0] = '\\';
  if (s[0] == '\n' || s[0] == '\r' || s[0] == '\t') {
    o[1] = s[0] == '\n' ? 'n' : s[0] == '\r' ? 'r' : 't';
    *olen = 2;
    return 1;
  }
  o[1] = 'x';
  o[2] = hex[s[0] >> 4];
  o[3] = hex[s[0] & 15];
  *olen = 4;
  return 1;
}

size_t app_escape(char *dst, size_t cap, const void *src, size_t len) {
  const unsigned char *s = src;
  size_t i = 0, o = 0;
  /* Room for the longest unit (4) and the terminating NUL. */
  while (i < len && o + 5 <= cap) {
    size_t w;
    i += escape_one(s + i, len - i, dst + o, &w);
    o += w;
  }
  if (cap > 0)
    dst[o] = '\0';
  return i;
}

const char *app_quote(char *dst, size_t cap, const char *s) {
  size_t len = strlen(s), taken;
  char tail[48];
  int tlen;
  /* Keep room for the tail that says how much was cut. */
  tlen = snprintf(tail, sizeof tail, "... (%zu bytes in all)", len);
  if (cap <= (size_t)tlen + 5) {
    if (cap > 0)
      dst[0] = '\0';
    return dst;
  }
  taken = app_escape(dst, cap, s, len);
  if (taken < len) {
    taken = app_escape(dst, cap - (size_t)tlen, s, len);
    strcat(dst, tail);
  }
  return dst;
}

/* ---- Lines ------------------------------------------------------------------- */

static size_t stamp(char *line, size_t cap, enum app_log_level level) {
  char when[32];
  struct timespec ts;
  struct tm tm;
  int n;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  n = snprintf(line, cap, "%s.%03ldZ %s: ", when, ts.tv_nsec / 1000000,
               names[level]);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* The count of dropped lines, as soon as there is room to say it. */
static void note_dropped(void) {
  char line[160];
  size_t n;
  unsigned long dropped;
  if (app_sink_room(err_sink) < WARN_ROOM ||
      (dropped = app_sink_take_dropped(err_sink)) == 0)
    return;
  n = stamp(line, sizeof line, LOG_WARN);
  n += (size_t)snprintf(line + n, sizeof line - n,
                        "log: %lu line(s) dropped: the log output was not "
                        "read fast enough\n",
                        dropped);
  (void)app_sink_put(err_sink, line, n);
}

void app_log(enum app_log_level level, const char *fmt, ...) {
  static char text[LINE_MAX_LEN], line[LINE_MAX_LEN * 4 + 128];
  va_list ap;
  size_t n, tlen;
  int len;
  if (level > threshold)
    return;
  if (err_sink == NULL && app_sink_open_fd(STDERR_FILENO, &err_sink) != 0)
    return;
  va_start(ap, fmt);
  len = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (len < 0)
    return;
  tlen = (size_t)len < sizeof text ? (size_t)len : sizeof text - 1;
  n = stamp(line, sizeof line, level);
  /* Whatever the arguments held, one line of printable text. */
  (void)app_escape(line + n, sizeof line - n - 16, text, tlen);
  n += strlen(line + n);
  if ((size_t)len > tlen)
    n += (size_t)snprintf(line + n, sizeof line - n, " [cut]");
  line[n++] = '\n';
  note_dropped();
  (void)app_sink_put(err_sink, line, n);
  app_sink_flush(err_sink);
}

/* ---- The loop ---------------------------------------------------------------- */

int app_log_attach(eddy_loop *loop) {
  if (err_sink == NULL && app_sink_open_fd(STDERR_FILENO, &err_sink) != 0)
    return -ENOMEM;
  return app_sink_attach_all(loop);
}

void app_log_detach(void) {
  app_sink_detach_all();
}

int app_log_allow(app_log_limit *l, enum app_log_level level, const char *who) {
  struct timespec ts;
  if (level > threshold)
    return 0;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (ts.tv_sec != l->second) {
    l->second = ts.tv_sec;
    l->count = 0;
    if (l->suppressed > 0)
      app_log(level, "%s: %lu similar line(s) suppressed", who, l->suppressed);
    l->suppressed = 0;
  }
  if (l->count >= APP_LOG_BURST) {
    l->suppressed++;
    return 0;
  }
  l->count++;
  return 1;
}
