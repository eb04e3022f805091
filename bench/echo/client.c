/* client.c: the load generator of the echo benchmark (see run.sh).
 *
 *   client wait       --port P
 *       connects until the server answers (at most 5 s), then exits 0.
 *   client throughput --port P --pid PID [--seconds T] [--tag NAME]
 *       one connection; sends without pause while reading the echoes.
 *   client pingpong   --port P --pid PID --conns N [--seconds T] [--tag NAME]
 *       N connections, each with one 64-byte message in flight: send it,
 *       wait for its whole echo, send the next.
 *   client idle       --port P --pid PID --conns N [--tag NAME]
 *       opens N connections that stay idle and measures the server's memory.
 *
 * The timed modes run a warm-up (0.5 s) first; the measured interval
 * follows, and at its two ends the client reads the server's CPU time
 * (utime + stime of /proc/PID/stat) itself, so that the interval measured
 * is exactly the one the work was counted in. Output is "TAG_key value" per
 * line. Every wait is bounded; any failure (a refused connect, a wrong or
 * missing echo, a closed connection, a deadline passed) prints a reason and
 * exits 1.
 *
 * The client is built to cost little per byte and per message: epoll,
 * non-blocking sockets, 256 KiB reads and writes for throughput, one recv
 * and one send per round trip. It closes with a reset (SO_LINGER 0) so that
 * no run leaves thousands of sockets in TIME_WAIT for the next. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"

#define WARMUP_NS 500000000LL
#define MSG_SIZE 64
#define TP_CHUNK (256 * 1024)
#define PATTERN 251 /* prime: the echo of any offset is checkable */
#define MAX_EVENTS 1024

static int port;
static long server_pid;
static double seconds = 3;
static int nconns;

static int ms_until(int64_t deadline) {
  int64_t left = deadline - mono_ns();
  if (left <= 0)
    return 0;
  return (int)((left + 999999) / 1000000);
}

/* Connects to 127.0.0.1:port, waiting at most until deadline. Returns a
 * non-blocking descriptor, or -errno. */
static int tcp_connect(int64_t deadline) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, err = 0;
  socklen_t len = sizeof err;
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    if (errno != EINPROGRESS) {
      err = errno;
      close(fd);
      return -err;
    }
    do
      r = poll(&p, 1, ms_until(deadline));
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      close(fd);
      return -ETIMEDOUT;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close(fd);
      return -(err ? err : EIO);
    }
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int must_connect(int64_t deadline) {
  int fd = tcp_connect(deadline);
  if (fd < 0)
    die("connect to 127.0.0.1:%d: %s", port, strerror(-fd));
  return fd;
}

/* Closes with a reset: no TIME_WAIT left behind. */
static void close_rst(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

static void raise_nofile(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("getrlimit: %s", strerror(errno));
  if (rl.rlim_cur < (rlim_t)need) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)need
                      ? (rlim_t)need
                      : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      die("setrlimit(RLIMIT_NOFILE, %d): %s", need, strerror(errno));
  }
  if (rl.rlim_cur < (rlim_t)need)
    die("need %d descriptors, the hard limit is %llu", need,
        (unsigned long long)rl.rlim_max);
}

static int epoll_new(void) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1: %s", strerror(errno));
  return ep;
}

static void epoll_add(int ep, int fd, uint32_t events, uint32_t id) {
  struct epoll_event ev = {.events = events, .data.u32 = id};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
}

/* ---- wait ------------------------------------------------------------------ */

static int mode_wait(void) {
  int64_t deadline = mono_ns() + 5000000000LL;
  for (;;) {
    int fd = tcp_connect(deadline);
    if (fd >= 0) {
      close_rst(fd);
      return 0;
    }
    if (fd != -ECONNREFUSED || mono_ns() >= deadline)
      die("server on 127.0.0.1:%d not answering: %s", port, strerror(-fd));
    usleep(10000);
  }
}

/* ---- throughput ------------------------------------------------------------ */

