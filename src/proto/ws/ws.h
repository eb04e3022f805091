/* ws.h: what the files of src/proto/ws share. */
#ifndef EDDY_PROTO_WS_WS_H
#define EDDY_PROTO_WS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "eddy/ws.h"

/* One direction of permessage-deflate. zs is made on first use (a zlib
 * stream costs 40 to 270 KiB). Without context takeover a connection
 * borrows the thread's stream for each message (deflate.c), so an idle
 * connection holds no zlib memory. */
typedef struct eddy__ws_zlib {
  void *zs;     /* z_stream *, or NULL */
  int bits;     /* LZ77 window: 9-15 (8-15 for inflating) */
  int level;    /* deflate only: zlib's level */
  int takeover; /* keep the context from message to message */
  int keep;     /* keep the stream allocated (reset) even without */
} eddy__ws_zlib;

/* Appends to out the deflated message (RFC 7692: the final 00 00 FF FF
 * taken off). Returns 0, -ENOMEM, -ENOBUFS. */
int eddy__ws_deflate(eddy__ws_zlib *z, const char *data, size_t len,
                     eddy_buf *out);
/* Appends to out the inflated message (the 00 00 FF FF added), at most max
 * bytes: -EMSGSIZE past it, EDDY_EPARSE for bad data, -ENOMEM. */
int eddy__ws_inflate(eddy__ws_zlib *z, const char *data, size_t len, size_t max,
                     eddy_buf *out);
/* The thread's shared streams for messages without context takeover:
 * held by each connection with permessage-deflate, freed with the last. */
void eddy__ws_zcache_hold(void);
void eddy__ws_zcache_release(void);
/* Releases the zlib stream of a deflating (deflating 1) or inflating z. */
void eddy__ws_zlib_free(eddy__ws_zlib *z, int deflating);

/* Appends a complete frame to out: header, then payload (compressed with
 * z if not NULL, masked with mask if not NULL). Returns 0, -ENOMEM,
 * -ENOBUFS. */
int eddy__ws_frame(eddy_buf *out, int fin, int opcode, const void *data,
                   size_t len, eddy__ws_zlib *z, const uint8_t *mask);

/* The window bits of a compressor. */
int eddy__ws_compressor_bits(const eddy_ws_compressor *c);

/* permessage-deflate parameters, as negotiated. */
typedef struct eddy__ws_pmd {
  int on;
  int server_no_takeover;
  int client_no_takeover;
  int server_bits; /* 8-15; 15 when not given */
  int client_bits;
} eddy__ws_pmd;

/* Internal connection setup, shared by the server and client halves. */
int eddy__ws_new(eddy_loop *loop, int server, const eddy_ws_options *opt,
                 const eddy_ws_callbacks *cb, void *arg, eddy_ws **out);
/* Frees a connection that never got a stream. */
void eddy__ws_free(eddy_ws *ws);
/* Sets the negotiated extension and subprotocol (copied): 0 or -ENOMEM. */
int eddy__ws_set_negotiated(eddy_ws *ws, const eddy__ws_pmd *pmd,
                            const char *subprotocol, size_t len);
/* Opens the connection on s (it takes s's callbacks). */
void eddy__ws_start(eddy_ws *ws, eddy_stream *s);
/* Reads frames received with the handshake: now, or from the loop (the
 * buffer is taken; 0 or -ENOMEM). */
void eddy__ws_feed(eddy_ws *ws, const char *data, size_t len);
int eddy__ws_feed_later(eddy_ws *ws, eddy_buf *early);
/* Calls the open callback. */
void eddy__ws_open_cb(eddy_ws *ws, int status, const char *detail);
/* A connecting client's handshake state (handshake.c's). */
void *eddy__ws_client(const eddy_ws *ws);
void eddy__ws_set_client(eddy_ws *ws, void *c);
/* eddy_ws_abort of a connecting client: the open callback gets
 * -ECANCELED from the loop. */
void eddy__ws_client_abort(void *c);
/* The connection's options (a client's handshake reads them). */
const eddy_ws_options *eddy__ws_options(const eddy_ws *ws);

/* base64 of len bytes into out (NUL-terminated): 4 * ceil(len / 3) + 1. */
size_t eddy__ws_base64(const uint8_t *in, size_t len, char *out);
/* Whether s (len bytes) is the base64 of exactly 16 bytes. */
int eddy__ws_key_valid(const char *s, size_t len);

/* Parses a Sec-WebSocket-Extensions value: for each permessage-deflate
 * offer (server) or answer (client), in order, calls fn with its params;
 * fn returns 1 to stop. Returns EDDY_EPARSE for syntax errors. */
typedef struct eddy__ws_ext_param {
  const char *name;
  size_t name_len;
  const char *value; /* NULL if none; quotes taken off */
  size_t value_len;
} eddy__ws_ext_param;
#define EDDY__WS_MAX_PARAMS 8
int eddy__ws_parse_extensions(const char *v, size_t n,
                              int (*fn)(const char *ext, size_t ext_len,
                                        const eddy__ws_ext_param *params,
                                        size_t nparams, void *arg),
                              void *arg);
/* Reads permessage-deflate params into pmd: 0 valid, -1 otherwise
 * (unknown or repeated params, bad values). server: as an offer read by a
 * server; else as an answer read by a client. */
int eddy__ws_pmd_params(const eddy__ws_ext_param *params, size_t n,
                        eddy__ws_pmd *pmd);

#endif
