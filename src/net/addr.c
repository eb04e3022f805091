/* addr.c: socket addresses to and from text, and the port a socket is
 * bound to. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "net/net.h"
#include "sys/sys.h"

int eddy__sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                          size_t buflen) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    snprintf(buf, buflen, "%s:%u", ip, ntohs(in->sin_port));
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    snprintf(buf, buflen, "[%s]:%u", ip, ntohs(in6->sin6_port));
    return 0;
  }
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path)
                   ? len - offsetof(struct sockaddr_un, sun_path)
                   : 0;
    if (n == 0 || un->sun_path[0] == '\0') /* unnamed, or abstract */
      snprintf(buf, buflen, "unix:%s", n > 1 ? "@abstract" : "");
    else
      snprintf(buf, buflen, "unix:%.*s", (int)strnlen(un->sun_path, n),
               un->sun_path);
    return 0;
  }
  if (buflen > 0)
    buf[0] = '\0';
  return -EAFNOSUPPORT;
}

int eddy__sockaddr_ip(int family, const char *host, unsigned port,
                      struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (*host && inet_pton(AF_INET, host, &in->sin_addr) != 1)
      return -EINVAL;
    return (int)sizeof *in;
  }
  {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    if (*host && inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
      return -EINVAL;
    return (int)sizeof *in6;
  }
}

int eddy__sock_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int e = eddy__sys_getsockname(fd, (struct sockaddr *)&ss, &sl);
  if (e)
    return e;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -EAFNOSUPPORT;
}
