/* Endpoint strings: every kind and parameter that parses, with the whole
 * endpoint it must give; every way a string can be wrong, with the part the
 * message must name; hostile input (10 KB strings, escapes at the end, only
 * colons, non-ASCII and control bytes), each read just before a PROT_NONE
 * page so that reading one byte too far crashes the test. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eddy/net.h"
#include "helpers.h"
/* After criterion.h (in helpers.h): included first, it breaks Test(). */
#include <criterion/parameterized.h>

#define SEC EDDY_NSEC_PER_SEC
#define BIG 10240 /* "very long": 10 KB */

/* Copies s so that its NUL is the last byte before an unreadable page. */
typedef struct guarded {
  char *text;
  void *map;
  size_t len;
} guarded;

static guarded guard(const char *s) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), n = strlen(s) + 1;
  size_t data = (n + page - 1) / page * page;
  guarded g = {.len = data + page};
  g.map = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
  cr_assert(g.map != MAP_FAILED);
  EXPECT_OK(mprotect((char *)g.map + data, page, PROT_NONE));
  g.text = (char *)g.map + data - n;
  memcpy(g.text, s, n);
  return g;
}

static void unguard(guarded *g) {
  EXPECT_OK(munmap(g->map, g->len));
}

static int parse(int client, const char *s, eddy_endpoint *ep, char *err,
                 size_t errlen) {
  guarded g = guard(s);
  int rc = client ? eddy_endpoint_parse_client(g.text, ep, err, errlen)
                  : eddy_endpoint_parse_server(g.text, ep, err, errlen);
  unguard(&g);
  return rc;
}

/* Parses s, expecting EDDY_EPARSE, a message containing fragment, and *ep
 * left as it was. */
static void expect_bad(int client, const char *s, const char *fragment) {
  eddy_endpoint ep, before;
  char err[256];
  memset(&ep, 0xa5, sizeof ep);
  memcpy(&before, &ep, sizeof ep); /* padding too: memcmp reads it */
  memset(err, 'x', sizeof err);
  int rc = parse(client, s, &ep, err, sizeof err);
  cr_assert(eq(int, rc, EDDY_EPARSE), "for \"%s\" (%s)", s, err);
  cr_assert(memchr(err, '\0', sizeof err) != NULL, "message not terminated");
  cr_expect(strstr(err, fragment) != NULL,
            "for \"%.60s\": message \"%s\" does not contain \"%s\"", s, err,
            fragment);
  cr_expect(memcmp(&ep, &before, sizeof ep) == 0, "ep changed on failure");
}

/* ---- Strings that parse ------------------------------------------------ */

/* Criterion hands each case to a new process, where pointers into this
 * one's data are no good: the strings live in the cases. */
typedef struct good {
  int client;
  char text[80];
  eddy_endpoint want;
} good;

