/* The IRC server (eddy/irc.h, "The server") driven over socketpairs on a
 * fake clock: registration, case mapping, flood control, the send queue,
 * PING timeouts, the bridge calls, the stop, and running out of memory at
 * every allocation of a whole session. End-to-end tests with real clients
 * are in tests/app/test_irc*.py. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eddy/irc.h"
#include "helpers.h"

static void setup(void) {
  eddy__fault_reset();
}

static void teardown(void) {
  eddy__fault_reset();
}

TestSuite(irc_server, .init = setup, .fini = teardown, .timeout = 60);

/* A client: the test's end of a socketpair, and what it has read. */
typedef struct tc {
  int fd;
  char got[1 << 17];
  size_t n;
  bool eof;
} tc;

typedef struct fixture {
  eddy_loop *loop;
  eddy_irc_server *srv;
  int closed;
  /* the message callback's last call */
  int messages;
  char msg_channel[64], msg_nick[64], msg_text[600];
} fixture;

static void on_closed(eddy_irc_server *srv, void *arg) {
  (void)srv;
  ((fixture *)arg)->closed++;
}

static void on_message(eddy_irc_server *srv, const char *channel,
                       const char *nick, size_t nick_len, const char *text,
                       size_t text_len, bool notice, void *arg) {
  fixture *f = arg;
  (void)srv, (void)notice;
  f->messages++;
  snprintf(f->msg_channel, sizeof f->msg_channel, "%s", channel);
  snprintf(f->msg_nick, sizeof f->msg_nick, "%.*s", (int)nick_len, nick);
  snprintf(f->msg_text, sizeof f->msg_text, "%.*s", (int)text_len, text);
}

/* The server on a loop made before (fixture_loop). */
static int fixture_server(fixture *f, eddy_irc_server_options *o) {
  eddy_irc_server_options d = {0};
  if (o == NULL)
    o = &d;
  o->closed = on_closed;
  o->message = on_message;
  o->arg = f;
  return eddy_irc_server_new(f->loop, o, &f->srv);
}

static void fixture_loop(fixture *f) {
  memset(f, 0, sizeof *f);
  f->loop = test_fake_loop(0);
}

static int fixture_open(fixture *f, eddy_irc_server_options *o) {
  fixture_loop(f);
  return fixture_server(f, o);
}

static void fixture_close(fixture *f) {
  eddy_irc_server_free(f->srv);
  test_finish(f->loop);
}

static const eddy_stream_callbacks no_callbacks = {0};

/* A connection served by the server: 0, or what serve returned. */
static int client_open(fixture *f, tc *c) {
  int sv[2];
  eddy_stream *s;
  int rc;
  memset(c, 0, sizeof *c);
  test_socketpair(sv);
  c->fd = sv[1];
  rc = eddy_stream_open(f->loop, sv[0], &no_callbacks, NULL, &s);
  if (rc != 0)
    return rc;
  return eddy_irc_server_serve(f->srv, s);
}

static void client_close(tc *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

/* Sends a line (without a SIGPIPE if the server has closed: what it sent
 * before tells the test). */
static void say(tc *c, const char *line) {
  (void)send(c->fd, line, strlen(line), MSG_NOSIGNAL);
  (void)send(c->fd, "\r\n", 2, MSG_NOSIGNAL);
}

/* Reads what is there without waiting. */
static void drain(tc *c) {
  for (;;) {
    ssize_t r;
    if (c->n + 1 >= sizeof c->got) /* keep the tail: shift the first half */
    {
      memmove(c->got, c->got + sizeof c->got / 2, c->n - sizeof c->got / 2);
      c->n -= sizeof c->got / 2;
    }
    r = recv(c->fd, c->got + c->n, sizeof c->got - 1 - c->n, MSG_DONTWAIT);
    if (r == 0)
      c->eof = true;
    if (r <= 0)
      break;
    c->n += (size_t)r;
  }
  c->got[c->n] = '\0';
}

/* Turns the loop (without moving the fake clock) until c has been sent
 * text, for at most 5 s of real time; returns whether it was. */
static bool wait_for(fixture *f, tc *c, const char *text) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    EXPECT_GE(eddy_loop_run(f->loop, EDDY_RUN_NOWAIT), 0);
    drain(c);
    if (strstr(c->got, text))
      return true;
    if (c->eof)
      return false;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec >= 5)
      return false;
    (void)poll(&p, 1, 2);
  }
}

