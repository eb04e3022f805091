/* eddy/resolver.h: an asynchronous DNS client on the loop (a stub resolver).
 *
 * A resolver (eddy_resolver) asks the recursive servers the system is
 * configured with (/etc/resolv.conf) or that the program names, for any
 * record type of any name, without a thread and without blocking the
 * loop: questions go over UDP from a fresh socket per attempt (a random
 * source port the kernel picks) with a random ID, and an answer is believed
 * only if it echoes the ID and the question; a truncated answer (TC=1) is
 * asked again over TCP. A server that does not answer within the timeout,
 * refuses at the ICMP level, or answers SERVFAIL, REFUSED or NOTIMP is
 * passed over for the next one, and the list is tried `attempts` times
 * round. This is the same code that `eddy dns --forward` uses to ask its
 * upstreams (docs/dns-client.md says why eddy does not use c-ares).
 *
 * A lookup comes in three forms, which behave alike:
 *   - a callback: eddy_resolver_lookup, cancelled with eddy_dns_lookup_cancel;
 *   - a Deferred: eddy_deferred_dns_lookup (eddy/async.h's conventions);
 *   - a coroutine's waiting call: eddy_coro_dns_lookup (eddy/coro.h's).
 *
 * Every answer is handed over whole: its rcode, the name it is the answer
 * for (after the search list), its records (eddy_dns_answer_records, read
 * with eddy/dns.h's eddy_dns_msg_next) and the raw message. An answer with
 * rcode NXDOMAIN, or NOERROR with no records (NODATA), is an answer, not an
 * error: the caller looks at the rcode. Errors are for no answer at all:
 * -ETIMEDOUT (no server answered), -ECONNREFUSED (every server refused),
 * -ENOMEM, -ECANCELED, -EPROTO (every server failed and their answers
 * could not be kept for lack of memory), or a socket's or a TCP
 * connection's error (-EMFILE, -ECONNRESET...).
 *
 * Names and the search list follow glibc's resolver (resolv.conf(5)): a
 * name ending with a dot is absolute and asked as it is, alone. Another
 * name with at least ndots dots is asked as it is first, then with each
 * search domain appended; one with fewer dots is tried with the search
 * domains first and as it is last. An answer NXDOMAIN or NODATA, or
 * SERVFAIL from every server, moves on to the next candidate; any other
 * answer ends the lookup, and so does an error (a timeout stops the
 * search, as in glibc). When every candidate fails, the lookup ends with
 * the best failure seen: a NODATA answer if there was one, else a SERVFAIL
 * one, else the last NXDOMAIN.
 *
 * Everything here is for the loop's thread. Callbacks are always called
 * from the loop, never from inside the call that started the lookup.
 */
#ifndef EDDY_RESOLVER_H
#define EDDY_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "async.h"
#include "core.h"
#include "coro.h"
#include "dns.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Configuration -------------------------------------------------------------
 *
 * An eddy_resolver_conf is a plain struct the program may fill in or
 * change by hand, or have read from a resolv.conf file. Its defaults are
 * glibc's: no server (a resolver made from it asks 127.0.0.1 port 53), no
 * search domain, ndots 1, a 5 s timeout, 2 attempts, no EDNS.
 */

#define EDDY_RESOLVER_SERVERS_MAX 3 /* resolv.conf's limit (MAXNS) */
#define EDDY_RESOLVER_SEARCH_MAX 6  /* search domains kept */
#define EDDY_RESOLVER_NDOTS_MAX 15
#define EDDY_RESOLVER_TIMEOUT_MAX_S 30
#define EDDY_RESOLVER_ATTEMPTS_MAX 5

typedef struct eddy_resolver_conf {
  /* The servers, IPv4 or IPv6, each with its port (53 from a file). */
  struct sockaddr_storage servers[EDDY_RESOLVER_SERVERS_MAX];
  socklen_t server_lens[EDDY_RESOLVER_SERVERS_MAX];
  int nservers;
  /* Search domains as text without the final dot ("example.com"); "."
   * stands for the root (the name as it is). */
  char search[EDDY_RESOLVER_SEARCH_MAX][EDDY_DNS_NAME_TEXT_MAX / 4];
  int nsearch;
  int ndots;          /* 0..15; default 1 */
  int64_t timeout_ns; /* per attempt; default 5 s */
  int attempts;       /* rounds over the servers, 1..5; default 2 */
  /* The UDP payload size advertised in an OPT record (options edns0 sets
   * EDDY_DNS_EDNS_UDP_SIZE); 0: no EDNS, answers over 512 bytes then come
   * truncated and are asked again over TCP. */
  uint16_t edns_udp_size;
  /* options rotate: each lookup starts with the next server of the list
   * in turn, instead of always the first. */
  bool rotate;
} eddy_resolver_conf;

