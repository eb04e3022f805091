/* endpoint.c: endpoint strings in Twisted's syntax ("tcp:8080").
 *
 * A string is items separated by ':'. The first item names the kind; each
 * later one is either key=value or a bare (positional) value. Only the
 * first '=' of an item splits it, so a value may hold more '=' (Twisted's
 * rule). "\:" is a colon inside an item and "\\" a backslash. Any other
 * escape is refused rather than guessed at: Twisted passes "\x" through as
 * "x", which turns a typo into a different address without a word.
 *
 * The items are read twice: first the keywords, then the positional items,
 * which fill the positional slots that no keyword filled. That is Twisted's
 * rule for "tcp:host=example.com:80" (the bare item is the port), and
 * reading twice spares us a list of items: the parser needs no memory
 * beyond the endpoint it fills.
 *
 * Nothing here allocates or keeps state between calls. The endpoint is
 * built in a local copy and written to the caller's only on success, so a
 * failed parse leaves *ep as it was.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "eddy/net.h"

#define DEFAULT_BACKLOG 511
#define DEFAULT_TIMEOUT (30 * EDDY_NSEC_PER_SEC)
/* A timeout longer than this is a typo; the bound also keeps the
 * nanosecond arithmetic far from int64_t overflow. */
#define TIMEOUT_MAX_SEC INT64_C(1000000000)
/* The room a message gives to quoted user text, "..." and NUL included. */
#define QUOTE_SIZE 80

/* Bytes of the text, escapes still in them. */
typedef struct span {
  const char *p;
  size_t n;
} span;

typedef struct item {
  span raw;   /* the whole item */
  span key;   /* before its first '=' (keyword items only) */
  span value; /* after that '=', or the whole item */
  int keyword;
} item;

/* Every parameter any kind takes. The order is the order in which missing
 * ones are reported (host before port). */
enum param_id {
  P_HOST,
  P_PORT,
  P_INTERFACE,
  P_BACKLOG,
  P_REUSEPORT,
  P_IPV6ONLY,
  P_ADDRESS,
  P_PATH,
  P_MODE,
  P_FILENO,
  P_DOMAIN,
  P_INDEX,
  P_TIMEOUT,
  P_BIND,
  P_CERTKEY,
  P_PRIVATEKEY,
  P_TRUSTROOTS,
  P_VERIFY,
  P_PASSPHRASEFILE,
  P_COUNT
};

#define BIT(id) (1u << (id))

typedef struct kind_spec {
  const char *name;
  eddy_endpoint_kind kind;
  int client;
  int tls;
  unsigned allowed;       /* BIT() of each parameter it takes */
  unsigned required;      /* the ones it cannot do without */
  enum param_id slots[2]; /* positional items fill these, in order */
  size_t nslots;
} kind_spec;

typedef struct parser {
  eddy_endpoint ep;
  const kind_spec *spec; /* NULL until the kind is known */
  const char *prefix;    /* what messages start with: the kind's name */
  const char *text;      /* the whole string, for offsets in messages */
  unsigned seen;         /* BIT() of each parameter given so far */
  char *err;
  size_t errlen;
} parser;

typedef int (*param_setter)(parser *ps, span value);

typedef struct param {
  const char *name;  /* the keyword */
  const char *label; /* what messages call it */
  param_setter set;
} param;

static int set_host(parser *ps, span v);
static int set_port(parser *ps, span v);
static int set_interface(parser *ps, span v);
static int set_backlog(parser *ps, span v);
static int set_reuseport(parser *ps, span v);
static int set_ipv6only(parser *ps, span v);
static int set_path(parser *ps, span v);
static int set_mode(parser *ps, span v);
static int set_fileno(parser *ps, span v);
static int set_domain(parser *ps, span v);
static int set_index(parser *ps, span v);
static int set_timeout(parser *ps, span v);
static int set_bind(parser *ps, span v);
static int set_certkey(parser *ps, span v);
static int set_privatekey(parser *ps, span v);
static int set_trustroots(parser *ps, span v);
static int set_verify(parser *ps, span v);
static int set_passphrasefile(parser *ps, span v);

