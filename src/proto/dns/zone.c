/* zone.c: the zone database (loading with ldns) and the authoritative
 * lookup. See zone.h.
 *
 * Layout: each zone keeps its records in one array sorted by owner then
 * type, so that a name's records, and each of its rrsets, are contiguous.
 * A node per name (with data, or an empty non-terminal: a name that exists
 * only because names below it do) points at its range; an open-addressing
 * hash of lower-cased wire names finds a node in one probe or so. Names and
 * rdata live in an arena of large blocks, freed with the database. */
#include "proto/dns/zone.h"

#include <ctype.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy/dns.h"
#include "proto/dns/dns.h"
#include "sys/alloc.h"

#define ARENA_BLOCK 65536
#define MAX_INCLUDE_DEPTH 16
#define NODE_CUT 1

typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  unsigned char data[];
} arena_block;

typedef struct node {
  const uint8_t *name;
  uint32_t hash;
  uint32_t len;
  uint32_t first, count; /* range in the zone's rrs; count 0: empty */
  uint32_t flags;
  uint32_t cut; /* index + 1 of the topmost cut at or above, 0 if none */
} node;

struct eddy__dns_zone {
  const uint8_t *apex;
  size_t apex_len;
  int apex_labels;
  eddy__dns_zone_rr *rrs;
  size_t nrr;
  node *nodes;
  size_t nnodes, nodecap;
  uint32_t *table; /* node index + 1, 0 empty */
  size_t tmask;
  const eddy__dns_zone_rr *soa;
  uint32_t neg_ttl;
};

struct eddy__dns_zone_db {
  eddy__dns_zone **zones;
  size_t n, cap;
  arena_block *arena;
  char err[512];
};

/* ---- Names ----------------------------------------------------------------- */

/* The length of the well-formed name at name within max bytes, or 0. */
static size_t name_len(const uint8_t *name, size_t max) {
  int n = eddy_dns_name_check(name, max < 255 ? max : 255);
  return n > 0 ? (size_t)n : 0;
}

/* The name as text for a message; returns out. */
static const char *name_text(const uint8_t *name, char *out, size_t cap) {
  if (eddy_dns_name_to_text(name, out, cap) < 0 && cap > 0)
    out[0] = '\0';
  return out;
}

/* Offsets of each label of a valid name; returns the label count. */
static int name_labels(const uint8_t *name, uint8_t offs[128]) {
  int n = 0;
  size_t i = 0;
  while (name[i]) {
    offs[n++] = (uint8_t)i;
    i += 1 + name[i];
  }
  return n;
}

/* 1 if a (lower case, labels la) is at or below b (lower case, lb). */
static int name_under(const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen) {
  uint8_t offs[128];
  int la = name_labels(a, offs), lb = 0;
  for (size_t i = 0; b[i]; i += 1 + b[i])
    lb++;
  if (la < lb)
    return 0;
  size_t at = la == lb ? 0 : offs[la - lb];
  return alen - at == blen && memcmp(a + at, b, blen) == 0;
}

static uint32_t name_hash(const uint8_t *name, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) {
    h ^= name[i];
    h *= 16777619u;
  }
  return h;
}

/* ---- Arena ------------------------------------------------------------------ */

