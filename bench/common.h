/* bench/common.h: the measuring helpers every benchmark program shares, so
 * that eddy and its peers (libuv, nginx's load) are timed by the same code:
 * the clocks, the CPU time of this process or of a server by pid, a
 * server's resident memory, and the output format ("name value" per line,
 * which bench/lib.sh reads). Header-only: each program is one file plus
 * this, compiled by its run.sh with plain cc. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* What die() prefixes its message with ("client", "tls client"), and what
 * it calls before exiting (the TLS client prints OpenSSL's error queue). */
static const char *bench_name = "bench";
static void (*bench_on_die)(void);

/* Prints "name: message" and exits 1. */
__attribute__((format(printf, 1, 2), noreturn, unused)) static void
die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", bench_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  if (bench_on_die)
    bench_on_die();
  exit(1);
}

static inline int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall time for intervals. */
static inline int64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* This process's CPU time (all threads), without its children's. */
static inline int64_t cpu_ns(void) {
  return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* This process's user + system time in seconds, from getrusage. */
static inline double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Another process's user + system time in seconds, from /proc/PID/stat;
 * dies if the process is gone (a server that crashed mid-run). */
static inline double proc_cpu_s(long pid) {
  char path[64], buf[2048], *p;
  unsigned long long ut = 0, st = 0;
  FILE *f;
  size_t n;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if ((f = fopen(path, "r")) == NULL)
    die("%s: %s (did the server die?)", path, strerror(errno));
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* The fields after the command name, which may hold spaces: utime is
   * field 14, stime 15. */
  if ((p = strrchr(buf, ')')) == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    die("cannot parse %s", path);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Another process's resident memory in KiB, from /proc/PID/status. */
static inline long proc_rss_kb(long pid) {
  char path[64], line[256];
  long kb = -1;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  if ((f = fopen(path, "r")) == NULL)
    die("%s: %s (did the server die?)", path, strerror(errno));
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  if (kb < 0)
    die("no VmRSS in %s", path);
  return kb;
}

/* One result line: "name value", exact for counts and nanoseconds. */
static inline void put_int(const char *name, int64_t v) {
  printf("%s %" PRId64 "\n", name, v);
}

/* One result line for a measured rate or ratio, with the optional tag
 * ("eddy_", "uv_") that lets one client serve several servers. */
static const char *put_tag = "";
static inline void put(const char *name, double v) {
  printf("%s%s%s %.6g\n", put_tag, *put_tag ? "_" : "", name, v);
}

#endif
