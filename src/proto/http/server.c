/* server.c: HTTP/1.x connections, requests handed to routes, responses
 * (see eddy/http.h, "The server").
 *
 * A connection reads into one buffer. The head is parsed there (parse.c),
 * the body gathered behind it (a Content-Length body as it comes, a
 * chunked one decoded in place, chunked.c), and only then is the
 * exchange handed to its handler, with the request's spans pointing into
 * the buffer. While the program holds an exchange the connection reads
 * nothing (so the buffer cannot move under those spans); when the
 * response ends, the request's bytes are consumed and the next request,
 * pipelined or not, is parsed from what is left.
 *
 * Responses made during one pass over the buffer (pipelined requests
 * answered at once) are gathered in an output buffer and written
 * together, in one system call, at the end of the pass.
 *
 * Timers: one per connection, embedded, used in turn for the head (the
 * whole head within header_timeout of its first byte, against slowloris),
 * the body (no byte for body_timeout) and keep-alive (an idle connection
 * between requests).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "eddy/buf.h"
#include "eddy/http.h"
#include "eddy/net.h"
#include "proto/http/http.h"
#include "sys/alloc.h"

#define MAX_PARAMS 8
#define MAX_HEADERS_ARRAY 128

typedef struct route {
  char *method;  /* NULL: any */
  char *pattern; /* "/users/:id", or "/files/" then "*path" */
  eddy_http_handler handler;
  void *arg;
  int owned;             /* arg is the server's to free */
  eddy_http_server *app; /* a mount: the sub-application, pattern a prefix */
} route;

typedef struct conn conn;

struct eddy_http_server {
  eddy_loop *loop;
  eddy_http_server_options o;
  route *routes;
  size_t nroutes, cap;
  conn *conns; /* every open connection */
  size_t nconns;
  eddy_http_exchange *held; /* exchanges whose connection has gone */
  int draining;
  char date[40]; /* the Date field, kept for the second it names */
  time_t date_at;
};

/* UPGRADED: the stream was handed over (eddy_http_upgrade) inside a pass;
 * the pass's caller frees the connection once it returns. */
enum { HEAD, BODY, HANDLING, DONE, UPGRADED };

/* Reused: a connection keeps one spare exchange, so a request costs no
 * allocation. Everything before `extra` is zeroed for each request; the
 * request and its fields are what the parser fills. */
struct eddy_http_exchange {
  conn *c; /* NULL once the connection has gone */
  eddy_http_server *srv;
  eddy_http_exchange *next_held;
  const char *body;
  size_t body_len;
  const char *path; /* what routes match: the path, less any mount prefix */
  size_t path_len;
  struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
  } params[MAX_PARAMS];
  size_t nparams;
  char *own; /* the request's bytes, once its connection has gone */
  int status;
  int started;     /* the response head has been written */
  uint64_t sent;   /* body bytes */
  int chunked;     /* a streamed response, chunked */
  int until_close; /* a streamed HTTP/1.0 response: the close ends it */
  void (*on_gone)(eddy_http_exchange *x, void *arg);
  void *gone_arg;
  int *ended;     /* set as the exchange ends */
  eddy_buf extra; /* response fields set by the program */
  eddy_http_request req;
  eddy_http_header headers[MAX_HEADERS_ARRAY];
};

struct conn {
  eddy_http_server *srv;
  conn *prev, *next;
  eddy_stream *s;
  eddy_buf in, out;
  eddy_buf later; /* bytes that came while the program held an exchange */
  eddy__timer timer;
  int state;
  int read_eof;
  int batching;    /* inside a pass: responses wait in out */
  int close_after; /* the current response is the last */
  size_t prev_len; /* bytes of an incomplete head already scanned */
  size_t body_at;  /* where the body starts (head_len) */
  size_t body_len; /* decoded body bytes so far, at body_at */
  size_t raw_at;   /* chunked: first byte not yet decoded */
  int64_t want;    /* Content-Length body: bytes still to come */
  eddy_http_chunked chunks;
  int continued;    /* 100 Continue sent */
  int64_t deadline; /* when the timer's business is due (it may fire
                       earlier, and then waits again) */
  eddy_http_exchange *x;
  eddy_http_exchange *spare; /* the next request's, the parser's output */
  const char *parsed_in;     /* where the buffer was when it was parsed */
};

static void process(conn *c);
static void conn_abort(conn *c);
static void conn_free(conn *c);
static void unlink_conn(conn *c);

/* ---- Options and the server ---------------------------------------------- */

static int64_t or_default(int64_t v, int64_t d) {
  return v > 0 ? v : d;
}

