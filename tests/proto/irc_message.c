/* IRC messages: the parser on real lines (RFC 1459 and 2812's examples,
 * the Modern IRC documents', the IRCv3 message-tags specification's),
 * every error it reports, the limits exactly at and one past their bound;
 * the writer's colon rules, refusals and limits; tags (walk, lookup,
 * escaping both ways); round trips parse -> write -> parse; the helpers
 * that split a long PRIVMSG. */
#include <sys/mman.h>

#include "helpers.h"
#include "proto/irc/irc.h"

TestSuite(irc_parse);
TestSuite(irc_write);
TestSuite(irc_tags);

static void expect_str(eddy_irc_str_t s, const char *want) {
  char buf[9000];
  cr_assert(s.n < sizeof buf);
  if (s.n)
    memcpy(buf, s.p, s.n);
  buf[s.n] = '\0';
  EXPECT_STR(buf, want);
}

static eddy_irc_msg_t P(const char *line) {
  eddy_irc_msg_t m;
  int rc = eddy_irc_parse(line, strlen(line), 0, &m);
  cr_assert(rc == 0, "parse \"%s\": %d", line, rc);
  return m;
}

static int parse_rc(const char *line, unsigned flags) {
  eddy_irc_msg_t m;
  return eddy_irc_parse(line, strlen(line), flags, &m);
}

/* A line of n bytes: prefix, then fill up to n. */
static char *make(const char *prefix, size_t n, char fill) {
  char *s = malloc(n + 1);
  cr_assert(s != NULL);
  size_t k = strlen(prefix);
  cr_assert(k <= n);
  memcpy(s, prefix, k);
  memset(s + k, fill, n - k);
  s[n] = '\0';
  return s;
}

/* ---- the parser: real lines ---- */

Test(irc_parse, rfc1459_examples) {
  eddy_irc_msg_t m = P(":WiZ NICK Kilroy");
  expect_str(m.source, "WiZ");
  expect_str(m.nick, "WiZ");
  expect_str(m.user, "");
  expect_str(m.host, "");
  expect_str(m.command, "NICK");
  EXPECT_EQ(m.numeric, -1);
  EXPECT_EQ(m.nparams, 1);
  expect_str(m.params[0], "Kilroy");
  cr_assert(false == m.trailing);

  m = P("USER guest tolmoon tolsun :Ronnie Reagan");
  EXPECT_EQ(m.source.n, 0);
  EXPECT_EQ(m.nparams, 4);
  expect_str(m.params[0], "guest");
  expect_str(m.params[2], "tolsun");
  expect_str(m.params[3], "Ronnie Reagan");
  cr_assert(m.trailing);

  m = P("JOIN #foo,#bar fubar,foobar");
  EXPECT_EQ(m.nparams, 2);
  expect_str(m.params[0], "#foo,#bar");
  expect_str(m.params[1], "fubar,foobar");

  m = P(":WiZ!jto@tolsun.oulu.fi PART #playzone :I lost");
  expect_str(m.nick, "WiZ");
  expect_str(m.user, "jto");
  expect_str(m.host, "tolsun.oulu.fi");
  expect_str(m.command, "PART");
  expect_str(m.params[1], "I lost");

  m = P("MODE #Finnish +o Kilroy");
  EXPECT_EQ(m.nparams, 3);
  m = P("PRIVMSG jto@tolsun.oulu.fi :Hello !");
  expect_str(m.params[0], "jto@tolsun.oulu.fi");
  m = P(":Angel PRIVMSG Wiz :Hello are you receiving this message ?");
  expect_str(m.params[1], "Hello are you receiving this message ?");
  m = P("QUIT :Gone to have lunch");
  expect_str(m.params[0], "Gone to have lunch");
  m = P("KICK &Melbourne Matthew");
  expect_str(m.params[0], "&Melbourne");
  m = P("SERVER test.oulu.fi 1 :[tolsun.oulu.fi] Experimental server");
  expect_str(m.params[2], "[tolsun.oulu.fi] Experimental server");
}

