/* resolv.c: the resolver's configuration, from resolv.conf(5) text.
 *
 * glibc's reading (resolv/res_init.c) is the model: a line's first word
 * is its keyword, lines it does not understand are skipped without a word,
 * the last `domain` or `search` line sets the search list, the first three
 * nameservers count, and options are clamped to glibc's limits rather than
 * refused. Garbage never fails the parse: a resolver must come up with the
 * configuration it can make sense of, as every other program on the host
 * does.
 *
 * The file is read with plain blocking calls through src/sys (so tests can
 * fail them): it is a small local file read once, when a resolver is made,
 * as glibc reads it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eddy/resolver.h"
#include "net/net.h"
#include "proto/dns/exchange.h"
#include "sys/alloc.h"
#include "sys/sys.h"

#define FILE_MAX (64 * 1024)
#define DEFAULT_PATH "/etc/resolv.conf"

void eddy_resolver_conf_init(eddy_resolver_conf *conf) {
  memset(conf, 0, sizeof *conf);
  conf->ndots = 1;
  conf->timeout_ns = 5 * EDDY_NSEC_PER_SEC;
  conf->attempts = 2;
}

/* ---- Words -------------------------------------------------------------------- */

typedef struct span {
  const char *p;
  size_t len;
} span;

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The next word of the line [*at, end), moving *at past it; len 0 at the
 * end of the line. */
static span next_word(const char **at, const char *end) {
  span w;
  const char *p = *at;
  while (p < end && is_space(*p))
    p++;
  w.p = p;
  while (p < end && !is_space(*p))
    p++;
  w.len = (size_t)(p - w.p);
  *at = p;
  return w;
}

static int word_is(span w, const char *s) {
  return w.len == strlen(s) && memcmp(w.p, s, w.len) == 0;
}

/* A decimal number of at most 4 digits, or -1. */
static int small_number(const char *p, size_t len) {
  int v = 0;
  if (len == 0 || len > 4)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

/* ---- Keywords ------------------------------------------------------------------ */

static void nameserver(eddy_resolver_conf *conf, span w) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *pct = memchr(w.p, '%', w.len);
  size_t len = pct ? (size_t)(pct - w.p) : w.len;
  int n, i = conf->nservers;
  if (i == EDDY_RESOLVER_SERVERS_MAX || len == 0 || len >= sizeof host)
    return;
  memcpy(host, w.p, len);
  host[len] = '\0';
  n = eddy__sockaddr_ip(AF_INET, host, 53, &conf->servers[i]);
  if (n < 0)
    n = eddy__sockaddr_ip(AF_INET6, host, 53, &conf->servers[i]);
  if (n < 0)
    return;
  conf->server_lens[i] = (socklen_t)n;
  conf->nservers++;
}

/* Whether w is a domain name; drops one final dot (except from "."). */
static int domain_word(span *w) {
  uint8_t wire[EDDY_DNS_NAME_MAX];
  if (w->len > 1 && w->p[w->len - 1] == '.' && w->p[w->len - 2] != '\\')
    w->len--;
  if (w->len == 0 || w->len >= sizeof((eddy_resolver_conf *)0)->search[0])
    return 0;
  return eddy_dns_name_from_text(w->p, w->len, NULL, wire) > 0;
}

/* `search` and `domain`: the list is replaced, unless no word on the line
 * is a name (then the line is ignored). */
static void search(eddy_resolver_conf *conf, const char *at, const char *end,
                   int max) {
  int n = 0;
  for (span w = next_word(&at, end); w.len > 0 && n < max;
       w = next_word(&at, end)) {
    if (!domain_word(&w))
      continue;
    if (n == 0)
      conf->nsearch = 0;
    memcpy(conf->search[n], w.p, w.len);
    conf->search[n][w.len] = '\0';
    conf->nsearch = ++n;
  }
}

static void option(eddy_resolver_conf *conf, span w) {
  const char *colon = memchr(w.p, ':', w.len);
  size_t klen = colon ? (size_t)(colon - w.p) : w.len;
  int v = colon ? small_number(colon + 1, w.len - klen - 1) : -1;
  span key = {w.p, klen};
  if (word_is(key, "edns0") && !colon) {
    conf->edns_udp_size = EDDY_DNS_EDNS_UDP_SIZE;
    return;
  }
  if (word_is(key, "rotate") && !colon) {
    conf->rotate = true;
    return;
  }
  if (v < 0)
    return;
  if (word_is(key, "ndots"))
    conf->ndots = v > EDDY_RESOLVER_NDOTS_MAX ? EDDY_RESOLVER_NDOTS_MAX : v;
  else if (word_is(key, "timeout"))
    conf->timeout_ns = (v < 1 ? 1
                        : v > EDDY_RESOLVER_TIMEOUT_MAX_S
                            ? EDDY_RESOLVER_TIMEOUT_MAX_S
                            : v) *
                       EDDY_NSEC_PER_SEC;
  else if (word_is(key, "attempts"))
    conf->attempts = v < 1 ? 1
                     : v > EDDY_RESOLVER_ATTEMPTS_MAX
                         ? EDDY_RESOLVER_ATTEMPTS_MAX
                         : v;
}

