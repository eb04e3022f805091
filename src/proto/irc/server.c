/* The IRC server: clients, channels, and the commands between them. See
 * include/eddy/irc.h ("The server").
 *
 * Clients and channels live in two hash tables keyed by eddy_irc_hash of
 * their names, so a lookup needs no lowered copy. A membership is one
 * node in two lists: the channel's members (doubly linked, for fan-out
 * and O(1) removal) and the client's channels (singly linked, short).
 *
 * Every line a client is sent goes through send_line, which also checks
 * the client's send queue; a client found over it is not dropped there (a
 * broadcast may be walking its channel) but put on a list that the reaper
 * empties on the next turn. Lines are built with snprintf into a buffer of
 * EDDY_IRC_LINE_MAX: an over-long one is cut to 510 bytes at a UTF-8
 * boundary and ends with CR LF, so no line sent is ever longer than IRC
 * allows, whatever a client gave. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "eddy/irc.h"
#include "eddy/line.h"
#include "proto/irc/irc.h"
#include "sys/alloc.h"

#define NICKLEN 30
#define USERLEN 10
#define HOSTLEN 63
#define REALLEN 50
#define CHANNELLEN 50
#define TOPICLEN 300
#define AWAYLEN 200
#define KICKLEN 180
#define KEYLEN 23
#define CHANLIMIT 50  /* channels a client may be on */
#define MAXBANS 100   /* ban masks of a channel */
#define MAXTARGETS 4  /* of one PRIVMSG or NOTICE */
#define MODES_MAX 4   /* modes with a parameter per MODE command */
#define INVITES_MAX 8 /* channels a client may hold an invitation to */
#define WHO_MAX 500   /* replies to one WHO by mask */
#define FLOOD_BURST 8 /* times flood_lines, until a client first talks */

#define NS_PER_S ((int64_t)1000000000)

#define CAP_MULTI_PREFIX 1u
#define CAP_SERVER_TIME 2u

#define MEMBER_OP 1u
#define MEMBER_VOICE 2u

#define CMODE_INVITE 1u
#define CMODE_KEY 2u
#define CMODE_LIMIT 4u
#define CMODE_MODERATED 8u
#define CMODE_NOEXTERNAL 16u
#define CMODE_TOPIC 32u

/* A hash table's entry: the first member of a client and of a channel,
 * so one table serves both. */
typedef struct entry {
  struct entry *next;
  uint64_t hash;
} entry;

typedef struct table {
  entry **b;
  size_t nb, count;
} table;

typedef struct client client;
typedef struct channel channel;
typedef struct member member;
typedef struct ban ban;

struct member {
  client *c;
  channel *ch;
  member *prev, *next; /* in the channel */
  member *unext;       /* in the client's list */
  unsigned modes;
};

struct ban {
  ban *next;
  int64_t when;
  char *setter;
  char mask[];
};

struct channel {
  entry e;         /* first: the channel table's link */
  uint64_t serial; /* invitations name a channel by it, never dangling */
  member *members;
  size_t nmembers;
  unsigned modes;
  unsigned limit;
  bool kept; /* eddy_irc_server_keep_channel: lives with no member */
  char key[KEYLEN + 1];
  char *topic;
  char *topic_by;
  int64_t topic_time, created;
  ban *bans;
  size_t nbans;
  size_t len;
  char name[CHANNELLEN + 1];
};

struct client {
  entry e; /* first: the nick table's link, once it has a nick */
  eddy_irc_server *srv;
  client *prev, *next; /* every client */
  client *doomed_next; /* on the list of clients to drop */
  client *dead_next;   /* on the list of streams to close */
  eddy_line *lr;
  eddy_stream *s;
  uint64_t seen; /* the broadcast generation that last reached it */
  member *chans;
  unsigned nchans;
  unsigned caps;
  bool has_nick, has_user, pass_ok, cap_wait, registered;
  bool invisible;
  bool doomed;     /* to be dropped on the next turn: nothing more out */
  bool dead;       /* quitting: no more lines in or out */
  bool ping_sent;  /* a PING waits for an answer */
  bool flood_done; /* it has joined or talked: no more burst */
  bool paused;     /* flood control holds its lines */
  bool abort;      /* its output is dropped, not sent, when it goes */
  unsigned parsed; /* lines handled in this second */
  int64_t last_rx, signon, last_talk;
  char *away;
  char dead_reason[128];
  uint64_t invites[INVITES_MAX];
  char nick[NICKLEN + 1];
  char user[USERLEN + 1];
  char host[HOSTLEN + 1];
  char real[REALLEN + 1];
};

struct eddy_irc_server {
  eddy_loop *loop;
  eddy_irc_server_options o;
  char *name, *network, *motd, *password;
  client *clients;
  size_t nclients, nregistered, ninvisible;
  table nicks, chans;
  uint64_t gen, serial;
  client *doomed, *dead;
  eddy_timer *reaper, *tick;
  int64_t flood_at; /* when flood allowances last went down */
  int64_t ping_ns;
  bool stopping;
  char created_text[64];
  /* server-time: the tag, rebuilt when the loop's millisecond moves */
  int64_t tag_ms;
  char tag[48];
  size_t tag_len;
};

static const eddy_irc_casemap_t CM = EDDY_IRC_CASEMAP_RFC1459;

static void client_quit(client *c, const char *reason, bool echo);
static void client_doom(client *c, const char *reason);
static void reap(eddy_timer *t, void *arg);

/* ---- Time ---- */

static int64_t wall_s(void) {
  return (int64_t)time(NULL);
}

/* "@time=2026-11-30T12:00:00.000Z " for the current loop millisecond. */
static const char *time_tag(eddy_irc_server *srv, size_t *len) {
  struct timespec ts;
  struct tm tm;
  int64_t ms;
  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (ms != srv->tag_ms) {
    time_t t = (time_t)(ms / 1000);
    char date[32];
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    srv->tag_len = (size_t)snprintf(srv->tag, sizeof srv->tag,
                                    "@time=%s.%03dZ ", date, (int)(ms % 1000));
    srv->tag_ms = ms;
  }
  *len = srv->tag_len;
  return srv->tag;
}

/* ---- Output ---- */

/* Queues a line (CR LF included) for c, and dooms c if its send queue
 * passes the bound (or the write fails). tagged: a message relayed from a user,
 * which gets the server-time tag when c asked for it. */
static void send_line(client *c, const char *line, size_t len, bool tagged) {
  int rc;
  if (c->dead || c->doomed)
    return;
  if (tagged && (c->caps & CAP_SERVER_TIME)) {
    size_t tl;
    const char *tag = time_tag(c->srv, &tl);
    struct iovec iov[2] = {{(void *)tag, tl}, {(void *)line, len}};
    rc = eddy_stream_writev(c->s, iov, 2);
  } else {
    rc = eddy_stream_write(c->s, line, len);
  }
  if (rc != 0)
    client_doom(c, rc == -ENOMEM ? "Out of memory" : "Write error");
  else if (eddy_stream_buffered(c->s) > c->srv->o.sendq)
    client_doom(c, "Max SendQ exceeded");
}

/* Formats into buf (EDDY_IRC_LINE_MAX + 1 bytes) and ends it with CR LF,
 * cut to EDDY_IRC_BODY_MAX bytes at a UTF-8 boundary if need be. */