/* Turns the loop n times without waiting. */
static void turns(fixture *f, int n) {
  for (int i = 0; i < n; i++) {
    EXPECT_GE(eddy_loop_run(f->loop, EDDY_RUN_NOWAIT), 0);
    (void)poll(NULL, 0, 1);
  }
}

static void expect_sent(fixture *f, tc *c, const char *text) {
  cr_assert(wait_for(f, c, text), "never sent \"%s\"; got:\n%s", text, c->got);
}

static void forget(tc *c) {
  c->n = 0;
  c->got[0] = '\0';
}

static void register_as(fixture *f, tc *c, const char *nick) {
  char line[128];
  snprintf(line, sizeof line, "NICK %s", nick);
  say(c, line);
  snprintf(line, sizeof line, "USER %s 0 * :The %s", nick, nick);
  say(c, line);
  snprintf(line, sizeof line, " 001 %s :", nick);
  expect_sent(f, c, line);
  expect_sent(f, c, " 422 "); /* the last line of the welcome */
  forget(c);
}

Test(irc_server, registration_gives_the_welcome_with_isupport) {
  fixture f;
  tc a;
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_OK(client_open(&f, &a));
  say(&a, "JOIN #early");
  expect_sent(&f, &a, ":irc.eddy.local 451 * :You have not registered");
  say(&a, "NICK alice");
  say(&a, "USER alice 0 * :Alice A");
  expect_sent(&f, &a,
              ":irc.eddy.local 001 alice :Welcome to the eddy Internet Relay "
              "Chat Network alice!~alice@localhost\r\n");
  expect_sent(&f, &a, " 005 alice ");
  expect_sent(&f, &a, "CASEMAPPING=rfc1459");
  expect_sent(&f, &a, "PREFIX=(ov)@+");
  expect_sent(&f, &a, ":irc.eddy.local 422 alice :MOTD File is missing\r\n");
  say(&a, "USER again 0 * :x");
  expect_sent(&f, &a, " 462 alice :");
  say(&a, "FROB");
  expect_sent(&f, &a, " 421 alice FROB :Unknown command");
  say(&a, "WHOWAS ghost");
  expect_sent(&f, &a, " 406 alice ghost :There was no such nickname");
  expect_sent(&f, &a, " 369 alice ghost :End of WHOWAS");
  /* Only the modes the server has are announced. */
  cr_assert(strstr(a.got, "INVEX") == NULL && strstr(a.got, "EXCEPTS") == NULL);
  EXPECT_EQ(eddy_irc_server_clients(f.srv), 1);
  client_close(&a);
  turns(&f, 5);
  EXPECT_EQ(f.closed, 1);
  EXPECT_EQ(eddy_irc_server_clients(f.srv), 0);
  fixture_close(&f);
}

