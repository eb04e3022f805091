/* The WebSocket pieces that need no loop: the frame parser (every header
 * form, split at every byte, each refusal), the encoder, unmasking at any
 * offset, UTF-8 validation (edge cases, across pieces), permessage-
 * deflate (round trips, the bound, bad data, allocation failures), the
 * accept key, extension parameters, and the HTTP response parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "helpers.h"
#include "proto/ws/ws.h"

/* A frame as a client sends it, masked with a fixed key. */
static size_t client_frame(char *out, int fin, int op, int rsv1,
                           const char *payload, size_t len) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t h = eddy_ws_frame_header(out, fin, op, rsv1, len, key);
  eddy_ws_unmask(out + h, payload, len, key, 0);
  return h + len;
}

typedef struct seen {
  int headers, ends, verdict, code;
  int op, fin, rsv1;
  uint64_t length;
  char payload[70000];
  size_t n;
} seen;

/* Parses buf[0, len) in pushes of step bytes (0: one push). */
static void parse_all(eddy_ws_parser *p, const char *buf, size_t len,
                      size_t step, seen *s) {
  size_t at = 0;
  memset(s, 0, sizeof *s);
  while (at < len || step == 0) {
    size_t k = step == 0 || len - at < step ? len - at : step;
    size_t off = 0;
    for (;;) {
      const char *d = NULL;
      size_t used, n = 0;
      int r = eddy_ws_parse(p, buf + at + off, k - off, &used, &d, &n);
      off += used;
      if (r == 0)
        break;
      if (r < 0) {
        s->verdict = r;
        s->code = p->code;
        return;
      }
      if (r == EDDY_WS_HEADER) {
        s->headers++;
        s->op = p->opcode;
        s->fin = p->fin;
        s->rsv1 = p->rsv1;
        s->length = p->length;
      } else if (r == EDDY_WS_DATA) {
        eddy_ws_unmask(s->payload + s->n, d, n, p->masked ? p->mask : NULL,
                       p->offset - n);
        s->n += n;
      } else {
        s->ends++;
      }
    }
    at += k;
    if (step == 0)
      break;
  }
}

Test(ws_frame, every_length_form_parses_whole_and_a_byte_at_a_time) {
  static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 66000};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i], len;
    char *payload = malloc(n + 1), *buf = malloc(n + 20);
    for (size_t j = 0; j < n; j++)
      payload[j] = (char)('a' + j % 26);
    len = client_frame(buf, 1, EDDY_WS_BINARY, 0, payload, n);
    for (size_t step = 0; step <= 1; step++) {
      eddy_ws_parser p;
      seen *s = malloc(sizeof *s);
      eddy_ws_parser_init(&p, EDDY_WS_PARSE_SERVER, 0);
      parse_all(&p, buf, len, step ? (n > 1000 ? 7 : 1) : 0, s);
      EXPECT_EQ(s->verdict, 0);
      EXPECT_EQ(s->headers, 1);
      EXPECT_EQ(s->ends, 1);
      EXPECT_EQ(s->length, n);
      EXPECT_EQ(s->n, n);
      cr_expect(memcmp(s->payload, payload, n) == 0, "size %zu", n);
      free(s);
    }
    free(payload);
    free(buf);
  }
}

Test(ws_frame, the_encoder_uses_the_shortest_length_form) {
  char h[EDDY_WS_MAX_HEADER];
  uint8_t key[4] = {1, 2, 3, 4};
  EXPECT_EQ(eddy_ws_frame_header(h, 1, EDDY_WS_TEXT, 0, 125, NULL), 2);
  EXPECT_EQ((uint8_t)h[0], 0x81);
  EXPECT_EQ((uint8_t)h[1], 125);
  EXPECT_EQ(eddy_ws_frame_header(h, 0, EDDY_WS_BINARY, 1, 126, NULL), 4);
  EXPECT_EQ((uint8_t)h[0], 0x42);
  EXPECT_EQ((uint8_t)h[1], 126);
  EXPECT_EQ(eddy_ws_frame_header(h, 1, EDDY_WS_BINARY, 0, 65536, key), 14);
  EXPECT_EQ((uint8_t)h[1], 0xFF);
  EXPECT_EQ((uint8_t)h[7], 1); /* 65536 = 00 00 00 00 00 01 00 00 */
  cr_expect(memcmp(h + 10, key, 4) == 0);
}