Test(irc_parse, rfc2812_and_modern_examples) {
  eddy_irc_msg_t m = P(
      ":irc.example.com CAP LS * :multi-prefix "
      "extended-join sasl");
  expect_str(m.source, "irc.example.com");
  expect_str(m.nick, "irc.example.com");
  EXPECT_EQ(m.nparams, 3);
  expect_str(m.params[2], "multi-prefix extended-join sasl");

  m = P("@id=234AB :dan!d@localhost PRIVMSG #chan :Hey what's up!");
  expect_str(m.tags, "id=234AB");
  expect_str(m.nick, "dan");
  expect_str(m.user, "d");
  expect_str(m.host, "localhost");
  expect_str(m.params[1], "Hey what's up!");

  m = P("CAP REQ :sasl");
  expect_str(m.params[1], "sasl");
  cr_assert(m.trailing);

  /* A trailing parameter that itself starts with ':'. */
  m = P(":dan!d@localhost PRIVMSG #chan ::-)");
  expect_str(m.params[1], ":-)");

  m = P(
      ":irc.example.com 001 dan :Welcome to the Internet Relay Network "
      "dan!d@localhost");
  EXPECT_EQ(m.numeric, 1);
  expect_str(m.command, "001");
  expect_str(m.params[0], "dan");

  m = P("PING :irc.example.com");
  expect_str(m.params[0], "irc.example.com");
  m = P(":nick@host PRIVMSG x y"); /* a host without a user */
  expect_str(m.nick, "nick");
  expect_str(m.user, "");
  expect_str(m.host, "host");
  m = P(":nick!user PRIVMSG x y"); /* a user without a host */
  expect_str(m.nick, "nick");
  expect_str(m.user, "user");
  expect_str(m.host, "");
}

Test(irc_parse, message_tags_spec_examples) {
  eddy_irc_msg_t m = P(
      "@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me "
      ":Hello");
  expect_str(m.tags, "aaa=bbb;ccc;example.com/ddd=eee");
  size_t pos = 0;
  eddy_irc_tag_t t;
  cr_assert(eddy_irc_tag_next(&m, &pos, &t));
  expect_str(t.key, "aaa");
  expect_str(t.raw, "bbb");
  cr_assert(eddy_irc_tag_next(&m, &pos, &t));
  expect_str(t.key, "ccc");
  expect_str(t.raw, "");
  cr_assert(eddy_irc_tag_next(&m, &pos, &t));
  expect_str(t.key, "example.com/ddd");
  expect_str(t.raw, "eee");
  cr_assert(false == eddy_irc_tag_next(&m, &pos, &t));

  m = P("@+example-client-tag=example-value PRIVMSG #channel :Message");
  cr_assert(eddy_irc_tag_find(&m, "+example-client-tag", 19, &t));
  expect_str(t.raw, "example-value");

  m = P(
      "@+icon=https://example.com/favicon.png :url_bot!bot@example.com "
      "PRIVMSG #channel :Example.com: A News Story");
  cr_assert(eddy_irc_tag_find(&m, "+icon", 5, &t));
  expect_str(t.raw, "https://example.com/favicon.png");
  expect_str(m.params[1], "Example.com: A News Story");

  m = P(
      "@+example=raw+:=,escaped\\:\\s\\\\ :irc.example.com NOTICE #channel "
      ":Message");
  cr_assert(eddy_irc_tag_find(&m, "+example", 8, &t));
  char v[64];
  size_t n = eddy_irc_tag_unescape(t.raw.p, t.raw.n, v);
  v[n] = '\0';
  EXPECT_STR(v, "raw+:=,escaped; \\");

  m = P(
      "@time=2011-10-19T16:40:51.620Z :Angel!angel@example.org PRIVMSG "
      "Wiz :Hello");
  cr_assert(eddy_irc_tag_find(&m, "time", 4, &t));
  expect_str(t.raw, "2011-10-19T16:40:51.620Z");
}

Test(irc_parse, sloppy_clients) {
  /* Runs of spaces, spaces before the command and after the last param. */
  eddy_irc_msg_t m = P("  PRIVMSG   #chan    hello   ");
  expect_str(m.command, "PRIVMSG");
  EXPECT_EQ(m.nparams, 2);
  expect_str(m.params[0], "#chan");
  expect_str(m.params[1], "hello");
  m = P("@a=b   :src   NICK   x");
  expect_str(m.tags, "a=b");
  expect_str(m.source, "src");
  expect_str(m.params[0], "x");
  /* The trailing parameter keeps its spaces, all of them. */
  m = P("PRIVMSG #c :  two  spaces  ");
  expect_str(m.params[1], "  two  spaces  ");
  /* An empty trailing parameter. */
  m = P("TOPIC #test :");
  EXPECT_EQ(m.nparams, 2);
  expect_str(m.params[1], "");
  cr_assert(m.trailing);
  m = P("privmsg #c x"); /* commands in any case */
  cr_assert(eddy_irc_command_is(&m, "PRIVMSG"));
  cr_assert(false == eddy_irc_command_is(&m, "PRIVMS"));
  cr_assert(false == eddy_irc_command_is(&m, "NOTICE"));
  m = P("QUIT");
  EXPECT_EQ(m.nparams, 0);
  /* Empty tags are skipped. */
  m = P("@;a=1;;b; CMD");
  size_t pos = 0, count = 0;
  eddy_irc_tag_t t;
  while (eddy_irc_tag_next(&m, &pos, &t))
    count++;
  EXPECT_EQ(count, 2);
}