static size_t vformat(char *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static size_t vformat(char *buf, const char *fmt, va_list ap) {
  int n = vsnprintf(buf, EDDY_IRC_LINE_MAX + 1, fmt, ap);
  size_t len = n < 0 ? 0 : (size_t)n;
  if (len > EDDY_IRC_BODY_MAX)
    len = eddy_irc_fit(buf, len > EDDY_IRC_LINE_MAX ? EDDY_IRC_LINE_MAX : len,
                       EDDY_IRC_BODY_MAX);
  buf[len++] = '\r';
  buf[len++] = '\n';
  return len;
}

static size_t format(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t format(char *buf, const char *fmt, ...) {
  va_list ap;
  size_t n;
  va_start(ap, fmt);
  n = vformat(buf, fmt, ap);
  va_end(ap);
  return n;
}

/* The nick a numeric is addressed to: "*" before the client has one. */
static const char *target(const client *c) {
  return c->has_nick ? c->nick : "*";
}

/* ":server NNN target <rest>". */
static void numeric(client *c, int num, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void numeric(client *c, int num, const char *fmt, ...) {
  char buf[EDDY_IRC_LINE_MAX + 1], rest[EDDY_IRC_LINE_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  (void)vsnprintf(rest, sizeof rest, fmt, ap);
  va_end(ap);
  send_line(c, buf,
            format(buf, ":%s %03d %s %s", c->srv->name, num, target(c), rest),
            false);
}

/* A line from the server itself, not a numeric (":server PONG ..."). */
static void server_line(client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void server_line(client *c, const char *fmt, ...) {
  char buf[EDDY_IRC_LINE_MAX + 1];
  va_list ap;
  size_t n;
  va_start(ap, fmt);
  n = vformat(buf, fmt, ap);
  va_end(ap);
  send_line(c, buf, n, false);
}

/* ":nick!user@host" of c into buf. */
static const char *source(const client *c, char *buf, size_t cap) {
  snprintf(buf, cap, "%s!%s@%s", c->nick, c->user, c->host);
  return buf;
}

#define SOURCE_MAX (NICKLEN + USERLEN + HOSTLEN + 3)

/* ---- The tables ---- */

/* Makes room for one more entry: the buckets double once the table holds
 * as many entries as buckets. 0 or -ENOMEM. */
static int table_reserve(table *t) {
  size_t nn = t->nb ? t->nb * 2 : 64;
  entry **nb;
  if (t->count + 1 < t->nb)
    return 0;
  if ((nb = eddy__calloc(nn, sizeof *nb)) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < t->nb; i++)
    for (entry *e = t->b[i], *next; e; e = next) {
      next = e->next;
      e->next = nb[e->hash & (nn - 1)];
      nb[e->hash & (nn - 1)] = e;
    }
  eddy__free(t->b);
  t->b = nb;
  t->nb = nn;
  return 0;
}

/* After table_reserve. */
static void table_insert(table *t, entry *e, uint64_t hash) {
  e->hash = hash;
  e->next = t->b[hash & (t->nb - 1)];
  t->b[hash & (t->nb - 1)] = e;
  t->count++;
}

static void table_remove(table *t, entry *e) {
  for (entry **p = &t->b[e->hash & (t->nb - 1)]; *p; p = &(*p)->next)
    if (*p == e) {
      *p = e->next;
      t->count--;
      return;
    }
}

/* The chain where entries of that hash are. */
static entry *table_chain(const table *t, uint64_t hash) {
  return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

/* ---- Nicks ---- */

static client *find_nick(eddy_irc_server *srv, const char *nick, size_t n) {
  uint64_t h = eddy_irc_hash(CM, nick, n);
  for (entry *e = table_chain(&srv->nicks, h); e; e = e->next) {
    client *c = (client *)e;
    if (e->hash == h && eddy_irc_equal(CM, c->nick, strlen(c->nick), nick, n))
      return c;
  }
  return NULL;
}

static void nick_unlink(client *c) {
  if (c->has_nick)
    table_remove(&c->srv->nicks, &c->e);
}

/* Gives c the nick (checked free); -ENOMEM leaves c as it was. */
static int nick_set(client *c, const char *nick, size_t n) {
  if (!c->has_nick && table_reserve(&c->srv->nicks) != 0)
    return -ENOMEM;
  nick_unlink(c);
  memcpy(c->nick, nick, n);
  c->nick[n] = '\0';
  table_insert(&c->srv->nicks, &c->e, eddy_irc_hash(CM, nick, n));
  c->has_nick = true;
  return 0;
}

/* ---- Channels ---- */

static channel *find_channel(eddy_irc_server *srv, const char *name, size_t n) {
  uint64_t h = eddy_irc_hash(CM, name, n);
  for (entry *e = table_chain(&srv->chans, h); e; e = e->next) {
    channel *ch = (channel *)e;
    if (e->hash == h && eddy_irc_equal(CM, ch->name, ch->len, name, n))
      return ch;
  }
  return NULL;
}

static channel *channel_new(eddy_irc_server *srv, const char *name, size_t n) {
  channel *ch;
  if (table_reserve(&srv->chans) != 0)
    return NULL;
  if ((ch = eddy__calloc(1, sizeof *ch)) == NULL)
    return NULL;
  memcpy(ch->name, name, n);
  ch->len = n;
  ch->serial = ++srv->serial;
  ch->created = wall_s();
  ch->modes = CMODE_NOEXTERNAL | CMODE_TOPIC;
  table_insert(&srv->chans, &ch->e, eddy_irc_hash(CM, name, n));
  return ch;
}

static void channel_free(eddy_irc_server *srv, channel *ch) {
  table_remove(&srv->chans, &ch->e);
  while (ch->bans) {
    ban *b = ch->bans;
    ch->bans = b->next;
    eddy__free(b->setter);
    eddy__free(b);
  }
  eddy__free(ch->topic);
  eddy__free(ch->topic_by);
  eddy__free(ch);
}

static member *membership(const client *c, const channel *ch) {
  for (member *m = c->chans; m; m = m->unext)
    if (m->ch == ch)
      return m;
  return NULL;
}

static member *member_add(client *c, channel *ch, unsigned modes) {
  member *m = eddy__calloc(1, sizeof *m);
  if (m == NULL)
    return NULL;
  m->c = c;
  m->ch = ch;
  m->modes = modes;
  m->next = ch->members;
  if (ch->members)
    ch->members->prev = m;
  ch->members = m;
  ch->nmembers++;
  m->unext = c->chans;
  c->chans = m;
  c->nchans++;
  return m;
}

/* Removes the membership, and the channel with its last member. */
static void member_remove(member *m) {
  client *c = m->c;
  channel *ch = m->ch;
  for (member **p = &c->chans; *p; p = &(*p)->unext)
    if (*p == m) {
      *p = m->unext;
      break;
    }
  c->nchans--;
  if (m->prev)
    m->prev->next = m->next;
  else
    ch->members = m->next;
  if (m->next)
    m->next->prev = m->prev;
  ch->nmembers--;
  eddy__free(m);
  if (ch->nmembers == 0 && !ch->kept)
    channel_free(c->srv, ch);
}

/* Sends line to every member of ch but except (may be NULL). */
static void to_channel(channel *ch, const client *except, const char *line,
                       size_t len) {
  for (member *m = ch->members; m; m = m->next)
    if (m->c != except)
      send_line(m->c, line, len, true);
}

/* Sends line once to every client that shares a channel with c, and to c
 * itself when self is set. */
static void to_peers(client *c, bool self, const char *line, size_t len) {
  uint64_t gen = ++c->srv->gen;
  c->seen = gen;
  if (self)
    send_line(c, line, len, true);
  for (member *um = c->chans; um; um = um->unext)
    for (member *m = um->ch->members; m; m = m->next)
      if (m->c->seen != gen) {
        m->c->seen = gen;
        send_line(m->c, line, len, true);
      }
}

/* "@+" prefixes of a membership: all of them with multi-prefix, else the
 * highest. */
static const char *prefixes(const member *m, const client *to, char out[3]) {
  size_t n = 0;
  if (m->modes & MEMBER_OP)
    out[n++] = '@';
  if ((m->modes & MEMBER_VOICE) && (n == 0 || (to->caps & CAP_MULTI_PREFIX)))
    out[n++] = '+';
  out[n] = '\0';
  return out;
}

static bool is_banned(const channel *ch, const client *c) {
  char who[SOURCE_MAX + 1];
  size_t n;
  if (ch->bans == NULL)
    return false;
  source(c, who, sizeof who);
  n = strlen(who);
  for (const ban *b = ch->bans; b; b = b->next)
    if (eddy_irc_mask_match(CM, b->mask, strlen(b->mask), who, n))
      return true;
  return false;
}

static bool invited(const client *c, const channel *ch) {
  for (int i = 0; i < INVITES_MAX; i++)
    if (c->invites[i] == ch->serial)
      return true;
  return false;
}

static void invite_add(client *c, const channel *ch) {
  if (invited(c, ch))
    return;
  memmove(c->invites + 1, c->invites, sizeof c->invites - sizeof *c->invites);
  c->invites[0] = ch->serial;
}

static void invite_remove(client *c, const channel *ch) {
  for (int i = 0; i < INVITES_MAX; i++)
    if (c->invites[i] == ch->serial)
      c->invites[i] = 0;
}

/* The client has joined or talked: its burst allowance ends, and, as in
 * ircd-hybrid, the count starts again from there. */
static void flood_done(client *c) {
  if (!c->flood_done) {
    c->flood_done = true;
    c->parsed = 0;
  }
}

/* How much of a client's name, list or mode parameter a reply may echo:
 * up to its first space (only a last, trailing parameter can hold one,
 * and echoed whole it would become several), and at most max bytes. The
 * command itself sees the whole parameter, which no name matches. */
static int shown(const char *p, size_t n, size_t max) {
  const char *sp = memchr(p, ' ', n);
  if (sp)
    n = (size_t)(sp - p);
  return (int)(n > max ? max : n);
}

/* ---- Splitting ---- */

/* The next comma-separated item of *list (advanced), or false. */
static bool next_item(const char **list, const char **item, size_t *n) {
  const char *p = *list, *comma;
  if (p == NULL || *p == '\0')
    return false;
  comma = strchr(p, ',');
  *item = p;
  *n = comma ? (size_t)(comma - p) : strlen(p);
  *list = comma ? comma + 1 : p + *n;
  return true;
}

/* A parameter as a NUL-terminated copy in buf (cut to cap - 1). */
static const char *param(const eddy_irc_msg_t *m, unsigned i, char *buf,
                         size_t cap) {
  size_t n;
  if (i >= m->nparams)
    return NULL;
  n = m->params[i].n < cap - 1 ? m->params[i].n : cap - 1;
  memcpy(buf, m->params[i].p, n);
  buf[n] = '\0';
  return buf;
}

/* ---- Registration ---- */

static void send_motd(client *c) {
  eddy_irc_server *srv = c->srv;
  const char *p = srv->motd;
  if (p == NULL) {
    numeric(c, EDDY_IRC_ERR_NOMOTD, ":MOTD File is missing");
    return;
  }
  numeric(c, EDDY_IRC_RPL_MOTDSTART, ":- %s Message of the Day -", srv->name);
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    numeric(c, EDDY_IRC_RPL_MOTD, ":- %.*s", (int)(n > 400 ? 400 : n), p);
    p += n + (nl != NULL);
  }
  numeric(c, EDDY_IRC_RPL_ENDOFMOTD, ":End of /MOTD command.");
}

static void send_lusers(client *c) {
  eddy_irc_server *srv = c->srv;
  numeric(c, EDDY_IRC_RPL_LUSERCLIENT,
          ":There are %zu users and %zu invisible on 1 servers",
          srv->nregistered - srv->ninvisible, srv->ninvisible);
  numeric(c, EDDY_IRC_RPL_LUSERCHANNELS, "%zu :channels formed",
          srv->chans.count);
  numeric(c, EDDY_IRC_RPL_LUSERME, ":I have %zu clients and 0 servers",
          srv->nregistered);
}

static void welcome(client *c) {
  eddy_irc_server *srv = c->srv;
  if (srv->password && !c->pass_ok) {
    numeric(c, EDDY_IRC_ERR_PASSWDMISMATCH, ":Password incorrect");
    client_quit(c, "Bad Password", true);
    return;
  }
  c->registered = true;
  c->signon = wall_s();
  srv->nregistered++;
  numeric(c, EDDY_IRC_RPL_WELCOME,
          ":Welcome to the %s Internet Relay Chat Network %s!%s@%s",
          srv->network, c->nick, c->user, c->host);
  numeric(c, EDDY_IRC_RPL_YOURHOST, ":Your host is %s, running version eddy",
          srv->name);
  numeric(c, EDDY_IRC_RPL_CREATED, ":This server was created %s",
          srv->created_text);
  numeric(c, EDDY_IRC_RPL_MYINFO, "%s eddy i biklmnotv bklov", srv->name);
  numeric(c, EDDY_IRC_RPL_ISUPPORT,
          "AWAYLEN=%d CASEMAPPING=rfc1459 CHANLIMIT=#&:%d CHANMODES=b,k,l,imnt "
          "CHANNELLEN=%d CHANTYPES=#& KICKLEN=%d MAXLIST=b:%d "
          "MAXTARGETS=%d MODES=%d NETWORK=%s NICKLEN=%d "
          ":are supported by this server",
          AWAYLEN, CHANLIMIT, CHANNELLEN, KICKLEN, MAXBANS, MAXTARGETS,
          MODES_MAX, srv->network, NICKLEN);
  numeric(c, EDDY_IRC_RPL_ISUPPORT,
          "PREFIX=(ov)@+ STATUSMSG=@+ TOPICLEN=%d USERLEN=%d "
          ":are supported by this server",
          TOPICLEN, USERLEN);
  send_lusers(c);
  send_motd(c);
}

static void try_register(client *c) {
  if (!c->registered && c->has_nick && c->has_user && !c->cap_wait)
    welcome(c);
}

/* ---- Commands ---- */

typedef struct command {
  const char *name;
  unsigned min; /* parameters needed, or 461 */
  bool before;  /* allowed before registration */
  void (*fn)(client *c, const eddy_irc_msg_t *m);
} command;

static void need_more(client *c, const char *cmd) {
  numeric(c, EDDY_IRC_ERR_NEEDMOREPARAMS, "%s :Not enough parameters", cmd);
}

static void cmd_pass(client *c, const eddy_irc_msg_t *m) {
  const char *pw = c->srv->password;
  if (c->registered) {
    numeric(c, EDDY_IRC_ERR_ALREADYREGISTERED, ":You may not reregister");
    return;
  }
  c->pass_ok = pw == NULL || (strlen(pw) == m->params[0].n &&
                              memcmp(pw, m->params[0].p, m->params[0].n) == 0);
}

static void cmd_cap(client *c, const eddy_irc_msg_t *m) {
  static const struct {
    const char *name;
    unsigned bit;
  } caps[] = {{"multi-prefix", CAP_MULTI_PREFIX},
              {"server-time", CAP_SERVER_TIME}};
  char sub[16], list[EDDY_IRC_LINE_MAX + 1];
  param(m, 0, sub, sizeof sub);
  if (strcasecmp(sub, "LS") == 0) {
    if (!c->registered)
      c->cap_wait = true;
    server_line(c, ":%s CAP %s LS :multi-prefix server-time", c->srv->name,
                target(c));
  } else if (strcasecmp(sub, "LIST") == 0) {
    server_line(c, ":%s CAP %s LIST :%s%s%s", c->srv->name, target(c),
                c->caps & CAP_MULTI_PREFIX ? "multi-prefix" : "",
                c->caps == (CAP_MULTI_PREFIX | CAP_SERVER_TIME) ? " " : "",
                c->caps & CAP_SERVER_TIME ? "server-time" : "");
  } else if (strcasecmp(sub, "REQ") == 0) {
    unsigned add = 0, del = 0;
    bool ok = m->nparams >= 2;
    const char *p = param(m, 1, list, sizeof list);
    if (!c->registered)
      c->cap_wait = true;
    while (ok && p && *p) {
      size_t n;
      bool minus;
      unsigned bit = 0;
      while (*p == ' ')
        p++;
      if (*p == '\0')
        break;
      n = strcspn(p, " ");
      minus = *p == '-';
      for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
        if (strlen(caps[i].name) == n - minus &&
            memcmp(caps[i].name, p + minus, n - minus) == 0)
          bit = caps[i].bit;
      if (bit == 0)
        ok = false;
      else if (minus)
        del |= bit;
      else
        add |= bit;
      p += n;
    }
    if (ok)
      c->caps = (c->caps | add) & ~del;
    server_line(c, ":%s CAP %s %s :%.*s", c->srv->name, target(c),
                ok ? "ACK" : "NAK", m->nparams >= 2 ? (int)m->params[1].n : 0,
                m->nparams >= 2 ? m->params[1].p : "");
  } else if (strcasecmp(sub, "END") == 0) {
    c->cap_wait = false;
    try_register(c);
  } else {
    numeric(c, EDDY_IRC_ERR_INVALIDCAPCMD, "%s :Invalid CAP command", sub);
  }
}

static void cmd_nick(client *c, const eddy_irc_msg_t *m) {
  const char *nick = m->params[0].p;
  size_t n = m->params[0].n;
  client *other;
  if (n == 0) {
    numeric(c, EDDY_IRC_ERR_NONICKNAMEGIVEN, ":No nickname given");
    return;
  }
  if (!eddy_irc_nick_valid(nick, n, NICKLEN)) {
    numeric(c, EDDY_IRC_ERR_ERRONEUSNICKNAME, "%.*s :Erroneous Nickname",
            shown(nick, n, NICKLEN + 10), nick);
    return;
  }
  other = find_nick(c->srv, nick, n);
  if (other && other != c) {
    numeric(c, EDDY_IRC_ERR_NICKNAMEINUSE, "%.*s :Nickname is already in use",
            (int)n, nick);
    return;
  }
  if (c->has_nick && strlen(c->nick) == n && memcmp(c->nick, nick, n) == 0)
    return; /* the same: nothing to say */
  if (c->registered) {
    char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
    size_t len = format(buf, ":%s NICK :%.*s", source(c, src, sizeof src),
                        (int)n, nick);
    if (nick_set(c, nick, n) != 0) {
      client_quit(c, "Out of memory", true);
      return;
    }
    to_peers(c, true, buf, len);
    return;
  }
  if (nick_set(c, nick, n) != 0) {
    client_quit(c, "Out of memory", true);
    return;
  }
  try_register(c);
}

static void cmd_user(client *c, const eddy_irc_msg_t *m) {
  size_t n = 0;
  if (c->registered) {
    numeric(c, EDDY_IRC_ERR_ALREADYREGISTERED, ":You may not reregister");
    return;
  }
  if (c->has_user)
    return;
  /* No ident lookup: the name is the client's word, marked with '~'. */
  c->user[n++] = '~';
  for (size_t i = 0; i < m->params[0].n && n < USERLEN; i++) {
    char ch = m->params[0].p[i];
    if (ch != '@' && ch != '!' && ch != '*' && ch != '?' && ch != ' ' &&
        (unsigned char)ch > ' ' && ch != ',')
      c->user[n++] = ch;
  }
  if (n == 1) {
    numeric(c, EDDY_IRC_ERR_NEEDMOREPARAMS, "USER :Not enough parameters");
    return;
  }
  c->user[n] = '\0';
  n = m->params[3].n > REALLEN
          ? eddy_irc_fit(m->params[3].p, m->params[3].n, REALLEN)
          : m->params[3].n;
  memcpy(c->real, m->params[3].p, n);
  c->real[n] = '\0';
  c->has_user = true;
  try_register(c);
}

static void cmd_ping(client *c, const eddy_irc_msg_t *m) {
  if (m->nparams == 0 || m->params[0].n == 0) {
    numeric(c, EDDY_IRC_ERR_NOORIGIN, ":No origin specified");
    return;
  }
  server_line(c, ":%s PONG %s :%.*s", c->srv->name, c->srv->name,
              (int)m->params[0].n, m->params[0].p);
}

static void cmd_pong(client *c, const eddy_irc_msg_t *m) {
  (void)m;
  c->ping_sent = false; /* any line counts; last_rx is already moved */
}

static void cmd_quit(client *c, const eddy_irc_msg_t *m) {
  char reason[EDDY_IRC_LINE_MAX];
  if (m->nparams > 0 && m->params[0].n > 0)
    snprintf(reason, sizeof reason, "Quit: %.*s",
             (int)(m->params[0].n > KICKLEN ? KICKLEN : m->params[0].n),
             m->params[0].p);
  else
    snprintf(reason, sizeof reason, "Client Quit");
  client_quit(c, reason, true);
}

static void send_names(client *c, channel *ch) {
  char buf[EDDY_IRC_LINE_MAX + 1];
  size_t head, len;
  bool on = membership(c, ch) != NULL, any = false;
  head = (size_t)snprintf(buf, sizeof buf, ":%s 353 %s = %s :", c->srv->name,
                          c->nick, ch->name);
  len = head;
  for (member *m = ch->members; m; m = m->next) {
    char pre[3];
    size_t n;
    if (!on && m->c->invisible)
      continue;
    prefixes(m, c, pre);
    n = strlen(pre) + strlen(m->c->nick);
    if (len > head && len + 1 + n > EDDY_IRC_BODY_MAX) {
      buf[len++] = '\r';
      buf[len++] = '\n';
      send_line(c, buf, len, false);
      len = head;
    }
    if (len > head)
      buf[len++] = ' ';
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", pre,
                            m->c->nick);
    any = true;
  }
  if (any) {
    buf[len++] = '\r';
    buf[len++] = '\n';
    send_line(c, buf, len, false);
  }
  numeric(c, EDDY_IRC_RPL_ENDOFNAMES, "%s :End of /NAMES list.", ch->name);
}

static void send_topic(client *c, channel *ch) {
  numeric(c, EDDY_IRC_RPL_TOPIC, "%s :%s", ch->name, ch->topic);
  numeric(c, EDDY_IRC_RPL_TOPICWHOTIME, "%s %s %" PRId64, ch->name,
          ch->topic_by ? ch->topic_by : c->srv->name, ch->topic_time);
}

/* The channel a parameter names, or NULL after 403. */
static channel *channel_or_403(client *c, const eddy_irc_str_t *name) {
  channel *ch = find_channel(c->srv, name->p, name->n);
  if (ch == NULL)
    numeric(c, EDDY_IRC_ERR_NOSUCHCHANNEL, "%.*s :No such channel",
            shown(name->p, name->n, CHANNELLEN), name->p);
  return ch;
}

/* c's membership of ch, or NULL after 442. */
static member *member_or_442(client *c, channel *ch) {
  member *mb = membership(c, ch);
  if (mb == NULL)
    numeric(c, EDDY_IRC_ERR_NOTONCHANNEL, "%s :You're not on that channel",
            ch->name);
  return mb;
}

/* Whether the membership is an operator's; if not, 482. */
static bool op_or_482(client *c, const member *mb) {
  if (mb->modes & MEMBER_OP)
    return true;
  numeric(c, EDDY_IRC_ERR_CHANOPRIVSNEEDED, "%s :You're not channel operator",
          mb->ch->name);
  return false;
}

static void part_one(client *c, member *m, const char *reason) {
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  size_t len;
  if (reason && *reason)
    len = format(buf, ":%s PART %s :%s", source(c, src, sizeof src),
                 m->ch->name, reason);
  else
    len = format(buf, ":%s PART %s", source(c, src, sizeof src), m->ch->name);
  to_channel(m->ch, NULL, buf, len);
  member_remove(m);
}

static void join_one(client *c, const char *name, size_t n, const char *key) {
  eddy_irc_server *srv = c->srv;
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  channel *ch;
  bool created = false;
  size_t len;
  if (!eddy_irc_channel_valid(name, n, CHANNELLEN)) {
    numeric(c, EDDY_IRC_ERR_NOSUCHCHANNEL, "%.*s :No such channel",
            shown(name, n, CHANNELLEN), name);
    return;
  }
  ch = find_channel(srv, name, n);
  if (ch && membership(c, ch))
    return;
  if (c->nchans >= CHANLIMIT) {
    numeric(c, EDDY_IRC_ERR_TOOMANYCHANNELS,
            "%.*s :You have joined too many channels",
            shown(name, n, CHANNELLEN), name);
    return;
  }
  if (ch) {
    const char *why = NULL;
    int num = 0;
    if (is_banned(ch, c))
      num = EDDY_IRC_ERR_BANNEDFROMCHAN, why = "(+b)";
    else if ((ch->modes & CMODE_INVITE) && !invited(c, ch))
      num = EDDY_IRC_ERR_INVITEONLYCHAN, why = "(+i)";
    else if ((ch->modes & CMODE_KEY) && (key == NULL || strcmp(key, ch->key)))
      num = EDDY_IRC_ERR_BADCHANNELKEY, why = "(+k)";
    else if ((ch->modes & CMODE_LIMIT) && ch->nmembers >= ch->limit &&
             !invited(c, ch))
      num = EDDY_IRC_ERR_CHANNELISFULL, why = "(+l)";
    if (num) {
      numeric(c, num, "%s :Cannot join channel %s", ch->name, why);
      return;
    }
  } else {
    if ((ch = channel_new(srv, name, n)) == NULL) {
      client_quit(c, "Out of memory", true);
      return;
    }
    created = true;
  }
  if (member_add(c, ch,
                 created || (ch->kept && ch->nmembers == 0) ? MEMBER_OP : 0) ==
      NULL) {
    if (created)
      channel_free(srv, ch);
    client_quit(c, "Out of memory", true);
    return;
  }
  invite_remove(c, ch);
  flood_done(c);
  len = format(buf, ":%s JOIN %s", source(c, src, sizeof src), ch->name);
  to_channel(ch, NULL, buf, len);
  if (created)
    server_line(c, ":%s MODE %s +nt", srv->name, ch->name);
  if (ch->topic)
    send_topic(c, ch);
  send_names(c, ch);
}

static void cmd_join(client *c, const eddy_irc_msg_t *m) {
  char names[EDDY_IRC_LINE_MAX + 1], keys[EDDY_IRC_LINE_MAX + 1];
  const char *list = param(m, 0, names, sizeof names);
  const char *klist = param(m, 1, keys, sizeof keys), *item, *k;
  size_t n, kn;
  if (strcmp(list, "0") == 0) {
    while (c->chans && !c->dead)
      part_one(c, c->chans, NULL);
    return;
  }
  while (next_item(&list, &item, &n) && !c->dead) {
    char key[KEYLEN + 1];
    const char *kp = NULL;
    if (next_item(&klist, &k, &kn)) {
      snprintf(key, sizeof key, "%.*s", (int)kn, k);
      kp = key;
    }
    join_one(c, item, n, kp);
  }
}

static void cmd_part(client *c, const eddy_irc_msg_t *m) {
  char names[EDDY_IRC_LINE_MAX + 1], reason[EDDY_IRC_LINE_MAX + 1];
  const char *list = param(m, 0, names, sizeof names), *item;
  const char *why = param(m, 1, reason, KICKLEN + 1);
  size_t n;
  while (next_item(&list, &item, &n) && !c->dead) {
    eddy_irc_str_t name = {item, n};
    channel *ch = channel_or_403(c, &name);
    member *mb = ch ? member_or_442(c, ch) : NULL;
    if (mb)
      part_one(c, mb, why);
  }
}

static bool is_channel_name(const char *p, size_t n) {
  return n > 0 && (p[0] == '#' || p[0] == '&');
}

static void message_to(client *c, const char *cmd, bool notice, const char *tgt,
                       size_t tn, const eddy_irc_msg_t *m) {
  eddy_irc_server *srv = c->srv;
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  const char *text = m->params[1].p;
  size_t text_n = m->params[1].n, len, room;
  /* The room the relayed line leaves for the text. */
  source(c, src, sizeof src);
  len = strlen(src) + strlen(cmd) + tn + 5; /* ": " " " " :" around them */
  room = len < EDDY_IRC_BODY_MAX ? EDDY_IRC_BODY_MAX - len : 0;
  text_n = eddy_irc_fit(text, text_n, room);
  if (is_channel_name(tgt, tn)) {
    channel *ch = find_channel(srv, tgt, tn);
    member *mb;
    if (ch == NULL) {
      if (!notice)
        numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel",
                shown(tgt, tn, CHANNELLEN), tgt);
      return;
    }
    mb = membership(c, ch);
    if ((mb == NULL && (ch->modes & CMODE_NOEXTERNAL)) ||
        ((mb == NULL || !(mb->modes & (MEMBER_OP | MEMBER_VOICE))) &&
         ((ch->modes & CMODE_MODERATED) || is_banned(ch, c)))) {
      if (!notice)
        numeric(c, EDDY_IRC_ERR_CANNOTSENDTOCHAN, "%s :Cannot send to channel",
                ch->name);
      return;
    }
    flood_done(c);
    len = (size_t)snprintf(buf, sizeof buf, ":%s %s %s :%.*s\r\n", src, cmd,
                           ch->name, (int)text_n, text);
    to_channel(ch, c, buf, len);
    if (srv->o.message)
      srv->o.message(srv, ch->name, c->nick, strlen(c->nick), text, text_n,
                     notice, srv->o.arg);
    return;
  }
  {
    client *to = find_nick(srv, tgt, tn);
    if (to == NULL || !to->registered) {
      if (!notice)
        numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel",
                shown(tgt, tn, NICKLEN + 10), tgt);
      return;
    }
    flood_done(c);
    len = (size_t)snprintf(buf, sizeof buf, ":%s %s %s :%.*s\r\n", src, cmd,
                           to->nick, (int)text_n, text);
    send_line(to, buf, len, true);
    if (!notice && to->away)
      numeric(c, EDDY_IRC_RPL_AWAY, "%s :%s", to->nick, to->away);
  }
}

static void privmsg(client *c, const eddy_irc_msg_t *m, bool notice) {
  const char *cmd = notice ? "NOTICE" : "PRIVMSG";
  char targets[EDDY_IRC_LINE_MAX + 1];
  const char *list, *item;
  size_t n;
  int count = 0;
  if (m->nparams == 0 || m->params[0].n == 0) {
    if (!notice)
      numeric(c, EDDY_IRC_ERR_NORECIPIENT, ":No recipient given (%s)", cmd);
    return;
  }
  if (m->nparams < 2 || m->params[1].n == 0) {
    if (!notice)
      numeric(c, EDDY_IRC_ERR_NOTEXTTOSEND, ":No text to send");
    return;
  }
  list = param(m, 0, targets, sizeof targets);
  while (next_item(&list, &item, &n) && !c->dead) {
    if (++count > MAXTARGETS) {
      if (!notice)
        numeric(c, EDDY_IRC_ERR_TOOMANYTARGETS,
                "%.*s :Too many recipients. Only %d processed",
                shown(item, n, CHANNELLEN), item, MAXTARGETS);
      return;
    }
    message_to(c, cmd, notice, item, n, m);
  }
}

static void cmd_privmsg(client *c, const eddy_irc_msg_t *m) {
  privmsg(c, m, false);
}

static void cmd_notice(client *c, const eddy_irc_msg_t *m) {
  privmsg(c, m, true);
}

static void cmd_names(client *c, const eddy_irc_msg_t *m) {
  char names[EDDY_IRC_LINE_MAX + 1];
  const char *list = param(m, 0, names, sizeof names), *item;
  size_t n;
  if (list == NULL) {
    numeric(c, EDDY_IRC_RPL_ENDOFNAMES, "* :End of /NAMES list.");
    return;
  }
  while (next_item(&list, &item, &n)) {
    channel *ch = find_channel(c->srv, item, n);
    if (ch)
      send_names(c, ch);
    else
      numeric(c, EDDY_IRC_RPL_ENDOFNAMES, "%.*s :End of /NAMES list.",
              shown(item, n, CHANNELLEN), item);
  }
}

static void cmd_topic(client *c, const eddy_irc_msg_t *m) {
  channel *ch = channel_or_403(c, &m->params[0]);
  member *mb;
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  size_t n, len;
  if (ch == NULL)
    return;
  if (m->nparams < 2) {
    if (ch->topic == NULL)
      numeric(c, EDDY_IRC_RPL_NOTOPIC, "%s :No topic is set.", ch->name);
    else
      send_topic(c, ch);
    return;
  }
  if ((mb = member_or_442(c, ch)) == NULL ||
      ((ch->modes & CMODE_TOPIC) && !op_or_482(c, mb)))
    return;
  n = eddy_irc_fit(m->params[1].p, m->params[1].n, TOPICLEN);
  eddy__free(ch->topic);
  eddy__free(ch->topic_by);
  ch->topic = ch->topic_by = NULL;
  if (n > 0) {
    ch->topic = eddy__malloc(n + 1);
    ch->topic_by = eddy__malloc(SOURCE_MAX + 1);
    if (ch->topic == NULL || ch->topic_by == NULL) {
      eddy__free(ch->topic);
      eddy__free(ch->topic_by);
      ch->topic = ch->topic_by = NULL;
      client_quit(c, "Out of memory", true);
      return;
    }
    memcpy(ch->topic, m->params[1].p, n);
    ch->topic[n] = '\0';
    source(c, ch->topic_by, SOURCE_MAX + 1);
    ch->topic_time = wall_s();
  }
  len = format(buf, ":%s TOPIC %s :%.*s", source(c, src, sizeof src), ch->name,
               (int)n, m->params[1].p);
  to_channel(ch, NULL, buf, len);
}

static void who_reply(client *c, const char *chname, client *w,
                      const member *mb) {
  char pre[3] = "";
  if (mb)
    prefixes(mb, c, pre);
  numeric(c, EDDY_IRC_RPL_WHOREPLY, "%s %s %s %s %s %s%s :0 %s", chname,
          w->user, w->host, c->srv->name, w->nick, w->away ? "G" : "H", pre,
          w->real);
}

static bool shares_channel(const client *a, const client *b) {
  for (const member *m = a->chans; m; m = m->unext)
    if (membership(b, m->ch))
      return true;
  return false;
}

static void cmd_who(client *c, const eddy_irc_msg_t *m) {
  char mask[EDDY_IRC_LINE_MAX + 1];
  const char *p = param(m, 0, mask, CHANNELLEN + 1);
  if (p == NULL || strcmp(p, "0") == 0)
    p = "*";
  if (is_channel_name(p, strlen(p))) {
    channel *ch = find_channel(c->srv, p, strlen(p));
    if (ch) {
      bool on = membership(c, ch) != NULL;
      for (member *mb = ch->members; mb; mb = mb->next)
        if (on || !mb->c->invisible)
          who_reply(c, ch->name, mb->c, mb);
    }
  } else {
    size_t n = strlen(p), replies = 0;
    for (client *w = c->srv->clients; w && replies < WHO_MAX; w = w->next) {
      char who[SOURCE_MAX + 1];
      if (!w->registered || (w->invisible && w != c && !shares_channel(c, w)))
        continue;
      source(w, who, sizeof who);
      if (eddy_irc_mask_match(CM, p, n, w->nick, strlen(w->nick)) ||
          eddy_irc_mask_match(CM, p, n, who, strlen(who))) {
        who_reply(c, w->chans ? w->chans->ch->name : "*", w, w->chans);
        replies++;
      }
    }
  }
  numeric(c, EDDY_IRC_RPL_ENDOFWHO, "%.*s :End of /WHO list.",
          shown(p, strlen(p), CHANNELLEN), p);
}

static void cmd_whois(client *c, const eddy_irc_msg_t *m) {
  /* WHOIS [server] nick: the last parameter is the nick. */
  const eddy_irc_str_t *nick;
  if (m->nparams == 0 || m->params[m->nparams - 1].n == 0) {
    numeric(c, EDDY_IRC_ERR_NONICKNAMEGIVEN, ":No nickname given");
    return;
  }
  nick = &m->params[m->nparams - 1];
  client *w = find_nick(c->srv, nick->p, nick->n);
  char buf[EDDY_IRC_LINE_MAX + 1];
  size_t head, len;
  int nn = shown(nick->p, nick->n, NICKLEN + 10);
  if (w == NULL || !w->registered) {
    numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel", nn,
            nick->p);
    numeric(c, EDDY_IRC_RPL_ENDOFWHOIS, "%.*s :End of /WHOIS list.", nn,
            nick->p);
    return;
  }
  numeric(c, EDDY_IRC_RPL_WHOISUSER, "%s %s %s * :%s", w->nick, w->user,
          w->host, w->real);
  head = (size_t)snprintf(buf, sizeof buf, ":%s 319 %s %s :", c->srv->name,
                          c->nick, w->nick);
  len = head;
  for (member *mb = w->chans; mb; mb = mb->unext) {
    char pre[3];
    size_t n = mb->ch->len + 2;
    if (w->invisible && w != c && !membership(c, mb->ch))
      continue;
    if (len > head && len + 1 + n > EDDY_IRC_BODY_MAX) {
      buf[len++] = '\r';
      buf[len++] = '\n';
      send_line(c, buf, len, false);
      len = head;
    }
    if (len > head)
      buf[len++] = ' ';
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
                            prefixes(mb, c, pre), mb->ch->name);
  }
  if (len > head) {
    buf[len++] = '\r';
    buf[len++] = '\n';
    send_line(c, buf, len, false);
  }
  numeric(c, EDDY_IRC_RPL_WHOISSERVER, "%s %s :eddy", w->nick, c->srv->name);
  if (w->away)
    numeric(c, EDDY_IRC_RPL_AWAY, "%s :%s", w->nick, w->away);
  numeric(c, EDDY_IRC_RPL_WHOISIDLE,
          "%s %" PRId64 " %" PRId64 " :seconds idle, signon time", w->nick,
          wall_s() - (w->last_talk ? w->last_talk : w->signon), w->signon);
  numeric(c, EDDY_IRC_RPL_ENDOFWHOIS, "%s :End of /WHOIS list.", w->nick);
}

