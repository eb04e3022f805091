/* eddy/ws.h: WebSocket (RFC 6455) with permessage-deflate (RFC 7692).
 *
 * Frames, UTF-8, compression and connections, each usable alone:
 *
 * ---- Frames --------------------------------------------------------------
 *
 * eddy_ws_parse() reads frames from the bytes received so far. It is a
 * resumable state machine over a small struct, allocates nothing and
 * copies nothing: it reports a frame's header once the header is whole,
 * then its payload in spans that point into the caller's buffer (still
 * masked: eddy_ws_unmask() copies them out unmasked), then the frame's
 * end. It refuses, with the close code a connection answers:
 *
 *   1002  a reserved bit set (RSV1 is allowed when permessage-deflate was
 *         negotiated, on the first frame of a data message only); an
 *         unknown opcode (3-7, 11-15); a control frame (close, ping, pong)
 *         longer than 125 bytes or without FIN; a 64-bit length with its
 *         top bit set (a length not in its shortest form is read, as most
 *         peers do); an unmasked frame where masking is required (a
 *         server reading a client) or a masked one where it is forbidden
 *         (a client reading a server); a continuation frame with no
 *         message in progress, or a new data frame inside one;
 *   1009  a frame longer than the parser's max_payload.
 *
 * eddy_ws_frame_header() writes a frame header; eddy_ws_unmask() also
 * masks a payload (both are the same XOR with the key).
 *
 * ---- UTF-8 -----------------------------------------------------------------
 *
 * eddy_ws_utf8 validates a text message incrementally, as its fragments
 * (and bytes) arrive, and fails at the first byte that cannot begin or
 * continue a valid sequence: an overlong form, a surrogate (U+D800 to
 * U+DFFF), a code point past U+10FFFF, a stray continuation byte, 0xC0,
 * 0xC1, 0xF5 to 0xFF. A message (or close reason) that ends inside a
 * sequence fails at its end. A connection answers 1007.
 *
 * ---- Connections -------------------------------------------------------------
 *
 * An eddy_ws is one WebSocket connection over an eddy_stream, taken over
 * from eddy's HTTP server (eddy_ws_accept) or made by connecting
 * (eddy_ws_connect). It reassembles fragmented messages, validates text,
 * inflates compressed messages, answers pings with pongs, and runs the
 * close handshake. The program gets whole messages.
 *
 * Callbacks (any may be NULL):
 *
 * open     client only: the handshake's outcome, exactly once. status 0:
 *          the connection is open (eddy_ws_subprotocol tells what the
 *          server chose). Otherwise the connection failed and ws is freed
 *          when the callback returns (no close callback follows): -errno
 *          or EDDY_ERESOLVE / EDDY_ETLS from connecting, EDDY_EHTTP when
 *          the server did not answer 101 with a valid Sec-WebSocket-Accept
 *          (or chose a subprotocol or extension that was not offered),
 *          -ETIMEDOUT when the handshake took longer than
 *          handshake_timeout_ns; detail is a sentence ("the server
 *          answered 403 Forbidden").
 * message  a whole message: EDDY_WS_TEXT (valid UTF-8) or EDDY_WS_BINARY;
 *          data is borrowed, valid until the callback returns (it is
 *          NUL-terminated, one byte past len, for convenience).
 * ping     a ping arrived (it has been answered already); borrowed.
 * pong     a pong arrived; borrowed. eddy_ws_last_pong() keeps its time.
 * drain    the send queue, after rising above the stream's high watermark,
 *          fell to its low watermark (see eddy_stream_set_watermarks).
 * close    exactly once, from the loop, as the connection ends; ws is
 *          freed when it returns. code is the close handshake's code: the
 *          one the peer sent (1005 if its close frame had none), or ours
 *          when we failed the connection (1002, 1007, 1009, 1011 ...), or
 *          1006 when the connection dropped without a close frame; reason
 *          is the close frame's reason (NUL-terminated, "" if none) or a
 *          sentence saying why we failed it. status is 0 when the close
 *          handshake completed cleanly; otherwise EDDY_EPARSE (the peer
 *          broke the protocol: code says how), -ETIMEDOUT (no pong within
 *          pong_timeout_ns, or no close reply within close_timeout_ns),
 *          -EMSGSIZE (a message past max_message: 1009), -ENOMEM
 *          (1011), or the stream's error (-ECONNRESET, EDDY_ETLS ...).
 *
 * Closing is always safe from inside any callback. Sending after the
 * close handshake began returns EDDY_ECLOSED.
 *
 * ---- Sending to many -----------------------------------------------------------
 *
 * A broadcaster encodes a message once (eddy_ws_encode: a complete server
 * frame, compressed if a compressor is given) into memory it owns, for
 * example a reference-counted block, and queues the same bytes on every
 * connection with eddy_ws_send_frame_owned (no copy; free_fn once that
 * connection has sent them or closed: a reference drop). A compressed
 * frame may go only to connections for which eddy_ws_deflate_ok() says
 * so (those that negotiated permessage-deflate with server_no_context_
 * takeover, which eddy's server answers by default, and a window no
 * smaller than the compressor's); the others get the uncompressed frame.
 */