/* Indexed by enum param_id. */
static const param params[P_COUNT] = {
    {"host", "host", set_host},
    {"port", "port", set_port},
    {"interface", "interface", set_interface},
    {"backlog", "backlog", set_backlog},
    {"reuseport", "reuseport", set_reuseport},
    {"ipv6only", "ipv6only", set_ipv6only},
    {"address", "path", set_path},
    {"path", "path", set_path},
    {"mode", "mode", set_mode},
    {"fileno", "fileno", set_fileno},
    {"domain", "domain", set_domain},
    {"index", "index", set_index},
    {"timeout", "timeout", set_timeout},
    {"bindAddress", "bindAddress", set_bind},
    {"certKey", "certKey", set_certkey},
    {"privateKey", "privateKey", set_privatekey},
    {"trustRoots", "trustRoots", set_trustroots},
    {"verify", "verify", set_verify},
    {"passphraseFile", "passphraseFile", set_passphrasefile},
};

#define TCP_SERVER (BIT(P_PORT) | BIT(P_INTERFACE) | BIT(P_BACKLOG))

#define TLS_SERVER(n)                                                          \
  {                                                                            \
    .name = n, .kind = EDDY_ENDPOINT_TCP, .tls = 1,                            \
    .allowed = TCP_SERVER | BIT(P_REUSEPORT) | BIT(P_CERTKEY) |                \
               BIT(P_PRIVATEKEY) | BIT(P_PASSPHRASEFILE),                      \
    .required = BIT(P_PORT), .slots = {P_PORT}, .nslots = 1                    \
  }
#define TLS_CLIENT(n)                                                          \
  {                                                                            \
    .name = n, .kind = EDDY_ENDPOINT_TCP, .client = 1, .tls = 1,               \
    .allowed = BIT(P_HOST) | BIT(P_PORT) | BIT(P_TIMEOUT) | BIT(P_BIND) |      \
               BIT(P_TRUSTROOTS) | BIT(P_VERIFY),                              \
    .required = BIT(P_HOST) | BIT(P_PORT), .slots = {P_HOST, P_PORT},          \
    .nslots = 2                                                                \
  }

static const kind_spec kinds[] = {
    {.name = "tcp",
     .kind = EDDY_ENDPOINT_TCP,
     .allowed = TCP_SERVER | BIT(P_REUSEPORT),
     .required = BIT(P_PORT),
     .slots = {P_PORT},
     .nslots = 1},
    {.name = "tcp6",
     .kind = EDDY_ENDPOINT_TCP6,
     .allowed = TCP_SERVER | BIT(P_IPV6ONLY),
     .required = BIT(P_PORT),
     .slots = {P_PORT},
     .nslots = 1},
    {.name = "unix",
     .kind = EDDY_ENDPOINT_UNIX,
     .allowed = BIT(P_ADDRESS) | BIT(P_MODE) | BIT(P_BACKLOG),
     .required = BIT(P_ADDRESS),
     .slots = {P_ADDRESS},
     .nslots = 1},
    {.name = "fd",
     .kind = EDDY_ENDPOINT_FD,
     .allowed = BIT(P_FILENO),
     .required = BIT(P_FILENO),
     .slots = {P_FILENO},
     .nslots = 1},
    {.name = "udp",
     .kind = EDDY_ENDPOINT_UDP,
     .allowed = BIT(P_PORT) | BIT(P_INTERFACE) | BIT(P_REUSEPORT),
     .required = BIT(P_PORT),
     .slots = {P_PORT},
     .nslots = 1},
    {.name = "systemd",
     .kind = EDDY_ENDPOINT_SYSTEMD,
     .allowed = BIT(P_DOMAIN) | BIT(P_INDEX),
     .required = BIT(P_DOMAIN) | BIT(P_INDEX)},
    {.name = "tcp",
     .kind = EDDY_ENDPOINT_TCP,
     .client = 1,
     .allowed = BIT(P_HOST) | BIT(P_PORT) | BIT(P_TIMEOUT) | BIT(P_BIND),
     .required = BIT(P_HOST) | BIT(P_PORT),
     .slots = {P_HOST, P_PORT},
     .nslots = 2},
    {.name = "unix",
     .kind = EDDY_ENDPOINT_UNIX,
     .client = 1,
     .allowed = BIT(P_PATH) | BIT(P_TIMEOUT),
     .required = BIT(P_PATH),
     .slots = {P_PATH},
     .nslots = 1},
    /* TLS over TCP; "ssl" is Twisted's name for the same thing. */
    TLS_SERVER("tls"),
    TLS_SERVER("ssl"),
    TLS_CLIENT("tls"),
    TLS_CLIENT("ssl"),
};

