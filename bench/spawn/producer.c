/* producer.c: the child of the streaming benchmark: writes the number of
 * bytes given as its argument to stdout, 1 MiB per write(), then exits.
 * The same program for both libraries, so only the parent differs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char chunk[1 << 20];

int main(int argc, char **argv) {
  long long left = argc > 1 ? atoll(argv[1]) : 0;
  memset(chunk, 'x', sizeof chunk);
  while (left > 0) {
    size_t n = left < (long long)sizeof chunk ? (size_t)left : sizeof chunk;
    ssize_t w = write(1, chunk, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return 1;
    left -= w;
  }
  return 0;
}