#ifndef EDDY_WS_H
#define EDDY_WS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "common.h"
#include "core.h"
#include "http.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opcodes. */
#define EDDY_WS_CONT 0x0
#define EDDY_WS_TEXT 0x1
#define EDDY_WS_BINARY 0x2
#define EDDY_WS_CLOSE 0x8
#define EDDY_WS_PING 0x9
#define EDDY_WS_PONG 0xA

/* Close codes (RFC 6455 section 7.4.1). 1005 and 1006 are never sent:
 * they only report "no code" and "no close frame". */
#define EDDY_WS_NORMAL 1000
#define EDDY_WS_GOING_AWAY 1001
#define EDDY_WS_PROTOCOL_ERROR 1002
#define EDDY_WS_UNSUPPORTED 1003
#define EDDY_WS_NO_STATUS 1005
#define EDDY_WS_ABNORMAL 1006
#define EDDY_WS_INVALID_DATA 1007
#define EDDY_WS_POLICY 1008
#define EDDY_WS_TOO_BIG 1009
#define EDDY_WS_EXTENSION 1010
#define EDDY_WS_INTERNAL 1011

/* The largest control frame payload, and a close reason's (125 - 2). */
#define EDDY_WS_MAX_CONTROL 125
#define EDDY_WS_MAX_REASON 123
/* The longest frame header: 2 + 8 (length) + 4 (mask). */
#define EDDY_WS_MAX_HEADER 14
/* Default max_message. */
#define EDDY_WS_DEFAULT_MAX_MESSAGE (1024 * 1024)

/* 1 if a received close code is valid on the wire: 1000-1003, 1007-1014
 * (1012-1014 are registered: service restart, try again later, bad
 * gateway) and 3000-4999. 0 for the rest: 0-999, 1004, the codes that
 * only report (1005, 1006, 1015), unassigned 1016-2999, 5000 and up. */
EDDY_API int eddy_ws_close_code_valid(int code);

/* ---- Frames ---------------------------------------------------------------- */

/* What eddy_ws_parse returns, besides 0 (need more) and EDDY_EPARSE. */
#define EDDY_WS_HEADER 1 /* a frame header: p->fin, opcode, rsv1, length */
#define EDDY_WS_DATA 2   /* payload bytes: *data, *len (still masked) */
#define EDDY_WS_END 3    /* the frame's payload is complete */

/* How a parser checks masking and extensions (flags). */
#define EDDY_WS_PARSE_SERVER 1u /* reading a client: frames must be masked */
#define EDDY_WS_PARSE_CLIENT 2u /* reading a server: frames must not be */
#define EDDY_WS_PARSE_RSV1 4u   /* RSV1 allowed (permessage-deflate) */

typedef struct eddy_ws_parser {
  /* Settings: set before the first call (eddy_ws_parser_init). */
  unsigned flags;
  uint64_t max_payload; /* 0: no limit but 2^63-1 */
  /* The frame being read, valid from EDDY_WS_HEADER to EDDY_WS_END. */
  int fin;
  int rsv1;
  int opcode;
  int masked;
  uint8_t mask[4];
  uint64_t length; /* the payload's length */
  uint64_t offset; /* payload bytes reported so far (for eddy_ws_unmask) */
  /* On EDDY_EPARSE: the close code (1002, 1009) and why (static). */
  int code;
  const char *reason;
  /* Private. */
  int state;
  int in_message; /* a data message is in progress (fragmented) */
  uint8_t head[EDDY_WS_MAX_HEADER];
  unsigned head_len;
} eddy_ws_parser;

/* A parser with flags and max_payload, at the start of a stream. */
EDDY_API void eddy_ws_parser_init(eddy_ws_parser *p, unsigned flags,
                                  uint64_t max_payload);