Test(ws_frame, unmasking_at_any_offset_matches_byte_by_byte) {
  uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
  char src[100], a[100], b[100];
  for (int i = 0; i < 100; i++)
    src[i] = (char)(i * 7);
  for (uint64_t off = 0; off < 8; off++)
    for (size_t n = 0; n < 40; n++) {
      eddy_ws_unmask(a, src, n, key, off);
      for (size_t i = 0; i < n; i++)
        b[i] = (char)(src[i] ^ key[(off + i) & 3]);
      cr_assert(memcmp(a, b, n) == 0);
    }
  eddy_ws_unmask(a, src, 50, NULL, 3);
  cr_expect(memcmp(a, src, 50) == 0);
}

static int refusal(unsigned flags, const char *bytes, size_t len) {
  eddy_ws_parser p;
  seen *s = malloc(sizeof *s);
  int code;
  eddy_ws_parser_init(&p, flags, 1000);
  parse_all(&p, bytes, len, 1, s);
  code = s->verdict ? s->code : 0;
  EXPECT_EQ(s->verdict, code ? EDDY_EPARSE : 0);
  free(s);
  return code;
}

Test(ws_frame, each_bad_header_is_refused_with_its_close_code) {
  const unsigned S = EDDY_WS_PARSE_SERVER, C = EDDY_WS_PARSE_CLIENT;
  /* masked, empty */
  EXPECT_EQ(refusal(S, "\xa1\x80xxxx", 6), 1002); /* RSV2 */
  EXPECT_EQ(refusal(S, "\x91\x80xxxx", 6), 1002); /* RSV3 */
  EXPECT_EQ(refusal(S, "\xc1\x80xxxx", 6), 1002); /* RSV1 */
  EXPECT_EQ(refusal(S | EDDY_WS_PARSE_RSV1, "\xc1\x80xxxx", 6), 0);
  EXPECT_EQ(refusal(S | EDDY_WS_PARSE_RSV1, "\xc9\x80xxxx", 6), 1002);
  EXPECT_EQ(refusal(S, "\x83\x80xxxx", 6), 1002); /* opcode 3 */
  EXPECT_EQ(refusal(S, "\x8b\x80xxxx", 6), 1002); /* opcode 11 */
  EXPECT_EQ(refusal(S, "\x09\x80xxxx", 6), 1002); /* frag. ping */
  EXPECT_EQ(refusal(S, "\x89\xfexx", 4), 1002);   /* ping 126 */
  EXPECT_EQ(refusal(S, "\x80\x80xxxx", 6), 1002); /* lone cont */
  EXPECT_EQ(refusal(S, "\x01\x80xxxx\x81\x80xxxx", 12),
            1002);                                /* text in text */
  EXPECT_EQ(refusal(S, "\x81\x00", 2), 1002);     /* unmasked */
  EXPECT_EQ(refusal(C, "\x81\x80xxxx", 6), 1002); /* masked */
  EXPECT_EQ(refusal(C, "\x82\x7f\x80\0\0\0\0\0\0\0", 10), 1002); /* top bit */
  EXPECT_EQ(refusal(C, "\x82\x7e\x03\xe9", 4), 1009); /* 1001 > 1000 */
  EXPECT_EQ(refusal(C, "\x82\x7e\x03\xe8", 4), 0);    /* 1000 */
}

