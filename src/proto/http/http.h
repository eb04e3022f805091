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

#endif