/* Reads buf[0, len). Sets *used to the bytes it took (the next call starts
 * after them) and returns: 0 when all of them were taken and more are
 * needed; EDDY_WS_HEADER when a header was read (p's frame fields);
 * EDDY_WS_DATA with *data, *dlen a span of the payload inside buf, masked
 * as sent, starting at payload offset p->offset - *dlen; EDDY_WS_END once
 * the frame's payload has all been reported (right after the header for
 * an empty frame), or EDDY_EPARSE with p->code and p->reason; the parser
 * stays failed. */
EDDY_API int eddy_ws_parse(eddy_ws_parser *p, const char *buf, size_t len,
                           size_t *used, const char **data, size_t *dlen);

/* Copies n bytes from src to dst, unmasking them with mask as the bytes at
 * payload offset offset (dst may equal src). A NULL mask copies. */
EDDY_API void eddy_ws_unmask(char *dst, const char *src, size_t n,
                             const uint8_t *mask, uint64_t offset);

/* Writes a frame header for a payload of len bytes into out (at least
 * EDDY_WS_MAX_HEADER bytes): FIN if fin, RSV1 if rsv1, masked with mask if
 * mask is not NULL (the payload must then be masked with eddy_ws_unmask
 * and the same key). Returns the header's length (2 to 14). */
EDDY_API size_t eddy_ws_frame_header(char *out, int fin, int opcode, int rsv1,
                                     uint64_t len, const uint8_t *mask);

/* ---- UTF-8 ---------------------------------------------------------------- */

typedef struct eddy_ws_utf8 {
  uint32_t need;  /* continuation bytes still expected */
  uint8_t lo, hi; /* the range allowed for the next continuation byte */
} eddy_ws_utf8;

/* Starts (or restarts) a validation. */
EDDY_API void eddy_ws_utf8_init(eddy_ws_utf8 *v);
/* Feeds len more bytes: 0 while they are valid so far, EDDY_EPARSE at the
 * first invalid one (the validator stays failed until init). */
EDDY_API int eddy_ws_utf8_feed(eddy_ws_utf8 *v, const char *data, size_t len);
/* 0 if the text fed so far ends on a character boundary, EDDY_EPARSE if it
 * stops inside a sequence. */
EDDY_API int eddy_ws_utf8_end(const eddy_ws_utf8 *v);
/* The two together on a whole string. */
EDDY_API int eddy_ws_utf8_valid(const char *data, size_t len);

/* ---- Compression (permessage-deflate) ----------------------------------------
 *
 * A compressor deflates whole messages with a fresh context each time (no
 * context takeover), so that its output can go to many connections. A
 * window of window_bits (9 to 15; 0: 15) is readable by any peer whose
 * negotiated server window is as large or larger. */

typedef struct eddy_ws_compressor eddy_ws_compressor;

/* level: zlib's, 0-9 (-1: zlib's default). Returns 0, -EINVAL, -ENOMEM. */
EDDY_API int eddy_ws_compressor_new(int level, int window_bits,
                                    eddy_ws_compressor **out);
EDDY_API void eddy_ws_compressor_free(eddy_ws_compressor *z);

/* The inflater a connection uses, exposed for fuzzing and tools: inflates
 * one message's compressed payload (RFC 7692's trailing 00 00 FF FF
 * added) into out, failing with -EMSGSIZE once the output would pass max
 * bytes (a compression bomb costs no more than max), EDDY_EPARSE for data
 * zlib refuses, -ENOMEM. window_bits 8-15 (0: 15). out is appended to. */
EDDY_API int eddy_ws_inflate_once(const char *data, size_t len, int window_bits,
                                  size_t max, eddy_buf *out);

/* Appends to out one complete, unmasked (server) frame, FIN set, holding
 * len bytes of data as a message of opcode (EDDY_WS_TEXT, EDDY_WS_BINARY;
 * or a control opcode with len <= 125, never compressed), compressed with
 * z if z is not NULL (RSV1 set). The bytes may then be sent on any number
 * of connections (eddy_ws_send_frame_owned). Returns 0, -EINVAL, -ENOMEM,
 * -ENOBUFS (out's cap). */
EDDY_API int eddy_ws_encode(eddy_buf *out, int opcode, const void *data,
                            size_t len, eddy_ws_compressor *z);

/* ---- Connections -------------------------------------------------------------- */

typedef struct eddy_ws eddy_ws;