static int mode_throughput(void) {
  static char out[TP_CHUNK + PATTERN], in[TP_CHUNK], want[TP_CHUNK + PATTERN];
  int64_t start, t0, t1, now;
  uint64_t sent = 0, got = 0, got0 = 0;
  double cpu0 = 0, cpu1, self0 = 0;
  int measuring = 0;
  int fd, ep;
  struct epoll_event evs[4];

  for (size_t i = 0; i < sizeof out; i++)
    out[i] = want[i] = (char)(i % PATTERN);
  start = mono_ns();
  fd = must_connect(start + 5000000000LL);
  ep = epoll_new();
  epoll_add(ep, fd, EPOLLIN | EPOLLOUT, 0);
  t0 = start + WARMUP_NS;
  t1 = t0 + (int64_t)(seconds * 1e9);
  for (;;) {
    int n = epoll_wait(ep, evs, 4, measuring ? ms_until(t1) : ms_until(t0));
    if (n < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (int k = 0; k < 8; k++) {
          ssize_t r = recv(fd, in, sizeof in, 0);
          if (r > 0) {
            /* Check the echo during the warm-up only: the check is not
             * the client's job while it is being timed. */
            if (!measuring &&
                memcmp(in, want + got % PATTERN, (size_t)r) != 0)
              die("throughput: the echo differs from what was sent");
            got += (uint64_t)r;
            if ((size_t)r < sizeof in)
              break;
          } else if (r == 0) {
            die("throughput: the server closed the connection");
          } else if (errno == EAGAIN || errno == EINTR) {
            break;
          } else {
            die("throughput: recv: %s", strerror(errno));
          }
        }
      }
      if (evs[i].events & EPOLLOUT) {
        ssize_t w = send(fd, out + sent % PATTERN, TP_CHUNK, MSG_NOSIGNAL);
        if (w > 0)
          sent += (uint64_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
          die("throughput: send: %s", strerror(errno));
      }
    }
    now = mono_ns();
    if (!measuring && now >= t0) {
      if (got == 0)
        die("throughput: no echo during the warm-up");
      measuring = 1;
      got0 = got;
      cpu0 = proc_cpu_s(server_pid);
      self0 = self_cpu_s();
      t0 = now;
      t1 = now + (int64_t)(seconds * 1e9);
    } else if (measuring && now >= t1) {
      double secs, mb;
      cpu1 = proc_cpu_s(server_pid);
      secs = (double)(now - t0) / 1e9;
      mb = (double)(got - got0) / 1e6;
      if (mb <= 0)
        die("throughput: nothing echoed");
      put("mb_s", mb / secs);
      put("cpu_us_per_mb", (cpu1 - cpu0) * 1e6 / mb);
      put("server_cpu_pct", 100 * (cpu1 - cpu0) / secs);
      put("client_cpu_pct", 100 * (self_cpu_s() - self0) / secs);
      break;
    }
  }
  close_rst(fd);
  close(ep);
  return 0;
}

/* ---- ping-pong ------------------------------------------------------------- */

typedef struct pp_conn {
  int fd;
  unsigned got; /* bytes of the current message echoed so far */
  unsigned char seq;
} pp_conn;

static void pp_send(pp_conn *c) {
  char msg[MSG_SIZE];
  ssize_t w;
  memset(msg, (char)c->seq, sizeof msg);
  w = send(c->fd, msg, sizeof msg, MSG_NOSIGNAL);
  if (w != (ssize_t)sizeof msg)
    die("pingpong: send: %s", w < 0 ? strerror(errno) : "short write");
  c->got = 0;
}

static int mode_pingpong(void) {
  pp_conn *conns;
  struct epoll_event evs[MAX_EVENTS];
  char buf[4096];
  int64_t start, t0, t1, now;
  uint64_t rts = 0, rts0 = 0;
  double cpu0 = 0, cpu1, self0 = 0;
  int measuring = 0, ep;

  if (nconns < 1)
    die("pingpong needs --conns N (N >= 1)");
  raise_nofile(nconns + 64);
  conns = calloc((size_t)nconns, sizeof *conns);
  if (conns == NULL)
    die("out of memory");
  ep = epoll_new();
  start = mono_ns();
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = must_connect(start + 10000000000LL);
    epoll_add(ep, conns[i].fd, EPOLLIN, (uint32_t)i);
  }
  for (int i = 0; i < nconns; i++)
    pp_send(&conns[i]);
  start = mono_ns();
  t0 = start + WARMUP_NS;
  t1 = t0 + (int64_t)(seconds * 1e9);
  for (;;) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, ms_until(measuring ? t1 : t0));
    if (n < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      pp_conn *c = &conns[evs[i].data.u32];
      ssize_t r = recv(c->fd, buf, sizeof buf, 0);
      if (r > 0) {
        if (c->got + (size_t)r > MSG_SIZE || buf[0] != (char)c->seq ||
            buf[r - 1] != (char)c->seq)
          die("pingpong: the echo differs from what was sent");
        c->got += (unsigned)r;
        if (c->got == MSG_SIZE) {
          rts++;
          c->seq++;
          pp_send(c);
        }
      } else if (r == 0) {
        die("pingpong: the server closed a connection");
      } else if (errno != EAGAIN && errno != EINTR) {
        die("pingpong: recv: %s", strerror(errno));
      }
    }
    now = mono_ns();
    if (!measuring && now >= t0) {
      if (rts == 0)
        die("pingpong: no round trip during the warm-up");
      measuring = 1;
      rts0 = rts;
      cpu0 = proc_cpu_s(server_pid);
      self0 = self_cpu_s();
      t0 = now;
      t1 = now + (int64_t)(seconds * 1e9);
    } else if (measuring && now >= t1) {
      double secs = (double)(now - t0) / 1e9, count = (double)(rts - rts0);
      cpu1 = proc_cpu_s(server_pid);
      if (count <= 0)
        die("pingpong: no round trip measured");
      put("rt_s", count / secs);
      put("cpu_us_per_rt", (cpu1 - cpu0) * 1e6 / count);
      put("server_cpu_pct", 100 * (cpu1 - cpu0) / secs);
      put("client_cpu_pct", 100 * (self_cpu_s() - self0) / secs);
      break;
    }
  }
  for (int i = 0; i < nconns; i++)
    close_rst(conns[i].fd);
  close(ep);
  free(conns);
  return 0;
}

