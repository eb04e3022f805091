/* IRC messages: the line parser, the writer, message tags and the helpers
 * that keep a line under its limit. See include/eddy/irc.h. */
#include <errno.h>
#include <string.h>

#include "eddy/common.h"
#include "eddy/irc.h"
#include "proto/irc/irc.h"

static bool is_letter(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

/* A byte no part of a line may hold. */
static bool is_forbidden(unsigned char c) {
  return c == '\0' || c == '\r' || c == '\n';
}

static bool has_forbidden(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (is_forbidden((unsigned char)s[i]))
      return true;
  return false;
}

static eddy_irc_str_t view(const char *p, size_t n) {
  eddy_irc_str_t s = {p, n};
  return s;
}

/* ---- tags ---- */

/* A key: ['+'] [vendor '/'] name; vendor of letters, digits, '-', '.';
 * name of letters, digits, '-', non-empty. */
static bool key_valid(const char *k, size_t n) {
  size_t i = 0, start;
  if (i < n && k[i] == '+')
    i++;
  start = i;
  bool slash = false, dot = false;
  for (; i < n; i++) {
    unsigned char c = (unsigned char)k[i];
    if (c == '/') {
      if (slash || i == start)
        return false;
      slash = true;
      start = i + 1;
    } else if (c == '.') {
      if (slash)
        return false;
      dot = true;
    } else if (!is_letter(c) && !is_digit(c) && c != '-') {
      return false;
    }
  }
  /* A '.' belongs to a vendor, which a '/' ends. */
  return i > start && (slash || !dot);
}

bool eddy__irc_tags_valid(const char *tags, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t end = i, eq = SIZE_MAX;
    while (end < n && tags[end] != ';') {
      unsigned char c = (unsigned char)tags[end];
      if (c == ' ' || is_forbidden(c))
        return false;
      if (c == '=' && eq == SIZE_MAX)
        eq = end;
      end++;
    }
    if (end > i) { /* an empty tag is skipped */
      size_t klen = (eq == SIZE_MAX ? end : eq) - i;
      if (!key_valid(tags + i, klen))
        return false;
    }
    i = end + 1;
  }
  return true;
}

bool eddy_irc_tag_next(const eddy_irc_msg_t *m, size_t *pos,
                       eddy_irc_tag_t *tag) {
  const char *t = m->tags.p;
  size_t n = m->tags.n, i = *pos;
  while (i < n) {
    size_t end = i;
    while (end < n && t[end] != ';')
      end++;
    if (end == i) { /* empty tag */
      i++;
      continue;
    }
    const char *eq = memchr(t + i, '=', end - i);
    if (eq) {
      tag->key = view(t + i, (size_t)(eq - (t + i)));
      tag->raw = view(eq + 1, (size_t)(t + end - (eq + 1)));
    } else {
      tag->key = view(t + i, end - i);
      tag->raw = view(t + end, 0);
    }
    *pos = end < n ? end + 1 : n;
    return true;
  }
  *pos = n;
  return false;
}

bool eddy_irc_tag_find(const eddy_irc_msg_t *m, const char *key, size_t key_len,
                       eddy_irc_tag_t *tag) {
  size_t pos = 0;
  eddy_irc_tag_t t;
  bool found = false;
  while (eddy_irc_tag_next(m, &pos, &t))
    if (t.key.n == key_len && memcmp(t.key.p, key, key_len) == 0) {
      *tag = t;
      found = true;
    }
  return found;
}

size_t eddy_irc_tag_unescape(const char *raw, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = raw[i];
    if (c != '\\') {
      out[o++] = c;
      continue;
    }
    if (++i == n)
      break; /* a final lone backslash is dropped */
    switch (raw[i]) {
    case ':':
      out[o++] = ';';
      break;
    case 's':
      out[o++] = ' ';
      break;
    case 'r':
      out[o++] = '\r';
      break;
    case 'n':
      out[o++] = '\n';
      break;
    default: /* "\\" and any other "\c" give the character */
      out[o++] = raw[i];
      break;
    }
  }
  return o;
}

static size_t escaped_len(const char *v, size_t n) {
  size_t len = n;
  for (size_t i = 0; i < n; i++) {
    char c = v[i];
    if (c == ';' || c == ' ' || c == '\\' || c == '\r' || c == '\n')
      len++;
  }
  return len;
}

int eddy_irc_tag_append(char *tags, size_t cap, size_t *len, const char *key,
                        size_t key_len, const char *value, size_t value_len) {
  if (!key_valid(key, key_len) || (value_len && memchr(value, '\0', value_len)))
    return -EINVAL;
  size_t need = (*len > 0) + key_len +
                (value_len ? 1 + escaped_len(value, value_len) : 0);
  if (*len > cap || need > cap - *len)
    return -ENOSPC;
  char *o = tags + *len;
  if (*len > 0)
    *o++ = ';';
  memcpy(o, key, key_len);
  o += key_len;
  if (value_len) {
    *o++ = '=';
    for (size_t i = 0; i < value_len; i++) {
      char c = value[i];
      switch (c) {
      case ';':
        *o++ = '\\', *o++ = ':';
        break;
      case ' ':
        *o++ = '\\', *o++ = 's';
        break;
      case '\\':
        *o++ = '\\', *o++ = '\\';
        break;
      case '\r':
        *o++ = '\\', *o++ = 'r';
        break;
      case '\n':
        *o++ = '\\', *o++ = 'n';
        break;
      default:
        *o++ = c;
      }
    }
  }
  *len += need;
  return 0;
}

