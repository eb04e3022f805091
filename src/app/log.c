/* log.c: timestamped lines on standard error, filtered by level, that
 * never block the loop and never carry raw control bytes.
 *
 * Lines go into one bounded buffer (64 KiB) and are written to the log
 * descriptor when it can take them. While a loop is attached, a watcher
 * writes the buffer out whenever the descriptor is writable; a line that
 * does not fit is dropped and counted, and once there is room again the
 * count itself is logged. So a log reader that stalls (a full pipe, a
 * paused terminal, a stuck log shipper) costs lines, never the server.
 *
 * The descriptor is standard error, reopened through /proc/self/fd/2 when
 * that gives a description of our own (a pipe, a FIFO, a terminal), so
 * that making it non-blocking does not change the shell's or the parent's
 * standard error. A regular file is written directly: a disk write does
 * not wait on a reader. A socket, or a system without /proc, shares the
 * description; its O_NONBLOCK is cleared again at exit.
 *
 * Without a loop (start-up, shut-down) a write that would block waits at
 * most 100 ms for the reader, once: after a wait that ran out, the next
 * lines stay buffered until the reader moves or the loop takes over. */
#include "app/log.h"

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

#define BUF_SIZE 65536
#define LINE_MAX_LEN 8192 /* a longer line is cut */
#define WAIT_MS 100
#define EXIT_WAIT_MS 1000
#define WARN_ROOM 160 /* the dropped-lines note */

static enum app_log_level threshold = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

static struct {
  int fd;           /* where lines go; -1 until first use */
  int shared_flags; /* the O_NONBLOCK we set on a shared description */
  int direct;       /* a regular file: blocking writes, no buffer */
  int stalled;      /* the last wait for the reader ran out */
  size_t len;       /* bytes waiting in buf */
  unsigned long dropped;
  eddy_watch *watch; /* while a loop is attached */
} out = {.fd = -1};
/* Apart from out, whose initialiser would otherwise put 64 KiB of zeros
 * in the program file. */
static char buf[BUF_SIZE];

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

/* ---- The descriptor ---------------------------------------------------------- */

static void restore_shared_flags(void) {
  if (out.shared_flags >= 0)
    (void)fcntl(STDERR_FILENO, F_SETFL, out.shared_flags);
}

static void flush_waiting(int wait_ms);

/* What is still buffered at exit gets one last bounded wait. */
static void flush_at_exit(void) {
  out.stalled = 0;
  flush_waiting(EXIT_WAIT_MS);
}

static void open_output(void) {
  struct stat st;
  int fd, flags;
  out.shared_flags = -1;
  atexit(flush_at_exit);
  if (fstat(STDERR_FILENO, &st) != 0) {
    out.fd = STDERR_FILENO;
    out.direct = 1; /* closed: every write fails at once, nothing waits */
    return;
  }
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    out.fd = STDERR_FILENO;
    out.direct = 1;
    return;
  }
  fd = S_ISSOCK(st.st_mode)
           ? -1
           : open("/proc/self/fd/2",
                  O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0) {
    out.fd = fd;
    return;
  }
  out.fd = STDERR_FILENO;
  flags = fcntl(STDERR_FILENO, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK) &&
      fcntl(STDERR_FILENO, F_SETFL, flags | O_NONBLOCK) == 0) {
    out.shared_flags = flags;
    atexit(restore_shared_flags);
  }
}

/* Writes what the buffer holds, without blocking (or blocking on a regular
 * file). Returns 0, or -1 if bytes are left because the descriptor would
 * block. A descriptor that fails otherwise (the reader is gone) takes
 * nothing more: the bytes are dropped. */
static int flush_some(void) {
  size_t done = 0;
  int rc = 0;
  while (done < out.len) {
    ssize_t n = write(out.fd, buf + done, out.len - done);
    if (n > 0) {
      done += (size_t)n;
      out.stalled = 0;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      rc = -1;
      break;
    } else {
      done = out.len; /* lost for good: nobody can read it */
    }
  }
  memmove(buf, buf + done, out.len - done);
  out.len -= done;
  return rc;
}

/* Without a loop: a bounded wait for the reader (see the top). */
static void flush_waiting(int wait_ms) {
  struct pollfd p = {.fd = out.fd, .events = POLLOUT};
  while (out.len > 0 && flush_some() != 0) {
    if (out.stalled || poll(&p, 1, wait_ms) <= 0) {
      out.stalled = 1;
      return;
    }
  }
}

static void on_writable(eddy_watch *w, int events, void *arg) {
  (void)events;
  (void)arg;
  if (flush_some() == 0 || out.len == 0)
    (void)eddy_watch_start(w, 0);
}

/* Starts writing what is buffered, with the loop or without it. */
static void kick(void) {
  if (out.len == 0)
    return;
  if (out.watch == NULL) {
    flush_waiting(WAIT_MS);
    return;
  }
  if (flush_some() != 0 && eddy_watch_start(out.watch, EDDY_WRITABLE) != 0)
    flush_waiting(0); /* cannot watch: keep what does not go at once */
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

/* Appends a whole line to the buffer, or counts it as dropped. */
static void put(const char *line, size_t len) {
  if (out.len + len > BUF_SIZE) {
    out.dropped++;
    return;
  }
  memcpy(buf + out.len, line, len);
  out.len += len;
}

/* The count of dropped lines, as soon as there is room to say it. */
static void note_dropped(void) {
  char line[160];
  size_t n;
  if (out.dropped == 0 || WARN_ROOM > BUF_SIZE - out.len)
    return;
  n = stamp(line, sizeof line, LOG_WARN);
  n += (size_t)snprintf(line + n, sizeof line - n,
                        "log: %lu line(s) dropped: the log output was not "
                        "read fast enough\n",
                        out.dropped);
  out.dropped = 0;
  put(line, n);
}

void app_log(enum app_log_level level, const char *fmt, ...) {
  static char text[LINE_MAX_LEN], line[LINE_MAX_LEN * 4 + 128];
  va_list ap;
  size_t n, tlen;
  int len;
  if (level > threshold)
    return;
  if (out.fd < 0)
    open_output();
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
  put(line, n);
  kick();
}

/* ---- The loop ---------------------------------------------------------------- */

int app_log_attach(eddy_loop *loop) {
  int e;
  if (out.fd < 0)
    open_output();
  if (out.direct || out.watch)
    return 0;
  e = eddy_watch_new(loop, out.fd, on_writable, NULL, &out.watch);
  if (e == 0)
    kick();
  return e;
}

void app_log_detach(void) {
  if (out.watch == NULL)
    return;
  eddy_watch_close(out.watch);
  out.watch = NULL;
  out.stalled = 0; /* one more bounded wait, for what is left */
  kick();
}

unsigned long app_log_dropped(void) {
  return out.dropped;
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
