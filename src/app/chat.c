/* chat.c: `eddy chat --listen ENDPOINT... [--line ENDPOINT...]`: one chat
 * room shared by browsers, terminals and scripts.
 *
 * The web side (--listen, HTTP/1.1, HTTPS on tls: endpoints):
 *
 *   GET /               the page (src/app/chat/, embedded at build time)
 *   GET /chat.css, /chat.js
 *   GET /ws             WebSocket: JSON text messages both ways
 *   GET /events         server-sent events, one event per message, with
 *                       "id:" (Last-Event-ID resumes after it)
 *   GET /poll?since=ID  long-poll: a JSON array of the messages after ID,
 *                       held until there is one, or 25 s ([])
 *   POST /send          one message: 204, or 400 {"error": ...}
 *
 * A message from a client is {"name": ..., "text": ...}; what web clients
 * receive is the same object with "id" (increasing, from 1) and "time"
 * (milliseconds since the epoch) added.
 *
 * The IRC side (--irc, any IRC client): an IRC server (eddy/irc.h) whose
 * channel #chat is the room. What IRC clients say there is published as
 * {"name": nick, "text": text} (formatting codes and other control bytes
 * dropped); what the room's other clients say reaches #chat as a PRIVMSG
 * from "name!web@SERVER". The rest of that server is an ordinary one.
 *
 * The line side (--line, nc or telnet): a client's first line is its name;
 * each later line is a message; it receives every other client's message as
 * a line "name: text". Mistakes are answered "error: why" and the client
 * goes on.
 *
 * Names (1 to 32 bytes) and texts (1 to 1000 bytes) must be UTF-8 without
 * control characters; anything else is refused with a reason, never cut or
 * echoed raw. JSON is read and written with jansson.
 *
 * Every message goes through one publish/subscribe hub (eddy/comet.h): it
 * is encoded once per wire format in use (a WebSocket frame, an SSE event,
 * a line, the JSON for long-polls) and that one reference-counted block
 * is queued on every client of the format. The hub keeps the last
 * CHAT_HISTORY messages for /poll?since= and for SSE's Last-Event-ID. A
 * client more than CHAT_MAX_BACKLOG behind is disconnected (an
 * EventSource then comes back with its Last-Event-ID and catches up). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/chat.h"
#include "app/log.h"
#include "chat_assets.h"

#define CHAT_HISTORY 100
#define CHAT_POLL_HOLD_NS (25 * (int64_t)1000000000)
/* Longer lines are refused unread: a text has at most 1000 bytes. */
#define CHAT_LINE_MAX 4096
/* A named line client's TCP keep-alive, in seconds of silence. */
#define CHAT_KEEPALIVE_S 60

/* A line client (--line). */
typedef struct line_client {
  chat_link link;
  chat *chat;
  eddy_line *lr;
  eddy_comet_sub *sub;          /* once named */
  char name[CHAT_NAME_MAX + 1]; /* "" until its first line */
} line_client;

/* An SSE stream (GET /events). */
typedef struct chat_sse {
  chat_link link;
  chat *chat;
  eddy_comet_sse *sse;
} chat_sse;

/* A waiting long-poll (GET /poll). */
typedef struct chat_poll {
  chat_link link;
  chat *chat;
  eddy_comet_poll *p;
} chat_poll;

/* ---- Checking what clients send ------------------------------------------------ */

/* The length of the UTF-8 sequence at s[0, n), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included); the
 * code point in *cp. */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp) {
  size_t len;
  uint32_t c = s[0], min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, c &= 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, c &= 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, c &= 0x07, min = 0x10000;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    c = c << 6 | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return len;
}

/* Checks a name or a text: NULL if it may go to the room, else why not
 * (written into err). */
static const char *check_field(const char *what, const char *s, size_t len,
                               size_t max, char *err, size_t cap) {
  const unsigned char *p = (const unsigned char *)s;
  if (len == 0) {
    snprintf(err, cap, "%s is empty", what);
    return err;
  }
  if (len > max) {
    snprintf(err, cap, "%s is longer than %zu bytes", what, max);
    return err;
  }
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = utf8_char(p + i, len - i, &cp);
    if (n == 0) {
      snprintf(err, cap, "%s is not valid UTF-8", what);
      return err;
    }
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
      snprintf(err, cap, "%s has a control character", what);
      return err;
    }
    i += n;
  }
  return NULL;
}

