/* eddy_stream_sendfile_owned: the file's bytes arrive and its descriptor
 * is closed once sent, when the stream closes first, or at once when the
 * call fails. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static int temp_file(size_t size) {
  char path[] = "/tmp/eddy-sendfile-XXXXXX";
  int fd = mkstemp(path);
  char *data = malloc(size);
  cr_assert(fd >= 0 && data != NULL);
  unlink(path);
  for (size_t i = 0; i < size; i++)
    data[i] = (char)('a' + i % 26);
  cr_assert(write(fd, data, size) == (ssize_t)size);
  free(data);
  return fd;
}

static int is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

Test(sendfile_owned, the_bytes_arrive_and_the_file_is_closed) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  int fd = temp_file(300000);
  static char got[300000];
  size_t n = 0;
  EXPECT_OK(eddy_stream_sendfile_owned(p.s, fd, 1000, 200000));
  while (n < 200000) {
    ssize_t r;
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
    r = test_read_ready(peer, got + n, sizeof got - n, 5000);
    cr_assert(r > 0, "the bytes stopped at %zu", n);
    n += (size_t)r;
  }
  EXPECT_EQ(n, 200000);
  cr_expect(got[0] == 'a' + 1000 % 26);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(eddy_stream_buffered(p.s), 0);
  cr_expect(is_open(fd) == 0, "the file is still open");
  close(peer);
  test_peer_free(&p);
  test_finish(loop);
}

Test(sendfile_owned, a_stream_that_closes_first_closes_the_file) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  int fd = temp_file(4 << 20);
  EXPECT_OK(eddy_stream_sendfile_owned(p.s, fd, 0, 4 << 20));
  cr_assert(eddy_stream_buffered(p.s) > 0); /* the peer reads nothing */
  cr_expect(is_open(fd));
  eddy_stream_abort(p.s);
  cr_expect(is_open(fd) == 0);
  close(peer);
  test_peer_free(&p);
  test_finish(loop);
}

Test(sendfile_owned, a_failed_call_closes_the_file_at_once) {
  eddy_loop *loop = test_loop();
  test_peer p = {0};
  int peer = test_peer_socketpair(loop, &p);
  int fd = temp_file(10);
  EXPECT_EQ(eddy_stream_sendfile_owned(p.s, fd, -1, 10), -EINVAL);
  cr_expect(is_open(fd) == 0);
  fd = temp_file(10);
  EXPECT_OK(eddy_stream_sendfile_owned(p.s, fd, 0, 0));
  cr_expect(is_open(fd) == 0);
  fd = temp_file(10);
  EXPECT_OK(eddy_stream_shutdown(p.s));
  EXPECT_EQ(eddy_stream_sendfile_owned(p.s, fd, 0, 10), EDDY_ECLOSED);
  cr_expect(is_open(fd) == 0);
  close(peer);
  eddy_stream_abort(p.s);
  test_peer_free(&p);
  test_finish(loop);
}
