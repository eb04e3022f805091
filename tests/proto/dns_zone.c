/* The DNS zone database: loading master files (directives, multi-line
 * records, every type of issue 14, each error with its file and line) and
 * the authoritative lookup (exact answers, CNAME chains, negative answers
 * with the SOA, wildcards and empty non-terminals with RFC 4592's example,
 * referrals with glue, minimal ANY, additional addresses, case), with
 * memory checked after each test and a zone of 100,000 names. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "helpers.h"
#include "proto/dns/zone.h"

#define ZONES EDDY_SOURCE_DIR "/tests/proto/zones/"

enum {
  T_A = 1,
  T_NS = 2,
  T_CNAME = 5,
  T_SOA = 6,
  T_PTR = 12,
  T_MX = 15,
  T_TXT = 16,
  T_AAAA = 28,
  T_SRV = 33,
  T_ANY = 255,
  T_CAA = 257
};

static eddy__dns_zone_db *db;
static eddy__dns_zone_result res;
static uint8_t qbuf[256];

static void load_main(void) {
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  int rc = eddy__dns_zone_db_add(db, ZONES "example.zone", "example.com.");
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
  rc = eddy__dns_zone_db_add(db, ZONES "other.zone", NULL);
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
  rc = eddy__dns_zone_db_add(db, ZONES "child.zone", "child.example.com");
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
}

static void load_4592(void) {
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  int rc = eddy__dns_zone_db_add(db, ZONES "rfc4592.zone", NULL);
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
}

static void done(void) {
  eddy__dns_zone_db_free(db);
  db = NULL;
  EXPECT_LIVE(0);
}

static const char *text_of(const uint8_t *name, char *out, size_t cap) {
  cr_assert(eddy_dns_name_to_text(name, out, cap) > 0);
  return out;
}

static const uint8_t *wire(const char *text) {
  cr_assert(eddy_dns_name_from_text(text, strlen(text), NULL, qbuf) > 0,
            "bad name %s", text);
  return qbuf;
}

static void ask(const char *name, uint16_t type) {
  EXPECT_OK(eddy__dns_zone_lookup(db, wire(name), type, &res));
}

/* A section as text: "owner TYPE ttl" entries joined by ", ". */
static const char *section(int which) {
  static char out[4096];
  const eddy__dns_zone_entry *e = which == 0   ? res.answer
                                  : which == 1 ? res.authority
                                               : res.additional;
  size_t n = which == 0 ? res.an : which == 1 ? res.ns : res.ar;
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    char name[300];
    cr_assert(eddy_dns_name_to_text(e[i].owner, name, sizeof(name)) > 0);
    o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s %u %u", i ? ", " : "",
                          name, e[i].rr->type, e[i].ttl);
  }
  return out;
}

static int rdata_is(const eddy__dns_zone_entry *e, const void *bytes,
                    size_t n) {
  return e->rr->rdlen == n && memcmp(e->rr->rdata, bytes, n) == 0;
}

/* ---- Loading ---------------------------------------------------------------- */

Test(dns_zone, loads_zones_with_directives_and_multiline_records) {
  load_main();
  EXPECT_EQ(eddy__dns_zone_db_count(db), 3);
  char text[300];
  EXPECT_STR(text_of(eddy__dns_zone_apex(eddy__dns_zone_db_zone(db, 1)), text,
                     sizeof(text)),
             "other.test.");
  /* The multi-line SOA: minimum 300 read past the comments. */
  ask("example.com", T_SOA);
  EXPECT_EQ(res.an, 1);
  const eddy__dns_zone_rr *soa = res.answer[0].rr;
  const uint8_t *m = soa->rdata + soa->rdlen - 4;
  EXPECT_EQ((m[0] << 24 | m[1] << 16 | m[2] << 8 | m[3]), 300);
  EXPECT_EQ(soa->ttl, 3600);
  /* $INCLUDE with the includer's origin, $ORIGIN inside it, and the
   * origin restored after it. */
  ask("inc.example.com", T_A);
  EXPECT_STR(section(0), "inc.example.com. 1 3600");
  ask("x.deeper.example.com", T_A);
  EXPECT_EQ(res.an, 1);
  ask("after.example.com", T_A);
  EXPECT_EQ(res.an, 1);
  /* $INCLUDE with an origin, relative to the current one. */
  ask("given.example.com", T_A);
  EXPECT_EQ(res.an, 1);
  ask("host.given.example.com", T_A);
  EXPECT_EQ(res.an, 1);
  /* $TTL 0 is a TTL of 0, not "no default". */
  ask("zero.other.test", T_A);
  EXPECT_STR(section(0), "zero.other.test. 1 0");
  done();
}

