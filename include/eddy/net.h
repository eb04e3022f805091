/* eddy/net.h: endpoints, streams and listeners.
 *
 * A stream (eddy_stream) is a byte pipe over a non-blocking descriptor: a
 * TCP or Unix socket, a pipe, a tty. It is Twisted's transport and
 * protocol in one: callbacks tell what happened (data, end of input, the
 * write buffer drained, closed), calls say what to do (write, pause,
 * shut down, close, abort).
 *
 * A listener (eddy_listener) accepts connections and hands each one over as
 * a stream. Its accept loop survives every error accept() can return; see
 * eddy_listener_* below.
 *
 * Endpoints are strings in Twisted's syntax ("tcp:8080:interface=127.0.0.1",
 * "unix:/run/app.sock:mode=660"), parsed by eddy_endpoint_parse_*. An
 * endpoint may ask for a layer over each connection (tls: for TLS, see
 * eddy/tls.h): the listener or the connect puts it on every stream before
 * the program sees the stream, and the program uses the stream as any
 * other.
 */
#ifndef EDDY_NET_H
#define EDDY_NET_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Endpoints -------------------------------------------------------------
 *
 * Server endpoints:
 *   tcp:PORT[:interface=ADDR][:backlog=N][:reuseport=1]
 *   tcp6:PORT[:interface=ADDR][:backlog=N][:ipv6only=1]
 *   unix:PATH[:mode=0660][:backlog=N]          (also unix:address=PATH)
 *   fd:N                                        (also fd:fileno=N)
 *   systemd:domain=INET|INET6|UNIX:index=N
 *   udp:PORT[:interface=ADDR][:reuseport=1]     (a datagram socket, not a
 *                                    listener: eddy_udp_open_endpoint opens
 *                                    it, eddy_listener_open refuses it; an
 *                                    IPv6 interface makes it IPv6, and no
 *                                    interface means every IPv4 address)
 *   tls:PORT:certKey=PEM[:privateKey=PEM][:passphraseFile=F][:interface=ADDR]
 *       [:backlog=N]                (an IPv6 interface listens on IPv6)
 *                                   (also ssl:; either file may hold both
 *                                    the chain and the key; an encrypted
 *                                    key is opened with the first line of
 *                                    F, and without F is refused as
 *                                    encrypted: nothing ever prompts)
 * Client endpoints:
 *   tcp:host=H:port=P[:timeout=S][:bindAddress=A]   (also tcp:H:P)
 *   unix:path=P[:timeout=S]                         (also unix:P)
 *   tls:host=H:port=P[:trustRoots=PEM][:verify=no][:timeout=S]
 *                                   (also tls:H:P and ssl:; the server's
 *                                    certificate is verified for H against
 *                                    the system's CAs, or trustRoots')
 *
 * A colon inside a value is written "\:" (tcp6:8080:interface=\:\:1); an
 * IPv6 address may instead be bracketed (tcp6:8080:interface=[::1],
 * tcp:host=[::1]:port=80), which keeps its colons in one item.
 * Parameters may come in any order and each at most once.
 */

#define EDDY_ENDPOINT_HOST_MAX 256
#define EDDY_ENDPOINT_PATH_MAX 108
#define EDDY_ENDPOINT_FILE_MAX 512

typedef enum eddy_endpoint_kind {
  EDDY_ENDPOINT_TCP,
  EDDY_ENDPOINT_TCP6,
  EDDY_ENDPOINT_UNIX,
  EDDY_ENDPOINT_FD,
  EDDY_ENDPOINT_SYSTEMD,
  EDDY_ENDPOINT_UDP, /* a datagram socket: eddy_udp_open_endpoint */
} eddy_endpoint_kind;

typedef struct eddy_endpoint {
  eddy_endpoint_kind kind;
  char host[EDDY_ENDPOINT_HOST_MAX]; /* server: interface ("" = any);
                                        client: host name or address */
  unsigned port;                     /* 0..65535 */
  int backlog;                       /* server; default 511 */
  int reuseport;                     /* server tcp: SO_REUSEPORT */
  int ipv6only;                      /* server tcp6: no IPv4-mapped */
  char path[EDDY_ENDPOINT_PATH_MAX]; /* unix */
  unsigned mode;                     /* unix server: file mode; 0 = umask's */
  int fd;                            /* fd:N; systemd: the index */
  int domain;                        /* systemd: AF_INET, AF_INET6, AF_UNIX */
  int64_t timeout_ns;                /* client: connect timeout; default 30 s */
  char bind_address[EDDY_ENDPOINT_HOST_MAX]; /* client: local address */
  int tls;                                   /* tls: or ssl: (over tcp) */
  char cert_key[EDDY_ENDPOINT_FILE_MAX];     /* tls server: chain (PEM) */
  char private_key[EDDY_ENDPOINT_FILE_MAX];  /* tls server: key (PEM) */
  char trust_roots[EDDY_ENDPOINT_FILE_MAX];  /* tls client: CAs; "" = system */
  char passphrase_file[EDDY_ENDPOINT_FILE_MAX]; /* tls server: key's pass */
  int verify; /* tls client: 0 after verify=no */
} eddy_endpoint;

