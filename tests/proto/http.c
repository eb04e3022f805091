/* The HTTP/1.x request head parser and the chunked decoder: good requests
 * and what is read from them, every refusal with its status (smuggling
 * defences included), the limits, and incremental input (a byte at a time
 * gives what the whole gives). */
#include <stdio.h>
#include <string.h>

#include "helpers.h"

#define MAXH 100

typedef struct parsed {
  int rc;
  eddy_http_request req;
  eddy_http_header h[MAXH];
} parsed;

static void parse(parsed *p, const char *text, const eddy_http_limits *lim) {
  p->rc = eddy_http_parse_request(text, strlen(text), 0, lim, p->h, MAXH,
                                  &p->req);
}

static int span_is(const char *p, size_t n, const char *s) {
  return p != NULL && strlen(s) == n && memcmp(p, s, n) == 0;
}

Test(http, a_simple_get) {
  parsed p;
  parse(&p,
        "GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.test\r\n"
        "User-Agent: t\r\n\r\nNEXT",
        NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.method, EDDY_HTTP_GET);
  cr_expect(span_is(p.req.target, p.req.target_len, "/index.html?a=1&b=2"));
  cr_expect(span_is(p.req.path, p.req.path_len, "/index.html"));
  cr_expect(span_is(p.req.query, p.req.query_len, "a=1&b=2"));
  EXPECT_EQ(p.req.version_minor, 1);
  EXPECT_EQ(p.req.nheaders, 2);
  cr_expect(
      span_is(p.req.headers[1].name, p.req.headers[1].name_len, "User-Agent"));
  cr_expect(span_is(p.req.host, p.req.host_len, "example.test"));
  EXPECT_EQ(p.req.content_length, -1);
  EXPECT_EQ(p.req.flags, EDDY_HTTP_KEEP_ALIVE);
  EXPECT_EQ(p.req.head_len, strlen("GET /index.html?a=1&b=2 HTTP/1.1\r\n"
                                   "Host: example.test\r\nUser-Agent: t\r\n"
                                   "\r\n"));
}

Test(http, values_are_trimmed_and_names_found_in_any_case) {
  parsed p;
  const eddy_http_header *h;
  parse(&p,
        "POST /x HTTP/1.1\r\nhOST:h\r\nX-A: \t spaced out \t\r\n"
        "Content-Length: 12\r\nX-Empty:\r\n\r\n",
        NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.method, EDDY_HTTP_POST);
  h = eddy_http_find_header(&p.req, "x-a");
  cr_assert(h != NULL);
  cr_expect(span_is(h->value, h->value_len, "spaced out"));
  h = eddy_http_find_header(&p.req, "X-EMPTY");
  cr_assert(h != NULL);
  EXPECT_EQ(h->value_len, 0);
  cr_expect(eddy_http_find_header(&p.req, "absent") == NULL);
  EXPECT_EQ(p.req.content_length, 12);
}

