/* net.h: internals shared by the files of src/net, and the two interfaces
 * through which a layer above net works on its streams without net knowing
 * that layer: eddy__layer_ops (a layer over one stream) and eddy__wrap_ops
 * (a layer that a listener or a connect puts on every new stream). */
#ifndef EDDY_NET_NET_H
#define EDDY_NET_NET_H

#include <sys/socket.h>

#include "core/io.h"
#include "eddy/net.h"

/* A stream for a socket just accepted (non-blocking, close-on-exec
 * already); TCP_NODELAY on if tcp. */
int eddy__stream_adopt(eddy_loop *loop, int fd, int tcp, eddy_stream **out);

/* ---- Layers over a stream (TLS) ----
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
int eddy__stream_layer(eddy_stream *s, const eddy__layer_ops *ops, void *layer,
                       eddy_stream **lower);
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

/* ---- Wrappers: layers put on every new connection (TLS) ----
 *
 * A layer that wraps whole connections (TLS now; a WebSocket message
 * stream, an SSH channel later) fills in an eddy__wrap_ops and is listed in
 * eddy__wrappers[]. A listener or a connect whose endpoint a wrapper wants
 * makes that wrapper's state once, when it opens or starts, and wraps every
 * stream it accepts or connects with it before the program sees the
 * stream. net calls only these ops: it never includes or names a layer.
 *
 * Why a table rather than layers registering themselves at start-up: a
 * static link takes from libeddy.a only the objects that something
 * references, so a constructor in a layer's object would be dropped when
 * the program names nothing of that layer, and a TLS endpoint would stay
 * plaintext. The table (src/layers.c, above every layer, as nginx's
 * ngx_modules.c) is referenced by the listener and connect code and
 * references each layer's ops, so whatever links net links the layers an
 * endpoint can ask for. */
typedef struct eddy__wrap_ops {
  const char *name; /* the layer's name, for messages */
  /* Whether ep asks for this layer (for TLS: a TLS endpoint). */
  int (*wants)(const eddy_endpoint *ep);
  /* The state that the streams of one listener (server 1) or one connect
   * (server 0) share, made from ep: 0 with *state holding one reference,
   * or a negative code with a sentence in err (errlen may be 0). */
  int (*make)(const eddy_endpoint *ep, int server, void **state, char *err,
              size_t errlen);
  /* Wraps s, a stream just accepted (server_name NULL) or just connected
   * (server_name: the host the endpoint names, "" for a Unix path). 0, or
   * a negative code with s left as it was. */
  int (*wrap)(void *state, eddy_stream *s, const char *server_name);
  void (*ref)(void *state);
  void (*unref)(void *state);
} eddy__wrap_ops;

/* Every wrapping layer, lowest first, NULL-terminated (src/layers.c). */
extern const eddy__wrap_ops *const eddy__wrappers[];

#define EDDY__WRAP_MAX 4

/* The wrappers of one listener or connect, in the order they apply. */
typedef struct eddy__wraps {
  int n;
  struct {
    const eddy__wrap_ops *ops;
    void *state; /* one reference held */
  } w[EDDY__WRAP_MAX];
} eddy__wraps;

/* Fills ws with each wrapper of table (NULL: eddy__wrappers) that ep
 * wants, with its state. Returns 0, or the failing make's code and sentence (-ENOSPC for more
 * than EDDY__WRAP_MAX), ws left empty. */
int eddy__wraps_from_endpoint(eddy__wraps *ws,
                              const eddy__wrap_ops *const *table,
                              const eddy_endpoint *ep, int server, char *err,
                              size_t errlen);
/* Makes state (ws takes a reference) the state of ops's wrapper, which is
 * appended if ws has none; a NULL state removes the wrapper. 0 or
 * -ENOSPC. */
int eddy__wraps_set(eddy__wraps *ws, const eddy__wrap_ops *ops, void *state);
/* Wraps s with each wrapper in turn. Returns 0 or the first failure's
 * code; the caller then aborts s. */
int eddy__wraps_apply(const eddy__wraps *ws, eddy_stream *s,
                      const char *server_name);
/* Drops every wrapper and its reference. */
void eddy__wraps_clear(eddy__wraps *ws);

/* The listener and connect entry points for a wrapping layer's own API
 * (TLS's calls that set a listener's or a connect's context) and for
 * tests.
 *
 * eddy_listener_open with the wrappers of table (NULL: eddy__wrappers);
 * a test passes its own. */
int eddy__listener_open_with(eddy_loop *loop, const eddy_endpoint *ep,
                             const eddy__wrap_ops *const *table,
                             eddy_accept_cb on_accept, void *arg,
                             eddy_listener **out, char *err, size_t errlen);
/* Streams accepted from now on are wrapped with state (eddy__wraps_set). */
int eddy__listener_wrap(eddy_listener *l, const eddy__wrap_ops *ops,
                        void *state);
/* eddy_connect_endpoint with the wrappers of table (NULL: eddy__wrappers)
 * that ep asks for, or, when ops is given, with that one wrapper and state
 * (a reference is taken) whatever ep asks for. err gets the sentence of a
 * wrapper whose make failed. */
int eddy__connect_with(eddy_loop *loop, const eddy_endpoint *ep,
                       const eddy__wrap_ops *const *table,
                       const eddy__wrap_ops *ops, void *state,
                       eddy_connect_cb cb, void *arg, eddy_connect **req,
                       char *err, size_t errlen);

/* The port fd is bound to (host order), or a negative errno
 * (-EAFNOSUPPORT for a socket that is not IPv4 or IPv6). */
int eddy__sock_port(int fd);
/* 1 once s is closing or closed (eddy_stream_close, abort, a failure): a
 * layer above its callbacks (line framing) stops delivering then. */
int eddy__stream_closing(const eddy_stream *s);

/* A one-shot watcher of a stream's drain and end, in the watcher's own
 * memory (nothing is allocated), for layers above net that wait on a
 * stream without owning its callbacks (a wait for "drained"). fn is
 * called once, with the watcher already removed: ended 0 right after the
 * stream's drain callback (the buffer fell to the low watermark), or
 * ended 1 with the close status and detail just before the close
 * callback. Unwatching one that is not watching does nothing. */
typedef struct eddy__stream_watcher eddy__stream_watcher;
struct eddy__stream_watcher {
  eddy__stream_watcher *prev, *next;
  void (*fn)(eddy__stream_watcher *w, int ended, int status,
             const char *detail);
};
void eddy__stream_watch(eddy_stream *s, eddy__stream_watcher *w);
void eddy__stream_unwatch(eddy_stream *s, eddy__stream_watcher *w);

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