/* Each case states only what differs from the defaults: a later designated
 * initializer overriding DEFAULTS is the point, not a slip. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define DEFAULTS .backlog = 511, .timeout_ns = 30 * SEC, .fd = -1, .verify = 1
#define SERVER(t, ...)                                                         \
  {                                                                            \
    0, t, {                                                                    \
      DEFAULTS, __VA_ARGS__                                                    \
    }                                                                          \
  }
#define CLIENT(t, ...)                                                         \
  {                                                                            \
    1, t, {                                                                    \
      DEFAULTS, __VA_ARGS__                                                    \
    }                                                                          \
  }
#define K_TCP .kind = EDDY_ENDPOINT_TCP
#define K_TCP6 .kind = EDDY_ENDPOINT_TCP6
#define K_UNIX .kind = EDDY_ENDPOINT_UNIX

static good goods[] = {
    SERVER("tcp:8080", K_TCP, .port = 8080),
    SERVER("tls:8443:certKey=/c.pem", K_TCP, .tls = 1, .port = 8443,
           .cert_key = "/c.pem", .private_key = "/c.pem"),
    SERVER("tls:443:certKey=/c.pem:interface=\\:\\:1", K_TCP6, .tls = 1,
           .port = 443, .host = "::1", .cert_key = "/c.pem",
           .private_key = "/c.pem"),
    SERVER("ssl:443:privateKey=/k.pem:certKey=/c.pem:interface=127.0.0.1",
           K_TCP, .tls = 1, .port = 443, .host = "127.0.0.1",
           .cert_key = "/c.pem", .private_key = "/k.pem"),
    SERVER("tcp:0", K_TCP, .port = 0),
    SERVER("tcp:65535", K_TCP, .port = 65535),
    SERVER("tcp:0080", K_TCP, .port = 80),
    SERVER("tcp:port=80", K_TCP, .port = 80),
    SERVER("tcp:80:interface=127.0.0.1", K_TCP, .port = 80,
           .host = "127.0.0.1"),
    SERVER("tcp:interface=0.0.0.0:80", K_TCP, .port = 80, .host = "0.0.0.0"),
    SERVER("tcp:80:backlog=1", K_TCP, .port = 80, .backlog = 1),
    SERVER("tcp:backlog=65535:port=1", K_TCP, .port = 1, .backlog = 65535),
    SERVER("tcp:80:reuseport=1", K_TCP, .port = 80, .reuseport = 1),
    SERVER("tcp:80:reuseport=true", K_TCP, .port = 80, .reuseport = 1),
    SERVER("tcp:80:reuseport=yes", K_TCP, .port = 80, .reuseport = 1),
    SERVER("tcp:80:reuseport=0", K_TCP, .port = 80, .reuseport = 0),
    SERVER("tcp:80:reuseport=false", K_TCP, .port = 80, .reuseport = 0),
    SERVER("tcp:80:reuseport=no", K_TCP, .port = 80, .reuseport = 0),
    SERVER("tcp:interface=10.1.2.3:backlog=7:reuseport=1:port=9", K_TCP,
           .port = 9, .host = "10.1.2.3", .backlog = 7, .reuseport = 1),
    SERVER("tcp6:8080", K_TCP6, .port = 8080, .host = "::"),
    SERVER("tcp6:8080:interface=\\:\\:1", K_TCP6, .port = 8080, .host = "::1"),
    SERVER("tcp6:8080:interface=[::1]", K_TCP6, .port = 8080, .host = "::1"),
    SERVER("tcp6:interface=[fe80::1]:8080", K_TCP6, .port = 8080,
           .host = "fe80::1"),
    SERVER("tls:443:certKey=/c.pem:interface=[::1]", K_TCP6, .tls = 1,
           .port = 443, .host = "::1", .cert_key = "/c.pem",
           .private_key = "/c.pem"),
    SERVER("tcp6:443:interface=fe80\\:\\:1:ipv6only=1:backlog=128", K_TCP6,
           .port = 443, .host = "fe80::1", .ipv6only = 1, .backlog = 128),
    SERVER("tcp6:80:interface=\\:\\:ffff\\:1.2.3.4", K_TCP6, .port = 80,
           .host = "::ffff:1.2.3.4"),
    SERVER("tcp6:80:ipv6only=no", K_TCP6, .port = 80, .host = "::"),
    SERVER("unix:/run/app.sock", K_UNIX, .path = "/run/app.sock"),
    SERVER("unix:address=/tmp/s:mode=660:backlog=5", K_UNIX, .path = "/tmp/s",
           .mode = 0660, .backlog = 5),
    SERVER("unix:/tmp/s:mode=0660", K_UNIX, .path = "/tmp/s", .mode = 0660),
    SERVER("unix:/tmp/s:mode=7777", K_UNIX, .path = "/tmp/s", .mode = 07777),
    SERVER("unix:mode=0:/tmp/s", K_UNIX, .path = "/tmp/s", .mode = 0),
    SERVER("unix:/tmp/a\\:b", K_UNIX, .path = "/tmp/a:b"),
    SERVER("unix:/tmp/a\\\\b", K_UNIX, .path = "/tmp/a\\b"),
    SERVER("unix:address=/tmp/a=b", K_UNIX, .path = "/tmp/a=b"),
    SERVER("unix:relative", K_UNIX, .path = "relative"),
    SERVER("unix:/tmp/caf\xc3\xa9 \x01", K_UNIX,
           .path = "/tmp/caf\xc3\xa9 \x01"),
    SERVER("fd:3", .kind = EDDY_ENDPOINT_FD, .fd = 3),
    SERVER("fd:fileno=0", .kind = EDDY_ENDPOINT_FD, .fd = 0),
    SERVER("fd:2147483647", .kind = EDDY_ENDPOINT_FD, .fd = INT_MAX),
    SERVER("systemd:domain=INET:index=0", .kind = EDDY_ENDPOINT_SYSTEMD,
           .domain = AF_INET, .fd = 0),
    SERVER("systemd:index=2:domain=INET6", .kind = EDDY_ENDPOINT_SYSTEMD,
           .domain = AF_INET6, .fd = 2),
    SERVER("systemd:domain=UNIX:index=1", .kind = EDDY_ENDPOINT_SYSTEMD,
           .domain = AF_UNIX, .fd = 1),
    CLIENT("tcp:example.com:80", K_TCP, .host = "example.com", .port = 80),
    CLIENT("tcp:host=example.com:port=443", K_TCP, .host = "example.com",
           .port = 443),
    CLIENT("tcp:host=example.com:80", K_TCP, .host = "example.com", .port = 80),
    CLIENT("tcp:port=80:example.com", K_TCP, .host = "example.com", .port = 80),
    CLIENT("tcp:h:0", K_TCP, .host = "h", .port = 0),
    CLIENT("tcp:\\:\\:1:80", K_TCP, .host = "::1", .port = 80),
    CLIENT("tcp:b\xc3\xbc"
           "cher.de:80",
           K_TCP,
           .host = "b\xc3\xbc"
                   "cher.de",
           .port = 80),
    CLIENT("tcp:h:80:timeout=2.5", K_TCP, .host = "h", .port = 80,
           .timeout_ns = 2500000000),
    CLIENT("tcp:h:80:timeout=10", K_TCP, .host = "h", .port = 80,
           .timeout_ns = 10 * SEC),
    CLIENT("tcp:h:80:timeout=0.001", K_TCP, .host = "h", .port = 80,
           .timeout_ns = 1000000),
    CLIENT("tcp:h:80:timeout=0.000000001", K_TCP, .host = "h", .port = 80,
           .timeout_ns = 1),
    CLIENT("tcp:h:80:timeout=1.1234567899", K_TCP, .host = "h", .port = 80,
           .timeout_ns = 1123456789),
    CLIENT("tcp:h:80:timeout=1000000000", K_TCP, .host = "h", .port = 80,
           .timeout_ns = 1000000000 * SEC),
    CLIENT("tcp:h:80:bindAddress=10.0.0.1", K_TCP, .host = "h", .port = 80,
           .bind_address = "10.0.0.1"),
    CLIENT("tcp:bindAddress=\\:\\:1:timeout=1:port=1:host=\\:\\:1", K_TCP,
           .host = "::1", .port = 1, .bind_address = "::1", .timeout_ns = SEC),
    CLIENT("tcp:[::1]:80", K_TCP, .host = "::1", .port = 80),
    CLIENT("tcp:host=[::1]:port=80:bindAddress=[::1]", K_TCP, .host = "::1",
           .port = 80, .bind_address = "::1"),
    CLIENT("unix:/tmp/s", K_UNIX, .path = "/tmp/s"),
    CLIENT("tls:h:443", K_TCP, .tls = 1, .host = "h", .port = 443),
    CLIENT("ssl:host=h:port=1:trustRoots=/ca\\:x.pem:verify=no", K_TCP,
           .tls = 1, .host = "h", .port = 1, .trust_roots = "/ca:x.pem",
           .verify = 0),
    CLIENT("unix:path=/tmp/s:timeout=5", K_UNIX, .path = "/tmp/s",
           .timeout_ns = 5 * SEC),
    CLIENT("unix:timeout=0.5:/tmp/s\\:1", K_UNIX, .path = "/tmp/s:1",
           .timeout_ns = SEC / 2),
};

ParameterizedTestParameters(endpoint, parses_good_string) {
  return cr_make_param_array(good, goods, sizeof goods / sizeof goods[0]);
}

/* Every field, then the whole struct, padding included: a field the parser
 * forgot to set would show 0xa5 bytes. */
