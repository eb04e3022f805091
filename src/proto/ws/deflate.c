/* deflate.c: permessage-deflate (RFC 7692) through zlib.
 *
 * A message is deflated as raw DEFLATE ending in a sync flush, whose
 * final empty stored block (00 00 FF FF) is taken off; the receiver puts
 * it back and inflates. zlib allocates through eddy's allocator, so the
 * tests' allocation faults reach it. Inflating is bounded: the output
 * never grows past the connection's max_message (plus one byte, to tell
 * "exactly max" from "more"), so a small compressed frame that inflates
 * to gigabytes costs max_message bytes and ends in -EMSGSIZE (1009). */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "proto/ws/ws.h"
#include "sys/alloc.h"

static const char tail[4] = {0, 0, (char)0xFF, (char)0xFF};

static voidpf zalloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  if (size && items > SIZE_MAX / size)
    return Z_NULL;
  return eddy__malloc((size_t)items * size);
}

static void zfree(voidpf opaque, voidpf p) {
  (void)opaque;
  eddy__free(p);
}

static z_stream *zstream_new(void) {
  z_stream *zs = eddy__calloc(1, sizeof *zs);
  if (zs) {
    zs->zalloc = zalloc;
    zs->zfree = zfree;
  }
  return zs;
}

static int deflate_open(eddy__ws_zlib *z) {
  z_stream *zs;
  if (z->zs)
    return 0;
  zs = zstream_new();
  if (zs == NULL)
    return -ENOMEM;
  if (deflateInit2(zs, z->level, Z_DEFLATED, -z->bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    eddy__free(zs);
    return -ENOMEM;
  }
  z->zs = zs;
  return 0;
}

static int inflate_open(eddy__ws_zlib *z) {
  z_stream *zs;
  if (z->zs)
    return 0;
  zs = zstream_new();
  if (zs == NULL)
    return -ENOMEM;
  /* Always the largest window: it reads a peer using any smaller one. */
  if (inflateInit2(zs, -15) != Z_OK) {
    eddy__free(zs);
    return -ENOMEM;
  }
  z->zs = zs;
  return 0;
}

void eddy__ws_zlib_free(eddy__ws_zlib *z, int deflating) {
  if (z->zs == NULL)
    return;
  if (deflating)
    deflateEnd(z->zs);
  else
    inflateEnd(z->zs);
  eddy__free(z->zs);
  z->zs = NULL;
}

static int deflate_with(eddy__ws_zlib *z, const char *data, size_t len,
                        eddy_buf *out) {
  size_t start = eddy_buf_len(out);
  z_stream *zs;
  int r = deflate_open(z);
  if (r < 0)
    return r;
  zs = z->zs;
  zs->next_in = (Bytef *)(uintptr_t)data;
  zs->avail_in = (uInt)len; /* messages are far below 4 GiB */
  do {
    char *space;
    size_t room;
    r = eddy_buf_reserve(out, len / 2 + 64, &space, &room);
    if (r < 0)
      goto fail;
    if (room > UINT32_MAX)
      room = UINT32_MAX;
    zs->next_out = (Bytef *)space;
    zs->avail_out = (uInt)room;
    r = deflate(zs, Z_SYNC_FLUSH);
    eddy_buf_commit(out, room - zs->avail_out);
    if (r == Z_MEM_ERROR) {
      r = -ENOMEM;
      goto fail;
    }
  } while (zs->avail_out == 0 || zs->avail_in > 0);
  /* The sync flush ends in 00 00 FF FF: take it off. */
  if (eddy_buf_len(out) - start >= 4)
    out->last -= 4;
  if (z->takeover)
    return 0;
  if (!z->keep) {
    eddy__ws_zlib_free(z, 1);
    return 0;
  }
  if (deflateReset(zs) != Z_OK) {
    r = -ENOMEM;
    goto fail;
  }
  return 0;
fail:
  out->last = out->pos + start;
  eddy__ws_zlib_free(z, 1);
  return r;
}

/* Inflates one input into out, bounded. */
static int inflate_part(z_stream *zs, const char *in, size_t n, size_t base,
                        size_t max, eddy_buf *out) {
  zs->next_in = (Bytef *)(uintptr_t)in;
  zs->avail_in = (uInt)n;
  for (;;) {
    char *space;
    size_t room, made = eddy_buf_len(out) - base;
    int r = eddy_buf_reserve(out, 4096, &space, &room);
    if (r < 0)
      return r;
    if (room > max - made + 1)
      room = max - made + 1;
    if (room > UINT32_MAX)
      room = UINT32_MAX;
    zs->next_out = (Bytef *)space;
    zs->avail_out = (uInt)room;
    r = inflate(zs, Z_SYNC_FLUSH);
    eddy_buf_commit(out, room - zs->avail_out);
    if (eddy_buf_len(out) - base > max)
      return -EMSGSIZE;
    if (r == Z_MEM_ERROR)
      return -ENOMEM;
    if (r == Z_NEED_DICT || r == Z_DATA_ERROR || r == Z_STREAM_ERROR)
      return EDDY_EPARSE;
    if (r == Z_STREAM_END) {
      /* A final block: what follows starts a new stream. */
      inflateReset(zs);
      if (zs->avail_in == 0)
        return 0;
      continue;
    }
    if (zs->avail_in == 0 && zs->avail_out > 0)
      return 0;
    if (r == Z_BUF_ERROR && zs->avail_out > 0)
      return 0;
  }
}

static int inflate_with(eddy__ws_zlib *z, const char *data, size_t len,
                        size_t max, eddy_buf *out) {
  size_t base = eddy_buf_len(out);
  int r = inflate_open(z);
  if (r < 0)
    return r;
  r = inflate_part(z->zs, data, len, base, max, out);
  if (r == 0)
    r = inflate_part(z->zs, tail, sizeof tail, base, max, out);
  if (r < 0) {
    out->last = out->pos + base;
    eddy__ws_zlib_free(z, 0); /* its state is unknown now */
    return r;
  }
  if (z->takeover)
    return 0;
  if (!z->keep || inflateReset(z->zs) != Z_OK)
    eddy__ws_zlib_free(z, 0);
  return 0;
}

/* ---- The thread's streams ----------------------------------------------------
 *
 * Without context takeover a stream is reset after every message, so the
 * connections of one thread (one loop) can take turns with one deflate
 * and one inflate stream instead of making and freeing one per message
 * (a deflate stream is 256 KiB, and making one costs more than
 * compressing a short message). The streams live while some connection
 * of the thread has permessage-deflate (eddy__ws_zcache_hold), and are
 * freed with the last one, so no memory outlives the connections. */

static _Thread_local struct {
  unsigned users;
  eddy__ws_zlib def, inf;
} zcache;

void eddy__ws_zcache_hold(void) {
  zcache.users++;
}

void eddy__ws_zcache_release(void) {
  if (zcache.users == 0 || --zcache.users > 0)
    return;
  eddy__ws_zlib_free(&zcache.def, 1);
  eddy__ws_zlib_free(&zcache.inf, 0);
}

int eddy__ws_deflate(eddy__ws_zlib *z, const char *data, size_t len,
                     eddy_buf *out) {
  eddy__ws_zlib *c = &zcache.def;
  if (z->takeover || z->keep || zcache.users == 0)
    return deflate_with(z, data, len, out);
  if (c->zs && (c->bits != z->bits || c->level != z->level))
    eddy__ws_zlib_free(c, 1);
  c->bits = z->bits;
  c->level = z->level;
  c->keep = 1;
  return deflate_with(c, data, len, out);
}

int eddy__ws_inflate(eddy__ws_zlib *z, const char *data, size_t len, size_t max,
                     eddy_buf *out) {
  eddy__ws_zlib *c = &zcache.inf;
  if (z->takeover || z->keep || zcache.users == 0)
    return inflate_with(z, data, len, max, out);
  c->bits = 15;
  c->keep = 1;
  return inflate_with(c, data, len, max, out);
}

int eddy_ws_inflate_once(const char *data, size_t len, int window_bits,
                         size_t max, eddy_buf *out) {
  eddy__ws_zlib z = {NULL, window_bits ? window_bits : 15, 0, 0, 0};
  if (window_bits && (window_bits < 8 || window_bits > 15))
    return -EINVAL;
  return eddy__ws_inflate(&z, data, len, max, out);
}

struct eddy_ws_compressor {
  eddy__ws_zlib z;
};

int eddy_ws_compressor_new(int level, int window_bits,
                           eddy_ws_compressor **out) {
  eddy_ws_compressor *c;
  if (window_bits == 0)
    window_bits = 15;
  if (window_bits < 9 || window_bits > 15 || level < -1 || level > 9)
    return -EINVAL;
  c = eddy__calloc(1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  c->z.bits = window_bits;
  c->z.level = level;
  c->z.takeover = 0;
  c->z.keep = 1; /* one stream, reset for each message */
  *out = c;
  return 0;
}

void eddy_ws_compressor_free(eddy_ws_compressor *c) {
  if (c == NULL)
    return;
  eddy__ws_zlib_free(&c->z, 1);
  eddy__free(c);
}

int eddy__ws_compressor_bits(const eddy_ws_compressor *c) {
  return c->z.bits;
}

int eddy__ws_frame(eddy_buf *out, int fin, int opcode, const void *data,
                   size_t len, eddy__ws_zlib *z, const uint8_t *mask) {
  char head[EDDY_WS_MAX_HEADER] = {0};
  size_t start = eddy_buf_len(out), h, plen;
  int r;
  if (z == NULL) {
    char *space;
    size_t room;
    h = eddy_ws_frame_header(head, fin, opcode, 0, len, mask);
    r = eddy_buf_reserve(out, h + len, &space, &room);
    if (r < 0)
      return r;
    memcpy(space, head, h);
    eddy_ws_unmask(space + h, data, len, mask, 0);
    eddy_buf_commit(out, h + len);
    return 0;
  }
  /* Compressed: room for the longest header, the payload behind it, then
   * the real header written just before the payload. */
  r = eddy_buf_append(out, head, EDDY_WS_MAX_HEADER);
  if (r < 0)
    return r;
  r = eddy__ws_deflate(z, data, len, out);
  if (r < 0) {
    out->last = out->pos + start;
    return r;
  }
  plen = eddy_buf_len(out) - start - EDDY_WS_MAX_HEADER;
  h = eddy_ws_frame_header(head, fin, opcode, 1, plen, mask);
  {
    char *frame = eddy_buf_data(out) + start;
    memmove(frame + h, frame + EDDY_WS_MAX_HEADER, plen);
    memcpy(frame, head, h);
    eddy_ws_unmask(frame + h, frame + h, plen, mask, 0);
    out->last -= EDDY_WS_MAX_HEADER - h;
  }
  return 0;
}

int eddy_ws_encode(eddy_buf *out, int opcode, const void *data, size_t len,
                   eddy_ws_compressor *z) {
  if (opcode != EDDY_WS_TEXT && opcode != EDDY_WS_BINARY &&
      opcode != EDDY_WS_PING && opcode != EDDY_WS_PONG &&
      opcode != EDDY_WS_CLOSE)
    return -EINVAL;
  if (opcode >= EDDY_WS_CLOSE) {
    if (len > EDDY_WS_MAX_CONTROL)
      return -EINVAL;
    z = NULL;
  }
  return eddy__ws_frame(out, 1, opcode, data, len, z ? &z->z : NULL, NULL);
}