Test(ws_frame, a_refusal_comes_at_the_byte_that_decides_it) {
  eddy_ws_parser p;
  size_t used;
  const char *d;
  size_t n;
  eddy_ws_parser_init(&p, EDDY_WS_PARSE_SERVER, 0);
  /* The unmasked header's second byte decides: the rest is never read. */
  EXPECT_EQ(eddy_ws_parse(&p, "\x81\x05hello", 7, &used, &d, &n), EDDY_EPARSE);
  EXPECT_EQ(used, 2);
  EXPECT_EQ(p.code, 1002);
  cr_expect(strstr(p.reason, "unmasked") != NULL);
  /* It stays failed. */
  EXPECT_EQ(eddy_ws_parse(&p, "\x81\x80", 2, &used, &d, &n), EDDY_EPARSE);
}

Test(ws_frame, fragments_with_control_frames_between_them) {
  char buf[200];
  size_t len = 0;
  eddy_ws_parser p;
  seen *s = malloc(sizeof *s);
  len += client_frame(buf + len, 0, EDDY_WS_TEXT, 0, "ab", 2);
  len += client_frame(buf + len, 1, EDDY_WS_PING, 0, "", 0);
  len += client_frame(buf + len, 0, EDDY_WS_CONT, 0, "cd", 2);
  len += client_frame(buf + len, 1, EDDY_WS_CONT, 0, "e", 1);
  len += client_frame(buf + len, 1, EDDY_WS_TEXT, 0, "new", 3);
  eddy_ws_parser_init(&p, EDDY_WS_PARSE_SERVER, 0);
  parse_all(&p, buf, len, 3, s);
  EXPECT_EQ(s->verdict, 0);
  EXPECT_EQ(s->headers, 5);
  EXPECT_EQ(s->ends, 5);
  cr_expect(memcmp(s->payload, "abcdenew", 8) == 0);
  free(s);
}

/* ---- UTF-8 ---------------------------------------------------------------- */