Test(irc_parse, fifteen_params_at_most) {
  eddy_irc_msg_t m = P("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15");
  EXPECT_EQ(m.nparams, 15);
  expect_str(m.params[14], "15");
  cr_assert(false == m.trailing);
  /* The fifteenth takes the rest of the line (RFC 2812). */
  m = P("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
  EXPECT_EQ(m.nparams, 15);
  expect_str(m.params[14], "15 16 17");
  m = P("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :15 16");
  EXPECT_EQ(m.nparams, 15);
  expect_str(m.params[14], "15 16");
  cr_assert(m.trailing);
  m = P("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 :14 15 16");
  EXPECT_EQ(m.nparams, 14);
  expect_str(m.params[13], "14 15 16");
}

/* ---- the parser: errors ---- */

Test(irc_parse, errors) {
  static const struct {
    const char *line;
    int rc;
  } cases[] = {
      {"", -ENODATA},
      {"    ", -ENODATA},
      {"@ CMD", EDDY_EPARSE},      /* empty tags */
      {"@a=b", EDDY_EPARSE},       /* tags only */
      {"@a=b   ", EDDY_EPARSE},    /* tags only */
      {"@=b CMD", EDDY_EPARSE},    /* empty key */
      {"@a/ CMD", EDDY_EPARSE},    /* empty name after vendor */
      {"@/a CMD", EDDY_EPARSE},    /* empty vendor */
      {"@a.b CMD", EDDY_EPARSE},   /* a dot outside a vendor */
      {"@v/a.b CMD", EDDY_EPARSE}, /* a dot in the name */
      {"@a/b/c CMD", EDDY_EPARSE}, /* two slashes */
      {"@a_b CMD", EDDY_EPARSE},   /* '_' in a key */
      {"@+ CMD", EDDY_EPARSE},     /* '+' alone */
      {": CMD", EDDY_EPARSE},      /* empty source */
      {":", EDDY_EPARSE},
      {":src", EDDY_EPARSE}, /* source without a command */
      {":src   ", EDDY_EPARSE},
      {"@a :src", EDDY_EPARSE},
      {"12 x", EDDY_EPARSE},   /* two digits */
      {"1234 x", EDDY_EPARSE}, /* four digits */
      {"12a x", EDDY_EPARSE},
      {"PRIV1MSG x", EDDY_EPARSE},
      {"PRIV-MSG x", EDDY_EPARSE},
      {":x :y", EDDY_EPARSE}, /* a trailing where the command should be */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = parse_rc(cases[i].line, 0);
    cr_assert(rc == cases[i].rc, "\"%s\": %d, want %d", cases[i].line, rc,
              cases[i].rc);
  }
  EXPECT_OK(parse_rc("@+v.example/a-1=x CMD", 0));
  EXPECT_OK(parse_rc("@a= CMD", 0)); /* an empty value */
}

Test(irc_parse, nul_cr_lf_anywhere) {
#define L(s)                                                                   \
  { s, sizeof(s) - 1 }
  static const struct {
    const char *p;
    size_t n;
  } lines[] = {L("PRIVMSG #a :x\0y"), L("PRIVMSG #a :x\ry"),
               L("PRIVMSG #a :x\ny"), L("PRIV\nMSG #a x"),
               L("@a=\r :s C"),       L(":s\0x C"),
               L("\0PING"),           L("PING\0")};
#undef L
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    eddy_irc_msg_t m;
    EXPECT_EQ(eddy_irc_parse(lines[i].p, lines[i].n, 0, &m), EDDY_EPARSE);
  }
  /* A line that is a lone CR LF (framing that kept them) is refused too. */
  eddy_irc_msg_t m;
  EXPECT_EQ(eddy_irc_parse("\r\n", 2, 0, &m), EDDY_EPARSE);
}

/* ---- the parser: limits ---- */