static void list_one(client *c, channel *ch) {
  numeric(c, EDDY_IRC_RPL_LIST, "%s %zu :%s", ch->name, ch->nmembers,
          ch->topic ? ch->topic : "");
}

static void cmd_list(client *c, const eddy_irc_msg_t *m) {
  char names[EDDY_IRC_LINE_MAX + 1];
  const char *list = param(m, 0, names, sizeof names), *item;
  size_t n;
  numeric(c, EDDY_IRC_RPL_LISTSTART, "Channel :Users  Name");
  if (list) {
    while (next_item(&list, &item, &n)) {
      channel *ch = find_channel(c->srv, item, n);
      if (ch)
        list_one(c, ch);
    }
  } else {
    for (size_t b = 0; b < c->srv->chans.nb && !c->dead; b++)
      for (entry *e = c->srv->chans.b[b]; e; e = e->next)
        list_one(c, (channel *)e);
  }
  numeric(c, EDDY_IRC_RPL_LISTEND, ":End of /LIST");
}

static void cmd_ison(client *c, const eddy_irc_msg_t *m) {
  char out[EDDY_IRC_LINE_MAX + 1];
  size_t len = 0;
  for (unsigned i = 0; i < m->nparams; i++) {
    const char *p = m->params[i].p, *end = p + m->params[i].n;
    while (p < end) {
      const char *sp = memchr(p, ' ', (size_t)(end - p));
      size_t n = sp ? (size_t)(sp - p) : (size_t)(end - p);
      client *w = n ? find_nick(c->srv, p, n) : NULL;
      if (w && w->registered && len + strlen(w->nick) + 1 < 400) {
        len += (size_t)snprintf(out + len, sizeof out - len, "%s%s",
                                len ? " " : "", w->nick);
      }
      p += n + (sp != NULL);
    }
  }
  out[len] = '\0';
  numeric(c, EDDY_IRC_RPL_ISON, ":%s", out);
}