Test(ws_utf8, valid_and_invalid_sequences) {
  static const struct {
    const char *s;
    int ok;
  } cases[] = {
      {"", 1},
      {"plain ascii", 1},
      {"\xc2\x80", 1},         /* U+0080 */
      {"\xdf\xbf", 1},         /* U+07FF */
      {"\xe0\xa0\x80", 1},     /* U+0800 */
      {"\xed\x9f\xbf", 1},     /* U+D7FF */
      {"\xee\x80\x80", 1},     /* U+E000 */
      {"\xef\xbf\xbf", 1},     /* U+FFFF */
      {"\xf0\x90\x80\x80", 1}, /* U+10000 */
      {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
      {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1},
      {"\x80", 0}, /* lone continuation */
      {"\xbf", 0},
      {"\xc0\x80", 0}, /* overlong NUL */
      {"\xc1\xbf", 0},
      {"\xe0\x9f\xbf", 0},     /* overlong 3-byte */
      {"\xf0\x8f\xbf\xbf", 0}, /* overlong 4-byte */
      {"\xed\xa0\x80", 0},     /* U+D800 */
      {"\xed\xbf\xbf", 0},     /* U+DFFF */
      {"\xf4\x90\x80\x80", 0}, /* U+110000 */
      {"\xf5\x80\x80\x80", 0},
      {"\xff", 0},
      {"\xfe", 0},
      {"\xc2", 0}, /* truncated */
      {"\xe2\x82", 0},
      {"\xf0\x9f\x98", 0},
      {"\xc2\x41", 0}, /* a lead, then ASCII */
      {"abcdefgh\xe2\x82\xacxyz", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = strlen(cases[i].s);
    EXPECT_EQ(eddy_ws_utf8_valid(cases[i].s, n), cases[i].ok ? 0 : EDDY_EPARSE);
    /* The same, a byte at a time. */
    eddy_ws_utf8 v;
    int r = 0;
    eddy_ws_utf8_init(&v);
    for (size_t j = 0; j < n && r == 0; j++)
      r = eddy_ws_utf8_feed(&v, cases[i].s + j, 1);
    if (r == 0)
      r = eddy_ws_utf8_end(&v);
    cr_expect(eq(int, r, cases[i].ok ? 0 : EDDY_EPARSE), "case %zu", i);
  }
}

Test(ws_utf8, fails_at_the_first_bad_byte_not_at_the_end) {
  eddy_ws_utf8 v;
  eddy_ws_utf8_init(&v);
  EXPECT_OK(eddy_ws_utf8_feed(&v, "good \xed", 6));
  /* A surrogate's second byte: failed now, mid-message. */
  EXPECT_EQ(eddy_ws_utf8_feed(&v, "\xa0", 1), EDDY_EPARSE);
  EXPECT_EQ(eddy_ws_utf8_feed(&v, "more", 4), EDDY_EPARSE);
  eddy_ws_utf8_init(&v);
  EXPECT_OK(eddy_ws_utf8_feed(&v, "\xf0\x9f", 2));
  EXPECT_EQ(eddy_ws_utf8_end(&v), EDDY_EPARSE);
  EXPECT_OK(eddy_ws_utf8_feed(&v, "\x98\x80", 2));
  EXPECT_OK(eddy_ws_utf8_end(&v));
}

/* ---- permessage-deflate ------------------------------------------------------ */

Test(ws_deflate, a_compressor_frame_inflates_back) {
  eddy_ws_compressor *z;
  eddy_buf frame, out;
  char msg[5000];
  eddy_ws_parser p;
  seen *s = malloc(sizeof *s);
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = "hello world "[i % 12];
  eddy_buf_init(&frame, 0);
  eddy_buf_init(&out, 0);
  EXPECT_OK(eddy_ws_compressor_new(-1, 0, &z));
  for (int round = 0; round < 2; round++) { /* no context kept: the same */
    eddy_buf_reset(&frame);
    EXPECT_OK(eddy_ws_encode(&frame, EDDY_WS_TEXT, msg, sizeof msg, z));
    EXPECT_LT(eddy_buf_len(&frame), 200);
    eddy_ws_parser_init(&p, EDDY_WS_PARSE_CLIENT | EDDY_WS_PARSE_RSV1, 0);
    parse_all(&p, eddy_buf_data(&frame), eddy_buf_len(&frame), 0, s);
    EXPECT_EQ(s->verdict, 0);
    EXPECT_EQ(s->rsv1, 1);
    eddy_buf_reset(&out);
    EXPECT_OK(eddy_ws_inflate_once(s->payload, s->n, 15, 1 << 20, &out));
    EXPECT_EQ(eddy_buf_len(&out), sizeof msg);
    cr_expect(memcmp(eddy_buf_data(&out), msg, sizeof msg) == 0);
  }
  /* Control frames are never compressed; bad opcodes are refused. */
  eddy_buf_reset(&frame);
  EXPECT_OK(eddy_ws_encode(&frame, EDDY_WS_PING, "p", 1, z));
  EXPECT_EQ((uint8_t)eddy_buf_data(&frame)[0], 0x89);
  EXPECT_EQ(eddy_ws_encode(&frame, EDDY_WS_PING, msg, 126, z), -EINVAL);
  EXPECT_EQ(eddy_ws_encode(&frame, 3, "x", 1, NULL), -EINVAL);
  EXPECT_EQ(eddy_ws_compressor_new(-1, 8, &z) == -EINVAL, 1);
  eddy_ws_compressor_free(z);
  eddy_buf_free(&frame);
  eddy_buf_free(&out);
  free(s);
  EXPECT_LIVE(0);
}

static size_t raw_deflate(const char *in, size_t n, char *out, size_t cap) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  cr_assert(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) ==
            Z_OK);
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)n;
  zs.next_out = (Bytef *)out;
  zs.avail_out = (uInt)cap;
  cr_assert(deflate(&zs, Z_SYNC_FLUSH) == Z_OK);
  n = cap - zs.avail_out - 4;
  deflateEnd(&zs);
  return n;
}