ParameterizedTest(good *c, endpoint, parses_good_string) {
  eddy_endpoint ep;
  char err[128] = "untouched";
  const eddy_endpoint *w = &c->want;
  memset(&ep, 0xa5, sizeof ep);
  int rc = parse(c->client, c->text, &ep, err, sizeof err);
  cr_assert(eq(int, rc, 0), "\"%s\" gave %d: %s", c->text, rc, err);
  EXPECT_STR(err, "");
  cr_expect(eq(int, ep.kind, w->kind), "kind of \"%s\"", c->text);
  cr_expect(eq(str, ep.host, (char *)w->host), "host of \"%s\"", c->text);
  cr_expect(eq(uint, ep.port, w->port), "port of \"%s\"", c->text);
  cr_expect(eq(int, ep.backlog, w->backlog), "backlog of \"%s\"", c->text);
  cr_expect(eq(int, ep.reuseport, w->reuseport), "reuseport: \"%s\"", c->text);
  cr_expect(eq(int, ep.ipv6only, w->ipv6only), "ipv6only: \"%s\"", c->text);
  cr_expect(eq(str, ep.path, (char *)w->path), "path of \"%s\"", c->text);
  cr_expect(eq(uint, ep.mode, w->mode), "mode of \"%s\"", c->text);
  cr_expect(eq(int, ep.fd, w->fd), "fd of \"%s\"", c->text);
  cr_expect(eq(int, ep.domain, w->domain), "domain of \"%s\"", c->text);
  cr_expect(eq(i64, ep.timeout_ns, w->timeout_ns), "timeout: \"%s\"", c->text);
  cr_expect(eq(str, ep.bind_address, (char *)w->bind_address),
            "bindAddress of \"%s\"", c->text);
  cr_expect(memcmp(&ep, w, sizeof ep) == 0, "bytes of \"%s\"", c->text);
}

/* ---- Strings that do not ----------------------------------------------- */

typedef struct bad {
  int client;
  char text[80];
  char fragment[96]; /* the message must contain it */
} bad;

#define SRV 0
#define CLI 1

