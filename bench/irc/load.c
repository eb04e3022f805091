/* bench/irc/load.c: the IRC load generator, one thread, epoll, libc only.
 *
 *   load PORT PID CLIENTS PER_CHANNEL INTERVAL_MS WARMUP_S SECONDS
 *
 * Connects CLIENTS clients to 127.0.0.1:PORT (at most 64 registering at
 * once), registers each (NICK bN, USER) and joins it to channel #cK,
 * K = N / PER_CHANNEL. Once all have joined it reads the server's RSS
 * (process PID), then every client sends "PRIVMSG #cK :<send time> ..."
 * every INTERVAL_MS, the clients' sends spread evenly over the interval.
 * After WARMUP_S seconds of that, a window of SECONDS seconds is measured:
 * the server's CPU time (utime + stime from /proc/PID/stat) at its start
 * and end, the PRIVMSGs received in it (counted at the receivers) and
 * their latency (receive time minus the send time they carry). Then the
 * sends stop and the last deliveries are awaited (at most 5 s); every
 * message sent should have reached the other members of its channel.
 *
 * Prints one line:
 *   sent=S delivered=D expected=E window_s=W delivered_per_s=R p50_us=X
 *   p99_us=Y cpu_s=C rss_before_kb=A rss_after_kb=B lost=L
 * and exits 0; 3 when L deliveries never arrived (a server that fell
 * behind: the figures are printed all the same); or prints why it failed
 * on stderr and exits 1 (a server that refuses or drops a client, a setup
 * that takes over 120 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, REGISTERING, JOINING, READY };

struct client {
  int fd;
  int state;
  int chan;
  size_t inlen;
  char in[8192];
  size_t outlen;
  char out[2048];
};

static struct client *clients;
static int nclients, per_chan, epfd, server_pid;
static uint64_t delivered_total, delivered_window, sent_total;
static int measuring;
static uint32_t *lat;
static size_t nlat, caplat;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int i) {
  if (i >= 0)
    fprintf(stderr, "irc load: client %d: %s\n", i, what);
  else
    fprintf(stderr, "irc load: %s\n", what);
  exit(1);
}

static double server_cpu_s(void) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
  FILE *f = fopen(path, "r");
  if (!f)
    die("cannot read the server's /proc/PID/stat", -1);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  /* after ")": state, then fields 4..13, then utime (14) and stime (15) */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
    die("cannot parse the server's /proc/PID/stat", -1);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long server_rss_kb(void) {
  char path[64], line[256];
  long kb = -1;
  snprintf(path, sizeof path, "/proc/%d/status", server_pid);
  FILE *f = fopen(path, "r");
  if (!f)
    die("cannot read the server's /proc/PID/status", -1);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

static void flush_out(int i) {
  struct client *c = &clients[i];
  while (c->outlen > 0) {
    ssize_t n = write(c->fd, c->out, c->outlen);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    if (n < 0)
      die(strerror(errno), i);
    memmove(c->out, c->out + n, c->outlen - (size_t)n);
    c->outlen -= (size_t)n;
  }
  struct epoll_event ev = {.events = EPOLLIN | (c->outlen ? EPOLLOUT : 0u),
                           .data.u32 = (uint32_t)i};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void say(int i, const char *text) {
  struct client *c = &clients[i];
  size_t n = strlen(text);
  if (c->outlen + n > sizeof c->out)
    die("send buffer full: the server does not read", i);
  memcpy(c->out + c->outlen, text, n);
  c->outlen += n;
  if (c->outlen == n)
    flush_out(i);
}

static void line(int i, char *s, uint64_t t) {
  struct client *c = &clients[i];
  char buf[128];
  if (strncmp(s, "PING", 4) == 0) {
    snprintf(buf, sizeof buf, "PONG%.100s\r\n", s + 4);
    say(i, buf);
    return;
  }
  if (strncmp(s, "ERROR", 5) == 0) {
    fprintf(stderr, "irc load: client %d: %s\n", i, s);
    exit(1);
  }
  if (*s != ':')
    return;
  char *cmd = strchr(s, ' ');
  if (!cmd)
    return;
  cmd++;
  if (strncmp(cmd, "PRIVMSG ", 8) == 0) {
    char *text = strstr(cmd, " :");
    if (!text)
      return;
    uint64_t ts = strtoull(text + 2, NULL, 10);
    delivered_total++;
    if (measuring) {
      delivered_window++;
      if (nlat < caplat)
        lat[nlat++] = (uint32_t)((t - ts) / 1000);
    }
    return;
  }
  if (strncmp(cmd, "001 ", 4) == 0 && c->state == REGISTERING) {
    c->state = JOINING;
    snprintf(buf, sizeof buf, "JOIN #c%d\r\n", c->chan);
    say(i, buf);
    return;
  }
  if (strncmp(cmd, "366 ", 4) == 0 && c->state == JOINING) {
    c->state = READY;
    return;
  }
  if ((cmd[0] == '4' || cmd[0] == '5') && cmd[3] == ' ' && c->state != READY &&
      strncmp(cmd, "451", 3) != 0 &&
      strncmp(cmd, "422", 3) != 0) { /* 422: no MOTD */
    fprintf(stderr, "irc load: client %d refused: %s\n", i, s);
    exit(1);
  }
}

static void readable(int i, uint64_t t) {
  struct client *c = &clients[i];
  for (;;) {
    ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - 1 - c->inlen);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0)
      die(n == 0 ? "the server closed the connection" : strerror(errno), i);
    c->inlen += (size_t)n;
    c->in[c->inlen] = 0;
    char *start = c->in, *nl;
    while ((nl = memchr(start, '\n', c->inlen - (size_t)(start - c->in)))) {
      *nl = 0;
      if (nl > start && nl[-1] == '\r')
        nl[-1] = 0;
      line(i, start, t);
      start = nl + 1;
    }
    c->inlen -= (size_t)(start - c->in);
    memmove(c->in, start, c->inlen);
    if (c->inlen == sizeof c->in - 1)
      die("line too long", i);
  }
}

