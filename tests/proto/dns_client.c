/* The DNS client: resolv.conf read the way glibc reads it, the search list
 * and ndots, the three forms of a lookup (callback, Deferred, coroutine),
 * cancellation, and failures injected through src/sys, against a fake
 * server on 127.0.0.1 that answers from a small table and remembers what
 * it was asked. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "eddy/resolver.h"
#include "helpers.h"

/* ---- resolv.conf ------------------------------------------------------------------ */

static void write_temp(char *path, const char *text) {
  int fd;
  strcpy(path, "/tmp/eddy-resolv-XXXXXX");
  fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
}

static unsigned port_of(const eddy_resolver_conf *c, int i) {
  const struct sockaddr_in *in = (const struct sockaddr_in *)&c->servers[i];
  return ntohs(in->sin_port);
}

static void addr_text(const eddy_resolver_conf *c, int i, char *buf) {
  if (c->servers[i].ss_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)&c->servers[i])->sin_addr,
              buf, INET6_ADDRSTRLEN);
  else
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)&c->servers[i])->sin6_addr, buf,
              INET6_ADDRSTRLEN);
}

Test(dns_client, resolv_conf_is_read_as_glibc_reads_it) {
  char path[64], a[INET6_ADDRSTRLEN];
  eddy_resolver_conf c;
  write_temp(path,
             "# a comment\n"
             "; another\n"
             "nameserver 192.0.2.53\n"
             "nameserver not-an-address\n"
             "nameserver 2001:db8::53%eth0\r\n"
             "garbage line without meaning\n"
             "\n"
             "   \t\n"
             "domain first.example\n"
             "search corp.example. example.com\n"
             "nameserver ::1\n"
             "nameserver 192.0.2.99\n"
             "options ndots:3 timeout:0 attempts:9 edns0 rotate "
             "ndots:x debug\n"
             "options");
  EXPECT_OK(eddy_resolver_conf_load(&c, path));
  unlink(path);
  EXPECT_EQ(c.nservers, 3); /* the fourth is ignored */
  addr_text(&c, 0, a);
  EXPECT_STR(a, "192.0.2.53");
  EXPECT_EQ(port_of(&c, 0), 53);
  addr_text(&c, 1, a);
  EXPECT_STR(a, "2001:db8::53");
  addr_text(&c, 2, a);
  EXPECT_STR(a, "::1");
  EXPECT_EQ(c.nsearch, 2);
  EXPECT_STR(c.search[0], "corp.example");
  EXPECT_STR(c.search[1], "example.com");
  EXPECT_EQ(c.ndots, 3);
  EXPECT_EQ(c.timeout_ns, EDDY_NSEC_PER_SEC);
  EXPECT_EQ(c.attempts, 5);
  EXPECT_EQ(c.edns_udp_size, EDDY_DNS_EDNS_UDP_SIZE);
}

Test(dns_client, resolv_conf_last_of_domain_and_search_wins_and_limits_hold) {
  eddy_resolver_conf c;
  const char *text =
      "search a.example b.example c d e f g h\n"
      "options ndots:12345 attempts:x timeout:\n"
      "options ndots:99 timeout:99 attempts:0\n"
      "domain last.example\n";
  eddy_resolver_conf_init(&c);
  eddy_resolver_conf_parse(&c, text, strlen(text));
  EXPECT_EQ(c.nsearch, 1);
  EXPECT_STR(c.search[0], "last.example");
  EXPECT_EQ(c.ndots, 15);
  EXPECT_EQ(c.timeout_ns, 30 * EDDY_NSEC_PER_SEC);
  EXPECT_EQ(c.attempts, 1);
  text = "search a b c d e f g h\nsearch bad..name\n";
  eddy_resolver_conf_init(&c);
  eddy_resolver_conf_parse(&c, text, strlen(text));
  EXPECT_EQ(c.nsearch, 6); /* the first six; a line of no names is ignored */
  EXPECT_STR(c.search[5], "f");
}

Test(dns_client, resolv_conf_defaults_are_glibcs) {
  eddy_resolver_conf c;
  EXPECT_OK(eddy_resolver_conf_load(&c, "/nonexistent/resolv.conf"));
  EXPECT_EQ(c.nservers, 0);
  EXPECT_EQ(c.ndots, 1);
  EXPECT_EQ(c.timeout_ns, 5 * EDDY_NSEC_PER_SEC);
  EXPECT_EQ(c.attempts, 2);
  EXPECT_EQ(c.edns_udp_size, 0);
  eddy_resolver_conf_init(&c);
  eddy_resolver_conf_parse(&c, "", 0);
  EXPECT_EQ(c.nsearch, 0);
}

