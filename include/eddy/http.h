/* eddy/http.h: HTTP/1.x messages (RFC 9110, RFC 9112).
 *
 * ---- The request parser ----------------------------------------------------
 *
 * eddy_http_parse_request() reads a request head (the request line and the
 * header fields, up to the empty line) from a buffer that holds the bytes
 * received so far. It allocates nothing and copies nothing: the method,
 * target and fields it reports point into the buffer, so they stay valid
 * while the buffer does. Called again as more bytes arrive (with the
 * length already seen, so that a head trickling in a byte at a time is
 * not scanned again from the start each time), it answers 1 once the head
 * is complete, 0 while it is not, and EDDY_EHTTP when the bytes cannot be
 * a request, with the status code to answer and a reason:
 *
 *   400  a malformed request line or field; a bare CR; obs-fold (a field
 *        line starting with a space or tab); whitespace between a field
 *        name and its colon; a control character in a value; a missing,
 *        repeated or empty Host in HTTP/1.1; Content-Length that is not
 *        one decimal number (two of them, a list, a sign, an overflow);
 *        Transfer-Encoding together with Content-Length, repeated, or in
 *        HTTP/1.0; a request target with a fragment, or of a form the
 *        method does not allow;
 *   414  a request line longer than the limit;
 *   431  a head longer than the limit, or more fields than the limit;
 *   417  an Expect other than 100-continue;
 *   501  a Transfer-Encoding other than "chunked";
 *   505  an HTTP major version other than 1.
 *
 * The requests that smuggling relies on (RFC 9112 section 6.3, 11.2) are
 * all refused with 400, so that eddy and any proxy in front of it can
 * never disagree on where a request ends. A line may end in CRLF or in a
 * bare LF (as RFC 9112 section 2.2 allows and nginx does); a CR anywhere
 * else is refused. Empty lines before the request line are skipped.
 *
 * ---- Chunked bodies ------------------------------------------------------------
 *
 * eddy_http_chunked_decode() turns a chunked body into its bytes, in
 * place and incrementally: hex sizes (at most 16 digits), extensions
 * (skipped, bounded), the data, the last chunk and the trailer fields
 * (validated as header fields, bounded, then dropped).
 */
#ifndef EDDY_HTTP_H
#define EDDY_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "async.h"
#include "buf.h"
#include "common.h"
#include "core.h"
#include "coro.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum eddy_http_method {
  EDDY_HTTP_OTHER, /* a valid token eddy has no name for: method_name */
  EDDY_HTTP_GET,
  EDDY_HTTP_HEAD,
  EDDY_HTTP_POST,
  EDDY_HTTP_PUT,
  EDDY_HTTP_DELETE,
  EDDY_HTTP_OPTIONS,
  EDDY_HTTP_PATCH,
  EDDY_HTTP_CONNECT,
  EDDY_HTTP_TRACE,
} eddy_http_method;

/* A header field: name and value point into the parsed buffer. The value
 * has no leading or trailing spaces or tabs. */
typedef struct eddy_http_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} eddy_http_header;

/* Limits of a request head. A zero field takes the default. */
typedef struct eddy_http_limits {
  size_t max_request_line; /* default 8 KiB; past it: 414 */
  size_t max_head;         /* request line and fields, default 32 KiB: 431 */
  size_t max_headers;      /* fields, default 100 (at most the array): 431 */
} eddy_http_limits;

#define EDDY_HTTP_DEFAULT_MAX_REQUEST_LINE 8192
#define EDDY_HTTP_DEFAULT_MAX_HEAD 32768
#define EDDY_HTTP_DEFAULT_MAX_HEADERS 100

/* What a request asks of the connection and its body (flags). */
#define EDDY_HTTP_KEEP_ALIVE 1u      /* the connection may serve another */
#define EDDY_HTTP_CHUNKED 2u         /* the body is chunked */
#define EDDY_HTTP_EXPECT_CONTINUE 4u /* Expect: 100-continue */
#define EDDY_HTTP_UPGRADE 8u         /* Connection: upgrade (and Upgrade) */

