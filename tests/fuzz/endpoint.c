/* Fuzz target: endpoint strings (src/net/endpoint.c).
 *
 * Each input, cut at its first NUL, is parsed as a server and as a client
 * endpoint, with a roomy message buffer, a tiny one and none. What must
 * hold for any input:
 *
 *   - success: every field is in its range (port <= 65535, a known kind,
 *     booleans 0 or 1, ...), every string field is NUL-terminated inside
 *     its array, what the kind needs is there, and the message is empty;
 *   - failure: EDDY_EPARSE, a non-empty message NUL-terminated inside its
 *     buffer, made of printable ASCII only (user text is quoted), and the
 *     endpoint byte for byte as it was (the parser writes only on success);
 *   - the buffer size changes the message, never the result, and a parse
 *     with no buffer (or a zero-length one) writes nothing to it;
 *   - the same string parses to the same bytes twice.
 *
 * A broken rule prints what broke and aborts, which libFuzzer reports as
 * a crash with the input saved. Read past the string and ASan does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "eddy/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERR_SIZE 256
#define SENTINEL 0xa5

static void require(int ok, const char *what, const char *text) {
  if (ok)
    return;
  fprintf(stderr, "endpoint fuzz: %s for \"%.200s\"\n", what, text);
  abort();
}

static int terminated(const char *s, size_t size) {
  return memchr(s, '\0', size) != NULL;
}

static int is_bool(int v) {
  return v == 0 || v == 1;
}

static void check_parsed(const eddy_endpoint *ep, int client,
                         const char *text) {
  require(terminated(ep->host, sizeof ep->host), "host not terminated", text);
  require(terminated(ep->path, sizeof ep->path), "path not terminated", text);
  require(terminated(ep->bind_address, sizeof ep->bind_address),
          "bindAddress not terminated", text);
  require(terminated(ep->cert_key, sizeof ep->cert_key),
          "certKey not terminated", text);
  require(terminated(ep->private_key, sizeof ep->private_key),
          "privateKey not terminated", text);
  require(terminated(ep->trust_roots, sizeof ep->trust_roots),
          "trustRoots not terminated", text);
  require(ep->port <= 65535, "port above 65535", text);
  require(ep->backlog >= 1 && ep->backlog <= 65535, "backlog out of range",
          text);
  require(ep->mode <= 07777, "mode above 07777", text);
  require(ep->timeout_ns > 0, "timeout not positive", text);
  require(is_bool(ep->reuseport) && is_bool(ep->ipv6only) && is_bool(ep->tls) &&
              is_bool(ep->verify),
          "a boolean field is neither 0 nor 1", text);
  switch (ep->kind) {
  case EDDY_ENDPOINT_TCP:
  case EDDY_ENDPOINT_TCP6:
    require(!client || ep->host[0] != '\0', "client without a host", text);
    require(!ep->tls || client || (ep->cert_key[0] && ep->private_key[0]),
            "TLS server without certificate and key", text);
    require(ep->kind == EDDY_ENDPOINT_TCP || ep->host[0] != '\0',
            "tcp6 server without an interface", text);
    break;
  case EDDY_ENDPOINT_UNIX:
    require(ep->path[0] != '\0', "unix without a path", text);
    break;
  case EDDY_ENDPOINT_FD:
    require(!client && ep->fd >= 0, "bad fd endpoint", text);
    break;
  case EDDY_ENDPOINT_UDP:
    require(!client && !ep->tls, "udp: as a client or with TLS", text);
    break;
  case EDDY_ENDPOINT_SYSTEMD:
    require(!client && ep->fd >= 0, "bad systemd index", text);
    require(ep->domain == AF_INET || ep->domain == AF_INET6 ||
                ep->domain == AF_UNIX,
            "bad systemd domain", text);
    break;
  default:
    require(0, "unknown kind", text);
  }
}

static void check_message(const char *err, size_t size, const char *text) {
  require(terminated(err, size), "message not terminated", text);
  require(err[0] != '\0' || size == 1, "empty message on failure", text);
  for (const char *c = err; *c != '\0'; c++)
    require(*c >= 0x20 && *c < 0x7f, "unprintable byte in message", text);
}

/* One parse with a message buffer of errlen bytes (0: a buffer that must
 * stay untouched). Returns the result; *ep gets what the parser wrote. */
static int parse_one(const char *text, int client, size_t errlen,
                     eddy_endpoint *ep) {
  eddy_endpoint before;
  char err[ERR_SIZE + 1];
  int rc;
  memset(ep, SENTINEL, sizeof *ep);
  memcpy(&before, ep, sizeof before);
  memset(err, SENTINEL, sizeof err);
  rc = client ? eddy_endpoint_parse_client(text, ep, err, errlen)
              : eddy_endpoint_parse_server(text, ep, err, errlen);
  require(rc == 0 || rc == EDDY_EPARSE, "result neither 0 nor EDDY_EPARSE",
          text);
  for (size_t i = errlen; i < sizeof err; i++)
    require((unsigned char)err[i] == SENTINEL, "wrote past the message buffer",
            text);
  if (rc == 0) {
    require(errlen == 0 || err[0] == '\0', "message on success", text);
    check_parsed(ep, client, text);
  } else {
    require(memcmp(ep, &before, sizeof before) == 0,
            "endpoint changed by a failed parse", text);
    if (errlen > 0)
      check_message(err, errlen, text);
  }
  return rc;
}

static void parse_both_ways(const char *text, int client) {
  eddy_endpoint a, b, c;
  int rc = parse_one(text, client, ERR_SIZE, &a);
  require(parse_one(text, client, 7, &b) == rc, "result depends on errlen",
          text);
  require(parse_one(text, client, 0, &c) == rc, "result depends on errlen",
          text);
  if (rc == 0)
    require(memcmp(&a, &b, sizeof a) == 0 && memcmp(&a, &c, sizeof a) == 0,
            "the same string parsed to different endpoints", text);
  /* No buffer at all is allowed too. */
  require((client ? eddy_endpoint_parse_client(text, &c, NULL, ERR_SIZE)
                  : eddy_endpoint_parse_server(text, &c, NULL, ERR_SIZE)) == rc,
          "result depends on the message buffer", text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size copy: ASan catches a read past its NUL. */
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  parse_both_ways(text, 0);
  parse_both_ways(text, 1);
  free(text);
  return 0;
}