static bad bads[] = {
    /* The kind. */
    {SRV, "", "endpoint: empty string"},
    {CLI, "", "endpoint: empty string"},
    {SRV, ":80", "endpoint: missing kind before ':'"},
    {SRV, ":::", "endpoint: missing kind before ':'"},
    {SRV, "udpx:80", "endpoint: unknown kind 'udpx'"},
    {SRV, "TCP:80", "endpoint: unknown kind 'TCP'"},
    {SRV, "80", "endpoint: unknown kind '80'"},
    {SRV, "tcp\t:80", "endpoint: unknown kind 'tcp\\x09'"},
    {SRV, "\\", "endpoint: unknown kind '\\'"},
    {SRV, "tc\\:p:80", "endpoint: unknown kind 'tc\\'"},
    {SRV, "ssl:443", "ssl: missing certKey (the certificate chain, PEM)"},
    {SRV, "tls:certKey=x", "tls: missing port"},
    {SRV, "tls:1:certKey=x:interface=localhost",
     "tls: interface 'localhost' is not a numeric IPv4 or IPv6 address"},
    {CLI, "ssl:host=h", "ssl: missing port"},
    {CLI, "tls:h:443:verify=maybe", "tls: verify 'maybe' is not a boolean"},
    {CLI, "tcp6:h:80", "endpoint: 'tcp6' is not a client endpoint"},
    {CLI, "fd:3", "endpoint: 'fd' is not a client endpoint"},
    {CLI, "systemd:domain=INET:index=0", "'systemd' is not a client endpoint"},
    /* Items and escapes. */
    {SRV, "tcp:", "tcp: empty item at offset 4"},
    {SRV, "tcp:80:", "tcp: empty item at offset 7"},
    {SRV, "tcp::80", "tcp: empty item at offset 4"},
    {SRV, "tcp:80:interface=1.2.3.4:", "tcp: empty item at offset 25"},
    {SRV, "tcp:80:=1", "tcp: parameter name missing in '=1'"},
    {SRV, "tcp:80:=", "tcp: parameter name missing in '='"},
    {SRV, "tcp:80:interface=", "tcp: empty value for 'interface'"},
    {SRV, "tcp:80:interface=1.2.3.4\\",
     "tcp: backslash at end of 'interface=1.2.3.4\\'"},
    {SRV, "tcp:\\", "tcp: backslash at end of '\\'"},
    {SRV, "tcp:80:interface=1.2.3\\.4",
     "tcp: bad escape '\\.' in "
     "'interface=1.2.3\\.4'"},
    {SRV, "unix:/tmp/a\\=b", "unix: bad escape '\\=' in '/tmp/a\\=b'"},
    {SRV, "unix:/tmp/\\n", "unix: bad escape '\\n'"},
    {SRV, "unix:/\\a\\b", "unix: bad escape '\\a' in '/\\a\\b'"},
    {SRV, "unix:/tmp/\\\xc3\xa9", "unix: bad escape '\\\\xc3'"},
    {SRV, "tcp:80:interface=1.2.3.4\\\\", "interface '1.2.3.4\\\\' is not"},
    {SRV, "tcp:80:inter\x1b[2Jface=1", "unknown parameter 'inter\\x1b[2Jface'"},
    /* Parameters. */
    {SRV, "tcp:80:foo=1", "tcp: unknown parameter 'foo'"},
    {SRV, "tcp:80:mode=660", "tcp: unknown parameter 'mode'"},
    {SRV, "tcp:80:ipv6only=1", "tcp: unknown parameter 'ipv6only'"},
    {SRV, "tcp:80:timeout=5", "tcp: unknown parameter 'timeout'"},
    {SRV, "tcp:80:host=x", "tcp: unknown parameter 'host'"},
    {SRV, "tcp:80:Backlog=5", "tcp: unknown parameter 'Backlog'"},
    {SRV, "tcp6:80:reuseport=1", "tcp6: unknown parameter 'reuseport'"},
    {SRV, "tcp:80:backlog=5:backlog=6", "tcp: parameter 'backlog' given twice"},
    {SRV, "tcp:port=80:port=81", "tcp: parameter 'port' given twice"},
    {SRV, "tcp:80:port=81", "tcp: unexpected argument '80'"},
    {SRV, "tcp:80:81", "tcp: unexpected argument '81'"},
    {SRV, "tcp:80:127.0.0.1", "tcp: unexpected argument '127.0.0.1'"},
    {SRV, "tcp", "tcp: missing port"},
    {SRV, "tcp:interface=127.0.0.1", "tcp: missing port"},
    /* Ports. */
    {SRV, "tcp:http", "tcp: port 'http' is not a number from 0 to 65535"},
    {SRV, "tcp:70000", "tcp: port '70000' is out of range (0-65535)"},
    {SRV, "tcp:65536", "tcp: port '65536' is out of range (0-65535)"},
    {SRV, "tcp:99999999999999999999999",
     "port '99999999999999999999999' is "
     "out of range"},
    /* 2^64 + 80: a parser that wraps would read port 80. */
    {SRV, "tcp:18446744073709551696", "port '18446744073709551696' is out"},
    {SRV, "tcp:-1", "tcp: port '-1' is not a number"},
    {SRV, "tcp:+80", "tcp: port '+80' is not a number"},
    {SRV, "tcp:80x", "tcp: port '80x' is not a number"},
    {SRV, "tcp: 80", "tcp: port ' 80' is not a number"},
    {SRV, "tcp:0x50", "tcp: port '0x50' is not a number"},
    {SRV, "tcp:8\x01", "tcp: port '8\\x01' is not a number"},
    {SRV, "tcp:\xef\xbc\x98\xef\xbc\x90",
     "tcp: port '\\xef\\xbc\\x98\\xef\\xbc\\x90' is not a number"},
    {CLI, "tcp:example.com:99999", "tcp: port '99999' is out of range"},
    /* Backlogs, interfaces, booleans. */
    {SRV, "tcp:80:backlog=0", "tcp: backlog '0' is out of range (1-65535)"},
    {SRV, "tcp:80:backlog=65536", "tcp: backlog '65536' is out of range"},
    {SRV, "tcp:80:backlog=-5", "tcp: backlog '-5' is not a number from 1 to"},
    {SRV, "unix:/a:backlog=big", "unix: backlog 'big' is not a number"},
    {SRV, "tcp:80:interface=localhost",
     "tcp: interface 'localhost' is not a numeric IPv4 address"},
    {SRV, "tcp:80:interface=\\:\\:1",
     "tcp: interface '\\:\\:1' is not a numeric IPv4 address"},
    {SRV, "tcp:80:interface=1.2.3.4.5", "interface '1.2.3.4.5' is not"},
    {SRV, "tcp6:80:interface=127.0.0.1",
     "tcp6: interface '127.0.0.1' is not a numeric IPv6 address"},
    {SRV, "tcp6:80:interface=fe80\\:\\:1%eth0",
     "tcp6: interface 'fe80\\:\\:1%eth0' is not a numeric IPv6 address"},
    {SRV, "tcp:80:reuseport=2", "tcp: reuseport '2' is not a boolean"},
    {SRV, "tcp:80:reuseport=True", "tcp: reuseport 'True' is not a boolean"},
    {SRV, "tcp:80:reuseport=1 ", "tcp: reuseport '1 ' is not a boolean"},
    {SRV, "tcp6:80:ipv6only=on", "tcp6: ipv6only 'on' is not a boolean"},
    /* Unix paths and modes. */
    {SRV, "unix", "unix: missing path"},
    {SRV, "unix:mode=660", "unix: missing path"},
    {SRV, "unix:path=/a", "unix: unknown parameter 'path'"},
    {SRV, "unix:/a:lockfile=1", "unix: unknown parameter 'lockfile'"},
    {SRV, "unix:/a:/b", "unix: unexpected argument '/b'"},
    {SRV, "unix:address=/a:address=/b",
     "unix: parameter 'address' given twice"},
    {SRV, "unix:/a:mode=8",
     "unix: mode '8' is not an octal number from 0 to "
     "07777"},
    {SRV, "unix:/a:mode=rw", "unix: mode 'rw' is not an octal number"},
    {SRV, "unix:/a:mode=-1", "unix: mode '-1' is not an octal number"},
    {SRV, "unix:/a:mode=10000", "unix: mode '10000' is out of range (0-07777)"},
    {CLI, "unix", "unix: missing path"},
    {CLI, "unix:timeout=1", "unix: missing path"},
    {CLI, "unix:address=/a", "unix: unknown parameter 'address'"},
    {CLI, "unix:/a:mode=660", "unix: unknown parameter 'mode'"},
    {CLI, "unix:/a:checkPID=1", "unix: unknown parameter 'checkPID'"},
    {CLI, "unix:/a:/b", "unix: unexpected argument '/b'"},
    /* Descriptors. */
    {SRV, "fd", "fd: missing fileno"},
    {SRV, "fd:-1", "fd: fileno '-1' is not a number from 0 to 2147483647"},
    {SRV, "fd:2147483648", "fd: fileno '2147483648' is out of range"},
    {SRV, "fd:3:4", "fd: unexpected argument '4'"},
    {SRV, "fd:3:domain=INET", "fd: unknown parameter 'domain'"},
    {SRV, "systemd:domain=INET", "systemd: missing index"},
    {SRV, "systemd:index=0", "systemd: missing domain"},
    {SRV, "systemd", "systemd: missing domain"},
    {SRV, "systemd:domain=inet:index=0",
     "systemd: domain 'inet' is not INET, INET6 or UNIX"},
    {SRV, "systemd:domain=INET:index=-1",
     "systemd: index '-1' is not a number"},
    {SRV, "systemd:domain=INET:index=2147483648", "index '2147483648' is out"},
    {SRV, "systemd:3", "systemd: unexpected argument '3'"},
    {SRV, "systemd:domain=INET:index=0:name=x", "unknown parameter 'name'"},
    /* Clients. */
    {CLI, "tcp", "tcp: missing host"},
    {CLI, "tcp:example.com", "tcp: missing port"},
    {CLI, "tcp:port=80", "tcp: missing host"},
    {CLI, "tcp:example.com:80:8080", "tcp: unexpected argument '8080'"},
    {CLI, "tcp:host=a:host=b:port=1", "tcp: parameter 'host' given twice"},
    {CLI, "tcp:h:80:backlog=5", "tcp: unknown parameter 'backlog'"},
    {CLI, "tcp:h:80:interface=1.2.3.4", "tcp: unknown parameter 'interface'"},
    {CLI, "tcp:h:80:reuseport=1", "tcp: unknown parameter 'reuseport'"},
    {CLI, "tcp:exa mple.com:80",
     "tcp: host 'exa mple.com' contains a space or control character"},
    {CLI, "tcp:exa\x7fmple:80", "tcp: host 'exa\\x7fmple' contains"},
    {CLI, "tcp:\x01:80", "tcp: host '\\x01' contains"},
    {CLI, "tcp:h:80:timeout=0", "tcp: timeout '0' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=0.0",
     "tcp: timeout '0.0' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=-1", "tcp: timeout '-1' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=abc",
     "tcp: timeout 'abc' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=1e3",
     "tcp: timeout '1e3' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=.5", "tcp: timeout '.5' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=5.", "tcp: timeout '5.' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=1.2.3",
     "tcp: timeout '1.2.3' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=1,5",
     "tcp: timeout '1,5' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=1.5s",
     "tcp: timeout '1.5s' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=1./",
     "tcp: timeout '1./' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=inf",
     "tcp: timeout 'inf' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=0.0000000001",
     "tcp: timeout '0.0000000001' must be a decimal number"},
    {CLI, "tcp:h:80:timeout=1000000001",
     "tcp: timeout '1000000001' must be a decimal number of seconds above 0 "
     "and at most 1000000000"},
    {CLI, "tcp:h:80:timeout=1e308",
     "tcp: timeout '1e308' must be a decimal number of seconds above 0 and at "
     "most 1000000000"},
    /* An IPv6 address without brackets or escapes: the hint says how. */
    {SRV, "tcp6:80:interface=::1",
     "goes in brackets, [::1], or has its colons escaped, \\:\\:1)"},
    {CLI, "tcp:host=::1:port=80", "tcp: empty value for 'host' (an IPv6"},
    {SRV, "tcp6:80:interface=[::1", "tcp6: interface '[' is not"},
    {CLI, "unix:/a:timeout=x", "unix: timeout 'x' must be a decimal number"},
    {CLI, "tcp:h:80:bindAddress=localhost",
     "tcp: bindAddress 'localhost' is not a numeric IPv4 or IPv6 address"},
    {CLI, "tcp:h:80:bindAddress=1.2.3.4\\:5", "bindAddress '1.2.3.4\\:5' is"},
};