/* Reads {"name": ..., "text": ...}: NULL with the fields set (pointing
 * into *root, which the caller frees), or why not. */
static const char *parse_message(const char *data, size_t len, json_t **root,
                                 const char **name, size_t *nlen,
                                 const char **text, size_t *tlen, char *err,
                                 size_t cap) {
  json_error_t je;
  json_t *n, *t;
  const char *why;
  *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (*root == NULL) {
    char tmp[64];
    /* jansson's reason may quote the input ("near '...'"): it is only
     * passed on if it is fit to be JSON text itself. */
    if (check_field("reason", je.text, strlen(je.text), sizeof je.text, tmp,
                    sizeof tmp) == NULL)
      snprintf(err, cap, "not JSON: %s", je.text);
    else
      snprintf(err, cap, "not JSON");
    return err;
  }
  n = json_object_get(*root, "name");
  t = json_object_get(*root, "text");
  if (!json_is_object(*root) || !json_is_string(n) || !json_is_string(t)) {
    snprintf(err, cap, "a message is {\"name\": string, \"text\": string}");
    return err;
  }
  *name = json_string_value(n);
  *nlen = json_string_length(n);
  *text = json_string_value(t);
  *tlen = json_string_length(t);
  if ((why = check_field("name", *name, *nlen, CHAT_NAME_MAX, err, cap)) ||
      (why = check_field("text", *text, *tlen, CHAT_TEXT_MAX, err, cap)))
    return why;
  return NULL;
}

char *chat_error_json(const char *why) {
  json_t *o = json_pack("{ss}", "error", why);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* ---- The room: the hub and its wire formats ------------------------------------- */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The JSON object as it is: a long-poll answer joins these with ",". */
static int encode_json(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  (void)arg;
  return eddy_buf_append(out, m->data, m->len);
}

/* "name: text\n", read back from the message's JSON: a line client's. */
static int encode_line(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  json_t *o = json_loadb(m->data, m->len, 0, NULL);
  json_t *n = json_object_get(o, "name"), *t = json_object_get(o, "text");
  int e = -EINVAL;
  (void)arg;
  if (json_is_string(n) && json_is_string(t) &&
      (e = eddy_buf_append(out, json_string_value(n), json_string_length(n))) ==
          0 &&
      (e = eddy_buf_append(out, ": ", 2)) == 0 &&
      (e = eddy_buf_append(out, json_string_value(t), json_string_length(t))) ==
          0)
    e = eddy_buf_append(out, "\n", 1);
  json_decref(o);
  return e;
}

/* The room's one entry: the message, with its id and time, published once;
 * the hub encodes it once per wire format in use and hands the same bytes
 * to every client of that format. Returns 0 or a negative code. */
static int chat_publish(chat *c, const void *from, const char *name,
                        size_t nlen, const char *text, size_t tlen) {
  /* The hub numbers messages from 1, one after another, and this process
   * publishes nothing else: the next id is known before the publish, so
   * that the JSON can carry it. */
  uint64_t id = eddy_comet_last_id(c->hub) + 1, got = 0;
  eddy_comet_msg m = {.time_ms = wall_ms(), .topic = CHAT_TOPIC};
  json_t *o = json_object();
  char *json = NULL;
  int e = -ENOMEM;
  if (o && json_object_set_new(o, "id", json_integer((json_int_t)id)) == 0 &&
      json_object_set_new(o, "time", json_integer(m.time_ms)) == 0 &&
      json_object_set_new(o, "name", json_stringn(name, nlen)) == 0 &&
      json_object_set_new(o, "text", json_stringn(text, tlen)) == 0 &&
      (json = json_dumps(o, JSON_COMPACT)) != NULL) {
    m.data = json;
    m.len = strlen(json);
    c->publisher = from;
    e = eddy_comet_publish(c->hub, &m, &got);
    c->publisher = NULL;
    if (e == 0 && got != id)
      app_log(LOG_WARN, "chat: message %" PRIu64 " was numbered %" PRIu64, id,
              got);
  }
  json_decref(o);
  free(json);
  return e;
}

int chat_post_json(chat *c, const void *from, const char *data, size_t len,
                   char *err, size_t cap) {
  json_t *root = NULL;
  const char *name = NULL, *text = NULL;
  size_t nlen = 0, tlen = 0;
  int e;
  if (parse_message(data, len, &root, &name, &nlen, &text, &tlen, err, cap)) {
    json_decref(root);
    return 1;
  }
  e = chat_publish(c, from, name, nlen, text, tlen);
  json_decref(root);
  return e;
}

/* ---- The IRC side ------------------------------------------------------------------ */

/* "name\0text", read back from the message's JSON: what #chat is told. */
static int encode_irc(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  json_t *o = json_loadb(m->data, m->len, 0, NULL);
  json_t *n = json_object_get(o, "name"), *t = json_object_get(o, "text");
  int e = -EINVAL;
  (void)arg;
  if (json_is_string(n) && json_is_string(t) &&
      (e = eddy_buf_append(out, json_string_value(n),
                           json_string_length(n) + 1)) == 0)
    e = eddy_buf_append(out, json_string_value(t), json_string_length(t));
  json_decref(o);
  return e;
}

/* A message of the room for #chat, unless it came from #chat. */
static void irc_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  chat *c = arg;
  const char *name = block;
  size_t nlen = strnlen(name, len);
  (void)sub;
  if (c->publisher != &c->irc && c->irc && nlen < len)
    (void)eddy_irc_server_say(c->irc, CHAT_IRC_CHANNEL, name, "web", NULL,
                              name + nlen + 1, len - nlen - 1);
  eddy_comet_block_unref(block);
}

