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
 * receive is the same object with "id" (increasing) and "time"
 * (milliseconds since the epoch) added. Ids start from the server's start
 * time in milliseconds, so a client that outlives a restart (its
 * Last-Event-ID, its ?since) never mistakes new messages for old ones.
 *
 * The line side (--line, nc or telnet): a client's first line is its name;
 * each later line is a message; it receives every other client's message as
 * a line "name: text". Mistakes are answered "error: why" and the client
 * goes on.
 *
 * Names (1 to 32 bytes) and texts (1 to 1000 bytes) must be UTF-8 without
 * control characters; anything else is refused with a reason, never cut or
 * echoed raw. JSON is read and written with jansson. A message is encoded
 * once per wire format and the one encoding goes to every client of that
 * format; the last CHAT_HISTORY messages are kept for /poll and for SSE
 * resumption. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/log.h"
#include "chat_assets.h"

#define CHAT_NAME_MAX 32
#define CHAT_TEXT_MAX 1000
#define CHAT_HISTORY 100
#define CHAT_POLL_HOLD_NS (25 * (int64_t)1000000000)
#define CHAT_HEARTBEAT_NS (15 * (int64_t)1000000000)
/* A client whose unsent bytes pass this is too slow for the room, and is
 * disconnected rather than buffered for without bound. */
#define CHAT_MAX_BACKLOG (1u << 20)
/* Longer lines are refused unread: a text has at most 1000 bytes. */
#define CHAT_LINE_MAX 4096

typedef struct chat chat;

/* A message as kept in the history: its JSON object's encoding. */
typedef struct chat_msg {
  uint64_t id;
  char *json; /* {"id","time","name","text"}, compact */
  size_t json_len;
} chat_msg;

/* A line client (--line). */
typedef struct line_client {
  chat *chat;
  eddy_line *lr;
  char name[CHAT_NAME_MAX + 1]; /* "" until its first line */
  struct line_client *prev, *next;
} line_client;

/* A held request: an SSE stream or a waiting long-poll. */
typedef struct held {
  chat *chat;
  eddy_http_exchange *x;
  uint64_t since;   /* a poll: answer with the messages after this id */
  int64_t deadline; /* a poll: answer [] at this time */
  struct held *prev, *next;
} held;

struct chat {
  app_server srv;
  int nweb; /* srv.endpoints[0, nweb) are --listen, the rest --line */
  const char *lines[APP_MAX_LISTEN];
  int nlines;
  eddy_http_server *http;
  chat_msg history[CHAT_HISTORY]; /* a ring: the newest at last % HISTORY */
  uint64_t first_id, last_id;     /* last_id: first_id - 1 before any */
  line_client *line_clients;
  held *events, *polls;
  eddy_timer *tick; /* SSE heartbeats and long-poll expiry */
  int64_t last_beat;
};

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
    snprintf(err, cap, "not JSON: %s", je.text);
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

