/* parse.c: the HTTP/1.x request head parser (see eddy/http.h).
 *
 * The head is parsed only once it is complete: a call first looks for the
 * empty line that ends it, starting where the last call stopped, so bytes
 * trickling in cost one look each. Until then only the request line is
 * checked, once, as soon as it is whole, so that garbage is refused at
 * once rather than after the header timeout; and the limits, so that an
 * endless line is refused when it passes them. */
#include <string.h>

#include "eddy/http.h"
#include "proto/http/http.h"

/* ---- Characters (RFC 9110 section 5.6.2) ---------------------------------- */

/* tchar: the characters of a token (method, field name). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int eddy__http_is_tchar(unsigned char c) {
  return tchar[c];
}

/* A field value's bytes: VCHAR, SP, HTAB, obs-text. */
int eddy__http_is_value_char(unsigned char c) {
  return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* A request target's bytes: no space, no control; obs-text allowed, as
 * clients send UTF-8 unencoded more often than they should. */
static int is_target_char(unsigned char c) {
  return c > ' ' && c != 0x7f;
}

static unsigned char lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int eddy__http_ieq(const char *a, size_t alen, const char *b) {
  size_t i = 0;
  for (; i < alen && b[i] != '\0'; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return 0;
  return i == alen && b[i] == '\0';
}

/* ---- Results -------------------------------------------------------------- */

static int refuse(eddy_http_request *req, int status, const char *reason) {
  req->status = status;
  req->reason = reason;
  return EDDY_EHTTP;
}

/* The end of the line that starts at p: the offset of its LF, or -1. A CR
 * is allowed only just before the LF; *bad_cr is set for one elsewhere. */
static long line_end(const char *buf, size_t from, size_t len, int *bad_cr) {
  const char *lf = memchr(buf + from, '\n', len - from);
  const char *cr = memchr(buf + from, '\r',
                          (lf ? (size_t)(lf - buf) : len) - from);
  if (cr != NULL && cr + 1 != lf && (lf != NULL || cr + 1 < buf + len))
    *bad_cr = 1;
  return lf ? (long)(lf - buf) : -1;
}

/* The line's content ends before its CR, if it has one. */
static size_t content_end(const char *buf, size_t start, size_t lf) {
  return lf > start && buf[lf - 1] == '\r' ? lf - 1 : lf;
}

/* ---- The request line ----------------------------------------------------- */

static const struct {
  const char *name;
  eddy_http_method method;
} methods[] = {{"GET", EDDY_HTTP_GET},       {"HEAD", EDDY_HTTP_HEAD},
               {"POST", EDDY_HTTP_POST},     {"PUT", EDDY_HTTP_PUT},
               {"DELETE", EDDY_HTTP_DELETE}, {"OPTIONS", EDDY_HTTP_OPTIONS},
               {"PATCH", EDDY_HTTP_PATCH},   {"CONNECT", EDDY_HTTP_CONNECT},
               {"TRACE", EDDY_HTTP_TRACE}};

static eddy_http_method method_of(const char *p, size_t n) {
  for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
    if (strlen(methods[i].name) == n && memcmp(methods[i].name, p, n) == 0)
      return methods[i].method;
  return EDDY_HTTP_OTHER;
}

/* Splits the target into path and query, by its form (RFC 9112 3.2). */
static int split_target(eddy_http_request *req) {
  const char *t = req->target, *end = t + req->target_len, *q;
  if (memchr(t, '#', req->target_len))
    return refuse(req, 400, "a fragment in the request target");
  if (req->method == EDDY_HTTP_CONNECT) { /* authority-form: host:port */
    if (t[0] == '/' || memchr(t, '/', req->target_len) ||
        !memchr(t, ':', req->target_len))
      return refuse(req, 400, "CONNECT needs host:port as its target");
    req->path = t;
    req->path_len = req->target_len;
    return 0;
  }
  if (req->target_len == 1 && t[0] == '*') { /* asterisk-form */
    if (req->method != EDDY_HTTP_OPTIONS)
      return refuse(req, 400, "a '*' target is for OPTIONS only");
    req->path = t;
    req->path_len = 1;
    return 0;
  }
  if (t[0] != '/') { /* absolute-form: scheme "://" authority path */
    const char *colon = memchr(t, ':', req->target_len);
    const char *p = colon ? colon + 1 : NULL;
    if (colon == NULL || colon == t || end - p < 2 || p[0] != '/' ||
        p[1] != '/')
      return refuse(req, 400, "a request target that is not a path or URI");
    for (const char *s = t; s < colon; s++)
      if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
            (s > t && ((*s >= '0' && *s <= '9') || *s == '+' || *s == '-' ||
                       *s == '.'))))
        return refuse(req, 400, "a request target that is not a path or URI");
    p += 2;
    while (p < end && *p != '/' && *p != '?')
      p++;
    if (p == end || *p == '?') { /* "http://h" or "http://h?q": path "/" */
      req->path = "/";
      req->path_len = 1;
      if (p < end) {
        req->query = p + 1;
        req->query_len = (size_t)(end - p - 1);
      }
      return 0;
    }
    t = p;
  }
  q = memchr(t, '?', (size_t)(end - t));
  req->path = t;
  req->path_len = (size_t)((q ? q : end) - t);
  if (q) {
    req->query = q + 1;
    req->query_len = (size_t)(end - q - 1);
  }
  return 0;
}