ParameterizedTestParameters(endpoint, refuses_bad_string) {
  return cr_make_param_array(bad, bads, sizeof bads / sizeof bads[0]);
}

ParameterizedTest(bad *c, endpoint, refuses_bad_string) {
  expect_bad(c->client, c->text, c->fragment);
}

/* ---- Hostile input ------------------------------------------------------ */

/* prefix, then n copies of unit, then suffix, in buf (BIG * 3 bytes). */
static const char *build(char *buf, const char *prefix, const char *unit,
                         size_t n, const char *suffix) {
  size_t o = strlen(prefix), u = strlen(unit);
  memcpy(buf, prefix, o);
  for (size_t i = 0; i < n; i++, o += u)
    memcpy(buf + o, unit, u);
  strcpy(buf + o, suffix);
  return buf;
}

static char big[BIG * 3];

Test(endpoint, long_port_is_out_of_range_and_message_is_cut) {
  char err[256];
  eddy_endpoint ep;
  build(big, "tcp:", "9", BIG, "");
  EXPECT_EQ(parse(0, big, &ep, err, sizeof err), EDDY_EPARSE);
  cr_expect(strstr(err, "...' is out of range (0-65535)") != NULL, "%s", err);
  EXPECT_LT(strlen(err), 160);
}

Test(endpoint, long_digits_with_garbage_at_the_end_are_not_a_number) {
  expect_bad(0, build(big, "tcp:", "9", BIG, "x"), "is not a number");
}

