/* handshake.c: the opening handshake (RFC 6455 section 4), both sides,
 * and permessage-deflate's negotiation (RFC 7692 section 5 and 7).
 *
 * The server side checks a request eddy's HTTP server has parsed, answers
 * refusals itself (400, 403, 426), and takes the connection over with
 * eddy_http_upgrade. The client side connects (any client endpoint),
 * sends the request, reads the response head with eddy's response parser
 * and checks it: 101, Upgrade, Connection, the accept key, and that the
 * server chose only what was offered.
 *
 * Negotiation: the server takes the first permessage-deflate offer whose
 * parameters it understands, and answers server_no_context_takeover
 * (unless deflate_context_takeover) and client_no_context_takeover, which
 * RFC 7692 lets a server add to any offer: then neither side keeps a zlib
 * stream between messages, so an idle connection costs no zlib memory and
 * one compressed frame can go to every such client. An offer that limits
 * the server's window to 8 bits is declined (zlib cannot deflate with a
 * 256-byte window). */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "core/loop.h"
#include "proto/http/http.h"
#include "proto/ws/ws.h"
#include "sys/alloc.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t eddy__ws_base64(const uint8_t *in, size_t len, char *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = B64[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = B64[v >> 18];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = B64[(v >> 6) & 63];
    out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

static int b64_value(char c) {
  const char *p = c ? strchr(B64, c) : NULL;
  return p ? (int)(p - B64) : -1;
}

int eddy__ws_key_valid(const char *s, size_t len) {
  /* 16 bytes: 21 full characters, one holding 2 bits (its low 4 zero),
   * then "==". */
  if (len != 24 || s[22] != '=' || s[23] != '=')
    return 0;
  for (int i = 0; i < 22; i++)
    if (b64_value(s[i]) < 0)
      return 0;
  return (b64_value(s[21]) & 15) == 0;
}

int eddy_ws_accept_key(const char *key, size_t len, char *out, size_t outlen) {
  char joined[128];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (len > sizeof joined - sizeof GUID || outlen < 29)
    return -EINVAL;
  memcpy(joined, key, len);
  memcpy(joined + len, GUID, sizeof GUID - 1);
  if (EVP_Digest(joined, len + sizeof GUID - 1, md, &mdlen, EVP_sha1(), NULL) !=
          1 ||
      mdlen != 20)
    return -EINVAL;
  eddy__ws_base64(md, 20, out);
  return 0;
}

/* ---- Header values ---------------------------------------------------------- */

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* The next comma-separated element of v[*i, n), trimmed; 0 at the end. */
static int next_elem(const char *v, size_t n, size_t *i, const char **e,
                     size_t *elen) {
  while (*i < n) {
    size_t s, end;
    while (*i < n && (is_ows(v[*i]) || v[*i] == ','))
      (*i)++;
    s = *i;
    while (*i < n && v[*i] != ',')
      (*i)++;
    end = *i;
    while (end > s && is_ows(v[end - 1]))
      end--;
    if (end > s) {
      *e = v + s;
      *elen = end - s;
      return 1;
    }
  }
  return 0;
}

static int has_token(const char *v, size_t n, const char *token) {
  size_t i = 0, len;
  const char *e;
  while (next_elem(v, n, &i, &e, &len))
    if (eddy__http_ieq(e, len, token))
      return 1;
  return 0;
}

/* Any field named name holds token. */
static int fields_have(const eddy_http_header *h, size_t nh, const char *name,
                       const char *token) {
  for (size_t i = 0; i < nh; i++)
    if (eddy__http_ieq(h[i].name, h[i].name_len, name) &&
        has_token(h[i].value, h[i].value_len, token))
      return 1;
  return 0;
}