Test(dns_zone, without_ttl_a_record_takes_the_previous_ones) {
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  int rc = eddy__dns_zone_db_add(db, ZONES "no_ttl.zone", NULL);
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
  ask("no-ttl.test", T_NS);
  EXPECT_STR(section(0), "no-ttl.test. 2 120");
  ask("ns.no-ttl.test", T_A);
  EXPECT_STR(section(0), "ns.no-ttl.test. 1 120");
  ask("b.no-ttl.test", T_A); /* after an explicit 0 */
  EXPECT_STR(section(0), "b.no-ttl.test. 1 0");
  ask("d.no-ttl.test", T_A);
  EXPECT_STR(section(0), "d.no-ttl.test. 1 77");
  ask("no-ttl.test", T_SOA); /* the first: the default */
  EXPECT_STR(section(0), "no-ttl.test. 6 3600");
  done();
}

Test(dns_zone, every_record_type_of_the_issue) {
  load_main();
  ask("txt.example.com", T_TXT);
  EXPECT_EQ(res.an, 1);
  static const char txt[] =
      "\x0c"
      "first string"
      "\x15"
      "second; not a comment"
      "\x05"
      "third";
  cr_expect(rdata_is(&res.answer[0], txt, sizeof(txt) - 1));
  ask("example.com", T_CAA);
  EXPECT_EQ(res.an, 1);
  static const char caa[] = "\x00\x05issueletsencrypt.org";
  cr_expect(rdata_is(&res.answer[0], caa, sizeof(caa) - 1));
  ask("4.2.0.192.in-addr.example.com", T_PTR);
  EXPECT_EQ(res.an, 1);
  cr_expect(rdata_is(&res.answer[0], "\3www\7example\3com", 17));
  ask("www.example.com", T_A);
  EXPECT_STR(section(0), "www.example.com. 1 600"); /* duplicate kept once */
  cr_expect(rdata_is(&res.answer[0], "\xc0\x00\x02\x50", 4));
  ask("ns2.example.com", T_AAAA);
  EXPECT_EQ(res.an, 1);
  EXPECT_EQ(res.answer[0].rr->rdlen, 16);
  done();
}

Test(dns_zone, errors_name_the_file_and_line) {
  static const struct {
    const char *file, *where, *what;
  } cases[] = {
      {"bad_syntax.zone", "bad_syntax.zone:5: ", ""},
      {"include_bad.zone", "bad.inc:3: ", ""},
      {"two_soa.zone", "two_soa.zone:5: ", "second SOA"},
      {"no_soa.zone", "no_soa.zone: ", "no SOA"},
      {"cname_other.zone", "cname_other.zone:6: ", "CNAME beside other data"},
      {"outside.zone", "outside.zone:5: ", "www.other.test. is outside"},
      {"soa_below.zone", "soa_below.zone:4: ", "not at the zone's apex"},
      {"unbalanced.zone", "unbalanced.zone:3: ", "unbalanced"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char path[512];
    snprintf(path, sizeof(path), ZONES "%s", cases[i].file);
    EXPECT_OK(eddy__dns_zone_db_new(&db));
    EXPECT_EQ(eddy__dns_zone_db_add(db, path, NULL), -EINVAL);
    const char *msg = eddy__dns_zone_db_error(db);
    cr_expect(strstr(msg, cases[i].where) != NULL, "%s: %s", cases[i].file,
              msg);
    cr_expect(strstr(msg, cases[i].what) != NULL, "%s: %s", cases[i].file, msg);
    done();
  }
}

Test(dns_zone, a_missing_file_and_a_zone_twice_are_refused) {
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  EXPECT_EQ(eddy__dns_zone_db_add(db, ZONES "nothere.zone", NULL), -ENOENT);
  cr_expect(strstr(eddy__dns_zone_db_error(db), "nothere.zone") != NULL);
  done();
  /* A missing included file: the directive's file and line, and the path. */
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  EXPECT_EQ(eddy__dns_zone_db_add(db, ZONES "include_missing.zone", NULL),
            -ENOENT);
  cr_expect(strstr(eddy__dns_zone_db_error(db), "include_missing.zone:4: ") !=
                NULL,
            "%s", eddy__dns_zone_db_error(db));
  cr_expect(strstr(eddy__dns_zone_db_error(db), "missing.inc") != NULL);
  done();
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  EXPECT_OK(eddy__dns_zone_db_add(db, ZONES "other.zone", NULL));
  EXPECT_EQ(eddy__dns_zone_db_add(db, ZONES "other.zone", "OTHER.test."),
            -EINVAL);
  cr_expect(strstr(eddy__dns_zone_db_error(db), "loaded twice") != NULL);
  done();
}

Test(dns_zone, out_of_memory_anywhere_while_loading) {
  static const int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC,
                              EDDY__SYS_REALLOC};
  for (size_t k = 0; k < 3; k++) {
    for (uint64_t nth = 1;; nth++) {
      int rc1, rc2 = 0;
      eddy__fault_fail_nth(kinds[k], nth, ENOMEM);
      rc1 = eddy__dns_zone_db_new(&db);
      if (rc1 == 0) {
        rc2 = eddy__dns_zone_db_add(db, ZONES "example.zone", NULL);
        if (rc2 == 0)
          rc2 = eddy__dns_zone_db_add(db, ZONES "other.zone", NULL);
      } else {
        db = NULL;
      }
      eddy__fault_reset();
      if (rc1 == 0 && rc2 == 0) {
        ask("alias.example.com", T_A);
        EXPECT_EQ(res.an, 3);
        done();
        break;
      }
      EXPECT_EQ(rc1 ? rc1 : rc2, -ENOMEM);
      done();
      cr_assert(nth < 10000);
    }
  }
}

