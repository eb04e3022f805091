/* client.c: the load generator of the COMET benchmark (see run.sh), for any
 * server that speaks the chat's web wire contract (eddy chat, and
 * tornado_chat.py).
 *
 *   client wait --port P
 *       connects until the server answers (at most 10 s), then exits 0.
 *   client probe --port P --proto ws|sse
 *       one client's handshake: exits 0 if the server takes it, 2 if it
 *       answers with another status (it does not serve that protocol yet).
 *   client floor [--clients N] [--rounds R] [--tag NAME]
 *       the machine's floor under a fan-out: N loopback TCP connections
 *       in this one process (fewer if the descriptor limit cannot hold
 *       both ends of N), R rounds of one 120-byte send() on each, with
 *       nothing reading; the median round's time per send, and scaled to
 *       N. No server fans out one message to N clients faster with a
 *       send() per client.
 *   client run --port P --pid PID --proto ws|sse [--clients N]
 *              [--rounds R] [--seconds T] [--publishers P] [--tag NAME]
 *       opens N web clients (default 10000): N WebSockets on GET /ws, or N
 *       server-sent event streams on GET /events. Then:
 *       memory     the server's VmRSS after the N clients minus before,
 *                  per client (after a first message has reached every
 *                  client, so that each is known to be subscribed);
 *       latency    R broadcasts (default 20), one at a time: a POST /send
 *                  whose text carries its CLOCK_MONOTONIC send time, and
 *                  for every client the time until the message reaches
 *                  its socket (the kernel's receive timestamp); p50, p99
 *                  and max over the R x N deliveries, and the median and
 *                  the slowest over the rounds of the time until the last
 *                  client has it (the fan-out time);
 *       throughput POST /send from P connections (--publishers, default
 *                  1), on each the next message as soon as the server
 *                  has answered the previous, for T s (default 3); then the wait for the last of them to
 *                  reach every client. Deliveries per second, counted at
 *                  the clients (messages x clients / s, from the first
 *                  post to the last delivery), and the server's CPU time
 *                  per delivery (utime + stime of /proc/PID/stat).
 *
 * Output is "TAG_key value" per line. Every wait is bounded; any failure
 * (a refused connect, a bad handshake, a closed connection, a message out
 * of order, a deadline passed) prints a reason and exits 1.
 *
 * One thread reads every client: epoll, level-triggered, one recvmsg of
 * up to 256 KiB per ready client, so that a client that falls behind reads
 * many messages per call and the reading gets cheaper per message as the
 * load grows. The time it takes to come round to a client is not counted
 * against the server: a delivery's time is when the kernel queued the data
 * on the client's socket (SO_TIMESTAMPNS). The throughput phase posts from
 * a second thread, so that the next post never waits for the reading of
 * the last one's deliveries. Messages are
 * recognised by a marker in their text ("@b SEQ T0"); anything else (a
 * server's history, heartbeats, comments) is skipped. Connections close
 * with a reset (SO_LINGER 0): no run leaves 10,000 sockets in TIME_WAIT
 * for the next. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"

#define CARRY_MAX 8192         /* the longest unit (frame, line, header) */
#define READ_SIZE (256 * 1024) /* one recv */
#define CONNECTS_IN_FLIGHT 64  /* handshakes under way at once */
#define MAX_EVENTS 1024
#define POST_ID UINT32_MAX /* epoll id of the POST /send connection */
#define MARKER "@b "

static int port;
static long server_pid;
static int nclients = 10000;
static int rounds = 20;
static double seconds = 3;
static int sse; /* 0: WebSocket clients, 1: SSE clients */
static int ep;
static int probing; /* probe mode: a refused handshake exits 2 */

static int ms_until(int64_t deadline) {
  int64_t left = deadline - mono_ns();
  if (left <= 0)
    return 0;
  return (int)((left + 999999) / 1000000);
}

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

/* A non-blocking socket with a connect to 127.0.0.1:port under way (or
 * done); -errno on failure. */