/* Parses a server endpoint string. Returns 0, or EDDY_EPARSE with a message
 * naming the bad part written to err (always NUL-terminated if errlen > 0),
 * for example "tcp: port 'http' is not a number from 0 to 65535". */
EDDY_API int eddy_endpoint_parse_server(const char *text, eddy_endpoint *ep,
                                        char *err, size_t errlen);

/* The same for client endpoints. */
EDDY_API int eddy_endpoint_parse_client(const char *text, eddy_endpoint *ep,
                                        char *err, size_t errlen);

/* ---- Streams -----------------------------------------------------------------
 *
 * Callbacks (any may be NULL):
 *
 * data   bytes arrived; borrowed, valid until the callback returns. At most
 *        64 KiB per call and 256 KiB per stream per loop turn, so a fast
 *        peer cannot starve the other streams.
 * eof    the peer finished sending (a half-close). With no eof callback the
 *        stream closes itself once its write buffer is flushed, status 0.
 * drain  the write buffer, after rising above the high watermark, fell to
 *        the low watermark or below: a producer may write again.
 * close  called exactly once, from the loop (never from inside an eddy call
 *        the program made), after which the stream is freed. status is 0
 *        for a clean end (our close, or the peer's EOF after we finished)
 *        and a negative code otherwise (-ECONNRESET, -EPIPE, -ETIMEDOUT for
 *        an expired linger, -ECONNABORTED after eddy_stream_abort); detail
 *        is a human-readable sentence.
 *
 * A stream reads while it has a data callback and is not paused. Writes
 * are tried at once (write-through); only what the kernel did not take is
 * buffered, and buffered pieces go out together in one writev per turn.
 * No SIGPIPE is ever raised: sockets use MSG_NOSIGNAL, and for pipes the
 * loop owner should ignore SIGPIPE (the eddy program does).
 */

typedef struct eddy_stream eddy_stream;

typedef struct eddy_stream_callbacks {
  void (*data)(eddy_stream *s, const char *data, size_t len, void *arg);
  void (*eof)(eddy_stream *s, void *arg);
  void (*drain)(eddy_stream *s, void *arg);
  void (*close)(eddy_stream *s, int status, const char *detail, void *arg);
} eddy_stream_callbacks;

/* Makes a stream of a connected socket, a pipe, a tty: any descriptor that
 * can be read and written. The stream owns fd from now on (even on
 * failure, when it closes it) and makes it non-blocking and close-on-exec.
 * Returns 0, -ENOMEM, or the error that stopped the loop from watching fd
 * (-EPERM for a regular file on epoll). */
EDDY_API int eddy_stream_open(eddy_loop *loop, int fd,
                              const eddy_stream_callbacks *cb, void *arg,
                              eddy_stream **out);

/* A stream reading from rfd and writing to wfd (a pair of pipes, or stdin
 * and stdout); either may be -1 for a one-way stream. Owns both. */
EDDY_API int eddy_stream_open_pair(eddy_loop *loop, int rfd, int wfd,
                                   const eddy_stream_callbacks *cb, void *arg,
                                   eddy_stream **out);

/* Replaces the callbacks (an accepted stream gets its callbacks here). */
EDDY_API void eddy_stream_set_callbacks(eddy_stream *s,
                                        const eddy_stream_callbacks *cb,
                                        void *arg);

/* Writes len bytes (copied if they cannot be sent at once). Returns 0;
 * EDDY_ECLOSED after close, shutdown or abort; -ENOMEM (nothing queued);
 * or the system error that broke the stream, in which case the stream is
 * closing and its close callback will report the same error. */
EDDY_API int eddy_stream_write(eddy_stream *s, const void *data, size_t len);

/* The same for several pieces, sent together. */
EDDY_API int eddy_stream_writev(eddy_stream *s, const struct iovec *iov,
                                int iovcnt);