Test(irc_server, nicks_collide_under_rfc1459_case_mapping) {
  fixture f;
  tc a, b;
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_OK(client_open(&f, &a));
  EXPECT_OK(client_open(&f, &b));
  register_as(&f, &a, "Nick[1]");
  say(&b, "NICK nick{1}");
  expect_sent(&f, &b, " 433 * nick{1} :Nickname is already in use");
  say(&b, "NICK 1bad");
  expect_sent(&f, &b, " 432 * 1bad :Erroneous Nickname");
  say(&b, "NICK");
  expect_sent(&f, &b, " 431 * :No nickname given");
  /* A case change of one's own nick is no collision. */
  say(&a, "NICK NICK[1]");
  expect_sent(&f, &a, ":Nick[1]!~Nick[1]@localhost NICK :NICK[1]");
  client_close(&a);
  client_close(&b);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, a_channel_message_reaches_every_member_but_its_sender) {
  fixture f;
  tc a, b, c;
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_OK(client_open(&f, &a));
  EXPECT_OK(client_open(&f, &b));
  EXPECT_OK(client_open(&f, &c));
  register_as(&f, &a, "alice");
  register_as(&f, &b, "bob");
  register_as(&f, &c, "carol");
  say(&a, "JOIN #Room");
  expect_sent(&f, &a, " 366 alice #Room :");
  say(&b, "JOIN #room");
  expect_sent(&f, &b, " 353 bob = #Room :bob @alice");
  say(&c, "PRIVMSG #room :outside");
  expect_sent(&f, &c, " 404 carol #Room :Cannot send to channel");
  forget(&a);
  say(&a, "PRIVMSG #ROOM :hello, room");
  expect_sent(&f, &b, ":alice!~alice@localhost PRIVMSG #Room :hello, room\r\n");
  EXPECT_EQ(f.messages, 1);
  EXPECT_STR(f.msg_channel, "#Room");
  EXPECT_STR(f.msg_nick, "alice");
  EXPECT_STR(f.msg_text, "hello, room");
  /* alice's next line comes before any echo of her own message would. */
  say(&a, "PING :x");
  expect_sent(&f, &a, " PONG irc.eddy.local :x");
  cr_assert(strstr(a.got, "hello, room") == NULL, "%s", a.got);
  client_close(&a);
  client_close(&b);
  client_close(&c);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, flood_control_holds_lines_past_the_allowance) {
  fixture f;
  tc a;
  eddy_irc_server_options o = {.flood_lines = 2};
  char lines[100 * 16];
  size_t n = 0;
  int pongs = 0;
  EXPECT_OK(fixture_open(&f, &o));
  EXPECT_OK(client_open(&f, &a));
  register_as(&f, &a, "flooder");
  say(&a, "JOIN #f"); /* talking ends the burst allowance */
  expect_sent(&f, &a, " 366 ");
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(lines + n, sizeof lines - n, "PING :%d\r\n", i);
  cr_assert(write(a.fd, lines, n) == (ssize_t)n);
  turns(&f, 20);
  drain(&a);
  for (const char *p = a.got; (p = strstr(p, " PONG ")); p++)
    pongs++;
  /* The registration lines and the JOIN used up this second's
   * allowance: not one of the hundred was handled. */
  cr_assert(pongs <= 2, "%d answered at once", pongs);
  /* Each second lets two more through. */
  EXPECT_OK(eddy_loop_advance(f.loop, EDDY_NSEC_PER_SEC));
  EXPECT_OK(eddy_loop_advance(f.loop, EDDY_NSEC_PER_SEC));
  EXPECT_OK(eddy_loop_advance(f.loop, EDDY_NSEC_PER_SEC));
  turns(&f, 20);
  drain(&a);
  pongs = 0;
  for (const char *p = a.got; (p = strstr(p, " PONG ")); p++)
    pongs++;
  cr_assert(pongs >= 2 && pongs <= 8, "%d answered after 3 s", pongs);
  client_close(&a);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, a_client_that_never_reads_is_dropped_at_its_send_queue) {
  fixture f;
  tc talker, sleeper;
  eddy_irc_server_options o = {.sendq = 16 * 1024, .flood_lines = 1000};
  char text[400 + 32];
  EXPECT_OK(fixture_open(&f, &o));
  EXPECT_OK(client_open(&f, &talker));
  EXPECT_OK(client_open(&f, &sleeper));
  register_as(&f, &talker, "talker");
  register_as(&f, &sleeper, "sleeper");
  say(&talker, "JOIN #busy");
  expect_sent(&f, &talker, " 366 ");
  say(&sleeper, "JOIN #busy");
  expect_sent(&f, &talker, "sleeper!~sleeper@localhost JOIN #busy");
  memset(text, 'z', 400);
  memcpy(text, "PRIVMSG #busy :", 15);
  text[400] = '\0';
  /* The sleeper's socket buffer and then its queue fill. */
  for (int i = 0; i < 2000 && !strstr(talker.got, "QUIT"); i++) {
    say(&talker, text);
    turns(&f, 1);
    drain(&talker);
  }
  expect_sent(&f, &talker,
              ":sleeper!~sleeper@localhost QUIT :Max SendQ exceeded");
  turns(&f, 5);
  EXPECT_EQ(f.closed, 1);
  say(&talker, "PING :still");
  expect_sent(&f, &talker, "PONG irc.eddy.local :still");
  client_close(&talker);
  client_close(&sleeper);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, a_silent_client_is_pinged_then_dropped) {
  fixture f;
  tc a, quiet, unregistered;
  eddy_irc_server_options o = {.ping_timeout = 10};
  EXPECT_OK(fixture_open(&f, &o));
  EXPECT_OK(client_open(&f, &a));
  EXPECT_OK(client_open(&f, &quiet));
  EXPECT_OK(client_open(&f, &unregistered));
  register_as(&f, &a, "awake");
  register_as(&f, &quiet, "quiet");
  say(&a, "JOIN #p");
  expect_sent(&f, &a, " 366 ");
  say(&quiet, "JOIN #p");
  expect_sent(&f, &a, "quiet!~quiet@localhost JOIN #p");
  for (int i = 0; i < 5; i++) {
    EXPECT_OK(eddy_loop_advance(f.loop, 3 * EDDY_NSEC_PER_SEC));
    say(&a, "PONG :irc.eddy.local"); /* awake answers and talks */
    turns(&f, 3);
  }
  expect_sent(&f, &quiet, "PING :irc.eddy.local");
  expect_sent(&f, &unregistered,
              "ERROR :Closing Link: localhost (Registration timed out)");
  for (int i = 0; i < 5; i++) {
    EXPECT_OK(eddy_loop_advance(f.loop, 3 * EDDY_NSEC_PER_SEC));
    say(&a, "PONG :irc.eddy.local");
    turns(&f, 3);
  }
  expect_sent(&f, &a, ":quiet!~quiet@localhost QUIT :Ping timeout: 10 seconds");
  expect_sent(&f, &quiet, "ERROR :Closing Link: localhost (Ping timeout");
  cr_assert(strstr(a.got, "ERROR") == NULL, "%s", a.got);
  turns(&f, 5);
  EXPECT_EQ(f.closed, 2);
  client_close(&a);
  client_close(&quiet);
  client_close(&unregistered);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, over_max_clients_a_connection_is_told_and_closed) {
  fixture f;
  tc a, b;
  eddy_irc_server_options o = {.max_clients = 1};
  EXPECT_OK(fixture_open(&f, &o));
  EXPECT_OK(client_open(&f, &a));
  EXPECT_OK(client_open(&f, &b));
  expect_sent(&f, &b, "ERROR :Closing Link: localhost (Sorry, server is full");
  turns(&f, 5);
  drain(&b);
  cr_assert(b.eof, "the connection was not closed");
  register_as(&f, &a, "first");
  client_close(&a);
  client_close(&b);
  turns(&f, 5);
  EXPECT_EQ(f.closed, 2);
  fixture_close(&f);
}

