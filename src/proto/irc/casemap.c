/* IRC names: case mapping, nickname and channel validity, ban masks. See
 * include/eddy/irc.h. */
#include <string.h>

#include "eddy/common.h"
#include "eddy/irc.h"
#include "proto/irc/irc.h"

/* ---- case mapping ---- */

const char *eddy_irc_casemap_name(eddy_irc_casemap_t cm) {
  switch (cm) {
  case EDDY_IRC_CASEMAP_STRICT_RFC1459:
    return "strict-rfc1459";
  case EDDY_IRC_CASEMAP_ASCII:
    return "ascii";
  default:
    return "rfc1459";
  }
}

unsigned char eddy_irc_lower(eddy_irc_casemap_t cm, unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return (unsigned char)(c + 32);
  if (cm == EDDY_IRC_CASEMAP_ASCII)
    return c;
  /* '[' '\\' ']' are 0x5B-0x5D, '{' '|' '}' 0x7B-0x7D: 32 apart, as
   * letters are; '~' (0x7E) and '^' (0x5E) too, for rfc1459 only. */
  if (c >= '[' && c <= ']')
    return (unsigned char)(c + 32);
  if (c == '~' && cm == EDDY_IRC_CASEMAP_RFC1459)
    return '^';
  return c;
}

void eddy_irc_lower_str(eddy_irc_casemap_t cm, const char *s, size_t n,
                        char *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = (char)eddy_irc_lower(cm, (unsigned char)s[i]);
}

int eddy_irc_casecmp(eddy_irc_casemap_t cm, const char *a, size_t an,
                     const char *b, size_t bn) {
  size_t n = an < bn ? an : bn;
  for (size_t i = 0; i < n; i++) {
    int x = eddy_irc_lower(cm, (unsigned char)a[i]);
    int y = eddy_irc_lower(cm, (unsigned char)b[i]);
    if (x != y)
      return x - y;
  }
  return an < bn ? -1 : an > bn;
}

bool eddy_irc_equal(eddy_irc_casemap_t cm, const char *a, size_t an,
                    const char *b, size_t bn) {
  return an == bn && eddy_irc_casecmp(cm, a, an, b, bn) == 0;
}

uint64_t eddy_irc_hash(eddy_irc_casemap_t cm, const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++) {
    h ^= eddy_irc_lower(cm, (unsigned char)s[i]);
    h *= 0x100000001b3u;
  }
  return h;
}

/* ---- names ---- */

static bool is_letter(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* RFC 2812's "special": []\`_^{|} (0x5B-0x60, 0x7B-0x7D). */
static bool is_special(unsigned char c) {
  return (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7D);
}

bool eddy_irc_nick_valid(const char *s, size_t n, size_t max) {
  if (n == 0 || n > max)
    return false;
  unsigned char c = (unsigned char)s[0];
  if (!is_letter(c) && !is_special(c))
    return false;
  for (size_t i = 1; i < n; i++) {
    c = (unsigned char)s[i];
    if (!is_letter(c) && !is_special(c) && !(c >= '0' && c <= '9') && c != '-')
      return false;
  }
  return true;
}

bool eddy_irc_channel_valid(const char *s, size_t n, size_t max) {
  if (n < 2 || n > max || (s[0] != '#' && s[0] != '&'))
    return false;
  for (size_t i = 1; i < n; i++) {
    switch (s[i]) {
    case '\0':
    case '\a':
    case '\r':
    case '\n':
    case ' ':
    case ',':
    case ':':
      return false;
    default:
      break;
    }
  }
  return true;
}

/* ---- masks ---- */

/* The glob match with one backtrack point: on a mismatch after a '*', the
 * '*' takes one more byte of the subject and matching resumes just after
 * it. An earlier '*' never needs revisiting (the later one can absorb
 * anything the earlier one could), so each '*' restarts the rest of the
 * mask at most sn + 1 times, and the comparisons are at most
 * (mn + 1) * (sn + 1). */
bool eddy__irc_mask_match(eddy_irc_casemap_t cm, const char *mask, size_t mn,
                          const char *subject, size_t sn, size_t *steps) {
  size_t m = 0, s = 0, work = 0;
  size_t star = SIZE_MAX, star_s = 0;
  bool match;
  for (;;) {
    work++;
    if (m < mn && mask[m] == '*') {
      /* Runs of '*' are one '*'. */
      while (m < mn && mask[m] == '*')
        m++;
      if (m == mn) {
        match = true; /* a final '*' takes the rest */
        break;
      }
      star = m;
      star_s = s;
      continue;
    }
    if (s == sn) {
      match = m == mn;
      break;
    }
    if (m < mn &&
        (mask[m] == '?' || eddy_irc_lower(cm, (unsigned char)mask[m]) ==
                               eddy_irc_lower(cm, (unsigned char)subject[s]))) {
      m++;
      s++;
      continue;
    }
    if (star == SIZE_MAX) {
      match = false;
      break;
    }
    /* Mismatch (or mask ended early): the last '*' takes one byte more. */
    m = star;
    s = ++star_s;
  }
  if (steps)
    *steps = work;
  return match;
}

bool eddy_irc_mask_match(eddy_irc_casemap_t cm, const char *mask, size_t mn,
                         const char *subject, size_t sn) {
  return eddy__irc_mask_match(cm, mask, mn, subject, sn, NULL);
}
