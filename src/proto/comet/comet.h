/* comet.h: what the comet files share. */
#ifndef EDDY_PROTO_COMET_H
#define EDDY_PROTO_COMET_H

#include "eddy/comet.h"

/* The built-in formats' encoders (format.c). */
int eddy__comet_encode_sse(const eddy_comet_msg *m, eddy_buf *out, void *arg);
int eddy__comet_encode_sse_chunked(const eddy_comet_msg *m, eddy_buf *out,
                                   void *arg);
int eddy__comet_encode_line(const eddy_comet_msg *m, eddy_buf *out, void *arg);

/* The width of the chunk size EDDY_COMET_SSE_CHUNKED writes ("0000002a"):
 * fixed, so that the size can be written once the event is encoded. */
#define EDDY__COMET_CHUNK_DIGITS 8

/* A decimal id (a Last-Event-ID, a since=): 0, or -EINVAL. */
int eddy__comet_parse_id(const char *p, size_t n, uint64_t *v);

#endif