Test(irc_parse, body_limit_510_bytes) {
  char *at = make("PRIVMSG #c :", EDDY_IRC_BODY_MAX, 'x');
  char *past = make("PRIVMSG #c :", EDDY_IRC_BODY_MAX + 1, 'x');
  EXPECT_OK(parse_rc(at, 0));
  EXPECT_EQ(parse_rc(past, 0), EDDY_ETOOLONG);
  EXPECT_EQ(parse_rc(past, EDDY_IRC_PARSE_CLIENT), EDDY_ETOOLONG);

  /* Tags do not count against the 510. */
  char *tagged = malloc(EDDY_IRC_BODY_MAX + 100);
  snprintf(tagged, EDDY_IRC_BODY_MAX + 100, "@a=b %s", at);
  EXPECT_OK(parse_rc(tagged, 0));
  /* Leading spaces do not count either (they are not sent on). */
  snprintf(tagged, EDDY_IRC_BODY_MAX + 100, "   %s", at);
  EXPECT_OK(parse_rc(tagged, 0));

  /* Truncation instead: the message is cut to 510. */
  eddy_irc_msg_t m;
  EXPECT_OK(eddy_irc_parse(past, strlen(past), EDDY_IRC_PARSE_TRUNCATE, &m));
  cr_assert(m.truncated);
  EXPECT_EQ(m.params[1].n, EDDY_IRC_BODY_MAX - strlen("PRIVMSG #c :"));
  EXPECT_OK(eddy_irc_parse(at, strlen(at), EDDY_IRC_PARSE_TRUNCATE, &m));
  cr_assert(false == m.truncated);
  free(at);
  free(past);
  free(tagged);
}

Test(irc_parse, truncation_keeps_utf8_whole) {
  /* "é" (2 bytes) straddling byte 510: the cut moves before it. */
  char *s = make("PRIVMSG #c :", 520, 'x');
  s[509] = '\xc3';
  s[510] = '\xa9';
  eddy_irc_msg_t m;
  EXPECT_OK(eddy_irc_parse(s, strlen(s), EDDY_IRC_PARSE_TRUNCATE, &m));
  cr_assert(m.truncated);
  EXPECT_EQ(m.params[1].p + m.params[1].n - s, 509);
  free(s);
}

Test(irc_parse, tag_limits) {
  /* Server side: the section ('@', data, ' ') at most 8191 bytes. */
  char *at = make("@a=", 1 + (EDDY_IRC_TAGS_MAX - 2), 'v');
  at[0] = '@';
  char *line = malloc(EDDY_IRC_WIRE_MAX + 16);
  snprintf(line, EDDY_IRC_WIRE_MAX + 16, "%s PING x", at);
  EXPECT_OK(parse_rc(line, 0));
  EXPECT_EQ(parse_rc(line, EDDY_IRC_PARSE_CLIENT), EDDY_ETOOLONG);
  char *past = make("@a=", 1 + (EDDY_IRC_TAGS_MAX - 1), 'v');
  snprintf(line, EDDY_IRC_WIRE_MAX + 16, "%s PING x", past);
  EXPECT_EQ(parse_rc(line, 0), EDDY_ETOOLONG);
  EXPECT_EQ(parse_rc(line, EDDY_IRC_PARSE_TRUNCATE), EDDY_ETOOLONG);
  free(at);
  free(past);

  /* Client side: the data at most 4094 bytes. */
  at = make("@a=", 1 + EDDY_IRC_CLIENT_TAGS_MAX, 'v');
  snprintf(line, EDDY_IRC_WIRE_MAX + 16, "%s PING x", at);
  EXPECT_OK(parse_rc(line, EDDY_IRC_PARSE_CLIENT));
  past = make("@a=", 2 + EDDY_IRC_CLIENT_TAGS_MAX, 'v');
  snprintf(line, EDDY_IRC_WIRE_MAX + 16, "%s PING x", past);
  EXPECT_EQ(parse_rc(line, EDDY_IRC_PARSE_CLIENT), EDDY_ETOOLONG);
  EXPECT_OK(parse_rc(line, 0));
  free(at);
  free(past);
  free(line);
}

Test(irc_parse, longest_line_with_tags) {
  /* 8191 bytes of tags and 510 of message: EDDY_IRC_WIRE_MAX less CR LF. */
  char *tags = make("@a=", EDDY_IRC_TAGS_MAX - 1, 'v');
  char *body = make("PRIVMSG #c :", EDDY_IRC_BODY_MAX, 'x');
  char *line = malloc(EDDY_IRC_WIRE_MAX + 1);
  int n = snprintf(line, EDDY_IRC_WIRE_MAX + 1, "%s %s", tags, body);
  EXPECT_EQ(n, EDDY_IRC_WIRE_MAX - 2);
  eddy_irc_msg_t m;
  EXPECT_OK(eddy_irc_parse(line, (size_t)n, 0, &m));
  char *out = malloc(EDDY_IRC_WIRE_MAX);
  EXPECT_EQ(eddy_irc_write(&m, out, EDDY_IRC_WIRE_MAX), EDDY_IRC_WIRE_MAX);
  cr_assert(memcmp(out, line, (size_t)n) == 0);
  EXPECT_EQ(eddy_irc_write(&m, out, EDDY_IRC_WIRE_MAX - 1), -ENOSPC);
  free(tags);
  free(body);
  free(line);
  free(out);
}

/* ---- the writer ---- */

