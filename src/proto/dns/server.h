/* server.h: the authoritative server's per-message path (private).
 *
 * eddy__dns_respond turns one received message into the bytes to send
 * back: it parses the query (eddy_dns_query_parse), looks the question up
 * in the zone database (zone.h) and writes the answer (eddy_dns_writer_*)
 * within the client's size limit. It allocates nothing and touches no
 * socket, so `eddy dns` calls it for UDP and TCP alike, and the fuzz
 * target calls it directly.
 */
#ifndef EDDY_PROTO_DNS_SERVER_H
#define EDDY_PROTO_DNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eddy/dns.h"
#include "proto/dns/zone.h"

/* eddy__dns_respond's answer for a question no zone holds, when the caller
 * has a forwarder: hand scratch->q to it. */
#define EDDY__DNS_RESPOND_FORWARD (-1)

/* The transports, for the size limit. */
#define EDDY__DNS_UDP 0
#define EDDY__DNS_TCP 1

/* What one call needs besides its buffers; about 3 KB. Keep one per
 * thread and reuse it. After a call, q holds the parsed query (as far as
 * it could be read) for the caller's log or forwarder. */
typedef struct eddy__dns_scratch {
  eddy_dns_query_t q;
  eddy_dns_verdict_t verdict;
  eddy__dns_zone_result res;
} eddy__dns_scratch;

/* Answers msg[0..len) received over transport (EDDY__DNS_UDP: the answer
 * is limited to the client's EDNS size, or 512; EDDY__DNS_TCP: 65535)
 * from db (NULL: no zones). out must hold at least outcap bytes (65535
 * always suffices).
 *
 * Returns the answer's length; 0 when nothing is to be sent (see
 * EDDY_DNS_VERDICT_DROP); or EDDY__DNS_RESPOND_FORWARD when forward is
 * true and the question (class IN) lies outside every zone. Without a
 * forwarder such a question is REFUSED. An answer too large for the
 * limit is cut by whole rrsets (RFC 2181 section 9): with TC=1 when an
 * rrset of the answer or authority section is left out, without when
 * only additional ones are. With a forwarder, every answer has RA set.
 * Questions of a class other than IN, and zone transfers (AXFR, IXFR),
 * are REFUSED. */
int eddy__dns_respond(const eddy__dns_zone_db *db, const uint8_t *msg,
                      size_t len, int transport, bool forward,
                      eddy__dns_scratch *scratch, uint8_t *out, size_t outcap);

/* Writes an answer to q carrying rcode and no records (SERVFAIL when the
 * forwarder cannot answer, say) into out. Returns its length, or 0 if
 * outcap cannot hold it. */
int eddy__dns_respond_rcode(const eddy_dns_query_t *q, uint16_t rcode,
                            uint8_t *out, size_t outcap);

#endif