static void *arena_alloc(eddy__dns_zone_db *db, size_t size) {
  arena_block *b = db->arena;
  size = (size + 7) & ~(size_t)7;
  if (b == NULL || b->cap - b->used < size) {
    size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
    b = eddy__malloc(sizeof(*b) + cap);
    if (b == NULL)
      return NULL;
    b->used = 0;
    b->cap = cap;
    b->next = db->arena;
    db->arena = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  return p;
}

static void *arena_dup(eddy__dns_zone_db *db, const void *src, size_t n) {
  void *p = arena_alloc(db, n ? n : 1);
  if (p != NULL && n)
    memcpy(p, src, n);
  return p;
}

/* ---- Nodes and the hash ------------------------------------------------------ */

static node *zone_find(const eddy__dns_zone *z, const uint8_t *name,
                       size_t len) {
  uint32_t h = name_hash(name, len);
  for (size_t i = h & z->tmask;; i = (i + 1) & z->tmask) {
    uint32_t v = z->table[i];
    if (v == 0)
      return NULL;
    node *n = &z->nodes[v - 1];
    if (n->hash == h && n->len == len && memcmp(n->name, name, len) == 0)
      return n;
  }
}

static void table_put(eddy__dns_zone *z, uint32_t idx) {
  size_t i = z->nodes[idx].hash & z->tmask;
  while (z->table[i])
    i = (i + 1) & z->tmask;
  z->table[i] = idx + 1;
}

static int table_resize(eddy__dns_zone *z, size_t want) {
  size_t size = 16;
  while (size < want * 2)
    size *= 2;
  uint32_t *t = eddy__calloc(size, sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  eddy__free(z->table);
  z->table = t;
  z->tmask = size - 1;
  for (size_t i = 0; i < z->nnodes; i++)
    table_put(z, (uint32_t)i);
  return 0;
}

static int node_add(eddy__dns_zone *z, const uint8_t *name, size_t len,
                    uint32_t first, uint32_t count) {
  if (eddy__grow((void **)&z->nodes, &z->nodecap, z->nnodes + 1, sizeof(node)) <
      0)
    return -ENOMEM;
  if ((z->nnodes + 1) * 2 > z->tmask + 1 &&
      table_resize(z, (z->nnodes + 1) * 2) < 0)
    return -ENOMEM;
  node *n = &z->nodes[z->nnodes];
  n->name = name;
  n->hash = name_hash(name, len);
  n->len = (uint32_t)len;
  n->first = first;
  n->count = count;
  n->flags = 0;
  n->cut = 0;
  table_put(z, (uint32_t)z->nnodes++);
  return 0;
}

static void zone_free(eddy__dns_zone *z) {
  if (z == NULL)
    return;
  eddy__free(z->rrs);
  eddy__free(z->nodes);
  eddy__free(z->table);
  eddy__free(z);
}

/* ---- Loading ------------------------------------------------------------------ */

typedef struct tmp_rr {
  const uint8_t *owner; /* lower case, in the arena */
  const uint8_t *rdata;
  const char *file;
  size_t seq;
  uint32_t ttl;
  int line;
  uint16_t owner_len, type, rclass, rdlen;
} tmp_rr;

typedef struct loader {
  eddy__dns_zone_db *db;
  tmp_rr *rrs;
  size_t n, cap;
  ldns_rdf *origin;
  ldns_rdf *prev;
  uint32_t ttl;
  int ttl_set;
  uint32_t last_ttl; /* the previous record's, for files without $TTL */
  int last_ttl_set;
  ldns_buffer *buf;
  char *entry;
  size_t entry_len, entry_cap;
} loader;

__attribute__((format(printf, 5, 6))) static int fail(eddy__dns_zone_db *db,
                                                      int err, const char *file,
                                                      int line, const char *fmt,
                                                      ...) {
  size_t o = 0;
  va_list ap;
  if (line > 0)
    o = (size_t)snprintf(db->err, sizeof(db->err), "%s:%d: ", file, line);
  else
    o = (size_t)snprintf(db->err, sizeof(db->err), "%s: ", file);
  if (o < sizeof(db->err)) {
    va_start(ap, fmt);
    vsnprintf(db->err + o, sizeof(db->err) - o, fmt, ap);
    va_end(ap);
  }
  return err;
}

static int entry_put(loader *ld, char c) {
  if (eddy__grow((void **)&ld->entry, &ld->entry_cap, ld->entry_len + 2, 1) < 0)
    return -ENOMEM;
  ld->entry[ld->entry_len++] = c;
  ld->entry[ld->entry_len] = '\0';
  return 0;
}

static int load_file(loader *ld, const char *path, int depth, const char *from,
                     int from_line);

static int add_rr(loader *ld, ldns_rr *rr, const char *file, int line) {
  eddy__dns_zone_db *db = ld->db;
  const ldns_rdf *owner = ldns_rr_owner(rr);
  size_t olen = ldns_rdf_size(owner);
  tmp_rr *t;
  uint8_t *o;

  ldns_buffer_clear(ld->buf);
  if (ldns_rr_rdata2buffer_wire(ld->buf, rr) != LDNS_STATUS_OK)
    return fail(db, -EINVAL, file, line, "cannot encode the record");
  if (ldns_buffer_position(ld->buf) > 65535)
    return fail(db, -EINVAL, file, line, "record data too long");
  if (olen == 0 || olen > 255 || name_len(ldns_rdf_data(owner), olen) != olen)
    return fail(db, -EINVAL, file, line, "bad owner name");
  if (eddy__grow((void **)&ld->rrs, &ld->cap, ld->n + 1, sizeof(tmp_rr)) < 0)
    return -ENOMEM;
  t = &ld->rrs[ld->n];
  o = arena_alloc(db, olen);
  if (o == NULL)
    return -ENOMEM;
  (void)eddy_dns_name_lower(o, ldns_rdf_data(owner));
  t->owner = o;
  t->owner_len = (uint16_t)olen;
  t->rdlen = (uint16_t)ldns_buffer_position(ld->buf);
  t->rdata = arena_dup(db, ldns_buffer_begin(ld->buf), t->rdlen);
  if (t->rdata == NULL)
    return -ENOMEM;
  t->type = (uint16_t)ldns_rr_get_type(rr);
  t->rclass = (uint16_t)ldns_rr_get_class(rr);
  t->ttl = ldns_rr_ttl(rr);
  if (t->ttl & 0x80000000u)
    t->ttl = 0;
  t->file = file;
  t->line = line;
  t->seq = ld->n++;
  return 0;
}

/* A name argument of a directive, relative to the current origin. */
static ldns_rdf *directive_name(loader *ld, const char *text) {
  ldns_rdf *d = ldns_dname_new_frm_str(text);
  if (d == NULL || ldns_dname_str_absolute(text) || ld->origin == NULL)
    return d;
  if (ldns_dname_cat(d, ld->origin) != LDNS_STATUS_OK) {
    ldns_rdf_deep_free(d);
    return NULL;
  }
  return d;
}

/* An $INCLUDE path: relative to the directory of the including file. */
static char *include_path(eddy__dns_zone_db *db, const char *file,
                          const char *arg) {
  const char *slash = strrchr(file, '/');
  size_t dir = slash && arg[0] != '/' ? (size_t)(slash - file) + 1 : 0;
  char *p = arena_alloc(db, dir + strlen(arg) + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, file, dir);
  strcpy(p + dir, arg);
  return p;
}

static int directive(loader *ld, char *s, const char *file, int line,
                     int depth) {
  eddy__dns_zone_db *db = ld->db;
  char *save = NULL;
  char *word = strtok_r(s, " \t", &save);
  char *arg = strtok_r(NULL, " \t", &save);
  char *arg2 = strtok_r(NULL, " \t", &save);

  if (arg == NULL)
    return fail(db, -EINVAL, file, line, "%s needs an argument", word);
  if (strcasecmp(word, "$TTL") == 0) {
    const char *end = NULL;
    uint32_t ttl = ldns_str2period(arg, &end);
    if (end == NULL || *end != '\0' || arg2 != NULL)
      return fail(db, -EINVAL, file, line, "bad $TTL '%s'", arg);
    ld->ttl = ttl;
    ld->ttl_set = 1;
    return 0;
  }
  if (strcasecmp(word, "$ORIGIN") == 0) {
    ldns_rdf *d = directive_name(ld, arg);
    if (d == NULL || arg2 != NULL)
      return fail(db, -EINVAL, file, line, "bad $ORIGIN '%s'", arg);
    ldns_rdf_deep_free(ld->origin);
    ld->origin = d;
    return 0;
  }
  if (strcasecmp(word, "$INCLUDE") == 0) {
    ldns_rdf *saved = ld->origin, *d = NULL;
    char *path;
    int rc;
    if (depth >= MAX_INCLUDE_DEPTH)
      return fail(db, -EINVAL, file, line, "$INCLUDE nested too deep");
    if (arg2 != NULL) {
      d = directive_name(ld, arg2);
      if (d == NULL)
        return fail(db, -EINVAL, file, line, "bad $INCLUDE origin '%s'", arg2);
    } else if (saved != NULL) {
      d = ldns_rdf_clone(saved);
      if (d == NULL)
        return -ENOMEM;
    }
    path = include_path(db, file, arg);
    if (path == NULL) {
      ldns_rdf_deep_free(d);
      return -ENOMEM;
    }
    ld->origin = d;
    rc = load_file(ld, path, depth + 1, file, line);
    /* RFC 1035 section 5.1: the origin reverts after an included file. */
    ldns_rdf_deep_free(ld->origin);
    ld->origin = saved;
    return rc;
  }
  return fail(db, -EINVAL, file, line, "unknown directive %s", word);
}

static int entry_done(loader *ld, const char *file, int line, int depth) {
  char *s = ld->entry;
  size_t n = ld->entry_len;
  ldns_rr *rr = NULL;
  ldns_status st;
  int rc;

  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  ld->entry_len = 0;
  if (n == 0 || strspn(s, " \t") == n)
    return 0;
  if (s[0] == '$')
    return directive(ld, s, file, line, depth);
  /* A record without a TTL takes $TTL, or without one the previous
   * record's (RFC 1035 section 5.1), or for the first one ldns's 3600.
   * ldns reads a default of 0 as "none": a TTL of 0 is passed with the
   * top bit set, which add_rr turns into 0 (RFC 2181 section 8). */
  if (ld->ttl_set || ld->last_ttl_set) {
    uint32_t def = ld->ttl_set ? ld->ttl : ld->last_ttl;
    st = ldns_rr_new_frm_str(&rr, s, def == 0 ? 0xffffffffu : def, ld->origin,
                             &ld->prev);
  } else {
    st = ldns_rr_new_frm_str(&rr, s, 0, ld->origin, &ld->prev);
  }
  if (st != LDNS_STATUS_OK)
    return fail(ld->db, -EINVAL, file, line, "%s in '%.100s'",
                ldns_get_errorstr_by_id(st), s + strspn(s, " \t"));
  if (!ld->ttl_set) {
    ld->last_ttl = ldns_rr_ttl(rr) & 0x80000000u ? 0 : ldns_rr_ttl(rr);
    ld->last_ttl_set = 1;
  }
  rc = add_rr(ld, rr, file, line);
  ldns_rr_free(rr);
  return rc;
}

/* Reads a master file, splitting it into entries: a line, or several joined
 * while parentheses are open; comments dropped outside quoted strings. Each
 * entry goes to ldns whole, with the line it began on. */
static int load_file(loader *ld, const char *path, int depth, const char *from,
                     int from_line) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t linecap = 0;
  int lineno = 0, start = 0, parens = 0, rc = 0;

  if (f == NULL) {
    int e = errno;
    if (from != NULL)
      return fail(ld->db, -e, from, from_line, "$INCLUDE %s: %s", path,
                  strerror(e));
    return fail(ld->db, -e, path, 0, "cannot open: %s", strerror(e));
  }
  ld->entry_len = 0;
  while (rc == 0 && getline(&line, &linecap, f) >= 0) {
    int quoted = 0;
    lineno++;
    if (parens == 0)
      start = lineno;
    for (char *p = line; *p && *p != '\n' && rc == 0; p++) {
      char c = *p;
      if (quoted) {
        if (c == '\\' && p[1] && p[1] != '\n') {
          rc = entry_put(ld, c);
          c = *++p;
        } else if (c == '"') {
          quoted = 0;
        }
        if (rc == 0)
          rc = entry_put(ld, c);
        continue;
      }
      if (c == ';')
        break;
      if (c == '\\' && p[1] && p[1] != '\n') {
        rc = entry_put(ld, c);
        c = *++p;
      } else if (c == '"') {
        quoted = 1;
      } else if (c == '(') {
        parens++;
        c = ' ';
      } else if (c == ')') {
        if (parens == 0)
          rc = fail(ld->db, -EINVAL, path, lineno, "unbalanced ')'");
        parens--;
        c = ' ';
      } else if (c == '\r') {
        c = ' ';
      }
      if (rc == 0)
        rc = entry_put(ld, c);
    }
    if (rc == 0 && quoted)
      rc = fail(ld->db, -EINVAL, path, lineno, "unterminated quoted string");
    if (rc == 0 && parens > 0)
      rc = entry_put(ld, ' ');
    else if (rc == 0)
      rc = entry_done(ld, path, start, depth);
  }
  if (rc == 0 && parens > 0)
    rc = fail(ld->db, -EINVAL, path, start, "unbalanced '(' at end of file");
  free(line);
  fclose(f);
  return rc;
}

static int tmp_cmp(const void *pa, const void *pb) {
  const tmp_rr *a = pa, *b = pb;
  size_t n = a->owner_len < b->owner_len ? a->owner_len : b->owner_len;
  int c = memcmp(a->owner, b->owner, n);
  if (c)
    return c;
  if (a->owner_len != b->owner_len)
    return a->owner_len < b->owner_len ? -1 : 1;
  if (a->type != b->type)
    return a->type < b->type ? -1 : 1;
  if (a->rdlen != b->rdlen)
    return a->rdlen < b->rdlen ? -1 : 1;
  c = memcmp(a->rdata, b->rdata, a->rdlen);
  if (c)
    return c;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int same_rr(const tmp_rr *a, const tmp_rr *b) {
  return a->owner_len == b->owner_len && a->type == b->type &&
         a->rdlen == b->rdlen &&
         memcmp(a->owner, b->owner, a->owner_len) == 0 &&
         memcmp(a->rdata, b->rdata, a->rdlen) == 0;
}

static int check_node(eddy__dns_zone_db *db, const tmp_rr *t, size_t first,
                      size_t count) {
  const tmp_rr *cname = NULL;
  int others = 0, cnames = 0;
  char text[1024];
  for (size_t i = first; i < first + count; i++) {
    if (t[i].type == EDDY__DNS_ZONE_T_CNAME) {
      cnames++;
      if (cname == NULL)
        cname = &t[i];
    } else if (t[i].type != 46 && t[i].type != 47) {
      others++; /* RRSIG and NSEC may stand beside a CNAME (RFC 4035) */
    }
  }
  if (cnames > 1)
    return fail(db, -EINVAL, cname->file, cname->line,
                "more than one CNAME at %s",
                name_text(cname->owner, text, sizeof(text)));
  if (cnames && others)
    return fail(db, -EINVAL, cname->file, cname->line,
                "CNAME beside other data at %s",
                name_text(cname->owner, text, sizeof(text)));
  return 0;
}

/* Makes a zone of the records read: checks, sorts, nodes, empty
 * non-terminals, cuts. */
static int build_zone(loader *ld, const char *path, const uint8_t *apex,
                      size_t apex_len) {
  eddy__dns_zone_db *db = ld->db;
  eddy__dns_zone *z;
  tmp_rr *t = ld->rrs;
  const tmp_rr *soa = NULL;
  char text[1024];
  size_t n0, nrr = 0;
  int rc;

  for (size_t i = 0; i < ld->n && apex == NULL; i++)
    if (t[i].type == EDDY__DNS_ZONE_T_SOA) {
      apex = t[i].owner;
      apex_len = t[i].owner_len;
    }
  if (apex == NULL)
    return fail(db, -EINVAL, path, 0, "no SOA record");
  for (size_t i = 0; i < ld->n; i++) {
    if (!name_under(t[i].owner, t[i].owner_len, apex, apex_len))
      return fail(db, -EINVAL, t[i].file, t[i].line, "%s is outside the zone",
                  name_text(t[i].owner, text, sizeof(text)));
    if (t[i].type != EDDY__DNS_ZONE_T_SOA)
      continue;
    if (t[i].owner_len != apex_len || memcmp(t[i].owner, apex, apex_len))
      return fail(db, -EINVAL, t[i].file, t[i].line,
                  "SOA record at %s, not at the zone's apex",
                  name_text(t[i].owner, text, sizeof(text)));
    if (soa != NULL)
      return fail(db, -EINVAL, t[i].file, t[i].line, "a second SOA record");
    soa = &t[i];
  }
  if (soa == NULL)
    return fail(db, -EINVAL, path, 0, "no SOA record at the apex");
  for (size_t i = 0; i < db->n; i++)
    if (db->zones[i]->apex_len == apex_len &&
        memcmp(db->zones[i]->apex, apex, apex_len) == 0)
      return fail(db, -EINVAL, path, 0, "zone %s loaded twice",
                  name_text(apex, text, sizeof(text)));
  if (soa->rdlen < 22)
    return fail(db, -EINVAL, soa->file, soa->line, "SOA record too short");

  qsort(t, ld->n, sizeof(*t), tmp_cmp);
  z = eddy__calloc(1, sizeof(*z));
  if (z == NULL)
    return -ENOMEM;
  z->rrs = eddy__calloc(ld->n ? ld->n : 1, sizeof(*z->rrs));
  if (z->rrs == NULL) {
    zone_free(z);
    return -ENOMEM;
  }
  /* Records, deduplicated, and one node per owner. */
  for (size_t i = 0; i < ld->n;) {
    size_t j = i;
    uint32_t first = (uint32_t)nrr;
    while (j < ld->n && t[j].owner_len == t[i].owner_len &&
           memcmp(t[j].owner, t[i].owner, t[i].owner_len) == 0)
      j++;
    rc = check_node(db, t, i, j - i);
    if (rc < 0) {
      zone_free(z);
      return rc;
    }
    for (size_t k = i; k < j; k++) {
      eddy__dns_zone_rr *r;
      if (k > i && same_rr(&t[k], &t[k - 1]))
        continue;
      r = &z->rrs[nrr++];
      r->owner = t[i].owner;
      r->rdata = t[k].rdata;
      r->ttl = t[k].ttl;
      r->type = t[k].type;
      r->rclass = t[k].rclass;
      r->rdlen = t[k].rdlen;
      if (t[k].type == EDDY__DNS_ZONE_T_SOA)
        z->soa = r;
    }
    rc = node_add(z, t[i].owner, t[i].owner_len, first,
                  (uint32_t)(nrr - first));
    if (rc < 0) {
      zone_free(z);
      return rc;
    }
    i = j;
  }
  z->nrr = nrr;
  z->apex = z->soa->owner;
  z->apex_len = apex_len;
  for (size_t i = 0; apex[i]; i += 1 + apex[i])
    z->apex_labels++;
  /* Empty non-terminals: every name between a node and the apex exists. A
   * suffix of a stored name is itself a stored name. */
  n0 = z->nnodes;
  for (size_t i = 0; i < n0; i++) {
    const uint8_t *name = z->nodes[i].name;
    size_t len = name_len(name, 255);
    while (len > apex_len) {
      len -= 1 + (size_t)name[0];
      name += 1 + name[0];
      if (zone_find(z, name, len) != NULL)
        break;
      rc = node_add(z, name, len, 0, 0);
      if (rc < 0) {
        zone_free(z);
        return rc;
      }
    }
  }
  /* Cuts: NS anywhere but the apex. */
  for (size_t i = 0; i < z->nnodes; i++) {
    node *nd = &z->nodes[i];
    if (nd->name == z->apex)
      continue;
    for (uint32_t k = nd->first; k < nd->first + nd->count; k++)
      if (z->rrs[k].type == EDDY__DNS_ZONE_T_NS)
        nd->flags |= NODE_CUT;
  }
  /* Each node learns the topmost cut above it (or at it), so that a lookup
   * that lands on it directly knows it is occluded. */
  for (size_t i = 0; i < z->nnodes; i++) {
    node *nd = &z->nodes[i];
    const uint8_t *name = nd->name;
    size_t len = nd->len;
    while (len > apex_len) {
      const node *up = zone_find(z, name, len);
      if (up->flags & NODE_CUT)
        nd->cut = (uint32_t)(up - z->nodes) + 1;
      len -= 1 + (size_t)name[0];
      name += 1 + name[0];
    }
  }
  {
    const uint8_t *m = z->soa->rdata + z->soa->rdlen - 4;
    uint32_t min = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 |
                   (uint32_t)m[2] << 8 | m[3];
    z->neg_ttl = min < z->soa->ttl ? min : z->soa->ttl;
  }
  if (eddy__grow((void **)&db->zones, &db->cap, db->n + 1, sizeof(*db->zones)) <
      0) {
    zone_free(z);
    return -ENOMEM;
  }
  db->zones[db->n++] = z;
  return 0;
}

int eddy__dns_zone_db_new(eddy__dns_zone_db **out) {
  eddy__dns_zone_db *db = eddy__calloc(1, sizeof(*db));
  if (db == NULL)
    return -ENOMEM;
  *out = db;
  return 0;
}

int eddy__dns_zone_db_add(eddy__dns_zone_db *db, const char *path,
                          const char *origin) {
  loader ld = {.db = db};
  uint8_t apex[256];
  size_t apex_len = 0;
  int rc;

  db->err[0] = '\0';
  if (origin != NULL) {
    ld.origin = ldns_dname_new_frm_str(origin);
    if (ld.origin == NULL || ldns_rdf_size(ld.origin) > 255)
      rc = fail(db, -EINVAL, path, 0, "bad origin '%s'", origin);
    else {
      apex_len = ldns_rdf_size(ld.origin);
      (void)eddy_dns_name_lower(apex, ldns_rdf_data(ld.origin));
      rc = 0;
    }
  } else {
    ld.origin = ldns_dname_new_frm_str(".");
    rc = ld.origin ? 0 : -ENOMEM;
  }
  if (rc == 0) {
    ld.buf = ldns_buffer_new(4096);
    rc = ld.buf ? 0 : -ENOMEM;
  }
  if (rc == 0)
    rc = load_file(&ld, path, 0, NULL, 0);
  if (rc == 0)
    rc = build_zone(&ld, path, origin ? apex : NULL, apex_len);
  if (rc == -ENOMEM && db->err[0] == '\0')
    snprintf(db->err, sizeof(db->err), "%s: out of memory", path);
  ldns_rdf_deep_free(ld.origin);
  ldns_rdf_deep_free(ld.prev);
  if (ld.buf)
    ldns_buffer_free(ld.buf);
  eddy__free(ld.rrs);
  eddy__free(ld.entry);
  return rc;
}

const char *eddy__dns_zone_db_error(const eddy__dns_zone_db *db) {
  return db->err;
}

void eddy__dns_zone_db_free(eddy__dns_zone_db *db) {
  if (db == NULL)
    return;
  for (size_t i = 0; i < db->n; i++)
    zone_free(db->zones[i]);
  eddy__free(db->zones);
  while (db->arena) {
    arena_block *b = db->arena;
    db->arena = b->next;
    eddy__free(b);
  }
  eddy__free(db);
}

size_t eddy__dns_zone_db_count(const eddy__dns_zone_db *db) {
  return db->n;
}

const eddy__dns_zone *eddy__dns_zone_db_zone(const eddy__dns_zone_db *db,
                                             size_t n) {
  return n < db->n ? db->zones[n] : NULL;
}

const uint8_t *eddy__dns_zone_apex(const eddy__dns_zone *zone) {
  return zone->apex;
}

size_t eddy__dns_zone_records(const eddy__dns_zone *zone) {
  return zone->nrr;
}

/* ---- Lookup ------------------------------------------------------------------- */

static void put(eddy__dns_zone_result *res, int sec,
                const eddy__dns_zone_rr *rr, const uint8_t *owner,
                uint32_t ttl) {
  eddy__dns_zone_entry *e;
  size_t *n, cap;
  if (sec == 0) {
    e = res->answer;
    n = &res->an;
    cap = EDDY__DNS_ZONE_MAX_AN;
  } else if (sec == 1) {
    e = res->authority;
    n = &res->ns;
    cap = EDDY__DNS_ZONE_MAX_NS;
  } else {
    e = res->additional;
    n = &res->ar;
    cap = EDDY__DNS_ZONE_MAX_AR;
  }
  if (*n >= cap) {
    res->truncated = 1;
    return;
  }
  e[*n].rr = rr;
  e[*n].owner = owner;
  e[*n].ttl = ttl;
  (*n)++;
}

/* The rrset of type at a node: first record and count. */
static const eddy__dns_zone_rr *rrset(const eddy__dns_zone *z, const node *nd,
                                      uint16_t type, size_t *count) {
  const eddy__dns_zone_rr *r = z->rrs + nd->first, *end = r + nd->count;
  while (r < end && r->type != type)
    r++;
  *count = 0;
  if (r == end)
    return NULL;
  while (r + *count < end && r[*count].type == type)
    (*count)++;
  return r;
}

static void put_rrset(eddy__dns_zone_result *res, int sec,
                      const eddy__dns_zone_rr *r, size_t n,
                      const uint8_t *owner) {
  /* An additional rrset goes in whole or not at all (RFC 2181 section
   * 9); the others are cut, with the result flagged truncated. */
  if (sec == 2 && res->ar + n > EDDY__DNS_ZONE_MAX_AR) {
    res->truncated = 1;
    return;
  }
  for (size_t i = 0; i < n; i++)
    put(res, sec, &r[i], owner ? owner : r[i].owner, r[i].ttl);
}

/* A and AAAA of a target name, if the zone holds it. */
static void put_addresses(const eddy__dns_zone *z, eddy__dns_zone_result *res,
                          const uint8_t *target, size_t max) {
  uint8_t name[256];
  size_t len = name_len(target, max);
  const eddy__dns_zone_rr *r;
  size_t n;
  node *nd;
  if (len == 0)
    return;
  (void)eddy_dns_name_lower(name, target);
  if (!name_under(name, len, z->apex, z->apex_len))
    return;
  nd = zone_find(z, name, len);
  if (nd == NULL)
    return;
  if ((r = rrset(z, nd, EDDY__DNS_ZONE_T_A, &n)) != NULL)
    put_rrset(res, 2, r, n, NULL);
  if ((r = rrset(z, nd, EDDY__DNS_ZONE_T_AAAA, &n)) != NULL)
    put_rrset(res, 2, r, n, NULL);
}

static void put_targets(const eddy__dns_zone *z, eddy__dns_zone_result *res,
                        const eddy__dns_zone_rr *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t at = r[i].type == EDDY__DNS_ZONE_T_MX    ? 2
                : r[i].type == EDDY__DNS_ZONE_T_SRV ? 6
                                                    : 0;
    if (r[i].rdlen > at)
      put_addresses(z, res, r[i].rdata + at, r[i].rdlen - at);
  }
}

static void put_negative(const eddy__dns_zone *z, eddy__dns_zone_result *res) {
  put(res, 1, z->soa, z->soa->owner, z->neg_ttl);
}

static const eddy__dns_zone *find_zone(const eddy__dns_zone_db *db,
                                       const uint8_t *name, size_t len,
                                       const uint8_t *offs, int labels) {
  const eddy__dns_zone *best = NULL;
  for (size_t i = 0; i < db->n; i++) {
    const eddy__dns_zone *z = db->zones[i];
    size_t at;
    if (z->apex_labels > labels ||
        (best != NULL && z->apex_labels <= best->apex_labels))
      continue;
    at = z->apex_labels == labels ? 0 : offs[labels - z->apex_labels];
    if (len - at == z->apex_len && memcmp(name + at, z->apex, z->apex_len) == 0)
      best = z;
  }
  return best;
}

/* Answers from one node (exact or wildcard). Returns the CNAME target to
 * follow, or NULL when the answer is complete. */
static const uint8_t *answer_node(const eddy__dns_zone *z, const node *nd,
                                  const uint8_t *owner, uint16_t qtype,
                                  eddy__dns_zone_result *res) {
  const eddy__dns_zone_rr *r;
  size_t n;

  res->rcode = EDDY__DNS_ZONE_NOERROR;
  if (qtype != EDDY__DNS_ZONE_T_CNAME &&
      (r = rrset(z, nd, EDDY__DNS_ZONE_T_CNAME, &n)) != NULL) {
    put(res, 0, r, owner, r->ttl);
    return r->rdata;
  }
  if (qtype == EDDY__DNS_ZONE_T_ANY && nd->count > 0)
    qtype = z->rrs[nd->first].type; /* RFC 8482: one rrset */
  r = rrset(z, nd, qtype, &n);
  if (r == NULL) {
    put_negative(z, res);
    return NULL;
  }
  put_rrset(res, 0, r, n, owner);
  if (qtype == EDDY__DNS_ZONE_T_NS || qtype == EDDY__DNS_ZONE_T_MX ||
      qtype == EDDY__DNS_ZONE_T_SRV)
    put_targets(z, res, r, n);
  return NULL;
}

static void referral(const eddy__dns_zone *z, const node *cut,
                     eddy__dns_zone_result *res) {
  const eddy__dns_zone_rr *r;
  size_t n;
  r = rrset(z, cut, EDDY__DNS_ZONE_T_NS, &n);
  res->rcode = EDDY__DNS_ZONE_NOERROR;
  res->referral = 1;
  if (res->an == 0)
    res->aa = 0;
  put_rrset(res, 1, r, n, NULL);
  put_targets(z, res, r, n);
}

/* One name in one zone: referral, answer, wildcard or NXDOMAIN. The name
 * itself is tried first (most questions name an existing name); otherwise
 * labels come off until a name exists: the closest encloser. */
static const uint8_t *lookup_in(const eddy__dns_zone *z, const uint8_t *name,
                                size_t len, const uint8_t *offs, int labels,
                                const uint8_t *owner, uint16_t qtype,
                                eddy__dns_zone_result *res) {
  const node *ce = NULL;
  uint8_t wild[256];
  size_t celen;
  int depth;

  for (depth = labels; depth >= z->apex_labels && ce == NULL; depth--) {
    size_t at = depth == labels ? 0 : offs[labels - depth];
    ce = zone_find(z, name + at, len - at);
  }
  if (ce == NULL) /* cannot happen: the apex exists */
    return NULL;
  if (ce->cut) {
    referral(z, &z->nodes[ce->cut - 1], res);
    return NULL;
  }
  if (ce->len == len)
    return answer_node(z, ce, owner, qtype, res);
  /* RFC 4592 section 3.3.1: only the closest encloser's wildcard applies. */
  celen = ce->len;
  if (celen + 2 <= 255) {
    const node *w;
    wild[0] = 1;
    wild[1] = '*';
    memcpy(wild + 2, ce->name, celen);
    w = zone_find(z, wild, celen + 2);
    if (w != NULL)
      return answer_node(z, w, owner, qtype, res);
  }
  res->rcode = EDDY__DNS_ZONE_NXDOMAIN;
  put_negative(z, res);
  return NULL;
}

/* Whether the CNAME target next is the owner of a CNAME already in the
 * answer: the chain loops, and following it would only repeat records
 * (RFC 2181 section 5 asks for no duplicates). */
static int chain_loops(const eddy__dns_zone_result *res, const uint8_t *next) {
  for (size_t i = 0; i < res->an; i++)
    if (res->answer[i].rr->type == EDDY__DNS_ZONE_T_CNAME &&
        eddy_dns_name_equal(res->answer[i].owner, next))
      return 1;
  return 0;
}

int eddy__dns_zone_lookup(const eddy__dns_zone_db *db, const uint8_t *qname,
                          uint16_t qtype, eddy__dns_zone_result *res) {
  uint8_t name[256], offs[128];
  const uint8_t *owner = qname;
  size_t len = name_len(qname, 255);

  res->rcode = EDDY__DNS_ZONE_REFUSED;
  res->aa = res->referral = res->truncated = 0;
  res->zone = NULL;
  res->an = res->ns = res->ar = 0;
  if (len == 0)
    return -EINVAL;
  for (int link = 0; link <= EDDY__DNS_ZONE_MAX_CHAIN; link++) {
    const eddy__dns_zone *z;
    int labels;
    (void)eddy_dns_name_lower(name, owner);
    labels = name_labels(name, offs);
    z = find_zone(db, name, len, offs, labels);
    if (z == NULL) {
      if (link > 0) /* the chain leaves our zones: the CNAMEs are the answer */
        res->rcode = EDDY__DNS_ZONE_NOERROR;
      return 0;
    }
    if (link == 0) {
      res->zone = z;
      res->aa = 1;
    }
    owner = lookup_in(z, name, len, offs, labels, owner, qtype, res);
    if (owner == NULL)
      return 0;
    len = name_len(owner, 255);
    if (len == 0 || chain_loops(res, owner))
      return 0;
  }
  return 0;
}