typedef struct eddy_ws_callbacks {
  void (*open)(eddy_ws *ws, int status, const char *detail, void *arg);
  void (*message)(eddy_ws *ws, int opcode, const char *data, size_t len,
                  void *arg);
  void (*ping)(eddy_ws *ws, const char *data, size_t len, void *arg);
  void (*pong)(eddy_ws *ws, const char *data, size_t len, void *arg);
  void (*drain)(eddy_ws *ws, void *arg);
  void (*close)(eddy_ws *ws, int code, const char *reason, int status,
                void *arg);
} eddy_ws_callbacks;

/* Options of a connection, server or client. Zero fields take the
 * defaults; options may be NULL for all of them. They are copied, and the
 * strings and arrays they point to are read only during the call
 * (eddy_ws_accept, eddy_ws_connect). */
typedef struct eddy_ws_options {
  /* The largest message, counted after inflating; past it: 1009.
   * 0: 1 MiB. */
  size_t max_message;
  /* Keep-alive: a ping after this much silence from the peer (0: none);
   * a peer still silent pong_timeout_ns after the ping (0: 20 s) is
   * dropped (close: 1006, -ETIMEDOUT). Any byte from the peer counts. */
  int64_t ping_interval_ns;
  int64_t pong_timeout_ns;
  /* How long eddy_ws_close waits for the peer's close frame. 0: 5 s. */
  int64_t close_timeout_ns;
  /* Client: connecting and the 101 together. 0: 30 s. */
  int64_t handshake_timeout_ns;
  /* Client: offer permessage-deflate. Server: accept an offer of it. */
  int deflate;
  /* Server: keep the compression context between our messages (a better
   * ratio, but no shared frames). Default off: the answer then says
   * server_no_context_takeover. */
  int deflate_context_takeover;
  /* Messages shorter than this are sent uncompressed. 0: 64 bytes. */
  size_t deflate_min;
  /* Subprotocols (Sec-WebSocket-Protocol): a server's in its order of
   * preference (the first the client also offered is chosen; none in
   * common: the connection goes on without one); a client's, offered. */
  const char *const *subprotocols;
  size_t nsubprotocols;
  /* Server: the Origin check. Called with the Origin field (NULL if the
   * request had none); returning 0 refuses the handshake with 403. NULL:
   * every origin is accepted. */
  int (*check_origin)(const char *origin, size_t len, void *arg);
  void *origin_arg;
  /* Client: the request's Host (NULL: the endpoint's host[:port]), path
   * (NULL: "/") and Origin (NULL: none). */
  const char *host;
  const char *path;
  const char *origin;
} eddy_ws_options;

/* Server: answers x, a WebSocket handshake request, and turns its
 * connection into a WebSocket connection. It checks that the request is
 * a GET with Upgrade: websocket and Connection: upgrade, and a
 * Sec-WebSocket-Key of 16 bytes in base64 (otherwise 400), of version 13
 * (otherwise 426 with Sec-WebSocket-Version: 13), from an origin that
 * check_origin accepts (otherwise 403); chooses a subprotocol and
 * negotiates permessage-deflate as the options say; then answers 101
 * with Sec-WebSocket-Accept and takes the stream over (eddy_http_upgrade).
 * Returns 0 with *out, the open connection (its callbacks are set, the
 * client's first frames, if they came with the request, are read from
 * the loop); EDDY_EHTTP when the request was refused (answered, x gone);
 * EDDY_ECLOSED if the client had gone (x gone); -ENOMEM (answered 503 if
 * it could be, or the connection aborted; x gone). In every case x is
 * ended. */
EDDY_API int eddy_ws_accept(eddy_http_exchange *x, const eddy_ws_options *opt,
                            const eddy_ws_callbacks *cb, void *arg,
                            eddy_ws **out);

/* Client: connects to endpoint (eddy's client endpoint strings: tcp:H:P,
 * tls:H:P, unix:P) and sends the handshake for opt->path. Returns 0 with
 * *out set: the open callback will report the outcome (until then sends
 * return EDDY_ECLOSED, and eddy_ws_abort cancels: the open callback gets
 * -ECANCELED). Or EDDY_EPARSE for an endpoint string that cannot be
 * parsed (err says why), -EINVAL (an option), -ENOMEM: then the open
 * callback is never called. */
EDDY_API int eddy_ws_connect(eddy_loop *loop, const char *endpoint,
                             const eddy_ws_options *opt,
                             const eddy_ws_callbacks *cb, void *arg,
                             eddy_ws **out, char *err, size_t errlen);

