/* chat.h: what the parts of `eddy chat` share (chat.c: the room, the web
 * side but WebSocket, the line clients; chat_ws.c: WebSocket). */
#ifndef EDDY_APP_CHAT_H
#define EDDY_APP_CHAT_H

#include <stddef.h>

#include "app/app.h"

#define CHAT_NAME_MAX 32
#define CHAT_TEXT_MAX 1000
/* A client whose unsent bytes pass this is too slow for the room, and is
 * disconnected rather than buffered for without bound. */
#define CHAT_MAX_BACKLOG ((size_t)1 << 20)
/* The hub's one topic. */
#define CHAT_TOPIC "room"
/* The IRC channel that is the room (--irc). */
#define CHAT_IRC_CHANNEL "#chat"

typedef struct chat chat;
typedef struct chat_ws chat_ws;

/* The clients of each kind are in a list (for the graceful stop): a link
 * is each one's first member. */
typedef struct chat_link {
  struct chat_link *prev, *next;
} chat_link;

static inline void link_push(chat_link **head, chat_link *n) {
  n->prev = NULL;
  n->next = *head;
  if (*head)
    (*head)->prev = n;
  *head = n;
}

static inline void link_unlink(chat_link **head, chat_link *n) {
  if (n->prev)
    n->prev->next = n->next;
  else
    *head = n->next;
  if (n->next)
    n->next->prev = n->prev;
}

struct chat {
  app_server srv;
  int nweb; /* srv.endpoints[0, nweb) are --listen, the rest --line */
  const char *lines[APP_MAX_LISTEN];
  int nlines;
  int nline_end; /* srv.endpoints[nline_end, ...) are --irc */
  const char *ircs[APP_MAX_LISTEN];
  int nircs;
  eddy_http_server *http;
  eddy_comet_hub *hub;
  eddy_irc_server *irc;    /* with --irc: the room is also IRC's #chat */
  eddy_comet_sub *irc_sub; /* the room's messages, for #chat */
  int fmt_irc;             /* "name\0text": what #chat is told */
  int fmt_json; /* the message's JSON object as it is: long-poll answers */
  int fmt_line; /* "name: text\n": line clients */
  int fmt_ws;   /* one WebSocket text frame: chat_ws.c */
  const void *publisher; /* during a publish: the client that sent it */
  /* The clients, by kind (each one's first member is its link). */
  chat_link *line_clients, *events, *polls, *ws_clients;
};

/* A message from a web client, as JSON {"name": ..., "text": ...}: checked
 * and published. from (may be NULL) is the client's subscriber, skipped
 * if it is a line client. Returns 0; 1 when the message is refused (why
 * in err); -ENOMEM. */
int chat_post_json(chat *c, const void *from, const char *data, size_t len,
                   char *err, size_t cap);

/* {"error": why}, compact, to free(); NULL without memory. */
char *chat_error_json(const char *why);

/* chat_ws.c: registers the WebSocket wire format with the hub and the
 * GET /ws route. Returns 0 or a negative code. */
int chat_ws_init(chat *c);
/* The graceful stop: every WebSocket client gets a close 1001. */
void chat_ws_stop(chat *c);

#endif
