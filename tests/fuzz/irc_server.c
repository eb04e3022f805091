/* Fuzz target: the IRC server (src/proto/irc/server.c) as three clients
 * see it.
 *
 * The input is lines; each line's first byte picks the client (mod 3) that
 * sends the rest. The clients are registered first (as n0, n1 and n2) so
 * that inputs reach the channel commands at once. Everything goes over
 * socketpairs into one server that lives across inputs (channels come and
 * go, case-folded tables grow), on a fake clock. Checks on every line the
 * server sends: it ends with CR LF, holds no NUL, CR or LF before that, is
 * at most 512 bytes without its tags, and parses. Once the clients hang
 * up, the server must count none. Any failure, or a sanitizer report, is
 * a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eddy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "irc_server fuzz: %s (line %d)\n", #c, __LINE__);        \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define NCLIENTS 3

static eddy_loop *loop;
static eddy_irc_server *srv;
static const eddy_stream_callbacks no_callbacks = {0};

typedef struct fc {
  int fd;
  char buf[1 << 16];
  size_t n;
} fc;

static void init(void) {
  eddy_loop_options lo = {.fake_clock = 1};
  eddy_irc_server_options o = {.flood_lines = 100000, .sendq = 1 << 20};
  CHECK(eddy_loop_new(&lo, &loop) == 0);
  CHECK(eddy_irc_server_new(loop, &o, &srv) == 0);
  CHECK(eddy_irc_server_keep_channel(srv, "#kept", "a kept room") == 0);
}

/* Checks every whole line read so far, and keeps a partial one. */
static void check_lines(fc *c) {
  size_t start = 0;
  for (size_t i = 0; i < c->n; i++) {
    const char *line = c->buf + start, *body;
    size_t len;
    eddy_irc_msg_t m;
    if (c->buf[i] != '\n')
      continue;
    len = i + 1 - start;
    CHECK(len >= 2 && line[len - 2] == '\r');
    len -= 2;
    CHECK(memchr(line, '\0', len) == NULL && memchr(line, '\r', len) == NULL);
    body = line;
    if (len > 0 && line[0] == '@') {
      const char *sp = memchr(line, ' ', len);
      CHECK(sp != NULL);
      body = sp + 1;
    }
    CHECK((size_t)(line + len - body) <= EDDY_IRC_BODY_MAX);
    CHECK(eddy_irc_parse(line, len, 0, &m) == 0);
    start = i + 1;
  }
  memmove(c->buf, c->buf + start, c->n - start);
  c->n -= start;
  CHECK(c->n < sizeof c->buf - 1); /* no line that long */
}

static void read_all(fc *c) {
  for (;;) {
    ssize_t r = recv(c->fd, c->buf + c->n, sizeof c->buf - 1 - c->n,
                     MSG_DONTWAIT);
    if (r <= 0)
      break;
    c->n += (size_t)r;
    check_lines(c);
  }
}

static void turns(fc *cs, int n) {
  for (int i = 0; i < n; i++) {
    CHECK(eddy_loop_run(loop, EDDY_RUN_NOWAIT) >= 0);
    for (int k = 0; k < NCLIENTS; k++)
      if (cs[k].fd >= 0)
        read_all(&cs[k]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fc cs[NCLIENTS];
  if (loop == NULL)
    init();
  for (int k = 0; k < NCLIENTS; k++) {
    int sv[2];
    eddy_stream *s;
    char reg[96];
    int n;
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    cs[k].fd = sv[1];
    cs[k].n = 0;
    CHECK(eddy_stream_open(loop, sv[0], &no_callbacks, NULL, &s) == 0);
    CHECK(eddy_irc_server_serve(srv, s) == 0);
    n = snprintf(reg, sizeof reg, "NICK n%d\r\nUSER u%d 0 * :real %d\r\n", k, k,
                 k);
    CHECK(send(cs[k].fd, reg, (size_t)n, MSG_NOSIGNAL) == n);
  }
  turns(cs, 2);
  for (size_t i = 0; i < size;) {
    const uint8_t *nl = memchr(data + i, '\n', size - i);
    size_t end = nl ? (size_t)(nl - data) + 1 : size;
    int k = data[i] % NCLIENTS;
    if (end > i + 1 && cs[k].fd >= 0)
      (void)send(cs[k].fd, data + i + 1, end - i - 1, MSG_NOSIGNAL);
    i = end;
    turns(cs, 1);
  }
  (void)eddy_irc_server_say(srv, "#kept", "web", NULL, NULL, "from outside",
                            12);
  turns(cs, 3);
  for (int k = 0; k < NCLIENTS; k++) {
    close(cs[k].fd);
    cs[k].fd = -1;
  }
  for (int i = 0; i < 20 && eddy_irc_server_clients(srv) > 0; i++)
    CHECK(eddy_loop_run(loop, EDDY_RUN_NOWAIT) >= 0);
  CHECK(eddy_irc_server_clients(srv) == 0);
  return 0;
}