/* ---- Messages ------------------------------------------------------------ */

/* Writes "<prefix>: <message>" to the caller's buffer, cut to fit. */
__attribute__((format(printf, 2, 3))) static int fail(parser *ps,
                                                      const char *fmt, ...) {
  if (ps->errlen == 0)
    return EDDY_EPARSE;
  /* The prefix is a word of ours: snprintf cannot fail on it. */
  size_t n = (size_t)snprintf(ps->err, ps->errlen, "%s: ", ps->prefix);
  if (n < ps->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
    va_end(ap);
  }
  return EDDY_EPARSE;
}

/* Renders user text for a message: printable ASCII as is, any other byte
 * as \xNN, so that a message never carries control characters or broken
 * UTF-8 into a log; text that does not fit ends in "...". */
static const char *quote(span s, char buf[QUOTE_SIZE]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < s.n; i++) {
    unsigned char c = (unsigned char)s.p[i];
    int plain = c >= 0x20 && c < 0x7f;
    if (o + (plain ? 1 : 4) > QUOTE_SIZE - 4) {
      memcpy(buf + o, "...", 4);
      return buf;
    }
    if (plain) {
      buf[o++] = (char)c;
    } else {
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[c >> 4];
      buf[o++] = hex[c & 15];
    }
  }
  buf[o] = '\0';
  return buf;
}

/* ---- Values -------------------------------------------------------------- */

static int span_is(span s, const char *word) {
  return strlen(word) == s.n && memcmp(s.p, word, s.n) == 0;
}

/* Copies v without its escapes (next_item checked them) into dst. Returns
 * -1 if it does not fit in size bytes with its NUL. */
static int unescape(span v, char *dst, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < v.n; i++) {
    if (v.p[i] == '\\')
      i++;
    if (o + 1 >= size)
      return -1;
    dst[o++] = v.p[i];
  }
  dst[o] = '\0';
  return 0;
}

/* The message for a number that number() refuses: not made of digits, or
 * out of [min, max]. An octal range is shown in octal. */
static int bad_number(parser *ps, const char *label, span v, unsigned base,
                      uint64_t min, uint64_t max, int digits) {
  char q[QUOTE_SIZE];
  unsigned long long lo = min, hi = max;
  quote(v, q);
  if (!digits && base == 8)
    return fail(ps, "%s '%s' is not an octal number from %#llo to %#llo", label,
                q, lo, hi);
  if (!digits)
    return fail(ps, "%s '%s' is not a number from %llu to %llu", label, q, lo,
                hi);
  if (base == 8)
    return fail(ps, "%s '%s' is out of range (%#llo-%#llo)", label, q, lo, hi);
  return fail(ps, "%s '%s' is out of range (%llu-%llu)", label, q, lo, hi);
}

/* Reads digits of base 8 or 10 and nothing else into *out. Unlike strtoul
 * it takes no sign, no leading space and no "0x": "-1" is an error, not
 * ULONG_MAX, and " 80" is not 80. */
static int number(parser *ps, const char *label, span v, unsigned base,
                  uint64_t min, uint64_t max, uint64_t *out) {
  uint64_t n = 0;
  for (size_t i = 0; i < v.n; i++) {
    unsigned digit = (unsigned)(v.p[i] - '0');
    if (digit >= base)
      return bad_number(ps, label, v, base, min, max, 0);
    if (n <= max) /* stop growing once too big: 10,000 digits must not wrap */
      n = n * base + digit;
  }
  if (n < min || n > max)
    return bad_number(ps, label, v, base, min, max, 1);
  *out = n;
  return 0;
}

