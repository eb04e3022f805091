/* IRC names: the three case mappings byte by byte, comparison and hashing
 * under them, nickname and channel validity tables, ban mask matching
 * tables, and a hostile mask that must cost polynomial, not exponential,
 * work. */
#include <time.h>

#include "helpers.h"
#include "proto/irc/irc.h"

TestSuite(irc_casemap);
TestSuite(irc_names);
TestSuite(irc_mask);

static const eddy_irc_casemap_t RFC = EDDY_IRC_CASEMAP_RFC1459;
static const eddy_irc_casemap_t STRICT = EDDY_IRC_CASEMAP_STRICT_RFC1459;
static const eddy_irc_casemap_t ASCII = EDDY_IRC_CASEMAP_ASCII;

/* ---- case mapping ---- */

Test(irc_casemap, every_byte) {
  for (int c = 0; c < 256; c++) {
    int ascii = c >= 'A' && c <= 'Z' ? c + 32 : c;
    int strict = ascii, rfc = ascii;
    if (c == '[' || c == ']' || c == '\\')
      strict = rfc = c + 32;
    if (c == '~')
      rfc = '^';
    EXPECT_EQ(eddy_irc_lower(ASCII, (unsigned char)c), ascii);
    EXPECT_EQ(eddy_irc_lower(STRICT, (unsigned char)c), strict);
    EXPECT_EQ(eddy_irc_lower(RFC, (unsigned char)c), rfc);
  }
  EXPECT_EQ(eddy_irc_lower(RFC, '['), '{');
  EXPECT_EQ(eddy_irc_lower(RFC, ']'), '}');
  EXPECT_EQ(eddy_irc_lower(RFC, '\\'), '|');
  EXPECT_EQ(eddy_irc_lower(RFC, '~'), '^');
  EXPECT_EQ(eddy_irc_lower(RFC, '^'), '^');
  EXPECT_EQ(eddy_irc_lower(STRICT, '~'), '~');
  EXPECT_EQ(eddy_irc_lower(RFC, 0xC9), 0xC9); /* not Latin-1 aware */
  EXPECT_STR(eddy_irc_casemap_name(RFC), "rfc1459");
  EXPECT_STR(eddy_irc_casemap_name(STRICT), "strict-rfc1459");
  EXPECT_STR(eddy_irc_casemap_name(ASCII), "ascii");
}

