/* DNS names in wire form: decompression with every malformation it must
 * refuse, comparison, lower case, presentation text both ways, label
 * counts, subdomains. */
#include "helpers.h"

TestSuite(dns_name);

/* A name from text, absolute, for the tests' convenience. */
static size_t W(const char *text, uint8_t out[EDDY_DNS_NAME_MAX]) {
  int n = eddy_dns_name_from_text(text, strlen(text), NULL, out);
  cr_assert(n > 0, "bad test name %s", text);
  return (size_t)n;
}

static void text_of(const uint8_t *name, char *out) {
  int n = eddy_dns_name_to_text(name, out, EDDY_DNS_NAME_TEXT_MAX);
  cr_assert(n > 0);
}

/* ---- parse ---- */

/* A message: 12 header bytes then body. */
static size_t msg(uint8_t *m, const void *body, size_t n) {
  memset(m, 0, 12);
  memcpy(m + 12, body, n);
  return 12 + n;
}

Test(dns_name, parse_plain_name) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\3www\7Example\3com\0rest", 22);
  size_t off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), 17);
  EXPECT_EQ(off, 12 + 17);
  cr_assert(memcmp(out, "\3www\7Example\3com", 17) == 0); /* case kept */
}

Test(dns_name, parse_root) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\0", 1), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), 1);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(off, 13);
}

Test(dns_name, parse_follows_pointers_and_stops_after_the_first) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  /* 12: example.com.  25: www -> 12   31: a -> 25 */
  size_t len = msg(m,
                   "\7example\3com\0"
                   "\3www\xC0\x0C"
                   "\1a\xC0\x19",
                   13 + 6 + 4);
  size_t off = 31;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), 19);
  EXPECT_EQ(off, 35);
  cr_assert(memcmp(out, "\1a\3www\7example\3com", 19) == 0);
}

Test(dns_name, parse_rejects_self_pointer) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\xC0\x0C", 2), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
  EXPECT_EQ(off, 12);
}

Test(dns_name, parse_rejects_forward_pointer) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\xC0\x0E\0", 3), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_pointer_loop) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  /* 12: a -> 15; 15: b -> 12: each pointer of the loop but one is
   * forward, so the loop cannot start. */
  size_t len = msg(m, "\1a\xC0\x0F\1b\xC0\x0C", 8), off = 16;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
  off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_pointer_outside_message) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\xFF\xFF", 2), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_pointer_into_header) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\xC0\x02", 2), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_truncated_pointer) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\0\xC0", 2), off = 13;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_bad_label_types) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\x41xxxxx\0", 7), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
  len = msg(m, "\x80xxxxx\0", 7), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_label_past_the_end) {
  uint8_t m[64], out[EDDY_DNS_NAME_MAX];
  size_t len = msg(m, "\5abc", 4), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
  len = msg(m, "\3abc", 4), off = 12; /* no root label */
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
  off = 16; /* at the end */
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

/* A wire name of labels of the given lengths, filled with c. */
static size_t build(uint8_t *out, const int *lens, int k, uint8_t c) {
  size_t n = 0;
  for (int l = 0; l < k; l++) {
    out[n++] = (uint8_t)lens[l];
    memset(out + n, c, (size_t)lens[l]);
    n += (size_t)lens[l];
  }
  out[n++] = 0;
  return n;
}

Test(dns_name, parse_name_of_255_bytes_and_not_256) {
  uint8_t m[600], out[EDDY_DNS_NAME_MAX], body[300];
  size_t n = build(body, (const int[]){63, 63, 63, 61}, 4, 'a');
  EXPECT_EQ(n, 255);
  size_t len = msg(m, body, n), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), 255);
  n = build(body, (const int[]){63, 63, 63, 62}, 4, 'a');
  len = msg(m, body, n), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
  EXPECT_EQ(off, 12);
}