Test(dns_client, resolv_conf_with_nul_bytes_and_long_words_is_survived) {
  eddy_resolver_conf c;
  char text[3000];
  memset(text, 'a', sizeof text);
  memcpy(text, "search ", 7);
  text[100] = '\0';
  text[2000] = '\n';
  memcpy(text + 2001, "nameserver 192.0.2.1", 20);
  eddy_resolver_conf_init(&c);
  eddy_resolver_conf_parse(&c, text, 2021);
  EXPECT_EQ(c.nsearch, 0);
  EXPECT_EQ(c.nservers, 1);
}

Test(dns_client, environment_overrides_the_system_file) {
  eddy_resolver_conf c;
  setenv("LOCALDOMAIN", "env.example  other.example", 1);
  setenv("RES_OPTIONS", "ndots:4 rotate attempts:3", 1);
  EXPECT_OK(eddy_resolver_conf_load(&c, NULL));
  EXPECT_EQ(c.nsearch, 2);
  EXPECT_STR(c.search[0], "env.example");
  EXPECT_STR(c.search[1], "other.example");
  EXPECT_EQ(c.ndots, 4);
  EXPECT_EQ(c.attempts, 3);
  EXPECT_EQ(c.rotate, 1);
  /* A file named by the program is taken as it is. */
  EXPECT_OK(eddy_resolver_conf_load(&c, "/nonexistent/resolv.conf"));
  EXPECT_EQ(c.ndots, 1);
  EXPECT_EQ(c.rotate, 0);
}

Test(dns_client, resolv_conf_read_errors_are_returned) {
  char path[64];
  eddy_resolver_conf c;
  write_temp(path, "nameserver 192.0.2.1\n");
  eddy__fault_fail_nth(EDDY__SYS_OPEN, 1, EACCES);
  EXPECT_EQ(eddy_resolver_conf_load(&c, path), -EACCES);
  eddy__fault_fail_nth(EDDY__SYS_READ, 1, EIO);
  EXPECT_EQ(eddy_resolver_conf_load(&c, path), -EIO);
  EXPECT_EQ(c.nservers, 0);
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_resolver_conf_load(&c, path), -ENOMEM);
  eddy__fault_reset();
  EXPECT_OK(eddy_resolver_conf_load(&c, path));
  EXPECT_EQ(c.nservers, 1);
  unlink(path);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(dns_client, servers_with_ports_are_added_by_hand) {
  eddy_resolver_conf c;
  eddy_resolver_conf_init(&c);
  EXPECT_OK(eddy_resolver_conf_add_server(&c, "127.0.0.1:5353"));
  EXPECT_OK(eddy_resolver_conf_add_server(&c, "[::1]:5300"));
  EXPECT_OK(eddy_resolver_conf_add_server(&c, "192.0.2.1"));
  EXPECT_EQ(eddy_resolver_conf_add_server(&c, "192.0.2.2"), -ENOSPC);
  EXPECT_EQ(eddy_resolver_conf_add_server(&c, "dns.example"), -EINVAL);
  EXPECT_EQ(port_of(&c, 0), 5353);
  EXPECT_EQ(ntohs(((struct sockaddr_in6 *)&c.servers[1])->sin6_port), 5300);
  EXPECT_EQ(port_of(&c, 2), 53);
}

/* ---- The fake server -------------------------------------------------------------- */

typedef struct fake {
  eddy_udp *u;
  int port, silent;
  int queries;
  char asked[16][256]; /* the names asked, as text */
} fake;

/* The table: www.example.com A 192.0.2.1; host.corp.example A 192.0.2.5;
 * a.b A 192.0.2.6; nodata.example.com exists without A; the rest does not
 * exist. */
static int lookup_table(const uint8_t *qname, uint16_t qtype, int *exists) {
  static const char *names[] = {"www.example.com.", "host.corp.example.",
                                "a.b.", "nodata.example.com."};
  static const int last[] = {1, 5, 6, 0};
  for (int i = 0; i < 4; i++) {
    uint8_t wire[EDDY_DNS_NAME_MAX];
    cr_assert(eddy_dns_name_from_text(names[i], strlen(names[i]), NULL, wire) >
              0);
    if (eddy_dns_name_equal(wire, qname)) {
      *exists = 1;
      return qtype == EDDY_DNS_TYPE_A ? last[i] : 0;
    }
  }
  *exists = 0;
  return 0;
}