Test(http, http_1_0_keep_alive_only_when_asked) {
  parsed p;
  parse(&p, "GET / HTTP/1.0\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.version_minor, 0);
  EXPECT_EQ(p.req.flags & EDDY_HTTP_KEEP_ALIVE, 0);
  parse(&p, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", NULL);
  EXPECT_EQ(p.req.flags & EDDY_HTTP_KEEP_ALIVE, EDDY_HTTP_KEEP_ALIVE);
  parse(&p, "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n",
        NULL);
  EXPECT_EQ(p.req.flags & EDDY_HTTP_KEEP_ALIVE, 0);
}

Test(http, flags_for_chunked_continue_and_upgrade) {
  parsed p;
  parse(&p,
        "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
        "Expect: 100-Continue\r\n\r\n",
        NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.flags, EDDY_HTTP_KEEP_ALIVE | EDDY_HTTP_CHUNKED |
                             EDDY_HTTP_EXPECT_CONTINUE);
  parse(&p,
        "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade"
        "\r\nUpgrade: websocket\r\n\r\n",
        NULL);
  EXPECT_EQ(p.req.flags & EDDY_HTTP_UPGRADE, EDDY_HTTP_UPGRADE);
  /* HTTP/1.0 has no 100 Continue: the expectation is ignored. */
  parse(&p, "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.flags & EDDY_HTTP_EXPECT_CONTINUE, 0);
}

Test(http, target_forms) {
  parsed p;
  parse(&p, "GET http://example.test/a/b?q HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  cr_expect(span_is(p.req.path, p.req.path_len, "/a/b"));
  cr_expect(span_is(p.req.query, p.req.query_len, "q"));
  parse(&p, "GET https://example.test HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  cr_expect(span_is(p.req.path, p.req.path_len, "/"));
  parse(&p, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.method, EDDY_HTTP_OPTIONS);
  cr_expect(span_is(p.req.path, p.req.path_len, "*"));
  parse(&p, "CONNECT example.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  cr_expect(span_is(p.req.path, p.req.path_len, "example.test:443"));
  parse(&p, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
  EXPECT_EQ(p.rc, 1);
  EXPECT_EQ(p.req.method, EDDY_HTTP_OTHER);
  cr_expect(span_is(p.req.method_name, p.req.method_len, "BREW"));
}

Test(http, bare_lf_lines_and_leading_empty_lines_are_accepted) {
  parsed p;
  parse(&p, "\r\n\nGET / HTTP/1.1\nHost: h\n\n", NULL);
  EXPECT_EQ(p.rc, 1);
  cr_expect(span_is(p.req.host, p.req.host_len, "h"));
  EXPECT_EQ(p.req.head_len, strlen("\r\n\nGET / HTTP/1.1\nHost: h\n\n"));
}

typedef struct refusal {
  const char *text;
  int status;
} refusal;

static const refusal refusals[] = {
    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
    {"GET /\r\n\r\n", 400},
    {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400},
    {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
    {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
    {"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET example.test HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    /* Bare CR, obs-fold, whitespace before the colon, controls. */
    {"GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
    /* Host: needed once in HTTP/1.1. */
    {"GET / HTTP/1.1\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    /* Content-Length and Transfer-Encoding: the smuggling set. */
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
     "Content-Length: 5\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999"
     "\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     501},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, x\r\n\r\n",
     501},
    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
};

Test(http, every_refusal_has_its_status) {
  for (size_t i = 0; i < sizeof refusals / sizeof *refusals; i++) {
    parsed p;
    parse(&p, refusals[i].text, NULL);
    cr_expect(p.rc == EDDY_EHTTP && p.req.status == refusals[i].status,
              "%zu: %s: rc %d status %d (%s)", i, refusals[i].text, p.rc,
              p.req.status, p.req.reason ? p.req.reason : "");
    cr_expect(p.rc != EDDY_EHTTP || p.req.reason != NULL);
  }
}

Test(http, limits_414_and_431) {
  static char text[70000];
  eddy_http_limits lim = {.max_request_line = 100,
                          .max_head = 300,
                          .max_headers = 3};
  parsed p;
  /* A request line past the limit, complete or not. */
  snprintf(text, sizeof text, "GET /%0150d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  parse(&p, text, &lim);
  EXPECT_EQ(p.req.status, 414);
  snprintf(text, sizeof text, "GET /%0150d", 0);
  parse(&p, text, &lim);
  EXPECT_EQ(p.rc, EDDY_EHTTP);
  EXPECT_EQ(p.req.status, 414);
  /* Exactly at the limit (CR included), and one byte over. */
  snprintf(text, sizeof text, "GET /%085d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  parse(&p, text, &lim);
  EXPECT_EQ(p.rc, 1);
  snprintf(text, sizeof text, "GET /%086d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  parse(&p, text, &lim);
  EXPECT_EQ(p.req.status, 414);
  /* A bare CR past the limit: the line is too long, whatever follows. */
  snprintf(text, sizeof text, "GET /%0100d\r\r", 0);
  parse(&p, text, &lim);
  EXPECT_EQ(p.req.status, 414);
  /* Fields: too many, or too long together. */
  parse(&p, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &lim);
  EXPECT_EQ(p.req.status, 431);
  parse(&p, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", &lim);
  EXPECT_EQ(p.rc, 1);
  snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: h\r\nA: %0300d", 0);
  parse(&p, text, &lim);
  EXPECT_EQ(p.req.status, 431);
  /* The defaults: 8 KiB of request line, 32 KiB of head. */
  snprintf(text, sizeof text, "GET /%08200d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
  parse(&p, text, NULL);
  EXPECT_EQ(p.req.status, 414);
  snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: h\r\nA: %040000d", 0);
  parse(&p, text, NULL);
  EXPECT_EQ(p.req.status, 431);
}

Test(http, an_incomplete_head_asks_for_more) {
  static const char *parts[] = {"",
                                "G",
                                "GET / HTTP/1.1",
                                "GET / HTTP/1.1\r",
                                "GET / HTTP/1.1\r\nHost: h\r\n",
                                "GET / HTTP/1.1\r\nHost: h\r\n\r"};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    parsed p;
    parse(&p, parts[i], NULL);
    cr_expect(p.rc == 0, "'%s': %d", parts[i], p.rc);
  }
}

/* A bad request line is refused as soon as it is whole, not after the
 * head: a client sending garbage gets its 400 at once. */
Test(http, a_bad_request_line_is_refused_before_the_head_ends) {
  parsed p;
  parse(&p, "HELLO THERE\r\nHost: h\r\n", NULL);
  EXPECT_EQ(p.rc, EDDY_EHTTP);
  EXPECT_EQ(p.req.status, 400);
}

/* Fed a byte at a time, with prev_len as a server passes it, every good
 * request and every refusal comes out the same as when parsed whole. */
Test(http, a_byte_at_a_time_gives_the_same_result) {
  static const char *goods[] = {
      "GET /a?b HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n",
      "\nPOST / HTTP/1.0\nContent-Length: 3\n\nabc",
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET"};
  for (size_t k = 0; k < 3 + sizeof refusals / sizeof *refusals; k++) {
    const char *text = k < 3 ? goods[k] : refusals[k - 3].text;
    size_t n = strlen(text), prev = 0;
    parsed whole, inc;
    int rc = 0;
    parse(&whole, text, NULL);
    for (size_t len = 1; len <= n; len++) {
      rc = eddy_http_parse_request(text, len, prev, NULL, inc.h, MAXH,
                                   &inc.req);
      if (rc != 0)
        break;
      prev = len;
    }
    EXPECT_EQ(rc, whole.rc);
    if (rc == 1)
      EXPECT_EQ(inc.req.head_len, whole.req.head_len);
    else
      EXPECT_EQ(inc.req.status, whole.req.status);
  }
}

/* ---- Chunked ----------------------------------------------------------------- */

typedef struct decoded {
  int rc;
  char buf[4096];
  size_t len, rest;
  eddy_http_chunked d;
} decoded;

static void decode(decoded *x, const char *text) {
  memset(&x->d, 0, sizeof x->d);
  x->len = strlen(text);
  memcpy(x->buf, text, x->len);
  x->rc = eddy_http_chunked_decode(&x->d, x->buf, &x->len, &x->rest);
}

Test(http, chunked_bodies_decode_in_place) {
  decoded x;
  const char
      *text = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\nGET / HTTP/1.1";
  decode(&x, text);
  EXPECT_EQ(x.rc, 1);
  EXPECT_EQ(x.len, 12);
  cr_expect(memcmp(x.buf, "hello, world", 12) == 0);
  EXPECT_EQ(x.rest, strlen("GET / HTTP/1.1"));
  cr_expect(memcmp(x.buf + strlen(text) - x.rest, "GET / HTTP/1.1", x.rest) ==
            0);
  decode(&x, "A\nabcdefghij\n0\nTrailer: yes\nOther:x\n\n");
  EXPECT_EQ(x.rc, 1);
  EXPECT_EQ(x.len, 10);
  EXPECT_EQ(x.rest, 0);
  decode(&x, "0000\r\n\r\n");
  EXPECT_EQ(x.rc, 1);
  EXPECT_EQ(x.len, 0);
  decode(&x, "5\r\nhel");
  EXPECT_EQ(x.rc, 0);
  EXPECT_EQ(x.len, 3);
}

Test(http, bad_chunked_bodies_are_400) {
  static const char *bads[] = {
      "x\r\n",                   /* not hex */
      "-5\r\nhello\r\n",         /* a sign */
      "12345678901234567\r\n",   /* 17 digits */
      "5\r\nhelloX\r\n",         /* more data than the size */
      "5\rX",                    /* a bare CR */
      "5\r\nhello\r\r\n",        /* a bare CR after data */
      "5 x\r\nhello\r\n",        /* a bad extension */
      "5;\x01\r\nhello\r\n",     /* a control in an extension */
      "0\r\n bad: fold\r\n\r\n", /* obs-fold in trailers */
      "0\r\nName : v\r\n\r\n",   /* space before the colon */
      "0\r\nNoColon\r\n\r\n",    /* no colon */
      "0\r\nX: a\x01\r\n\r\n",   /* a control in a trailer */
      "0\r\n\rX",                /* a bare CR at the end */
  };
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
    decoded x;
    decode(&x, bads[i]);
    cr_expect(x.rc == EDDY_EHTTP && x.d.status == 400, "%zu: rc %d", i, x.rc);
  }
}

Test(http, chunked_limits_on_extensions_and_trailers) {
  static char text[20000];
  decoded x;
  eddy_http_chunked d = {.max_trailers = 100};
  size_t len, rest;
  snprintf(text, sizeof text, "5;%05000d\r\nhello\r\n0\r\n\r\n", 0);
  memset(&x.d, 0, sizeof x.d);
  len = strlen(text);
  EXPECT_EQ(eddy_http_chunked_decode(&x.d, text, &len, &rest), EDDY_EHTTP);
  snprintf(text, sizeof text, "0\r\nX: %0200d\r\n\r\n", 0);
  len = strlen(text);
  EXPECT_EQ(eddy_http_chunked_decode(&d, text, &len, &rest), EDDY_EHTTP);
}

/* Any split of the input gives the same body and the same verdict. */
Test(http, chunked_a_byte_at_a_time_gives_the_same_body) {
  static const char *texts[] = {
      "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nT: v\r\n\r\nNEXT",
      "1\nx\n0\n\n", "5\r\nhelloX\r\n", "0\r\nNoColon\r\n\r\n"};
  for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
    decoded whole;
    eddy_http_chunked d = {0};
    char body[256];
    size_t blen = 0, n = strlen(texts[k]);
    int rc = 0;
    decode(&whole, texts[k]);
    for (size_t i = 0; i < n && rc == 0; i++) {
      char one = texts[k][i];
      size_t len = 1, rest = 0;
      rc = eddy_http_chunked_decode(&d, &one, &len, &rest);
      if (rc >= 0 && len == 1)
        body[blen++] = one;
    }
    EXPECT_EQ(rc, whole.rc);
    if (rc == 1) {
      EXPECT_EQ(blen, whole.len);
      cr_expect(memcmp(body, whole.buf, blen) == 0);
    }
  }
}
