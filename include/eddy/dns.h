/* eddy/dns.h: the DNS wire format (RFC 1035, 3597, 6891), shared by the
 * server, the forwarder and the client.
 *
 * Nothing here allocates or touches the network: every function works on
 * the caller's buffers and structs, so the per-query path (parse the
 * question, write the answer) costs no allocation. Every parser is written
 * for hostile input: it reads nothing outside the bytes it was given and
 * rejects what RFC 1035 does not allow instead of guessing.
 *
 * Conventions
 *
 * A domain name is held in uncompressed wire form: length-prefixed labels
 * ending with the zero-length root label, at most 255 bytes in all
 * (EDDY_DNS_NAME_MAX), each label at most 63 bytes. The root is the single
 * byte 0. Functions that take such a name trust it to be well formed unless
 * they say otherwise (eddy_dns_name_check tells).
 *
 * A record's rdata is held in wire form with any names inside it
 * uncompressed: what eddy_dns_msg_next returns and what
 * eddy_dns_writer_add takes.
 *
 * Numbers are host order in structs and arguments; the functions do the
 * byte swapping.
 *
 * A server's path, per datagram (no allocation anywhere):
 *
 *   eddy_dns_query_t q;            // may live in the server, reused
 *   eddy_dns_writer_t w;
 *   switch (eddy_dns_query_parse(pkt, n, &q)) {
 *   case EDDY_DNS_VERDICT_DROP: return;
 *   case EDDY_DNS_VERDICT_ANSWER:
 *     eddy_dns_writer_init(&w, out, min(sizeof out, q.udp_size), &q, 0);
 *     ... look up q.qname / q.qtype, then per record:
 *     if (eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, ...) == -ENOSPC)
 *       eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_TC);
 *     break;
 *   default: // FORMERR, NOTIMP, BADVERS: the matching rcode, no records
 *     eddy_dns_writer_init(&w, out, 512, &q, EDDY_DNS_RCODE_FORMERR);
 *   }
 *   send(out, eddy_dns_writer_finish(&w));
 *
 * A forwarder or client writes its question with eddy_dns_query_write and
 * walks the answer with eddy_dns_msg_parse and eddy_dns_msg_next.
 *
 * Errors: EDDY_EPARSE for malformed input, -ENOSPC when the output does not
 * fit, -EINVAL for a call the API does not allow (a section added out of
 * order).
 */
#ifndef EDDY_DNS_H
#define EDDY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_DNS_NAME_MAX 255  /* bytes of a name in wire form */
#define EDDY_DNS_LABEL_MAX 63  /* bytes of one label */
#define EDDY_DNS_HEADER_LEN 12 /* bytes of the message header */
/* Room for any name as presentation text, with its NUL: 4 labels of 63
 * bytes each written as \DDD, plus the dots. */
#define EDDY_DNS_NAME_TEXT_MAX 1024
/* The UDP payload size a message without EDNS may use (RFC 1035). */
#define EDDY_DNS_UDP_MIN 512
/* The UDP payload size eddy advertises in its own OPT records (the DNS
 * flag day 2020 figure: no IP fragmentation on common paths). */
#define EDDY_DNS_EDNS_UDP_SIZE 1232
/* The largest rdata eddy_dns_msg_next ever decompresses (SOA: two names
 * and five 32-bit numbers). */
#define EDDY_DNS_RDATA_NAMES_MAX (2 * EDDY_DNS_NAME_MAX + 20)

/* Record types eddy knows by name (others are carried as opaque rdata,
 * RFC 3597). */
enum {
  EDDY_DNS_TYPE_A = 1,
  EDDY_DNS_TYPE_NS = 2,
  EDDY_DNS_TYPE_CNAME = 5,
  EDDY_DNS_TYPE_SOA = 6,
  EDDY_DNS_TYPE_PTR = 12,
  EDDY_DNS_TYPE_MX = 15,
  EDDY_DNS_TYPE_TXT = 16,
  EDDY_DNS_TYPE_AAAA = 28,
  EDDY_DNS_TYPE_SRV = 33,
  EDDY_DNS_TYPE_OPT = 41,
  EDDY_DNS_TYPE_IXFR = 251,
  EDDY_DNS_TYPE_AXFR = 252,
  EDDY_DNS_TYPE_ANY = 255,
  EDDY_DNS_TYPE_CAA = 257,
};