static void fake_recv(eddy_udp *u, const char *data, size_t len,
                      const struct sockaddr *from, socklen_t fromlen,
                      void *arg) {
  fake *f = arg;
  eddy_dns_query_t q;
  eddy_dns_writer_t w;
  uint8_t out[512], rdata[4] = {192, 0, 2, 0};
  int exists, a;
  cr_assert(eddy_dns_query_parse((const uint8_t *)data, len, &q) ==
            EDDY_DNS_VERDICT_ANSWER);
  if (f->queries < 16)
    eddy_dns_name_to_text(q.qname, f->asked[f->queries], 256);
  f->queries++;
  if (f->silent)
    return;
  a = lookup_table(q.qname, q.qtype, &exists);
  if (q.qname[0] == 6 && memcmp(q.qname + 1, "broken", 6) == 0) {
    EXPECT_OK(
        eddy_dns_writer_init(&w, out, sizeof out, &q, EDDY_DNS_RCODE_SERVFAIL));
    EXPECT_OK(eddy_udp_send(u, out, eddy_dns_writer_finish(&w), from, fromlen));
    return;
  }
  EXPECT_OK(eddy_dns_writer_init(&w, out, sizeof out, &q,
                                 exists ? EDDY_DNS_RCODE_NOERROR
                                        : EDDY_DNS_RCODE_NXDOMAIN));
  eddy_dns_writer_set_flags(&w, EDDY_DNS_FLAG_RA);
  if (a) {
    rdata[3] = (uint8_t)a;
    EXPECT_OK(eddy_dns_writer_add(&w, EDDY_DNS_ANSWER, q.qname, q.qtype,
                                  q.qclass, 60, rdata, 4));
  }
  EXPECT_OK(eddy_udp_send(u, out, eddy_dns_writer_finish(&w), from, fromlen));
}

static void fake_open(eddy_loop *loop, fake *f) {
  memset(f, 0, sizeof *f);
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, fake_recv, f, &f->u));
  f->port = eddy_udp_port(f->u);
}

static void fake_close(fake *f) {
  if (f->u)
    eddy_udp_close(f->u);
  f->u = NULL;
}

/* A resolver asking only f, with search domains (NULL-terminated). */
static eddy_resolver *resolver_for(eddy_loop *loop, const fake *f, int ndots,
                                   const char *const *search) {
  eddy_resolver_conf c;
  eddy_resolver *r = NULL;
  char server[32];
  eddy_resolver_conf_init(&c);
  snprintf(server, sizeof server, "127.0.0.1:%d", f->port);
  EXPECT_OK(eddy_resolver_conf_add_server(&c, server));
  c.ndots = ndots;
  c.timeout_ns = 100 * EDDY_NSEC_PER_MSEC;
  c.attempts = 1;
  for (; search && *search; search++)
    strcpy(c.search[c.nsearch++], *search);
  EXPECT_OK(eddy_resolver_new(loop, &c, &r));
  return r;
}

/* ---- The callback form -------------------------------------------------------------- */

typedef struct got {
  int calls, status, rcode, a, ancount;
  char qname[256];
} got;

static void on_answer(eddy_dns_lookup *q, int status, const eddy_dns_answer *a,
                      void *arg) {
  got *g = arg;
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  (void)q;
  g->calls++;
  g->status = status;
  if (status != 0) {
    cr_assert(a == NULL);
    return;
  }
  g->rcode = a->rcode;
  g->ancount = a->ancount;
  eddy_dns_name_to_text(a->qname, g->qname, sizeof g->qname);
  EXPECT_OK(eddy_dns_answer_records(a, &m));
  while (eddy_dns_msg_next(&m, &rr) == 1)
    if (rr.section == EDDY_DNS_ANSWER && rr.type == EDDY_DNS_TYPE_A)
      g->a = rr.rdata[3];
}

Test(dns_client, lookup_answers_through_the_callback) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  eddy_dns_lookup *q = NULL;
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(eddy_resolver_lookup(r, "WWW.example.com", EDDY_DNS_TYPE_A,
                                 on_answer, &g, &q));
  cr_assert(q != NULL);
  EXPECT_EQ(g.calls, 0);
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.status, 0);
  EXPECT_EQ(g.rcode, EDDY_DNS_RCODE_NOERROR);
  EXPECT_EQ(g.ancount, 1);
  EXPECT_EQ(g.a, 1);
  EXPECT_STR(g.qname, "WWW.example.com.");
  EXPECT_EQ(f.queries, 1);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, nxdomain_is_an_answer_not_an_error) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(eddy_resolver_lookup(r, "nowhere.example.", EDDY_DNS_TYPE_A,
                                 on_answer, &g, NULL));
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.status, 0);
  EXPECT_EQ(g.rcode, EDDY_DNS_RCODE_NXDOMAIN);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

static void run_lookup(eddy_loop *loop, eddy_resolver *r, const char *name,
                       got *g) {
  memset(g, 0, sizeof *g);
  EXPECT_OK(eddy_resolver_lookup(r, name, EDDY_DNS_TYPE_A, on_answer, g, NULL));
  cr_assert(test_run_until(loop, &g->calls));
  EXPECT_EQ(g->status, 0);
}