static void options(eddy_resolver_conf *conf, const char *at, const char *end) {
  for (span w = next_word(&at, end); w.len > 0; w = next_word(&at, end))
    option(conf, w);
}

static void line(eddy_resolver_conf *conf, const char *at, const char *end,
                 int *saw_search) {
  span key;
  if (at < end && (*at == '#' || *at == ';'))
    return;
  key = next_word(&at, end);
  if (word_is(key, "nameserver")) {
    nameserver(conf, next_word(&at, end));
  } else if (word_is(key, "domain")) {
    search(conf, at, end, 1);
    *saw_search = 1;
  } else if (word_is(key, "search")) {
    search(conf, at, end, EDDY_RESOLVER_SEARCH_MAX);
    *saw_search = 1;
  } else if (word_is(key, "options")) {
    options(conf, at, end);
  }
}

static int parse(eddy_resolver_conf *conf, const char *text, size_t len) {
  const char *p = text, *end = text + len;
  int saw_search = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    line(conf, p, eol, &saw_search);
    p = nl ? nl + 1 : end;
  }
  return saw_search;
}

void eddy_resolver_conf_parse(eddy_resolver_conf *conf, const char *text,
                              size_t len) {
  if (conf && text)
    (void)parse(conf, text, len);
}

/* ---- Files ----------------------------------------------------------------------- */

/* glibc's default search list: the host name's domain. */
static void host_domain(eddy_resolver_conf *conf) {
  char host[256];
  const char *dot;
  span w;
  if (gethostname(host, sizeof host - 1) != 0)
    return;
  host[sizeof host - 1] = '\0';
  if ((dot = strchr(host, '.')) == NULL || dot[1] == '\0')
    return;
  w.p = dot + 1;
  w.len = strlen(w.p);
  if (!domain_word(&w))
    return;
  memcpy(conf->search[0], w.p, w.len);
  conf->search[0][w.len] = '\0';
  conf->nsearch = 1;
}

/* Reads at most FILE_MAX bytes of path into a new buffer. */
static int read_file(const char *path, char **out, size_t *len) {
  char *buf;
  size_t n = 0;
  int fd = eddy__sys_open(path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return fd;
  if ((buf = eddy__malloc(FILE_MAX)) == NULL) {
    eddy__sys_close(fd);
    return -ENOMEM;
  }
  while (n < FILE_MAX) {
    ssize_t r = eddy__sys_read(fd, buf + n, FILE_MAX - n);
    if (r == 0)
      break;
    if (r < 0) {
      eddy__sys_close(fd);
      eddy__free(buf);
      return (int)r;
    }
    n += (size_t)r;
  }
  eddy__sys_close(fd);
  *out = buf;
  *len = n;
  return 0;
}

/* glibc's $LOCALDOMAIN and $RES_OPTIONS, over the system's file. */
static void environment(eddy_resolver_conf *conf) {
  const char *domains = secure_getenv("LOCALDOMAIN");
  const char *opts = secure_getenv("RES_OPTIONS");
  if (domains)
    search(conf, domains, domains + strlen(domains), EDDY_RESOLVER_SEARCH_MAX);
  if (opts)
    options(conf, opts, opts + strlen(opts));
}

int eddy_resolver_conf_load(eddy_resolver_conf *conf, const char *path) {
  char *text = NULL;
  size_t len = 0;
  int err;
  eddy_resolver_conf_init(conf);
  err = read_file(path ? path : DEFAULT_PATH, &text, &len);
  if (err && err != -ENOENT)
    return err;
  if (!text || !parse(conf, text, len))
    host_domain(conf);
  eddy__free(text);
  if (path == NULL)
    environment(conf);
  return 0;
}

int eddy_resolver_conf_add_server(eddy_resolver_conf *conf, const char *text) {
  eddy__dns_upstream u;
  if (conf == NULL || eddy__dns_upstream_parse(text, &u) != 0)
    return -EINVAL;
  if (conf->nservers >= EDDY_RESOLVER_SERVERS_MAX)
    return -ENOSPC;
  conf->servers[conf->nservers] = u.addr;
  conf->server_lens[conf->nservers] = u.addrlen;
  conf->nservers++;
  return 0;
}