enum {
  EDDY_DNS_CLASS_IN = 1,
  EDDY_DNS_CLASS_CH = 3,
  EDDY_DNS_CLASS_ANY = 255,
};

/* Response codes. BADVERS does not fit the header's four bits: the writer
 * puts its upper bits in the OPT record (RFC 6891). */
enum {
  EDDY_DNS_RCODE_NOERROR = 0,
  EDDY_DNS_RCODE_FORMERR = 1,
  EDDY_DNS_RCODE_SERVFAIL = 2,
  EDDY_DNS_RCODE_NXDOMAIN = 3,
  EDDY_DNS_RCODE_NOTIMP = 4,
  EDDY_DNS_RCODE_REFUSED = 5,
  EDDY_DNS_RCODE_BADVERS = 16,
};

/* The header's flag bits, as they sit in its second 16-bit word. */
enum {
  EDDY_DNS_FLAG_QR = 0x8000,
  EDDY_DNS_FLAG_AA = 0x0400,
  EDDY_DNS_FLAG_TC = 0x0200,
  EDDY_DNS_FLAG_RD = 0x0100,
  EDDY_DNS_FLAG_RA = 0x0080,
  EDDY_DNS_FLAG_AD = 0x0020,
  EDDY_DNS_FLAG_CD = 0x0010,
};

#define EDDY_DNS_OPCODE_QUERY 0

/* The sections of a message, in their order. */
typedef enum eddy_dns_section {
  EDDY_DNS_QUESTION = 0,
  EDDY_DNS_ANSWER = 1,
  EDDY_DNS_AUTHORITY = 2,
  EDDY_DNS_ADDITIONAL = 3,
} eddy_dns_section_t;

/* ---- Names ---- */

/* Reads the name at *off in the message msg[0..len), following
 * compression pointers, into out in uncompressed wire form (case kept).
 * On success returns the name's length in out (1 to 255) and moves *off
 * past the name as it lies in the message (past its first pointer, if
 * any). Returns EDDY_EPARSE, *off unchanged, if the name runs past the
 * message, a label is longer than 63 bytes, the name is longer than 255,
 * a label has type 0x40 or 0x80, or a pointer is not strictly backwards
 * (a pointer to itself, forward, or beyond the message: each pointer must
 * point before the pointer itself and past the header, so loops are
 * impossible), or the name follows more than 128 pointers (one per label
 * is all a name needs; the cap keeps the cost of a hostile message with
 * many names linear in its size). */
EDDY_API int eddy_dns_name_parse(const uint8_t *msg, size_t len, size_t *off,
                                 uint8_t out[EDDY_DNS_NAME_MAX]);

/* Checks that name[0..len) starts with one well-formed uncompressed name
 * (no pointers). Returns its length, or EDDY_EPARSE. */
EDDY_API int eddy_dns_name_check(const uint8_t *name, size_t len);

/* The length in bytes of a well-formed name, the root label included. */
EDDY_API size_t eddy_dns_name_len(const uint8_t *name);

/* The number of labels of a well-formed name, the root not counted
 * ("www.example.com." has 3, "." has 0). */
EDDY_API int eddy_dns_name_labels(const uint8_t *name);

/* Whether two well-formed names are equal, ASCII letters compared without
 * regard to case (RFC 4343); other bytes compare exactly. */
EDDY_API bool eddy_dns_name_equal(const uint8_t *a, const uint8_t *b);

/* Whether name is parent or lies below it ("www.example.com." is a
 * subdomain of "example.com." and of "."; "wwwexample.com." is not),
 * without regard to case. */
EDDY_API bool eddy_dns_name_is_subdomain(const uint8_t *name,
                                         const uint8_t *parent);

/* Copies the well-formed name src to dst (which may be src) with ASCII
 * letters in lower case. Returns the length. */
EDDY_API size_t eddy_dns_name_lower(uint8_t *dst, const uint8_t *src);

