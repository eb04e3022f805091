/* exchange.h: one question asked of upstream DNS servers (private to eddy).
 *
 * The forwarder (forward.c) and the client API (eddy/resolver.h) both
 * ask upstream servers through this: the question goes over UDP from a
 * fresh socket (so a random source port the kernel picks) with a random ID;
 * an answer is believed only if it comes from the server asked (the socket
 * is connected), carries the ID, and echoes the question (name without
 * regard to case, type and class); anything else is ignored and the wait
 * goes on. An answer with TC=1 is asked again over TCP of the same server
 * (two-byte length framing, RFC 7766). No answer within the timeout, an
 * ICMP error, or a SERVFAIL, REFUSED or NOTIMP answer moves on to the next
 * server; the list is tried `attempts` times round.
 *
 * An exchange is a handle of its loop: eddy_loop_close_all ends one still
 * asking with -ECANCELED through its callback (so that an owner which is
 * not itself a handle still learns of it and can free its state).
 */
#ifndef EDDY_PROTO_DNS_EXCHANGE_H
#define EDDY_PROTO_DNS_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "eddy/core.h"

/* The most servers one exchange tries (resolv.conf allows 3; a forwarder
 * may list more). */
#define EDDY__DNS_UPSTREAMS_MAX 8

typedef struct eddy__dns_upstream {
  struct sockaddr_storage addr; /* IPv4 or IPv6, with the port (53 usually) */
  socklen_t addrlen;
} eddy__dns_upstream;

typedef struct eddy__dns_exchange_opts {
  eddy__dns_upstream servers[EDDY__DNS_UPSTREAMS_MAX];
  size_t nservers;        /* at least 1 */
  int64_t timeout_ns;     /* per attempt; 0: 2 s */
  int attempts;           /* rounds over the list; 0: 2 */
  bool rd;                /* set RD in the question (recursion wanted) */
  bool cd;                /* set CD in the question */
  uint16_t edns_udp_size; /* advertised in an OPT; 0: no EDNS */
} eddy__dns_exchange_opts;

typedef struct eddy__dns_exchange eddy__dns_exchange;

/* Called once per exchange, from the loop, never from inside _start.
 * err 0: msg[0..len) is the matching answer (TC=0), borrowed for the
 * call; its rcode may be anything, SERVFAIL too when every server said
 * so. err < 0: -ETIMEDOUT (no server answered in time), -ECONNREFUSED
 * (every server refused at the ICMP level), -ENOMEM, -ECANCELED
 * (eddy_loop_close_all), -EPROTO (every answer was a failure that could
 * not be kept for lack of memory), or another -errno of the last attempt
 * (a socket that could not be made, a TCP connection reset); msg is then
 * NULL and len 0. The exchange is freed after the callback returns. */
typedef void (*eddy__dns_exchange_cb)(int err, const uint8_t *msg, size_t len,
                                      void *arg);

/* Starts asking (qname wire form, any case; qtype; qclass) per opts
 * (copied). Returns 0 and sets *out (may be NULL when the caller never
 * cancels), or -EINVAL (no server, bad name), -ENOMEM, or the -errno of
 * a socket that could not be made, in which case cb is never called. */
int eddy__dns_exchange_start(eddy_loop *loop,
                             const eddy__dns_exchange_opts *opts,
                             const uint8_t *qname, uint16_t qtype,
                             uint16_t qclass, eddy__dns_exchange_cb cb,
                             void *arg, eddy__dns_exchange **out);

/* Gives up: closes the sockets, frees the exchange; the callback is not
 * called. Only before the callback has run. */
void eddy__dns_exchange_cancel(eddy__dns_exchange *x);

/* Parses "ADDR" or "ADDR:PORT" or "[V6]:PORT" (port 53 if absent) into u.
 * Returns 0 or -EINVAL. */
int eddy__dns_upstream_parse(const char *text, eddy__dns_upstream *u);

#endif
