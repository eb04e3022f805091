/* Fuzz target: IRC messages and ban masks (src/proto/irc/).
 *
 * The first input byte picks the parser flags (bit 0 EDDY_IRC_PARSE_CLIENT,
 * bit 1 EDDY_IRC_PARSE_TRUNCATE) and the case mapping (bits 2-3); the rest
 * is one line. If it parses, the message is written back and the output
 * parsed again: it must give the same message (tags, source and its parts,
 * command, parameters), the writer may refuse it only for its length, and
 * every tag value must survive unescape -> escape -> unescape.
 *
 * The same bytes are then split at their first LF into a mask and a
 * subject: eddy_irc_mask_match must agree with a plain dynamic-programming
 * matcher, and its work must stay within (mask + 2) * (subject + 2) steps.
 * Any difference, or a sanitizer report, is a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"
#include "proto/irc/irc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "irc fuzz: %s (line %d)\n", #c, __LINE__);               \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static char out[EDDY_IRC_WIRE_MAX + 16];
static char value[EDDY_IRC_TAGS_MAX];
static char value2[EDDY_IRC_TAGS_MAX];
static char tagbuf[3 * EDDY_IRC_TAGS_MAX];

static bool same(eddy_irc_str_t a, eddy_irc_str_t b) {
  return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void check_tags(const eddy_irc_msg_t *m) {
  size_t pos = 0, count = 0;
  eddy_irc_tag_t t;
  while (eddy_irc_tag_next(m, &pos, &t)) {
    CHECK(t.key.n > 0 && t.key.n <= m->tags.n);
    CHECK(t.key.p >= m->tags.p && t.raw.p + t.raw.n <= m->tags.p + m->tags.n);
    eddy_irc_tag_t f;
    CHECK(eddy_irc_tag_find(m, t.key.p, t.key.n, &f));
    size_t n = eddy_irc_tag_unescape(t.raw.p, t.raw.n, value);
    CHECK(n <= t.raw.n);
    size_t len = 0;
    int rc = eddy_irc_tag_append(tagbuf, sizeof tagbuf, &len, t.key.p, t.key.n,
                                 value, n);
    if (memchr(value, '\0', n)) {
      CHECK(rc == -EINVAL);
    } else {
      CHECK(rc == 0);
      eddy_irc_msg_t one = {0};
      one.tags.p = tagbuf;
      one.tags.n = len;
      eddy_irc_tag_t u;
      size_t p2 = 0;
      CHECK(eddy_irc_tag_next(&one, &p2, &u));
      CHECK(same(u.key, t.key));
      CHECK(eddy_irc_tag_unescape(u.raw.p, u.raw.n, value2) == n);
      CHECK(memcmp(value, value2, n) == 0);
      CHECK(!eddy_irc_tag_next(&one, &p2, &u));
    }
    CHECK(++count <= m->tags.n);
  }
  CHECK(pos == m->tags.n);
}

static void check_message(const char *line, size_t len, unsigned flags) {
  eddy_irc_msg_t m, m2;
  int rc = eddy_irc_parse(line, len, flags, &m);
  CHECK(rc == 0 || rc == EDDY_EPARSE || rc == EDDY_ETOOLONG || rc == -ENODATA);
  if (rc == EDDY_ETOOLONG)
    CHECK(len > EDDY_IRC_BODY_MAX);
  if (rc != 0)
    return;
  CHECK(m.nparams <= EDDY_IRC_PARAMS_MAX);
  CHECK(m.command.n > 0);
  CHECK(m.numeric >= -1 && m.numeric <= 999);
  for (unsigned i = 0; i < m.nparams; i++)
    CHECK(m.params[i].n == 0 || (m.params[i].p >= line &&
                                 m.params[i].p + m.params[i].n <= line + len));
  check_tags(&m);

  int n = eddy_irc_write(&m, out, sizeof out);
  if (n < 0) {
    /* Only a message at the length limit may grow past it (a ':' added
     * before a fifteenth parameter that holds spaces). */
    CHECK(n == -ENOSPC);
    CHECK(len >= EDDY_IRC_BODY_MAX);
    return;
  }
  CHECK(n >= 3 && out[n - 2] == '\r' && out[n - 1] == '\n');
  CHECK(eddy_irc_parse(out, (size_t)n - 2, flags & ~EDDY_IRC_PARSE_TRUNCATE,
                       &m2) == 0);
  CHECK(!m2.truncated);
  CHECK(same(m.tags, m2.tags));
  CHECK(same(m.source, m2.source));
  CHECK(same(m.nick, m2.nick) && same(m.user, m2.user) &&
        same(m.host, m2.host));
  CHECK(same(m.command, m2.command) && m.numeric == m2.numeric);
  CHECK(m.nparams == m2.nparams);
  for (unsigned i = 0; i < m.nparams; i++)
    CHECK(same(m.params[i], m2.params[i]));
  if (m.trailing)
    CHECK(m2.trailing);

  /* eddy_irc_room is exact: a last parameter of that many bytes fits,
   * one more does not. */
  const eddy_irc_str_t *last = m.nparams ? &m.params[m.nparams - 1] : NULL;
  if (m.nparams < EDDY_IRC_PARAMS_MAX &&
      (!last ||
       (last->n > 0 && last->p[0] != ':' && !memchr(last->p, ' ', last->n)))) {
    static char fill[EDDY_IRC_LINE_MAX + 1];
    memset(fill, 'x', sizeof fill);
    size_t room = eddy_irc_room(&m);
    eddy_irc_msg_t big = m;
    big.tags.n = 0;
    big.trailing = true;
    CHECK(eddy_irc_msg_add(&big, fill, room) == 0);
    if (room > 0)
      CHECK(eddy_irc_write(&big, out, sizeof out) > 0);
    big.params[big.nparams - 1].n = room + 1;
    CHECK(eddy_irc_write(&big, out, sizeof out) == -ENOSPC);
  }
}