Test(ws_deflate, a_bomb_stops_at_the_bound_and_bad_data_is_eparse) {
  size_t big = 20 << 20, n;
  char *zeros = calloc(1, big), *packed = malloc(1 << 20);
  eddy_buf out;
  eddy_buf_init(&out, 0);
  n = raw_deflate(zeros, big, packed, 1 << 20);
  EXPECT_LT(n, 30000);
  EXPECT_EQ(eddy_ws_inflate_once(packed, n, 0, 1 << 20, &out), -EMSGSIZE);
  EXPECT_EQ(eddy_buf_len(&out), 0);
  EXPECT_LE(out.end - out.start, (2 << 20) + 65536); /* never far past max */
  EXPECT_OK(eddy_ws_inflate_once(packed, n, 0, big, &out));
  EXPECT_EQ(eddy_buf_len(&out), big);
  eddy_buf_reset(&out);
  EXPECT_EQ(eddy_ws_inflate_once("\xff\xff\xff", 3, 0, 100, &out), EDDY_EPARSE);
  EXPECT_EQ(eddy_ws_inflate_once("x", 1, 7, 100, &out), -EINVAL);
  eddy_buf_free(&out);
  free(zeros);
  free(packed);
  EXPECT_LIVE(0);
}

Test(ws_deflate, allocation_failures_are_enomem_and_leak_nothing) {
  char msg[3000];
  memset(msg, 'q', sizeof msg);
  for (uint64_t nth = 1; nth < 20; nth++) {
    eddy_ws_compressor *z = NULL;
    eddy_buf frame;
    int r;
    eddy_buf_init(&frame, 0);
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, nth, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, nth, ENOMEM);
    r = eddy_ws_compressor_new(6, 15, &z);
    if (r == 0)
      r = eddy_ws_encode(&frame, EDDY_WS_BINARY, msg, sizeof msg, z);
    cr_expect(r == 0 || r == -ENOMEM, "nth %lu: %d", (unsigned long)nth, r);
    eddy__fault_reset();
    if (r == 0 && z) {
      /* After a failure the compressor still works. */
      eddy_buf_reset(&frame);
      EXPECT_OK(eddy_ws_encode(&frame, EDDY_WS_BINARY, msg, sizeof msg, z));
    }
    eddy_ws_compressor_free(z);
    eddy_buf_free(&frame);
    EXPECT_LIVE(0);
  }
}

/* ---- Handshake pieces ----------------------------------------------------------- */

Test(ws_handshake, the_accept_key_of_rfc_6455s_example) {
  char out[32];
  EXPECT_OK(
      eddy_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out, sizeof out));
  EXPECT_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(eddy_ws_accept_key("k", 1, out, 10), -EINVAL);
  cr_expect(eddy__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
  cr_expect(0 ==
            (eddy__ws_key_valid("dGhlIHNhbXBsZSBub25jZR==", 24))); /* bits */
  cr_expect(0 == (eddy__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23)));
  cr_expect(0 == (eddy__ws_key_valid("dGhlIHNhbXBsZSBub25j*Q==", 24)));
  cr_expect(0 == (eddy__ws_key_valid("c2hvcnQ=", 8)));
}

typedef struct offers {
  int n;
  eddy__ws_pmd pmd[4];
  int valid[4];
} offers;

static int collect(const char *ext, size_t len,
                   const eddy__ws_ext_param *params, size_t n, void *arg) {
  offers *o = arg;
  cr_assert(len == 18 && memcmp(ext, "permessage-deflate", 18) == 0);
  o->valid[o->n] = eddy__ws_pmd_params(params, n, &o->pmd[o->n]) == 0;
  o->n++;
  return 0;
}

