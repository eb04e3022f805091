/* zone.h: the authoritative zone database and its lookup (private to eddy).
 *
 * A database holds one or more zones loaded from RFC 1035 master files
 * (parsed by ldns: $ORIGIN, $TTL, $INCLUDE, relative names, multi-line
 * records, every type ldns knows). It is built once, with _new then _add per
 * zone, and is immutable afterwards: any number of lookups may read it, from
 * any thread, without locks. It is freed as a whole. A reload builds a new
 * database and swaps the pointer; keeping the old one alive while lookups
 * still use it is the caller's business. If any _add fails, the whole new
 * database is to be freed and the old one kept serving.
 *
 * Names: a domain name is held in uncompressed wire form, length-prefixed
 * labels ending with the zero label, at most 255 bytes. Owner names are
 * stored lower-cased (matching ignores case); names inside rdata keep the
 * case of the zone file. Rdata is held in wire form, names inside it
 * uncompressed.
 *
 * The lookup (eddy__dns_zone_lookup) allocates nothing: it fills a result
 * that the caller provides with pointers to stored records.
 */
#ifndef EDDY_PROTO_DNS_ZONE_H
#define EDDY_PROTO_DNS_ZONE_H

#include <stddef.h>
#include <stdint.h>

/* The types and values the lookup itself cares about. */
#define EDDY__DNS_ZONE_T_A 1
#define EDDY__DNS_ZONE_T_NS 2
#define EDDY__DNS_ZONE_T_CNAME 5
#define EDDY__DNS_ZONE_T_SOA 6
#define EDDY__DNS_ZONE_T_MX 15
#define EDDY__DNS_ZONE_T_AAAA 28
#define EDDY__DNS_ZONE_T_SRV 33
#define EDDY__DNS_ZONE_T_ANY 255

#define EDDY__DNS_ZONE_NOERROR 0
#define EDDY__DNS_ZONE_NXDOMAIN 3
#define EDDY__DNS_ZONE_REFUSED 5

/* How many CNAMEs one lookup follows before it stops (a loop, or a chain
 * too long to be sane): the answer then holds the CNAMEs seen so far. */
#define EDDY__DNS_ZONE_MAX_CHAIN 8

/* The capacities of a result's sections. */
#define EDDY__DNS_ZONE_MAX_AN 64
#define EDDY__DNS_ZONE_MAX_NS 16
#define EDDY__DNS_ZONE_MAX_AR 32

/* One stored resource record. All its bytes live as long as the database. */
typedef struct eddy__dns_zone_rr {
  const uint8_t *owner; /* wire form, lower-cased */
  const uint8_t *rdata; /* wire form, names uncompressed */
  uint32_t ttl;
  uint16_t type;
  uint16_t rclass;
  uint16_t rdlen;
} eddy__dns_zone_rr;

/* One record of an answer. owner is the name to write, which differs from
 * rr->owner for a wildcard answer (it is then the name asked for: the query
 * name passed to the lookup, or a CNAME target inside stored rdata). ttl is
 * the TTL to write: rr->ttl, except for the SOA of a negative answer, whose
 * TTL is min(SOA TTL, SOA minimum) (RFC 2308 section 3). */
typedef struct eddy__dns_zone_entry {
  const eddy__dns_zone_rr *rr;
  const uint8_t *owner;
  uint32_t ttl;
} eddy__dns_zone_entry;

typedef struct eddy__dns_zone eddy__dns_zone;
typedef struct eddy__dns_zone_db eddy__dns_zone_db;

/* What a lookup found. The pointers stay valid as long as the database and
 * the query name given to the lookup. */
typedef struct eddy__dns_zone_result {
  int rcode;     /* EDDY__DNS_ZONE_NOERROR, _NXDOMAIN or _REFUSED */
  int aa;        /* 1: set the AA flag (0 for a referral or REFUSED) */
  int referral;  /* 1: the authority section holds a delegation's NS */
  int truncated; /* 1: a section was full and records were left out */
  const eddy__dns_zone *zone; /* the zone that answered, NULL if REFUSED */
  size_t an, ns, ar;          /* records in each section */
  eddy__dns_zone_entry answer[EDDY__DNS_ZONE_MAX_AN];
  eddy__dns_zone_entry authority[EDDY__DNS_ZONE_MAX_NS];
  eddy__dns_zone_entry additional[EDDY__DNS_ZONE_MAX_AR];
} eddy__dns_zone_result;