int eddy_http_server_new(eddy_loop *loop, const eddy_http_server_options *o,
                         eddy_http_server **out) {
  eddy_http_server *srv = eddy__calloc(1, sizeof *srv);
  if (srv == NULL)
    return -ENOMEM;
  srv->loop = loop;
  if (o)
    srv->o = *o;
  srv->o.max_body = srv->o.max_body ? srv->o.max_body : (1u << 20);
  srv->o.header_timeout_ns = or_default(srv->o.header_timeout_ns,
                                        60 * EDDY_NSEC_PER_SEC);
  srv->o.body_timeout_ns = or_default(srv->o.body_timeout_ns,
                                      60 * EDDY_NSEC_PER_SEC);
  srv->o.keepalive_timeout_ns = or_default(srv->o.keepalive_timeout_ns,
                                           75 * EDDY_NSEC_PER_SEC);
  *out = srv;
  return 0;
}

static void free_held(eddy_http_exchange *x) {
  if (x->ended)
    *x->ended = 1;
  eddy_buf_free(&x->extra);
  eddy__free(x->own);
  eddy__free(x);
}

static eddy_http_exchange *new_exchange(void) {
  eddy_http_exchange *x = eddy__calloc(1, sizeof *x);
  if (x)
    eddy_buf_init(&x->extra, 16384);
  return x;
}

/* Moves a span that pointed into [from, from + n) to the same place in to. */
static const char *moved(const char *p, const char *from, size_t n,
                         const char *to) {
  return p && p >= from && p < from + n ? to + (p - from) : p;
}

/* The connection is going and the program still holds x: the request's
 * bytes are copied out of the connection's buffer so that what the
 * program reads stays valid. Without memory for that, x keeps an empty
 * request. */
static void keep_request(eddy_http_exchange *x, const char *from, size_t n) {
  eddy_http_request *r = &x->req;
  char *to = eddy__malloc(n ? n : 1);
  if (to == NULL) {
    r->nheaders = 0;
    r->target = r->path = x->path = "/";
    r->target_len = r->path_len = x->path_len = 1;
    r->query = r->host = NULL;
    r->query_len = r->host_len = 0;
    x->body = NULL;
    x->body_len = x->nparams = 0;
    return;
  }
  memcpy(to, from, n);
  x->own = to;
  r->method_name = moved(r->method_name, from, n, to);
  r->target = moved(r->target, from, n, to);
  r->path = moved(r->path, from, n, to);
  r->query = moved(r->query, from, n, to);
  r->host = moved(r->host, from, n, to);
  for (size_t i = 0; i < r->nheaders; i++) {
    x->headers[i].name = moved(x->headers[i].name, from, n, to);
    x->headers[i].value = moved(x->headers[i].value, from, n, to);
  }
  for (size_t i = 0; i < x->nparams; i++)
    x->params[i].value = moved(x->params[i].value, from, n, to);
  x->path = moved(x->path, from, n, to);
  x->body = moved(x->body, from, n, to);
}