typedef struct eddy_http_request {
  eddy_http_method method;
  const char *method_name; /* as sent; method names are case-sensitive */
  size_t method_len;
  const char *target; /* the request target, as sent */
  size_t target_len;
  /* The path and query of the target ("/a/b" and "x=1" for "/a/b?x=1",
   * and for "http://host/a/b?x=1"); "*" for OPTIONS *, the authority
   * for CONNECT. Not decoded: %XX stays as sent. */
  const char *path;
  size_t path_len;
  const char *query; /* NULL without a '?' */
  size_t query_len;
  int version_minor;         /* HTTP/1.0: 0; HTTP/1.1: 1 (and later 1.x) */
  eddy_http_header *headers; /* the caller's array, filled */
  size_t nheaders;
  const char *host; /* the Host field's value, or NULL */
  size_t host_len;
  int64_t content_length; /* -1 when there is none */
  unsigned flags;         /* EDDY_HTTP_KEEP_ALIVE, ... */
  size_t head_len;        /* bytes of the head, the empty line included */
  /* On EDDY_EHTTP: the status to answer, and why (a static string). */
  int status;
  const char *reason;
} eddy_http_request;

/* Parses the request head at buf[0, len). prev_len is how many of these
 * bytes an earlier call already saw without finding the head's end (0 the
 * first time). headers has room for max_headers fields. limits may be
 * NULL (the defaults). Returns 1 with req filled (req->head_len tells
 * where the body or the next request starts), 0 if more bytes are needed,
 * or EDDY_EHTTP with req->status and req->reason. */
EDDY_API int eddy_http_parse_request(const char *buf, size_t len,
                                     size_t prev_len,
                                     const eddy_http_limits *limits,
                                     eddy_http_header *headers,
                                     size_t max_headers,
                                     eddy_http_request *req);

/* The field named name (case-insensitive), the first if repeated, or
 * NULL. */
EDDY_API const eddy_http_header *
eddy_http_find_header(const eddy_http_request *req, const char *name);

/* ---- Chunked bodies ----------------------------------------------------------- */

typedef struct eddy_http_chunked {
  int state;
  uint64_t left;       /* data bytes left in the chunk (or size digits read) */
  size_t line;         /* bytes of the current size or trailer line */
  size_t trailers;     /* bytes of trailer fields so far */
  int ext;             /* a ';' has opened the size line's extensions */
  size_t max_trailers; /* 0: 8 KiB */
  int status;          /* on EDDY_EHTTP: 400 */
  const char *reason;
} eddy_http_chunked;

/* Decodes the chunked bytes at buf[0, *len) in place. On return the body
 * bytes they held are at buf[0, *len); the chunked framing is gone.
 * Returns 0 when every byte was taken and more are needed; 1 when the body
 * has ended: then *rest is the number of bytes that followed it (the next
 * request), left where they were, at the end of the input (from buf + the
 * original *len - *rest); or EDDY_EHTTP (d->status 400, d->reason). Start
 * with a zeroed decoder. */
EDDY_API int eddy_http_chunked_decode(eddy_http_chunked *d, char *buf,
                                      size_t *len, size_t *rest);

/* ---- The response parser -----------------------------------------------------
 *
 * eddy_http_parse_response() reads a response head (a client's: the status
 * line and the fields) as eddy_http_parse_request reads a request: nothing
 * allocated or copied, resumable with prev_len, 1 / 0 / EDDY_EHTTP (with
 * reason; status is then 0). It refuses a malformed status line (not
 * "HTTP/1.x NNN reason"), a bad field line, a bare CR, Content-Length that
 * is not one number, and heads past the limits. */

typedef struct eddy_http_response_head {
  int version_minor;  /* HTTP/1.0: 0, HTTP/1.1: 1 */
  int status;         /* 100-999 */
  const char *reason; /* the reason phrase, as sent (may be empty) */
  size_t reason_len;
  eddy_http_header *headers; /* the caller's array, filled */
  size_t nheaders;
  int64_t content_length; /* -1 when there is none */
  unsigned flags;         /* EDDY_HTTP_KEEP_ALIVE, CHUNKED, UPGRADE */
  size_t head_len;        /* bytes of the head, the empty line included */
  const char *error;      /* on EDDY_EHTTP: why (a static string) */
} eddy_http_response_head;

/* Parses the response head at buf[0, len); arguments as for
 * eddy_http_parse_request (limits->max_request_line bounds the status
 * line). */
EDDY_API int eddy_http_parse_response(const char *buf, size_t len,
                                      size_t prev_len,
                                      const eddy_http_limits *limits,
                                      eddy_http_header *headers,
                                      size_t max_headers,
                                      eddy_http_response_head *resp);