/* Creates an empty database. Returns 0 or -ENOMEM. */
int eddy__dns_zone_db_new(eddy__dns_zone_db **out);

/* Loads the master file at path as one zone and adds it. origin is the
 * zone's name in text ("example.com." or "example.com"); NULL takes the
 * owner of the file's SOA record, relative names before any $ORIGIN being
 * then an error. A relative $INCLUDE path is taken from the directory of the
 * file that includes it; an $INCLUDE may name an origin, and the origin
 * reverts after the included file (RFC 1035 section 5.1).
 *
 * Checks: exactly one SOA, at the apex; no CNAME beside other data at one
 * name (RRSIG and NSEC excepted), and at most one CNAME; every owner at or below the origin; no second
 * zone of the same name. Duplicate records are kept once. A record without a TTL takes
 * the last $TTL, or without one the previous record's TTL (RFC 1035
 * section 5.1), the first record's default being 3600 (ldns's); a TTL
 * with the top bit set reads as 0 (RFC 2181).
 *
 * Returns 0; -EINVAL for an error in the zone (eddy__dns_zone_db_error then
 * reads "FILE:LINE: PROBLEM", FILE being the included file for an error in
 * one); -errno when a file cannot be opened (the message names it);
 * -ENOMEM. After an error the database must only be freed. */
int eddy__dns_zone_db_add(eddy__dns_zone_db *db, const char *path,
                          const char *origin);

/* The message of the last failed _add, "" if none. Owned by the database. */
const char *eddy__dns_zone_db_error(const eddy__dns_zone_db *db);

/* Frees the database, all its zones and records. NULL is allowed. */
void eddy__dns_zone_db_free(eddy__dns_zone_db *db);

/* Zones in the database, and the nth one's apex (wire form, lower case) and
 * record count. */
size_t eddy__dns_zone_db_count(const eddy__dns_zone_db *db);
const eddy__dns_zone *eddy__dns_zone_db_zone(const eddy__dns_zone_db *db,
                                             size_t n);
const uint8_t *eddy__dns_zone_apex(const eddy__dns_zone *zone);
size_t eddy__dns_zone_records(const eddy__dns_zone *zone);

/* Answers the question (qname, qtype) from the database, per RFC 1034
 * section 4.3.2, RFC 2308, RFC 4592 and RFC 8482. qname is wire form, any
 * case, uncompressed. Class is the caller's business (IN only).
 *
 * - No zone at or above qname: REFUSED, nothing else.
 * - The zone whose apex is the longest match answers. A delegation (NS at a
 *   name below the apex) met on the way down, or at qname itself, gives a
 *   referral: no AA, the NS rrset in authority, and the A/AAAA of NS targets
 *   held in the zone (glue) in additional. Nothing at or below a cut is
 *   answered with authority.
 * - An existing name: the rrset of qtype. A CNAME (for any qtype but CNAME)
 *   goes in the answer and its target is looked up in turn, in this zone or
 *   another one of the database, up to EDDY__DNS_ZONE_MAX_CHAIN links; the
 *   rcode and the negative SOA are those of the last name. A target outside
 *   every zone ends the chain with NOERROR.
 * - qtype ANY (RFC 8482): one rrset only, that of the lowest type at the
 *   name (the SOA at an apex, say); no HINFO is synthesized.
 * - A name that does not exist: the wildcard "*" child of its closest
 *   encloser answers if it exists (RFC 4592: an existing name, even an empty
 *   non-terminal, blocks a wildcard above it), the records' owner being the
 *   query name; otherwise NXDOMAIN.
 * - NXDOMAIN and NODATA (the name exists without the type): the zone's SOA
 *   in authority, with its negative TTL.
 * - The A and AAAA of the targets of NS, MX and SRV answers, when the zone
 *   holds them, go in additional.
 *
 *
 * Not handled: DNAME (kept as data, never followed), DNSSEC (no RRSIG or
 * NSEC added; DS at a cut gets the referral too). An answer that filled a
 * section is flagged truncated: the caller sets TC or sends what it has.
 * An additional rrset that would not fit whole is left out whole.
 * The result is about 2.7 KB; one per worker, reused, is the intent.
 *
 * Returns 0, or -EINVAL if qname is not a valid wire-form name. */
int eddy__dns_zone_lookup(const eddy__dns_zone_db *db, const uint8_t *qname,
                          uint16_t qtype, eddy__dns_zone_result *res);

#endif