static int boolean(parser *ps, const char *label, span v, int *out) {
  static const char *const words[][2] = {{"0", "1"},
                                         {"false", "true"},
                                         {"no", "yes"}};
  char q[QUOTE_SIZE];
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    for (int value = 0; value < 2; value++) {
      if (span_is(v, words[i][value])) {
        *out = value;
        return 0;
      }
    }
  }
  return fail(ps, "%s '%s' is not a boolean (0, 1, true, false, yes, no)",
              label, quote(v, q));
}

/* Reads seconds with an optional fraction ("2.5") as nanoseconds. By hand,
 * because strtod follows the locale's decimal point and takes "inf",
 * "nan", "1e3" and leading spaces. Digits past the nanosecond are read and
 * dropped. Returns 0, -1 if v is not such a number, -2 if it is too big. */
static int seconds(span v, int64_t *ns) {
  int64_t whole = 0, frac = 0, scale = EDDY_NSEC_PER_SEC;
  size_t i = 0, fdigits = 0;
  for (; i < v.n && v.p[i] >= '0' && v.p[i] <= '9'; i++)
    if (whole <= TIMEOUT_MAX_SEC)
      whole = whole * 10 + (v.p[i] - '0');
  if (i == 0)
    return -1;
  if (i < v.n && v.p[i] == '.') {
    for (i++; i < v.n && v.p[i] >= '0' && v.p[i] <= '9'; i++, fdigits++) {
      scale /= 10;
      frac += (v.p[i] - '0') * scale;
    }
    if (fdigits == 0)
      return -1;
  }
  if (i != v.n)
    return -1;
  if (whole > TIMEOUT_MAX_SEC)
    return -2;
  *ns = whole * EDDY_NSEC_PER_SEC + frac;
  return 0;
}

/* ---- Parameters ------------------------------------------------------------
 *
 * Each setter reads one value into ps->ep. The value is not empty (the
 * caller checked) and its escapes are well formed (next_item checked). */

/* "[::1]" is "::1": the brackets only kept the colons in one item. */
static span unbracket(span v) {
  if (v.n >= 2 && v.p[0] == '[' && v.p[v.n - 1] == ']')
    return (span){v.p + 1, v.n - 2};
  return v;
}

static int set_host(parser *ps, span v) {
  char q[QUOTE_SIZE];
  v = unbracket(v);
  if (v.n == 0)
    return fail(ps, "empty host");
  if (unescape(v, ps->ep.host, sizeof ps->ep.host) != 0)
    return fail(ps, "host is too long (max %zu bytes)", sizeof ps->ep.host - 1);
  /* No host name or address holds these; letting one through would only
   * defer the error to the resolver, with a worse message. */
  for (const char *c = ps->ep.host; *c != '\0'; c++)
    if ((unsigned char)*c <= ' ' || *c == 0x7f)
      return fail(ps, "host '%s' contains a space or control character",
                  quote(v, q));
  return 0;
}

static int set_port(parser *ps, span v) {
  uint64_t n = 0;
  int rc = number(ps, "port", v, 10, 0, 65535, &n);
  ps->ep.port = (unsigned)n;
  return rc;
}

/* A listening address must be numeric: a name could resolve to several
 * addresses, or block the loop while it resolves. */
static int set_interface(parser *ps, span v) {
  char q[QUOTE_SIZE];
  unsigned char addr[sizeof(struct in6_addr)];
  int six = ps->spec->kind == EDDY_ENDPOINT_TCP6;
  v = unbracket(v);
  if (unescape(v, ps->ep.host, sizeof ps->ep.host) != 0)
    ps->ep.host[0] = '\0'; /* too long: refused below as not an address */
  /* There is no tls6: a TLS server listens on IPv6 when its interface is
   * an IPv6 address. */
  if (ps->spec->tls && inet_pton(AF_INET6, ps->ep.host, addr) == 1) {
    ps->ep.kind = EDDY_ENDPOINT_TCP6;
    return 0;
  }
  /* One udp: kind for both families, as the address says. */
  if (ps->spec->kind == EDDY_ENDPOINT_UDP &&
      inet_pton(AF_INET6, ps->ep.host, addr) == 1)
    return 0;
  if (inet_pton(six ? AF_INET6 : AF_INET, ps->ep.host, addr) != 1)
    return fail(ps, "interface '%s' is not a numeric %s address", quote(v, q),
                six ? "IPv6"
                : ps->spec->tls || ps->spec->kind == EDDY_ENDPOINT_UDP
                    ? "IPv4 or IPv6"
                    : "IPv4");
  return 0;
}