Test(ws_handshake, permessage_deflate_offers_and_their_parameters) {
  offers o;
  const char
      *v = "permessage-deflate; client_max_window_bits; "
           "server_max_window_bits=10, permessage-deflate; "
           "server_no_context_takeover; client_max_window_bits=\"9\","
           "permessage-deflate; server_max_window_bits=16, "
           "permessage-deflate; x=1";
  memset(&o, 0, sizeof o);
  EXPECT_OK(eddy__ws_parse_extensions(v, strlen(v), collect, &o));
  EXPECT_EQ(o.n, 4);
  cr_expect(o.valid[0] && o.pmd[0].server_bits == 10 &&
            o.pmd[0].client_bits == 15);
  cr_expect(o.valid[1] && o.pmd[1].server_no_takeover &&
            o.pmd[1].client_bits == 9);
  cr_expect(o.valid[2] == 0 && o.valid[3] == 0);
  memset(&o, 0, sizeof o);
  v = "permessage-deflate; server_no_context_takeover; "
      "server_no_context_takeover";
  EXPECT_OK(eddy__ws_parse_extensions(v, strlen(v), collect, &o));
  cr_expect(0 == (o.valid[0])); /* repeated */
  EXPECT_EQ(eddy__ws_parse_extensions("a; =1", 5, collect, &o), EDDY_EPARSE);
  EXPECT_EQ(eddy__ws_parse_extensions("a; b=\"1", 7, collect, &o), EDDY_EPARSE);
}

/* ---- The response parser ----------------------------------------------------- */

Test(http_response, a_101_head_parsed_whole_and_in_pieces) {
  const char
      *t = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n\r\n"
           "\x81\x02hi";
  size_t len = strlen(t), head = len - 4;
  eddy_http_header h[8];
  eddy_http_response_head r;
  for (size_t cut = 0; cut < head; cut++)
    EXPECT_EQ(eddy_http_parse_response(t, cut, cut ? cut - 1 : 0, NULL, h, 8,
                                       &r),
              0);
  EXPECT_EQ(eddy_http_parse_response(t, len, 10, NULL, h, 8, &r), 1);
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_EQ(r.head_len, head);
  EXPECT_EQ(r.nheaders, 3);
  cr_expect(r.reason_len == 19 &&
            memcmp(r.reason, "Switching Protocols", 19) == 0);
  EXPECT_NE(r.flags & EDDY_HTTP_UPGRADE, 0);
  cr_expect(eddy_http_response_header(&r, "sec-websocket-accept") != NULL);
  cr_expect(eddy_http_response_header(&r, "nope") == NULL);
}

Test(http_response, malformed_heads_are_refused) {
  static const char *bad[] = {
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 099 X\r\n\r\n",
      "HTTP/1.1 200 O\rK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nA b: c\r\n\r\n",
      "HTTP/1.1 200 OK\r\n c\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "xyz\r\n\r\n",
  };
  eddy_http_header h[4];
  eddy_http_response_head r;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_expect(eq(int,
                 eddy_http_parse_response(bad[i], strlen(bad[i]), 0, NULL, h, 4,
                                          &r),
                 EDDY_EHTTP),
              "%s", bad[i]);
  /* Too many fields for the array; a status line past the limit. */
  const char *many = "HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
  EXPECT_EQ(eddy_http_parse_response(many, strlen(many), 0, NULL, h, 2, &r),
            EDDY_EHTTP);
  eddy_http_limits lim = {.max_request_line = 10};
  EXPECT_EQ(eddy_http_parse_response("HTTP/1.1 200 OK plus more", 25, 0, &lim,
                                     h, 4, &r),
            EDDY_EHTTP);
  /* HTTP/1.0 without keep-alive; 1.1 keeps alive; Content-Length read. */
  const char *ok = "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n";
  EXPECT_EQ(eddy_http_parse_response(ok, strlen(ok), 0, NULL, h, 4, &r), 1);
  EXPECT_EQ(r.content_length, 12);
  EXPECT_EQ(r.flags & EDDY_HTTP_KEEP_ALIVE, 0);
  EXPECT_EQ(eddy_http_parse_response("HTTP/1.1 204\n\n", 14, 0, NULL, h, 4, &r),
            1);
  EXPECT_EQ(r.reason_len, 0);
  EXPECT_NE(r.flags & EDDY_HTTP_KEEP_ALIVE, 0);
}
