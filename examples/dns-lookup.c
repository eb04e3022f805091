/* dns-lookup: looks up one name with eddy's DNS client and prints the
 * answer the way dig prints its sections.
 *
 *   dns-lookup [--server ADDR[:PORT]]... NAME [TYPE]
 *
 * Without --server it asks the servers of /etc/resolv.conf, with its
 * search list. TYPE is a name (A, AAAA, MX, TXT, ...; A by default),
 * TYPEnnn or a number. Exits 0 when an answer came (whatever its rcode),
 * 1 when none did, 2 on a usage error.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"

static const char *const rcodes[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                     "NXDOMAIN", "NOTIMP",  "REFUSED"};

/* A type's mnemonic, TYPEnnn, or a plain number. */
static int parse_type(const char *s, uint16_t *out) {
  char *end;
  unsigned long v;
  if (eddy_dns_type_from_text(s, out) == 0)
    return 0;
  v = strtoul(s, &end, 10);
  if (*s < '0' || *s > '9' || *end != '\0' || v > 65535)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

static void print_type(uint16_t t) {
  char text[EDDY_DNS_TYPE_TEXT_MAX];
  printf("%s", eddy_dns_type_to_text(t, text, sizeof text));
}

static void print_name(const uint8_t *name) {
  char text[EDDY_DNS_NAME_TEXT_MAX];
  eddy_dns_name_to_text(name, text, sizeof text);
  printf("%s", text);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

/* A character-string: its length byte, then the bytes, quoted. */
static size_t print_string(const uint8_t *p, size_t left) {
  size_t n = p[0];
  if (n + 1 > left)
    return left;
  putchar('"');
  for (size_t i = 1; i <= n; i++) {
    if (p[i] == '"' || p[i] == '\\')
      printf("\\%c", p[i]);
    else if (p[i] < 32 || p[i] > 126)
      printf("\\%03u", p[i]);
    else
      putchar(p[i]);
  }
  putchar('"');
  return n + 1;
}

/* RFC 3597's generic form. */
static void print_unknown(const eddy_dns_rr_t *rr) {
  printf("\\# %zu", rr->rdlen);
  if (rr->rdlen)
    putchar(' ');
  for (size_t i = 0; i < rr->rdlen; i++)
    printf("%02x", rr->rdata[i]);
}

static void print_rdata(const eddy_dns_rr_t *rr) {
  const uint8_t *d = rr->rdata;
  char ip[INET6_ADDRSTRLEN];
  size_t off, n;
  switch (rr->type) {
  case EDDY_DNS_TYPE_A:
    printf("%s", inet_ntop(AF_INET, d, ip, sizeof ip));
    return;
  case EDDY_DNS_TYPE_AAAA:
    printf("%s", inet_ntop(AF_INET6, d, ip, sizeof ip));
    return;
  case EDDY_DNS_TYPE_NS:
  case EDDY_DNS_TYPE_CNAME:
  case EDDY_DNS_TYPE_PTR:
    print_name(d);
    return;
  case EDDY_DNS_TYPE_MX:
    printf("%u ", be16(d));
    print_name(d + 2);
    return;
  case EDDY_DNS_TYPE_SRV:
    printf("%u %u %u ", be16(d), be16(d + 2), be16(d + 4));
    print_name(d + 6);
    return;
  case EDDY_DNS_TYPE_SOA:
    print_name(d);
    putchar(' ');
    off = eddy_dns_name_len(d);
    print_name(d + off);
    off += eddy_dns_name_len(d + off);
    printf(" %u %u %u %u %u", be32(d + off), be32(d + off + 4),
           be32(d + off + 8), be32(d + off + 12), be32(d + off + 16));
    return;
  case EDDY_DNS_TYPE_TXT:
    for (off = 0; off < rr->rdlen; off += n) {
      if (off)
        putchar(' ');
      n = print_string(d + off, rr->rdlen - off);
    }
    return;
  case EDDY_DNS_TYPE_CAA:
    if (rr->rdlen >= 2 && (size_t)d[1] + 2 <= rr->rdlen) {
      printf("%u %.*s \"", d[0], d[1], (const char *)d + 2);
      for (off = 2 + (size_t)d[1]; off < rr->rdlen; off++)
        putchar(d[off] == '"' ? '\'' : d[off]);
      putchar('"');
      return;
    }
    break;
  default:
    break;
  }
  print_unknown(rr);
}

static void print_rr(const eddy_dns_rr_t *rr) {
  print_name(rr->name);
  printf("\t%u\t%s\t", rr->ttl,
         rr->rclass == EDDY_DNS_CLASS_IN ? "IN" : "CLASS?");
  print_type(rr->type);
  putchar('\t');
  print_rdata(rr);
  putchar('\n');
}

static int exit_code = 1;

static void on_answer(eddy_dns_lookup *q, int status, const eddy_dns_answer *a,
                      void *arg) {
  static const char *const sections[] = {"QUESTION", "ANSWER", "AUTHORITY",
                                         "ADDITIONAL"};
  eddy_dns_msg_t m;
  eddy_dns_rr_t rr;
  int section = -1, r;
  (void)q;
  (void)arg;
  if (status != 0) {
    fprintf(stderr, "dns-lookup: %s\n", eddy_strerror(status));
    return;
  }
  exit_code = 0;
  printf(";; ->>HEADER<<- status: ");
  if (a->rcode < 6)
    printf("%s", rcodes[a->rcode]);
  else
    printf("RCODE%d", a->rcode);
  printf(", name: ");
  print_name(a->qname);
  printf("\n;; flags:%s%s%s%s%s\n", a->flags & EDDY_DNS_FLAG_QR ? " qr" : "",
         a->flags & EDDY_DNS_FLAG_AA ? " aa" : "",
         a->flags & EDDY_DNS_FLAG_TC ? " tc" : "",
         a->flags & EDDY_DNS_FLAG_RD ? " rd" : "",
         a->flags & EDDY_DNS_FLAG_RA ? " ra" : "");
  if (eddy_dns_answer_records(a, &m) != 0)
    return;
  while ((r = eddy_dns_msg_next(&m, &rr)) == 1) {
    if (rr.type == EDDY_DNS_TYPE_OPT)
      continue;
    if ((int)rr.section != section) {
      section = (int)rr.section;
      printf("\n;; %s SECTION:\n", sections[section]);
    }
    print_rr(&rr);
  }
  if (r < 0)
    printf(";; malformed record: %s\n", eddy_strerror(r));
}

static int usage(void) {
  fprintf(stderr, "usage: dns-lookup [--server ADDR[:PORT]]... NAME [TYPE]\n");
  return 2;
}

int main(int argc, char **argv) {
  eddy_resolver_conf conf;
  eddy_resolver *r = NULL;
  eddy_loop *loop = NULL;
  const char *name = NULL;
  uint16_t type = EDDY_DNS_TYPE_A;
  int servers = 0, err, i;
  eddy_resolver_conf_init(&conf);
  for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--server") != 0 || i + 1 == argc)
      return usage();
    if (eddy_resolver_conf_add_server(&conf, argv[++i]) != 0) {
      fprintf(stderr, "dns-lookup: bad server '%s'\n", argv[i]);
      return 2;
    }
    servers++;
  }
  if (i == argc || argc - i > 2)
    return usage();
  name = argv[i];
  if (i + 1 < argc && parse_type(argv[i + 1], &type) != 0) {
    fprintf(stderr, "dns-lookup: unknown type '%s'\n", argv[i + 1]);
    return 2;
  }
  if (!servers && (err = eddy_resolver_conf_load(&conf, NULL)) != 0) {
    fprintf(stderr, "dns-lookup: /etc/resolv.conf: %s\n", eddy_strerror(err));
    return 1;
  }
  if ((err = eddy_loop_new(NULL, &loop)) != 0 ||
      (err = eddy_resolver_new(loop, &conf, &r)) != 0 ||
      (err = eddy_resolver_lookup(r, name, type, on_answer, NULL, NULL)) != 0) {
    fprintf(stderr, "dns-lookup: %s: %s\n", name, eddy_strerror(err));
    return 1;
  }
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  eddy_resolver_close(r);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(loop);
  return exit_code;
}