static void irc_sub_gone(eddy_comet_sub *sub, void *arg) {
  chat *c = arg;
  (void)sub;
  c->irc_sub = NULL;
}

/* What an IRC client said in #chat, for the room: mIRC formatting codes
 * and other control bytes dropped (the room refuses them); a text that is
 * still not one the room takes (not UTF-8) is left to IRC alone. */
static void irc_message(eddy_irc_server *irc, const char *channel,
                        const char *nick, size_t nick_len, const char *text,
                        size_t text_len, bool notice, void *arg) {
  chat *c = arg;
  char clean[EDDY_IRC_LINE_MAX], err[128];
  size_t n = 0;
  (void)irc;
  if (notice ||
      !eddy_irc_equal(EDDY_IRC_CASEMAP_RFC1459, channel, strlen(channel),
                      CHAT_IRC_CHANNEL, strlen(CHAT_IRC_CHANNEL)))
    return;
  for (size_t i = 0; i < text_len && n < sizeof clean; i++)
    if ((unsigned char)text[i] >= 0x20 && text[i] != 0x7f)
      clean[n++] = text[i];
  if (check_field("name", nick, nick_len, CHAT_NAME_MAX, err, sizeof err) ||
      check_field("text", clean, n, CHAT_TEXT_MAX, err, sizeof err))
    return;
  if (chat_publish(c, &c->irc, nick, nick_len, clean, n) != 0)
    app_log(LOG_WARN, "chat: a message from IRC was lost: out of memory");
}

static void on_irc_closed(eddy_irc_server *irc, void *arg) {
  chat *c = arg;
  (void)irc;
  app_server_closed_one(&c->srv);
}

/* The IRC server, its #chat, and the room's messages for it. */
static int irc_open(chat *c) {
  static const eddy_comet_sub_callbacks cb = {.send = irc_send,
                                              .gone = irc_sub_gone};
  eddy_irc_server_options o = {.closed = on_irc_closed,
                               .message = irc_message,
                               .arg = c};
  int e;
  if ((e = eddy_irc_server_new(c->srv.loop, &o, &c->irc)) != 0 ||
      (e = eddy_irc_server_keep_channel(c->irc, CHAT_IRC_CHANNEL,
                                        "eddy chat: the web room")) != 0 ||
      (e = c->fmt_irc = eddy_comet_format_add(c->hub, "irc", encode_irc,
                                              NULL)) < 0 ||
      (e = eddy_comet_subscribe(c->hub, CHAT_TOPIC, c->fmt_irc, &cb, c,
                                &c->irc_sub)) != 0)
    return e;
  return 0;
}

/* ---- Line clients ------------------------------------------------------------------- */

static void line_error(line_client *lc, const char *why) {
  char msg[160];
  int n = snprintf(msg, sizeof msg, "error: %s\n", why);
  (void)eddy_stream_write(eddy_line_stream(lc->lr), msg, (size_t)n);
}

/* A message for a line client: its block queued on the stream as it is,
 * unless the client sent it. */