Test(irc_server, a_line_over_512_bytes_is_answered_417_and_the_client_stays) {
  fixture f;
  tc a;
  char line[700];
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_OK(client_open(&f, &a));
  register_as(&f, &a, "longer");
  memset(line, 'x', sizeof line - 1);
  memcpy(line, "PRIVMSG longer :", 16);
  line[sizeof line - 1] = '\0';
  say(&a, line);
  expect_sent(&f, &a, " 417 longer :Input line was too long");
  say(&a, "PING :alive");
  expect_sent(&f, &a, "PONG irc.eddy.local :alive");
  client_close(&a);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, relayed_text_is_cut_to_fit_one_line_at_a_utf8_boundary) {
  fixture f;
  tc a, b;
  char line[520];
  size_t n = 0;
  const char *msg, *end;
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_OK(client_open(&f, &a));
  EXPECT_OK(client_open(&f, &b));
  register_as(&f, &a, "a_long_nickname_here");
  register_as(&f, &b, "b");
  n = (size_t)snprintf(line, sizeof line, "PRIVMSG b :");
  while (n + 2 <= 510) {
    memcpy(line + n, "\xc3\xa9", 2); /* é */
    n += 2;
  }
  line[n] = '\0';
  say(&a, line);
  expect_sent(&f, &b, " PRIVMSG b :");
  cr_assert(wait_for(&f, &b, "\r\n"));
  msg = strstr(b.got, ":a_long");
  end = strstr(msg, "\r\n");
  cr_assert(end - msg <= 510, "%d bytes", (int)(end - msg));
  /* Whole characters only: the text ends with a full é. */
  EXPECT_EQ((unsigned char)end[-1], 0xa9);
  EXPECT_EQ((unsigned char)end[-2], 0xc3);
  client_close(&a);
  client_close(&b);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, say_speaks_into_a_kept_channel_as_an_outside_user) {
  fixture f;
  tc a;
  char text[1200];
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_EQ(eddy_irc_server_say(f.srv, "#chat", "web", NULL, NULL, "x", 1),
            -ENOENT);
  EXPECT_EQ(eddy_irc_server_keep_channel(f.srv, "nochan", NULL), -EINVAL);
  EXPECT_OK(eddy_irc_server_keep_channel(f.srv, "#chat", "the room"));
  EXPECT_OK(client_open(&f, &a));
  register_as(&f, &a, "reader");
  say(&a, "LIST");
  expect_sent(&f, &a, " 322 reader #chat 0 :the room");
  say(&a, "JOIN #chat");
  /* The first to join a kept, empty channel is its operator. */
  expect_sent(&f, &a, " 353 reader = #chat :@reader");
  EXPECT_EQ(eddy_irc_server_say(f.srv, "#CHAT", "José 9", "web", "chat.test",
                                "hi\r\nthere", 9),
            1);
  expect_sent(&f, &a, ":Jos___9!web@chat.test PRIVMSG #chat :hi  there\r\n");
  EXPECT_EQ(eddy_irc_server_say(f.srv, "#chat", "7up", NULL, NULL, "x", 1), 1);
  expect_sent(&f, &a, ":_7up!bridge@irc.eddy.local PRIVMSG #chat :x\r\n");
  /* Longer than a line: several lines, nothing lost. */
  memset(text, 'y', sizeof text);
  forget(&a);
  EXPECT_EQ(eddy_irc_server_say(f.srv, "#chat", "long", NULL, NULL, text,
                                sizeof text),
            1);
  cr_assert(wait_for(&f, &a, "PRIVMSG #chat :yyy"));
  turns(&f, 3);
  drain(&a);
  {
    size_t ys = 0, lines = 0;
    for (const char *p = a.got; (p = strstr(p, " PRIVMSG #chat :")); p++) {
      const char *t = p + 16, *e = strstr(t, "\r\n");
      cr_assert(e != NULL);
      ys += (size_t)(e - t);
      lines++;
    }
    EXPECT_EQ(ys, sizeof text);
    EXPECT_EQ(lines, 3);
  }
  EXPECT_EQ(eddy_irc_server_say(f.srv, "#chat", "", NULL, NULL, "x", 1),
            -EINVAL);
  client_close(&a);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, stop_sends_every_client_an_error_and_refuses_new_ones) {
  fixture f;
  tc a, b, late;
  EXPECT_OK(fixture_open(&f, NULL));
  EXPECT_OK(client_open(&f, &a));
  EXPECT_OK(client_open(&f, &b));
  register_as(&f, &a, "one");
  say(&a, "JOIN #x");
  expect_sent(&f, &a, " 366 ");
  eddy_irc_server_stop(f.srv, NULL);
  expect_sent(&f, &a, "ERROR :Closing Link: localhost (Server shutting down)");
  expect_sent(&f, &b, "ERROR :Closing Link: localhost (Server shutting down)");
  turns(&f, 5);
  EXPECT_EQ(f.closed, 2);
  EXPECT_EQ(client_open(&f, &late), EDDY_ECLOSED);
  client_close(&a);
  client_close(&b);
  client_close(&late);
  turns(&f, 5);
  fixture_close(&f);
}

