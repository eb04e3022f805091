/* net.h: internals shared by the files of src/net. */
#ifndef EDDY_NET_NET_H
#define EDDY_NET_NET_H

#include <sys/socket.h>

#include "core/io.h"
#include "eddy/net.h"

/* The single watcher of a socket stream (read and write on one fd). */
void eddy__stream_on_io(eddy_loop *loop, eddy__io *io, unsigned events);

/* A stream for a socket just accepted (non-blocking, close-on-exec
 * already); TCP_NODELAY on if tcp. */
int eddy__stream_adopt(eddy_loop *loop, int fd, int tcp, eddy_stream **out);

/* Makes the next close of a TCP stream send a reset instead of a FIN. */
void eddy__stream_reset(eddy_stream *s);

/* ---- Layers (TLS) over a stream ----
 *
 * A layered stream has no descriptors: what it writes goes to the layer's
 * send, what it reads comes from the layer's recv, and the layer calls
 * eddy__stream_layer_ready() when it can take more (WRITE) or has bytes or
 * an end to deliver (READ). The stream keeps its own queue, watermarks,
 * pause, half-close, close and abort, exactly as over a descriptor. */
typedef struct eddy__layer_ops {
  /* Bytes taken (possibly fewer than offered), -EAGAIN, or an error that
   * ends the stream. */
  ssize_t (*send)(void *layer, const struct iovec *iov, int n);
  /* Bytes read, 0 at a clean end, -EAGAIN, or an error. */
  ssize_t (*recv)(void *layer, char *buf, size_t len);
  /* What the stream wants now; the layer arranges to call
   * eddy__stream_layer_ready() when it can be done. */
  void (*want)(void *layer, int read, int write);
  /* Ends the sending direction (the stream's queue is empty). */
  int (*shutdown)(void *layer);
  /* The stream ended with status: release the transport. */
  void (*finish)(void *layer, int status);
  /* A sentence for an error status, or NULL; valid until release. */
  const char *(*detail)(void *layer, int status);
  /* After the close callback: free the layer. */
  void (*release)(void *layer);
  /* The transport stream, or NULL once it is gone. */
  eddy_stream *(*lower)(void *layer);
} eddy__layer_ops;

/* Moves s's descriptors and queued bytes into a new stream (*lower, with no
 * callbacks yet) and makes s a layered stream over ops/layer. Returns 0,
 * -ENOMEM (nothing changed), -EALREADY (already layered), or EDDY_ECLOSED
 * (s is ending, or cannot both read and write). */
int eddy__stream_layer(eddy_stream *s, const eddy__layer_ops *ops,
                       void *layer, eddy_stream **lower);
void eddy__stream_layer_ready(eddy_stream *s, unsigned events);
void *eddy__stream_arg(const eddy_stream *s);
/* The layer's transport drained: s's drain callback runs if it is owed. */
void eddy__stream_layer_drained(eddy_stream *s);
int64_t eddy__stream_linger(const eddy_stream *s);
/* s's layer if its ops are ops, else NULL. */
void *eddy__stream_layer_of(const eddy_stream *s, const eddy__layer_ops *ops);
/* Ends s now with status and detail (which must outlive the close
 * callback). */
void eddy__stream_fail(eddy_stream *s, int status, const char *detail);
int eddy__stream_read_eof(const eddy_stream *s);
/* 1 once s is closing or closed (eddy_stream_close, abort, a failure): a
 * layer above its callbacks (line framing) stops delivering then. */
int eddy__stream_closing(const eddy_stream *s);

/* "1.2.3.4:80", "[::1]:80", "unix:/path" (or "unix:@abstract"). Returns 0
 * or -EAFNOSUPPORT; buf is always terminated if len > 0. */
int eddy__sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                          size_t buflen);

/* Fills a sockaddr for a numeric host (or "" for any) and port; family
 * AF_INET or AF_INET6. Returns the length, or -EINVAL for a host that is
 * not a numeric address of that family. */
int eddy__sockaddr_ip(int family, const char *host, unsigned port,
                      struct sockaddr_storage *ss);

/* Name resolution, replaceable by tests (a slow or failing resolver):
 * fills up to max addresses for host and port; returns their count, or
 * EDDY_ERESOLVE, or -ENOMEM. Runs on a pool thread. */
typedef int (*eddy__resolve_fn)(const char *host, unsigned port,
                                struct sockaddr_storage *out, socklen_t *lens,
                                int max);
extern eddy__resolve_fn eddy__resolve_hook;

#endif