Test(dns_client, short_names_try_the_search_list_first) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"corp.example", "example.com", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  run_lookup(loop, r, "host", &g);
  EXPECT_EQ(g.a, 5);
  EXPECT_EQ(f.queries, 1);
  EXPECT_STR(f.asked[0], "host.corp.example.");
  f.queries = 0;
  run_lookup(loop, r, "www", &g); /* NXDOMAIN moves on */
  EXPECT_EQ(g.a, 1);
  EXPECT_STR(g.qname, "www.example.com.");
  EXPECT_EQ(f.queries, 2);
  EXPECT_STR(f.asked[0], "www.corp.example.");
  EXPECT_STR(f.asked[1], "www.example.com.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, names_with_ndots_dots_are_asked_as_they_are_first) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"corp.example", "example.com", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  run_lookup(loop, r, "a.b", &g);
  EXPECT_EQ(g.a, 6);
  EXPECT_EQ(f.queries, 1);
  EXPECT_STR(f.asked[0], "a.b.");
  f.queries = 0;
  run_lookup(loop, r, "no.such", &g); /* every candidate NXDOMAIN */
  EXPECT_EQ(g.rcode, EDDY_DNS_RCODE_NXDOMAIN);
  EXPECT_EQ(f.queries, 3);
  EXPECT_STR(f.asked[0], "no.such.");
  EXPECT_STR(f.asked[1], "no.such.corp.example.");
  EXPECT_STR(f.asked[2], "no.such.example.com.");
  EXPECT_STR(g.qname, "no.such.example.com.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, fewer_dots_than_ndots_asks_as_it_is_last) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"corp.example", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 2, search);
  run_lookup(loop, r, "a.b", &g);
  EXPECT_EQ(g.a, 6);
  EXPECT_EQ(f.queries, 2);
  EXPECT_STR(f.asked[0], "a.b.corp.example.");
  EXPECT_STR(f.asked[1], "a.b.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, absolute_names_are_never_searched) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"corp.example", "example.com", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 5, search);
  run_lookup(loop, r, "host.", &g);
  EXPECT_EQ(g.rcode, EDDY_DNS_RCODE_NXDOMAIN);
  EXPECT_EQ(f.queries, 1);
  EXPECT_STR(f.asked[0], "host.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, nodata_beats_nxdomain_when_every_candidate_fails) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"corp.example", "example.com", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  run_lookup(loop, r, "nodata", &g);
  EXPECT_EQ(f.queries, 3);
  EXPECT_EQ(g.rcode, EDDY_DNS_RCODE_NOERROR);
  EXPECT_EQ(g.ancount, 0);
  EXPECT_STR(g.qname, "nodata.example.com.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, servfail_moves_on_and_the_first_is_reported) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"example.com", "corp.example", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  run_lookup(loop, r, "broken", &g);
  EXPECT_EQ(f.queries, 3);
  EXPECT_EQ(g.rcode, EDDY_DNS_RCODE_SERVFAIL);
  EXPECT_STR(g.qname, "broken.example.com.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, escaped_dots_neither_count_nor_make_a_name_absolute) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {"corp.example", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  run_lookup(loop, r, "a\\.b", &g); /* one label "a.b": no dot */
  EXPECT_EQ(f.queries, 2);
  EXPECT_STR(f.asked[0], "a\\.b.corp.example.");
  EXPECT_STR(f.asked[1], "a\\.b.");
  f.queries = 0;
  run_lookup(loop, r, "host\\.", &g); /* ends with an escaped dot */
  EXPECT_EQ(f.queries, 2);
  EXPECT_STR(f.asked[0], "host\\..corp.example.");
  f.queries = 0;
  run_lookup(loop, r, "x\\\\.", &g); /* an escaped backslash, then the end */
  EXPECT_EQ(f.queries, 1);
  EXPECT_STR(f.asked[0], "x\\\\.");
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client,
     search_domains_that_make_a_name_too_long_or_twice_are_skipped) {
  eddy_loop *loop = test_loop();
  fake f;
  got g;
  static const char *const search[] = {".", "corp.example", "corp.example.",
                                       NULL};
  eddy_resolver *r;
  char longname[256];
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  run_lookup(loop, r, "www", &g); /* www., www.corp.example., then www. */
  EXPECT_EQ(f.queries, 2);
  EXPECT_STR(f.asked[0], "www.");
  EXPECT_STR(f.asked[1], "www.corp.example.");
  /* 4 labels of 60: 245 bytes in wire form, no room for corp.example */
  memset(longname, 'x', sizeof longname);
  for (int i = 60; i < 243; i += 61)
    longname[i] = '.';
  longname[243] = '\0';
  f.queries = 0;
  run_lookup(loop, r, longname, &g);
  EXPECT_EQ(f.queries, 1);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, rotate_starts_each_lookup_with_the_next_server) {
  eddy_loop *loop = test_loop();
  fake f1, f2;
  got g;
  eddy_resolver_conf c;
  eddy_resolver *r = NULL;
  char server[32];
  fake_open(loop, &f1);
  fake_open(loop, &f2);
  eddy_resolver_conf_init(&c);
  snprintf(server, sizeof server, "127.0.0.1:%d", f1.port);
  EXPECT_OK(eddy_resolver_conf_add_server(&c, server));
  snprintf(server, sizeof server, "127.0.0.1:%d", f2.port);
  EXPECT_OK(eddy_resolver_conf_add_server(&c, server));
  c.rotate = true;
  EXPECT_OK(eddy_resolver_new(loop, &c, &r));
  for (int i = 0; i < 4; i++)
    run_lookup(loop, r, "www.example.com.", &g);
  EXPECT_EQ(f1.queries, 2);
  EXPECT_EQ(f2.queries, 2);
  c.rotate = false; /* without it, the first server every time */
  eddy_resolver_close(r);
  EXPECT_OK(eddy_resolver_new(loop, &c, &r));
  for (int i = 0; i < 2; i++)
    run_lookup(loop, r, "www.example.com.", &g);
  EXPECT_EQ(f1.queries, 4);
  EXPECT_EQ(f2.queries, 2);
  eddy_resolver_close(r);
  fake_close(&f1);
  fake_close(&f2);
  test_finish(loop);
}

Test(dns_client, malformed_names_are_refused_at_once) {
  eddy_loop *loop = test_loop();
  eddy_resolver *r = NULL;
  got g = {0};
  char longlabel[80];
  memset(longlabel, 'x', 70);
  longlabel[70] = '\0';
  EXPECT_OK(eddy_resolver_new(loop, NULL, &r));
  EXPECT_EQ(eddy_resolver_lookup(r, "", 1, on_answer, &g, NULL), EDDY_EPARSE);
  EXPECT_EQ(eddy_resolver_lookup(r, "a..b", 1, on_answer, &g, NULL),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_resolver_lookup(r, longlabel, 1, on_answer, &g, NULL),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_resolver_lookup(r, "a..b.", 1, on_answer, &g, NULL),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_resolver_lookup(NULL, "x", 1, on_answer, &g, NULL), -EINVAL);
  EXPECT_EQ(eddy_resolver_lookup(r, "x", 1, NULL, &g, NULL), -EINVAL);
  eddy_resolver_close(r);
  eddy_resolver_close(r); /* twice is harmless */
  EXPECT_EQ(eddy_resolver_lookup(r, "x", 1, on_answer, &g, NULL), EDDY_ECLOSED);
  EXPECT_EQ(g.calls, 0);
  test_finish(loop);
}

Test(dns_client, resolver_from_a_file) {
  eddy_loop *loop = test_loop();
  eddy_resolver *r = NULL;
  char path[64];
  const eddy_resolver_conf *c;
  write_temp(path,
             "nameserver 127.0.0.1\nsearch corp.example\n"
             "options ndots:2\n");
  EXPECT_OK(eddy_resolver_new_system(loop, path, &r));
  c = eddy_resolver_get_conf(r);
  EXPECT_EQ(c->nservers, 1);
  EXPECT_EQ(c->ndots, 2);
  EXPECT_STR(c->search[0], "corp.example");
  eddy_resolver_close(r);
  eddy__fault_fail_nth(EDDY__SYS_OPEN, 1, EACCES);
  EXPECT_EQ(eddy_resolver_new_system(loop, path, &r), -EACCES);
  eddy__fault_reset();
  unlink(path);
  EXPECT_EQ(eddy_resolver_new(NULL, NULL, &r), -EINVAL);
  test_finish(loop);
}

Test(dns_client, answer_records_reject_what_is_not_a_message) {
  eddy_dns_answer a;
  eddy_dns_msg_t m;
  static const uint8_t cut[] = {0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 3};
  memset(&a, 0, sizeof a);
  EXPECT_EQ(eddy_dns_answer_records(NULL, &m), -EINVAL);
  a.msg = cut;
  a.len = 5;
  EXPECT_EQ(eddy_dns_answer_records(&a, &m), EDDY_EPARSE);
  a.len = sizeof cut; /* the question is cut off */
  EXPECT_EQ(eddy_dns_answer_records(&a, &m), EDDY_EPARSE);
  eddy_dns_answer_free(NULL);
}

Test(dns_client, bad_configurations_are_einval) {
  eddy_loop *loop = test_loop();
  eddy_resolver_conf c;
  eddy_resolver *r = NULL;
  eddy_resolver_conf_init(&c);
  c.attempts = 0;
  EXPECT_EQ(eddy_resolver_new(loop, &c, &r), -EINVAL);
  eddy_resolver_conf_init(&c);
  strcpy(c.search[0], "bad..domain");
  c.nsearch = 1;
  EXPECT_EQ(eddy_resolver_new(loop, &c, &r), -EINVAL);
  eddy_resolver_conf_init(&c);
  c.nservers = 1; /* family 0 */
  EXPECT_EQ(eddy_resolver_new(loop, &c, &r), -EINVAL);
  test_finish(loop);
}

Test(dns_client, silent_server_is_etimedout) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  eddy_resolver *r;
  fake_open(loop, &f);
  f.silent = 1;
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(eddy_resolver_lookup(r, "www.example.com", EDDY_DNS_TYPE_A,
                                 on_answer, &g, NULL));
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.status, -ETIMEDOUT);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, cancel_calls_back_with_ecanceled_from_the_loop) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  eddy_dns_lookup *q = NULL;
  eddy_resolver *r;
  fake_open(loop, &f);
  f.silent = 1;
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(eddy_resolver_lookup(r, "www", EDDY_DNS_TYPE_A, on_answer, &g, &q));
  eddy_dns_lookup_cancel(q);
  eddy_dns_lookup_cancel(q); /* twice is harmless */
  EXPECT_EQ(g.calls, 0);
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.status, -ECANCELED);
  test_run_for(loop, 150); /* the exchange's timer is gone too */
  EXPECT_EQ(g.calls, 1);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

static void close_resolver_from_callback(eddy_dns_lookup *q, int status,
                                         const eddy_dns_answer *a, void *arg) {
  eddy_resolver **r = arg;
  (void)q;
  (void)status;
  (void)a;
  eddy_resolver_close(*r);
  *r = NULL;
}

Test(dns_client, closing_the_resolver_cancels_its_lookups) {
  eddy_loop *loop = test_loop();
  fake f;
  got g1 = {0}, g2 = {0};
  eddy_resolver *r, *r2;
  fake_open(loop, &f);
  f.silent = 1;
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(
      eddy_resolver_lookup(r, "a", EDDY_DNS_TYPE_A, on_answer, &g1, NULL));
  EXPECT_OK(
      eddy_resolver_lookup(r, "b", EDDY_DNS_TYPE_A, on_answer, &g2, NULL));
  eddy_resolver_close(r);
  cr_assert(test_run_until(loop, &g2.calls));
  EXPECT_EQ(g1.status, -ECANCELED);
  EXPECT_EQ(g2.status, -ECANCELED);
  /* A resolver closed from a lookup's own callback. */
  f.silent = 0;
  r2 = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(eddy_resolver_lookup(r2, "www.example.com", EDDY_DNS_TYPE_A,
                                 close_resolver_from_callback, &r2, NULL));
  EXPECT_OK(eddy_resolver_lookup(r2, "www.example.com", EDDY_DNS_TYPE_AAAA,
                                 on_answer, &g1, NULL));
  g1.calls = 0;
  cr_assert(test_run_until(loop, &g1.calls));
  cr_assert(r2 == NULL);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, close_all_ends_lookups_with_ecanceled) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  eddy_resolver *r;
  fake_open(loop, &f);
  f.silent = 1;
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(
      eddy_resolver_lookup(r, "www", EDDY_DNS_TYPE_A, on_answer, &g, NULL));
  eddy_loop_close_all(loop);
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.status, -ECANCELED);
  EXPECT_EQ(g.calls, 1);
  test_finish(loop);
}