Test(dns_name, parse_name_over_255_through_pointers) {
  /* Each part is short, together too long: a 63-byte label followed by a
   * pointer to the previous part, five times. */
  uint8_t m[600], out[EDDY_DNS_NAME_MAX];
  memset(m, 0, 12);
  size_t n = 12;
  m[n++] = 0; /* root at 12 */
  size_t prev = 12;
  for (int i = 0; i < 5; i++) {
    size_t here = n;
    m[n++] = 63;
    memset(m + n, 'b', 63);
    n += 63;
    m[n++] = (uint8_t)(0xC0 | (prev >> 8));
    m[n++] = (uint8_t)prev;
    prev = here;
  }
  size_t off = prev;
  EXPECT_EQ(eddy_dns_name_parse(m, n, &off, out), EDDY_EPARSE);
}

Test(dns_name, parse_rejects_label_of_64) {
  uint8_t m[128], out[EDDY_DNS_NAME_MAX], body[70];
  body[0] = 64; /* 0x40: an extended label type, not a length */
  memset(body + 1, 'c', 64);
  body[65] = 0;
  size_t len = msg(m, body, 66), off = 12;
  EXPECT_EQ(eddy_dns_name_parse(m, len, &off, out), EDDY_EPARSE);
}

/* ---- check, len, labels ---- */

Test(dns_name, check) {
  EXPECT_EQ(eddy_dns_name_check((const uint8_t *)"\3www\0", 5), 5);
  EXPECT_EQ(eddy_dns_name_check((const uint8_t *)"\3www\0", 4), EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_name_check((const uint8_t *)"\xC0\x0C", 2), EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_name_check((const uint8_t *)"", 0), EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_name_check((const uint8_t *)"\0", 1), 1);
}

Test(dns_name, len_and_labels) {
  uint8_t n[EDDY_DNS_NAME_MAX];
  EXPECT_EQ(W("www.example.com.", n), 17);
  EXPECT_EQ(eddy_dns_name_len(n), 17);
  EXPECT_EQ(eddy_dns_name_labels(n), 3);
  W(".", n);
  EXPECT_EQ(eddy_dns_name_len(n), 1);
  EXPECT_EQ(eddy_dns_name_labels(n), 0);
}

/* ---- compare ---- */

Test(dns_name, equal_ignores_ascii_case_only) {
  uint8_t a[EDDY_DNS_NAME_MAX], b[EDDY_DNS_NAME_MAX];
  W("WWW.Example.COM", a);
  W("www.example.com.", b);
  cr_assert(eddy_dns_name_equal(a, b));
  W("www.example.co.", b);
  EXPECT_EQ(eddy_dns_name_equal(a, b), 0);
  W("www.example.com.x.", b);
  EXPECT_EQ(eddy_dns_name_equal(a, b), 0);
  /* 0xC4 and 0xE4 differ only in bit 0x20 but are not letters. */
  W("\\196.", a);
  W("\\228.", b);
  EXPECT_EQ(eddy_dns_name_equal(a, b), 0);
  /* '@' (0x40) and '`' (0x60) likewise. */
  W("\\@.", a);
  W("`.", b);
  EXPECT_EQ(eddy_dns_name_equal(a, b), 0);
}

Test(dns_name, is_subdomain) {
  uint8_t a[EDDY_DNS_NAME_MAX], b[EDDY_DNS_NAME_MAX];
  W("www.Example.com.", a);
  W("example.COM.", b);
  cr_assert(eddy_dns_name_is_subdomain(a, b));
  cr_assert(eddy_dns_name_is_subdomain(b, b));
  EXPECT_EQ(eddy_dns_name_is_subdomain(b, a), 0);
  W(".", b);
  cr_assert(eddy_dns_name_is_subdomain(a, b));
  W("wwwexample.com.", a);
  W("example.com.", b);
  EXPECT_EQ(eddy_dns_name_is_subdomain(a, b), 0);
  W("ple.com.", b);
  EXPECT_EQ(eddy_dns_name_is_subdomain(a, b), 0);
}

Test(dns_name, lower) {
  uint8_t a[EDDY_DNS_NAME_MAX], b[EDDY_DNS_NAME_MAX];
  char t[EDDY_DNS_NAME_TEXT_MAX];
  W("WwW.ExAmPle.COM.", a);
  EXPECT_EQ(eddy_dns_name_lower(b, a), 17);
  text_of(b, t);
  EXPECT_STR(t, "www.example.com.");
  eddy_dns_name_lower(a, a); /* in place */
  cr_assert(memcmp(a, b, 17) == 0);
}