/* Converts presentation text text[0..len) ("www.Example.com.") into wire
 * form in out and returns the length. Dots separate labels; "\." and "\\"
 * (any "\c") stand for the character itself, "\DDD" for the byte of that
 * decimal value (at most 255). "." alone is the root. A name without a
 * final dot is relative: origin (a wire-form name) is appended, or, if
 * origin is NULL, the name is taken as absolute. Returns EDDY_EPARSE for an
 * empty label ("a..b", ".a"), a label over 63 bytes, a name over 255, a
 * bad escape, or empty text. */
EDDY_API int eddy_dns_name_from_text(const char *text, size_t len,
                                     const uint8_t *origin,
                                     uint8_t out[EDDY_DNS_NAME_MAX]);

/* Writes the well-formed name as presentation text into out (NUL
 * terminated), always ending with a dot; the root is ".". Bytes '.', '\\',
 * '"', ';', '(', ')', '@', '$' and ' ' are escaped with a backslash, other
 * bytes outside printable ASCII as \DDD. Returns the text's length (without
 * the NUL), or -ENOSPC if cap is too small (out is then an empty string
 * when cap > 0). EDDY_DNS_NAME_TEXT_MAX always suffices. */
EDDY_API int eddy_dns_name_to_text(const uint8_t *name, char *out, size_t cap);

/* ---- Types ---- */

/* Writes the mnemonic of a record type ("A", "MX", "CAA"), or for a type
 * without one the RFC 3597 form "TYPE65000", into out (NUL terminated)
 * and returns out. EDDY_DNS_TYPE_TEXT_MAX always suffices; a smaller cap
 * gets as much as fits. */
#define EDDY_DNS_TYPE_TEXT_MAX 16
EDDY_API const char *eddy_dns_type_to_text(uint16_t type, char *out,
                                           size_t cap);

/* Reads a type as eddy_dns_type_to_text writes it, in any case ("aaaa",
 * "TYPE28", "type65000"). Returns 0 and sets *type, or EDDY_EPARSE. */
EDDY_API int eddy_dns_type_from_text(const char *text, uint16_t *type);

/* ---- Queries (the server's side) ---- */

/* What a server does with a message it received. */
typedef enum eddy_dns_verdict {
  /* Answer it: the question and EDNS fields are filled in. */
  EDDY_DNS_VERDICT_ANSWER = 0,
  /* Answer FORMERR. The header fields are filled in; the question too if
   * it could be read (qname_len > 0), else the answer has none. */
  EDDY_DNS_VERDICT_FORMERR,
  /* Answer NOTIMP: an opcode other than QUERY. Only the header was read;
   * the answer echoes no question. */
  EDDY_DNS_VERDICT_NOTIMP,
  /* Answer BADVERS (rcode 16, with an OPT record): EDNS version above 0.
   * The question was read. */
  EDDY_DNS_VERDICT_BADVERS,
  /* Send nothing: shorter than a header, or a response (QR=1). Answering
   * a response invites two servers to bounce errors at each other for
   * ever, so responses sent to a server are dropped, as NSD and BIND do. */
  EDDY_DNS_VERDICT_DROP,
} eddy_dns_verdict_t;

/* A parsed query. Filled by eddy_dns_query_parse; the writer reads it. */
typedef struct eddy_dns_query {
  uint16_t id;
  uint16_t flags;  /* the header's second word, as sent */
  uint8_t opcode;  /* (flags >> 11) & 15 */
  uint8_t rcode;   /* flags & 15 (meaningless in a query, kept) */
  uint16_t qtype;  /* 0 unless the question was read */
  uint16_t qclass; /* 0 unless the question was read */
  /* The question's name exactly as sent (case kept, for the echo), or
   * qname_len 0 if the question was not read. */
  uint8_t qname[EDDY_DNS_NAME_MAX];
  size_t qname_len;
  bool edns;            /* an OPT record came in the additional section */
  uint8_t edns_version; /* its version (0 if none) */
  bool edns_do;         /* its DO bit (DNSSEC OK) */
  /* The largest UDP answer the client takes: the OPT's payload size, at
   * least 512; 512 without EDNS. (Over TCP use 65535 instead.) */
  uint16_t udp_size;
} eddy_dns_query_t;