static int set_backlog(parser *ps, span v) {
  uint64_t n = 0;
  int rc = number(ps, "backlog", v, 10, 1, 65535, &n);
  ps->ep.backlog = (int)n;
  return rc;
}

static int set_reuseport(parser *ps, span v) {
  return boolean(ps, "reuseport", v, &ps->ep.reuseport);
}

static int set_ipv6only(parser *ps, span v) {
  return boolean(ps, "ipv6only", v, &ps->ep.ipv6only);
}

static int set_path(parser *ps, span v) {
  if (unescape(v, ps->ep.path, sizeof ps->ep.path) != 0)
    return fail(ps, "path is too long (max %zu bytes)", sizeof ps->ep.path - 1);
  return 0;
}

/* Octal, as chmod takes it: "660" and "0660" are the same mode. */
static int set_mode(parser *ps, span v) {
  uint64_t n = 0;
  int rc = number(ps, "mode", v, 8, 0, 07777, &n);
  ps->ep.mode = (unsigned)n;
  return rc;
}

static int set_fileno(parser *ps, span v) {
  uint64_t n = 0;
  int rc = number(ps, "fileno", v, 10, 0, INT_MAX, &n);
  ps->ep.fd = (int)n;
  return rc;
}

static int set_domain(parser *ps, span v) {
  static const struct {
    const char *name;
    int domain;
  } domains[] = {{"INET", AF_INET}, {"INET6", AF_INET6}, {"UNIX", AF_UNIX}};
  char q[QUOTE_SIZE];
  for (size_t i = 0; i < sizeof domains / sizeof domains[0]; i++) {
    if (span_is(v, domains[i].name)) {
      ps->ep.domain = domains[i].domain;
      return 0;
    }
  }
  return fail(ps, "domain '%s' is not INET, INET6 or UNIX", quote(v, q));
}

/* systemd's index counts from its first descriptor (3); it goes in fd. */
static int set_index(parser *ps, span v) {
  uint64_t n = 0;
  int rc = number(ps, "index", v, 10, 0, INT_MAX, &n);
  ps->ep.fd = (int)n;
  return rc;
}

static int set_timeout(parser *ps, span v) {
  char q[QUOTE_SIZE];
  int64_t ns = 0;
  int rc = seconds(v, &ns);
  /* "0.0000000001" reads as 0 ns: as useless as 0, and refused with it.
   * One message for every bad value, giving both bounds. */
  if (rc != 0 || ns <= 0)
    return fail(ps,
                "timeout '%s' must be a decimal number of seconds above 0 "
                "and at most %lld",
                quote(v, q), (long long)TIMEOUT_MAX_SEC);
  ps->ep.timeout_ns = ns;
  return 0;
}

static int set_bind(parser *ps, span v) {
  char q[QUOTE_SIZE];
  unsigned char addr[sizeof(struct in6_addr)];
  char *a = ps->ep.bind_address;
  v = unbracket(v);
  if (unescape(v, a, sizeof ps->ep.bind_address) != 0 ||
      (inet_pton(AF_INET, a, addr) != 1 && inet_pton(AF_INET6, a, addr) != 1))
    return fail(ps, "bindAddress '%s' is not a numeric IPv4 or IPv6 address",
                quote(v, q));
  return 0;
}

static int set_file(parser *ps, span v, char *dst, size_t size,
                    const char *what) {
  if (unescape(v, dst, size) != 0)
    return fail(ps, "%s path is too long (max %zu bytes)", what, size - 1);
  return 0;
}

static int set_certkey(parser *ps, span v) {
  return set_file(ps, v, ps->ep.cert_key, sizeof ps->ep.cert_key, "certKey");
}