Test(endpoint, empty_bracketed_host_is_refused) {
  expect_bad(1, "tcp:host=[]:port=80", "empty host");
  expect_bad(1, "ssl:6:host=[]", "empty host");
  expect_bad(1, "tcp:[]:80", "empty host");
}

Test(endpoint, long_host_is_too_long) {
  expect_bad(1, build(big, "tcp:", "a", BIG, ":80"),
             "tcp: host is too long (max 255 bytes)");
}

Test(endpoint, host_of_255_bytes_fits_and_256_does_not) {
  eddy_endpoint ep;
  EXPECT_OK(parse(1, build(big, "tcp:", "h", 255, ":1"), &ep, NULL, 0));
  EXPECT_EQ(strlen(ep.host), 255);
  expect_bad(1, build(big, "tcp:", "h", 256, ":1"), "host is too long");
}

Test(endpoint, path_of_107_bytes_fits_and_108_does_not) {
  eddy_endpoint ep;
  EXPECT_OK(parse(0, build(big, "unix:", "p", 107, ""), &ep, NULL, 0));
  EXPECT_EQ(strlen(ep.path), 107);
  expect_bad(0, build(big, "unix:", "p", 108, ""),
             "unix: path is too long (max 107 bytes)");
  expect_bad(1, build(big, "unix:path=", "p", 108, ""), "path is too long");
}