/* One extension: "name; p; q=1; r=\"2\"". */
static int parse_ext(const char *s, size_t n, const char **name, size_t *nlen,
                     eddy__ws_ext_param *params, size_t *np) {
  size_t i = 0, k = 0;
  *np = 0;
  while (k < n && s[k] != ';')
    k++;
  *nlen = k;
  while (*nlen && is_ows(s[*nlen - 1]))
    (*nlen)--;
  *name = s;
  for (size_t j = 0; j < *nlen; j++)
    if (!eddy__http_is_tchar((unsigned char)s[j]))
      return -1;
  if (*nlen == 0)
    return -1;
  i = k;
  while (i < n) {
    eddy__ws_ext_param *p;
    size_t st;
    i++; /* the ';' */
    while (i < n && is_ows(s[i]))
      i++;
    if (*np == EDDY__WS_MAX_PARAMS)
      return -1;
    p = &params[(*np)++];
    st = i;
    while (i < n && eddy__http_is_tchar((unsigned char)s[i]))
      i++;
    if (i == st)
      return -1;
    p->name = s + st;
    p->name_len = i - st;
    p->value = NULL;
    p->value_len = 0;
    while (i < n && is_ows(s[i]))
      i++;
    if (i < n && s[i] == '=') {
      i++;
      while (i < n && is_ows(s[i]))
        i++;
      if (i < n && s[i] == '"') {
        st = ++i;
        while (i < n && s[i] != '"')
          i++;
        if (i == n)
          return -1;
        p->value = s + st;
        p->value_len = i - st;
        i++;
      } else {
        st = i;
        while (i < n && eddy__http_is_tchar((unsigned char)s[i]))
          i++;
        p->value = s + st;
        p->value_len = i - st;
      }
      if (p->value_len == 0)
        return -1;
      while (i < n && is_ows(s[i]))
        i++;
    }
    if (i < n && s[i] != ';')
      return -1;
  }
  return 0;
}

int eddy__ws_parse_extensions(const char *v, size_t n,
                              int (*fn)(const char *ext, size_t ext_len,
                                        const eddy__ws_ext_param *params,
                                        size_t nparams, void *arg),
                              void *arg) {
  size_t i = 0, len, nlen, np;
  const char *e, *name;
  eddy__ws_ext_param params[EDDY__WS_MAX_PARAMS];
  while (next_elem(v, n, &i, &e, &len)) {
    if (parse_ext(e, len, &name, &nlen, params, &np) < 0)
      return EDDY_EPARSE;
    if (fn(name, nlen, params, np, arg))
      return 0;
  }
  return 0;
}

static int window_bits(const eddy__ws_ext_param *p, int *out) {
  if (p->value_len == 0 || p->value_len > 2)
    return -1;
  int v = 0;
  for (size_t i = 0; i < p->value_len; i++) {
    if (p->value[i] < '0' || p->value[i] > '9')
      return -1;
    v = v * 10 + (p->value[i] - '0');
  }
  if (v < 8 || v > 15 || (p->value_len == 2 && p->value[0] == '0'))
    return -1;
  *out = v;
  return 0;
}

int eddy__ws_pmd_params(const eddy__ws_ext_param *params, size_t n,
                        eddy__ws_pmd *pmd) {
  unsigned seen = 0;
  memset(pmd, 0, sizeof *pmd);
  pmd->server_bits = pmd->client_bits = 15;
  for (size_t i = 0; i < n; i++) {
    const eddy__ws_ext_param *p = &params[i];
    unsigned bit;
    if (eddy__http_ieq(p->name, p->name_len, "server_no_context_takeover")) {
      bit = 1;
      pmd->server_no_takeover = 1;
      if (p->value)
        return -1;
    } else if (eddy__http_ieq(p->name, p->name_len,
                              "client_no_context_takeover")) {
      bit = 2;
      pmd->client_no_takeover = 1;
      if (p->value)
        return -1;
    } else if (eddy__http_ieq(p->name, p->name_len, "server_max_window_bits")) {
      bit = 4;
      if (window_bits(p, &pmd->server_bits) < 0)
        return -1;
    } else if (eddy__http_ieq(p->name, p->name_len, "client_max_window_bits")) {
      bit = 8;
      /* Without a value (an offer): the client can take a limit. */
      if (p->value && window_bits(p, &pmd->client_bits) < 0)
        return -1;
    } else {
      return -1;
    }
    if (seen & bit)
      return -1;
    seen |= bit;
  }
  pmd->on = 1;
  return 0;
}