static int set_privatekey(parser *ps, span v) {
  return set_file(ps, v, ps->ep.private_key, sizeof ps->ep.private_key,
                  "privateKey");
}

static int set_trustroots(parser *ps, span v) {
  return set_file(ps, v, ps->ep.trust_roots, sizeof ps->ep.trust_roots,
                  "trustRoots");
}

static int set_passphrasefile(parser *ps, span v) {
  return set_file(ps, v, ps->ep.passphrase_file, sizeof ps->ep.passphrase_file,
                  "passphraseFile");
}

/* Turning verification off has to be said in so many words. */
static int set_verify(parser *ps, span v) {
  return boolean(ps, "verify", v, &ps->ep.verify);
}

/* ---- Items --------------------------------------------------------------- */

/* Reads the item at *pos into it, and moves *pos to the next item: past
 * the ':' that ends this one, or to NULL after the last. */
static int next_item(parser *ps, const char **pos, item *it) {
  char q[QUOTE_SIZE], q2[QUOTE_SIZE];
  const char *start = *pos, *p = start, *eq = NULL, *bad = NULL;
  for (; *p != '\0' && *p != ':'; p++) {
    if (*p == '=' && eq == NULL)
      eq = p;
    else if (*p == '[' && p == (eq ? eq + 1 : start) && strchr(p, ']'))
      p = strchr(p, ']'); /* an IPv6 address in brackets: colons and all */
    else if (*p == '\\' && (p[1] == ':' || p[1] == '\\'))
      p++;
    else if (*p == '\\' && bad == NULL)
      bad = p; /* the next byte is read as itself: it may end the item */
  }
  it->raw = (span){start, (size_t)(p - start)};
  *pos = *p == ':' ? p + 1 : NULL;
  if (bad != NULL && bad[1] == '\0')
    return fail(ps, "backslash at end of '%s'", quote(it->raw, q));
  if (bad != NULL)
    return fail(ps, "bad escape '%s' in '%s' (only \\: and \\\\ are escapes)",
                quote((span){bad, 2}, q2), quote(it->raw, q));
  if (it->raw.n == 0)
    return fail(ps, "empty item at offset %zu (a stray ':'?)",
                (size_t)(start - ps->text));
  it->keyword = eq != NULL;
  it->key = (span){start, eq ? (size_t)(eq - start) : 0};
  it->value = eq ? (span){eq + 1, (size_t)(p - eq - 1)} : it->raw;
  return 0;
}

static int apply_keyword(parser *ps, const item *it) {
  char q[QUOTE_SIZE];
  int id = 0;
  if (it->key.n == 0)
    return fail(ps, "parameter name missing in '%s'", quote(it->raw, q));
  while (id < P_COUNT && !span_is(it->key, params[id].name))
    id++;
  if (id == P_COUNT || !(ps->spec->allowed & BIT(id)))
    return fail(ps, "unknown parameter '%s'", quote(it->key, q));
  if (ps->seen & BIT(id))
    return fail(ps, "parameter '%s' given twice", params[id].name);
  if (it->value.n == 0 && it->value.p[0] == ':' &&
      (id == P_HOST || id == P_INTERFACE || id == P_BIND))
    return fail(ps,
                "empty value for '%s' (an IPv6 address goes in brackets, "
                "[::1], or has its colons escaped, \\:\\:1)",
                params[id].name);
  if (it->value.n == 0)
    return fail(ps, "empty value for '%s'", params[id].name);
  ps->seen |= BIT(id);
  return params[id].set(ps, it->value);
}

/* A positional item fills the first slot that nothing filled yet. */
static int apply_positional(parser *ps, const item *it) {
  char q[QUOTE_SIZE];
  for (size_t i = 0; i < ps->spec->nslots; i++) {
    enum param_id id = ps->spec->slots[i];
    if (!(ps->seen & BIT(id))) {
      ps->seen |= BIT(id);
      return params[id].set(ps, it->value);
    }
  }
  return fail(ps, "unexpected argument '%s'", quote(it->raw, q));
}