/* ---- text ---- */

Test(dns_name, from_text_escapes) {
  uint8_t n[EDDY_DNS_NAME_MAX];
  EXPECT_EQ(W("a\\.b.c.", n), 7);
  cr_assert(memcmp(n, "\3a.b\1c", 7) == 0);
  EXPECT_EQ(W("\\065\\\\z.", n), 5);
  cr_assert(memcmp(n, "\3A\\z", 5) == 0);
  EXPECT_EQ(W("\\000.", n), 3);
  cr_assert(memcmp(n, "\1\0\0", 3) == 0);
}

Test(dns_name, from_text_relative) {
  uint8_t o[EDDY_DNS_NAME_MAX], n[EDDY_DNS_NAME_MAX];
  char t[EDDY_DNS_NAME_TEXT_MAX];
  W("example.com.", o);
  EXPECT_EQ(eddy_dns_name_from_text("www", 3, o, n), 4 + 13);
  text_of(n, t);
  EXPECT_STR(t, "www.example.com.");
  /* An absolute name ignores the origin. */
  EXPECT_EQ(eddy_dns_name_from_text("www.", 4, o, n), 5);
}

Test(dns_name, from_text_errors) {
  uint8_t n[EDDY_DNS_NAME_MAX];
  const char *bad[] = {"",      "..",     "a..b",   ".a", "a\\",
                       "a\\25", "a\\256", "a\\2x5", "\\"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect(eq(int, eddy_dns_name_from_text(bad[i], strlen(bad[i]), NULL, n),
                 EDDY_EPARSE),
              "%s", bad[i]);
  char label[80];
  memset(label, 'x', 64);
  strcpy(label + 64, ".");
  EXPECT_EQ(eddy_dns_name_from_text(label, 65, NULL, n), EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_name_from_text(label + 1, 64, NULL, n), 65);
}

Test(dns_name, from_text_length_limit) {
  /* 63.63.63.61. is 255 bytes; 63.63.63.62. is 256. */
  char t[300];
  uint8_t n[EDDY_DNS_NAME_MAX], o[EDDY_DNS_NAME_MAX];
  size_t k = 0;
  for (int l = 0; l < 4; l++) {
    int c = l < 3 ? 63 : 61;
    memset(t + k, 'a' + l, (size_t)c);
    k += (size_t)c;
    t[k++] = '.';
  }
  EXPECT_EQ(eddy_dns_name_from_text(t, k, NULL, n), 255);
  /* Without the final dot, the same; over the limit with an origin. */
  EXPECT_EQ(eddy_dns_name_from_text(t, k - 1, NULL, n), 255);
  W("x.", o);
  EXPECT_EQ(eddy_dns_name_from_text(t, k - 1, o, n), EDDY_EPARSE);
  t[k - 1] = 'z'; /* one byte more in the last label */
  t[k] = '.';
  EXPECT_EQ(eddy_dns_name_from_text(t, k + 1, NULL, n), EDDY_EPARSE);
  EXPECT_EQ(eddy_dns_name_from_text(t, k, NULL, n), EDDY_EPARSE);
}

Test(dns_name, to_text) {
  uint8_t n[EDDY_DNS_NAME_MAX];
  char t[EDDY_DNS_NAME_TEXT_MAX];
  memcpy(n, "\5a.b\\\"\3\x01 \xff\0", 12);
  text_of(n, t);
  EXPECT_STR(t, "a\\.b\\\\\\\".\\001\\ \\255.");
  W(".", n);
  text_of(n, t);
  EXPECT_STR(t, ".");
}

Test(dns_name, to_text_round_trips_every_byte) {
  uint8_t n[EDDY_DNS_NAME_MAX], back[EDDY_DNS_NAME_MAX];
  char t[EDDY_DNS_NAME_TEXT_MAX];
  for (int b = 0; b < 256; b++) {
    n[0] = 2;
    n[1] = (uint8_t)b;
    n[2] = 'q';
    n[3] = 0;
    int k = eddy_dns_name_to_text(n, t, sizeof t);
    cr_assert(k > 0);
    EXPECT_EQ(eddy_dns_name_from_text(t, (size_t)k, NULL, back), 4);
    cr_assert(memcmp(n, back, 4) == 0, "byte %d", b);
  }
}

Test(dns_name, to_text_worst_case_fits_the_maximum) {
  uint8_t n[EDDY_DNS_NAME_MAX];
  char t[EDDY_DNS_NAME_TEXT_MAX];
  size_t k = 0;
  for (int l = 0; l < 4; l++) {
    int c = l < 3 ? 63 : 61;
    n[k++] = (uint8_t)c;
    memset(n + k, 0xFF, (size_t)c);
    k += (size_t)c;
  }
  n[k] = 0;
  EXPECT_EQ(eddy_dns_name_to_text(n, t, sizeof t), 250 * 4 + 4);
}

Test(dns_name, to_text_short_buffer) {
  uint8_t n[EDDY_DNS_NAME_MAX];
  char t[8];
  W("abc.def.", n);
  EXPECT_EQ(eddy_dns_name_to_text(n, t, 8), -ENOSPC);
  EXPECT_STR(t, "");
  char u[16];
  EXPECT_EQ(eddy_dns_name_to_text(n, u, 9), 8);
  EXPECT_STR(u, "abc.def.");
  W(".", n);
  EXPECT_EQ(eddy_dns_name_to_text(n, t, 1), -ENOSPC);
  EXPECT_EQ(eddy_dns_name_to_text(n, t, 0), -ENOSPC);
}

Test(dns_name, parse_caps_pointer_chains) {
  /* 12: the root; then pointers, each to the one before. A name reached
   * through 128 of them is read, through 129 refused. */
  uint8_t m[12 + 1 + 2 * 129], out[EDDY_DNS_NAME_MAX];
  memset(m, 0, 12);
  m[12] = 0;
  size_t n = 13, prev = 12;
  for (int i = 0; i < 129; i++) {
    m[n] = (uint8_t)(0xC0 | (prev >> 8));
    m[n + 1] = (uint8_t)prev;
    prev = n;
    n += 2;
  }
  size_t off = n - 4;
  EXPECT_EQ(eddy_dns_name_parse(m, n, &off, out), 1);
  EXPECT_EQ(off, n - 2);
  off = n - 2;
  EXPECT_EQ(eddy_dns_name_parse(m, n, &off, out), EDDY_EPARSE);
}

/* ---- Types ---- */

Test(dns_type, mnemonics_both_ways_and_the_rfc3597_form) {
  char text[EDDY_DNS_TYPE_TEXT_MAX];
  uint16_t t = 0;
  cr_assert_str_eq(eddy_dns_type_to_text(EDDY_DNS_TYPE_AAAA, text, sizeof text),
                   "AAAA");
  cr_assert_str_eq(eddy_dns_type_to_text(257, text, sizeof text), "CAA");
  cr_assert_str_eq(eddy_dns_type_to_text(65000, text, sizeof text),
                   "TYPE65000");
  cr_assert_str_eq(eddy_dns_type_to_text(0, text, sizeof text), "TYPE0");
  /* Too small: as much as fits. */
  cr_assert_str_eq(eddy_dns_type_to_text(65000, text, 5), "TYPE");
  EXPECT_OK(eddy_dns_type_from_text("aaaa", &t));
  EXPECT_EQ(t, EDDY_DNS_TYPE_AAAA);
  EXPECT_OK(eddy_dns_type_from_text("Type65000", &t));
  EXPECT_EQ(t, 65000);
  EXPECT_OK(eddy_dns_type_from_text("TYPE28", &t));
  EXPECT_EQ(t, 28);
  static const char *bad[] = {"",          "TYPE",
                              "TYPE65536", "TYPE-1",
                              "TYPE1x",    "AAA",
                              "28",        "TYPE99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT_EQ(eddy_dns_type_from_text(bad[i], &t), EDDY_EPARSE);
  /* Every type written reads back. */
  for (unsigned v = 0; v <= 65535; v += 7) {
    eddy_dns_type_to_text((uint16_t)v, text, sizeof text);
    EXPECT_OK(eddy_dns_type_from_text(text, &t));
    EXPECT_EQ(t, v);
  }
}