static void cmd_away(client *c, const eddy_irc_msg_t *m) {
  size_t n;
  eddy__free(c->away);
  c->away = NULL;
  if (m->nparams == 0 || m->params[0].n == 0) {
    numeric(c, EDDY_IRC_RPL_UNAWAY, ":You are no longer marked as being away");
    return;
  }
  n = eddy_irc_fit(m->params[0].p, m->params[0].n, AWAYLEN);
  if ((c->away = eddy__malloc(n + 1)) == NULL) {
    client_quit(c, "Out of memory", true);
    return;
  }
  memcpy(c->away, m->params[0].p, n);
  c->away[n] = '\0';
  numeric(c, EDDY_IRC_RPL_NOWAWAY, ":You have been marked as being away");
}

static void kick_one(client *c, channel *ch, const char *nick, size_t n,
                     const char *reason) {
  client *v = find_nick(c->srv, nick, n);
  member *vm = v ? membership(v, ch) : NULL;
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  size_t len;
  if (v == NULL) {
    numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel",
            shown(nick, n, NICKLEN + 10), nick);
    return;
  }
  if (vm == NULL) {
    numeric(c, EDDY_IRC_ERR_USERNOTINCHANNEL,
            "%s %s :They aren't on that channel", v->nick, ch->name);
    return;
  }
  len = format(buf, ":%s KICK %s %s :%s", source(c, src, sizeof src), ch->name,
               v->nick, reason);
  to_channel(ch, NULL, buf, len);
  member_remove(vm);
}