/* ---- the parser ---- */

static size_t skip_spaces(const char *s, size_t i, size_t n) {
  while (i < n && s[i] == ' ')
    i++;
  return i;
}

static size_t until_space(const char *s, size_t i, size_t n) {
  while (i < n && s[i] != ' ')
    i++;
  return i;
}

static void split_source(eddy_irc_msg_t *m) {
  const char *s = m->source.p;
  size_t n = m->source.n, bang = n, at = n;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '!' && bang == n && at == n)
      bang = i;
    else if (s[i] == '@' && at == n)
      at = i;
  }
  m->nick = view(s, bang < at ? bang : at);
  if (bang < at)
    m->user = view(s + bang + 1, at - bang - 1);
  if (at < n)
    m->host = view(s + at + 1, n - at - 1);
}

static int parse_command(eddy_irc_msg_t *m, const char *c, size_t n) {
  m->command = view(c, n);
  m->numeric = -1;
  if (n == 3 && is_digit((unsigned char)c[0]) &&
      is_digit((unsigned char)c[1]) && is_digit((unsigned char)c[2])) {
    m->numeric = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    return 0;
  }
  if (n == 0)
    return EDDY_EPARSE;
  for (size_t i = 0; i < n; i++)
    if (!is_letter((unsigned char)c[i]))
      return EDDY_EPARSE;
  return 0;
}

int eddy_irc_parse(const char *line, size_t len, unsigned flags,
                   eddy_irc_msg_t *m) {
  memset(m, 0, sizeof *m);
  m->numeric = -1;
  if (has_forbidden(line, len))
    return EDDY_EPARSE;
  size_t i = skip_spaces(line, 0, len);
  if (i == len)
    return -ENODATA;

  if (line[i] == '@') {
    size_t end = until_space(line, i + 1, len);
    size_t data = end - (i + 1);
    if (flags & EDDY_IRC_PARSE_CLIENT ? data > EDDY_IRC_CLIENT_TAGS_MAX
                                      : data + 2 > EDDY_IRC_TAGS_MAX)
      return EDDY_ETOOLONG;
    if (data == 0 || !eddy__irc_tags_valid(line + i + 1, data))
      return EDDY_EPARSE;
    m->tags = view(line + i + 1, data);
    i = skip_spaces(line, end, len);
    if (i == len)
      return EDDY_EPARSE; /* tags and nothing else */
  }

  /* The message proper: at most EDDY_IRC_BODY_MAX bytes. */
  if (len - i > EDDY_IRC_BODY_MAX) {
    if (!(flags & EDDY_IRC_PARSE_TRUNCATE))
      return EDDY_ETOOLONG;
    len = i + eddy_irc_fit(line + i, len - i, EDDY_IRC_BODY_MAX);
    m->truncated = true;
  }

  if (line[i] == ':') {
    size_t end = until_space(line, i + 1, len);
    if (end == i + 1)
      return EDDY_EPARSE; /* ":" alone, or ": CMD" */
    m->source = view(line + i + 1, end - (i + 1));
    split_source(m);
    i = skip_spaces(line, end, len);
    if (i == len)
      return EDDY_EPARSE; /* a source and no command */
  }

  size_t end = until_space(line, i, len);
  int rc = parse_command(m, line + i, end - i);
  if (rc < 0)
    return rc;
  i = end;

  for (;;) {
    i = skip_spaces(line, i, len);
    if (i == len)
      break;
    if (line[i] == ':' || m->nparams == EDDY_IRC_PARAMS_MAX - 1) {
      /* The trailing parameter, or the fifteenth: the rest of the line. */
      bool colon = line[i] == ':';
      i += colon;
      m->params[m->nparams++] = view(line + i, len - i);
      m->trailing = colon;
      break;
    }
    end = until_space(line, i, len);
    m->params[m->nparams++] = view(line + i, end - i);
    i = end;
  }
  return 0;
}

bool eddy_irc_command_is(const eddy_irc_msg_t *m, const char *cmd) {
  size_t n = strlen(cmd);
  if (m->command.n != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char a = (unsigned char)m->command.p[i];
    unsigned char b = (unsigned char)cmd[i];
    if (a >= 'a' && a <= 'z')
      a = (unsigned char)(a - 32);
    if (b >= 'a' && b <= 'z')
      b = (unsigned char)(b - 32);
    if (a != b)
      return false;
  }
  return true;
}

/* ---- the writer ---- */