/* method SP request-target SP HTTP-version, in buf[start, end). */
static int request_line(const char *buf, size_t start, size_t end,
                        eddy_http_request *req) {
  const char *p = buf + start, *e = buf + end, *m = p, *t;
  while (p < e && tchar[(unsigned char)*p])
    p++;
  if (p == m || p == e || *p != ' ')
    return refuse(req, 400, "a malformed request line");
  req->method_name = m;
  req->method_len = (size_t)(p - m);
  req->method = method_of(m, req->method_len);
  t = ++p;
  while (p < e && is_target_char((unsigned char)*p))
    p++;
  if (p == t || p == e || *p != ' ')
    return refuse(req, 400, "a malformed request line");
  req->target = t;
  req->target_len = (size_t)(p - t);
  p++;
  if (e - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' ||
      p[6] != '.' || p[7] < '0' || p[7] > '9')
    return refuse(req, 400, "a malformed HTTP version");
  if (p[5] != '1')
    return refuse(req, 505, "only HTTP/1.x is served");
  req->version_minor = p[7] - '0';
  return split_target(req);
}

/* ---- Header fields --------------------------------------------------------- */

/* Reads the decimal Content-Length. */
static int content_length(const eddy_http_header *h, int64_t *out) {
  int64_t n = 0;
  if (h->value_len == 0 || h->value_len > 18)
    return -1;
  for (size_t i = 0; i < h->value_len; i++) {
    if (h->value[i] < '0' || h->value[i] > '9')
      return -1;
    n = n * 10 + (h->value[i] - '0');
  }
  *out = n;
  return 0;
}

/* Calls fn for each element of a comma-separated list value. */
static void each_token(const char *v, size_t n, eddy_http_request *req,
                       void (*fn)(const char *t, size_t tn,
                                  eddy_http_request *req)) {
  size_t i = 0;
  while (i < n) {
    size_t s, e;
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    s = i;
    while (i < n && v[i] != ',')
      i++;
    e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e > s)
      fn(v + s, e - s, req);
  }
}

/* Connection options, gathered in bits above the public flags. */
#define CONN_CLOSE (1u << 16)
#define CONN_KEEP (1u << 17)
#define CONN_UPGRADE (1u << 18)
#define HAS_UPGRADE (1u << 19)

static void connection_token(const char *t, size_t n, eddy_http_request *req) {
  if (eddy__http_ieq(t, n, "close"))
    req->flags |= CONN_CLOSE;
  else if (eddy__http_ieq(t, n, "keep-alive"))
    req->flags |= CONN_KEEP;
  else if (eddy__http_ieq(t, n, "upgrade"))
    req->flags |= CONN_UPGRADE;
}