/* Takes ownership of data: no copy; free_fn(data) is called once the bytes
 * are sent or the stream is closed. On error free_fn is called before the
 * return. free_fn may be NULL for static data. */
EDDY_API int eddy_stream_write_owned(eddy_stream *s, void *data, size_t len,
                                     void (*free_fn)(void *));

/* Sends len bytes of file fd from offset with sendfile(), in order with the
 * other writes. fd must stay open until the close callback or until the
 * bytes are sent (eddy_stream_buffered() counts them). */
EDDY_API int eddy_stream_sendfile(eddy_stream *s, int fd, off_t offset,
                                  size_t len);

/* The same, taking fd: it is closed once its bytes are sent, or when the
 * stream closes, or at once if the call fails (or len is 0). */
EDDY_API int eddy_stream_sendfile_owned(eddy_stream *s, int fd, off_t offset,
                                        size_t len);

/* Bytes written but not yet taken by the kernel. */
EDDY_API size_t eddy_stream_buffered(const eddy_stream *s);

/* Flow control: 1 while the buffered bytes exceed the high watermark. */
EDDY_API int eddy_stream_over_high(const eddy_stream *s);

/* Default 64 KiB high, 16 KiB low. Returns -EINVAL if low > high. */
EDDY_API int eddy_stream_set_watermarks(eddy_stream *s, size_t low,
                                        size_t high);

/* Stop and start delivering data (Twisted's pauseProducing and
 * resumeProducing). While paused the kernel buffers, and then the peer
 * waits: memory stays bounded. */
EDDY_API void eddy_stream_pause(eddy_stream *s);
EDDY_API void eddy_stream_resume(eddy_stream *s);

/* Half-close: once the buffer is flushed, no more writes (the peer reads
 * EOF); reading goes on. */
EDDY_API int eddy_stream_shutdown(eddy_stream *s);

/* Flushes the buffer, then closes (status 0). If the buffer is not flushed
 * within the linger time (default 30 s), aborts with -ETIMEDOUT. Reading
 * stops at once. Safe from any callback; a second close does nothing. */
EDDY_API void eddy_stream_close(eddy_stream *s);

/* Closes now, discarding the buffer; a TCP peer sees a reset. */
EDDY_API void eddy_stream_abort(eddy_stream *s);

/* The linger time of eddy_stream_close() (rounded up to a millisecond; at
 * most 49 days). -EINVAL if out of range. */
EDDY_API int eddy_stream_set_linger(eddy_stream *s, int64_t linger_ns);

/* Idle timeout (Twisted's TimeoutMixin, nginx's send/read timeouts): once
 * no byte has been read or sent for idle_ns, the stream ends with
 * -ETIMEDOUT ("idle timeout" in the detail): an orderly close, or a reset
 * if bytes were still waiting to be sent. A paused stream whose peer does
 * not read is idle too. 0 turns it off (the default). Rounded up to a
 * millisecond, at most 49 days; the clock starts from this call. The timer
 * is moved lazily, so the stream ends no later than idle_ns after its last
 * activity and no sooner than 63/64 of it. It is the timer a lingering
 * close uses, so it costs no memory; once eddy_stream_close() waits for
 * unsent bytes, the linger time governs. Returns 0, -EINVAL, or -ENOMEM if
 * the loop's timer heap could not grow. */
EDDY_API int eddy_stream_set_timeout(eddy_stream *s, int64_t idle_ns);
EDDY_API int eddy_stream_set_nodelay(eddy_stream *s, int on);

/* Coalescing: with on, writes no longer try the system call at once; they
 * queue, and at the end of the loop's turn (the call-soon step that
 * follows its I/O; see the turn in core.h) what the turn wrote goes out
 * together, in one system call. A broadcaster that sends several messages
 * to many streams in one turn then pays one call per stream, not one per
 * message; a stream written once per turn pays the same as without, its
 * bytes leaving after the rest of the turn's callbacks. A write's own
 * error is then reported by the close callback, not by the write, which
 * returns 0. Off again, writes go at once (a flush already due still
 * runs). Returns 0, EDDY_ECLOSED, or -ENOMEM (nothing changed). */
EDDY_API int eddy_stream_set_coalesce(eddy_stream *s, int on);
/* Keep-alive probes after idle_s seconds of silence (0: off). */
EDDY_API int eddy_stream_set_keepalive(eddy_stream *s, int idle_s);

/* The descriptor read from (the socket, for sockets). */
EDDY_API int eddy_stream_fd(const eddy_stream *s);
EDDY_API eddy_loop *eddy_stream_loop(const eddy_stream *s);