static char out[EDDY_IRC_WIRE_MAX + 64];

static const char *W(const eddy_irc_msg_t *m) {
  int n = eddy_irc_write(m, out, sizeof out - 1);
  cr_assert(n > 0, "write: %d", n);
  cr_assert(out[n - 2] == '\r' && out[n - 1] == '\n');
  out[n - 2] = '\0';
  return out;
}

Test(irc_write, colon_rules) {
  eddy_irc_msg_t m;
  eddy_irc_msg_init(&m, EDDY_IRC_STR("irc.example.net"), EDDY_IRC_STR("001"));
  EXPECT_OK(eddy_irc_msg_add(&m, "dan", 3));
  EXPECT_OK(eddy_irc_msg_add(&m, "Welcome", 7));
  EXPECT_STR(W(&m), ":irc.example.net 001 dan Welcome");
  m.params[1] = EDDY_IRC_STR("Welcome home");
  EXPECT_STR(W(&m), ":irc.example.net 001 dan :Welcome home");
  m.params[1] = EDDY_IRC_STR("");
  EXPECT_STR(W(&m), ":irc.example.net 001 dan :");
  m.params[1] = EDDY_IRC_STR(":-)");
  EXPECT_STR(W(&m), ":irc.example.net 001 dan ::-)");
  m.params[1] = EDDY_IRC_STR("Welcome");
  m.trailing = true;
  EXPECT_STR(W(&m), ":irc.example.net 001 dan :Welcome");

  eddy_irc_msg_init(&m, (eddy_irc_str_t){0}, EDDY_IRC_STR("QUIT"));
  EXPECT_STR(W(&m), "QUIT");
  m.trailing = true; /* no params: nothing to mark */
  EXPECT_STR(W(&m), "QUIT");
}

Test(irc_write, tags_and_numeric) {
  char tags[128];
  size_t len = 0;
  EXPECT_OK(eddy_irc_tag_append(tags, sizeof tags, &len, "time", 4,
                                "2026-01-01T00:00:00.000Z", 24));
  EXPECT_OK(eddy_irc_tag_append(tags, sizeof tags, &len, "+x", 2, NULL, 0));
  EXPECT_OK(eddy_irc_tag_append(tags, sizeof tags, &len, "msgid", 5,
                                "a;b c\\d\r\n", 9));
  char num[4];
  eddy_irc_msg_t m;
  eddy_irc_msg_init(&m, EDDY_IRC_STR("srv"),
                    eddy_irc_numeric(EDDY_IRC_ERR_INPUTTOOLONG, num));
  m.tags.p = tags;
  m.tags.n = len;
  EXPECT_OK(eddy_irc_msg_add(&m, "*", 1));
  EXPECT_OK(eddy_irc_msg_add(&m, "Input line was too long", 23));
  EXPECT_STR(W(&m),
             "@time=2026-01-01T00:00:00.000Z;+x;msgid=a\\:b\\sc\\\\d"
             "\\r\\n :srv 417 * :Input line was too long");

  EXPECT_STR(eddy_irc_numeric(1, num).p, "001");
  EXPECT_STR(eddy_irc_numeric(999, num).p, "999");
  EXPECT_STR(eddy_irc_numeric(-3, num).p, "000");
  EXPECT_STR(eddy_irc_numeric(1000, num).p, "999");
}

Test(irc_write, refuses_what_cannot_be_represented) {
  eddy_irc_msg_t m;
  char buf[600];
#define REFUSE(setup)                                                          \
  do {                                                                         \
    eddy_irc_msg_init(&m, EDDY_IRC_STR("src"), EDDY_IRC_STR("PRIVMSG"));       \
    eddy_irc_msg_add(&m, "#c", 2);                                             \
    eddy_irc_msg_add(&m, "text", 4);                                           \
    setup;                                                                     \
    EXPECT_EQ(eddy_irc_write(&m, buf, sizeof buf), -EINVAL);                   \
  } while (0)
  REFUSE(m.params[0] = EDDY_IRC_STR("#a b"));          /* middle with a space */
  REFUSE(m.params[0] = EDDY_IRC_STR(""));              /* empty middle */
  REFUSE(m.params[0] = EDDY_IRC_STR(":c"));            /* middle starting ':' */
  REFUSE(m.params[0] = EDDY_IRC_STR("#c\r"));          /* CR */
  REFUSE(m.params[1] = EDDY_IRC_STR("a\nb"));          /* LF in the last */
  REFUSE(m.params[1] = ((eddy_irc_str_t){"a\0b", 3})); /* NUL */
  REFUSE(m.command = EDDY_IRC_STR("PRIV MSG"));
  REFUSE(m.command = EDDY_IRC_STR(""));
  REFUSE(m.command = EDDY_IRC_STR("12"));
  REFUSE(m.command = EDDY_IRC_STR("1234"));
  REFUSE(m.source = EDDY_IRC_STR("a b"));
  REFUSE(m.source = EDDY_IRC_STR("a\r"));
  REFUSE(m.tags = EDDY_IRC_STR("bad key=1"));
  REFUSE(m.tags = EDDY_IRC_STR("a_b=1"));
  REFUSE(m.nparams = EDDY_IRC_PARAMS_MAX + 1);
#undef REFUSE
  /* The sixteenth parameter cannot even be added. */
  eddy_irc_msg_init(&m, (eddy_irc_str_t){0}, EDDY_IRC_STR("CMD"));
  for (int i = 0; i < EDDY_IRC_PARAMS_MAX; i++)
    EXPECT_OK(eddy_irc_msg_add(&m, "p", 1));
  EXPECT_EQ(eddy_irc_msg_add(&m, "p", 1), -E2BIG);
  EXPECT_EQ(eddy_irc_write(&m, buf, sizeof buf), 3 + 15 * 2 + 2);
}

