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

#include "common.h"

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

#ifdef __cplusplus
}
#endif
#endif