/* {"error": why}, compact; NULL without memory. Freed with free(). */
static char *error_json(const char *why) {
  json_t *o = json_pack("{ss}", "error", why);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* ---- The room: history and fan-out --------------------------------------------- */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static chat_msg *history_at(chat *c, uint64_t id) {
  return &c->history[id % CHAT_HISTORY];
}

/* The id of the oldest message the history still holds. */
static uint64_t history_oldest(const chat *c) {
  uint64_t kept = c->last_id + 1 - c->first_id;
  return kept > CHAT_HISTORY ? c->last_id + 1 - CHAT_HISTORY : c->first_id;
}

/* A JSON array of the messages after since (as many as the history
 * holds), in *out (free()); its length, or 0 without memory. */
static size_t history_after(chat *c, uint64_t since, char **out) {
  uint64_t from = since + 1 > history_oldest(c) ? since + 1 : history_oldest(c);
  size_t len = 2;
  char *p;
  for (uint64_t id = from; id <= c->last_id; id++)
    len += history_at(c, id)->json_len + 1;
  if ((*out = p = malloc(len + 1)) == NULL)
    return 0;
  *p++ = '[';
  for (uint64_t id = from; id <= c->last_id; id++) {
    chat_msg *m = history_at(c, id);
    if (id != from)
      *p++ = ',';
    memcpy(p, m->json, m->json_len);
    p += m->json_len;
  }
  *p++ = ']';
  *p = '\0';
  return (size_t)(p - *out);
}

static void held_unlink(held **list, held *h) {
  if (h->prev)
    h->prev->next = h->next;
  else
    *list = h->next;
  if (h->next)
    h->next->prev = h->prev;
}

static void held_push(held **list, held *h) {
  h->prev = NULL;
  h->next = *list;
  if (*list)
    (*list)->prev = h;
  *list = h;
}

/* Answers a waiting poll with the messages after its since. */
static void poll_answer(held *h) {
  char *body = NULL;
  size_t len = history_after(h->chat, h->since, &body);
  held_unlink(&h->chat->polls, h);
  if (len)
    (void)eddy_http_respond(h->x, 200, "application/json", body, len);
  else
    (void)eddy_http_respond_status(h->x, 503);
  free(body);
  free(h);
}

/* Sends the SSE events of the messages after since to one stream. */
static int events_replay(chat *c, eddy_http_exchange *x, uint64_t since) {
  uint64_t from = since + 1 > history_oldest(c) ? since + 1 : history_oldest(c);
  for (uint64_t id = from; id <= c->last_id; id++) {
    chat_msg *m = history_at(c, id);
    char head[48];
    int n = snprintf(head, sizeof head, "id: %" PRIu64 "\ndata: ", id);
    int e;
    if ((e = eddy_http_write(x, head, (size_t)n)) != 0 ||
        (e = eddy_http_write(x, m->json, m->json_len)) != 0 ||
        (e = eddy_http_write(x, "\n\n", 2)) != 0)
      return e;
  }
  return 0;
}

/* Ends an SSE stream (a slow one, or at stop). */
static void events_end(held *h) {
  held_unlink(&h->chat->events, h);
  (void)eddy_http_end(h->x);
  free(h);
}

/* The one SSE event of a message to every SSE stream. */
static void fanout_events(chat *c, const char *ev, size_t len) {
  held *h = c->events, *next;
  for (; h; h = next) {
    next = h->next;
    if (eddy_http_write(h->x, ev, len) != 0 || eddy_http_over_high(h->x))
      events_end(h); /* gone, or too slow: its EventSource reconnects */
  }
}

/* The one line of a message to every named line client but its sender. */
static void fanout_lines(chat *c, const line_client *from, const char *line,
                         size_t len) {
  for (line_client *lc = c->line_clients; lc; lc = lc->next) {
    eddy_stream *s = eddy_line_stream(lc->lr);
    if (lc == from || lc->name[0] == '\0')
      continue;
    if (eddy_stream_write(s, line, len) == 0 &&
        eddy_stream_buffered(s) > CHAT_MAX_BACKLOG) {
      app_log(LOG_INFO, "chat: %s cannot keep up, disconnected", lc->name);
      eddy_stream_abort(s);
    }
  }
}

static void fanout_polls(chat *c) {
  while (c->polls)
    poll_answer(c->polls);
}

/* The room's one entry: stores the message, encodes it once per wire
 * format and sends it to every client. Returns 0 or -ENOMEM. */
static int chat_publish(chat *c, const line_client *from, const char *name,
                        size_t nlen, const char *text, size_t tlen) {
  uint64_t id = c->last_id + 1;
  json_t *o = json_object();
  char *json = NULL, *ev = NULL, *line = NULL;
  size_t json_len, ev_len, line_len;
  chat_msg *m;
  if (o == NULL || json_object_set_new(o, "id", json_integer((json_int_t)id)) ||
      json_object_set_new(o, "time", json_integer(wall_ms())) ||
      json_object_set_new(o, "name", json_stringn(name, nlen)) ||
      json_object_set_new(o, "text", json_stringn(text, tlen)) ||
      (json = json_dumps(o, JSON_COMPACT)) == NULL)
    goto nomem;
  json_len = strlen(json);
  ev_len = json_len + 48;
  line_len = nlen + tlen + 3;
  if ((ev = malloc(ev_len)) == NULL || (line = malloc(line_len)) == NULL)
    goto nomem;
  ev_len = (size_t)snprintf(ev, ev_len, "id: %" PRIu64 "\ndata: %s\n\n", id,
                            json);
  memcpy(line, name, nlen);
  memcpy(line + nlen, ": ", 2);
  memcpy(line + nlen + 2, text, tlen);
  line[nlen + 2 + tlen] = '\n';
  json_decref(o);
  m = history_at(c, id);
  free(m->json);
  m->id = id;
  m->json = json;
  m->json_len = json_len;
  c->last_id = id;
  fanout_lines(c, from, line, line_len);
  fanout_events(c, ev, ev_len);
  fanout_polls(c);
  free(ev);
  free(line);
  return 0;
nomem:
  json_decref(o);
  free(json);
  free(ev);
  free(line);
  return -ENOMEM;
}

/* Every second: SSE heartbeats (a comment, every CHAT_HEARTBEAT_NS) so
 * that proxies and idle timeouts keep the streams; polls past their
 * deadline answered []. */
static void on_tick(eddy_timer *t, void *arg) {
  chat *c = arg;
  int64_t now = eddy_loop_now(c->srv.loop);
  (void)t;
  if (now - c->last_beat >= CHAT_HEARTBEAT_NS) {
    held *h, *next;
    c->last_beat = now;
    for (h = c->events; h; h = next) {
      next = h->next;
      if (eddy_http_write(h->x, ":\n\n", 3) != 0)
        events_end(h);
    }
  }
  for (held *h = c->polls, *next; h; h = next) {
    next = h->next;
    if (now >= h->deadline)
      poll_answer(h);
  }
}

/* ---- Line clients ------------------------------------------------------------------- */

static void line_error(line_client *lc, const char *why) {
  char msg[160];
  int n = snprintf(msg, sizeof msg, "error: %s\n", why);
  (void)eddy_stream_write(eddy_line_stream(lc->lr), msg, (size_t)n);
}

static void on_line(eddy_line *lr, const char *line, size_t len, void *arg) {
  line_client *lc = arg;
  char err[128];
  (void)lr;
  if (lc->name[0] == '\0') {
    if (check_field("name", line, len, CHAT_NAME_MAX, err, sizeof err)) {
      line_error(lc, err);
      return;
    }
    memcpy(lc->name, line, len);
    lc->name[len] = '\0';
    app_log(LOG_INFO, "chat: %s joined by line", lc->name);
    return;
  }
  if (check_field("text", line, len, CHAT_TEXT_MAX, err, sizeof err)) {
    line_error(lc, err);
    return;
  }
  if (chat_publish(lc->chat, lc, lc->name, strlen(lc->name), line, len) != 0)
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
  if (lc->prev)
    lc->prev->next = lc->next;
  else
    c->line_clients = lc->next;
  if (lc->next)
    lc->next->prev = lc->prev;
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
  lc->next = c->line_clients;
  if (lc->next)
    lc->next->prev = lc;
  c->line_clients = lc;
  c->srv.open++;
}

/* ---- The web side --------------------------------------------------------------------- */

static void respond_error(eddy_http_exchange *x, int status, const char *why) {
  char *body = error_json(why);
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
  json_t *root = NULL;
  const char *name, *text, *why;
  size_t nlen, tlen, len;
  const char *body = eddy_http_body(x, &len);
  char err[256];
  why = parse_message(body ? body : "", len, &root, &name, &nlen, &text, &tlen,
                      err, sizeof err);
  if (why)
    respond_error(x, 400, why);
  else if (chat_publish(c, NULL, name, nlen, text, tlen) != 0)
    respond_error(x, 503, "the server is out of memory");
  else
    (void)eddy_http_respond(x, 204, NULL, NULL, 0);
  json_decref(root);
}

/* A decimal id: 0 and *out set, or -1. */
static int parse_id(const char *s, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (len == 0 || len > 19)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

/* The value of the query parameter name, or NULL. */
static const char *query_param(const eddy_http_request *r, const char *name,
                               size_t *len) {
  size_t n = strlen(name);
  const char *q = r->query, *end = r->query ? r->query + r->query_len : NULL;
  while (q && q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *stop = amp ? amp : end;
    if ((size_t)(stop - q) > n && memcmp(q, name, n) == 0 && q[n] == '=') {
      *len = (size_t)(stop - q - (ptrdiff_t)n - 1);
      return q + n + 1;
    }
    q = amp ? amp + 1 : NULL;
  }
  return NULL;
}

static void poll_gone(eddy_http_exchange *x, void *arg) {
  held *h = arg;
  held_unlink(&h->chat->polls, h);
  (void)eddy_http_end(x);
  free(h);
}

static void serve_poll(eddy_http_exchange *x, void *arg) {
  chat *c = arg;
  const eddy_http_request *r = eddy_http_request_of(x);
  size_t len = 0;
  const char *v = query_param(r, "since", &len);
  uint64_t since = 0;
  held *h;
  if (v && parse_id(v, len, &since) != 0) {
    respond_error(x, 400, "since is a message id (a decimal number)");
    return;
  }
  if (eddy_http_set_header(x, "Cache-Control", "no-store") != 0 ||
      (h = calloc(1, sizeof *h)) == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  h->chat = c;
  h->x = x;
  h->since = since;
  h->deadline = eddy_loop_now(c->srv.loop) + CHAT_POLL_HOLD_NS;
  held_push(&c->polls, h);
  if (since < c->last_id) {
    poll_answer(h);
    return;
  }
  eddy_http_on_gone(x, poll_gone, h);
}

static void events_gone(eddy_http_exchange *x, void *arg) {
  held *h = arg;
  (void)x;
  events_end(h);
}

static void serve_events(eddy_http_exchange *x, void *arg) {
  chat *c = arg;
  const eddy_http_header *last = eddy_http_find_header(eddy_http_request_of(x),
                                                       "Last-Event-ID");
  uint64_t since = c->last_id;
  held *h;
  if (last && parse_id(last->value, last->value_len, &since) != 0)
    since = c->last_id; /* not one of ours: from now on */
  if ((h = calloc(1, sizeof *h)) == NULL ||
      eddy_http_set_header(x, "Cache-Control", "no-store") != 0 ||
      eddy_http_set_header(x, "X-Accel-Buffering", "no") != 0 ||
      eddy_http_begin(x, 200, "text/event-stream") != 0) {
    free(h);
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  h->chat = c;
  h->x = x;
  held_push(&c->events, h);
  eddy_http_on_gone(x, events_gone, h);
  if (eddy_http_write(x, "retry: 2000\n\n", 13) != 0 ||
      events_replay(c, x, since) != 0)
    events_end(h);
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
      line_accept(c, s);
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

/* The graceful stop: held requests are answered, line clients told. */
static void on_stop(app_server *srv) {
  chat *c = srv->arg;
  static const char bye[] = "error: the server is stopping\n";
  eddy_timer_stop(c->tick);
  while (c->events)
    events_end(c->events);
  while (c->polls)
    poll_answer(c->polls);
  for (line_client *lc = c->line_clients; lc; lc = lc->next) {
    (void)eddy_stream_write(eddy_line_stream(lc->lr), bye, sizeof bye - 1);
    eddy_stream_close(eddy_line_stream(lc->lr));
  }
  eddy_http_server_drain(c->http);
}

/* ---- Options ------------------------------------------------------------------------------- */

static void usage(void) {
  printf(
      "Usage: eddy chat --listen ENDPOINT [--listen ENDPOINT...]\n"
      "                 [--line ENDPOINT...] [--grace S] [--idle-timeout S]\n"
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
  if (c->srv.nendpoints + c->nlines > APP_MAX_LISTEN) {
    fprintf(stderr, "eddy chat: at most %d --listen and --line in all\n",
            APP_MAX_LISTEN);
    return 2;
  }
  /* The line endpoints go after the web ones: on_accept tells them apart
   * by their listener's index. */
  c->nweb = c->srv.nendpoints;
  for (int i = 0; i < c->nlines; i++)
    c->srv.endpoints[c->srv.nendpoints++] = c->lines[i];
  return -1; /* go on */
}

static void chat_free(chat *c) {
  eddy_http_server_free(c->http);
  for (size_t i = 0; i < CHAT_HISTORY; i++)
    free(c->history[i].json);
}

int app_chat(int argc, char **argv) {
  chat c = {.srv = {.name = "chat",
                    .grace_s = 10,
                    .idle_s = APP_IDLE_TIMEOUT,
                    .on_accept = on_accept,
                    .on_stop = on_stop}};
  eddy_http_server_options ho = {.closed = on_http_closed, .arg = &c};
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
  c.first_id = (uint64_t)wall_ms();
  c.last_id = c.first_id - 1;
  if ((e = eddy_http_server_new(c.srv.loop, &ho, &c.http)) != 0 ||
      (e = add_routes(&c)) != 0 ||
      (e = eddy_timer_new(c.srv.loop, on_tick, &c, &c.tick)) != 0 ||
      (e = eddy_timer_start(c.tick, 1000000000, 1000000000)) != 0) {
    fprintf(stderr, "eddy chat: %s\n", eddy_strerror(e));
    eddy_loop_free(c.srv.loop);
    chat_free(&c);
    return 1;
  }
  rc = app_server_run(&c.srv);
  /* The connections went with the loop; what is left is memory. */
  chat_free(&c);
  return rc;
}