static void line_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  line_client *lc = arg;
  eddy_stream *s = eddy_line_stream(lc->lr);
  (void)sub;
  if (lc->chat->publisher == lc) {
    eddy_comet_block_unref(block);
    return;
  }
  /* On an error the block is freed and the stream's close says why. */
  if (eddy_stream_write_owned(s, block, len, eddy_comet_block_unref) == 0 &&
      eddy_stream_buffered(s) > CHAT_MAX_BACKLOG) {
    app_log(LOG_INFO, "chat: %s cannot keep up, disconnected", lc->name);
    eddy_stream_abort(s);
  }
}

static void line_sub_gone(eddy_comet_sub *sub, void *arg) {
  line_client *lc = arg;
  (void)sub;
  lc->sub = NULL;
}

/* The first line: the name, and from then on the room's messages. */
static void line_join(line_client *lc, const char *line, size_t len) {
  static const eddy_comet_sub_callbacks cb = {.send = line_send,
                                              .gone = line_sub_gone};
  char err[128];
  if (check_field("name", line, len, CHAT_NAME_MAX, err, sizeof err)) {
    line_error(lc, err);
    return;
  }
  if (eddy_comet_subscribe(lc->chat->hub, CHAT_TOPIC, lc->chat->fmt_line, &cb,
                           lc, &lc->sub) != 0) {
    line_error(lc, "the server is out of memory");
    eddy_stream_close(eddy_line_stream(lc->lr));
    return;
  }
  /* Messages published in one turn leave in one write (best effort:
   * without memory for it, each goes at once). */
  (void)eddy_stream_set_coalesce(eddy_line_stream(lc->lr), 1);
  memcpy(lc->name, line, len);
  lc->name[len] = '\0';
  app_log(LOG_INFO, "chat: %s joined", lc->name);
  /* A member of a quiet room is not idle: the idle timeout only bounds
   * the wait for a name. From now on TCP keep-alive finds dead peers
   * (failing that, a peer is only found dead by writing to it). */
  (void)eddy_stream_set_timeout(eddy_line_stream(lc->lr), 0);
  (void)eddy_stream_set_keepalive(eddy_line_stream(lc->lr), CHAT_KEEPALIVE_S);
}

static void on_line(eddy_line *lr, const char *line, size_t len, void *arg) {
  line_client *lc = arg;
  char err[128];
  (void)lr;
  if (lc->name[0] == '\0')
    line_join(lc, line, len);
  else if (check_field("text", line, len, CHAT_TEXT_MAX, err, sizeof err))
    line_error(lc, err);
  else if (chat_publish(lc->chat, lc, lc->name, strlen(lc->name), line, len))
    line_error(lc, "the server is out of memory");
}

static void on_line_too_long(eddy_line *lr, const char *start, size_t len,
                             void *arg) {
  line_client *lc = arg;
  char err[64];
  (void)lr, (void)start, (void)len;
  snprintf(err, sizeof err, "%s is longer than %d bytes",
           lc->name[0] ? "text" : "name",
           lc->name[0] ? CHAT_TEXT_MAX : CHAT_NAME_MAX);
  line_error(lc, err);
}

/* The peer finished sending: a last line without its "\n" still counts. */
static void on_line_eof(eddy_line *lr, const char *rest, size_t len,
                        void *arg) {
  if (len > 0)
    on_line(lr, rest, len, arg);
  eddy_stream_close(eddy_line_stream(lr));
}

static void on_line_close(eddy_line *lr, int status, const char *detail,
                          void *arg) {
  line_client *lc = arg;
  chat *c = lc->chat;
  (void)lr;
  app_server_log_close(&c->srv, lc->name[0] ? lc->name : NULL, status, detail);
  if (lc->name[0])
    app_log(LOG_INFO, "chat: %s left", lc->name);
  if (lc->sub)
    eddy_comet_unsubscribe(lc->sub);
  link_unlink(&c->line_clients, &lc->link);
  free(lc);
  app_server_closed_one(&c->srv);
}

static void line_accept(chat *c, eddy_stream *s) {
  static const eddy_line_callbacks cb = {.line = on_line,
                                         .too_long = on_line_too_long,
                                         .eof = on_line_eof,
                                         .close = on_line_close};
  eddy_line_options lo = {.max_length = CHAT_LINE_MAX};
  line_client *lc = calloc(1, sizeof *lc);
  if (lc == NULL || app_server_set_idle(&c->srv, s) != 0 ||
      eddy_line_open(s, &lo, &cb, lc, &lc->lr) != 0) {
    free(lc);
    eddy_stream_abort(s);
    return;
  }
  lc->chat = c;
  link_push(&c->line_clients, &lc->link);
  c->srv.open++;
}