Test(endpoint, escaped_colons_count_once_toward_the_path_limit) {
  eddy_endpoint ep;
  EXPECT_OK(parse(0, build(big, "unix:", "\\:", 107, ""), &ep, NULL, 0));
  EXPECT_EQ(strlen(ep.path), 107);
  EXPECT_EQ(strspn(ep.path, ":"), 107);
  expect_bad(0, build(big, "unix:", "\\:", BIG, ""), "path is too long");
}

Test(endpoint, long_run_of_backslash_pairs_then_one_more) {
  expect_bad(1, build(big, "tcp:", "\\\\", BIG, ":80"), "host is too long");
  expect_bad(1, build(big, "tcp:80:host=", "\\\\", BIG, "\\"),
             "backslash at end of 'host=\\\\\\\\");
}

Test(endpoint, only_colons) {
  expect_bad(0, build(big, "", ":", BIG, ""), "endpoint: missing kind");
  expect_bad(1, build(big, "", ":", BIG, ""), "endpoint: missing kind");
  expect_bad(0, build(big, "tcp:80", ":", BIG, ""),
             "tcp: empty item at offset 7");
}

Test(endpoint, long_kind_is_unknown_and_quoted_in_part) {
  expect_bad(0, build(big, "", "a", BIG, ":80"),
             "endpoint: unknown kind 'aaaaaaaaaaaaaaaaaaaa");
  expect_bad(0, build(big, "", "\x01", BIG, ""),
             "endpoint: unknown kind '\\x01\\x01");
}

/* Quoted text is cut before an escape that would not fit, never inside. */
Test(endpoint, quoted_text_is_cut_at_a_whole_escape) {
  char want[128] = "endpoint: unknown kind 'a";
  for (int i = 0; i < 18; i++)
    strcat(want, "\\x01");
  strcat(want, "...'");
  eddy_endpoint ep;
  char err[256];
  EXPECT_EQ(parse(0, build(big, "a", "\x01", BIG, ""), &ep, err, sizeof err),
            EDDY_EPARSE);
  EXPECT_STR(err, want);
}

Test(endpoint, long_key_value_and_interface) {
  expect_bad(0, build(big, "tcp:80:", "k", BIG, "=1"),
             "tcp: unknown parameter 'kkkkkkkkkk");
  expect_bad(0, build(big, "tcp:80:", "=", BIG, ""),
             "tcp: parameter name missing in '====");
  expect_bad(0, build(big, "tcp:80:interface=", "1", BIG, ""),
             "is not a numeric IPv4 address");
  expect_bad(1, build(big, "tcp:h:1:bindAddress=", "1", BIG, ""),
             "is not a numeric IPv4 or IPv6 address");
  expect_bad(0, build(big, "tcp:80:backlog=", "0", BIG, ""), "backlog '0000");
}

Test(endpoint, long_timeouts) {
  expect_bad(
      1, build(big, "tcp:h:1:timeout=", "1", BIG, ""),
      "must be a decimal number of seconds above 0 and at most 1000000000");
  expect_bad(1, build(big, "tcp:h:1:timeout=0.", "0", BIG, "1"),
             "must be a decimal number of seconds above 0");
  eddy_endpoint ep;
  EXPECT_OK(
      parse(1, build(big, "tcp:h:1:timeout=7.", "9", BIG, ""), &ep, NULL, 0));
  EXPECT_EQ(ep.timeout_ns, 7999999999);
}

Test(endpoint, many_parameters_given_twice) {
  expect_bad(0, build(big, "tcp:80", ":backlog=1", 1000, ""),
             "tcp: parameter 'backlog' given twice");
}

/* Every control byte but NUL, in the kind, a port, a host and a value. */
Test(endpoint, control_bytes_are_refused_and_shown_as_hex) {
  for (int c = 1; c < 0x20; c++) {
    char text[64], want[64];
    snprintf(text, sizeof text, "tcp:8%c0", c);
    snprintf(want, sizeof want, "port '8\\x%02x0'", c);
    expect_bad(0, text, want);
    snprintf(text, sizeof text, "tcp:a%cb:80", c);
    snprintf(want, sizeof want, "host 'a\\x%02xb' contains", c);
    expect_bad(1, text, want);
    snprintf(text, sizeof text, "fd:3:x%c=1", c);
    snprintf(want, sizeof want, "unknown parameter 'x\\x%02x'", c);
    expect_bad(0, text, want);
  }
}

/* ---- The contract ------------------------------------------------------- */