void eddy_irc_msg_init(eddy_irc_msg_t *m, eddy_irc_str_t source,
                       eddy_irc_str_t command) {
  memset(m, 0, sizeof *m);
  m->source = source;
  m->command = command;
  m->numeric = -1;
}

int eddy_irc_msg_add(eddy_irc_msg_t *m, const char *p, size_t n) {
  if (m->nparams >= EDDY_IRC_PARAMS_MAX)
    return -E2BIG;
  m->params[m->nparams++] = view(p, n);
  return 0;
}

/* Whether the last parameter must be written after " :". */
static bool needs_colon(const eddy_irc_msg_t *m) {
  const eddy_irc_str_t *p = &m->params[m->nparams - 1];
  return m->trailing || p->n == 0 || p->p[0] == ':' ||
         memchr(p->p, ' ', p->n) != NULL;
}

/* The length of m without tags and without CR LF; checks that every part
 * can be written. Returns -EINVAL if one cannot. */
static long body_len(const eddy_irc_msg_t *m) {
  size_t n = 0;
  if (m->nparams > EDDY_IRC_PARAMS_MAX)
    return -EINVAL;
  if (m->source.n) {
    if (memchr(m->source.p, ' ', m->source.n) ||
        has_forbidden(m->source.p, m->source.n))
      return -EINVAL;
    n += 1 + m->source.n + 1;
  }
  eddy_irc_msg_t tmp;
  if (m->command.n == 0 || parse_command(&tmp, m->command.p, m->command.n))
    return -EINVAL;
  n += m->command.n;
  for (unsigned k = 0; k < m->nparams; k++) {
    const eddy_irc_str_t *p = &m->params[k];
    if (p->n && has_forbidden(p->p, p->n))
      return -EINVAL;
    if (k + 1 < m->nparams &&
        (p->n == 0 || p->p[0] == ':' || memchr(p->p, ' ', p->n)))
      return -EINVAL;
    n += 1 + p->n;
  }
  if (m->nparams && needs_colon(m))
    n++;
  /* Far past any limit: the caller learns -ENOSPC, not an overflow. */
  return n > 0x7fffffff ? 0x7fffffff : (long)n;
}

static char *put(char *o, const char *s, size_t n) {
  if (n)
    memcpy(o, s, n);
  return o + n;
}

int eddy_irc_write(const eddy_irc_msg_t *m, char *out, size_t cap) {
  long body = body_len(m);
  if (body < 0)
    return (int)body;
  if (m->tags.n && !eddy__irc_tags_valid(m->tags.p, m->tags.n))
    return -EINVAL;
  if ((size_t)body + 2 > EDDY_IRC_LINE_MAX)
    return -ENOSPC;
  size_t tags = m->tags.n ? m->tags.n + 2 : 0;
  if (tags > EDDY_IRC_TAGS_MAX)
    return -ENOSPC;
  size_t total = tags + (size_t)body + 2;
  if (total > cap)
    return -ENOSPC;
  char *o = out;
  if (m->tags.n) {
    *o++ = '@';
    o = put(o, m->tags.p, m->tags.n);
    *o++ = ' ';
  }
  if (m->source.n) {
    *o++ = ':';
    o = put(o, m->source.p, m->source.n);
    *o++ = ' ';
  }
  o = put(o, m->command.p, m->command.n);
  for (unsigned k = 0; k < m->nparams; k++) {
    *o++ = ' ';
    if (k + 1 == m->nparams && needs_colon(m))
      *o++ = ':';
    o = put(o, m->params[k].p, m->params[k].n);
  }
  *o++ = '\r';
  *o++ = '\n';
  return (int)(o - out);
}

size_t eddy_irc_room(const eddy_irc_msg_t *m) {
  eddy_irc_msg_t tmp = *m;
  if (tmp.nparams >= EDDY_IRC_PARAMS_MAX)
    return 0;
  tmp.params[tmp.nparams++] = view("", 0); /* written as " :" */
  long body = body_len(&tmp);
  if (body < 0 || (size_t)body + 2 >= EDDY_IRC_LINE_MAX)
    return 0;
  return EDDY_IRC_LINE_MAX - 2 - (size_t)body;
}

size_t eddy_irc_fit(const char *text, size_t len, size_t room) {
  if (len <= room)
    return len;
  size_t n = room;
  for (int back = 0; back < 3 && n > 0; back++) {
    if (((unsigned char)text[n] & 0xC0) != 0x80)
      return n; /* text[n] starts a sequence (or is ASCII): cut before it */
    n--;
  }
  /* Three continuation bytes back (or the start): a lead byte at n, or
   * not UTF-8. */
  if (((unsigned char)text[n] & 0xC0) != 0x80)
    return n;
  return room;
}

eddy_irc_str_t eddy_irc_numeric(int numeric, char out[4]) {
  if (numeric < 0)
    numeric = 0;
  if (numeric > 999)
    numeric = 999;
  out[0] = (char)('0' + numeric / 100);
  out[1] = (char)('0' + numeric / 10 % 10);
  out[2] = (char)('0' + numeric % 10);
  out[3] = '\0';
  return view(out, 3);
}