/* What the fields say about framing and the connection. */
static int semantics(eddy_http_request *req) {
  const eddy_http_header *te = NULL;
  int hosts = 0, lengths = 0;
  for (size_t i = 0; i < req->nheaders; i++) {
    const eddy_http_header *h = &req->headers[i];
    if (eddy__http_ieq(h->name, h->name_len, "host")) {
      req->host = h->value;
      req->host_len = h->value_len;
      hosts++;
    } else if (eddy__http_ieq(h->name, h->name_len, "content-length")) {
      if (++lengths > 1 || content_length(h, &req->content_length) != 0)
        return refuse(req, 400, "a bad or repeated Content-Length");
    } else if (eddy__http_ieq(h->name, h->name_len, "transfer-encoding")) {
      if (te != NULL)
        return refuse(req, 400, "a repeated Transfer-Encoding");
      te = h;
    } else if (eddy__http_ieq(h->name, h->name_len, "connection")) {
      each_token(h->value, h->value_len, req, connection_token);
    } else if (eddy__http_ieq(h->name, h->name_len, "upgrade")) {
      req->flags |= HAS_UPGRADE;
    } else if (eddy__http_ieq(h->name, h->name_len, "expect")) {
      if (!eddy__http_ieq(h->value, h->value_len, "100-continue"))
        return refuse(req, 417, "an Expect other than 100-continue");
      if (req->version_minor >= 1) /* HTTP/1.0 has no 100 (RFC 9110) */
        req->flags |= EDDY_HTTP_EXPECT_CONTINUE;
    }
  }
  if (req->version_minor >= 1 && hosts != 1)
    return refuse(req, 400, hosts ? "a repeated Host" : "no Host");
  if (hosts > 1)
    return refuse(req, 400, "a repeated Host");
  if (te != NULL) {
    if (req->version_minor == 0)
      return refuse(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (lengths)
      return refuse(req, 400, "both Transfer-Encoding and Content-Length");
    if (!eddy__http_ieq(te->value, te->value_len, "chunked"))
      return refuse(req, 501, "a Transfer-Encoding other than chunked");
    req->flags |= EDDY_HTTP_CHUNKED;
  }
  if (req->flags & CONN_CLOSE)
    ; /* never kept */
  else if (req->version_minor >= 1 || (req->flags & CONN_KEEP))
    req->flags |= EDDY_HTTP_KEEP_ALIVE;
  if ((req->flags & (CONN_UPGRADE | HAS_UPGRADE)) ==
      (CONN_UPGRADE | HAS_UPGRADE))
    req->flags |= EDDY_HTTP_UPGRADE;
  req->flags &= 0xffffu;
  return 1;
}

int eddy__http_field_line(const char *buf, size_t start, size_t end,
                          eddy_http_header *h, const char **reason) {
  const char *p = buf + start, *e = buf + end, *v;
  if (*p == ' ' || *p == '\t') {
    *reason = "a folded field line (obs-fold)";
    return -1;
  }
  while (p < e && tchar[(unsigned char)*p])
    p++;
  if (p == buf + start || p == e || *p != ':') {
    *reason = (p < e && (*p == ' ' || *p == '\t'))
                  ? "whitespace between a field name and its colon"
                  : "a malformed field line";
    return -1;
  }
  h->name = buf + start;
  h->name_len = (size_t)(p - h->name);
  p++;
  while (p < e && (*p == ' ' || *p == '\t'))
    p++;
  v = p;
  for (; p < e; p++)
    if (!eddy__http_is_value_char((unsigned char)*p)) {
      *reason = "a control character in a field value";
      return -1;
    }
  while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  h->value = v;
  h->value_len = (size_t)(e - v);
  return 0;
}

/* ---- The head -------------------------------------------------------------- */

/* The offset just past the empty line that ends the head, looking for it
 * from `from`; 0 if it is not there yet. */
static size_t head_end(const char *buf, size_t from, size_t len) {
  const char *p = buf + from, *e = buf + len;
  while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
    p++;
    if (p < e && *p == '\n')
      return (size_t)(p + 1 - buf);
    if (p + 1 < e && p[0] == '\r' && p[1] == '\n')
      return (size_t)(p + 2 - buf);
  }
  return 0;
}