void eddy_http_server_free(eddy_http_server *srv) {
  if (srv == NULL)
    return;
  while (srv->conns)
    conn_abort(srv->conns);
  while (srv->held) {
    eddy_http_exchange *x = srv->held;
    srv->held = x->next_held;
    free_held(x);
  }
  for (size_t i = 0; i < srv->nroutes; i++) {
    eddy__free(srv->routes[i].method);
    eddy__free(srv->routes[i].pattern);
    if (srv->routes[i].owned)
      eddy__free(srv->routes[i].arg);
  }
  eddy__free(srv->routes);
  eddy__free(srv);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = eddy__malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static int add_route(eddy_http_server *srv, const char *method,
                     const char *pattern, eddy_http_handler h, void *arg,
                     eddy_http_server *app) {
  route r = {0};
  void *arr = srv->routes;
  if (pattern == NULL || pattern[0] != '/' || (h == NULL && app == NULL))
    return -EINVAL;
  if (eddy__grow(&arr, &srv->cap, srv->nroutes + 1, sizeof(route)))
    return -ENOMEM;
  srv->routes = arr;
  r.pattern = dup_str(pattern);
  r.method = method ? dup_str(method) : NULL;
  if (r.pattern == NULL || (method && r.method == NULL)) {
    eddy__free(r.pattern);
    eddy__free(r.method);
    return -ENOMEM;
  }
  r.handler = h;
  r.arg = arg;
  r.app = app;
  srv->routes[srv->nroutes++] = r;
  return 0;
}

int eddy_http_route(eddy_http_server *srv, const char *method,
                    const char *pattern, eddy_http_handler handler, void *arg) {
  return add_route(srv, method, pattern, handler, arg, NULL);
}

int eddy__http_route_owned(eddy_http_server *srv, const char *method,
                           const char *pattern, eddy_http_handler handler,
                           void *arg) {
  int e = add_route(srv, method, pattern, handler, arg, NULL);
  if (e == 0)
    srv->routes[srv->nroutes - 1].owned = 1;
  return e;
}

int eddy_http_mount(eddy_http_server *srv, const char *prefix,
                    eddy_http_server *app) {
  if (app == NULL || app == srv)
    return -EINVAL;
  return add_route(srv, NULL, prefix, NULL, NULL, app);
}

size_t eddy_http_server_connections(const eddy_http_server *srv) {
  return srv->nconns;
}

/* ---- Routes ---------------------------------------------------------------- */

/* Matches path against pattern, filling x's params. */
static int match(const char *pattern, const char *path, size_t n,
                 eddy_http_exchange *x) {
  const char *p = pattern;
  size_t i = 0;
  x->nparams = 0;
  while (*p) {
    if (*p == ':' || *p == '*') {
      int rest = *p == '*';
      const char *name = ++p;
      size_t start = i;
      while (*p && *p != '/')
        p++;
      while (i < n && (rest || path[i] != '/'))
        i++;
      if ((i == start && !rest) || x->nparams == MAX_PARAMS)
        return 0;
      x->params[x->nparams].name = name;
      x->params[x->nparams].name_len = (size_t)(p - name);
      x->params[x->nparams].value = path + start;
      x->params[x->nparams].value_len = i - start;
      x->nparams++;
      continue;
    }
    if (i == n || path[i] != *p)
      return 0;
    i++;
    p++;
  }
  return i == n;
}

/* A mount's prefix covers the path at a segment boundary. */
static int under(const char *prefix, const char *path, size_t n) {
  size_t k = strlen(prefix);
  if (k > 0 && prefix[k - 1] == '/')
    k--;
  return n >= k && memcmp(prefix, path, k) == 0 && (n == k || path[k] == '/');
}

/* Finds the route for x and calls it; 404, or 405 with Allow. */
static void dispatch(eddy_http_server *app, eddy_http_exchange *x) {
  int path_matched = 0;
  char allow[128] = "";
  for (size_t i = 0; i < app->nroutes; i++) {
    route *r = &app->routes[i];
    if (r->app) {
      if (under(r->pattern, x->path, x->path_len)) {
        size_t k = strlen(r->pattern);
        if (k > 0 && r->pattern[k - 1] == '/')
          k--;
        x->path += k;
        x->path_len -= k;
        if (x->path_len == 0)
          x->path = "/", x->path_len = 1;
        dispatch(r->app, x);
        return;
      }
      continue;
    }
    if (!match(r->pattern, x->path, x->path_len, x))
      continue;
    if (r->method == NULL ||
        (strlen(r->method) == x->req.method_len &&
         memcmp(r->method, x->req.method_name, x->req.method_len) == 0) ||
        (x->req.method == EDDY_HTTP_HEAD && strcmp(r->method, "GET") == 0)) {
      r->handler(x, r->arg);
      return;
    }
    path_matched = 1;
    if (strlen(allow) + strlen(r->method) + 3 < sizeof allow) {
      if (allow[0])
        strcat(allow, ", ");
      strcat(allow, r->method);
    }
  }
  x->nparams = 0;
  if (path_matched) {
    (void)eddy_http_set_header(x, "Allow", allow);
    (void)eddy_http_respond_status(x, 405);
  } else {
    (void)eddy_http_respond_status(x, 404);
  }
}

/* ---- Responses --------------------------------------------------------------- */

const char *eddy_http_reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 416:
    return "Range Not Satisfiable";
  case 417:
    return "Expectation Failed";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

static const char *date_field(eddy_http_server *srv) {
  time_t now = time(NULL);
  if (now != srv->date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    srv->date_at = now;
  }
  return srv->date;
}

int eddy_http_set_header(eddy_http_exchange *x, const char *name,
                         const char *value) {
  size_t nl = strlen(name), vl = strlen(value);
  int e;
  if (x->started)
    return -EALREADY;
  for (size_t i = 0; i < nl; i++)
    if (!eddy__http_is_tchar((unsigned char)name[i]))
      return -EINVAL;
  for (size_t i = 0; i < vl; i++)
    if (!eddy__http_is_value_char((unsigned char)value[i]))
      return -EINVAL; /* a CR or LF would split the response */
  if (nl == 0)
    return -EINVAL;
  if ((e = eddy_buf_append(&x->extra, name, nl)) == 0 &&
      (e = eddy_buf_append(&x->extra, ": ", 2)) == 0 &&
      (e = eddy_buf_append(&x->extra, value, vl)) == 0)
    e = eddy_buf_append(&x->extra, "\r\n", 2);
  return e;
}

/* Bytes for the connection wait in its output buffer: a pass over
 * pipelined requests, or one call of the program, writes them together. */
static int put(conn *c, const void *p, size_t n) {
  return eddy_buf_append(&c->out, p, n);
}

/* Writes the output buffer, and then body if given, in one call. */
static int flush_with(conn *c, const void *body, size_t len) {
  struct iovec iov[2];
  int n = 0, e;
  if (eddy_buf_len(&c->out) > 0) {
    iov[n].iov_base = eddy_buf_data(&c->out);
    iov[n++].iov_len = eddy_buf_len(&c->out);
  }
  if (len > 0) {
    iov[n].iov_base = (void *)body;
    iov[n++].iov_len = len;
  }
  if (n == 0)
    return 0;
  e = eddy_stream_writev(c->s, iov, n);
  eddy_buf_reset(&c->out);
  return e;
}

static void flush_out(conn *c) {
  (void)flush_with(c, NULL, 0);
}

/* Outside a pass, what the program's call produced goes now. */
static int settle(conn *c, int e) {
  if (!c->batching) {
    int f = flush_with(c, NULL, 0);
    return e ? e : f;
  }
  return e;
}

/* A response head is built by copying, without printf: it is made for
 * every request. */
typedef struct head_buf {
  char *p, *end;
} head_buf;

static void head_add(head_buf *h, const char *s, size_t n) {
  if ((size_t)(h->end - h->p) < n)
    n = (size_t)(h->end - h->p); /* cannot happen: the parts are bounded */
  memcpy(h->p, s, n);
  h->p += n;
}

static void head_str(head_buf *h, const char *s) {
  head_add(h, s, strlen(s));
}

static void head_num(head_buf *h, uint64_t v) {
  char d[24];
  size_t i = sizeof d;
  do
    d[--i] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  head_add(h, d + i, sizeof d - i);
}

/* The response head; length < 0: streamed. */
static int write_head(eddy_http_exchange *x, int status,
                      const char *content_type, int64_t length) {
  conn *c = x->c;
  char buf[512];
  head_buf h = {buf, buf + sizeof buf};
  int e, no_body = status == 204 || status == 304 || status < 200;
  if (c->srv->draining || !(x->req.flags & EDDY_HTTP_KEEP_ALIVE) || c->read_eof)
    c->close_after = 1;
  if (length < 0 && !no_body) {
    if (x->req.version_minor >= 1)
      x->chunked = 1;
    else
      x->until_close = c->close_after = 1;
  }
  head_add(&h, "HTTP/1.1 ", 9);
  head_num(&h, (uint64_t)status);
  head_add(&h, " ", 1);
  head_str(&h, eddy_http_reason(status));
  head_add(&h, "\r\nServer: eddy\r\nDate: ", 22);
  head_str(&h, date_field(c->srv));
  head_add(&h, "\r\n", 2);
  if (content_type && !no_body && strlen(content_type) < 256) {
    head_add(&h, "Content-Type: ", 14);
    head_str(&h, content_type);
    head_add(&h, "\r\n", 2);
  }
  if (length >= 0 && !no_body) {
    head_add(&h, "Content-Length: ", 16);
    head_num(&h, (uint64_t)length);
    head_add(&h, "\r\n", 2);
  }
  if (x->chunked)
    head_str(&h, "Transfer-Encoding: chunked\r\n");
  if (c->close_after)
    head_str(&h, "Connection: close\r\n");
  else if (x->req.version_minor == 0)
    head_str(&h, "Connection: keep-alive\r\n");
  x->status = status;
  x->started = 1;
  if ((e = put(c, buf, (size_t)(h.p - buf))) == 0 &&
      (e = put(c, eddy_buf_data(&x->extra), eddy_buf_len(&x->extra))) == 0)
    e = put(c, "\r\n", 2);
  return e;
}

static void exchange_done(eddy_http_exchange *x);
static void take_later(conn *c);

int eddy_http_respond(eddy_http_exchange *x, int status,
                      const char *content_type, const void *body, size_t len) {
  int e = 0;
  if (x->started)
    return -EALREADY;
  if (x->c == NULL) { /* the client has gone: nothing to send */
    exchange_done(x);
    return EDDY_ECLOSED;
  }
  if (status < 200 || status > 999)
    return -EINVAL;
  e = write_head(x, status, content_type, (int64_t)len);
  if (len == 0 || x->req.method == EDDY_HTTP_HEAD || status == 204 ||
      status == 304)
    len = 0;
  /* A large body goes with the head in one writev, not copied; a small
   * one joins the pass's output. */
  if (e == 0 && len > 0 && (len > 16384 || !x->c->batching))
    e = flush_with(x->c, body, len);
  else if (e == 0 && len > 0)
    e = put(x->c, body, len);
  x->sent += len;
  exchange_done(x);
  return e;
}

int eddy_http_respond_file(eddy_http_exchange *x, int status,
                           const char *content_type, int fd, off_t offset,
                           size_t len) {
  int e;
  if (x->started || status < 200 || status > 999 ||
      (fd < 0 && len > 0 && x->req.method != EDDY_HTTP_HEAD)) {
    if (fd >= 0)
      close(fd);
    return x->started ? -EALREADY : -EINVAL;
  }
  if (x->c == NULL) {
    if (fd >= 0)
      close(fd);
    exchange_done(x);
    return EDDY_ECLOSED;
  }
  e = write_head(x, status, content_type, (int64_t)len);
  if (e == 0)
    e = flush_with(x->c, NULL, 0);
  if (x->req.method == EDDY_HTTP_HEAD || len == 0) {
    if (fd >= 0)
      close(fd);
  } else if (e == 0) {
    e = eddy_stream_sendfile_owned(x->c->s, fd, offset, len);
    x->sent += len;
  } else {
    close(fd);
  }
  exchange_done(x);
  return e;
}

int eddy_http_begin(eddy_http_exchange *x, int status,
                    const char *content_type) {
  if (x->started)
    return -EALREADY;
  if (x->c == NULL)
    return EDDY_ECLOSED;
  if (status < 200 || status > 999)
    return -EINVAL;
  return settle(x->c, write_head(x, status, content_type, -1));
}

int eddy_http_write(eddy_http_exchange *x, const void *data, size_t len) {
  char size[24];
  int e, n;
  if (!x->started)
    return -EINVAL;
  if (x->c == NULL)
    return EDDY_ECLOSED;
  if (len == 0 || x->req.method == EDDY_HTTP_HEAD)
    return 0;
  if (x->chunked) {
    n = snprintf(size, sizeof size, "%zx\r\n", len);
    if ((e = put(x->c, size, (size_t)n)) != 0)
      return e;
  }
  if ((e = put(x->c, data, len)) == 0 && x->chunked)
    e = put(x->c, "\r\n", 2);
  x->sent += len;
  return settle(x->c, e);
}

int eddy_http_write_framed(eddy_http_exchange *x, void *data, size_t len,
                           void (*free_fn)(void *)) {
  int e;
  if (!x->started || x->c == NULL || x->req.method == EDDY_HTTP_HEAD) {
    if (free_fn)
      free_fn(data);
    return !x->started ? -EINVAL : x->c == NULL ? EDDY_ECLOSED : 0;
  }
  if ((e = flush_with(x->c, NULL, 0)) != 0) { /* what came before goes first */
    if (free_fn)
      free_fn(data);
    return e;
  }
  x->sent += len;
  return eddy_stream_write_owned(x->c->s, data, len, free_fn);
}

int eddy_http_chunked_response(const eddy_http_exchange *x) {
  return x->chunked;
}

int eddy_http_end(eddy_http_exchange *x) {
  int e = 0;
  if (!x->started)
    return -EINVAL;
  if (x->c && x->chunked && x->req.method != EDDY_HTTP_HEAD)
    e = put(x->c, "0\r\n\r\n", 5);
  exchange_done(x);
  return e;
}

int eddy_http_over_high(const eddy_http_exchange *x) {
  return x->c ? eddy_stream_over_high(x->c->s) : 0;
}

void eddy_http_on_gone(eddy_http_exchange *x,
                       void (*cb)(eddy_http_exchange *x, void *arg),
                       void *arg) {
  x->on_gone = cb;
  x->gone_arg = arg;
}

int eddy_http_respond_status(eddy_http_exchange *x, int status) {
  char body[96];
  int n = snprintf(body, sizeof body, "%d %s\n", status,
                   eddy_http_reason(status));
  return eddy_http_respond(x, status, "text/plain; charset=utf-8", body,
                           (size_t)n);
}
/* ---- The request's accessors ---------------------------------------------------- */

const eddy_http_request *eddy_http_request_of(const eddy_http_exchange *x) {
  return &x->req;
}

const char *eddy_http_body(const eddy_http_exchange *x, size_t *len) {
  *len = x->body_len;
  return x->body;
}

int eddy_http_param(const eddy_http_exchange *x, const char *name,
                    const char **value, size_t *len) {
  for (size_t i = 0; i < x->nparams; i++)
    if (strlen(name) == x->params[i].name_len &&
        memcmp(name, x->params[i].name, x->params[i].name_len) == 0) {
      *value = x->params[i].value;
      *len = x->params[i].value_len;
      return 0;
    }
  return -ENOENT;
}

eddy_loop *eddy_http_loop(const eddy_http_exchange *x) {
  return x->srv->loop;
}

void eddy__http_watch_end(eddy_http_exchange *x, int *flag) {
  x->ended = flag;
}

eddy_stream *eddy_http_stream(const eddy_http_exchange *x) {
  return x->c ? x->c->s : NULL;
}

/* The connection leaves the server: the head goes out with whatever the
 * pass had gathered before it, the bytes after the request go to rest,
 * and the stream is the caller's. */
int eddy_http_upgrade(eddy_http_exchange *x, int status, eddy_buf *rest,
                      eddy_stream **out) {
  conn *c = x->c;
  eddy_http_server *srv = x->srv;
  char head[256];
  size_t after;
  int n, e;
  *out = NULL;
  if (x->started)
    return -EALREADY;
  if (status < 101 || status > 299 || (status > 101 && status < 200))
    return -EINVAL;
  if (c == NULL) {
    exchange_done(x);
    return EDDY_ECLOSED;
  }
  n = snprintf(head, sizeof head,
               "HTTP/1.1 %d %s\r\nServer: eddy\r\nDate: %s\r\n", status,
               eddy_http_reason(status), date_field(srv));
  after = c->raw_at;
  if ((e = put(c, head, (size_t)n)) == 0 &&
      (e = put(c, eddy_buf_data(&x->extra), eddy_buf_len(&x->extra))) == 0 &&
      (e = put(c, "\r\n", 2)) == 0 && rest != NULL &&
      (e = eddy_buf_append(rest, eddy_buf_data(&c->in) + after,
                           eddy_buf_len(&c->in) - after)) == 0)
    e = eddy_buf_append(rest, eddy_buf_data(&c->later),
                        eddy_buf_len(&c->later));
  if (e == 0)
    e = flush_with(c, NULL, 0);
  if (e != 0) { /* the connection ends as any other would */
    c->close_after = 1;
    eddy_stream_abort(c->s);
    exchange_done(x);
    return e == -ENOMEM ? -ENOMEM : EDDY_ECLOSED;
  }
  x->status = status;
  x->started = 1;
  if (srv->o.access)
    srv->o.access(x, status, 0, srv->o.arg);
  *out = c->s;
  eddy__timer_stop(&c->timer);
  unlink_conn(c);
  eddy_stream_set_callbacks(c->s, NULL, NULL);
  eddy_stream_resume(c->s);
  c->x = NULL;
  c->s = NULL;
  free_held(x);
  if (c->batching)
    c->state = UPGRADED; /* the pass's caller frees c */
  else
    conn_free(c);
  if (srv->o.closed)
    srv->o.closed(srv, srv->o.arg);
  return 0;
}

/* ---- The connection -------------------------------------------------------------- */

/* The connection's business (a head, a body, an idle wait) is due in ns.
 * A later deadline leaves the timer where it is, to wait again when it
 * fires: a request answered at once then costs no move in the heap. */
static void arm(conn *c, int64_t ns) {
  int64_t at = eddy__now(c->srv->loop) + ns;
  c->deadline = at;
  if (!eddy__timer_active(&c->timer) || eddy__timer_deadline(&c->timer) > at)
    (void)eddy__timer_start(&c->timer, ns);
}

/* An error eddy answers itself, then closes. */
static void refuse(conn *c, int status) {
  char text[256];
  int n = snprintf(text, sizeof text,
                   "HTTP/1.1 %d %s\r\nServer: eddy\r\nDate: %s\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%d %s\n",
                   status, eddy_http_reason(status), date_field(c->srv),
                   strlen(eddy_http_reason(status)) + 5, status,
                   eddy_http_reason(status));
  (void)put(c, text, (size_t)n);
  flush_out(c);
  c->state = DONE;
  eddy_stream_close(c->s);
}

static void timer_fired(eddy__timer *t, void *arg) {
  conn *c = arg;
  int64_t now = eddy__now(c->srv->loop);
  (void)t;
  if (c->state != HEAD && c->state != BODY)
    return;
  if (now < c->deadline) {
    (void)eddy__timer_start(&c->timer, c->deadline - now);
    return;
  }
  if (c->state == HEAD && eddy_buf_len(&c->in) == 0) {
    eddy_stream_close(c->s); /* an idle keep-alive connection */
    c->state = DONE;
  } else if (c->state == HEAD || c->state == BODY) {
    refuse(c, 408);
  }
}

/* The exchange is over: its request's bytes go, the next is read. */
static void exchange_done(eddy_http_exchange *x) {
  conn *c = x->c;
  eddy_http_server *srv = x->srv;
  if (srv->o.access)
    srv->o.access(x, x->started ? x->status : 499, x->sent, srv->o.arg);
  if (c == NULL) { /* held since its connection went */
    eddy_http_exchange **p = &srv->held;
    while (*p && *p != x)
      p = &(*p)->next_held;
    if (*p)
      *p = x->next_held;
    free_held(x);
    return;
  }
  c->x = NULL;
  eddy_buf_consume(&c->in, c->raw_at);
  if (c->spare == NULL) { /* kept for the next request */
    if (x->ended)
      *x->ended = 1;
    x->ended = NULL;
    eddy_buf_reset(&x->extra);
    c->spare = x;
  } else {
    free_held(x);
  }
  c->state = HEAD;
  c->prev_len = 0;
  if (c->close_after) {
    flush_out(c);
    c->state = DONE;
    eddy_stream_close(c->s);
    return;
  }
  if (c->batching)
    take_later(c);
  if (!c->batching) { /* an answer given later: go on from here */
    take_later(c);
    c->batching = 1;
    process(c);
    c->batching = 0;
    if (c->state == UPGRADED)
      conn_free(c);
    else if (c->state != DONE)
      flush_out(c);
  }
}

/* The body is complete: the exchange goes to its handler. */
static void handle(conn *c) {
  eddy_http_exchange *x = c->spare;
  c->spare = NULL;
  /* The request's spans point into the buffer where it lay when parsed:
   * if appends have moved it since, the head is parsed again. */
  if (c->parsed_in != eddy_buf_data(&c->in) &&
      eddy_http_parse_request(eddy_buf_data(&c->in), c->body_at, 0,
                              &c->srv->o.limits, x->headers, MAX_HEADERS_ARRAY,
                              &x->req) != 1) {
    free_held(x); /* cannot happen: the same bytes parsed before */
    refuse(c, 500);
    return;
  }
  memset(x, 0, offsetof(eddy_http_exchange, extra));
  x->c = c;
  x->srv = c->srv;
  x->body = eddy_buf_data(&c->in) + c->body_at;
  x->body_len = c->body_len;
  x->path = x->req.path;
  x->path_len = x->req.path_len;
  c->x = x;
  c->state = HANDLING; /* the timer, if it fires, does nothing now */
  dispatch(c->srv, x);
}

/* Reads what a body has brought; 1 once complete. */
static int body_progress(conn *c) {
  char *data = eddy_buf_data(&c->in);
  size_t have = eddy_buf_len(&c->in);
  if (c->want >= 0) { /* Content-Length, or no body */
    size_t got = have - c->body_at;
    if ((int64_t)got >= c->want) {
      c->body_len = (size_t)c->want;
      c->raw_at = c->body_at + c->body_len;
      return 1;
    }
    return 0;
  }
  for (;;) {
    size_t n = have - c->raw_at, rest = 0;
    int rc = eddy_http_chunked_decode(&c->chunks, data + c->raw_at, &n, &rest);
    if (rc == EDDY_EHTTP)
      return -400;
    if (c->body_len + n > c->srv->o.max_body)
      return -413;
    memmove(data + c->body_at + c->body_len, data + c->raw_at, n);
    c->body_len += n;
    if (rc == 1) {
      c->raw_at = have - rest;
      return 1;
    }
    c->raw_at = have;
    return 0;
  }
}

/* One pass over what the buffer holds: parse, gather bodies, hand over. */
static void process(conn *c) {
  while (c->state == HEAD || c->state == BODY) {
    size_t have = eddy_buf_len(&c->in);
    if (c->state == HEAD) {
      eddy_http_request *req;
      int rc;
      if (have == 0) {
        if (c->read_eof) {
          c->state = DONE;
          eddy_stream_close(c->s);
          return;
        }
        if (c->srv->draining) {
          c->state = DONE;
          eddy_stream_close(c->s);
          return;
        }
        arm(c, c->srv->o.keepalive_timeout_ns);
        return;
      }
      if (c->spare == NULL && (c->spare = new_exchange()) == NULL) {
        refuse(c, 503);
        return;
      }
      req = &c->spare->req;
      c->parsed_in = eddy_buf_data(&c->in);
      rc = eddy_http_parse_request(c->parsed_in, have, c->prev_len,
                                   &c->srv->o.limits, c->spare->headers,
                                   MAX_HEADERS_ARRAY, req);
      if (rc == EDDY_EHTTP) {
        refuse(c, req->status);
        return;
      }
      if (rc == 0) {
        if (c->prev_len == 0) /* the whole head within the timeout */
          arm(c, c->srv->o.header_timeout_ns);
        c->prev_len = have;
        if (c->read_eof) {
          c->state = DONE;
          eddy_stream_close(c->s);
        }
        return;
      }
      c->body_at = req->head_len;
      c->body_len = 0;
      c->raw_at = req->head_len;
      c->want = req->content_length;
      memset(&c->chunks, 0, sizeof c->chunks);
      if (req->flags & EDDY_HTTP_CHUNKED) {
        c->want = -1;
        c->chunks.max_trailers = c->srv->o.limits.max_head;
      } else if (req->content_length < 0) {
        c->want = 0;
      }
      if (c->want > 0 && (uint64_t)c->want > c->srv->o.max_body) {
        refuse(c, 413);
        return;
      }
      c->state = BODY;
      c->continued = 0;
      if ((req->flags & EDDY_HTTP_EXPECT_CONTINUE) && c->want != 0 &&
          have == req->head_len) {
        (void)put(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->continued = 1;
      }
    }
    {
      int rc = body_progress(c);
      if (rc < 0) {
        refuse(c, -rc);
        return;
      }
      if (rc == 0) {
        if (c->read_eof) {
          c->state = DONE;
          eddy_stream_close(c->s);
        } else {
          arm(c, c->srv->o.body_timeout_ns);
        }
        return;
      }
    }
    handle(c);
  }
}

/* Bytes that came while the program held an exchange join the input once
 * it is over (they could not before: the request's spans point into it). */
static void take_later(conn *c) {
  size_t n = eddy_buf_len(&c->later);
  if (n == 0)
    return;
  if (eddy_buf_append(&c->in, eddy_buf_data(&c->later), n) != 0) {
    eddy_buf_reset(&c->later);
    refuse(c, 431);
    return;
  }
  eddy_buf_reset(&c->later);
  eddy_stream_resume(c->s);
}

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  conn *c = arg;
  (void)s;
  if (c->state == HANDLING) {
    /* Still read, so that a client that goes away is seen at once; what
     * it sends meanwhile waits, up to a bound, then reading pauses. */
    if (eddy_buf_append(&c->later, data, len) != 0 ||
        eddy_buf_len(&c->later) >= 65536)
      eddy_stream_pause(c->s);
    return;
  }
  if (c->state == DONE)
    return;
  if (eddy_buf_append(&c->in, data, len) != 0) {
    /* Past the buffer's cap: the head or body limits were not enough. */
    refuse(c, c->state == BODY ? 413 : 431);
    return;
  }
  if (c->state == BODY)
    arm(c, c->srv->o.body_timeout_ns);
  c->batching = 1;
  process(c);
  c->batching = 0;
  if (c->state == UPGRADED)
    conn_free(c);
  else if (c->state != DONE)
    flush_out(c);
}

static void on_eof(eddy_stream *s, void *arg) {
  conn *c = arg;
  (void)s;
  c->read_eof = 1;
  /* While the program holds an exchange, the end of the client's bytes is
   * the client going away (as nginx and Twisted take it): the program
   * hears of it through on_gone. Requests already read whole are still
   * answered. */
  if (c->state == HANDLING) {
    c->state = DONE;
    eddy_stream_close(c->s);
    return;
  }
  if (c->state == HEAD || c->state == BODY) {
    c->batching = 1;
    process(c);
    c->batching = 0;
    if (c->state == UPGRADED)
      conn_free(c);
    else if (c->state != DONE)
      flush_out(c);
  }
}

static void unlink_conn(conn *c) {
  eddy_http_server *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nconns--;
}

static void on_close(eddy_stream *s, int status, const char *detail,
                     void *arg) {
  conn *c = arg;
  eddy_http_server *srv = c->srv;
  eddy_http_exchange *x = c->x;
  (void)s;
  (void)status;
  (void)detail;
  eddy__timer_stop(&c->timer);
  unlink_conn(c);
  if (x) { /* the program still holds it: keep it until it ends it */
    keep_request(x, eddy_buf_data(&c->in), c->raw_at);
    x->c = NULL;
    x->next_held = c->srv->held;
    c->srv->held = x;
    if (x->on_gone)
      x->on_gone(x, x->gone_arg);
  }
  conn_free(c);
  if (srv->o.closed)
    srv->o.closed(srv, srv->o.arg);
}

static void conn_free(conn *c) {
  if (c->spare)
    free_held(c->spare);
  eddy_buf_free(&c->in);
  eddy_buf_free(&c->out);
  eddy_buf_free(&c->later);
  eddy__free(c);
}

static const eddy_stream_callbacks conn_callbacks = {.data = on_data,
                                                     .eof = on_eof,
                                                     .close = on_close};

int eddy_http_server_serve(eddy_http_server *srv, eddy_stream *s) {
  conn *c = eddy__calloc(1, sizeof *c);
  size_t head = srv->o.limits.max_head ? srv->o.limits.max_head
                                       : EDDY_HTTP_DEFAULT_MAX_HEAD;
  if (c == NULL) {
    eddy_stream_abort(s);
    return -ENOMEM;
  }
  c->srv = srv;
  c->s = s;
  /* The head, the body, and room for the raw chunked framing. */
  eddy_buf_init(&c->in, head + srv->o.max_body * 2 + 65536);
  eddy_buf_init(&c->out, 0);
  eddy_buf_init(&c->later, 1u << 20);
  eddy__timer_init(srv->loop, &c->timer, timer_fired, c);
  c->next = srv->conns;
  if (c->next)
    c->next->prev = c;
  srv->conns = c;
  srv->nconns++;
  eddy_stream_set_callbacks(s, &conn_callbacks, c);
  arm(c, srv->o.keepalive_timeout_ns);
  return 0;
}

/* For eddy_http_server_free: the stream's close callback would run from
 * the loop, after the server is gone, so it is detached and run now. */
static void conn_abort(conn *c) {
  eddy_stream_abort(c->s);
  eddy_stream_set_callbacks(c->s, NULL, NULL);
  on_close(c->s, -ECONNABORTED, "server freed", c);
}

void eddy_http_server_drain(eddy_http_server *srv) {
  srv->draining = 1;
  for (conn *c = srv->conns; c; c = c->next)
    if (c->state == HEAD && eddy_buf_len(&c->in) == 0) {
      c->state = DONE;
      eddy_stream_close(c->s);
    }
}