/* ---- The Deferred form ---------------------------------------------------------------- */

typedef struct dgot {
  int calls, code, a;
  char detail[200];
} dgot;

static void d_value(eddy_deferred *d, void *arg) {
  dgot *g = arg;
  eddy_dns_answer *a = eddy_deferred_value(d);
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  g->calls++;
  EXPECT_OK(eddy_dns_answer_records(a, &m));
  while (eddy_dns_msg_next(&m, &rr) == 1)
    if (rr.type == EDDY_DNS_TYPE_A)
      g->a = rr.rdata[3];
}

static void d_error(eddy_deferred *d, void *arg) {
  dgot *g = arg;
  g->calls++;
  g->code = eddy_deferred_error(d);
  snprintf(g->detail, sizeof g->detail, "%s", eddy_deferred_detail(d));
  eddy_deferred_set_value(d, NULL, NULL); /* handled */
}

Test(dns_client, deferred_fires_with_the_answer) {
  eddy_loop *loop = test_loop();
  fake f;
  dgot g = {0};
  eddy_deferred *d = NULL;
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(
      eddy_deferred_dns_lookup(r, "www.example.com", EDDY_DNS_TYPE_A, &d));
  EXPECT_OK(eddy_deferred_add_callbacks(d, d_value, d_error, &g));
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.code, 0);
  EXPECT_EQ(g.a, 1);
  eddy_deferred_free(d);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, deferred_fails_with_the_lookups_words) {
  eddy_loop *loop = test_loop();
  fake f;
  dgot g = {0}, g2 = {0};
  eddy_deferred *d = NULL, *d2 = NULL;
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, NULL);
  fake_close(&f); /* nobody there: ICMP refused */
  EXPECT_OK(
      eddy_deferred_dns_lookup(r, "www.example.com", EDDY_DNS_TYPE_MX, &d));
  EXPECT_OK(eddy_deferred_add_callbacks(d, d_value, d_error, &g));
  cr_assert(test_run_until(loop, &g.calls));
  EXPECT_EQ(g.code, -ECONNREFUSED);
  cr_assert(strstr(g.detail, "look up www.example.com MX: ") == g.detail, "%s",
            g.detail);
  /* Found before anything starts: the Deferred fails all the same. */
  EXPECT_OK(eddy_deferred_dns_lookup(r, "a..b", 65000, &d2));
  EXPECT_OK(eddy_deferred_add_callbacks(d2, d_value, d_error, &g2));
  EXPECT_EQ(g2.code, EDDY_EPARSE);
  cr_assert(strstr(g2.detail, "a..b TYPE65000") != NULL, "%s", g2.detail);
  eddy_deferred_free(d);
  eddy_deferred_free(d2);
  eddy_resolver_close(r);
  test_finish(loop);
}