/* The field named name in a response (case-insensitive), or NULL. */
EDDY_API const eddy_http_header *
eddy_http_response_header(const eddy_http_response_head *resp,
                          const char *name);

/* ---- The server ------------------------------------------------------------
 *
 * An eddy_http_server serves HTTP/1.x on the streams given to it
 * (eddy_http_server_serve: a listener's accept callback hands each new
 * connection over). It reads requests, keeps connections alive, answers
 * pipelined requests in order (the answers of one read gathered into one
 * write), and hands each request, once its body is complete, to the
 * handler of the first route that matches.
 *
 * Routes match a method (NULL: any; a GET route answers HEAD too, without
 * the body) and a path pattern: literal bytes, ":name" for one segment,
 * "*name" for the rest of the path. A path that some route matches for
 * other methods gets 405 with Allow; one that none matches, 404. A server
 * mounted under a prefix (eddy_http_mount) is an application of its own:
 * it sees the path without the prefix, so independent applications share
 * one server and one port.
 *
 * The handler gets an exchange: the request (eddy_http_request_of, the
 * body, the route's parameters) and the means to answer. It may answer at
 * once or later, from any callback: the exchange is the program's until
 * it ends it (eddy_http_respond, or eddy_http_end after eddy_http_begin).
 * While the program holds it, no other request of that connection is
 * handled; the connection is still read, so that a client going away is
 * noticed at once: the on_gone callback runs, the connection goes, and
 * the exchange stays valid (its request copied out) until the program
 * ends it, when the answer is dropped. Every exchange must be ended.
 *
 * Errors eddy answers itself, closing the connection after: the parser's
 * (400, 414, 431, 417, 501, 505), a body past max_body (413), a head not
 * complete within header_timeout of its first byte or a body silent for
 * body_timeout (408). An idle connection between requests is closed after
 * keepalive_timeout.
 */

typedef struct eddy_http_server eddy_http_server;
typedef struct eddy_http_exchange eddy_http_exchange;
typedef void (*eddy_http_handler)(eddy_http_exchange *x, void *arg);

typedef struct eddy_http_server_options {
  eddy_http_limits limits;
  size_t max_body;              /* 0: 1 MiB; past it, 413 */
  int64_t header_timeout_ns;    /* 0: 60 s for a whole head */
  int64_t body_timeout_ns;      /* 0: 60 s of silence within a body */
  int64_t keepalive_timeout_ns; /* 0: 75 s idle between requests */
  /* Each exchange, as it ends (an access log): its status (499 if the
   * client went before an answer started) and the body bytes sent. The
   * exchange may be read, not answered. May be NULL. */
  void (*access)(const eddy_http_exchange *x, int status, uint64_t bytes,
                 void *arg);
  /* Each connection, as it ends (a program counting them). May be NULL. */
  void (*closed)(eddy_http_server *srv, void *arg);
  void *arg; /* for both */
} eddy_http_server_options;

/* options may be NULL. Returns 0 or -ENOMEM. */
EDDY_API int eddy_http_server_new(eddy_loop *loop,
                                  const eddy_http_server_options *options,
                                  eddy_http_server **out);
/* Aborts every connection and frees what the server holds, exchanges the
 * program has not ended included (their on_gone runs first). */
EDDY_API void eddy_http_server_free(eddy_http_server *srv);

/* Adds a route (pattern starts with '/'). Returns 0, -EINVAL or -ENOMEM. */
EDDY_API int eddy_http_route(eddy_http_server *srv, const char *method,
                             const char *pattern, eddy_http_handler handler,
                             void *arg);
/* Mounts app under prefix ("/api"): requests for the prefix and below go
 * to app's routes with the prefix taken off the path. app stays the
 * caller's, and must outlive srv's use of it. */
EDDY_API int eddy_http_mount(eddy_http_server *srv, const char *prefix,
                             eddy_http_server *app);

/* Serves HTTP on s, which the server takes over (its callbacks). Returns
 * 0, or -ENOMEM (s is aborted). */
EDDY_API int eddy_http_server_serve(eddy_http_server *srv, eddy_stream *s);
/* A graceful stop: idle connections close now, the others after the
 * response in progress (which says Connection: close). */
EDDY_API void eddy_http_server_drain(eddy_http_server *srv);
/* Connections open. */
EDDY_API size_t eddy_http_server_connections(const eddy_http_server *srv);