eddy__http_max eddy__http_limits(const eddy_http_limits *limits,
                                 size_t max_headers) {
  eddy__http_max m = {EDDY_HTTP_DEFAULT_MAX_REQUEST_LINE,
                      EDDY_HTTP_DEFAULT_MAX_HEAD,
                      EDDY_HTTP_DEFAULT_MAX_HEADERS};
  if (limits && limits->max_request_line)
    m.line = limits->max_request_line;
  if (limits && limits->max_head)
    m.head = limits->max_head;
  if (limits && limits->max_headers)
    m.fields = limits->max_headers;
  if (m.fields > max_headers)
    m.fields = max_headers;
  return m;
}

int eddy_http_parse_request(const char *buf, size_t len, size_t prev_len,
                            const eddy_http_limits *limits,
                            eddy_http_header *headers, size_t max_headers,
                            eddy_http_request *req) {
  eddy__http_max max = eddy__http_limits(limits, max_headers);
  size_t max_line = max.line, max_head = max.head, max_fields = max.fields;
  size_t start = 0, end, pos, window;
  long lf;
  int bad_cr = 0, rc;
  memset(req, 0, sizeof *req);
  req->headers = headers;
  req->content_length = -1;
  /* Empty lines before the request line are skipped (RFC 9112 2.2). */
  while (start < len &&
         (buf[start] == '\n' ||
          (buf[start] == '\r' && start + 1 < len && buf[start + 1] == '\n')))
    start += buf[start] == '\r' ? 2 : 1;
  /* However they come, that many empty lines are not a client. */
  if (start > max_head)
    return refuse(req, 400, "empty lines, no request");
  if (start >= len)
    return 0;
  /* Only as much of the request line as the limit allows is looked at,
   * so that the verdict on a long line is the same however its bytes
   * arrive. */
  /* (An LF found in the first max_line + 1 bytes ends a line of at most
   * max_line; a CR there is judged by the byte after it, which is always
   * inside the window when the line turns out too long.) */
  window = len - start < max_line + 1 ? len : start + max_line + 1;
  lf = line_end(buf, start, window, &bad_cr);
  if (bad_cr)
    return refuse(req, 400, "a bare CR");
  if (lf < 0)
    return len - start > max_line
               ? refuse(req, 414, "the request line is too long")
               : 0;
  /* The request line on its own, once, when it is first seen whole. */
  if (prev_len <= (size_t)lf &&
      (rc = request_line(buf, start, content_end(buf, start, (size_t)lf),
                         req)) != 0)
    return rc;
  end = head_end(buf, prev_len > start + 3 ? prev_len - 3 : start, len);
  if (end == 0)
    return len - start > max_head ? refuse(req, 431, "the head is too long")
                                  : 0;
  if (end - start > max_head)
    return refuse(req, 431, "the head is too long");
  /* The whole head: the request line again (the call that first saw it
   * may not have been this one), then each field. */
  memset(req, 0, sizeof *req);
  req->headers = headers;
  req->content_length = -1;
  if ((rc = request_line(buf, start, content_end(buf, start, (size_t)lf),
                         req)) != 0)
    return rc;
  for (pos = (size_t)lf + 1;;) {
    size_t next, cend;
    const char *reason = NULL;
    lf = line_end(buf, pos, end, &bad_cr);
    if (bad_cr)
      return refuse(req, 400, "a bare CR");
    next = (size_t)lf + 1;
    cend = content_end(buf, pos, (size_t)lf);
    if (cend == pos) /* the empty line */
      break;
    if (req->nheaders == max_fields)
      return refuse(req, 431, "too many header fields");
    if (eddy__http_field_line(buf, pos, cend, &headers[req->nheaders],
                              &reason) != 0)
      return refuse(req, 400, reason);
    req->nheaders++;
    pos = next;
  }
  req->head_len = end;
  return semantics(req);
}

const eddy_http_header *eddy_http_find_header(const eddy_http_request *req,
                                              const char *name) {
  for (size_t i = 0; i < req->nheaders; i++)
    if (eddy__http_ieq(req->headers[i].name, req->headers[i].name_len, name))
      return &req->headers[i];
  return NULL;
}