Test(dns_client, cancelling_the_deferred_gives_up_the_lookup) {
  eddy_loop *loop = test_loop();
  fake f;
  dgot g = {0};
  eddy_deferred *d = NULL;
  eddy_resolver *r;
  fake_open(loop, &f);
  f.silent = 1;
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_OK(eddy_deferred_dns_lookup(r, "www", EDDY_DNS_TYPE_A, &d));
  EXPECT_OK(eddy_deferred_add_callbacks(d, d_value, d_error, &g));
  cr_assert(test_run_until(loop, &f.queries));
  eddy_deferred_cancel(d);
  EXPECT_EQ(g.code, -ECANCELED);
  eddy_deferred_free(d);
  test_run_for(loop, 30);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

/* ---- The coroutine form ---------------------------------------------------------------- */

typedef struct coro_case {
  eddy_resolver *r;
  const char *name;
  int status, a, done;
  int fail_kind, fail_nth; /* a fault to inject just before the lookup */
} coro_case;

static int lookup_in_coro(eddy_coro *co, void *arg) {
  coro_case *c = arg;
  eddy_dns_answer *a = NULL;
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  if (c->fail_nth)
    eddy__fault_fail_nth(c->fail_kind, (uint64_t)c->fail_nth, ENOMEM);
  c->status = eddy_coro_dns_lookup(co, c->r, c->name, EDDY_DNS_TYPE_A, &a);
  if (c->fail_nth)
    eddy__fault_reset();
  if (a) {
    EXPECT_OK(eddy_dns_answer_records(a, &m));
    while (eddy_dns_msg_next(&m, &rr) == 1)
      if (rr.type == EDDY_DNS_TYPE_A)
        c->a = rr.rdata[3];
    eddy_dns_answer_free(a);
  }
  c->done = 1;
  return c->status;
}

Test(dns_client, coroutine_waits_for_the_answer) {
  eddy_loop *loop = test_loop();
  fake f;
  coro_case c = {0};
  fake_open(loop, &f);
  c.r = resolver_for(loop, &f, 1, NULL);
  c.name = "www.example.com";
  EXPECT_OK(eddy_coro_spawn(loop, lookup_in_coro, &c, NULL, NULL));
  cr_assert(test_run_until(loop, &c.done));
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.a, 1);
  eddy_resolver_close(c.r);
  fake_close(&f);
  test_finish(loop);
}

