/* http.h: what the files of src/proto/http share. */
#ifndef EDDY_PROTO_HTTP_HTTP_H
#define EDDY_PROTO_HTTP_HTTP_H

#include <stddef.h>

#include "eddy/http.h"

/* A token character (RFC 9110 5.6.2). */
int eddy__http_is_tchar(unsigned char c);
/* A field value character: VCHAR, SP, HTAB or obs-text. */
int eddy__http_is_value_char(unsigned char c);
/* a[0, alen) equals the NUL-terminated b, ignoring ASCII case. */
int eddy__http_ieq(const char *a, size_t alen, const char *b);
/* Parses the field line buf[start, end) (no line ending) into h: 0, or -1
 * with *reason (obs-fold, whitespace before the colon, a control
 * character, no name or colon). */
int eddy__http_field_line(const char *buf, size_t start, size_t end,
                          eddy_http_header *h, const char **reason);

/* The limits in force (a NULL limits or a zero field: the default), the
 * field count also bounded by the caller's array of max_headers. */
typedef struct eddy__http_max {
  size_t line, head, fields;
} eddy__http_max;
eddy__http_max eddy__http_limits(const eddy_http_limits *limits,
                                 size_t max_headers);

/* *flag is set to 1 as x ends (before its memory goes). */
void eddy__http_watch_end(eddy_http_exchange *x, int *flag);
/* eddy_http_route whose arg the server frees with itself. */
int eddy__http_route_owned(eddy_http_server *srv, const char *method,
                           const char *pattern, eddy_http_handler handler,
                           void *arg);

#endif