/* Sets the defaults above. */
EDDY_API void eddy_resolver_conf_init(eddy_resolver_conf *conf);

/* Reads resolv.conf text text[0..len) into conf, over what conf holds (so
 * call eddy_resolver_conf_init first), as glibc does:
 *   nameserver ADDR       an IPv4 or IPv6 address (a %scope suffix is
 *                         dropped); the first 3 are kept, later ones
 *                         ignored
 *   domain NAME           the search list becomes NAME alone
 *   search NAME...        the search list becomes these (the first 6);
 *                         the last domain or search line wins
 *   options OPT...        ndots:N (at most 15), timeout:N seconds (1 to
 *                         30), attempts:N (1 to 5), edns0, rotate; others
 *                         ignored
 * Lines starting with '#' or ';' are comments; a line whose keyword is
 * unknown, or whose value is malformed (a nameserver that is no address, a
 * search domain that is no name), is ignored, as glibc ignores it. Never
 * fails. */
EDDY_API void eddy_resolver_conf_parse(eddy_resolver_conf *conf,
                                       const char *text, size_t len);

/* Reads the file path (NULL: /etc/resolv.conf) with
 * eddy_resolver_conf_parse, after eddy_resolver_conf_init. A file that
 * does not exist leaves the defaults, as glibc does. When the file names
 * no domain and no search list, the search list is the domain part of the
 * host name (gethostname()), if it has one. For the system's file (path
 * NULL) the environment then has its say, as with glibc: $LOCALDOMAIN
 * replaces the search list (domains separated by spaces) and $RES_OPTIONS
 * adds options in the syntax of an options line (neither is read by a
 * set-user-ID program: secure_getenv). Reads the file at once
 * (blocking, as glibc does: it is a small local file); at most 64 KiB of
 * it. Returns 0, or -ENOMEM or the error of open() or read() other than
 * ENOENT (-EACCES...), conf then holding the defaults. */
EDDY_API int eddy_resolver_conf_load(eddy_resolver_conf *conf,
                                     const char *path);

/* Appends a server given as "ADDR", "ADDR:PORT" (IPv4), "[V6]:PORT" or a
 * bare IPv6 address; port 53 when none is given. Returns 0, -EINVAL for
 * text that is not that, or -ENOSPC when conf has 3 servers already. */
EDDY_API int eddy_resolver_conf_add_server(eddy_resolver_conf *conf,
                                           const char *text);

/* ---- Resolvers ------------------------------------------------------------------ */

typedef struct eddy_resolver eddy_resolver;

/* Makes a resolver from conf (copied; NULL: the defaults). With no server
 * in conf it asks 127.0.0.1 port 53. Returns 0 and sets *out, -EINVAL (a
 * server that is not IPv4 or IPv6, a search domain that is not a name, a
 * field out of range), or -ENOMEM. A resolver is a handle of its loop:
 * eddy_loop_close_all closes it. */
EDDY_API int eddy_resolver_new(eddy_loop *loop, const eddy_resolver_conf *conf,
                               eddy_resolver **out);

/* eddy_resolver_conf_load(path) (NULL: /etc/resolv.conf), then
 * eddy_resolver_new. Returns what either returns. */
EDDY_API int eddy_resolver_new_system(eddy_loop *loop, const char *path,
                                      eddy_resolver **out);

/* The configuration in use (read-only). */
EDDY_API const eddy_resolver_conf *
eddy_resolver_get_conf(const eddy_resolver *r);

/* Cancels every lookup of r still under way (each callback is called,
 * from the loop, with -ECANCELED) and releases r. Safe from any callback,
 * a lookup's own included; the memory is freed after the current callback
 * returns. */
EDDY_API void eddy_resolver_close(eddy_resolver *r);

/* ---- Answers -------------------------------------------------------------------- */

typedef struct eddy_dns_answer {
  int rcode;      /* EDDY_DNS_RCODE_NOERROR, NXDOMAIN, SERVFAIL, ... */
  uint16_t flags; /* the header's second word (AA, TC, RD, RA, ...) */
  /* The name this is the answer for (the search list applied), in wire
   * form with the case it was asked with, and its type. */
  uint8_t qname[EDDY_DNS_NAME_MAX];
  size_t qname_len;
  uint16_t qtype;
  uint16_t ancount; /* records in the answer section */
  /* The whole message as the server sent it. */
  const uint8_t *msg;
  size_t len;
} eddy_dns_answer;