/* The request. Its spans stay valid until the exchange ends. */
EDDY_API const eddy_http_request *
eddy_http_request_of(const eddy_http_exchange *x);
/* The body (decoded if it was chunked); NULL with *len 0 if none. */
EDDY_API const char *eddy_http_body(const eddy_http_exchange *x, size_t *len);
/* The route parameter name (":name" or "*name"): 0, or -ENOENT. */
EDDY_API int eddy_http_param(const eddy_http_exchange *x, const char *name,
                             const char **value, size_t *len);
/* The connection's stream, or NULL once gone. */
EDDY_API eddy_stream *eddy_http_stream(const eddy_http_exchange *x);

/* Takes the connection over from the server (a WebSocket handshake, a
 * CONNECT tunnel): sends the response head now (status: 101, or a 2xx
 * for CONNECT; the fields set with eddy_http_set_header; no
 * Content-Length), after any answers to earlier pipelined requests, and
 * ends the exchange. The stream becomes the caller's: set its callbacks
 * (eddy_stream_set_callbacks) before returning to the loop; the server's
 * timeouts and its connection count no longer include it (the access
 * hook reports the status with 0 bytes, the closed hook runs now); the
 * caller closes it. Bytes the client sent after the request (the new
 * protocol's first bytes) are appended to rest, an eddy_buf the caller
 * initialized, or dropped if rest is NULL. Returns 0 with *out set;
 * -EALREADY after a response started; -EINVAL for another status (x is
 * still the program's); EDDY_ECLOSED if the client had gone or the head
 * could not be written, or -ENOMEM: then the connection is aborted, x is
 * gone and *out is NULL. */
EDDY_API int eddy_http_upgrade(eddy_http_exchange *x, int status,
                               eddy_buf *rest, eddy_stream **out);

/* A response field, before the response starts. Returns 0, -EINVAL (a
 * name that is not a token, a value with a CR, LF or other control),
 * -EALREADY after the start, -ENOBUFS past 16 KiB of fields, -ENOMEM. */
EDDY_API int eddy_http_set_header(eddy_http_exchange *x, const char *name,
                                  const char *value);
/* The whole response: status, Content-Type (NULL: none; one of 256 bytes
 * or more is left out), body (copied or
 * sent before the return), with Content-Length. Ends the exchange; x is
 * gone after the call. Returns 0, -EINVAL (status), EDDY_ECLOSED if the
 * client had gone (x is gone all the same), or the write's error. */
EDDY_API int eddy_http_respond(eddy_http_exchange *x, int status,
                               const char *content_type, const void *body,
                               size_t len);
/* eddy_http_respond with a short text body: "404 Not Found\n". */
EDDY_API int eddy_http_respond_status(eddy_http_exchange *x, int status);
/* A response whose body is len bytes of the file fd from offset, sent by
 * sendfile (read through the layer on TLS). Takes fd (closed once sent,
 * or at once on error, or for HEAD, where fd may be -1). Ends the
 * exchange as eddy_http_respond does. */
EDDY_API int eddy_http_respond_file(eddy_http_exchange *x, int status,
                                    const char *content_type, int fd,
                                    off_t offset, size_t len);
/* A streamed response: the head now, then eddy_http_write as the body
 * comes (chunked for HTTP/1.1; for HTTP/1.0 the connection's close ends
 * it), then eddy_http_end, which ends the exchange. While
 * eddy_http_over_high says so, the client is not keeping up. */
EDDY_API int eddy_http_begin(eddy_http_exchange *x, int status,
                             const char *content_type);
EDDY_API int eddy_http_write(eddy_http_exchange *x, const void *data,
                             size_t len);
EDDY_API int eddy_http_end(eddy_http_exchange *x);
/* For a streamed response, bytes already framed for the wire (for a
 * chunked response, whole chunks: "1a\r\n" + 26 bytes + "\r\n"), taken
 * as eddy_stream_write_owned takes them: no copy, free_fn(data) once sent
 * or dropped (or before the return on error; free_fn may be NULL). What
 * the exchange gathered before goes first. This is how one encoded block
 * is shared by many connections (eddy/comet.h). Returns 0, -EINVAL
 * before eddy_http_begin, EDDY_ECLOSED once the client has gone, or the
 * write's error; for HEAD, 0 and nothing sent. */
EDDY_API int eddy_http_write_framed(eddy_http_exchange *x, void *data,
                                    size_t len, void (*free_fn)(void *));
/* 1 if the streamed response is chunked (HTTP/1.1), 0 if the close ends
 * it (HTTP/1.0). */