/* ---- The web side --------------------------------------------------------------------- */

static void respond_error(eddy_http_exchange *x, int status, const char *why) {
  char *body = chat_error_json(why);
  if (body == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  (void)eddy_http_respond(x, status, "application/json", body, strlen(body));
  free(body);
}

static void serve_asset(eddy_http_exchange *x, void *arg) {
  const chat_asset *a = arg;
  if (eddy_http_set_header(x, "Cache-Control", "no-cache") != 0 ||
      eddy_http_set_header(x, "X-Content-Type-Options", "nosniff") != 0) {
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  (void)eddy_http_respond(x, 200, a->type, a->data, a->len);
}

static void serve_send(eddy_http_exchange *x, void *arg) {
  chat *c = arg;
  size_t len;
  const char *body = eddy_http_body(x, &len);
  char err[256];
  int e = chat_post_json(c, NULL, body ? body : "", len, err, sizeof err);
  if (e == 1)
    respond_error(x, 400, err);
  else if (e != 0)
    respond_error(x, 503, "the server is out of memory");
  else
    (void)eddy_http_respond(x, 204, NULL, NULL, 0);
}

/* A long-poll ended: answered, timed out, or its client gone. */
static void poll_done(eddy_comet_poll *p, int status, void *arg) {
  chat_poll *cp = arg;
  (void)p, (void)status;
  link_unlink(&cp->chat->polls, &cp->link);
  free(cp);
}

static void serve_poll(eddy_http_exchange *x, void *arg) {
  chat *c = arg;
  eddy_comet_poll_options o = {.timeout_ns = CHAT_POLL_HOLD_NS,
                               .empty_status = 200,
                               .empty_body = "[]",
                               .done = poll_done};
  uint64_t since = 0, last = eddy_comet_last_id(c->hub);
  chat_poll *cp;
  int e = eddy_comet_query_id(x, "since", &since);
  if (e == -EINVAL) {
    respond_error(x, 400, "since is a message id (a decimal number)");
    return;
  }
  /* An id past the last is from before a restart: from now on. */
  if (since > last)
    since = last;
  if (eddy_http_set_header(x, "Cache-Control", "no-store") != 0 ||
      (cp = calloc(1, sizeof *cp)) == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  cp->chat = c;
  o.arg = cp;
  if (eddy_comet_poll_start(x, &o, &cp->p) != 0) {
    free(cp); /* answered already */
    return;
  }
  link_push(&c->polls, &cp->link);
  /* Answered at once (poll_done frees cp) if there are messages after
   * since; else held for the next one. */
  if (eddy_comet_poll_hub(cp->p, c->hub, CHAT_TOPIC, c->fmt_json, since) != 0) {
    link_unlink(&c->polls, &cp->link);
    eddy_comet_poll_cancel(cp->p);
    free(cp);
  }
}

static void sse_close(chat_sse *cs) {
  link_unlink(&cs->chat->events, &cs->link);
  eddy_comet_sse_close(cs->sse);
  free(cs);
}

/* The client went away, or fell too far behind. */
static void sse_gone(eddy_comet_sse *sse, int reason, void *arg) {
  (void)sse;
  if (reason == -ENOBUFS)
    app_log(LOG_INFO, "chat: an SSE client cannot keep up, disconnected");
  sse_close(arg);
}

static void serve_events(eddy_http_exchange *x, void *arg) {
  chat *c = arg;
  eddy_comet_sse_options o = {.max_unsent = CHAT_MAX_BACKLOG,
                              .slow = EDDY_COMET_DISCONNECT,
                              .retry_ms = 2000,
                              .gone = sse_gone};
  chat_sse *cs = calloc(1, sizeof *cs);
  int e;
  if (cs == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  cs->chat = c;
  o.arg = cs;
  if ((e = eddy_comet_sse_start(x, &o, &cs->sse)) != 0) {
    free(cs); /* a HEAD answered, or an error that ended x */
    return;
  }
  link_push(&c->events, &cs->link);
  {
    eddy_stream *st = eddy_http_stream(eddy_comet_sse_exchange(cs->sse));
    if (st) /* a turn's events leave in one write */
      (void)eddy_stream_set_coalesce(st, 1);
  }
  /* Replays the history after a Last-Event-ID, then follows the room. */
  if (eddy_comet_sse_follow(cs->sse, c->hub, CHAT_TOPIC) != 0)
    sse_close(cs);
}

static int add_routes(chat *c) {
  int e = 0;
  for (size_t i = 0; e == 0 && i < chat_nassets; i++) {
    const chat_asset *a = &chat_assets[i];
    e = eddy_http_route(c->http, "GET", a->path, serve_asset, (void *)a);
    if (e == 0 && strcmp(a->path, "/index.html") == 0)
      e = eddy_http_route(c->http, "GET", "/", serve_asset, (void *)a);
  }
  if (e == 0)
    e = eddy_http_route(c->http, "POST", "/send", serve_send, c);
  if (e == 0)
    e = eddy_http_route(c->http, "GET", "/poll", serve_poll, c);
  if (e == 0)
    e = eddy_http_route(c->http, "GET", "/events", serve_events, c);
  return e;
}

/* ---- Connections and the stop ----------------------------------------------------------- */

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  chat *c = arg;
  for (int i = c->nweb; i < c->srv.nlisteners; i++)
    if (c->srv.listeners[i] == l) {
      if (i < c->nline_end) {
        line_accept(c, s);
      } else {
        /* The IRC server keeps its own time (PING): no idle timeout. */
        c->srv.open++;
        if (eddy_irc_server_serve(c->irc, s) != 0)
          app_server_closed_one(&c->srv);
      }
      return;
    }
  if (app_server_set_idle(&c->srv, s) != 0 ||
      eddy_http_server_serve(c->http, s) != 0) {
    eddy_stream_abort(s);
    return;
  }
  c->srv.open++;
}

static void on_http_closed(eddy_http_server *srv, void *arg) {
  chat *c = arg;
  (void)srv;
  app_server_closed_one(&c->srv);
}

/* The graceful stop: streams ended, polls answered, line clients told,
 * WebSocket clients closed with 1001. */
static void on_stop(app_server *srv) {
  chat *c = srv->arg;
  static const char bye[] = "error: the server is stopping\n";
  while (c->events)
    sse_close((chat_sse *)c->events);
  while (c->polls) {
    chat_poll *cp = (chat_poll *)c->polls;
    link_unlink(&c->polls, &cp->link);
    (void)eddy_comet_poll_respond(cp->p, 200, "application/json", "[]", 2);
    free(cp);
  }
  for (chat_link *l = c->line_clients, *next; l; l = next) {
    line_client *lc = (line_client *)l;
    next = l->next;
    (void)eddy_stream_write(eddy_line_stream(lc->lr), bye, sizeof bye - 1);
    eddy_stream_close(eddy_line_stream(lc->lr));
  }
  chat_ws_stop(c);
  if (c->irc)
    eddy_irc_server_stop(c->irc, "Server shutting down");
  eddy_http_server_drain(c->http);
}

/* The IRC server goes with the loop's handles. */
static void on_close(app_server *srv) {
  chat *c = srv->arg;
  eddy_irc_server_free(c->irc);
  c->irc = NULL;
}

/* ---- Options ------------------------------------------------------------------------------- */

static void usage(void) {
  printf(
      "Usage: eddy chat --listen ENDPOINT [--listen ENDPOINT...]\n"
      "                 [--line ENDPOINT...] [--irc ENDPOINT...]\n"
      "                 [--grace S] [--idle-timeout S]\n"
      "\n"
      "One chat room for browsers (a page, WebSocket, server-sent events,\n"
      "long-polling) and for line clients such as nc or telnet.\n"
      "\n"
      "  --listen ENDPOINT   where to serve the web side: "
      "tcp:PORT[:interface=\n"
      "                      ADDR], tcp6:PORT, unix:PATH, "
      "tls:PORT:certKey=PEM\n"
      "                      (repeatable)\n"
      "  --line ENDPOINT     where line clients connect: the first line is a\n"
      "                      name, each later line a message (repeatable)\n"
      "  --irc ENDPOINT      serve IRC too, the room being channel #chat\n"
      "                      (tcp:6667, tls:6697:certKey=PEM; repeatable)\n"
      "  --grace S           on SIGTERM/SIGINT, let requests in flight\n"
      "                      finish for S seconds (default 10)\n"
      "  --idle-timeout S    close a connection that moves no byte for S\n"
      "                      seconds (default 300; 0: never)\n");
}

static int parse(chat *c, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v;
    int rc;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return 0;
    }
    if (app_option_value(argc, argv, &i, "--line", &v)) {
      if (v == NULL || *v == '\0' || c->nlines == APP_MAX_LISTEN) {
        fprintf(stderr,
                v && *v ? "eddy chat: at most %d --line\n"
                        : "eddy chat: --line needs an endpoint\n",
                APP_MAX_LISTEN);
        return 2;
      }
      c->lines[c->nlines++] = v;
      continue;
    }
    if (app_option_value(argc, argv, &i, "--irc", &v)) {
      if (v == NULL || *v == '\0' || c->nircs == APP_MAX_LISTEN) {
        fprintf(stderr,
                v && *v ? "eddy chat: at most %d --irc\n"
                        : "eddy chat: --irc needs an endpoint\n",
                APP_MAX_LISTEN);
        return 2;
      }
      c->ircs[c->nircs++] = v;
      continue;
    }
    if ((rc = app_server_option(&c->srv, argc, argv, &i)) < 0)
      return 2;
    if (rc == 0) {
      char quoted[160];
      fprintf(stderr,
              "eddy chat: unknown option '%s'; see 'eddy chat --help'\n",
              app_quote(quoted, sizeof quoted, argv[i]));
      return 2;
    }
  }
  if (c->srv.nendpoints + c->nlines + c->nircs > APP_MAX_LISTEN) {
    fprintf(stderr, "eddy chat: at most %d --listen, --line and --irc in all\n",
            APP_MAX_LISTEN);
    return 2;
  }
  /* The line endpoints go after the web ones: on_accept tells them apart
   * by their listener's index. */
  c->nweb = c->srv.nendpoints;
  for (int i = 0; i < c->nlines; i++)
    c->srv.endpoints[c->srv.nendpoints++] = c->lines[i];
  c->nline_end = c->srv.nendpoints;
  for (int i = 0; i < c->nircs; i++)
    c->srv.endpoints[c->srv.nendpoints++] = c->ircs[i];
  return -1; /* go on */
}

/* The hub and its formats, the server and its routes: 0 or an error. */
static int chat_open(chat *c) {
  eddy_comet_hub_options hubo = {.history_count = CHAT_HISTORY};
  eddy_http_server_options ho = {.closed = on_http_closed, .arg = c};
  int e;
  if ((e = eddy_comet_hub_new(&hubo, &c->hub)) != 0 ||
      (e = c->fmt_json = eddy_comet_format_add(c->hub, "json", encode_json,
                                               NULL)) < 0 ||
      (e = c->fmt_line = eddy_comet_format_add(c->hub, "line", encode_line,
                                               NULL)) < 0 ||
      (e = eddy_http_server_new(c->srv.loop, &ho, &c->http)) != 0 ||
      (e = add_routes(c)) != 0 || (e = chat_ws_init(c)) != 0 ||
      (c->nircs > 0 && (e = irc_open(c)) != 0))
    return e;
  return 0;
}

static void chat_free(chat *c) {
  eddy_irc_server_free(c->irc);
  c->irc = NULL;
  eddy_http_server_free(c->http);
  if (c->hub)
    eddy_comet_hub_free(c->hub);
}

int app_chat(int argc, char **argv) {
  chat c = {.srv = {.name = "chat",
                    .grace_s = 10,
                    .idle_s = APP_IDLE_TIMEOUT,
                    .on_accept = on_accept,
                    .on_stop = on_stop,
                    .on_close = on_close}};
  int rc, e;
  c.srv.arg = &c;
  if ((rc = parse(&c, argc, argv)) >= 0)
    return rc;
  if (c.nweb == 0) {
    fprintf(stderr, "eddy chat: at least one --listen ENDPOINT is needed\n");
    return 2;
  }
  if ((rc = app_server_start(&c.srv)) != 0)
    return rc;
  if ((e = chat_open(&c)) != 0) {
    fprintf(stderr, "eddy chat: %s\n", eddy_strerror(e));
    chat_free(&c);
    eddy_loop_close_all(c.srv.loop);
    eddy_loop_run(c.srv.loop, EDDY_RUN_UNTIL_IDLE);
    eddy_loop_free(c.srv.loop);
    return 1;
  }
  rc = app_server_run(&c.srv);
  /* The connections went with the loop; what is left is memory. */
  chat_free(&c);
  return rc;
}