Test(irc_write, line_limit_512_and_caller_buffer) {
  /* "PRIVMSG #c :" + text + CR LF: 512 bytes exactly fits, 513 does not. */
  char text[600];
  memset(text, 'y', sizeof text);
  size_t fits = EDDY_IRC_LINE_MAX - strlen("PRIVMSG #c :") - 2;
  eddy_irc_msg_t m;
  eddy_irc_msg_init(&m, (eddy_irc_str_t){0}, EDDY_IRC_STR("PRIVMSG"));
  eddy_irc_msg_add(&m, "#c", 2);
  eddy_irc_msg_add(&m, text, fits);
  m.trailing = true;
  char buf[EDDY_IRC_LINE_MAX + 10];
  EXPECT_EQ(eddy_irc_write(&m, buf, sizeof buf), EDDY_IRC_LINE_MAX);
  EXPECT_EQ(eddy_irc_write(&m, buf, EDDY_IRC_LINE_MAX), EDDY_IRC_LINE_MAX);
  EXPECT_EQ(eddy_irc_write(&m, buf, EDDY_IRC_LINE_MAX - 1), -ENOSPC);
  EXPECT_EQ(eddy_irc_write(&m, buf, 0), -ENOSPC);
  m.params[1].n = fits + 1;
  EXPECT_EQ(eddy_irc_write(&m, buf, sizeof buf), -ENOSPC);
  /* The limit on the tags section is separate: 8191 fits, 8192 does not. */
  char *tags = make("a=", EDDY_IRC_TAGS_MAX - 2, 'v');
  m.params[1].n = fits;
  m.tags.p = tags;
  m.tags.n = EDDY_IRC_TAGS_MAX - 2;
  EXPECT_EQ(eddy_irc_write(&m, out, sizeof out), EDDY_IRC_WIRE_MAX);
  m.tags.n = EDDY_IRC_TAGS_MAX - 1;
  free(tags);
  tags = make("a=", EDDY_IRC_TAGS_MAX - 1, 'v');
  m.tags.p = tags;
  EXPECT_EQ(eddy_irc_write(&m, out, sizeof out), -ENOSPC);
  free(tags);
}