static void cmd_kick(client *c, const eddy_irc_msg_t *m) {
  channel *ch = channel_or_403(c, &m->params[0]);
  member *mb;
  char nicks[EDDY_IRC_LINE_MAX + 1], reason[KICKLEN + 1];
  const char *list, *item;
  size_t n;
  if (ch == NULL || (mb = member_or_442(c, ch)) == NULL || !op_or_482(c, mb))
    return;
  if (m->nparams < 3 || m->params[2].n == 0)
    snprintf(reason, sizeof reason, "%s", c->nick);
  else
    snprintf(reason, sizeof reason, "%.*s",
             (int)eddy_irc_fit(m->params[2].p, m->params[2].n, KICKLEN),
             m->params[2].p);
  list = param(m, 1, nicks, sizeof nicks);
  /* The channel goes with its last member: stop once the kicker, its
   * operator, has kicked itself out. */
  while (next_item(&list, &item, &n) && membership(c, ch))
    kick_one(c, ch, item, n, reason);
}

static void cmd_invite(client *c, const eddy_irc_msg_t *m) {
  client *v = find_nick(c->srv, m->params[0].p, m->params[0].n);
  channel *ch;
  member *mb;
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  if (v == NULL || !v->registered) {
    numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel",
            shown(m->params[0].p, m->params[0].n, NICKLEN + 10),
            m->params[0].p);
    return;
  }
  if ((ch = channel_or_403(c, &m->params[1])) == NULL ||
      (mb = member_or_442(c, ch)) == NULL)
    return;
  if (membership(v, ch)) {
    numeric(c, EDDY_IRC_ERR_USERONCHANNEL, "%s %s :is already on channel",
            v->nick, ch->name);
    return;
  }
  if ((ch->modes & CMODE_INVITE) && !op_or_482(c, mb))
    return;
  invite_add(v, ch);
  numeric(c, EDDY_IRC_RPL_INVITING, "%s %s", v->nick, ch->name);
  if (v->away)
    numeric(c, EDDY_IRC_RPL_AWAY, "%s :%s", v->nick, v->away);
  send_line(v, buf,
            format(buf, ":%s INVITE %s :%s", source(c, src, sizeof src),
                   v->nick, ch->name),
            true);
}

/* ---- MODE ---- */

static void channel_modes_text(const channel *ch, bool with_key, char *out,
                               size_t cap) {
  size_t n = 0;
  out[n++] = '+';
  if (ch->modes & CMODE_INVITE)
    out[n++] = 'i';
  if (ch->modes & CMODE_KEY)
    out[n++] = 'k';
  if (ch->modes & CMODE_LIMIT)
    out[n++] = 'l';
  if (ch->modes & CMODE_MODERATED)
    out[n++] = 'm';
  if (ch->modes & CMODE_NOEXTERNAL)
    out[n++] = 'n';
  if (ch->modes & CMODE_TOPIC)
    out[n++] = 't';
  out[n] = '\0';
  if ((ch->modes & CMODE_KEY) && with_key)
    n += (size_t)snprintf(out + n, cap - n, " %s", ch->key);
  if (ch->modes & CMODE_LIMIT)
    snprintf(out + n, cap - n, " %u", ch->limit);
}