/* "127.0.0.1:5000", "[::1]:5000", "unix:/path" or "pipe" into buf. */
EDDY_API int eddy_stream_peer_name(const eddy_stream *s, char *buf, size_t len);

/* ---- Listeners -----------------------------------------------------------------
 *
 * The accept loop's policy, for each error accept() may return:
 *   EINTR                 retried.
 *   EAGAIN                nothing more this turn.
 *   ECONNABORTED, EPROTO, EPERM (a firewall), and the pending network
 *   errors Linux passes on (ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET,
 *   EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH)
 *                         that connection is skipped; accepting goes on.
 *   EMFILE, ENFILE        out of descriptors: the listener gives up the
 *                         spare descriptor it keeps, accepts and closes the
 *                         waiting connections (each client sees a prompt
 *                         close, not a hang), takes the spare back, and
 *                         stops accepting for 250 ms. Existing streams
 *                         are served meanwhile; the CPU stays idle.
 *   ENOBUFS, ENOMEM       stops accepting for 250 ms.
 *   anything else         reported, then the same pause.
 * At most 64 connections are accepted per turn. Each episode of trouble is
 * reported once to the error callback (when it begins), not once per
 * event; nothing is printed.
 */

typedef struct eddy_listener eddy_listener;

typedef void (*eddy_accept_cb)(eddy_listener *l, eddy_stream *s, void *arg);
typedef void (*eddy_listener_error_cb)(eddy_listener *l, int err,
                                       const char *detail, void *arg);

/* Listens on a parsed server endpoint. Returns 0 or the failing call's
 * error (-EADDRINUSE, -EACCES, ...); err gets a sentence naming the
 * endpoint and the cause (for tls:, EDDY_ETLS and the certificate file at
 * fault). Every accepted stream of a tls: endpoint has started TLS; one
 * that cannot start it is closed and reported to the error callback, and
 * accepting goes on. A descriptor inherited through fd:N or systemd
 * belongs to the listener once it is open; on failure it stays the
 * caller's, open. */
EDDY_API int eddy_listener_open(eddy_loop *loop, const eddy_endpoint *ep,
                                eddy_accept_cb on_accept, void *arg,
                                eddy_listener **out, char *err, size_t errlen);

/* Parses text as a server endpoint, then listens. EDDY_EPARSE for a bad
 * string. */
EDDY_API int eddy_listen(eddy_loop *loop, const char *text,
                         eddy_accept_cb on_accept, void *arg,
                         eddy_listener **out, char *err, size_t errlen);

EDDY_API void eddy_listener_on_error(eddy_listener *l,
                                     eddy_listener_error_cb cb);

/* The bound address as "127.0.0.1:43210", "[::]:8080" or "unix:/path". */
EDDY_API int eddy_listener_name(const eddy_listener *l, char *buf, size_t len);
/* The bound port (TCP), for listeners on port 0. */
EDDY_API int eddy_listener_port(const eddy_listener *l);

/* Stops accepting and releases the listener (a Unix socket file it made is
 * removed). Safe from any callback. */
EDDY_API void eddy_listener_close(eddy_listener *l);

/* ---- Connecting ------------------------------------------------------------------
 *
 * Connecting never blocks the loop: a host name is resolved on the loop's
 * thread pool (getaddrinfo), then the addresses are tried as RFC 8305's
 * Happy Eyeballs says: IPv6 and IPv4 interleaved, the next attempt started
 * 250 ms after the previous one (or at once when one fails), the first to
 * connect wins and the others are closed. The callback is called exactly
 * once, from the loop: with a stream and status 0, or with NULL and
 * -ECONNREFUSED, -ETIMEDOUT (the endpoint's timeout passed),
 * -EHOSTUNREACH..., EDDY_ERESOLVE (detail names the host), or -ECANCELED.
 */

typedef struct eddy_connect eddy_connect;

typedef void (*eddy_connect_cb)(eddy_connect *req, eddy_stream *s, int status,
                                const char *detail, void *arg);

/* Starts connecting to a parsed client endpoint. Returns 0 (the callback
 * will report the outcome), or -ENOMEM / -EINVAL (EDDY_ETLS for a tls:
 * endpoint whose trustRoots cannot be loaded), and then the callback is
 * never called. *req (if req is not NULL) is valid until the callback. A
 * tls: endpoint's stream has started TLS when the callback gets it; the
 * handshake's outcome reaches the stream's close callback if it fails. */
