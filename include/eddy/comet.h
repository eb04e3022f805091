/* eddy/comet.h: server-sent events, long-polling, and a publish/subscribe
 * hub that fans one message out to many clients without copying it.
 *
 * ---- Shared blocks -----------------------------------------------------------
 *
 * A block is bytes with a reference count kept in a small header just
 * before them, so that the data pointer alone finds it: a block can be
 * handed to eddy_stream_write_owned(s, data, len, eddy_comet_block_unref),
 * or to any other call that takes data and a free function, and the last
 * holder's unref frees it. Blocks are not thread-safe: they belong to one
 * loop's thread.
 *
 * ---- The hub -----------------------------------------------------------------
 *
 * An eddy_comet_hub keeps topics ("room", "news/42"), each with its
 * subscribers and a bounded history. eddy_comet_publish gives a message an
 * id (increasing over the whole hub, from 1), then for each wire format
 * that has subscribers on the topic encodes it once into a block, and
 * hands that one block to every subscriber of that format, each with a
 * reference of its own: a message to 10,000 SSE clients is one encoding
 * and one allocation, not 10,000.
 *
 * The hub knows no protocol. A wire format is an encode callback (message
 * -> bytes) registered with eddy_comet_format_add; a subscriber names its
 * format and a send callback, which takes the block (one reference) and
 * typically queues it on its stream. Three formats are built in:
 *
 *   EDDY_COMET_SSE          an SSE event: "id: N", "event: E" if the
 *                           message has an event name, then its data as
 *                           "data:" lines (see eddy_comet_sse_encode);
 *   EDDY_COMET_SSE_CHUNKED  the same event as one HTTP/1.1 chunk
 *                           ("0000002a\r\n" ... "\r\n"): what an SSE
 *                           stream of an HTTP/1.1 exchange writes as is;
 *   EDDY_COMET_LINE         the data and "\n", each CR or LF in the data
 *                           made a space: one message, one line.
 *
 * Encoding is lazy: a format no subscriber of the topic uses costs nothing
 * at publish. A message's blocks are kept with it in the topic's history
 * (at most history_count messages and history_bytes bytes, the blocks
 * counted; the oldest go first), so that a client coming back
 * (Last-Event-ID, a long-poll's since=ID) gets what it missed, encoded at
 * most once per format as well.
 *
 * Subscribers may come and go at any time, from inside a send callback
 * too: one that leaves during a delivery gets nothing more, one that
 * joins during a delivery does not get the message being delivered. A
 * send callback may publish (the nested message is delivered at once). The
 * hub may be freed with subscribers attached (each one's gone callback
 * runs first), but not from inside one of its callbacks.
 *
 * ---- Server-sent events ------------------------------------------------------
 *
 * eddy_comet_sse_start turns an HTTP exchange (see eddy/http.h) into an
 * event stream: 200 with Content-Type text/event-stream, Cache-Control:
 * no-cache and X-Accel-Buffering: no (so that a proxy passes each event
 * on at once), then events, comments and retry fields as the program
 * sends them, or as a hub delivers them (eddy_comet_sse_follow). A
 * comment is sent as a heartbeat once the stream has been silent for the
 * heartbeat interval, so that proxies and clients keep it open.
 *
 * Flow control is the slow-consumer policy: when the bytes not yet taken
 * by the client's socket pass max_unsent, a new event is either dropped
 * and counted (EDDY_COMET_DROP, the default: the client misses it, and
 * can catch up through Last-Event-ID) or the client is disconnected
 * (EDDY_COMET_DISCONNECT: its connection is aborted and the gone callback
 * says -ENOBUFS). The client going away is reported once, through gone
 * (EDDY_ECLOSED). The stream is the program's until eddy_comet_sse_close,
 * which ends the exchange; every stream must be closed, from its gone
 * callback if need be.
 *
 * ---- Long-polling ------------------------------------------------------------
 *
 * eddy_comet_poll_start holds an exchange until the program answers it
 * (eddy_comet_poll_respond), the timeout passes (answered with the empty
 * result the options name: 204 by default, or for instance 200 and "[]"),
 * or the client goes away. eddy_comet_poll_hub ties it to a hub's topic:
 * answered at once with the messages after since if the history has any,
 * otherwise with the next message published.
 */
#ifndef EDDY_COMET_H
#define EDDY_COMET_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "common.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Shared blocks ----------------------------------------------------------- */

/* A block of len bytes (uninitialised) with one reference, or NULL (out of
 * memory). */
