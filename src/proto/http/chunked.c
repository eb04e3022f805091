/* chunked.c: the chunked transfer coding, decoded in place (RFC 9112
 * section 7.1).
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*("0") [ chunk-ext ] CRLF
 *
 * A state machine over the bytes as they come: the data of each chunk is
 * moved down over the framing that preceded it, so the body ends up
 * contiguous at the front of the buffer. As in the head parser, a bare LF
 * ends a line and a bare CR is refused. */
#include <string.h>

#include "eddy/http.h"
#include "proto/http/http.h"

enum {
  SIZE,     /* hex digits of a chunk size */
  EXT,      /* after the size: extensions, up to the line's end */
  SIZE_LF,  /* the size line's CR seen */
  DATA,     /* left bytes of data to go */
  DATA_END, /* the CRLF after a chunk's data */
  DATA_LF,  /* its CR seen */
  TRAILER,  /* the start of a trailer line, or of the final empty line */
  FIELD,    /* inside a trailer field line */
  FIELD_LF, /* a trailer line's CR seen */
  FINAL_LF, /* the final empty line's CR seen */
  DONE,
};

#define MAX_SIZE_LINE 4096
#define MAX_TRAILERS 8192
#define MAX_DIGITS 16

static int bad(eddy_http_chunked *d, const char *reason) {
  d->status = 400;
  d->reason = reason;
  return EDDY_EHTTP;
}

static int hex(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int eddy_http_chunked_decode(eddy_http_chunked *d, char *buf, size_t *len,
                             size_t *rest) {
  size_t r = 0, w = 0, n = *len;
  size_t max_trailers = d->max_trailers ? d->max_trailers : MAX_TRAILERS;
  while (r < n && d->state != DONE) {
    unsigned char c = (unsigned char)buf[r];
    switch (d->state) {
    case SIZE: {
      int v = hex(c);
      if (v >= 0) {
        if (++d->line > MAX_DIGITS)
          return bad(d, "a chunk size of more than 16 hex digits");
        d->left = d->left * 16 + (uint64_t)v;
        r++;
        break;
      }
      if (d->line == 0)
        return bad(d, "a chunk size that is not hex");
      d->state = EXT;
      d->line = 0;
      break; /* the same byte, as the line's next */
    }
    case EXT:
      if (c == '\n' || c == '\r') {
        d->state = c == '\r' ? SIZE_LF : (d->left ? DATA : TRAILER);
        d->line = 0;
        d->ext = 0;
      } else if (c != '\t' && (c < ' ' || c == 0x7f)) {
        return bad(d, "a control character in a chunk extension");
      } else if (++d->line > MAX_SIZE_LINE) {
        return bad(d, "a chunk extension that is too long");
      } else if (c == ';') {
        d->ext = 1;
      } else if (!d->ext && c != ' ' && c != '\t') {
        return bad(d, "a malformed chunk size line");
      }
      r++;
      break;
    case SIZE_LF:
      if (c != '\n')
        return bad(d, "a bare CR");
      d->state = d->left ? DATA : TRAILER;
      r++;
      break;
    case DATA: {
      size_t take = n - r < d->left ? n - r : (size_t)d->left;
      memmove(buf + w, buf + r, take);
      w += take;
      r += take;
      d->left -= take;
      if (d->left == 0)
        d->state = DATA_END;
      break;
    }
    case DATA_END:
      if (c == '\r')
        d->state = DATA_LF;
      else if (c == '\n')
        d->state = SIZE;
      else
        return bad(d, "chunk data longer than its size");
      r++;
      break;
    case DATA_LF:
      if (c != '\n')
        return bad(d, "a bare CR");
      d->state = SIZE;
      r++;
      break;
    case TRAILER: /* d->left is 0 from here on: it marks the colon */
      if (c == '\r') {
        d->state = FINAL_LF;
      } else if (c == '\n') {
        d->state = DONE;
      } else if (c == ' ' || c == '\t') {
        return bad(d, "a folded trailer field (obs-fold)");
      } else {
        d->state = FIELD;
        d->line = 0;
        break;
      }
      r++;
      break;
    case FIELD:
      if (c == '\r' || c == '\n') {
        if (!d->left)
          return bad(d, "a malformed trailer field");
        d->left = 0;
        d->state = c == '\r' ? FIELD_LF : TRAILER;
      } else if (++d->trailers > max_trailers) {
        return bad(d, "trailer fields that are too long");
      } else if (d->left) {
        if (!eddy__http_is_value_char(c))
          return bad(d, "a control character in a trailer field");
      } else if (c == ':') {
        if (d->line == 0)
          return bad(d, "a malformed trailer field");
        d->left = 1;
      } else if (!eddy__http_is_tchar(c)) {
        return bad(d, "a malformed trailer field");
      } else {
        d->line++;
      }
      r++;
      break;
    case FIELD_LF:
    case FINAL_LF:
      if (c != '\n')
        return bad(d, "a bare CR");
      d->state = d->state == FIELD_LF ? TRAILER : DONE;
      r++;
      break;
    }
  }
  *len = w;
  if (d->state != DONE) {
    *rest = 0;
    return 0;
  }
  *rest = n - r; /* left where they are, at the end of the input */
  return 1;
}