/* Parses a query msg[0..len) into q and says what to do with it. Checks,
 * in this order:
 *
 * - shorter than 12 bytes: DROP (no id to answer to);
 * - QR=1: DROP (see the verdict above);
 * - opcode other than QUERY: NOTIMP;
 * - QDCOUNT other than 1: FORMERR;
 * - the question, then every record of the answer, authority and
 *   additional sections must parse (names, bounds, rdlength) within the
 *   message: else FORMERR. Records other than OPT are skipped (a query
 *   normally has none);
 * - OPT (RFC 6891 6.1.1): FORMERR if there is more than one, if it is
 *   outside the additional section or if its owner is not the root; its
 *   options are skipped but must fit its rdata exactly;
 * - EDNS version above 0: BADVERS;
 * - else ANSWER.
 *
 * Bytes after the last record are ignored. The class and type of the
 * question are not judged here (that is the server's business). Never
 * fails otherwise; q is always filled as far as it could be read. */
EDDY_API eddy_dns_verdict_t eddy_dns_query_parse(const uint8_t *msg, size_t len,
                                                 eddy_dns_query_t *q);

/* ---- Messages (the forwarder's and the client's side) ---- */

/* One record (or, in the question section, one question: ttl 0, no
 * rdata) as eddy_dns_msg_next returns it. */
typedef struct eddy_dns_rr {
  eddy_dns_section_t section;
  uint8_t name[EDDY_DNS_NAME_MAX]; /* the owner, decompressed */
  size_t name_len;
  uint16_t type;
  uint16_t rclass;
  uint32_t ttl;
  /* The rdata in wire form with its names decompressed. For NS, CNAME,
   * PTR, MX, SOA and SRV it points into rdbuf; for other types straight
   * into the message (valid as long as the message is). */
  const uint8_t *rdata;
  size_t rdlen;
  uint8_t rdbuf[EDDY_DNS_RDATA_NAMES_MAX];
} eddy_dns_rr_t;

/* An iterator over a whole message. Fields are read-only. */
typedef struct eddy_dns_msg {
  const uint8_t *buf;
  size_t len;
  uint16_t id;
  uint16_t flags;    /* the header's second word */
  uint16_t count[4]; /* QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT */
  size_t pos;        /* where the next record starts */
  int section;       /* the section of the next record */
  uint16_t left;     /* records left in that section */
} eddy_dns_msg_t;

/* Starts iterating the message buf[0..len); buf must stay valid while the
 * iterator is used. Returns 0, or EDDY_EPARSE if len < 12. */
EDDY_API int eddy_dns_msg_parse(eddy_dns_msg_t *m, const uint8_t *buf,
                                size_t len);

/* Reads the next record (questions first, then answer, authority and
 * additional records) into rr. Returns 1 for a record, 0 at the end (all
 * counted records read; bytes after them are ignored), EDDY_EPARSE for a
 * malformed record (after which the iterator stays at that record and
 * returns EDDY_EPARSE again). Checks: names as eddy_dns_name_parse; the
 * fixed fields and rdata within the message; A rdata of 4 bytes, AAAA of
 * 16; for NS, CNAME, PTR, MX, SOA and SRV the names (which may be
 * compressed, even in SRV, as RFC 3597 asks a receiver to accept) and
 * fixed fields exactly fill rdlength. Other types are not looked into. */
EDDY_API int eddy_dns_msg_next(eddy_dns_msg_t *m, eddy_dns_rr_t *rr);

/* ---- Writing ---- */

/* A message being written into the caller's buffer. Fields are read-only
 * except edns_udp_size. Up to EDDY_DNS_COMPRESS_MAX name positions are
 * remembered for compression; names past that are written in full. */