/* A ban mask as given, completed to nick!user@host ("bob" is "bob!*@*",
 * "*@host" is "*!*@host"). */
static void normalize_mask(const char *p, size_t n, char *out, size_t cap) {
  const char *bang = memchr(p, '!', n), *at = memchr(p, '@', n);
  if (bang && at)
    snprintf(out, cap, "%.*s", (int)n, p);
  else if (at)
    snprintf(out, cap, "*!%.*s", (int)n, p);
  else if (bang)
    snprintf(out, cap, "%.*s@*", (int)n, p);
  else
    snprintf(out, cap, "%.*s!*@*", (int)n, p);
}

static void send_bans(client *c, channel *ch) {
  for (ban *b = ch->bans; b; b = b->next)
    numeric(c, EDDY_IRC_RPL_BANLIST, "%s %s %s %" PRId64, ch->name, b->mask,
            b->setter, b->when);
  numeric(c, EDDY_IRC_RPL_ENDOFBANLIST, "%s :End of Channel Ban List",
          ch->name);
}

/* Adds (or with del, removes) a ban; true if the list changed. */
static bool ban_change(client *c, channel *ch, const char *mask, bool del) {
  ban **p, *b;
  char src[SOURCE_MAX + 1];
  size_t n = strlen(mask);
  for (p = &ch->bans; *p; p = &(*p)->next)
    if (eddy_irc_equal(CM, (*p)->mask, strlen((*p)->mask), mask, n))
      break;
  if (del) {
    if ((b = *p) == NULL)
      return false;
    *p = b->next;
    ch->nbans--;
    eddy__free(b->setter);
    eddy__free(b);
    return true;
  }
  if (*p || ch->nbans >= MAXBANS)
    return false;
  if ((b = eddy__malloc(sizeof *b + n + 1)) == NULL)
    return false;
  memcpy(b->mask, mask, n + 1);
  source(c, src, sizeof src);
  if ((b->setter = eddy__malloc(strlen(src) + 1)) == NULL) {
    eddy__free(b);
    return false;
  }
  memcpy(b->setter, src, strlen(src) + 1);
  b->when = wall_s();
  b->next = NULL;
  *p = b;
  ch->nbans++;
  return true;
}

static void channel_mode(client *c, channel *ch, const eddy_irc_msg_t *m) {
  member *mb = membership(c, ch);
  char changes[64], args[EDDY_IRC_LINE_MAX + 1];
  size_t nchanges = 0, nargs = 0;
  char last_sign = 0;
  unsigned next = 2, with_param = 0;
  bool sign = true, denied = false;
  const char *modes = m->params[1].p, *end = modes + m->params[1].n;
  args[0] = '\0';
  for (const char *p = modes; p < end; p++) {
    char mc = *p, arg[EDDY_IRC_LINE_MAX + 1];
    bool applied = false, needs, takes;
    const char *said = NULL;
    if (mc == '+' || mc == '-') {
      sign = mc == '+';
      continue;
    }
    if (!strchr("ovkblimnt", mc)) {
      numeric(c, EDDY_IRC_ERR_UNKNOWNMODE, "%c :is unknown mode char to me",
              mc);
      continue;
    }
    /* o, v, b, +k and +l need a parameter; -k takes one if it is there. */
    needs = strchr("ovb", mc) || (sign && strchr("kl", mc));
    if (needs && next >= m->nparams) {
      if (mc == 'b')
        send_bans(c, ch); /* no mask: the list */
      else if (mc == 'o' || mc == 'v')
        need_more(c, "MODE");
      continue;
    }
    takes = needs || (mc == 'k' && next < m->nparams);
    if (mb == NULL || !(mb->modes & MEMBER_OP)) {
      if (!denied)
        numeric(c, EDDY_IRC_ERR_CHANOPRIVSNEEDED,
                "%s :You're not channel operator", ch->name);
      denied = true;
      next += takes;
      continue;
    }
    if (takes) {
      if (++with_param > MODES_MAX)
        break;
      param(m, next++, arg, sizeof arg);
    }
    switch (mc) {
    case 'o':
    case 'v': {
      unsigned bit = mc == 'o' ? MEMBER_OP : MEMBER_VOICE;
      client *v = find_nick(c->srv, arg, strlen(arg));
      member *vm = v ? membership(v, ch) : NULL;
      if (v == NULL) {
        numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel",
                shown(arg, strlen(arg), NICKLEN + 10), arg);
        break;
      }
      if (vm == NULL) {
        numeric(c, EDDY_IRC_ERR_USERNOTINCHANNEL,
                "%s %s :They aren't on that channel", v->nick, ch->name);
        break;
      }
      if (sign != !!(vm->modes & bit)) {
        vm->modes = sign ? vm->modes | bit : vm->modes & ~bit;
        applied = true;
        said = v->nick;
      }
      break;
    }
    case 'b': {
      char mask[SOURCE_MAX + 32];
      if (arg[0] == '\0' || arg[0] == ':' || strpbrk(arg, " ,") ||
          strlen(arg) > SOURCE_MAX)
        break;
      normalize_mask(arg, strlen(arg), mask, sizeof mask);
      if (ban_change(c, ch, mask, !sign)) {
        applied = true;
        snprintf(arg, sizeof arg, "%s", mask);
        said = arg;
      }
      break;
    }
    case 'k':
      if (sign) {
        size_t n = strcspn(arg, " ,:");
        if (n == 0)
          break;
        snprintf(ch->key, sizeof ch->key, "%.*s", (int)n, arg);
        ch->modes |= CMODE_KEY;
        applied = true;
        said = ch->key;
      } else if (ch->modes & CMODE_KEY) {
        ch->modes &= ~CMODE_KEY;
        applied = true;
        said = "*";
        ch->key[0] = '\0';
      }
      break;
    case 'l':
      if (sign) {
        long v = strtol(arg, NULL, 10);
        if (v <= 0 || v > 100000)
          break;
        ch->limit = (unsigned)v;
        ch->modes |= CMODE_LIMIT;
        applied = true;
        snprintf(arg, sizeof arg, "%u", ch->limit);
        said = arg;
      } else if (ch->modes & CMODE_LIMIT) {
        ch->modes &= ~CMODE_LIMIT;
        applied = true;
      }
      break;
    default: {
      unsigned bit = mc == 'i'   ? CMODE_INVITE
                     : mc == 'm' ? CMODE_MODERATED
                     : mc == 'n' ? CMODE_NOEXTERNAL
                                 : CMODE_TOPIC;
      if (sign != !!(ch->modes & bit)) {
        ch->modes = sign ? ch->modes | bit : ch->modes & ~bit;
        applied = true;
      }
    }
    }
    if (!applied || nchanges + 3 >= sizeof changes)
      continue;
    if (last_sign != (sign ? '+' : '-'))
      changes[nchanges++] = last_sign = sign ? '+' : '-';
    changes[nchanges++] = mc;
    if (said)
      nargs += (size_t)snprintf(args + nargs, sizeof args - nargs, " %s", said);
  }
  if (nchanges > 0) {
    char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
    size_t len;
    changes[nchanges] = '\0';
    len = format(buf, ":%s MODE %s %s%s", source(c, src, sizeof src), ch->name,
                 changes, args);
    to_channel(ch, NULL, buf, len);
  }
}

static void user_mode(client *c, const eddy_irc_msg_t *m) {
  bool sign = true, unknown = false;
  int change = 0;
  if (!eddy_irc_equal(CM, c->nick, strlen(c->nick), m->params[0].p,
                      m->params[0].n)) {
    if (find_nick(c->srv, m->params[0].p, m->params[0].n) == NULL)
      numeric(c, EDDY_IRC_ERR_NOSUCHNICK, "%.*s :No such nick/channel",
              shown(m->params[0].p, m->params[0].n, NICKLEN + 10),
              m->params[0].p);
    else
      numeric(c, EDDY_IRC_ERR_USERSDONTMATCH,
              ":Can't change mode for other users");
    return;
  }
  if (m->nparams < 2) {
    numeric(c, EDDY_IRC_RPL_UMODEIS, "+%s", c->invisible ? "i" : "");
    return;
  }
  for (size_t i = 0; i < m->params[1].n; i++) {
    char mc = m->params[1].p[i];
    if (mc == '+' || mc == '-')
      sign = mc == '+';
    else if (mc == 'i') {
      if (sign != c->invisible) {
        c->invisible = sign;
        c->srv->ninvisible += sign ? 1 : (size_t)-1;
        change = sign ? 1 : -1;
      }
    } else
      unknown = true;
  }
  if (unknown)
    numeric(c, EDDY_IRC_ERR_UMODEUNKNOWNFLAG, ":Unknown MODE flag");
  if (change)
    server_line(c, ":%s MODE %s :%ci", c->nick, c->nick,
                change > 0 ? '+' : '-');
}

static void cmd_mode(client *c, const eddy_irc_msg_t *m) {
  channel *ch;
  if (!is_channel_name(m->params[0].p, m->params[0].n)) {
    user_mode(c, m);
    return;
  }
  if ((ch = channel_or_403(c, &m->params[0])) == NULL)
    return;
  if (m->nparams < 2) {
    char text[64];
    channel_modes_text(ch, membership(c, ch) != NULL, text, sizeof text);
    numeric(c, EDDY_IRC_RPL_CHANNELMODEIS, "%s %s", ch->name, text);
    numeric(c, EDDY_IRC_RPL_CREATIONTIME, "%s %" PRId64, ch->name, ch->created);
    return;
  }
  channel_mode(c, ch, m);
}

static void cmd_userhost(client *c, const eddy_irc_msg_t *m) {
  char out[EDDY_IRC_LINE_MAX + 1];
  size_t len = 0;
  for (unsigned i = 0; i < m->nparams && i < 5; i++) {
    client *w = find_nick(c->srv, m->params[i].p, m->params[i].n);
    if (w && w->registered && len < 300)
      len += (size_t)snprintf(out + len, sizeof out - len, "%s%s=%c%s@%s",
                              len ? " " : "", w->nick, w->away ? '-' : '+',
                              w->user, w->host);
  }
  out[len] = '\0';
  numeric(c, EDDY_IRC_RPL_USERHOST, ":%s", out);
}