/* ---- idle ------------------------------------------------------------------ */

/* Sends one byte on each of fds[0..n) and waits for every echo: the proof
 * that the server accepted and watches every connection. */
static void ping_all(const int *fds, int n, int64_t deadline) {
  struct epoll_event evs[MAX_EVENTS];
  int ep = epoll_new(), left = n;
  char c = 'x', buf[16];
  for (int i = 0; i < n; i++) {
    epoll_add(ep, fds[i], EPOLLIN, (uint32_t)i);
    if (send(fds[i], &c, 1, MSG_NOSIGNAL) != 1)
      die("idle: send: %s", strerror(errno));
  }
  while (left > 0) {
    int k = epoll_wait(ep, evs, MAX_EVENTS, ms_until(deadline));
    if (k < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    if (k == 0 && mono_ns() >= deadline)
      die("idle: %d of %d connections not echoed in time", left, n);
    for (int i = 0; i < k; i++) {
      int fd = fds[evs[i].data.u32];
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r == 1 && buf[0] == c) {
        left--;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      } else if (r >= 0 || (errno != EAGAIN && errno != EINTR)) {
        die("idle: bad echo (%zd bytes): %s", r, r < 0 ? strerror(errno) : "");
      }
    }
  }
  close(ep);
}

static int mode_idle(void) {
  int *fds;
  int warm;
  int64_t start, deadline;
  long rss0, rss1;
  double cpu0, cpu1, secs;

  if (nconns < 1)
    die("idle needs --conns N (N >= 1)");
  raise_nofile(nconns + 64);
  fds = calloc((size_t)nconns, sizeof *fds);
  if (fds == NULL)
    die("out of memory");
  deadline = mono_ns() + 30000000000LL;
  /* One connection first, kept open: whatever the server sets up once
   * (its read buffer, tables) is then in the "before" figure. */
  warm = must_connect(deadline);
  ping_all(&warm, 1, deadline);
  usleep(100000);
  rss0 = proc_rss_kb(server_pid);
  cpu0 = proc_cpu_s(server_pid);
  start = mono_ns();
  for (int i = 0; i < nconns; i++)
    fds[i] = must_connect(deadline);
  ping_all(fds, nconns, deadline);
  secs = (double)(mono_ns() - start) / 1e9;
  cpu1 = proc_cpu_s(server_pid);
  usleep(200000); /* let the server settle */
  rss1 = proc_rss_kb(server_pid);
  put("kb_per_conn", (double)(rss1 - rss0) / nconns);
  put("rss_before_kb", (double)rss0);
  put("rss_after_kb", (double)rss1);
  put("setup_cpu_us_per_conn", (cpu1 - cpu0) * 1e6 / nconns);
  put("setup_conn_s", nconns / secs);
  for (int i = 0; i < nconns; i++)
    close_rst(fds[i]);
  close_rst(warm);
  free(fds);
  return 0;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: client wait --port P\n"
          "       client throughput --port P --pid PID [--seconds T] [--tag NAME]\n"
          "       client pingpong --port P --pid PID --conns N [--seconds T] [--tag NAME]\n"
          "       client idle --port P --pid PID --conns N [--tag NAME]\n");
  exit(2);
}

int main(int argc, char **argv) {
  bench_name = "client";
  const char *mode;
  if (argc < 2)
    usage();
  mode = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      usage();
    if (strcmp(a, "--port") == 0)
      port = atoi(v);
    else if (strcmp(a, "--pid") == 0)
      server_pid = atol(v);
    else if (strcmp(a, "--seconds") == 0)
      seconds = atof(v);
    else if (strcmp(a, "--conns") == 0)
      nconns = atoi(v);
    else if (strcmp(a, "--tag") == 0)
      put_tag = v;
    else
      usage();
    i++;
  }
  if (port <= 0 || port > 65535)
    usage();
  if (strcmp(mode, "wait") == 0)
    return mode_wait();
  if (server_pid <= 0 || !(seconds > 0 && seconds <= 60))
    usage();
  if (strcmp(mode, "throughput") == 0)
    return mode_throughput();
  if (strcmp(mode, "pingpong") == 0)
    return mode_pingpong();
  if (strcmp(mode, "idle") == 0)
    return mode_idle();
  usage();
  return 2;
}