static int start_connect(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1, err;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
      errno != EINPROGRESS) {
    err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

/* Sends all of buf on a socket that has room for it (requests are small
 * and sockets fresh), or dies. */
static void send_all(int fd, const char *buf, size_t len, const char *what) {
  ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
  if (w != (ssize_t)len)
    die("%s: send: %s", what, w < 0 ? strerror(errno) : "short write");
}

/* ---- the web clients ------------------------------------------------------- */

enum { ST_CONNECTING, ST_HEADERS, ST_OPEN };
enum { CH_SIZE, CH_EXT, CH_DATA, CH_CR, CH_LF, CH_END };

typedef struct client {
  int fd;
  uint8_t state;
  uint8_t chunked; /* SSE body in chunked transfer coding */
  uint8_t ch;      /* chunk decoder state */
  uint32_t carry_len;
  uint64_t chunk_left;
  char *carry; /* the incomplete unit of the last read, CARRY_MAX bytes */
  int64_t last_seq;
  int64_t count;   /* marked messages received */
  int64_t tp_base; /* count when the throughput phase began */
} client;

static client *clients;
static int nopen, inflight, nstarted;
static char rbuf[CARRY_MAX + READ_SIZE];

/* The phase's state, which on_message updates. */
static int64_t target_seq;   /* the message every client is waited for */
static int unordered; /* messages of several publishers: in any order */
static int nreached;         /* clients whose last_seq >= target_seq */
static int64_t lat_seq = -1; /* the latency round's message */
static int64_t *samples;     /* delivery latencies, ns */
static size_t nsamples;
static int64_t round_last_ns; /* the latest delivery of lat_seq */
static int64_t last_delivery_ns;
/* When the data of the current read reached the client's socket: the
 * kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME) moved onto
 * CLOCK_MONOTONIC, so that the time this one thread takes to come round to
 * a client is not counted as the server's; the time of the read where the
 * kernel gives none. */
static int64_t rx_ns;
static int64_t real_offset; /* CLOCK_REALTIME - CLOCK_MONOTONIC */

static void set_target(int64_t seq) {
  target_seq = seq;
  nreached = 0;
  for (int i = 0; i < nclients; i++)
    if (clients[i].state == ST_OPEN && clients[i].last_seq >= seq)
      nreached++;
}

/* A message's payload (the JSON), from a WebSocket frame or an SSE data
 * line. */
static void on_message(client *c, const char *p, size_t n) {
  const char *m = memmem(p, n, MARKER, sizeof MARKER - 1);
  char num[64], *end;
  size_t k;
  int64_t seq, t0, now;
  if (m == NULL)
    return;
  m += sizeof MARKER - 1;
  k = (size_t)(p + n - m);
  if (k >= sizeof num)
    k = sizeof num - 1;
  memcpy(num, m, k);
  num[k] = '\0';
  seq = strtoll(num, &end, 10);
  t0 = strtoll(end, &end, 10);
  if (*end != '"')
    die("client %d: malformed message: %.*s", (int)(c - clients), (int)n, p);
  now = rx_ns;
  if (seq <= c->last_seq && !unordered)
    die("client %d: message %lld after %lld", (int)(c - clients),
        (long long)seq, (long long)c->last_seq);
  if (c->last_seq < target_seq && seq >= target_seq)
    nreached++;
  if (seq > c->last_seq)
    c->last_seq = seq;
  c->count++;
  last_delivery_ns = now;
  if (seq == lat_seq) {
    samples[nsamples++] = now - t0;
    round_last_ns = now;
  }
}

/* Parses the whole units (frames, lines) at the front of p; returns the
 * bytes used. */
static size_t parse_ws(client *c, char *p, size_t len) {
  size_t off = 0;
  while (len - off >= 2) {
    unsigned char b0 = (unsigned char)p[off], b1 = (unsigned char)p[off + 1];
    uint64_t plen = b1 & 0x7f;
    size_t hdr = 2;
    if (b1 & 0x80)
      die("client %d: masked frame from the server", (int)(c - clients));
    if (plen == 126) {
      if (len - off < 4)
        break;
      plen = (uint64_t)(unsigned char)p[off + 2] << 8 |
             (unsigned char)p[off + 3];
      hdr = 4;
    } else if (plen == 127) {
      if (len - off < 10)
        break;
      plen = 0;
      for (int i = 0; i < 8; i++)
        plen = plen << 8 | (unsigned char)p[off + 2 + i];
      hdr = 10;
    }
    if (plen > CARRY_MAX - 16)
      die("client %d: a %llu-byte frame", (int)(c - clients),
          (unsigned long long)plen);
    if (len - off < hdr + plen)
      break;
    switch (b0 & 0x0f) {
    case 1: /* text */
      if (!(b0 & 0x80))
        die("client %d: fragmented message", (int)(c - clients));
      on_message(c, p + off + hdr, plen);
      break;
    case 9: { /* ping: pong with the same payload, masked with 0s */
      char pong[CARRY_MAX];
      pong[0] = (char)0x8a;
      pong[1] = (char)(0x80 | plen);
      memset(pong + 2, 0, 4);
      memcpy(pong + 6, p + off + hdr, plen);
      if (plen <= 125)
        send_all(c->fd, pong, 6 + plen, "pong");
      break;
    }
    case 10: /* pong */
      break;
    case 8:
      die("client %d: the server closed the WebSocket", (int)(c - clients));
    default:
      die("client %d: frame opcode %d", (int)(c - clients), b0 & 0x0f);
    }
    off += hdr + plen;
  }
  return off;
}

static size_t parse_sse(client *c, char *p, size_t len) {
  size_t off = 0;
  char *nl;
  while ((nl = memchr(p + off, '\n', len - off)) != NULL) {
    size_t n = (size_t)(nl - (p + off));
    if (n > 0 && p[off + n - 1] == '\r')
      n--;
    if (n >= 5 && memcmp(p + off, "data:", 5) == 0)
      on_message(c, p + off + 5, n - 5);
    off = (size_t)(nl - p) + 1;
  }
  return off;
}

/* Removes the chunked transfer coding from p[0..len) in place; returns the
 * length of the body bytes left at p. */
static size_t dechunk(client *c, char *p, size_t len) {
  size_t in = 0, out = 0;
  while (in < len) {
    char ch = p[in];
    switch (c->ch) {
    case CH_SIZE:
      if (ch >= '0' && ch <= '9')
        c->chunk_left = c->chunk_left * 16 + (uint64_t)(ch - '0');
      else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        c->chunk_left = c->chunk_left * 16 + (uint64_t)((ch | 0x20) - 'a' + 10);
      else if (ch == '\n')
        c->ch = c->chunk_left ? CH_DATA : CH_END;
      else
        c->ch = CH_EXT;
      in++;
      break;
    case CH_EXT:
      if (ch == '\n')
        c->ch = c->chunk_left ? CH_DATA : CH_END;
      in++;
      break;
    case CH_DATA: {
      size_t k = len - in < c->chunk_left ? len - in : (size_t)c->chunk_left;
      memmove(p + out, p + in, k);
      out += k;
      in += k;
      c->chunk_left -= k;
      if (c->chunk_left == 0)
        c->ch = CH_CR;
      break;
    }
    case CH_CR:
      c->ch = ch == '\r' ? CH_LF : CH_SIZE;
      if (ch == '\n')
        c->ch = CH_SIZE;
      in++;
      break;
    case CH_LF:
      c->ch = CH_SIZE;
      in++;
      break;
    case CH_END:
      die("client %d: the server ended the event stream", (int)(c - clients));
    }
  }
  return out;
}

/* Parses a response's header block at p[0..len): returns its length, or 0
 * if incomplete. */
static size_t parse_headers(client *c, char *p, size_t len) {
  char *end = memmem(p, len, "\r\n\r\n", 4);
  int status = 0;
  if (end == NULL)
    return 0;
  *end = '\0';
  if (sscanf(p, "HTTP/1.%*d %d", &status) != 1 || status != (sse ? 200 : 101)) {
    if (probing) {
      fprintf(stderr, "comet client: GET %s answered %d\n",
              sse ? "/events" : "/ws", status);
      exit(2);
    }
    die("client %d: GET %s answered: %.200s", (int)(c - clients),
        sse ? "/events" : "/ws", p);
  }
  for (char *h = strstr(p, "\r\n"); h != NULL; h = strstr(h + 2, "\r\n"))
    if (strncasecmp(h + 2, "transfer-encoding:", 18) == 0 &&
        strcasestr(h + 2, "chunked") != NULL)
      c->chunked = 1;
  return (size_t)(end - p) + 4;
}

static void on_readable(client *c) {
  size_t have = c->carry_len, used;
  ssize_t r;
  struct iovec iov = {.iov_base = rbuf + have, .iov_len = READ_SIZE};
  union {
    char buf[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
  } ctl;
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *cm;
  if (have)
    memcpy(rbuf, c->carry, have);
  r = recvmsg(c->fd, &msg, 0);
  rx_ns = 0;
  for (cm = CMSG_FIRSTHDR(&msg); r > 0 && cm; cm = CMSG_NXTHDR(&msg, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(cm), sizeof ts);
      rx_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - real_offset;
    }
  if (rx_ns == 0)
    rx_ns = mono_ns();
  if (r < 0) {
    if (errno == EAGAIN || errno == EINTR)
      return;
    die("client %d: recv: %s", (int)(c - clients), strerror(errno));
  }
  if (r == 0)
    die("client %d: the server closed the connection (%d of %d open)",
        (int)(c - clients), nopen, nclients);
  if (c->state == ST_OPEN) {
    if (c->chunked)
      r = (ssize_t)dechunk(c, rbuf + have, (size_t)r);
    have += (size_t)r;
  } else {
    size_t h;
    have += (size_t)r;
    if ((h = parse_headers(c, rbuf, have)) == 0) {
      used = 0;
      goto keep;
    }
    c->state = ST_OPEN;
    inflight--;
    nopen++;
    memmove(rbuf, rbuf + h, have - h);
    have -= h;
    if (c->chunked)
      have = dechunk(c, rbuf, have);
  }
  used = sse ? parse_sse(c, rbuf, have) : parse_ws(c, rbuf, have);
keep:
  c->carry_len = (uint32_t)(have - used);
  if (c->carry_len > CARRY_MAX - 16)
    die("client %d: a unit longer than %d bytes", (int)(c - clients),
        CARRY_MAX - 16);
  if (c->carry_len) {
    if (c->carry == NULL && (c->carry = malloc(CARRY_MAX)) == NULL)
      die("out of memory");
    memcpy(c->carry, rbuf + used, c->carry_len);
  }
}

static void on_connected(client *c) {
  char req[512];
  int err = 0, n;
  socklen_t len = sizeof err;
  struct epoll_event ev = {.events = EPOLLIN,
                           .data.u32 = (uint32_t)(c - clients)};
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
    die("client %d: connect to 127.0.0.1:%d: %s", (int)(c - clients), port,
        strerror(err ? err : errno));
  if (sse)
    n = snprintf(req, sizeof req,
                 "GET /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                 port);
  else
    n = snprintf(req, sizeof req,
                 "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Origin: http://127.0.0.1:%d\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 port, port);
  send_all(c->fd, req, (size_t)n, "handshake");
  c->state = ST_HEADERS;
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
}

static void open_one(void) {
  client *c = &clients[nstarted];
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)nstarted};
  c->fd = start_connect();
  if (c->fd < 0)
    die("client %d: connect: %s", nstarted, strerror(-c->fd));
  c->state = ST_CONNECTING;
  c->last_seq = -1;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
  nstarted++;
  inflight++;
}

/* ---- POST /send ------------------------------------------------------------ */

/* A connection that posts: one for every phase, and in the throughput
 * phase --publishers P - 1 more, each with one request in flight. */
typedef struct post_conn {
  int fd;
  int busy;       /* a request awaits its answer */
  char buf[8192]; /* the answer so far */
  size_t len;
} post_conn;

#define MAX_PUBLISHERS 64
static post_conn pmain = {.fd = -1};
static post_conn pextra[MAX_PUBLISHERS];
static int publishers = 1;
static int64_t seq_next = 1; /* the marker of the next message (atomic) */
#define post_fd pmain.fd
#define post_busy pmain.busy

static void post_connect(post_conn *pc) {
  struct pollfd p;
  int err = 0;
  socklen_t len = sizeof err;
  if ((pc->fd = start_connect()) < 0)
    die("POST connection: connect: %s", strerror(-pc->fd));
  p = (struct pollfd){.fd = pc->fd, .events = POLLOUT};
  if (poll(&p, 1, 5000) != 1 ||
      getsockopt(pc->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
    die("POST connection: connect: %s", err ? strerror(err) : "timed out");
}

static void post_open(void) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = POST_ID};
  post_connect(&pmain);
  if (epoll_ctl(ep, EPOLL_CTL_ADD, pmain.fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
}

/* Posts a message; marked (with the next sequence number and the send
 * time) unless plain. Returns its sequence number. */
static int64_t post_on(post_conn *pc, int plain) {
  char body[256], req[512];
  int64_t seq = plain ? 0 : __atomic_fetch_add(&seq_next, 1, __ATOMIC_RELAXED);
  int bn, n;
  if (plain)
    bn = snprintf(body, sizeof body,
                  "{\"name\":\"bench\",\"text\":\"warm-up\"}");
  else
    bn = snprintf(body, sizeof body,
                  "{\"name\":\"bench\",\"text\":\"" MARKER "%lld %lld\"}",
                  (long long)seq, (long long)mono_ns());
  n = snprintf(req, sizeof req,
               "POST /send HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
               "%s",
               port, bn, body);
  if (pc->busy)
    die("POST /send: a request is already under way");
  send_all(pc->fd, req, (size_t)n, "POST /send");
  pc->busy = 1;
  pc->len = 0;
  return seq;
}

static int64_t post(int plain) {
  return post_on(&pmain, plain);
}

/* Reads the answer to POST /send; clears pc->busy once it is whole. */
static void post_readable_on(post_conn *pc) {
  ssize_t r = recv(pc->fd, pc->buf + pc->len, sizeof pc->buf - 1 - pc->len,
                   0);
  char *end, *h;
  int status = 0;
  long clen = -1;
  size_t hlen;
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r <= 0)
    die("POST /send: %s", r < 0 ? strerror(errno) : "connection closed");
  if (!pc->busy)
    die("POST /send: %zd bytes nobody asked for", r);
  pc->len += (size_t)r;
  pc->buf[pc->len] = '\0';
  if ((end = strstr(pc->buf, "\r\n\r\n")) == NULL) {
    if (pc->len >= sizeof pc->buf - 1)
      die("POST /send: answer headers too long");
    return;
  }
  hlen = (size_t)(end - pc->buf) + 4;
  if (sscanf(pc->buf, "HTTP/1.%*d %d", &status) != 1 || status < 200 ||
      status > 299)
    die("POST /send answered: %.*s", (int)hlen, pc->buf);
  for (h = strstr(pc->buf, "\r\n"); h != NULL && h < end;
       h = strstr(h + 2, "\r\n")) {
    if (strncasecmp(h + 2, "content-length:", 15) == 0)
      clen = strtol(h + 17, NULL, 10);
    else if (strncasecmp(h + 2, "transfer-encoding:", 18) == 0)
      clen = -2; /* chunked */
  }
  if (clen == -2) {
    if (pc->len < hlen + 5 ||
        memcmp(pc->buf + pc->len - 5, "0\r\n\r\n", 5) != 0)
      goto more;
  } else if (clen > 0 && pc->len < hlen + (size_t)clen) {
    goto more;
  } else if (clen > 0 && pc->len > hlen + (size_t)clen) {
    die("POST /send: %zu bytes past the answer",
        pc->len - hlen - (size_t)clen);
  }
  pc->busy = 0;
  pc->len = 0;
  return;
more:
  if (pc->len >= sizeof pc->buf - 1)
    die("POST /send: answer too long");
}

static void post_readable(void) {
  post_readable_on(&pmain);
}

/* The throughput phase's poster, on its own thread so that the next post
 * never waits for the reading of the last one's deliveries: posts until
 * *arg (a CLOCK_MONOTONIC deadline) on each of its connections (the main
 * one and publishers - 1 more), each message as soon as the server has
 * answered that connection's previous one; owns the connections
 * meanwhile. */
static void *poster(void *arg) {
  int64_t end = *(const int64_t *)arg;
  post_conn *pcs[MAX_PUBLISHERS];
  struct pollfd p[MAX_PUBLISHERS];
  int busy = 1;
  pcs[0] = &pmain;
  for (int i = 1; i < publishers; i++)
    pcs[i] = &pextra[i];
  while (busy) {
    int r;
    busy = 0;
    for (int i = 0; i < publishers; i++) {
      if (!pcs[i]->busy && mono_ns() < end)
        post_on(pcs[i], 0);
      busy |= pcs[i]->busy;
      p[i] = (struct pollfd){.fd = pcs[i]->fd, .events = POLLIN};
    }
    if (!busy)
      break;
    r = poll(p, (nfds_t)publishers, 30000);
    if (r == 0)
      die("POST /send: no answer in 30 s");
    if (r < 0 && errno != EINTR)
      die("poll: %s", strerror(errno));
    for (int i = 0; r > 0 && i < publishers; i++)
      if (p[i].revents)
        post_readable_on(pcs[i]);
  }
  return NULL;
}

/* ---- the loop -------------------------------------------------------------- */

/* Handles what is ready within timeout_ms (once). */
static void pump(int timeout_ms) {
  static struct epoll_event evs[MAX_EVENTS];
  int n = epoll_wait(ep, evs, MAX_EVENTS, timeout_ms);
  if (n < 0) {
    if (errno == EINTR)
      return;
    die("epoll_wait: %s", strerror(errno));
  }
  for (int i = 0; i < n; i++) {
    uint32_t id = evs[i].data.u32;
    if (id == POST_ID) {
      post_readable();
      continue;
    }
    if (clients[id].state == ST_CONNECTING)
      on_connected(&clients[id]);
    else
      on_readable(&clients[id]);
  }
}

/* Pumps until every open client has reached seq and no POST is under way,
 * or the deadline; returns 1 if all arrived. */
static int wait_all(int64_t seq, int64_t deadline) {
  set_target(seq);
  while ((nreached < nclients || post_busy) && mono_ns() < deadline)
    pump(ms_until(deadline));
  return nreached == nclients && !post_busy;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(const int64_t *v, size_t n, double p) {
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)v[i] / 1e6;
}

static int mode_run(void) {
  int64_t t, deadline, seq, *fanout;
  long rss0, rss1;
  double cpu0, cpu1, self0, secs;
  int64_t count0 = 0, count1 = 0, first, tp_first, tp_last, start, pub_end;
  int synced = 0;
  pthread_t tid;

  raise_nofile(nclients + 64);
  real_offset = clock_ns(CLOCK_REALTIME) - mono_ns();
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
    die("epoll_create1: %s", strerror(errno));
  if ((clients = calloc((size_t)nclients, sizeof *clients)) == NULL ||
      (samples = malloc((size_t)rounds * (size_t)nclients * sizeof *samples)) ==
          NULL ||
      (fanout = malloc((size_t)rounds * sizeof *fanout)) == NULL)
    die("out of memory");

  /* The POST path works, and its first use is not counted as memory per
   * client. */
  post_open();
  post(1);
  deadline = mono_ns() + 5000000000LL;
  while (post_busy && mono_ns() < deadline)
    pump(ms_until(deadline));
  if (post_busy)
    die("POST /send: no answer in 5 s");
  rss0 = proc_rss_kb(server_pid);

  /* N clients, CONNECTS_IN_FLIGHT handshakes at a time, in at most 60 s. */
  t = mono_ns();
  deadline = t + 60000000000LL;
  while (nopen < nclients) {
    while (nstarted < nclients && inflight < CONNECTS_IN_FLIGHT)
      open_one();
    if (mono_ns() >= deadline)
      die("only %d of %d clients open after 60 s", nopen, nclients);
    pump(ms_until(deadline));
  }
  put("connect_s", (double)(mono_ns() - t) / 1e9);

  /* A first message to every client: subscribed once they have it. A
   * server may subscribe a client a little after its handshake, so a
   * client that misses one gets the next; at most 10 s. */
  deadline = mono_ns() + 10000000000LL;
  seq = 0;
  while (!synced && mono_ns() < deadline) {
    if (!post_busy)
      seq = post(0);
    synced = wait_all(seq, mono_ns() + 2000000000LL < deadline
                               ? mono_ns() + 2000000000LL
                               : deadline);
  }
  if (!synced)
    die("%d of %d clients got no message in 10 s", nclients - nreached,
        nclients);
  rss1 = proc_rss_kb(server_pid);
  put("kb_per_client", (double)(rss1 - rss0) / nclients);
  put("rss_before_kb", (double)rss0);
  put("rss_after_kb", (double)rss1);

  /* Latency: one broadcast at a time. */
  for (int r = 0; r < rounds; r++) {
    size_t before = nsamples;
    lat_seq = seq_next;
    start = mono_ns();
    seq = post(0);
    if (!wait_all(seq, start + 10000000000LL))
      die("latency round %d: %d of %d clients did not get the message in "
          "10 s",
          r, nclients - nreached, nclients);
    if (nsamples - before != (size_t)nclients)
      die("latency round %d: %zu deliveries for %d clients", r,
          nsamples - before, nclients);
    fanout[r] = round_last_ns - start;
  }
  lat_seq = -1;
  /* COMET_DEBUG=1: each round's fan-out time, in order, on stderr. */
  if (getenv("COMET_DEBUG"))
    for (int r = 0; r < rounds; r++)
      fprintf(stderr, "fanout %d: %.2f ms\n", r, (double)fanout[r] / 1e6);
  qsort(samples, nsamples, sizeof *samples, cmp_i64);
  qsort(fanout, (size_t)rounds, sizeof *fanout, cmp_i64);
  put("lat_p50_ms", pct_ms(samples, nsamples, 0.50));
  put("lat_p99_ms", pct_ms(samples, nsamples, 0.99));
  put("lat_max_ms", pct_ms(samples, nsamples, 1.0));
  put("fanout_ms", pct_ms(fanout, (size_t)rounds, 0.5));
  put("fanout_max_ms", pct_ms(fanout, (size_t)rounds, 1.0));

  /* Throughput: post for T s, each message as soon as the last one is
   * answered, then wait (at most 30 s) for the last to reach everyone. */
  for (int i = 0; i < nclients; i++) {
    clients[i].tp_base = clients[i].count;
    count0 += clients[i].count;
  }
  for (int i = 1; i < publishers; i++)
    post_connect(&pextra[i]);
  unordered = publishers > 1;
  tp_first = seq_next;
  set_target(INT64_MAX);
  if (epoll_ctl(ep, EPOLL_CTL_DEL, post_fd, NULL) != 0)
    die("epoll_ctl: %s", strerror(errno));
  cpu0 = proc_cpu_s(server_pid);
  self0 = self_cpu_s();
  first = mono_ns();
  pub_end = first + (int64_t)(seconds * 1e9);
  if ((errno = pthread_create(&tid, NULL, poster, &pub_end)) != 0)
    die("pthread_create: %s", strerror(errno));
  while (mono_ns() < pub_end)
    pump(ms_until(pub_end));
  if ((errno = pthread_join(tid, NULL)) != 0)
    die("pthread_join: %s", strerror(errno));
  pub_end = mono_ns();
  tp_last = seq_next - 1;
  {
    /* Every client has every message: by count, since with several
     * publishers they need not arrive in the order of their numbers. */
    int64_t want = tp_last - tp_first + 1, late = 0;
    deadline = pub_end + 30000000000LL;
    for (;;) {
      late = 0;
      for (int i = 0; i < nclients; i++)
        late += clients[i].count - clients[i].tp_base < want;
      if (late == 0 || mono_ns() >= deadline)
        break;
      pump(ms_until(deadline));
    }
    if (late > 0)
      die("throughput: %lld of %d clients did not get every message in 30 s",
          (long long)late, nclients);
  }
  cpu1 = proc_cpu_s(server_pid);
  for (int i = 0; i < nclients; i++)
    count1 += clients[i].count;
  secs = (double)(last_delivery_ns - first) / 1e9;
  put("tp_messages", (double)(tp_last - tp_first + 1));
  put("tp_deliveries", (double)(count1 - count0));
  put("tp_missing",
      (double)((tp_last - tp_first + 1) * nclients - (count1 - count0)));
  put("tp_deliveries_s", (double)(count1 - count0) / secs);
  put("tp_messages_s", (double)(tp_last - tp_first + 1) / secs);
  put("tp_server_cpu_us_per_delivery",
      (cpu1 - cpu0) * 1e6 / (double)(count1 - count0));
  put("tp_server_cpu_pct", 100 * (cpu1 - cpu0) / secs);
  put("tp_client_cpu_pct", 100 * (self_cpu_s() - self0) / secs);

  for (int i = 0; i < nclients; i++)
    close_rst(clients[i].fd);
  close_rst(post_fd);
  for (int i = 1; i < publishers; i++)
    close_rst(pextra[i].fd);
  close(ep);
  return 0;
}

static int mode_wait(void) {
  int64_t deadline = mono_ns() + 10000000000LL;
  for (;;) {
    int fd = start_connect(), err = 0;
    socklen_t len = sizeof err;
    if (fd >= 0) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      if (poll(&p, 1, ms_until(deadline)) == 1 &&
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        close_rst(fd);
        return 0;
      }
      close(fd);
    } else {
      err = -fd;
    }
    if (err != ECONNREFUSED || mono_ns() >= deadline)
      die("server on 127.0.0.1:%d not answering: %s", port,
          strerror(err ? err : ETIMEDOUT));
    usleep(10000);
  }
}

/* One client's handshake: exit 0 if the server takes it, 2 if it answers
 * with another status (it does not serve that protocol). */
static int mode_probe(void) {
  int64_t deadline = mono_ns() + 5000000000LL;
  probing = 1;
  nclients = 1;
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
    die("epoll_create1: %s", strerror(errno));
  if ((clients = calloc(1, sizeof *clients)) == NULL)
    die("out of memory");
  open_one();
  while (nopen < 1 && mono_ns() < deadline)
    pump(ms_until(deadline));
  if (nopen < 1)
    die("probe: no answer to the handshake in 5 s");
  close_rst(clients[0].fd);
  return 0;
}

/* The floor under any server's fan-out on this machine: N loopback TCP
 * connections within this process, and R rounds of one 120-byte send() on
 * each (the size of a chat message's event), nothing reading them. Prints
 * the median round's time and the time per send. */
static int mode_floor(void) {
  int nsend = nclients;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t salen = sizeof sa;
  int lfd, one = 1, *srv, *cli;
  int64_t *t;
  char msg[120];
  struct rlimit rl;
  /* Both ends of each connection are here: at most half the descriptor
   * limit's worth, and the fan-out time scaled up to N from the time per
   * send. */
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    die("getrlimit: %s", strerror(errno));
  if (rl.rlim_max != RLIM_INFINITY && (rlim_t)nclients > (rl.rlim_max - 64) / 2)
    nsend = (int)((rl.rlim_max - 64) / 2);
  raise_nofile(2 * nsend + 64);
  if ((srv = calloc((size_t)nsend, sizeof *srv)) == NULL ||
      (cli = calloc((size_t)nsend, sizeof *cli)) == NULL ||
      (t = calloc((size_t)rounds, sizeof *t)) == NULL)
    die("out of memory");
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0)
    die("floor: listener: %s", strerror(errno));
  for (int i = 0; i < nsend; i++) {
    cli[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cli[i] < 0 || connect(cli[i], (struct sockaddr *)&sa, sizeof sa) != 0)
      die("floor: connect %d: %s", i, strerror(errno));
    if ((srv[i] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
      die("floor: accept %d: %s", i, strerror(errno));
    setsockopt(srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  memset(msg, 'x', sizeof msg);
  for (int r = 0; r < rounds; r++) {
    int64_t t0 = mono_ns();
    for (int i = 0; i < nsend; i++)
      send_all(srv[i], msg, sizeof msg, "floor");
    t[r] = mono_ns() - t0;
  }
  qsort(t, (size_t)rounds, sizeof *t, cmp_i64);
  put("floor_us_per_send", pct_ms(t, (size_t)rounds, 0.5) * 1e3 / nsend);
  put("floor_fanout_ms", pct_ms(t, (size_t)rounds, 0.5) * nclients / nsend);
  put("floor_connections", nsend);
  for (int i = 0; i < nsend; i++) {
    close_rst(cli[i]);
    close_rst(srv[i]);
  }
  close(lfd);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  bench_name = "comet client";
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (strcmp(k, "--port") == 0)
      port = atoi(v);
    else if (strcmp(k, "--pid") == 0)
      server_pid = atol(v);
    else if (strcmp(k, "--clients") == 0)
      nclients = atoi(v);
    else if (strcmp(k, "--rounds") == 0)
      rounds = atoi(v);
    else if (strcmp(k, "--seconds") == 0)
      seconds = atof(v);
    else if (strcmp(k, "--publishers") == 0)
      publishers = atoi(v);
    else if (strcmp(k, "--tag") == 0)
      put_tag = v;
    else if (strcmp(k, "--proto") == 0 && strcmp(v, "ws") == 0)
      sse = 0;
    else if (strcmp(k, "--proto") == 0 && strcmp(v, "sse") == 0)
      sse = 1;
    else
      die("unknown option %s %s", k, v);
  }
  if (strcmp(mode, "floor") == 0 && nclients >= 1 && rounds >= 1)
    return mode_floor();
  if (port <= 0 || port > 65535)
    die("need --port P");
  if (strcmp(mode, "wait") == 0)
    return mode_wait();
  if (strcmp(mode, "probe") == 0)
    return mode_probe();
  if (strcmp(mode, "run") != 0)
    die("usage: client wait|probe|floor|run --port P [--pid PID --proto ws|sse "
        "--clients N --rounds R --seconds T --publishers P --tag NAME]");
  if (publishers < 1 || publishers > MAX_PUBLISHERS)
    die("--publishers is 1 to %d", MAX_PUBLISHERS);
  if (server_pid <= 0 || nclients < 1 || rounds < 1 || seconds <= 0)
    die("run needs --pid PID, --clients N >= 1, --rounds R >= 1, --seconds "
        "T > 0");
  return mode_run();
}