EDDY_API void *eddy_comet_block_new(size_t len);
/* Takes one more reference to the block at data. Returns data. */
EDDY_API void *eddy_comet_block_ref(void *data);
/* Drops one reference; the last frees the block. A free function of the
 * shape eddy_stream_write_owned takes. NULL does nothing. */
EDDY_API void eddy_comet_block_unref(void *data);
/* The references held, and the length given to eddy_comet_block_new. */
EDDY_API size_t eddy_comet_block_refs(const void *data);
EDDY_API size_t eddy_comet_block_len(const void *data);

/* ---- The hub ----------------------------------------------------------------- */

typedef struct eddy_comet_hub eddy_comet_hub;
typedef struct eddy_comet_sub eddy_comet_sub;

/* A message, as given to eddy_comet_publish and as an encoder or a history
 * walk sees it (then every field is set, and borrowed until the callback
 * returns). */
typedef struct eddy_comet_msg {
  uint64_t id;       /* set by the hub */
  int64_t time_ms;   /* wall-clock milliseconds; 0 at publish: now */
  const char *topic; /* NUL-terminated */
  const char *event; /* an SSE event name, or NULL */
  const void *data;
  size_t len;
} eddy_comet_msg;

typedef struct eddy_comet_hub_options {
  size_t history_count; /* messages kept per topic; 0: 256 */
  size_t history_bytes; /* their bytes per topic, blocks included; 0: 1 MiB */
  int no_history;       /* keep none: a message lives while it is sent */
} eddy_comet_hub_options;

/* The built-in formats (see the top of this page). */
#define EDDY_COMET_SSE 0
#define EDDY_COMET_SSE_CHUNKED 1
#define EDDY_COMET_LINE 2
/* How many formats a hub can have, the built-in ones included. */
#define EDDY_COMET_MAX_FORMATS 16

/* Encodes m by appending bytes to out (empty on entry). Returns 0, or a
 * negative code (-ENOMEM, -EINVAL) that fails the publish. */
typedef int (*eddy_comet_encode_fn)(const eddy_comet_msg *m, eddy_buf *out,
                                    void *arg);

typedef struct eddy_comet_sub_callbacks {
  /* A message for the subscriber: block (len bytes, in the subscriber's
   * format) comes with one reference, which the callback owns: it passes
   * it on (eddy_stream_write_owned with eddy_comet_block_unref) or drops
   * it (eddy_comet_block_unref). The bytes must not be changed. */
  void (*send)(eddy_comet_sub *sub, void *block, size_t len, void *arg);
  /* The hub is being freed; sub is freed when this returns. May be NULL. */
  void (*gone)(eddy_comet_sub *sub, void *arg);
} eddy_comet_sub_callbacks;

/* options may be NULL. Returns 0 or -ENOMEM. */
EDDY_API int eddy_comet_hub_new(const eddy_comet_hub_options *options,
                                eddy_comet_hub **out);
/* Frees the hub, its topics and history; every subscriber's gone callback
 * runs, then the subscriber is freed. Blocks still queued on streams stay
 * valid (they hold their own references). Not from a hub callback. */
EDDY_API void eddy_comet_hub_free(eddy_comet_hub *h);

/* Registers a wire format. Returns its number (at least 3), -EINVAL (no
 * encode), or -ENOSPC past EDDY_COMET_MAX_FORMATS. name is for the
 * program's eyes (copied up to 31 bytes). */
EDDY_API int eddy_comet_format_add(eddy_comet_hub *h, const char *name,
                                   eddy_comet_encode_fn encode, void *arg);

/* Subscribes to topic (created if new) in format. The send callback (not
 * NULL) gets each message published from now on. Returns 0, -EINVAL (a
 * format not registered, no send, an empty topic) or -ENOMEM. */
EDDY_API int eddy_comet_subscribe(eddy_comet_hub *h, const char *topic,
                                  int format,
                                  const eddy_comet_sub_callbacks *cb, void *arg,
                                  eddy_comet_sub **out);
/* Leaves; sub is gone after the call (its memory is freed once no
 * delivery is using it). Safe from any callback, sub's own send included. */
EDDY_API void eddy_comet_unsubscribe(eddy_comet_sub *sub);
/* Sends sub the messages of its topic's history with an id above since,
 * oldest first, through its send callback. Returns how many, or -ENOMEM
 * (or the encoder's error) after those sent so far. */
EDDY_API int eddy_comet_replay(eddy_comet_sub *sub, uint64_t since);