static int coro_status(eddy_loop *loop, eddy_resolver *r, const char *name,
                       int fail_kind, int fail_nth) {
  coro_case c = {0};
  c.r = r;
  c.name = name;
  c.fail_kind = fail_kind;
  c.fail_nth = fail_nth;
  EXPECT_OK(eddy_coro_spawn(loop, lookup_in_coro, &c, NULL, NULL));
  cr_assert(test_run_until(loop, &c.done));
  return c.status;
}

Test(dns_client, coroutine_lookup_failures) {
  eddy_loop *loop;
  fake f;
  eddy_resolver *r;
  /* A build without fault injection skips the test here, on the test's
   * own stack, rather than inside the coroutine. */
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1000000, ENOMEM);
  eddy__fault_reset();
  loop = test_loop();
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, NULL);
  EXPECT_EQ(coro_status(loop, r, "a..b", 0, 0), EDDY_EPARSE);
  EXPECT_EQ(coro_status(loop, r, "www.example.com", EDDY__SYS_CALLOC, 1),
            -ENOMEM);
  /* the answer's copy: the only allocation once the answer is in */
  EXPECT_EQ(coro_status(loop, r, "www.example.com.", EDDY__SYS_MALLOC, 1),
            -ENOMEM);
  EXPECT_EQ(coro_status(loop, r, "www.example.com.", 0, 0), 0);
  EXPECT_EQ(eddy_coro_dns_lookup(NULL, r, "x", 1, NULL), -EINVAL);
  EXPECT_EQ(eddy_deferred_dns_lookup(NULL, "x", 1, NULL), -EINVAL);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, cancelled_coroutine_gives_up_the_lookup) {
  eddy_loop *loop = test_loop();
  fake f;
  coro_case c = {0};
  eddy_coro *co = NULL;
  fake_open(loop, &f);
  f.silent = 1;
  c.r = resolver_for(loop, &f, 1, NULL);
  c.name = "www.example.com";
  EXPECT_OK(eddy_coro_spawn(loop, lookup_in_coro, &c, NULL, &co));
  cr_assert(test_run_until(loop, &f.queries));
  eddy_coro_cancel(co);
  cr_assert(test_run_until(loop, &c.done));
  EXPECT_EQ(c.status, -ECANCELED);
  eddy_resolver_close(c.r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, lookup_outside_a_coroutine_is_eperm) {
  eddy_loop *loop = test_loop();
  eddy_resolver *r = NULL;
  eddy_coro *co = NULL;
  eddy_dns_answer *a = (eddy_dns_answer *)1;
  coro_case c = {0};
  EXPECT_OK(eddy_resolver_new(loop, NULL, &r));
  c.r = r;
  c.name = "x.";
  EXPECT_OK(eddy_coro_spawn(loop, lookup_in_coro, &c, NULL, &co));
  EXPECT_EQ(eddy_coro_dns_lookup(co, r, "x.", 1, &a), -EPERM);
  cr_assert(a == NULL);
  eddy_coro_cancel(co);
  cr_assert(test_run_until(loop, &c.done));
  eddy_resolver_close(r);
  test_finish(loop);
}

/* ---- Faults ------------------------------------------------------------------------------ */

Test(dns_client, no_memory_or_no_socket_fails_the_lookup_at_once) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  eddy_resolver *r = NULL;
  fake_open(loop, &f);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_resolver_new(loop, NULL, &r), -ENOMEM);
  r = resolver_for(loop, &f, 1, NULL);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_resolver_lookup(r, "www", 1, on_answer, &g, NULL), -ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 2, ENOMEM); /* the exchange */
  EXPECT_EQ(eddy_resolver_lookup(r, "www", 1, on_answer, &g, NULL), -ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_SOCKET, 1, EMFILE);
  EXPECT_EQ(eddy_resolver_lookup(r, "www", 1, on_answer, &g, NULL), -EMFILE);
  eddy__fault_reset();
  test_run_for(loop, 10);
  EXPECT_EQ(g.calls, 0);
  EXPECT_EQ(f.queries, 0);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