static void start_client(int i, int port) {
  struct client *c = &clients[i];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    die(strerror(errno), i);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 &&
      errno != EINPROGRESS)
    die(strerror(errno), i);
  c->chan = i / per_chan;
  c->state = REGISTERING;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  char buf[128];
  /* queued until the connection is up: EPOLLOUT signals it */
  snprintf(buf, sizeof buf, "NICK b%d\r\nUSER b%d 0 * :bench %d\r\n", i, i, i);
  memcpy(c->out, buf, strlen(buf));
  c->outlen = strlen(buf);
  ev.events = EPOLLIN | EPOLLOUT;
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void poll_once(int timeout_ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(epfd, evs, 256, timeout_ms);
  if (n < 0 && errno != EINTR)
    die(strerror(errno), -1);
  uint64_t t = now_ns();
  for (int k = 0; k < n; k++) {
    int i = (int)evs[k].data.u32;
    if (evs[k].events & (EPOLLERR | EPOLLHUP) && !(evs[k].events & EPOLLIN))
      die("connection failed", i);
    if (evs[k].events & EPOLLOUT)
      flush_out(i);
    if (evs[k].events & EPOLLIN)
      readable(i, t);
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr,
            "usage: load PORT PID CLIENTS PER_CHANNEL INTERVAL_MS WARMUP_S "
            "SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]);
  server_pid = atoi(argv[2]);
  nclients = atoi(argv[3]);
  per_chan = atoi(argv[4]);
  uint64_t interval = (uint64_t)atoll(argv[5]) * 1000000u;
  uint64_t warmup = (uint64_t)atoll(argv[6]) * 1000000000u;
  uint64_t window = (uint64_t)atoll(argv[7]) * 1000000000u;
  if (nclients <= 0 || per_chan <= 1 || interval == 0 || window == 0)
    die("bad arguments", -1);
  clients = calloc((size_t)nclients, sizeof *clients);
  caplat = 50u * 1000 * 1000;
  lat = malloc(caplat * sizeof *lat);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!clients || !lat || epfd < 0)
    die("out of memory", -1);

  long rss_before = server_rss_kb();
  uint64_t deadline = now_ns() + 120000000000u;
  int started = 0, ready = 0;
  while (ready < nclients) {
    while (started < nclients && started - ready < 64)
      start_client(started++, port);
    poll_once(100);
    ready = 0;
    for (int i = 0; i < started; i++)
      ready += clients[i].state == READY;
    if (now_ns() > deadline) {
      int st[4] = {0, 0, 0, 0}, stuck = -1;
      for (int i = 0; i < started; i++) {
        st[clients[i].state]++;
        if (stuck < 0 && clients[i].state != READY)
          stuck = i;
      }
      fprintf(stderr,
              "irc load: only %d of %d clients joined within 120 s (%d "
              "registering, %d joining)\n",
              ready, nclients, st[REGISTERING], st[JOINING]);
      if (stuck >= 0)
        fprintf(stderr, "irc load: client %d has unread: %.*s\n", stuck,
                (int)clients[stuck].inlen, clients[stuck].in);
      return 1;
    }
  }
  /* the JOINs of the last members reach the first ones: let them settle */
  uint64_t settle = now_ns() + 500000000u;
  while (now_ns() < settle)
    poll_once(50);
  long rss_after = server_rss_kb();

  uint64_t t0 = now_ns(), next = 0, win_start = t0 + warmup,
           win_end = win_start + window;
  double cpu0 = 0, cpu1 = 0;
  uint64_t sent_window_start = 0, real_start = 0, real_end = 0;
  char msg[256];
  for (;;) {
    uint64_t t = now_ns();
    if (!measuring && real_start == 0 && t >= win_start) {
      measuring = 1;
      real_start = t;
      cpu0 = server_cpu_s();
      sent_window_start = sent_total;
    }
    if (measuring && t >= win_end) {
      cpu1 = server_cpu_s();
      real_end = t;
      measuring = 0;
      break;
    }
    while (t0 + next * interval / (uint64_t)nclients <= t) {
      int i = (int)(next % (uint64_t)nclients);
      snprintf(msg, sizeof msg,
               "PRIVMSG #c%d :%llu from b%d, a line of ordinary chat length to "
               "carry\r\n",
               clients[i].chan, (unsigned long long)now_ns(), i);
      say(i, msg);
      sent_total++;
      next++;
    }
    uint64_t due = t0 + next * interval / (uint64_t)nclients;
    uint64_t now = now_ns();
    int wait_ms = due > now ? (int)((due - now) / 1000000u) : 0;
    poll_once(wait_ms);
  }
  (void)sent_window_start;
  uint64_t expected = sent_total * (uint64_t)(per_chan - 1);
  if (nclients % per_chan)
    expected = 0; /* a short last channel: no exact count */
  uint64_t drain = now_ns() + 5000000000u;
  while (now_ns() < drain && (expected == 0 || delivered_total < expected))
    poll_once(50);
  uint64_t lost =
      expected && delivered_total < expected ? expected - delivered_total : 0;
  if (lost)
    fprintf(stderr, "irc load: %llu of %llu deliveries arrived\n",
            (unsigned long long)delivered_total, (unsigned long long)expected);
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  double secs = (double)(real_end - real_start) / 1e9;
  uint32_t p50 = nlat ? lat[(size_t)(0.50 * (double)(nlat - 1))] : 0;
  uint32_t p99 = nlat ? lat[(size_t)(0.99 * (double)(nlat - 1))] : 0;
  printf(
      "sent=%llu delivered=%llu expected=%llu window_s=%.3f "
      "delivered_per_s=%.0f p50_us=%u "
      "p99_us=%u cpu_s=%.3f delivered_window=%llu rss_before_kb=%ld "
      "rss_after_kb=%ld lost=%llu\n",
      (unsigned long long)sent_total, (unsigned long long)delivered_total,
      (unsigned long long)expected, secs, (double)delivered_window / secs, p50,
      p99, cpu1 - cpu0, (unsigned long long)delivered_window, rss_before,
      rss_after, (unsigned long long)lost);
  return lost ? 3 : 0;
}