/* Starts an iterator over a's records, past the question: each
 * eddy_dns_msg_next then gives the next record of the answer, authority
 * and additional sections (an OPT record included), with its section.
 * Returns 0, or EDDY_EPARSE for a malformed message (eddy_dns_msg_next
 * may also find a malformed record later and say so). */
EDDY_API int eddy_dns_answer_records(const eddy_dns_answer *a,
                                     eddy_dns_msg_t *m);

/* A copy of a in one allocation (the message inside it), owned by the
 * caller and freed with eddy_dns_answer_free; NULL without memory. */
EDDY_API eddy_dns_answer *eddy_dns_answer_copy(const eddy_dns_answer *a);

/* Frees a copy (what the Deferred and coroutine forms hand over). NULL is
 * ignored. Takes a void pointer so it can be a Deferred's value_free. */
EDDY_API void eddy_dns_answer_free(void *a);

/* ---- Lookups: the callback form --------------------------------------------------- */

typedef struct eddy_dns_lookup eddy_dns_lookup;

/* Called exactly once per lookup, from the loop. status 0: a is the
 * answer, borrowed until the callback returns (copy it with
 * eddy_dns_answer_copy to keep it). status < 0: -ETIMEDOUT, -ECONNREFUSED,
 * -ENOMEM, -ECANCELED (eddy_dns_lookup_cancel, eddy_resolver_close,
 * eddy_loop_close_all), or a socket's error; a is NULL. The lookup is
 * freed after the callback returns. */
typedef void (*eddy_dns_lookup_cb)(eddy_dns_lookup *q, int status,
                                   const eddy_dns_answer *a, void *arg);

/* Looks up the records of type qtype (EDDY_DNS_TYPE_A, ..., any number;
 * class IN) of name, presentation text ("www", "www.example.com",
 * "example.com." absolute; "\." and "\DDD" escapes as in zone files).
 * Returns 0 and sets *out (if out is not NULL; valid until the callback
 * returns), or, with the callback never called: EDDY_EPARSE (name is not
 * a domain name; a search domain that would make it too long is passed
 * over), EDDY_ECLOSED (r is closed), -EINVAL (r, name or cb NULL),
 * -ENOMEM, or the error of the first socket (-EMFILE...). */
EDDY_API int eddy_resolver_lookup(eddy_resolver *r, const char *name,
                                  uint16_t qtype, eddy_dns_lookup_cb cb,
                                  void *arg, eddy_dns_lookup **out);

/* Gives up: the sockets are closed at once and the callback is called,
 * from the loop, with -ECANCELED, unless it has been called already. */
EDDY_API void eddy_dns_lookup_cancel(eddy_dns_lookup *q);

/* ---- Lookups: the Deferred form ------------------------------------------------------ */

/* eddy_resolver_lookup as a Deferred the caller owns: it fires with an
 * eddy_dns_answer copy (the value; freed with the Deferred unless taken
 * out with eddy_deferred_take_value, then freed with eddy_dns_answer_free),
 * NXDOMAIN and NODATA included. It fails with the lookup's code and the
 * detail "look up NAME TYPE: REASON" (EDDY_EPARSE, EDDY_ECLOSED and a
 * socket's error included). Cancelling the Deferred cancels the lookup.
 * Returns 0 and sets *out, or -ENOMEM (nothing is started), -EINVAL (r,
 * name or out NULL). */
EDDY_API int eddy_deferred_dns_lookup(eddy_resolver *r, const char *name,
                                      uint16_t qtype, eddy_deferred **out);

/* ---- Lookups: the coroutine form ------------------------------------------------------- */

/* Waits for the answer to eddy_resolver_lookup(r, name, qtype) and sets
 * *out to a copy the caller owns (eddy_dns_answer_free). Returns 0, the
 * lookup's error, or -ECANCELED when co is cancelled (the lookup is then
 * given up at once), -EPERM if co is not the running coroutine, -EINVAL
 * for a NULL co or out. *out is NULL on every error. */
EDDY_API int eddy_coro_dns_lookup(eddy_coro *co, eddy_resolver *r,
                                  const char *name, uint16_t qtype,
                                  eddy_dns_answer **out);

#ifdef __cplusplus
}
#endif
#endif