/* ---- Answers ---------------------------------------------------------------- */

Test(dns_zone, names_match_without_case_and_the_question_case_is_echoed) {
  load_main();
  EXPECT_OK(eddy__dns_zone_lookup(db, wire("WwW.ExAmPlE.cOm"), T_A, &res));
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.aa, 1);
  EXPECT_EQ(res.an, 1);
  cr_expect(res.answer[0].owner == qbuf);
  EXPECT_STR(section(0), "WwW.ExAmPlE.cOm. 1 600");
  done();
}

Test(dns_zone, nodata_and_nxdomain_carry_the_soa_with_the_negative_ttl) {
  load_main();
  ask("www.example.com", T_AAAA);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.aa, 1);
  EXPECT_STR(section(0), "");
  EXPECT_STR(section(1), "example.com. 6 300"); /* min(3600, 300) */
  ask("nope.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NXDOMAIN);
  EXPECT_EQ(res.aa, 1);
  EXPECT_STR(section(1), "example.com. 6 300");
  ask("www.other.test", T_A); /* SOA TTL 60, minimum 30 */
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NXDOMAIN);
  EXPECT_STR(section(1), "other.test. 6 30");
  done();
}

Test(dns_zone, an_empty_non_terminal_exists) {
  load_main();
  ask("b.c.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 0);
  EXPECT_EQ(res.ns, 1);
  ask("C.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  ask("x.b.c.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NXDOMAIN);
  ask("a.b.c.example.com", T_A);
  EXPECT_EQ(res.an, 1);
  done();
}

Test(dns_zone, cname_chains_are_followed_inside_the_database) {
  load_main();
  ask("alias.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.aa, 1);
  EXPECT_STR(section(0),
             "alias.example.com. 5 3600, alias2.example.com. 5 "
             "3600, www.example.com. 1 600");
  ask("alias.example.com", T_CNAME);
  EXPECT_STR(section(0), "alias.example.com. 5 3600");
  /* Into another zone of the database. */
  ask("other.example.com", T_A);
  EXPECT_STR(section(0), "other.example.com. 5 3600, host.other.test. 1 60");
  /* Out of every zone: the CNAME alone. */
  ask("away.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_STR(section(0), "away.example.com. 5 3600");
  EXPECT_EQ(res.ns, 0);
  /* To a name that does not exist: NXDOMAIN (RFC 6604) with the SOA. */
  ask("dangling.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NXDOMAIN);
  EXPECT_STR(section(0), "dangling.example.com. 5 3600");
  EXPECT_STR(section(1), "example.com. 6 300");
  /* A loop ends where it comes back, each CNAME once (RFC 2181 section
   * 5: no duplicate records). */
  ask("loop1.example.com", T_A);
  EXPECT_STR(section(0),
             "loop1.example.com. 5 3600, loop2.example.com. 5 3600");
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.truncated, 0);
  done();
}

Test(dns_zone, a_delegation_is_a_referral_with_glue) {
  static const char *names[] = {"sub.example.com", "ns.sub.example.com",
                                "deep.below.sub.example.com",
                                "nothere.sub.example.com"};
  load_main();
  for (size_t i = 0; i < 4; i++) {
    ask(names[i], T_A);
    EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
    EXPECT_EQ(res.aa, 0);
    EXPECT_EQ(res.referral, 1);
    EXPECT_EQ(res.an, 0);
    EXPECT_STR(section(1), "sub.example.com. 2 3600, sub.example.com. 2 3600");
    EXPECT_STR(section(2),
               "ns.sub.example.com. 1 3600, ns.sub.example.com. 28 3600");
  }
  ask("sub.example.com", T_NS);
  EXPECT_EQ(res.referral, 1);
  EXPECT_EQ(res.an, 0);
  done();
}

Test(dns_zone, the_longest_zone_answers) {
  load_main();
  ask("www.child.example.com", T_A);
  EXPECT_EQ(res.aa, 1);
  EXPECT_STR(section(0), "www.child.example.com. 1 120");
  char text[300];
  EXPECT_STR(text_of(eddy__dns_zone_apex(res.zone), text, sizeof(text)),
             "child.example.com.");
  ask("nope.child.example.com", T_A);
  EXPECT_STR(section(1), "child.example.com. 6 120");
  done();
}

Test(dns_zone, names_outside_every_zone_are_refused) {
  load_main();
  ask("www.example.org", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_REFUSED);
  EXPECT_EQ(res.aa, 0);
  EXPECT_EQ(res.an + res.ns + res.ar, 0);
  cr_expect(res.zone == NULL);
  ask(".", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_REFUSED);
  done();
}

Test(dns_zone, mx_srv_and_ns_targets_get_their_addresses) {
  load_main();
  ask("example.com", T_MX);
  EXPECT_EQ(res.an, 2);
  EXPECT_STR(section(2), "mail.example.com. 1 3600, mail.example.com. 28 3600");
  ask("_sip._tcp.example.com", T_SRV);
  EXPECT_EQ(res.an, 1);
  EXPECT_STR(section(2), "sip.example.com. 1 3600");
  ask("example.com", T_NS);
  EXPECT_STR(section(2),
             "ns1.example.com. 1 3600, ns2.example.com. 1 3600, "
             "ns2.example.com. 28 3600");
  done();
}

Test(dns_zone, any_is_answered_with_one_rrset) {
  load_main();
  ask("example.com", T_ANY);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 2);
  EXPECT_EQ(res.answer[0].rr->type, T_NS);
  EXPECT_EQ(res.answer[1].rr->type, T_NS);
  ask("mail.example.com", T_ANY);
  EXPECT_STR(section(0), "mail.example.com. 1 3600");
  ask("b.c.example.com", T_ANY);
  EXPECT_EQ(res.an, 0);
  EXPECT_EQ(res.ns, 1);
  done();
}

Test(dns_zone, wildcards_answer_with_the_query_name) {
  load_main();
  ask("Foo.wild.example.com", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.aa, 1);
  EXPECT_STR(section(0), "Foo.wild.example.com. 1 3600");
  cr_expect(res.answer[0].owner == qbuf);
  ask("a.b.wild.example.com", T_TXT);
  EXPECT_STR(section(0), "a.b.wild.example.com. 16 3600");
  ask("foo.wild.example.com", T_AAAA);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 0);
  EXPECT_STR(section(1), "example.com. 6 300");
  ask("wild.example.com", T_A); /* the wildcard's parent: an empty name */
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 0);
  /* A wildcard CNAME: the chain goes on from the synthesized name. */
  ask("x.cw.example.com", T_A);
  EXPECT_STR(section(0), "x.cw.example.com. 5 3600, www.example.com. 1 600");
  done();
}

