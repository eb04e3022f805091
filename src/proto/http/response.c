/* response.c: the response head parser (RFC 9112 section 4), for eddy's
 * clients (the WebSocket handshake). It reads the status line and the
 * fields as parse.c reads a request: no allocation, spans into the
 * caller's buffer, the same field-line rules (eddy__http_field_line), and
 * a verdict that does not depend on how the bytes were split. It is
 * smaller than the request parser because a client decides less: it
 * only reports Content-Length, chunked and the connection options. */
#include <string.h>

#include "proto/http/http.h"

static int refuse(eddy_http_response_head *r, const char *why) {
  r->error = why;
  return EDDY_EHTTP;
}

/* The head's end: the offset past its empty line, or 0. */
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

/* The content of the line from start: its end (before CR LF or LF), and
 * the start of the next line; -1 for a CR not followed by LF. */
static int line(const char *buf, size_t start, size_t end, size_t *cend,
                size_t *next) {
  const char *lf = memchr(buf + start, '\n', end - start);
  size_t e = lf ? (size_t)(lf - buf) : end;
  *next = e + 1;
  if (e > start && buf[e - 1] == '\r')
    e--;
  if (memchr(buf + start, '\r', e - start))
    return -1;
  *cend = e;
  return 0;
}

/* "HTTP/1.x NNN reason" */
static int status_line(const char *p, size_t n, eddy_http_response_head *r) {
  if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
      p[8] != ' ')
    return refuse(r, "a malformed status line");
  for (int i = 9; i < 12; i++)
    if (p[i] < '0' || p[i] > '9')
      return refuse(r, "a malformed status code");
  if (n > 12 && p[12] != ' ')
    return refuse(r, "a malformed status line");
  r->version_minor = p[7] - '0';
  r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (r->status < 100)
    return refuse(r, "a status below 100");
  r->reason = n > 12 ? p + 13 : p + 12;
  r->reason_len = n > 12 ? n - 13 : 0;
  for (size_t i = 0; i < r->reason_len; i++)
    if (!eddy__http_is_value_char((unsigned char)r->reason[i]))
      return refuse(r, "a control character in the reason phrase");
  return 0;
}

static int has_token(const eddy_http_header *h, const char *token) {
  size_t i = 0, n = h->value_len;
  const char *v = h->value;
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
    if (e > s && eddy__http_ieq(v + s, e - s, token))
      return 1;
  }
  return 0;
}

static int semantics(eddy_http_response_head *r) {
  int close = 0, keep = 0, lengths = 0;
  for (size_t i = 0; i < r->nheaders; i++) {
    const eddy_http_header *h = &r->headers[i];
    if (eddy__http_ieq(h->name, h->name_len, "content-length")) {
      int64_t n = 0;
      if (++lengths > 1 || h->value_len == 0 || h->value_len > 18)
        return refuse(r, "a bad Content-Length");
      for (size_t j = 0; j < h->value_len; j++) {
        if (h->value[j] < '0' || h->value[j] > '9')
          return refuse(r, "a bad Content-Length");
        n = n * 10 + (h->value[j] - '0');
      }
      r->content_length = n;
    } else if (eddy__http_ieq(h->name, h->name_len, "transfer-encoding")) {
      if (has_token(h, "chunked"))
        r->flags |= EDDY_HTTP_CHUNKED;
    } else if (eddy__http_ieq(h->name, h->name_len, "connection")) {
      close |= has_token(h, "close");
      keep |= has_token(h, "keep-alive");
      if (has_token(h, "upgrade"))
        r->flags |= EDDY_HTTP_UPGRADE;
    }
  }
  if (r->version_minor >= 1 ? !close : keep)
    r->flags |= EDDY_HTTP_KEEP_ALIVE;
  return 1;
}

int eddy_http_parse_response(const char *buf, size_t len, size_t prev_len,
                             const eddy_http_limits *limits,
                             eddy_http_header *headers, size_t max_headers,
                             eddy_http_response_head *r) {
  eddy__http_max max = eddy__http_limits(limits, max_headers);
  size_t max_line = max.line, max_head = max.head, max_fields = max.fields;
  size_t end, pos, cend, next;
  const char *lf;
  int rc;
  memset(r, 0, sizeof *r);
  r->headers = headers;
  r->content_length = -1;
  lf = memchr(buf, '\n', len < max_line + 2 ? len : max_line + 2);
  if (lf == NULL)
    return len > max_line + 1 ? refuse(r, "the status line is too long") : 0;
  end = head_end(buf, prev_len > 3 ? prev_len - 3 : 0, len);
  if (end == 0)
    return len > max_head ? refuse(r, "the head is too long") : 0;
  if (end > max_head)
    return refuse(r, "the head is too long");
  if (line(buf, 0, end, &cend, &next) < 0)
    return refuse(r, "a bare CR");
  if (cend > max_line)
    return refuse(r, "the status line is too long");
  if ((rc = status_line(buf, cend, r)) != 0)
    return rc;
  for (pos = next;;) {
    const char *why = NULL;
    if (line(buf, pos, end, &cend, &next) < 0)
      return refuse(r, "a bare CR");
    if (cend == pos)
      break;
    if (r->nheaders == max_fields)
      return refuse(r, "too many header fields");
    if (eddy__http_field_line(buf, pos, cend, &headers[r->nheaders], &why))
      return refuse(r, why);
    r->nheaders++;
    pos = next;
  }
  r->head_len = end;
  return semantics(r);
}

const eddy_http_header *
eddy_http_response_header(const eddy_http_response_head *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (eddy__http_ieq(r->headers[i].name, r->headers[i].name_len, name))
      return &r->headers[i];
  return NULL;
}