/* A reference matcher: the textbook table, one row at a time. */
static bool reference_match(eddy_irc_casemap_t cm, const char *p, size_t pn,
                            const char *s, size_t sn) {
  static bool row[2][1025];
  bool *prev = row[0], *cur = row[1];
  prev[0] = true;
  for (size_t j = 1; j <= sn; j++)
    prev[j] = false;
  for (size_t i = 1; i <= pn; i++) {
    char c = p[i - 1];
    cur[0] = prev[0] && c == '*';
    for (size_t j = 1; j <= sn; j++) {
      if (c == '*')
        cur[j] = prev[j] || cur[j - 1];
      else
        cur[j] = prev[j - 1] &&
                 (c == '?' || eddy_irc_lower(cm, (unsigned char)c) ==
                                  eddy_irc_lower(cm, (unsigned char)s[j - 1]));
    }
    bool *t = prev;
    prev = cur;
    cur = t;
  }
  return prev[sn];
}

static void check_mask(eddy_irc_casemap_t cm, const char *d, size_t n) {
  const char *lf = memchr(d, '\n', n);
  size_t mn = lf ? (size_t)(lf - d) : n / 2;
  const char *subject = lf ? lf + 1 : d + mn;
  size_t sn = n - (size_t)(subject - d);
  size_t steps = 0;
  bool got = eddy__irc_mask_match(cm, d, mn, subject, sn, &steps);
  CHECK(got == eddy_irc_mask_match(cm, d, mn, subject, sn));
  CHECK(steps <= (mn + 2) * (sn + 2));
  if (sn <= 1024)
    CHECK(got == reference_match(cm, d, mn, subject, sn));
  /* Every subject matches itself as a mask when it holds no wildcard. */
  if (!memchr(subject, '*', sn) && !memchr(subject, '?', sn))
    CHECK(eddy_irc_mask_match(cm, subject, sn, subject, sn));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned flags = data[0] & 3;
  eddy_irc_casemap_t cm = (eddy_irc_casemap_t)((data[0] >> 2) % 3);
  const char *line = (const char *)data + 1;
  size_t len = size - 1;
  check_message(line, len, flags);
  check_mask(cm, line, len);

  /* Case mapping: the fold is idempotent and hash follows equality. */
  size_t k = len < 64 ? len : 64;
  char low[64];
  eddy_irc_lower_str(cm, line, k, low);
  CHECK(eddy_irc_equal(cm, line, k, low, k));
  CHECK(eddy_irc_hash(cm, line, k) == eddy_irc_hash(cm, low, k));
  CHECK(eddy_irc_casecmp(cm, line, k, low, k) == 0);
  (void)eddy_irc_nick_valid(line, len, 30);
  (void)eddy_irc_channel_valid(line, len, 50);
  size_t fit = eddy_irc_fit(line, len, len / 2);
  CHECK(fit <= len && (fit == len || fit <= len / 2));
  return 0;
}
