/* eddy/line.h: line framing over a stream (Twisted's LineReceiver,
 * Diesel's until_eol).
 *
 * An eddy_line takes over a stream's callbacks: the program gives it the
 * stream and its own callbacks, and gets whole lines. Bytes are split on a
 * delimiter: by default "\n", with a "\r" just before it dropped (so both
 * "a\n" and "a\r\n" give "a"); or any byte string given in the options
 * ("\r\n" strictly, "\0", "--boundary").
 *
 * Callbacks (any may be NULL):
 *
 * line      a line, without its delimiter; borrowed, valid until the
 *           callback returns. Lines that lie wholly inside one read are
 *           delivered where they lie (no copy, no allocation); only a line
 *           that spans reads is assembled in the reader's buffer.
 * raw       in raw mode, bytes as they come; borrowed. Returns how many it
 *           took: the rest is delivered next, in whatever mode the reader
 *           is then in. So a program that reads a body of n bytes takes at
 *           most n, switches back to line mode, and returns the count; the
 *           lines after the body follow. Returning less while staying in
 *           raw mode and not paused delivers the rest again at once. NULL:
 *           raw bytes are dropped.
 * too_long  a line longer than the maximum (max_length): its first
 *           max_length bytes. The rest of that line, up to and including
 *           its delimiter, is skipped; the lines after it are delivered as
 *           usual. NULL: the stream fails with EDDY_ETOOLONG and the detail
 *           "line longer than N bytes" (through the close callback).
 * eof       the peer finished sending; rest is a last line that had no
 *           delimiter (len 0 if none). NULL: rest is dropped and the stream
 *           closed (eddy_stream_close), as a stream without an eof
 *           callback does.
 * drain     passed on from the stream (see eddy/net.h).
 * close     passed on from the stream, with its status and detail. After
 *           it returns the reader is freed, with the stream.
 *
 * From inside any of its callbacks the program may switch modes, pause,
 * close the stream, or free the reader: delivery stops at once (after a
 * pause, until eddy_line_resume; after a close or a free, for good), and
 * no byte already read is lost by a switch or a pause. Pause the reader
 * with eddy_line_pause, not the stream: eddy_stream_pause stops reading,
 * but not the lines of a read that are already being delivered.
 */
#ifndef EDDY_LINE_H
#define EDDY_LINE_H

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_LINE_MAX_DEFAULT 65536
#define EDDY_LINE_DELIMITER_MAX 32

typedef struct eddy_line eddy_line;

typedef struct eddy_line_callbacks {
  void (*line)(eddy_line *lr, const char *line, size_t len, void *arg);
  size_t (*raw)(eddy_line *lr, const char *data, size_t len, void *arg);
  void (*too_long)(eddy_line *lr, const char *start, size_t len, void *arg);
  void (*eof)(eddy_line *lr, const char *rest, size_t len, void *arg);
  void (*drain)(eddy_line *lr, void *arg);
  void (*close)(eddy_line *lr, int status, const char *detail, void *arg);
} eddy_line_callbacks;

typedef struct eddy_line_options {
  const char *delimiter; /* NULL: "\n" with an optional "\r" before it */
  size_t delimiter_len;  /* 1..EDDY_LINE_DELIMITER_MAX; 0 with NULL */
  size_t max_length;     /* the longest line, delimiter not counted;
                            0: EDDY_LINE_MAX_DEFAULT (64 KiB) */
} eddy_line_options;

/* Makes a line reader over s (options may be NULL for the defaults) and
 * gives it s's callbacks; s keeps its descriptors, buffers and settings.
 * Returns 0, -EINVAL (a delimiter longer than EDDY_LINE_DELIMITER_MAX, or
 * NULL arguments), or -ENOMEM (s is unchanged). */
EDDY_API int eddy_line_open(eddy_stream *s, const eddy_line_options *options,
                            const eddy_line_callbacks *cb, void *arg,
                            eddy_line **out);

/* The stream underneath, for everything else (eddy_stream_write, close,
 * shutdown, watermarks). */
EDDY_API eddy_stream *eddy_line_stream(const eddy_line *lr);

/* Writes len bytes and the delimiter after them, in one write ("\r\n" for
 * the default delimiter). Returns what eddy_stream_writev returns. */
EDDY_API int eddy_line_write(eddy_line *lr, const void *line, size_t len);

/* Raw mode (Twisted's setRawMode) when raw is 1, line mode (setLineMode)
 * when 0. From a line callback, the bytes after that line are delivered
 * in the new mode. */
EDDY_API void eddy_line_set_raw(eddy_line *lr, int raw);
EDDY_API int eddy_line_is_raw(const eddy_line *lr);

/* The bytes read but not delivered (a partial line, or lines held by a
 * pause) and their count; *data is valid until the next callback or call.
 * From the close callback: a last line the end of the stream cut off. A
 * too long line being skipped counts as none. */
EDDY_API size_t eddy_line_pending(const eddy_line *lr, const char **data);

/* Stops delivery (lines already read stay buffered) and reading. */
EDDY_API void eddy_line_pause(eddy_line *lr);

/* Delivers the lines buffered while paused, before it returns (as
 * Twisted's LineReceiver.resumeProducing does), then reads again. From
 * inside a callback it only lifts the pause: delivery goes on when the
 * callback returns. */
EDDY_API void eddy_line_resume(eddy_line *lr);

/* Frees the reader (safe from its own callbacks; then after the callback
 * returns) and leaves the stream without callbacks, open, the program's:
 * bytes the reader had buffered are dropped. Not after the close callback,
 * which frees it already. */
EDDY_API void eddy_line_free(eddy_line *lr);

#ifdef __cplusplus
}
#endif
#endif