Test(irc_write, room_and_fit_split_a_long_privmsg) {
  eddy_irc_msg_t m;
  eddy_irc_msg_init(&m, EDDY_IRC_STR("nick!user@host.example"),
                    EDDY_IRC_STR("PRIVMSG"));
  eddy_irc_msg_add(&m, "#chan", 5);
  size_t room = eddy_irc_room(&m);
  /* ":nick!user@host.example PRIVMSG #chan :" is 39 bytes, CR LF 2. */
  EXPECT_EQ(room, EDDY_IRC_LINE_MAX - 39 - 2);

  /* 1000 bytes of text, 'é' everywhere: pieces never split one. */
  char text[1000];
  for (size_t i = 0; i < sizeof text; i += 2)
    text[i] = '\xc3', text[i + 1] = '\xa9';
  size_t off = 0, pieces = 0;
  char buf[EDDY_IRC_LINE_MAX];
  while (off < sizeof text) {
    size_t n = eddy_irc_fit(text + off, sizeof text - off, room);
    cr_assert(n > 0 && n <= room && n % 2 == 0);
    eddy_irc_msg_t p = m;
    eddy_irc_msg_add(&p, text + off, n);
    p.trailing = true;
    int w = eddy_irc_write(&p, buf, sizeof buf);
    cr_assert(w > 0 && w <= EDDY_IRC_LINE_MAX);
    off += n;
    pieces++;
  }
  EXPECT_EQ(pieces, 3);

  /* fit: exact sizes, and each UTF-8 length at the cut. */
  EXPECT_EQ(eddy_irc_fit("abc", 3, 3), 3);
  EXPECT_EQ(eddy_irc_fit("abc", 3, 10), 3);
  EXPECT_EQ(eddy_irc_fit("abc", 3, 2), 2);
  EXPECT_EQ(eddy_irc_fit("abc", 3, 0), 0);
  EXPECT_EQ(eddy_irc_fit("a\xc3\xa9", 3, 2), 1);
  EXPECT_EQ(eddy_irc_fit("a\xe2\x82\xac", 4, 2), 1);
  EXPECT_EQ(eddy_irc_fit("a\xe2\x82\xac", 4, 3), 1);
  EXPECT_EQ(eddy_irc_fit("a\xf0\x9f\x98\x80", 5, 4), 1);
  EXPECT_EQ(eddy_irc_fit("a\xf0\x9f\x98\x80", 5, 2), 1);
  EXPECT_EQ(eddy_irc_fit("\xf0\x9f\x98\x80", 4, 3), 0);
  /* Not UTF-8 (a run of continuation bytes): cut where the room ends. */
  EXPECT_EQ(eddy_irc_fit("a\x80\x80\x80\x80\x80", 6, 5), 5);

  /* No room: the line is full, or cannot take another parameter. */
  char big[520];
  memset(big, 'z', sizeof big);
  eddy_irc_msg_init(&m, (eddy_irc_str_t){0}, EDDY_IRC_STR("PRIVMSG"));
  eddy_irc_msg_add(&m, big, 505);
  EXPECT_EQ(eddy_irc_room(&m), 0);
  eddy_irc_msg_init(&m, (eddy_irc_str_t){0}, EDDY_IRC_STR("CMD"));
  for (int i = 0; i < EDDY_IRC_PARAMS_MAX; i++)
    eddy_irc_msg_add(&m, "p", 1);
  EXPECT_EQ(eddy_irc_room(&m), 0);
  eddy_irc_msg_init(&m, (eddy_irc_str_t){0}, EDDY_IRC_STR("CMD"));
  eddy_irc_msg_add(&m, "a b", 3); /* cannot become a middle param */
  EXPECT_EQ(eddy_irc_room(&m), 0);
}

/* ---- round trips ---- */

static void same(eddy_irc_str_t a, eddy_irc_str_t b) {
  cr_assert(a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0),
            "\"%.*s\" != \"%.*s\"", (int)a.n, a.p, (int)b.n, b.p);
}

Test(irc_write, round_trips) {
  static const char *lines[] = {
      ":WiZ NICK Kilroy",
      "USER guest tolmoon tolsun :Ronnie Reagan",
      "@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me "
      ":Hello",
      "@+example=raw+:=,escaped\\:\\s\\\\ :irc.example.com NOTICE #channel "
      ":Message",
      "  PRIVMSG   #chan    hello   ",
      "TOPIC #test :",
      ":dan!d@localhost PRIVMSG #chan ::-)",
      "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
      "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 ::x y",
      ":irc.example.com 353 dan = #chan :@dan +bob alice",
      "PING",
      "::odd!source PONG x",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    eddy_irc_msg_t a = P(lines[i]), b;
    int n = eddy_irc_write(&a, out, sizeof out);
    cr_assert(n > 0, "write \"%s\": %d", lines[i], n);
    EXPECT_OK(eddy_irc_parse(out, (size_t)n - 2, 0, &b));
    same(a.tags, b.tags);
    same(a.source, b.source);
    same(a.nick, b.nick);
    same(a.user, b.user);
    same(a.host, b.host);
    same(a.command, b.command);
    EXPECT_EQ(a.nparams, b.nparams);
    for (unsigned k = 0; k < a.nparams; k++)
      same(a.params[k], b.params[k]);
    /* And once normalised, the text is stable. */
    char again[1024];
    int n2 = eddy_irc_write(&b, again, sizeof again);
    EXPECT_EQ(n2, n);
    cr_assert(memcmp(again, out, (size_t)n) == 0);
  }
}

/* ---- tags ---- */