/* No history is kept: every nick "was no such nickname". */
static void cmd_whowas(client *c, const eddy_irc_msg_t *m) {
  int n = shown(m->params[0].p, m->params[0].n, NICKLEN + 10);
  numeric(c, EDDY_IRC_ERR_WASNOSUCHNICK, "%.*s :There was no such nickname", n,
          m->params[0].p);
  numeric(c, EDDY_IRC_RPL_ENDOFWHOWAS, "%.*s :End of WHOWAS", n,
          m->params[0].p);
}

static void cmd_motd(client *c, const eddy_irc_msg_t *m) {
  (void)m;
  send_motd(c);
}

static void cmd_lusers(client *c, const eddy_irc_msg_t *m) {
  (void)m;
  send_lusers(c);
}

static void cmd_version(client *c, const eddy_irc_msg_t *m) {
  (void)m;
  numeric(c, EDDY_IRC_RPL_VERSION, "eddy %s :", c->srv->name);
}

static void cmd_time(client *c, const eddy_irc_msg_t *m) {
  char text[64];
  time_t t = time(NULL);
  struct tm tm;
  (void)m;
  gmtime_r(&t, &tm);
  strftime(text, sizeof text, "%A %B %d %Y -- %H:%M:%S +00:00", &tm);
  numeric(c, EDDY_IRC_RPL_TIME, "%s :%s", c->srv->name, text);
}

static const command commands[] = {
    {"PRIVMSG", 0, false, cmd_privmsg}, {"NOTICE", 0, false, cmd_notice},
    {"PING", 0, true, cmd_ping},        {"PONG", 0, true, cmd_pong},
    {"JOIN", 1, false, cmd_join},       {"PART", 1, false, cmd_part},
    {"NICK", 0, true, cmd_nick},        {"USER", 4, true, cmd_user},
    {"PASS", 1, true, cmd_pass},        {"CAP", 1, true, cmd_cap},
    {"QUIT", 0, true, cmd_quit},        {"NAMES", 0, false, cmd_names},
    {"TOPIC", 1, false, cmd_topic},     {"WHO", 0, false, cmd_who},
    {"WHOIS", 0, false, cmd_whois},     {"LIST", 0, false, cmd_list},
    {"ISON", 1, false, cmd_ison},       {"AWAY", 0, false, cmd_away},
    {"KICK", 2, false, cmd_kick},       {"INVITE", 2, false, cmd_invite},
    {"MODE", 1, false, cmd_mode},       {"USERHOST", 1, false, cmd_userhost},
    {"WHOWAS", 1, false, cmd_whowas},   {"MOTD", 0, false, cmd_motd},
    {"LUSERS", 0, false, cmd_lusers},   {"VERSION", 0, false, cmd_version},
    {"TIME", 0, false, cmd_time},
};

static void dispatch(client *c, const eddy_irc_msg_t *m) {
  const command *cmd = NULL;
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (eddy_irc_command_is(m, commands[i].name)) {
      cmd = &commands[i];
      break;
    }
  if (cmd == NULL) {
    if (c->registered)
      numeric(c, EDDY_IRC_ERR_UNKNOWNCOMMAND, "%.*s :Unknown command",
              (int)m->command.n, m->command.p);
    else
      numeric(c, EDDY_IRC_ERR_NOTREGISTERED, ":You have not registered");
    return;
  }
  if (!c->registered && !cmd->before) {
    numeric(c, EDDY_IRC_ERR_NOTREGISTERED, ":You have not registered");
    return;
  }
  if (m->nparams < cmd->min) {
    need_more(c, cmd->name);
    return;
  }
  if (cmd->fn == cmd_nick && m->nparams == 0) {
    numeric(c, EDDY_IRC_ERR_NONICKNAMEGIVEN, ":No nickname given");
    return;
  }
  if (cmd->fn != cmd_ping && cmd->fn != cmd_pong)
    c->last_talk = wall_s();
  cmd->fn(c, m);
}

/* ---- Flood control ---- */

static unsigned allowance(const client *c) {
  unsigned per_s = c->srv->o.flood_lines;
  return c->flood_done ? per_s : per_s * FLOOD_BURST;
}

/* Each tick (a second, or a quarter of the ping timeout if that is less):
 * once a second the lines a client may have had handled go down by a
 * second's worth, and a client held by flood control is let go on; a
 * client silent for the ping timeout is sent a PING, or dropped. */
static void on_tick(eddy_timer *t, void *arg) {
  eddy_irc_server *srv = arg;
  int64_t now = eddy_loop_now(srv->loop);
  /* A second has passed, give or take the timer's lateness: the tick's
   * repeats keep their schedule while its callbacks may run late. */
  bool second = now - srv->flood_at >= NS_PER_S - NS_PER_S / 8;
  (void)t;
  if (second)
    srv->flood_at = now;
  /* Should the reaper have failed to start (its timer could not be put
   * in the heap), the tick does its work. */
  if ((srv->doomed || srv->dead) && !eddy_timer_active(srv->reaper))
    reap(NULL, srv);
  for (client *c = srv->clients, *next; c; c = next) {
    next = c->next;
    if (c->dead || c->doomed)
      continue;
    if (second)
      c->parsed = c->parsed > c->srv->o.flood_lines
                      ? c->parsed - c->srv->o.flood_lines
                      : 0;
    if (c->paused && c->parsed < allowance(c)) {
      c->paused = false;
      eddy_line_resume(c->lr);
    }
    if (now - c->last_rx >= srv->ping_ns) {
      if (!c->registered) {
        client_quit(c, "Registration timed out", true);
      } else if (!c->ping_sent) {
        c->ping_sent = true;
        c->last_rx = now;
        server_line(c, "PING :%s", srv->name);
      } else {
        char why[64];
        snprintf(why, sizeof why, "Ping timeout: %" PRId64 " seconds",
                 srv->ping_ns / NS_PER_S);
        client_quit(c, why, true);
      }
    }
  }
}

/* ---- Clients ---- */

static void on_line(eddy_line *lr, const char *line, size_t len, void *arg) {
  client *c = arg;
  eddy_irc_msg_t m;
  int rc;
  if (c->dead || c->doomed)
    return;
  c->last_rx = eddy_loop_now(c->srv->loop);
  c->ping_sent = false;
  rc = eddy_irc_parse(line, len, EDDY_IRC_PARSE_CLIENT, &m);
  if (rc == EDDY_ETOOLONG)
    numeric(c, EDDY_IRC_ERR_INPUTTOOLONG, ":Input line was too long");
  else if (rc == 0)
    dispatch(c, &m);
  if (!c->dead && ++c->parsed >= allowance(c)) {
    c->paused = true;
    eddy_line_pause(lr);
  }
}

static void on_too_long(eddy_line *lr, const char *start, size_t len,
                        void *arg) {
  client *c = arg;
  (void)start, (void)len;
  if (c->dead || c->doomed)
    return;
  numeric(c, EDDY_IRC_ERR_INPUTTOOLONG, ":Input line was too long");
  /* It counts as a line for flood control: a stream of them is paced. */
  if (++c->parsed >= allowance(c)) {
    c->paused = true;
    eddy_line_pause(lr);
  }
}

static void client_free(client *c) {
  eddy_irc_server *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nclients--;
  eddy__free(c->away);
  eddy__free(c);
}

static void on_close(eddy_line *lr, int status, const char *detail, void *arg) {
  client *c = arg;
  eddy_irc_server *srv = c->srv;
  (void)lr, (void)detail;
  if (!c->dead) {
    char why[96];
    if (status == 0)
      snprintf(why, sizeof why, "Remote host closed the connection");
    else
      snprintf(why, sizeof why, "Read error: %s", eddy_strerror(status));
    client_quit(c, why, false);
  }
  /* Still on the reaper's list: it must not see c again. */
  for (client **p = &srv->dead; *p; p = &(*p)->dead_next)
    if (*p == c) {
      *p = c->dead_next;
      break;
    }
  client_free(c);
  if (srv->o.closed)
    srv->o.closed(srv, srv->o.arg);
}

static void on_eof(eddy_line *lr, const char *rest, size_t len, void *arg) {
  client *c = arg;
  if (len > 0)
    on_line(lr, rest, len, arg);
  if (!c->dead)
    client_quit(c, "Remote host closed the connection", false);
}

/* The reaper, on the turn after a client was doomed or quit: the doomed
 * quit now, outside any broadcast (quitting may doom others: the loop
 * takes them too), then the streams of those that quit are closed, once
 * what is queued for them is sent; a doomed one's are aborted, as what
 * is queued for it would not leave. */
static void reap(eddy_timer *t, void *arg) {
  eddy_irc_server *srv = arg;
  (void)t;
  while (srv->doomed) {
    client *c = srv->doomed;
    srv->doomed = c->doomed_next;
    c->doomed_next = NULL;
    client_quit(c, c->dead_reason, false);
  }
  while (srv->dead) {
    client *c = srv->dead;
    srv->dead = c->dead_next;
    c->dead_next = NULL;
    if (c->abort)
      eddy_stream_abort(c->s);
    else
      eddy_stream_close(c->s);
  }
}

static void reap_soon(eddy_irc_server *srv) {
  if (srv->reaper && !eddy_timer_active(srv->reaper))
    (void)eddy_timer_start(srv->reaper, 0, 0);
}

/* Marks c to be dropped on the next turn: from inside a broadcast, which
 * walks member lists a quit would change. */
static void client_doom(client *c, const char *reason) {
  eddy_irc_server *srv = c->srv;
  if (c->dead || c->doomed)
    return;
  c->doomed = true;
  /* What is queued for it would never leave, or not whole. */
  c->abort = true;
  snprintf(c->dead_reason, sizeof c->dead_reason, "%s", reason);
  c->doomed_next = srv->doomed;
  srv->doomed = c;
  reap_soon(srv);
}

/* c leaves: its channels see QUIT with the reason, it gets an ERROR (with
 * echo, for a quit it asked for or a server verdict it should read), and
 * its stream is closed on the next turn. Never frees c: the stream's close
 * callback does. Safe during a broadcast: only c's own lists change. */