/* ---- The server ---------------------------------------------------------------- */

static int refuse(eddy_http_exchange *x, int status, const char *why) {
  char body[128];
  int n = snprintf(body, sizeof body, "%d %s: %s\n", status,
                   eddy_http_reason(status), why);
  eddy_stream *conn = eddy_http_stream(x);
  int r = eddy_http_respond(x, status, "text/plain", body, (size_t)n);
  if (r < 0 && r != EDDY_ECLOSED && conn)
    eddy_stream_abort(conn); /* the answer could not be written */
  return r == EDDY_ECLOSED ? r : EDDY_EHTTP;
}

static int take_offer(const char *ext, size_t len,
                      const eddy__ws_ext_param *params, size_t n, void *arg) {
  eddy__ws_pmd *pmd = arg;
  eddy__ws_pmd got;
  if (!eddy__http_ieq(ext, len, "permessage-deflate"))
    return 0;
  if (eddy__ws_pmd_params(params, n, &got) < 0 || got.server_bits < 9)
    return 0;
  *pmd = got;
  return 1;
}

static void negotiate(const eddy_http_request *req, const eddy_ws_options *o,
                      eddy__ws_pmd *pmd) {
  memset(pmd, 0, sizeof *pmd);
  if (o == NULL || !o->deflate)
    return;
  for (size_t i = 0; i < req->nheaders && !pmd->on; i++) {
    const eddy_http_header *h = &req->headers[i];
    if (eddy__http_ieq(h->name, h->name_len, "sec-websocket-extensions"))
      eddy__ws_parse_extensions(h->value, h->value_len, take_offer, pmd);
  }
  if (!pmd->on)
    return;
  if (!o->deflate_context_takeover)
    pmd->server_no_takeover = 1;
  pmd->client_no_takeover = 1;
}

/* The first of the server's subprotocols the client offered, or NULL. */
static const char *choose_protocol(const eddy_http_request *req,
                                   const eddy_ws_options *o) {
  for (size_t k = 0; o && k < o->nsubprotocols; k++)
    for (size_t i = 0; i < req->nheaders; i++) {
      const eddy_http_header *h = &req->headers[i];
      size_t j = 0, len;
      const char *e;
      if (!eddy__http_ieq(h->name, h->name_len, "sec-websocket-protocol"))
        continue;
      while (next_elem(h->value, h->value_len, &j, &e, &len))
        if (len == strlen(o->subprotocols[k]) &&
            memcmp(e, o->subprotocols[k], len) == 0)
          return o->subprotocols[k];
    }
  return NULL;
}

/* The request's faults: the status to answer, or 0. */
static int check_request(const eddy_http_request *req, const eddy_ws_options *o,
                         const char **why) {
  const eddy_http_header *v, *key, *origin;
  *why = NULL;
  if (req->method != EDDY_HTTP_GET) {
    *why = "a WebSocket handshake is a GET";
    return 400;
  }
  if (!fields_have(req->headers, req->nheaders, "upgrade", "websocket") ||
      !fields_have(req->headers, req->nheaders, "connection", "upgrade")) {
    *why = "Upgrade: websocket and Connection: upgrade are required";
    return 400;
  }
  v = eddy_http_find_header(req, "sec-websocket-version");
  if (v == NULL || v->value_len != 2 || memcmp(v->value, "13", 2) != 0) {
    *why = "only WebSocket version 13 is served";
    return 426;
  }
  key = eddy_http_find_header(req, "sec-websocket-key");
  if (key == NULL || !eddy__ws_key_valid(key->value, key->value_len)) {
    *why = "Sec-WebSocket-Key is not 16 bytes in base64";
    return 400;
  }
  origin = eddy_http_find_header(req, "origin");
  if (o && o->check_origin &&
      !o->check_origin(origin ? origin->value : NULL,
                       origin ? origin->value_len : 0, o->origin_arg)) {
    *why = "this origin is not allowed";
    return 403;
  }
  return 0;
}

