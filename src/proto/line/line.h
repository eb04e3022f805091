/* line.h: the line splitter, the pure core of line framing.
 *
 * It knows nothing of streams or loops: the owner lends it bytes
 * (eddy__lines_push) and pulls events out of them (eddy__lines_next), one
 * at a time, so that between two events the owner may run a callback that
 * switches modes, pauses (stops pulling), or frees the owner (then it
 * stops pulling and frees after the callback). Before the lent bytes go
 * away, eddy__lines_keep copies what was not yet pulled into the
 * splitter's buffer. src/proto/line/line.c wraps it around a stream;
 * tests/fuzz/line.c drives it directly.
 *
 * Lines wholly inside the lent bytes are handed out where they lie; only
 * a line that began in an earlier push is assembled in the buffer (its
 * start plus the piece of the new bytes that completes it).
 *
 * A line longer than the maximum is reported once (EDDY__LINES_TOO_LONG,
 * with its first max bytes) as soon as it is certain: when its delimiter
 * is seen, or when more bytes than max (plus what could still turn out to
 * be its delimiter) arrived without one. The rest of it, up to and
 * including its delimiter, is skipped; the line after it is delivered as
 * usual. The sequence of events for a given byte sequence is the same
 * however it is split into pushes.
 */
#ifndef EDDY_PROTO_LINE_LINE_H
#define EDDY_PROTO_LINE_LINE_H

#include <stddef.h>

#include "eddy/buf.h"
#include "eddy/line.h"

enum eddy__lines_event {
  EDDY__LINES_NONE = 0, /* every lent byte is used or kept: push more */
  EDDY__LINES_LINE,     /* a line, without its delimiter */
  EDDY__LINES_RAW,      /* raw bytes; call eddy__lines_used after */
  EDDY__LINES_TOO_LONG, /* the first max bytes of a line that is longer */
};

typedef struct eddy__lines {
  char delim[EDDY_LINE_DELIMITER_MAX]; /* the delimiter's bytes */
  size_t delim_len;                    /* 1..EDDY_LINE_DELIMITER_MAX */
  int strip_cr;   /* the default: "\n", and a "\r" before it dropped */
  size_t max;     /* the longest line delivered as a line */
  size_t limit;   /* bytes without a delimiter that prove a line longer
                      than max: max + delim_len - 1 (+ 1 with strip_cr) */
  int raw;        /* raw mode: bytes are handed out as they come */
  int skipping;   /* inside a line reported too long: dropping bytes up
                      to and including its delimiter */
  eddy_buf buf;   /* bytes not yet handed out, in front of the lent ones:
                      a partial line, or whatever keep() saved */
  size_t scanned; /* the first scanned bytes of buf cannot begin a
                      delimiter (already searched) */
  const char *in; /* lent bytes not yet used; valid until the owner's
                      next push or keep */
  size_t in_len;
  size_t raw_len; /* the raw chunk handed out and not yet marked used */
  int raw_in_buf; /* whether that chunk is in buf (else in the lent bytes) */
} eddy__lines;

/* Sets up a splitter. delim NULL (or delim_len 0) is the default; max 0 is
 * EDDY_LINE_MAX_DEFAULT. Returns 0, or -EINVAL for a delimiter longer than
 * EDDY_LINE_DELIMITER_MAX. Allocates nothing. */
int eddy__lines_init(eddy__lines *l, const char *delim, size_t delim_len,
                     size_t max);

/* Releases the buffer. */
void eddy__lines_free(eddy__lines *l);

/* Lends len bytes, which must stay valid until the next push or keep. The
 * previous lent bytes must all be used (next returned NONE) or kept. */
void eddy__lines_push(eddy__lines *l, const char *data, size_t len);

/* The next event: EDDY__LINES_NONE when everything pushed is used (what is
 * left of a partial line is then kept in the buffer), or an event with *p
 * and *n set to its bytes, valid until the next call of next, used, push
 * or keep. -ENOMEM when a partial line could not be kept: bytes are lost,
 * and the owner should end the input (the stream layer fails the
 * stream). */
int eddy__lines_next(eddy__lines *l, const char **p, size_t *n);

/* After EDDY__LINES_RAW: the first used bytes of the chunk were taken
 * (at most its length); the rest will be handed out again, in whatever
 * mode the splitter is in then. */
void eddy__lines_used(eddy__lines *l, size_t used);

/* Copies the lent bytes not yet used into the buffer, so that the owner
 * may stop pulling and let the lent bytes go. Returns 0 or -ENOMEM (then
 * the lent bytes not yet used are dropped). */
int eddy__lines_keep(eddy__lines *l);

/* Raw mode (1) or line mode (0). Any time, also between a LINE and the
 * next call: bytes after that line are handed out in the new mode. A
 * switch to raw mode ends the skipping of a too long line. */
void eddy__lines_set_raw(eddy__lines *l, int raw);

/* At the end of the input: the bytes of a last line that has no
 * delimiter (none while skipping a too long one), and the buffer emptied.
 * *p is valid until the next call. Only after next returned NONE. */
void eddy__lines_rest(eddy__lines *l, const char **p, size_t *n);

/* Bytes buffered (kept, or a partial line). */
size_t eddy__lines_buffered(const eddy__lines *l);

#endif
