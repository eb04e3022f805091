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