/* Sends a whole message of opcode EDDY_WS_TEXT (the caller vouches for
 * its UTF-8) or EDDY_WS_BINARY: framed (masked by a client with a random
 * key), compressed if deflate was negotiated and len >= deflate_min; the
 * bytes are copied. Returns 0; EDDY_ECLOSED once the close handshake has
 * begun (or before a client's handshake has ended); -EINVAL (opcode);
 * -ENOMEM; or the stream's error. */
EDDY_API int eddy_ws_send(eddy_ws *ws, int opcode, const void *data,
                          size_t len);
EDDY_API int eddy_ws_send_text(eddy_ws *ws, const char *text, size_t len);
EDDY_API int eddy_ws_send_binary(eddy_ws *ws, const void *data, size_t len);

/* Sends one fragment of a message, never compressed: opcode EDDY_WS_TEXT
 * or EDDY_WS_BINARY for the first, EDDY_WS_CONT for the others; fin on the
 * last. Whole messages (eddy_ws_send) must not be sent between the
 * fragments of one message (-EINVAL). Errors as eddy_ws_send's. */
EDDY_API int eddy_ws_send_fragment(eddy_ws *ws, int opcode, const void *data,
                                   size_t len, int fin);

/* Queues len bytes of complete frames made by eddy_ws_encode (server
 * connections only: client frames must be masked per connection), taking
 * them: no copy; free_fn(data) is called once they are sent or the
 * connection has closed, and at once on error. free_fn may be NULL.
 * Returns 0, -EINVAL (a client connection), EDDY_ECLOSED, -ENOMEM, or the
 * stream's error. */
EDDY_API int eddy_ws_send_frame_owned(eddy_ws *ws, void *data, size_t len,
                                      void (*free_fn)(void *));

/* 1 if ws negotiated permessage-deflate; 0 otherwise. */
EDDY_API int eddy_ws_deflate(const eddy_ws *ws);
/* 1 if frames compressed by z may be sent on ws (see above). */
EDDY_API int eddy_ws_deflate_ok(const eddy_ws *ws, const eddy_ws_compressor *z);

/* Sends a ping with up to 125 bytes of payload. Returns 0, -EINVAL,
 * EDDY_ECLOSED, -ENOMEM, or the stream's error. */
EDDY_API int eddy_ws_ping(eddy_ws *ws, const void *data, size_t len);
/* The loop time of the last pong received, or -1 if none yet. */
EDDY_API int64_t eddy_ws_last_pong(const eddy_ws *ws);

/* Starts the close handshake: sends a close frame with code (1000, 1001,
 * 1003, 1008, 1011, or 3000-4999; 0: no code) and reason (NULL or at most
 * 123 bytes of UTF-8), stops sending, and waits up to close_timeout_ns
 * for the peer's reply; messages still arriving meanwhile are dropped.
 * The close callback then reports the outcome. Returns 0, -EINVAL (code
 * or reason), or EDDY_ECLOSED if the handshake had already begun (which
 * is harmless). */
EDDY_API int eddy_ws_close(eddy_ws *ws, int code, const char *reason);

/* Ends the connection now, without a handshake (the close callback gets
 * 1006 and -ECONNABORTED; a connecting client's open callback gets
 * -ECANCELED). Safe from any callback; a second call does nothing. */
EDDY_API void eddy_ws_abort(eddy_ws *ws);

/* Flow control: bytes queued but not yet taken by the kernel, and 1 while
 * they exceed the stream's high watermark (then wait for drain). */
EDDY_API size_t eddy_ws_buffered(const eddy_ws *ws);
EDDY_API int eddy_ws_over_high(const eddy_ws *ws);

/* The subprotocol chosen, or NULL. */
EDDY_API const char *eddy_ws_subprotocol(const eddy_ws *ws);
/* The stream underneath (watermarks, peer name), or NULL before a client
 * connected. Do not read from it or set its callbacks. */
EDDY_API eddy_stream *eddy_ws_stream(const eddy_ws *ws);
EDDY_API eddy_loop *eddy_ws_loop(const eddy_ws *ws);
/* Replaces the program's argument given to the callbacks. */
EDDY_API void eddy_ws_set_arg(eddy_ws *ws, void *arg);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)) into out (at
 * least 29 bytes, NUL-terminated). Returns 0 or -EINVAL. */
EDDY_API int eddy_ws_accept_key(const char *key, size_t len, char *out,
                                size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