/* Publishes m on m->topic (which need not have subscribers: the message
 * then only goes into the history). Every format its subscribers use is
 * encoded before anything is sent, so on an error nothing was sent and
 * nothing kept. Returns 0 and the message's id in *id (id may be NULL),
 * -EINVAL (no topic, an empty one, an event name with CR, LF), -ENOMEM, or
 * an encoder's error. */
EDDY_API int eddy_comet_publish(eddy_comet_hub *h, const eddy_comet_msg *m,
                                uint64_t *id);

/* Calls fn for each message of topic's history with an id above since,
 * oldest first. Returns how many (0 for an unknown topic). fn must not
 * publish to the hub. */
EDDY_API size_t
eddy_comet_history(eddy_comet_hub *h, const char *topic, uint64_t since,
                   void (*fn)(const eddy_comet_msg *m, void *arg), void *arg);

/* The id of the last message published (0 before the first). */
EDDY_API uint64_t eddy_comet_last_id(const eddy_comet_hub *h);
/* Subscribers of topic (0 for an unknown topic). */
EDDY_API size_t eddy_comet_subscribers(const eddy_comet_hub *h,
                                       const char *topic);

typedef struct eddy_comet_hub_stats {
  uint64_t published;  /* messages */
  uint64_t encoded;    /* encoder calls, the built-in formats' included */
  uint64_t delivered;  /* blocks handed to send callbacks */
  size_t history;      /* messages kept, every topic */
  size_t history_size; /* their bytes, blocks included */
} eddy_comet_hub_stats;

EDDY_API void eddy_comet_hub_stats_get(const eddy_comet_hub *h,
                                       eddy_comet_hub_stats *st);

/* ---- Server-sent events -------------------------------------------------------- */

typedef struct eddy_comet_sse eddy_comet_sse;

typedef enum eddy_comet_slow {
  EDDY_COMET_DROP,       /* drop what does not fit, count it */
  EDDY_COMET_DISCONNECT, /* abort the client's connection */
} eddy_comet_slow;

typedef struct eddy_comet_sse_options {
  int64_t heartbeat_ns; /* silence before a comment; 0: 15 s; < 0: none */
  size_t max_unsent;    /* bytes not yet sent; 0: 256 KiB */
  eddy_comet_slow slow; /* past max_unsent */
  int64_t retry_ms;     /* > 0: a "retry:" field sent first */
  /* The client went away (EDDY_ECLOSED), or was disconnected as a slow
   * consumer (-ENOBUFS). Called once; the program then closes the
   * stream (it may from here). May be NULL. */
  void (*gone)(eddy_comet_sse *sse, int reason, void *arg);
  void *arg;
} eddy_comet_sse_options;

/* Starts an event stream on x (options may be NULL). Returns 0 with *out;
 * 1 for a HEAD request, which is answered with the head alone and ended
 * (*out NULL); or an error: -EALREADY (x's answer has started), EDDY_ECLOSED
 * (the client has gone), -ENOMEM; on an error x has been ended (with 503
 * if nothing had been sent). */
EDDY_API int eddy_comet_sse_start(eddy_http_exchange *x,
                                  const eddy_comet_sse_options *options,
                                  eddy_comet_sse **out);

/* The request's Last-Event-ID field, or NULL (*len 0). Valid until the
 * stream is closed. */
EDDY_API const char *eddy_comet_sse_last_event_id(const eddy_comet_sse *sse,
                                                  size_t *len);

/* Sends an event: "event: E" if event is not NULL, "id: I" if id is not
 * NULL, and the data, as many "data:" lines as it has lines (a CR, an LF
 * or a CRLF ends one), then the empty line that dispatches it. Returns 0
 * (sent or queued); 1 if the slow-consumer policy dropped it; -EINVAL for
 * an event or id with a CR or LF (nothing sent); EDDY_ECLOSED once the
 * client has gone; -ENOBUFS when this event disconnected a slow client;
 * -ENOMEM. */
EDDY_API int eddy_comet_sse_send(eddy_comet_sse *sse, const char *event,
                                 const char *id, const void *data, size_t len);
/* A comment line (": text"); text without CR or LF. Returns as
 * eddy_comet_sse_send. */
EDDY_API int eddy_comet_sse_comment(eddy_comet_sse *sse, const char *text);
/* A "retry: ms" field (the client's reconnection delay). -EINVAL if
 * ms < 0. */
EDDY_API int eddy_comet_sse_retry(eddy_comet_sse *sse, int64_t ms);
/* Sends a block already in this stream's wire format (eddy_comet_sse_format),
 * taking one reference (dropped at once on every outcome but 0). Returns as
 * eddy_comet_sse_send. */