/* RFC 4592 section 2.2.1: the example zone and its expected answers. */
Test(dns_zone, rfc4592_wildcard_matches) {
  load_4592();
  ask("host3.example", T_MX);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_STR(section(0), "host3.example. 15 3600");
  EXPECT_STR(section(2), "host1.example. 1 3600");
  ask("host3.example", T_A);
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 0);
  EXPECT_STR(section(1), "example. 6 3600");
  ask("foo.bar.example", T_TXT);
  EXPECT_STR(section(0), "foo.bar.example. 16 3600");
  cr_expect(rdata_is(&res.answer[0], "\x12this is a wildcard", 19));
  done();
}

Test(dns_zone, rfc4592_wildcard_non_matches) {
  load_4592();
  ask("host1.example", T_MX); /* exists: no data of the type */
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 0);
  ask("sub.*.example", T_MX); /* exists */
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NOERROR);
  EXPECT_EQ(res.an, 0);
  ask("_telnet._tcp.host1.example", T_SRV); /* encloser _tcp.host1 is empty */
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NXDOMAIN);
  EXPECT_EQ(res.an, 0);
  ask("host.subdel.example", T_A); /* below a cut */
  EXPECT_EQ(res.referral, 1);
  EXPECT_EQ(res.aa, 0);
  EXPECT_EQ(res.ns, 2);
  ask("ghost.*.example", T_MX); /* encloser *.example; no *.*.example */
  EXPECT_EQ(res.rcode, EDDY__DNS_ZONE_NXDOMAIN);
  EXPECT_EQ(res.an, 0);
  /* The wildcard itself, asked by name. */
  ask("*.example", T_TXT);
  EXPECT_STR(section(0), "*.example. 16 3600");
  done();
}