static int answer_fields(eddy_http_exchange *x, const eddy_http_request *req,
                         const eddy__ws_pmd *pmd, const char *proto) {
  const eddy_http_header *key = eddy_http_find_header(req, "sec-websocket-key");
  char accept[32], ext[160];
  int r;
  if ((r = eddy_ws_accept_key(key->value, key->value_len, accept,
                              sizeof accept)) < 0)
    return r;
  if ((r = eddy_http_set_header(x, "Upgrade", "websocket")) < 0 ||
      (r = eddy_http_set_header(x, "Connection", "Upgrade")) < 0 ||
      (r = eddy_http_set_header(x, "Sec-WebSocket-Accept", accept)) < 0)
    return r;
  if (proto &&
      (r = eddy_http_set_header(x, "Sec-WebSocket-Protocol", proto)) < 0)
    return r;
  if (pmd->on) {
    int n = snprintf(ext, sizeof ext, "permessage-deflate%s%s",
                     pmd->server_no_takeover ? "; server_no_context_takeover"
                                             : "",
                     "; client_no_context_takeover");
    if (pmd->server_bits < 15)
      snprintf(ext + n, sizeof ext - (size_t)n, "; server_max_window_bits=%d",
               pmd->server_bits);
    if ((r = eddy_http_set_header(x, "Sec-WebSocket-Extensions", ext)) < 0)
      return r;
  }
  return 0;
}

int eddy_ws_accept(eddy_http_exchange *x, const eddy_ws_options *opt,
                   const eddy_ws_callbacks *cb, void *arg, eddy_ws **out) {
  const eddy_http_request *req = eddy_http_request_of(x);
  const char *why, *proto;
  eddy__ws_pmd pmd;
  eddy_ws *ws;
  eddy_stream *s;
  eddy_buf rest;
  int status = check_request(req, opt, &why), r;
  *out = NULL;
  if (status == 426 &&
      eddy_http_set_header(x, "Sec-WebSocket-Version", "13") < 0)
    status = 503;
  if (status)
    return refuse(x, status, why ? why : "out of memory");
  proto = choose_protocol(req, opt);
  negotiate(req, opt, &pmd);
  r = eddy__ws_new(eddy_http_loop(x), 1, opt, cb, arg, &ws);
  if (r == 0 && (r = eddy__ws_set_negotiated(ws, &pmd, proto,
                                             proto ? strlen(proto) : 0)) < 0)
    eddy__ws_free(ws);
  if (r == 0 && (r = answer_fields(x, req, &pmd, proto)) < 0)
    eddy__ws_free(ws);
  if (r < 0) {
    /* 503; if even that cannot be written, the connection goes. */
    eddy_stream *conn = eddy_http_stream(x);
    int e = eddy_http_respond_status(x, 503);
    if (e < 0 && e != EDDY_ECLOSED && conn)
      eddy_stream_abort(conn);
    return -ENOMEM;
  }
  eddy_buf_init(&rest, 0);
  r = eddy_http_upgrade(x, 101, &rest, &s);
  if (r < 0) {
    eddy_buf_free(&rest);
    eddy__ws_free(ws);
    return r;
  }
  eddy__ws_start(ws, s);
  if (eddy__ws_feed_later(ws, &rest) < 0) {
    eddy_buf_free(&rest);
    eddy_ws_abort(ws); /* the close callback reports it from the loop */
  }
  *out = ws;
  return 0;
}