/* One pass over the items from pos: the keywords, or the positionals. */
static int read_items(parser *ps, const char *pos, int positionals) {
  while (pos != NULL) {
    item it = {0}; /* set by next_item; zeroed for the optimiser */
    int rc = next_item(ps, &pos, &it);
    if (rc == 0 && it.keyword && !positionals)
      rc = apply_keyword(ps, &it);
    else if (rc == 0 && !it.keyword && positionals)
      rc = apply_positional(ps, &it);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- Endpoints ----------------------------------------------------------- */

/* Finds the kind named before the first ':'. *items gets where the items
 * start, NULL if there are none. The kind is a plain word: no escapes. */
static int read_kind(parser *ps, int client, const char **items) {
  char q[QUOTE_SIZE];
  const char *colon = strchr(ps->text, ':');
  span name = {ps->text, colon ? (size_t)(colon - ps->text) : strlen(ps->text)};
  int other_role = 0;
  *items = colon ? colon + 1 : NULL;
  if (ps->text[0] == '\0')
    return fail(ps, "empty string");
  if (name.n == 0)
    return fail(ps, "missing kind before ':'");
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (span_is(name, kinds[i].name) && kinds[i].client != client) {
      other_role = 1;
    } else if (span_is(name, kinds[i].name)) {
      ps->spec = &kinds[i];
      ps->prefix = kinds[i].name;
      return 0;
    }
  }
  if (other_role)
    return fail(ps, "'%s' is not a %s endpoint", quote(name, q),
                client ? "client" : "server");
  return fail(ps, "unknown kind '%s'", quote(name, q));
}

static int check_required(parser *ps) {
  unsigned missing = ps->spec->required & ~ps->seen;
  for (int id = 0; id < P_COUNT; id++)
    if (missing & BIT(id))
      return fail(ps, "missing %s", params[id].label);
  /* A server needs its certificate and key; one file may hold both, so
   * either name alone is enough (Twisted's strings often give only
   * privateKey). */
  if (ps->spec->tls && !ps->spec->client) {
    if (!ps->ep.cert_key[0] && !ps->ep.private_key[0])
      return fail(ps, "missing certKey (the certificate chain, PEM)");
    if (!ps->ep.cert_key[0])
      strcpy(ps->ep.cert_key, ps->ep.private_key);
    if (!ps->ep.private_key[0])
      strcpy(ps->ep.private_key, ps->ep.cert_key);
  }
  return 0;
}

static int parse(const char *text, eddy_endpoint *ep, char *err, size_t errlen,
                 int client) {
  parser ps;
  const char *items = NULL;
  int rc;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  if (text == NULL || ep == NULL)
    return -EINVAL;
  memset(&ps, 0, sizeof ps); /* padding too: callers may memcmp endpoints */
  ps.prefix = "endpoint";
  ps.text = text;
  ps.err = err;
  ps.errlen = err != NULL ? errlen : 0;
  ps.ep.backlog = DEFAULT_BACKLOG;
  ps.ep.timeout_ns = DEFAULT_TIMEOUT;
  ps.ep.fd = -1;
  ps.ep.verify = 1;
  rc = read_kind(&ps, client, &items);
  if (rc == 0) {
    ps.ep.kind = ps.spec->kind;
    ps.ep.tls = ps.spec->tls;
    rc = read_items(&ps, items, 0);
  }
  if (rc == 0)
    rc = read_items(&ps, items, 1);
  if (rc == 0)
    rc = check_required(&ps);
  /* Twisted's default: a tcp6 server listens on every IPv6 address. */
  if (rc == 0 && ps.ep.kind == EDDY_ENDPOINT_TCP6 && ps.ep.host[0] == '\0')
    strcpy(ps.ep.host, "::");
  if (rc == 0)
    memcpy(ep, &ps.ep, sizeof *ep);
  return rc;
}

int eddy_endpoint_parse_server(const char *text, eddy_endpoint *ep, char *err,
                               size_t errlen) {
  return parse(text, ep, err, errlen, 0);
}

int eddy_endpoint_parse_client(const char *text, eddy_endpoint *ep, char *err,
                               size_t errlen) {
  return parse(text, ep, err, errlen, 1);
}