Test(dns_zone, a_bad_query_name_is_refused_by_the_lookup) {
  load_main();
  static const uint8_t bad[] = {64, 'a', 0};
  EXPECT_EQ(eddy__dns_zone_lookup(db, bad, T_A, &res), -EINVAL);
  uint8_t longname[300];
  memset(longname, 1, sizeof(longname));
  for (size_t i = 0; i + 1 < sizeof(longname); i += 2)
    longname[i + 1] = 'a';
  longname[299] = 0;
  EXPECT_EQ(eddy__dns_zone_lookup(db, longname, T_A, &res), -EINVAL);
  done();
}

/* ---- Generated zones -------------------------------------------------------- */

static FILE *temp_zone(char *path) {
  strcpy(path, "/tmp/eddy-dns-zone-XXXXXX");
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  cr_assert(f != NULL);
  fprintf(f,
          "$TTL 300\n$ORIGIN big.test.\n"
          "@ IN SOA ns admin 1 2 3 4 60\n@ IN NS ns\nns IN A 192.0.2.1\n");
  return f;
}

Test(dns_zone, a_full_section_reports_truncation) {
  char path[64];
  FILE *f = temp_zone(path);
  for (int i = 0; i < 100; i++)
    fprintf(f, "many IN A 10.0.%d.%d\n", i / 256, i % 256);
  fclose(f);
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  int rc = eddy__dns_zone_db_add(db, path, NULL);
  unlink(path);
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
  ask("many.big.test", T_A);
  EXPECT_EQ(res.an, EDDY__DNS_ZONE_MAX_AN);
  EXPECT_EQ(res.truncated, 1);
  done();
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* No timed assertion: the figures are printed for the record. */
Test(dns_zone, a_zone_of_100000_names) {
  enum { N = 100000 };
  char path[64];
  struct rusage ru0, ru1;
  FILE *f = temp_zone(path);
  for (int i = 0; i < N; i++)
    fprintf(f, "host%d.dept%d IN A 10.%d.%d.%d\n", i, i % 100, i >> 16,
            (i >> 8) & 255, i & 255);
  fclose(f);
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = now();
  EXPECT_OK(eddy__dns_zone_db_new(&db));
  int rc = eddy__dns_zone_db_add(db, path, NULL);
  double t1 = now();
  getrusage(RUSAGE_SELF, &ru1);
  unlink(path);
  cr_assert(rc == 0, "%s", eddy__dns_zone_db_error(db));
  EXPECT_EQ(eddy__dns_zone_records(eddy__dns_zone_db_zone(db, 0)), N + 3);
  long hits = 0, nx = 0;
  double t2 = now();
  for (int i = 0; i < N; i++) {
    char name[64];
    snprintf(name, sizeof(name), "HOST%d.dept%d.big.test", i, i % 100);
    ask(name, T_A);
    hits += res.an == 1;
    snprintf(name, sizeof(name), "no%d.dept%d.big.test", i, i % 100);
    ask(name, T_A);
    nx += res.rcode == EDDY__DNS_ZONE_NXDOMAIN;
  }
  double t3 = now();
  EXPECT_EQ(hits, N);
  EXPECT_EQ(nx, N);
  fprintf(stderr,
          "dns_zone: %d names loaded in %.3f s (max RSS +%ld KiB); %d "
          "lookups in %.3f s (%.0f ns each, names formatted included)\n",
          N, t1 - t0, ru1.ru_maxrss - ru0.ru_maxrss, 2 * N, t3 - t2,
          (t3 - t2) / (2.0 * N) * 1e9);
  done();
}