static void client_quit(client *c, const char *reason, bool echo) {
  eddy_irc_server *srv = c->srv;
  char buf[EDDY_IRC_LINE_MAX + 1], src[SOURCE_MAX + 1];
  if (c->dead)
    return;
  if (echo && !c->doomed)
    server_line(c, "ERROR :Closing Link: %s (%s)", c->host, reason);
  c->dead = true;
  if (reason != c->dead_reason)
    snprintf(c->dead_reason, sizeof c->dead_reason, "%s", reason);
  if (c->doomed) {
    /* Quitting before the reaper reached it: off the doomed list. */
    for (client **p = &srv->doomed; *p; p = &(*p)->doomed_next)
      if (*p == c) {
        *p = c->doomed_next;
        break;
      }
  }
  if (c->registered && !srv->stopping) {
    size_t len = format(buf, ":%s QUIT :%s", source(c, src, sizeof src),
                        reason);
    to_peers(c, false, buf, len);
  }
  if (c->registered) {
    srv->nregistered--;
    if (c->invisible)
      srv->ninvisible--;
  }
  while (c->chans)
    member_remove(c->chans);
  nick_unlink(c);
  c->has_nick = false;
  c->dead_next = srv->dead;
  srv->dead = c;
  reap_soon(srv);
}

/* The client's address as its host part: "127.0.0.1", "0::1" (an IPv6
 * address starting with ':' would read as a trailing parameter: "0"
 * before it, as servers do), or "localhost" for a Unix socket. */
static void host_of(eddy_stream *s, char host[HOSTLEN + 1]) {
  char peer[128];
  const char *start = peer, *end;
  size_t n = 0;
  if (eddy_stream_peer_name(s, peer, sizeof peer) != 0 ||
      strncmp(peer, "unix:", 5) == 0 || strcmp(peer, "pipe") == 0) {
    memcpy(host, "localhost", sizeof "localhost");
    return;
  }
  if (peer[0] == '[') {
    start = peer + 1;
    end = strchr(start, ']');
    if (start[0] == ':')
      host[n++] = '0';
  } else {
    end = strrchr(peer, ':');
  }
  if (end == NULL)
    end = start + strlen(start);
  while (start < end && n < HOSTLEN)
    host[n++] = *start++;
  host[n] = '\0';
}

int eddy_irc_server_serve(eddy_irc_server *srv, eddy_stream *s) {
  static const eddy_line_callbacks cb = {.line = on_line,
                                         .too_long = on_too_long,
                                         .eof = on_eof,
                                         .close = on_close};
  eddy_line_options lo = {.max_length = EDDY_IRC_WIRE_MAX};
  client *c;
  int err;
  if (srv->stopping) {
    eddy_stream_abort(s);
    return EDDY_ECLOSED;
  }
  if ((c = eddy__calloc(1, sizeof *c)) == NULL) {
    eddy_stream_abort(s);
    return -ENOMEM;
  }
  c->srv = srv;
  c->s = s;
  c->pass_ok = srv->password == NULL;
  c->last_rx = eddy_loop_now(srv->loop);
  host_of(s, c->host);
  /* Small lines, written once a turn: Nagle's wait would only delay them
   * (not a TCP stream, or not allowed: nothing to turn off). */
  (void)eddy_stream_set_nodelay(s, 1);
  if ((err = eddy_stream_set_coalesce(s, 1)) != 0 ||
      (err = eddy_line_open(s, &lo, &cb, c, &c->lr)) != 0) {
    eddy__free(c);
    eddy_stream_abort(s);
    return err;
  }
  c->next = srv->clients;
  if (srv->clients)
    srv->clients->prev = c;
  srv->clients = c;
  srv->nclients++;
  if (srv->nclients > srv->o.max_clients) {
    client_quit(c, "Sorry, server is full - try later", true);
  }
  return 0;
}

/* ---- The server ---- */

static char *dup_str(const char *s) {
  size_t n;
  char *d;
  if (s == NULL)
    return NULL;
  n = strlen(s) + 1;
  if ((d = eddy__malloc(n)) != NULL)
    memcpy(d, s, n);
  return d;
}

int eddy_irc_server_new(eddy_loop *loop, const eddy_irc_server_options *options,
                        eddy_irc_server **out) {
  eddy_irc_server_options o = {0};
  eddy_irc_server *srv;
  time_t now = time(NULL);
  struct tm tm;
  int err;
  if (options)
    o = *options;
  if (o.name == NULL)
    o.name = "irc.eddy.local";
  if (o.network == NULL)
    o.network = "eddy";
  if (o.name[0] == '\0' || strpbrk(o.name, " \r\n:") || o.network[0] == '\0' ||
      strpbrk(o.network, " \r\n:") || strlen(o.name) > HOSTLEN ||
      strlen(o.network) > 64)
    return -EINVAL;
  if (o.max_clients == 0)
    o.max_clients = 10000;
  if (o.ping_timeout <= 0)
    o.ping_timeout = 120;
  if (o.sendq == 0)
    o.sendq = 512 * 1024;
  if (o.flood_lines == 0)
    o.flood_lines = 5;
  if ((srv = eddy__calloc(1, sizeof *srv)) == NULL)
    return -ENOMEM;
  srv->loop = loop;
  srv->o = o;
  srv->ping_ns = (int64_t)(o.ping_timeout * 1e9);
  srv->name = dup_str(o.name);
  srv->network = dup_str(o.network);
  srv->motd = dup_str(o.motd);
  srv->password = dup_str(o.password);
  srv->tag_ms = -1;
  gmtime_r(&now, &tm);
  strftime(srv->created_text, sizeof srv->created_text,
           "%a %b %d %Y at %H:%M:%S UTC", &tm);
  err = -ENOMEM;
  if (srv->name == NULL || srv->network == NULL ||
      (o.motd && srv->motd == NULL) || (o.password && srv->password == NULL) ||
      (err = eddy_timer_new(loop, reap, srv, &srv->reaper)) != 0 ||
      (err = eddy_timer_new(loop, on_tick, srv, &srv->tick)) != 0 ||
      (err = eddy_timer_start(
           srv->tick,
           NS_PER_S / 4 < srv->ping_ns / 4 ? NS_PER_S : srv->ping_ns / 4,
           NS_PER_S / 4 < srv->ping_ns / 4 ? NS_PER_S : srv->ping_ns / 4)) !=
          0) {
    eddy_irc_server_free(srv);
    return err;
  }
  *out = srv;
  return 0;
}

int eddy_irc_server_keep_channel(eddy_irc_server *srv, const char *channel_name,
                                 const char *topic) {
  size_t n = strlen(channel_name);
  channel *ch;
  if (!eddy_irc_channel_valid(channel_name, n, CHANNELLEN))
    return -EINVAL;
  if ((ch = find_channel(srv, channel_name, n)) == NULL &&
      (ch = channel_new(srv, channel_name, n)) == NULL)
    return -ENOMEM;
  ch->kept = true;
  if (topic && ch->topic == NULL && *topic) {
    size_t tn = eddy_irc_fit(topic, strlen(topic), TOPICLEN);
    if ((ch->topic = eddy__malloc(tn + 1)) == NULL)
      return -ENOMEM;
    memcpy(ch->topic, topic, tn);
    ch->topic[tn] = '\0';
    ch->topic_time = wall_s();
  }
  return 0;
}

int eddy_irc_server_say(eddy_irc_server *srv, const char *channel_name,
                        const char *nick, const char *user, const char *host,
                        const char *text, size_t len) {
  char buf[EDDY_IRC_LINE_MAX + 1], who[SOURCE_MAX + 1];
  size_t n = 0, head, room;
  channel *ch = find_channel(srv, channel_name, strlen(channel_name));
  int count = 0;
  if (ch == NULL)
    return -ENOENT;
  if (nick == NULL || *nick == '\0')
    return -EINVAL;
  /* The nick, made one: other bytes become '_', and a digit or '-' first
   * gets a '_' before it. */
  for (const char *p = nick; *p && n < NICKLEN; p++) {
    char b = *p;
    bool first = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                 strchr("[]\\`_^{|}", b) != NULL;
    bool later = (b >= '0' && b <= '9') || b == '-';
    if (n == 0 && later)
      who[n++] = '_';
    who[n++] = first || later ? b : '_';
  }
  snprintf(who + n, sizeof who - n, "!%s@%s", user ? user : "bridge",
           host ? host : srv->name);
  head = (size_t)snprintf(buf, sizeof buf, ":%s PRIVMSG %s :", who, ch->name);
  room = head < EDDY_IRC_BODY_MAX - 1 ? EDDY_IRC_BODY_MAX - head : 1;
  for (member *m = ch->members; m; m = m->next)
    count++;
  /* Text longer than a line goes as several, split at UTF-8 boundaries
   * (and at least a byte at a time, whatever the text). */
  while (len > 0) {
    size_t take = eddy_irc_fit(text, len, room), n_ = head;
    if (take == 0)
      take = 1;
    memcpy(buf + head, text, take);
    for (size_t i = head; i < head + take; i++)
      if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\0')
        buf[i] = ' ';
    n_ += take;
    buf[n_++] = '\r';
    buf[n_++] = '\n';
    for (member *m = ch->members; m; m = m->next)
      send_line(m->c, buf, n_, true);
    text += take;
    len -= take;
  }
  return count;
}

int eddy_irc_server_set_motd(eddy_irc_server *srv, const char *motd) {
  char *copy = dup_str(motd);
  if (motd && copy == NULL)
    return -ENOMEM;
  eddy__free(srv->motd);
  srv->motd = copy;
  return 0;
}

size_t eddy_irc_server_clients(const eddy_irc_server *srv) {
  return srv->nclients;
}

void eddy_irc_server_stop(eddy_irc_server *srv, const char *reason) {
  srv->stopping = true;
  for (client *c = srv->clients; c; c = c->next)
    if (!c->dead)
      client_quit(c, reason ? reason : "Server shutting down", true);
}

void eddy_irc_server_free(eddy_irc_server *srv) {
  if (srv == NULL)
    return;
  srv->o.closed = NULL;
  while (srv->clients) {
    client *c = srv->clients;
    if (!c->dead) {
      c->dead = true;
      while (c->chans)
        member_remove(c->chans);
    }
    srv->clients = c->next;
    /* The stream's close callback must not find c: give it none. */
    eddy_line_free(c->lr);
    eddy_stream_abort(c->s);
    eddy__free(c->away);
    eddy__free(c);
  }
  for (size_t b = 0; b < srv->chans.nb; b++)
    while (srv->chans.b[b])
      channel_free(srv, (channel *)srv->chans.b[b]);
  eddy__free(srv->chans.b);
  eddy__free(srv->nicks.b);
  if (srv->reaper)
    eddy_timer_close(srv->reaper);
  if (srv->tick)
    eddy_timer_close(srv->tick);
  eddy__free(srv->name);
  eddy__free(srv->network);
  eddy__free(srv->motd);
  eddy__free(srv->password);
  eddy__free(srv);
}