Test(endpoint, null_text_or_endpoint_is_einval) {
  eddy_endpoint ep;
  char err[64];
  EXPECT_EQ(eddy_endpoint_parse_server(NULL, &ep, err, sizeof err), -EINVAL);
  EXPECT_EQ(eddy_endpoint_parse_server("tcp:80", NULL, err, sizeof err),
            -EINVAL);
  EXPECT_EQ(eddy_endpoint_parse_client(NULL, &ep, err, sizeof err), -EINVAL);
  EXPECT_EQ(eddy_endpoint_parse_client("tcp:h:80", NULL, NULL, 0), -EINVAL);
}

Test(endpoint, no_message_buffer_is_fine) {
  eddy_endpoint ep;
  EXPECT_EQ(eddy_endpoint_parse_server("tcp:x", &ep, NULL, 64), EDDY_EPARSE);
  EXPECT_EQ(eddy_endpoint_parse_client("tcp:x", &ep, NULL, 0), EDDY_EPARSE);
  EXPECT_OK(eddy_endpoint_parse_client("tcp:x:1", &ep, NULL, 0));
}

Test(endpoint, errlen_zero_leaves_the_buffer_alone) {
  eddy_endpoint ep;
  char err[4] = "abc";
  EXPECT_EQ(eddy_endpoint_parse_server("tcp:x", &ep, err, 0), EDDY_EPARSE);
  EXPECT_STR(err, "abc");
}

Test(endpoint, short_buffer_gets_a_cut_terminated_message) {
  eddy_endpoint ep;
  char err[16];
  size_t lens[] = {1, 2, 5, 6, 9, 16};
  const char *want[] = {"",      "t",        "tcp:",
                        "tcp: ", "tcp: por", "tcp: port 'x' i"};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    memset(err, 'x', sizeof err);
    EXPECT_EQ(eddy_endpoint_parse_server("tcp:x", &ep, err, lens[i]),
              EDDY_EPARSE);
    EXPECT_STR(err, want[i]);
  }
}

Test(endpoint, failure_leaves_the_endpoint_alone) {
  eddy_endpoint ep, before;
  memset(&ep, 0x5a, sizeof ep);
  memcpy(&before, &ep, sizeof ep); /* padding too: memcmp reads it */
  /* Fails late: the port and interface were already read. */
  EXPECT_EQ(eddy_endpoint_parse_server("tcp:80:interface=1.2.3.4:x=1", &ep,
                                       NULL, 0),
            EDDY_EPARSE);
  cr_assert(memcmp(&ep, &before, sizeof ep) == 0);
}

Test(endpoint, success_clears_an_old_message) {
  eddy_endpoint ep;
  char err[64] = "stale";
  EXPECT_OK(eddy_endpoint_parse_server("tcp:80", &ep, err, sizeof err));
  EXPECT_STR(err, "");
}

/* The parser keeps no state: a second parse into the same struct leaves
 * nothing of the first. */
Test(endpoint, reparse_resets_every_field) {
  eddy_endpoint a, b;
  EXPECT_OK(eddy_endpoint_parse_server(
      "tcp6:1:interface=\\:\\:1:backlog=3:ipv6only=1", &a, NULL, 0));
  EXPECT_OK(eddy_endpoint_parse_server("unix:/s", &a, NULL, 0));
  EXPECT_OK(eddy_endpoint_parse_server("unix:/s", &b, NULL, 0));
  cr_assert(memcmp(&a, &b, sizeof a) == 0);
  EXPECT_STR(a.host, "");
  EXPECT_EQ(a.backlog, 511);
}

typedef struct worker {
  pthread_t thread;
  int client;
  const char *text;
  int failures;
} worker;

static void *hammer(void *arg) {
  worker *w = arg;
  eddy_endpoint first, ep;
  char err[128];
  int rc0 = w->client ? eddy_endpoint_parse_client(w->text, &first, err, 128)
                      : eddy_endpoint_parse_server(w->text, &first, err, 128);
  for (int i = 0; i < 20000; i++) {
    memset(&ep, 0, sizeof ep);
    int rc = w->client ? eddy_endpoint_parse_client(w->text, &ep, err, 128)
                       : eddy_endpoint_parse_server(w->text, &ep, err, 128);
    if (rc != rc0 || (rc == 0 && memcmp(&ep, &first, sizeof ep) != 0))
      w->failures++;
  }
  return NULL;
}

/* Threads parsing different strings at once each get their own answer. */
Test(endpoint, parses_in_parallel_threads) {
  worker w[] = {{.text = "tcp6:8080:interface=\\:\\:1:backlog=9"},
                {.client = 1, .text = "tcp:host=a:port=1:timeout=2.5"},
                {.text = "unix:/run/x:mode=600"},
                {.text = "tcp:80:bad=1"}};
  for (size_t i = 0; i < 4; i++)
    EXPECT_OK(pthread_create(&w[i].thread, NULL, hammer, &w[i]));
  for (size_t i = 0; i < 4; i++) {
    EXPECT_OK(pthread_join(w[i].thread, NULL));
    EXPECT_EQ(w[i].failures, 0);
  }
}