EDDY_API int eddy_http_chunked_response(const eddy_http_exchange *x);
EDDY_API int eddy_http_over_high(const eddy_http_exchange *x);
/* Called once if the client goes away before the exchange ends. */
EDDY_API void eddy_http_on_gone(eddy_http_exchange *x,
                                void (*cb)(eddy_http_exchange *x, void *arg),
                                void *arg);

/* The loop the exchange's server runs on. */
EDDY_API eddy_loop *eddy_http_loop(const eddy_http_exchange *x);

/* ---- Coroutines and Deferreds ------------------------------------------------
 *
 * A handler may be a coroutine: it reads as sequential code (await a
 * Deferred, sleep, talk to another server) and answers when it has the
 * answer. It runs in a coroutine of its own; if the client goes away, the
 * coroutine is cancelled (its waits return -ECANCELED). If it returns
 * without answering, eddy answers 500 (503 if cancelled) and ends the
 * exchange. Or a plain handler may answer with a Deferred: when it fires
 * with an eddy_http_response, that is the answer; an error answers 500
 * (504 for -ETIMEDOUT); the client going away cancels it.
 *
 * A server whose handlers may still be running (coroutines, Deferreds)
 * is freed after the loop has run them to their end: eddy_loop_close_all,
 * a run until idle, then eddy_http_server_free.
 */

typedef int (*eddy_http_coro_handler)(eddy_coro *co, eddy_http_exchange *x,
                                      void *arg);

/* eddy_http_route for a coroutine handler. */
EDDY_API int eddy_http_route_coro(eddy_http_server *srv, const char *method,
                                  const char *pattern,
                                  eddy_http_coro_handler fn, void *arg);

/* What a Deferred given to eddy_http_respond_deferred fires with. The body
 * is copied or sent before the Deferred frees the value. */
typedef struct eddy_http_response {
  int status;
  const char *content_type;
  const void *body;
  size_t len;
} eddy_http_response;

/* Answers x with d's result (see above), taking d. Returns 0, or -ENOMEM
 * (x is answered 503 and d freed). */
EDDY_API int eddy_http_respond_deferred(eddy_http_exchange *x,
                                        eddy_deferred *d);

/* ---- Static files ----------------------------------------------------------
 *
 * Files under a directory, served at a prefix (eddy_http_static_route):
 * GET and HEAD (405 otherwise); Content-Type from the extension (a
 * built-in table, then /etc/mime.types); Last-Modified and a weak ETag,
 * with If-None-Match and If-Modified-Since answered 304; a single byte
 * Range answered 206 (416 when it cannot be satisfied; several ranges are
 * ignored and the whole file sent), If-Range honoured; small files sent
 * with the head in one write, larger ones by sendfile.
 *
 * The path is percent-decoded once: a bad escape, an encoded NUL, slash
 * or backslash is 400. ".." never leads above the root (404), and a file
 * is opened beneath the root's descriptor (openat2 RESOLVE_BENEATH), so
 * a symbolic link leading out of the root is refused (403) unless
 * follow_symlinks_out allows it. Names starting with '.' are 404 unless
 * dotfiles. A directory named without its final '/' is redirected (301)
 * to it; with the '/', its index file (index.html by default) is served,
 * or with listing a list of its names (escaped), or else 403.
 */

typedef struct eddy_http_static eddy_http_static;

typedef struct eddy_http_static_options {
  const char *index;       /* NULL: "index.html"; "": none */
  int listing;             /* list a directory that has no index file */
  int dotfiles;            /* serve names that start with '.' */
  int follow_symlinks_out; /* let symbolic links lead out of the root */
} eddy_http_static_options;

/* Opens dir for serving. Returns 0, or the error of opening it (-ENOENT,
 * -ENOTDIR, -EACCES), or -ENOMEM. */
EDDY_API int eddy_http_static_new(const char *dir,
                                  const eddy_http_static_options *options,
                                  eddy_http_static **out);
EDDY_API void eddy_http_static_free(eddy_http_static *st);
/* Serves st at prefix ("/", "/docs") on srv; st must outlive srv. */
EDDY_API int eddy_http_static_route(eddy_http_server *srv, const char *prefix,
                                    eddy_http_static *st);

/* "OK" for 200, and so on; "Unknown" for a code without a name here. */
EDDY_API const char *eddy_http_reason(int status);

#ifdef __cplusplus
}
#endif
#endif