EDDY_API int eddy_connect_endpoint(eddy_loop *loop, const eddy_endpoint *ep,
                                   eddy_connect_cb cb, void *arg,
                                   eddy_connect **req);

/* Parses text as a client endpoint, then connects. EDDY_EPARSE (err says
 * why) for a bad string. */
EDDY_API int eddy_connect_to(eddy_loop *loop, const char *text,
                             eddy_connect_cb cb, void *arg, eddy_connect **req,
                             char *err, size_t errlen);

/* Gives up: the callback is called (from the loop) with -ECANCELED, unless
 * it already has been. */
EDDY_API void eddy_connect_cancel(eddy_connect *req);

/* ---- UDP ---------------------------------------------------------------------------
 *
 * Datagrams arrive through the recv callback with the sender's address (at
 * most 64 per socket per loop turn). Sending never blocks and never
 * queues: a datagram the kernel cannot take now (EAGAIN, ENOBUFS) is
 * dropped and counted (eddy_udp_dropped), since UDP promises no more than
 * that; one too large for the path returns -EMSGSIZE. On a connected
 * socket, ICMP errors the kernel reports (-ECONNREFUSED when nothing
 * listens at the peer) reach the error callback; the socket stays open.
 */

typedef struct eddy_udp eddy_udp;

typedef void (*eddy_udp_recv_cb)(eddy_udp *u, const char *data, size_t len,
                                 const struct sockaddr *from, socklen_t fromlen,
                                 void *arg);
typedef void (*eddy_udp_error_cb)(eddy_udp *u, int err, void *arg);

/* Binds to a numeric address ("0.0.0.0", "::", "127.0.0.1") and port (0:
 * any). With reuse, SO_REUSEADDR is set (several receivers of one
 * multicast group). */
EDDY_API int eddy_udp_open(eddy_loop *loop, const char *addr, unsigned port,
                           int reuse, eddy_udp_recv_cb on_recv, void *arg,
                           eddy_udp **out);
/* Opens the server endpoint ep, which must be of kind EDDY_ENDPOINT_UDP
 * (parsed from "udp:PORT[:interface=ADDR][:reuseport=1]"): bound to the
 * interface (every IPv4 address if none) and port, with SO_REUSEPORT if
 * asked, so that several processes may share the port. Returns 0, or
 * -errno with a message naming the address written to err. */
EDDY_API int eddy_udp_open_endpoint(eddy_loop *loop, const eddy_endpoint *ep,
                                    eddy_udp_recv_cb on_recv, void *arg,
                                    eddy_udp **out, char *err, size_t errlen);
EDDY_API void eddy_udp_on_error(eddy_udp *u, eddy_udp_error_cb cb);
/* Fixes the peer: sends may then pass to = NULL, and only its datagrams
 * arrive. */
EDDY_API int eddy_udp_connect(eddy_udp *u, const char *addr, unsigned port);
/* Returns 0 (sent, or dropped and counted), -EMSGSIZE, or another error. */
EDDY_API int eddy_udp_send(eddy_udp *u, const void *data, size_t len,
                           const struct sockaddr *to, socklen_t tolen);
/* Batching, for a server that answers many datagrams: with it on, the
 * socket reads up to 32 datagrams per system call (recvmmsg), and the
 * replies sent from inside their receive callbacks, each of at most
 * 2048 bytes, are held and go out together (sendmmsg) once the batch's
 * callbacks have returned, or when the socket is closed; a larger reply
 * goes at once, after those held before it. A held reply the kernel
 * then refuses is dropped and counted, since its eddy_udp_send has
 * returned 0. Costs about 2 MiB of address space, touched only as large
 * datagrams arrive. Returns 0, -ENOMEM, EDDY_ECLOSED, or -EBUSY to turn
 * it off from inside a batch. */
EDDY_API int eddy_udp_set_batching(eddy_udp *u, int on);
EDDY_API uint64_t eddy_udp_dropped(const eddy_udp *u);
EDDY_API int eddy_udp_port(const eddy_udp *u);
/* Multicast membership of group on the interface with address iface
 * (NULL: the kernel's choice). */
EDDY_API int eddy_udp_join(eddy_udp *u, const char *group, const char *iface);
EDDY_API int eddy_udp_leave(eddy_udp *u, const char *group, const char *iface);
EDDY_API int eddy_udp_set_broadcast(eddy_udp *u, int on);
EDDY_API void eddy_udp_close(eddy_udp *u);

#ifdef __cplusplus
}
#endif
#endif