Test(irc_tags, unescape_every_sequence) {
  static const struct {
    const char *raw, *value;
  } cases[] = {
      {"", ""},          {"plain", "plain"},     {"a\\:b", "a;b"},
      {"a\\sb", "a b"},  {"a\\\\b", "a\\b"},     {"a\\rb", "a\rb"},
      {"a\\nb", "a\nb"}, {"a\\bc", "abc"}, /* an unknown escape gives the character */
      {"abc\\", "abc"}, /* a final lone backslash is dropped */
      {"\\\\\\", "\\"},  {"\\:\\s\\\\", "; \\"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char v[32];
    size_t n = eddy_irc_tag_unescape(cases[i].raw, strlen(cases[i].raw), v);
    v[n] = '\0';
    EXPECT_STR(v, cases[i].value);
    /* In place. */
    char in[32];
    strcpy(in, cases[i].raw);
    n = eddy_irc_tag_unescape(in, strlen(in), in);
    in[n] = '\0';
    EXPECT_STR(in, cases[i].value);
  }
}

Test(irc_tags, append_escapes_and_refuses) {
  char t[32];
  size_t len = 0;
  EXPECT_OK(eddy_irc_tag_append(t, sizeof t, &len, "k", 1, "; \\\r\n", 5));
  EXPECT_EQ(len, 12);
  cr_assert(memcmp(t, "k=\\:\\s\\\\\\r\\n", 12) == 0);
  EXPECT_EQ(eddy_irc_tag_append(t, sizeof t, &len, "bad key", 7, "v", 1),
            -EINVAL);
  EXPECT_EQ(eddy_irc_tag_append(t, sizeof t, &len, "", 0, "v", 1), -EINVAL);
  EXPECT_EQ(eddy_irc_tag_append(t, sizeof t, &len, "k", 1, "a\0b", 3), -EINVAL);
  /* ";k2=" plus 16 escaped bytes: 20 does not fit in the 20 left. */
  EXPECT_EQ(eddy_irc_tag_append(t, sizeof t, &len, "k2", 2, "                ",
                                16),
            -ENOSPC);
  EXPECT_EQ(len, 12);
  /* Exactly the room left: 20 bytes. */
  EXPECT_OK(
      eddy_irc_tag_append(t, sizeof t, &len, "k2", 2, "0123456789abcdef", 16));
  EXPECT_EQ(len, 32);
  EXPECT_EQ(eddy_irc_tag_append(t, sizeof t, &len, "k", 1, NULL, 0), -ENOSPC);
  cr_assert(eddy__irc_tags_valid(t, len));
}

Test(irc_tags, last_duplicate_wins) {
  eddy_irc_msg_t m = P("@a=1;b=2;a=3 CMD");
  eddy_irc_tag_t t;
  cr_assert(eddy_irc_tag_find(&m, "a", 1, &t));
  expect_str(t.raw, "3");
  cr_assert(eddy_irc_tag_find(&m, "b", 1, &t));
  expect_str(t.raw, "2");
  cr_assert(false == eddy_irc_tag_find(&m, "c", 1, &t));
  cr_assert(false == eddy_irc_tag_find(&m, "A", 1, &t)); /* keys are exact */
  m = P("CMD");
  size_t pos = 0;
  cr_assert(false == eddy_irc_tag_next(&m, &pos, &t));
  cr_assert(false == eddy_irc_tag_find(&m, "a", 1, &t));
  /* A value may hold '='. */
  m = P("@a=b=c CMD");
  cr_assert(eddy_irc_tag_find(&m, "a", 1, &t));
  expect_str(t.raw, "b=c");
}

/* ---- reads stay inside the line ---- */

Test(irc_parse, every_prefix_before_a_guard_page) {
  /* Each line, and each of its prefixes, ends just before a page that
   * cannot be read: a read past the end crashes. */
  long page = sysconf(_SC_PAGESIZE);
  char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(map != MAP_FAILED);
  cr_assert(mprotect(map + page, (size_t)page, PROT_NONE) == 0);
  static const char *lines[] = {
      "@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me "
      ":Hello",
      "@+example=raw+:=,escaped\\:\\s\\\\ :irc.example.com NOTICE #c :M",
      ":WiZ!jto@tolsun.oulu.fi PART #playzone :I lost",
      "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
      "  PRIVMSG   #chan    hello   ",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    size_t n = strlen(lines[i]);
    for (size_t k = 0; k <= n; k++) {
      char *p = map + page - k;
      memcpy(p, lines[i], k);
      eddy_irc_msg_t m;
      if (eddy_irc_parse(p, k, 0, &m) != 0)
        continue;
      size_t pos = 0;
      eddy_irc_tag_t t;
      char v[128];
      while (eddy_irc_tag_next(&m, &pos, &t))
        (void)eddy_irc_tag_unescape(t.raw.p, t.raw.n, v);
      (void)eddy_irc_mask_match(EDDY_IRC_CASEMAP_RFC1459, p, k, "x", 1);
      (void)eddy_irc_mask_match(EDDY_IRC_CASEMAP_RFC1459, "*?*x", 4, p, k);
      cr_assert(eddy_irc_write(&m, out, sizeof out) > 0);
    }
  }
  munmap(map, (size_t)page * 2);
}