EDDY_API int eddy_comet_sse_send_block(eddy_comet_sse *sse, void *block,
                                       size_t len);
/* The hub format this stream's blocks take: EDDY_COMET_SSE_CHUNKED for
 * HTTP/1.1, EDDY_COMET_SSE for HTTP/1.0 (a body the close ends). */
EDDY_API int eddy_comet_sse_format(const eddy_comet_sse *sse);

/* Subscribes the stream to topic, and if the client sent a Last-Event-ID
 * that is a decimal id, first replays the history after it. The
 * subscription ends with the stream. Returns 0, -EALREADY (it follows a
 * topic already), -EINVAL, -ENOMEM. */
EDDY_API int eddy_comet_sse_follow(eddy_comet_sse *sse, eddy_comet_hub *h,
                                   const char *topic);

/* Events (blocks) dropped by the slow-consumer policy so far. */
EDDY_API uint64_t eddy_comet_sse_dropped(const eddy_comet_sse *sse);
/* The exchange (for its request). */
EDDY_API eddy_http_exchange *eddy_comet_sse_exchange(const eddy_comet_sse *sse);

/* Ends the stream: leaves the hub, ends the exchange (the connection
 * stays open for the next request), frees sse. Safe from any callback,
 * gone included. */
EDDY_API void eddy_comet_sse_close(eddy_comet_sse *sse);

/* Encodes one event as eddy_comet_sse_send sends it, appended to out.
 * Returns 0, -EINVAL (CR or LF in event or id), -ENOMEM or -ENOBUFS (out's
 * cap). On error out holds what it held before. */
EDDY_API int eddy_comet_sse_encode(eddy_buf *out, const char *event,
                                   const char *id, const void *data,
                                   size_t len);

/* ---- Long-polling ------------------------------------------------------------ */

typedef struct eddy_comet_poll eddy_comet_poll;

typedef struct eddy_comet_poll_options {
  int64_t timeout_ns;       /* 0: 25 s */
  int empty_status;         /* the answer on timeout; 0: 204 */
  const char *content_type; /* of every answer; NULL: "application/json" */
  const char *empty_body;   /* on timeout (not with 204); NULL: none */
  /* eddy_comet_poll_hub's answer: open, the messages with sep between
   * them, close. NULL: "[", ",", "]" (a JSON list). */
  const char *open, *sep, *close;
  /* The poll ended without eddy_comet_poll_respond: 0 (answered with hub
   * messages), -ETIMEDOUT (answered empty), EDDY_ECLOSED (the client
   * went), or an error answered 500 (-ENOMEM). p is freed when it
   * returns. May be NULL. */
  void (*done)(eddy_comet_poll *p, int status, void *arg);
  void *arg;
} eddy_comet_poll_options;

/* Holds x. Returns 0 with *out, or -ENOMEM / EDDY_ECLOSED, with x ended
 * (503 if the client was still there). options may be NULL. */
EDDY_API int eddy_comet_poll_start(eddy_http_exchange *x,
                                   const eddy_comet_poll_options *options,
                                   eddy_comet_poll **out);
/* Answers and ends the poll (done is not called; p is gone). Returns as
 * eddy_http_respond (EDDY_ECLOSED if the client had gone). */
EDDY_API int eddy_comet_poll_respond(eddy_comet_poll *p, int status,
                                     const char *content_type, const void *body,
                                     size_t len);
/* Waits on topic: if its history has messages with ids above since, the
 * poll is answered now (200, each message in format between open, sep
 * and close) and done(0) runs before the return; otherwise it is
 * answered with the next message published. Returns 0, -EALREADY (already
 * waiting), -EINVAL or -ENOMEM (the poll is unchanged, still held). */
EDDY_API int eddy_comet_poll_hub(eddy_comet_poll *p, eddy_comet_hub *h,
                                 const char *topic, int format, uint64_t since);
/* Gives up without answering: ends the exchange (503 if unanswered),
 * frees p; done is not called. */
EDDY_API void eddy_comet_poll_cancel(eddy_comet_poll *p);
EDDY_API eddy_http_exchange *eddy_comet_poll_exchange(const eddy_comet_poll *p);

/* The query parameter name of x's request as a decimal id ("since" in
 * /poll?since=42). Returns 0, -ENOENT (absent), -EINVAL (not a number up
 * to 2^64 - 1). */
EDDY_API int eddy_comet_query_id(const eddy_http_exchange *x, const char *name,
                                 uint64_t *value);

#ifdef __cplusplus
}
#endif
#endif