Test(irc_casemap, lower_compare_hash) {
  char out[32];
  eddy_irc_lower_str(RFC, "Nick[A]\\~", 9, out);
  cr_assert(memcmp(out, "nick{a}|^", 9) == 0);
  char in[] = "ABC[]";
  eddy_irc_lower_str(ASCII, in, 5, in); /* in place */
  EXPECT_STR(in, "abc[]");

  static const struct {
    const char *a, *b;
    bool rfc, strict, ascii;
  } cases[] = {
      {"Dan", "dan", true, true, true},
      {"[Dan]", "{dan}", true, true, false},
      {"a\\b", "a|b", true, true, false},
      {"x~", "x^", true, false, false},
      {"dan", "dan_", false, false, false},
      {"", "", true, true, true},
      {"#Chan", "#chan", true, true, true},
      {"#Chan", "#chat", false, false, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *a = cases[i].a, *b = cases[i].b;
    size_t an = strlen(a), bn = strlen(b);
    EXPECT_EQ(eddy_irc_equal(RFC, a, an, b, bn), cases[i].rfc);
    EXPECT_EQ(eddy_irc_equal(STRICT, a, an, b, bn), cases[i].strict);
    EXPECT_EQ(eddy_irc_equal(ASCII, a, an, b, bn), cases[i].ascii);
    EXPECT_EQ(eddy_irc_casecmp(RFC, a, an, b, bn) == 0, cases[i].rfc);
    if (cases[i].rfc)
      EXPECT_EQ(eddy_irc_hash(RFC, a, an), eddy_irc_hash(RFC, b, bn));
    if (cases[i].ascii)
      EXPECT_EQ(eddy_irc_hash(ASCII, a, an), eddy_irc_hash(ASCII, b, bn));
  }
  /* Order: by lower case, then length. */
  EXPECT_LT(eddy_irc_casecmp(RFC, "abc", 3, "abd", 3), 0);
  EXPECT_GT(eddy_irc_casecmp(RFC, "ABD", 3, "abc", 3), 0);
  EXPECT_LT(eddy_irc_casecmp(RFC, "ab", 2, "ABC", 3), 0);
  EXPECT_GT(eddy_irc_casecmp(RFC, "abc", 3, "AB", 2), 0);
  cr_assert(false == eddy_irc_equal(RFC, "ab", 2, "abc", 2 + 1));
  EXPECT_NE(eddy_irc_hash(RFC, "dan", 3), eddy_irc_hash(RFC, "dam", 3));
}

/* ---- nicknames and channels ---- */

Test(irc_names, nicknames) {
  static const struct {
    const char *nick;
    bool ok;
  } cases[] = {
      {"dan", true},     {"Dan-1", true},      {"[away]", true},
      {"`quote", true},  {"_under_", true},    {"^caret", true},
      {"{x}|y\\", true}, {"a123456789", true}, {"", false},
      {"1dan", false},   {"-dan", false},      {"da n", false},
      {"dan!", false},   {"dan@h", false},     {"#chan", false},
      {"dan.", false},   {"d\xc3\xa9", false}, {"dan,bob", false},
      {":dan", false},   {"d*n", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert(eddy_irc_nick_valid(cases[i].nick, strlen(cases[i].nick), 30) ==
                  cases[i].ok,
              "%s", cases[i].nick);
  /* The length limit: at, and one past. */
  EXPECT_EQ(eddy_irc_nick_valid("abcdefghi", 9, 9), true);
  EXPECT_EQ(eddy_irc_nick_valid("abcdefghij", 10, 9), false);
  EXPECT_EQ(eddy_irc_nick_valid("a", 1, 0), false);
}

Test(irc_names, channels) {
  static const struct {
    const char *chan;
    size_t n;
    bool ok;
  } cases[] = {
      {"#chan", 5, true},
      {"&local", 6, true},
      {"#a", 2, true},
      {"##", 2, true},
      {"#\xc3\xa9t\xc3\xa9", 6, true},
      {"#Twilight_zone", 14, true},
      {"#", 1, false},
      {"&", 1, false},
      {"chan", 4, false},
      {"+chan", 5, false},
      {"!chan", 5, false},
      {"#a b", 4, false},
      {"#a,b", 4, false},
      {"#a:b", 4, false},
      {"#a\ab", 4, false},
      {"#a\rb", 4, false},
      {"#a\nb", 4, false},
      {"#a\0b", 4, false},
      {"", 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert(eddy_irc_channel_valid(cases[i].chan, cases[i].n, 50) ==
                  cases[i].ok,
              "case %zu", i);
  EXPECT_EQ(eddy_irc_channel_valid("#abcdefgh", 9, 9), true);
  EXPECT_EQ(eddy_irc_channel_valid("#abcdefghi", 10, 9), false);
}

/* ---- masks ---- */

Test(irc_mask, tables) {
  static const struct {
    const char *mask, *subject;
    bool match;
  } cases[] = {
      {"*!*@*", "dan!d@localhost", true},
      {"*", "", true},
      {"**", "", true},
      {"", "", true},
      {"", "a", false},
      {"?", "", false},
      {"?", "a", true},
      {"??", "a", false},
      {"dan!*@*", "Dan!d@host", true},
      {"dan!*@*", "danny!d@host", false},
      {"dan*!*@*", "danny!d@host", true},
      {"*!*@*.example.net", "x!y@irc.example.net", true},
      {"*!*@*.example.net", "x!y@example.net", false},
      {"*!*@*.EXAMPLE.net", "x!y@a.example.NET", true},
      {"*!?@*", "n!u@h", true},
      {"*!?@*", "n!uu@h", false},
      {"a*b*c", "abc", true},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "aXbYcZ", false},
      {"a*b*c", "acb", false},
      {"*a", "bbbba", true},
      {"*a", "bbbab", false},
      {"*ab*ab", "xabyabab", true},
      {"*?*", "", false},
      {"*?*", "x", true},
      {"[dan]!*@*", "{DAN}!u@h", true}, /* rfc1459: [ ] fold to { } */
      {"nick~!*@*", "NICK^!u@h", true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *m = cases[i].mask, *s = cases[i].subject;
    cr_assert(eddy_irc_mask_match(RFC, m, strlen(m), s, strlen(s)) ==
                  cases[i].match,
              "%s vs %s", m, s);
  }
  /* Other mappings. */
  cr_assert(false == eddy_irc_mask_match(ASCII, "[dan]", 5, "{dan}", 5));
  cr_assert(eddy_irc_mask_match(STRICT, "[dan]", 5, "{DAN}", 5));
  cr_assert(false == eddy_irc_mask_match(STRICT, "a~", 2, "a^", 2));
}

Test(irc_mask, hostile_mask_costs_polynomial_work) {
  /* Recursive matchers take exponential time here: every '*' tries every
   * split of the rest. */
  static char subject[20000];
  memset(subject, 'a', sizeof subject);
  const char *mask = "*a*a*a*a*a*a*b";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t steps = 0;
  cr_assert(false == eddy__irc_mask_match(RFC, mask, strlen(mask), subject,
                                          sizeof subject, &steps));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
              (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  cr_assert(steps <= (strlen(mask) + 2) * (sizeof subject + 2), "%zu steps",
            steps);
  cr_assert(ms < 2000, "%.1f ms", ms);

  /* The same, ending in a match. */
  subject[sizeof subject - 1] = 'b';
  cr_assert(eddy__irc_mask_match(RFC, mask, strlen(mask), subject,
                                 sizeof subject, &steps));
  cr_assert(steps <= (strlen(mask) + 2) * (sizeof subject + 2));

  /* A long mask of stars and letters against a long subject. */
  static char longmask[2000];
  for (size_t i = 0; i < sizeof longmask; i++)
    longmask[i] = i % 2 ? '*' : 'a';
  longmask[sizeof longmask - 1] = 'b';
  subject[sizeof subject - 1] = 'a';
  cr_assert(false == eddy__irc_mask_match(RFC, longmask, sizeof longmask,
                                          subject, sizeof subject, &steps));
  cr_assert(steps <= (sizeof longmask + 2) * (sizeof subject + 2));
}