Test(dns_client, socket_failure_on_a_later_candidate_ends_the_lookup) {
  eddy_loop *loop = test_loop();
  fake f;
  got g = {0};
  static const char *const search[] = {"corp.example", "example.com", NULL};
  eddy_resolver *r;
  fake_open(loop, &f);
  r = resolver_for(loop, &f, 1, search);
  EXPECT_OK(eddy_resolver_lookup(r, "www", 1, on_answer, &g, NULL));
  eddy__fault_fail_after(EDDY__SYS_SOCKET, 1, EMFILE);
  cr_assert(test_run_until(loop, &g.calls));
  eddy__fault_reset();
  EXPECT_EQ(g.status, -EMFILE);
  EXPECT_EQ(f.queries, 1);
  eddy_resolver_close(r);
  fake_close(&f);
  test_finish(loop);
}

/* Every allocation of a Deferred lookup through the search list fails in
 * turn: the Deferred fires with the answer or fails with -ENOMEM (or
 * with the NXDOMAIN of the first candidate when the copy kept for later
 * could not be made), and nothing leaks. */
static void sweep(int kind) {
  static const char *const search[] = {"corp.example", "example.com", NULL};
  for (uint64_t n = 1;; n++) {
    eddy_loop *loop = test_loop();
    fake f;
    dgot g = {0};
    eddy_deferred *d = NULL;
    eddy_resolver *r;
    int rc, fired;
    fake_open(loop, &f);
    r = resolver_for(loop, &f, 1, search);
    eddy__fault_fail_nth(kind, n, ENOMEM);
    rc = eddy_deferred_dns_lookup(r, "www", EDDY_DNS_TYPE_A, &d);
    if (rc == 0) {
      int add = eddy_deferred_add_callbacks(d, d_value, d_error, &g);
      if (add == 0)
        cr_assert(test_run_until(loop, &g.calls));
    }
    fired = eddy__fault_calls(kind) >= n;
    eddy__fault_reset();
    if (rc != 0)
      EXPECT_EQ(rc, -ENOMEM);
    else if (g.calls)
      cr_assert(g.code == 0 || g.code == -ENOMEM, "n=%d code %d", (int)n,
                g.code);
    eddy_deferred_free(d);
    eddy_resolver_close(r);
    fake_close(&f);
    test_finish(loop);
    if (!fired) {
      EXPECT_EQ(g.code, 0);
      EXPECT_EQ(g.a, 1);
      break;
    }
    cr_assert(n < 200);
  }
}

Test(dns_client, fault_sweep_calloc) {
  sweep(EDDY__SYS_CALLOC);
}

Test(dns_client, fault_sweep_malloc) {
  sweep(EDDY__SYS_MALLOC);
}