Test(irc_server, options_are_checked) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_irc_server *srv = NULL;
  eddy_irc_server_options bad[] = {{.name = ""},
                                   {.name = "has space"},
                                   {.network = "a:b"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    EXPECT_EQ(eddy_irc_server_new(loop, &bad[i], &srv), -EINVAL);
  EXPECT_OK(eddy_irc_server_new(loop, NULL, &srv));
  EXPECT_OK(eddy_irc_server_set_motd(srv, "line one\nline two"));
  EXPECT_OK(eddy_irc_server_set_motd(srv, NULL));
  eddy_irc_server_free(srv);
  test_finish(loop);
}

#ifdef EDDY_FAULTS
/* A session touching every allocation the server makes: new, serve, nick,
 * channel, membership, topic, away, ban, say; then the stop. */
static void session(fixture *f, bool *ok) {
  tc a, b;
  *ok = false;
  if (client_open(f, &a) != 0) {
    client_close(&a);
    return;
  }
  if (client_open(f, &b) != 0) {
    client_close(&a);
    client_close(&b);
    return;
  }
  say(&a,
      "NICK a\r\nUSER a 0 * :a\r\nJOIN #c\r\nTOPIC #c :t\r\n"
      "AWAY :gone\r\nMODE #c +b bad!*@*\r\nNICK aa\r\nPING :end");
  say(&b,
      "NICK b\r\nUSER b 0 * :b\r\nJOIN #c,#d\r\nPRIVMSG aa :hi\r\n"
      "PING :end");
  (void)wait_for(f, &a, "PONG irc.eddy.local :end");
  (void)wait_for(f, &b, "PONG irc.eddy.local :end");
  (void)eddy_irc_server_keep_channel(f->srv, "#kept", "topic");
  (void)eddy_irc_server_say(f->srv, "#c", "w", NULL, NULL, "x", 1);
  *ok = strstr(a.got, "PONG irc.eddy.local :end") &&
        strstr(b.got, "PONG irc.eddy.local :end");
  eddy_irc_server_stop(f->srv, NULL);
  turns(f, 5);
  client_close(&a);
  client_close(&b);
  turns(f, 3);
}

Test(irc_server, running_out_of_memory_anywhere_in_a_session_leaks_nothing) {
  int completed = 0;
  for (uint64_t n = 1; n < 400; n++) {
    fixture f;
    /* The session's lines come at once: no flood control for them. */
    eddy_irc_server_options o = {.flood_lines = 1000};
    bool ok = false;
    int rc;
    eddy__fault_reset();
    fixture_loop(&f);
    eddy__fault_fail_nth(EDDY__SYS_MALLOC, n, ENOMEM);
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, n, ENOMEM);
    rc = fixture_server(&f, &o);
    if (rc == 0)
      session(&f, &ok);
    else
      EXPECT_EQ(rc, -ENOMEM);
    fixture_close(&f);
    if (eddy__fault_calls(EDDY__SYS_MALLOC) < n &&
        eddy__fault_calls(EDDY__SYS_CALLOC) < n) {
      cr_assert(ok, "a session with no failure did not complete");
      completed = 1;
      cr_log_info("a session makes %d allocations", (int)n - 1);
      break;
    }
  }
  cr_assert(completed, "the sweep never reached a session without failure");
}
#endif
