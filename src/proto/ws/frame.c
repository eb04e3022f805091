/* frame.c: the WebSocket frame parser and encoder (RFC 6455 section 5).
 *
 * The parser is a resumable state machine in the manner of nginx's: the
 * header bytes are gathered in the parser's own 14-byte array (a header
 * may be split across reads at any byte), the payload is reported where
 * it lies in the caller's buffer. Every check a header needs is made as
 * soon as the bytes that decide it are in: the first two bytes decide the
 * opcode, the reserved bits, masking and a control frame's length, so a
 * bad frame is refused before its length or key has even arrived. The
 * parser never allocates and never writes into the caller's bytes. */
#include <errno.h>
#include <string.h>

#include "eddy/ws.h"

enum { S_HEAD, S_DATA, S_END, S_FAILED };

void eddy_ws_parser_init(eddy_ws_parser *p, unsigned flags,
                         uint64_t max_payload) {
  memset(p, 0, sizeof *p);
  p->flags = flags;
  p->max_payload = max_payload;
  p->state = S_HEAD;
}

int eddy_ws_close_code_valid(int code) {
  if (code >= 1000 && code <= 1003)
    return 1;
  if (code >= 1007 && code <= 1014)
    return 1;
  return code >= 3000 && code <= 4999;
}

static int refuse(eddy_ws_parser *p, int code, const char *reason) {
  p->state = S_FAILED;
  p->code = code;
  p->reason = reason;
  return EDDY_EPARSE;
}

static int is_control(int opcode) {
  return opcode >= 8;
}

/* The checks the first two bytes decide. 0, or a refusal. */
static int check_start(eddy_ws_parser *p) {
  uint8_t b0 = p->head[0], b1 = p->head[1];
  int op = b0 & 0x0F, rsv1 = (b0 & 0x40) != 0;
  if (b0 & 0x30)
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "reserved bit RSV2 or RSV3 set");
  if (op > EDDY_WS_BINARY && (op < EDDY_WS_CLOSE || op > EDDY_WS_PONG))
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "unknown opcode");
  if (rsv1 && (!(p->flags & EDDY_WS_PARSE_RSV1) || is_control(op) ||
               op == EDDY_WS_CONT))
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "reserved bit RSV1 set");
  if (is_control(op) && !(b0 & 0x80))
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "fragmented control frame");
  if (is_control(op) && (b1 & 0x7F) > EDDY_WS_MAX_CONTROL)
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "control frame over 125 bytes");
  if (op == EDDY_WS_CONT && !p->in_message)
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "continuation with no message");
  if ((op == EDDY_WS_TEXT || op == EDDY_WS_BINARY) && p->in_message)
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "new message inside a message");
  if ((p->flags & EDDY_WS_PARSE_SERVER) && !(b1 & 0x80))
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "unmasked client frame");
  if ((p->flags & EDDY_WS_PARSE_CLIENT) && (b1 & 0x80))
    return refuse(p, EDDY_WS_PROTOCOL_ERROR, "masked server frame");
  return 0;
}

static unsigned head_size(const uint8_t *head) {
  unsigned n = 2, len7 = head[1] & 0x7F;
  if (len7 == 126)
    n += 2;
  else if (len7 == 127)
    n += 8;
  if (head[1] & 0x80)
    n += 4;
  return n;
}