#define EDDY_DNS_COMPRESS_MAX 64
typedef struct eddy_dns_writer {
  uint8_t *buf;
  size_t cap;     /* the size limit given to init */
  size_t len;     /* bytes written so far */
  size_t reserve; /* bytes kept for the OPT record */
  int section;    /* the section records go to now */
  uint16_t count[4];
  bool edns;              /* an OPT record is added by finish */
  bool edns_do;           /* its DO bit */
  uint16_t rcode;         /* 12 bits: 4 in the header, 8 in the OPT */
  uint16_t edns_udp_size; /* advertised in the OPT; EDDY_DNS_EDNS_UDP_SIZE */
  int ncomp;
  uint16_t comp[EDDY_DNS_COMPRESS_MAX];    /* offsets of names written */
  uint8_t comp_len[EDDY_DNS_COMPRESS_MAX]; /* and their lengths */
} eddy_dns_writer_t;

/* Starts the answer to q in buf[0..cap): cap is the size limit, normally
 * the smaller of the buffer and q->udp_size over UDP, or 65535 over TCP.
 * Writes the header (q's id and opcode, RD and CD copied, QR set, the
 * rcode's low 4 bits) and, if q->qname_len > 0, the question with the
 * name's case as it came. If q->edns, room for an OPT record is kept and
 * finish adds it (DO copied from the query, RFC 3225; the rcode's upper
 * bits in it). Returns 0, -ENOSPC if cap cannot hold even that (then
 * nothing is usable), -EINVAL if cap < 12. */
EDDY_API int eddy_dns_writer_init(eddy_dns_writer_t *w, uint8_t *buf,
                                  size_t cap, const eddy_dns_query_t *q,
                                  uint16_t rcode);

/* Writes a query (the client's and forwarder's side): header with id and
 * flags (RD, CD as wanted; QR is cleared), one question, and, if
 * edns_udp_size is not 0, an OPT record advertising it (with DO if
 * edns_do). Returns the message's length, -ENOSPC if cap is too small,
 * EDDY_EPARSE if name is not well formed. */
EDDY_API int eddy_dns_query_write(uint8_t *buf, size_t cap, uint16_t id,
                                  uint16_t flags, const uint8_t *name,
                                  uint16_t qtype, uint16_t qclass,
                                  uint16_t edns_udp_size, bool edns_do);

/* Sets flag bits (EDDY_DNS_FLAG_AA, TC, RA, AD) in the header. */
EDDY_API void eddy_dns_writer_set_flags(eddy_dns_writer_t *w, uint16_t flags);

/* Changes the rcode (12 bits; the upper 8 need an OPT record, which the
 * writer only has if the query had one). */
EDDY_API void eddy_dns_writer_set_rcode(eddy_dns_writer_t *w, uint16_t rcode);

/* Appends a record to section (ANSWER, AUTHORITY or ADDITIONAL, in that
 * order: going back to an earlier section is -EINVAL). name is the owner
 * (well formed, uncompressed); rdata is in wire form with its names
 * uncompressed. The owner and the names in NS, CNAME, PTR, MX and SOA
 * rdata are compressed against the names already written (matched without
 * regard to case: a compressed suffix takes the case of its first
 * occurrence); names in other types (SRV included) are written as given
 * (RFC 3597). Returns 0; -ENOSPC if the record does not fit the limit,
 * in which case nothing of it is written and the message stays whole (the
 * caller sets TC for the answer section or just stops adding additional
 * records); EDDY_EPARSE if name or the names in such rdata are not well
 * formed or do not fill rdlen exactly; -EINVAL also for rdlen > 65535 or
 * a section that already holds 65535 records. rdata may be NULL when
 * rdlen is 0. */
EDDY_API int eddy_dns_writer_add(eddy_dns_writer_t *w,
                                 eddy_dns_section_t section,
                                 const uint8_t *name, uint16_t type,
                                 uint16_t rclass, uint32_t ttl,
                                 const uint8_t *rdata, size_t rdlen);

/* Takes back every record added since mark was copied from w (a plain
 * struct copy, mark = *w), header counts included: how a whole rrset is
 * left out when its last record does not fit (RFC 2181 section 9). */
EDDY_API void eddy_dns_writer_rollback(eddy_dns_writer_t *w,
                                       const eddy_dns_writer_t *mark);

/* Ends the message: adds the OPT record if the query had one. Returns the
 * message's length. The writer may not be added to afterwards. */
EDDY_API size_t eddy_dns_writer_finish(eddy_dns_writer_t *w);

#ifdef __cplusplus
}
#endif

#endif