/* The header is whole: fills p's frame fields. */
static int finish_head(eddy_ws_parser *p) {
  const uint8_t *h = p->head;
  unsigned len7 = h[1] & 0x7F, at = 2;
  uint64_t len = len7;
  if (len7 == 126) {
    len = (uint64_t)h[2] << 8 | h[3];
    at = 4;
  } else if (len7 == 127) {
    len = 0;
    for (unsigned i = 0; i < 8; i++)
      len = len << 8 | h[2 + i];
    at = 10;
    if (len >> 63)
      return refuse(p, EDDY_WS_PROTOCOL_ERROR, "64-bit length with top bit");
  }
  if (p->max_payload && len > p->max_payload)
    return refuse(p, EDDY_WS_TOO_BIG, "frame larger than the limit");
  p->fin = (h[0] & 0x80) != 0;
  p->rsv1 = (h[0] & 0x40) != 0;
  p->opcode = h[0] & 0x0F;
  p->masked = (h[1] & 0x80) != 0;
  if (p->masked)
    memcpy(p->mask, h + at, 4);
  else
    memset(p->mask, 0, 4);
  p->length = len;
  p->offset = 0;
  if (!is_control(p->opcode))
    p->in_message = !p->fin;
  p->head_len = 0;
  p->state = len ? S_DATA : S_END;
  return EDDY_WS_HEADER;
}

/* Gathers header bytes; returns 0 (need more), a refusal, or HEADER. */
static int read_head(eddy_ws_parser *p, const char *buf, size_t len,
                     size_t *used) {
  size_t i = 0;
  while (i < len) {
    p->head[p->head_len++] = (uint8_t)buf[i++];
    if (p->head_len == 2) {
      int r = check_start(p);
      if (r < 0) {
        *used = i;
        return r;
      }
    }
    if (p->head_len >= 2 && p->head_len == head_size(p->head)) {
      *used = i;
      return finish_head(p);
    }
  }
  *used = i;
  return 0;
}

int eddy_ws_parse(eddy_ws_parser *p, const char *buf, size_t len, size_t *used,
                  const char **data, size_t *dlen) {
  *used = 0;
  switch (p->state) {
  case S_HEAD:
    return read_head(p, buf, len, used);
  case S_DATA: {
    uint64_t left = p->length - p->offset;
    size_t n = len < left ? len : (size_t)left;
    if (n == 0)
      return 0;
    *data = buf;
    *dlen = n;
    *used = n;
    p->offset += n;
    if (p->offset == p->length)
      p->state = S_END;
    return EDDY_WS_DATA;
  }
  case S_END:
    p->state = S_HEAD;
    return EDDY_WS_END;
  default:
    return EDDY_EPARSE;
  }
}

void eddy_ws_unmask(char *dst, const char *src, size_t n, const uint8_t *mask,
                    uint64_t offset) {
  size_t i = 0;
  if (mask == NULL) {
    if (dst != src && n > 0)
      memmove(dst, src, n);
    return;
  }
  /* Align on the key, then a word at a time. */
  while (i < n && ((offset + i) & 3) != 0) {
    dst[i] = (char)(src[i] ^ mask[(offset + i) & 3]);
    i++;
  }
  if (n - i >= 8) {
    uint8_t k8[8];
    uint64_t key, w;
    for (int j = 0; j < 8; j++)
      k8[j] = mask[j & 3];
    memcpy(&key, k8, 8);
    for (; n - i >= 8; i += 8) {
      memcpy(&w, src + i, 8);
      w ^= key;
      memcpy(dst + i, &w, 8);
    }
  }
  for (; i < n; i++)
    dst[i] = (char)(src[i] ^ mask[(offset + i) & 3]);
}

size_t eddy_ws_frame_header(char *out, int fin, int opcode, int rsv1,
                            uint64_t len, const uint8_t *mask) {
  uint8_t *o = (uint8_t *)out;
  size_t n = 2;
  o[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
  o[1] = mask ? 0x80 : 0;
  if (len < 126) {
    o[1] |= (uint8_t)len;
  } else if (len <= 0xFFFF) {
    o[1] |= 126;
    o[2] = (uint8_t)(len >> 8);
    o[3] = (uint8_t)len;
    n = 4;
  } else {
    o[1] |= 127;
    for (int i = 0; i < 8; i++)
      o[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    n = 10;
  }
  if (mask) {
    memcpy(o + n, mask, 4);
    n += 4;
  }
  return n;
}
