/* Socket wrappers: socket, bind, listen, accept4, connect, getsockopt,
 * setsockopt. Each is called for real and with an injected failure. */
#include "sys_test.h"

SYS_TEST_SUITE(sys_socket, sys_test_reset);
SYS_TEST_SUITE(sys_bind, sys_test_reset);
SYS_TEST_SUITE(sys_listen, sys_test_reset);
SYS_TEST_SUITE(sys_accept4, sys_test_reset);
SYS_TEST_SUITE(sys_connect, sys_test_reset);
SYS_TEST_SUITE(sys_sockopt, sys_test_reset);

Test(sys_socket, creates_nonblocking_cloexec_socket) {
  int fd = eddy__sys_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            0);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_SOCKET), 1);
  close(fd);
}

Test(sys_socket, injected_emfile_returns_error_and_opens_nothing) {
  int before = lowest_free_fd();
  eddy__fault_fail_nth(EDDY__SYS_SOCKET, 1, EMFILE);
  EXPECT_EQ(eddy__sys_socket(AF_INET, SOCK_STREAM, 0), -EMFILE);
  EXPECT_EQ(lowest_free_fd(), before);
  /* The rule fired once: the next call is real again. */
  int fd = eddy__sys_socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  close(fd);
}

Test(sys_socket, real_failure_returns_negative_errno) {
  EXPECT_EQ(eddy__sys_socket(-1, SOCK_STREAM, 0), -EAFNOSUPPORT);
}

Test(sys_bind, binds_loopback_port_zero_to_a_real_port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_OK(eddy__sys_bind(fd, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
  EXPECT_NE(ntohs(a.sin_port), 0);
  close(fd);
}

Test(sys_bind, injected_eaddrinuse_leaves_socket_unbound) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  eddy__fault_fail_nth(EDDY__SYS_BIND, 1, EADDRINUSE);
  EXPECT_EQ(eddy__sys_bind(fd, (struct sockaddr *)&a, sizeof a), -EADDRINUSE);
  EXPECT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
  EXPECT_EQ(a.sin_port, 0);
  EXPECT_EQ(a.sin_addr.s_addr, htonl(INADDR_ANY));
  close(fd);
}

Test(sys_bind, real_failure_on_bad_descriptor_returns_ebadf) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  EXPECT_EQ(eddy__sys_bind(-1, (struct sockaddr *)&a, sizeof a), -EBADF);
}

static int accept_conn(int fd) {
  int v = -1;
  socklen_t len = sizeof v;
  cr_assert(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0);
  return v;
}

Test(sys_listen, makes_socket_accept_connections) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
  EXPECT_EQ(accept_conn(fd), 0);
  EXPECT_OK(eddy__sys_listen(fd, 16));
  EXPECT_EQ(accept_conn(fd), 1);
  close(fd);
}

Test(sys_listen, injected_failure_leaves_socket_not_listening) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  eddy__fault_fail_nth(EDDY__SYS_LISTEN, 1, EADDRINUSE);
  EXPECT_EQ(eddy__sys_listen(fd, 16), -EADDRINUSE);
  EXPECT_EQ(accept_conn(fd), 0);
  close(fd);
}

Test(sys_listen, real_failure_on_non_socket_returns_enotsock) {
  int p[2];
  test_pipe(p);
  EXPECT_EQ(eddy__sys_listen(p[0], 1), -ENOTSOCK);
  close_pair(p);
}

Test(sys_accept4, accepts_with_cloexec_nonblock_and_peer_address) {
  struct sockaddr_in a, peer;
  socklen_t len = sizeof peer;
  int l = loopback_listener(&a);
  int c = loopback_client(&a);
  int s = eddy__sys_accept4(l, (struct sockaddr *)&peer, &len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT_GE(s, 0);
  EXPECT_EQ(len, sizeof peer);
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(fcntl(s, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(s, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  close(s);
  close(c);
  close(l);
}

Test(sys_accept4, empty_queue_returns_eagain) {
  struct sockaddr_in a;
  int l = loopback_listener(&a);
  EXPECT_EQ(eddy__sys_accept4(l, NULL, NULL, SOCK_CLOEXEC), -EAGAIN);
  close(l);
}

Test(sys_accept4, injected_emfile_leaves_connection_queued) {
  struct sockaddr_in a;
  int l = loopback_listener(&a);
  int c = loopback_client(&a);
  int before = lowest_free_fd();
  eddy__fault_fail_nth(EDDY__SYS_ACCEPT4, 1, EMFILE);
  EXPECT_EQ(eddy__sys_accept4(l, NULL, NULL, SOCK_CLOEXEC), -EMFILE);
  EXPECT_EQ(lowest_free_fd(), before);
  int s = eddy__sys_accept4(l, NULL, NULL, SOCK_CLOEXEC);
  EXPECT_GE(s, 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_ACCEPT4), 2);
  close(s);
  close(c);
  close(l);
}

Test(sys_accept4, retries_eintr_and_returns_connection) {
  struct sockaddr_in a;
  int l = loopback_listener(&a);
  int c = loopback_client(&a);
  eddy__fault_fail_nth(EDDY__SYS_ACCEPT4, 1, EINTR);
  int s = eddy__sys_accept4(l, NULL, NULL, SOCK_CLOEXEC);
  EXPECT_GE(s, 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_ACCEPT4), 2);
  close(s);
  close(c);
  close(l);
}

Test(sys_connect, connects_to_loopback_listener) {
  struct sockaddr_in a;
  int l = loopback_listener(&a);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_OK(eddy__sys_connect(c, (struct sockaddr *)&a, sizeof a));
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  EXPECT_GE(s, 0);
  close(s);
  close(c);
  close(l);
}

Test(sys_connect, nonblocking_connect_returns_einprogress_or_zero) {
  struct sockaddr_in a;
  int l = loopback_listener(&a);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int r = eddy__sys_connect(c, (struct sockaddr *)&a, sizeof a);
  cr_assert(r == 0 || r == -EINPROGRESS, "connect returned %d", r);
  close(c);
  close(l);
}

Test(sys_connect, refused_port_returns_econnrefused) {
  /* A bound socket that never listens: connecting to its port is refused. */
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_OK(bind(b, (struct sockaddr *)&a, sizeof a));
  EXPECT_OK(getsockname(b, (struct sockaddr *)&a, &len));
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(eddy__sys_connect(c, (struct sockaddr *)&a, sizeof a),
            -ECONNREFUSED);
  close(c);
  close(b);
}

Test(sys_connect, injected_econnrefused_leaves_socket_unconnected) {
  struct sockaddr_in a, peer;
  socklen_t len = sizeof peer;
  int l = loopback_listener(&a);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  eddy__fault_fail_nth(EDDY__SYS_CONNECT, 1, ECONNREFUSED);
  EXPECT_EQ(eddy__sys_connect(c, (struct sockaddr *)&a, sizeof a),
            -ECONNREFUSED);
  EXPECT_EQ(getpeername(c, (struct sockaddr *)&peer, &len), -1);
  EXPECT_EQ(errno, ENOTCONN);
  EXPECT_EQ(accept4(l, NULL, NULL, SOCK_CLOEXEC), -1);
  EXPECT_EQ(errno, EAGAIN);
  close(c);
  close(l);
}

Test(sys_connect, eintr_is_not_retried_and_becomes_einprogress) {
  struct sockaddr_in a, peer;
  socklen_t plen = sizeof peer;
  int l = loopback_listener(&a);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct pollfd p = {.fd = c, .events = POLLOUT};
  eddy__fault_fail_nth(EDDY__SYS_CONNECT, 1, EINTR);
  EXPECT_EQ(eddy__sys_connect(c, (struct sockaddr *)&a, sizeof a),
            -EINPROGRESS);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_CONNECT), 1);
  /* As after a real EINTR, the attempt is under way and completes. */
  EXPECT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_OK(getpeername(c, (struct sockaddr *)&peer, &plen));
  close(c);
  close(l);
}

Test(sys_sockopt, set_then_get_reads_the_value_back) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1, v = 0;
  socklen_t len = sizeof v;
  EXPECT_OK(eddy__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  EXPECT_OK(eddy__sys_getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &len));
  EXPECT_EQ(v, 1);
  EXPECT_EQ(len, sizeof v);
  len = sizeof v;
  EXPECT_OK(eddy__sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len));
  EXPECT_EQ(v, SOCK_STREAM);
  close(fd);
}

Test(sys_sockopt, injected_setsockopt_failure_leaves_option_unchanged) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1, v = -1;
  socklen_t len = sizeof v;
  eddy__fault_fail_nth(EDDY__SYS_SETSOCKOPT, 1, ENOPROTOOPT);
  EXPECT_EQ(eddy__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on),
            -ENOPROTOOPT);
  EXPECT_OK(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &len));
  EXPECT_EQ(v, 0);
  close(fd);
}

Test(sys_sockopt, injected_getsockopt_failure_leaves_output_untouched) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int v = 12345;
  socklen_t len = sizeof v;
  eddy__fault_fail_nth(EDDY__SYS_GETSOCKOPT, 1, EBADF);
  EXPECT_EQ(eddy__sys_getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len), -EBADF);
  EXPECT_EQ(v, 12345);
  EXPECT_EQ(len, sizeof v);
  close(fd);
}

Test(sys_sockopt, real_failures_return_negative_errno) {
  int v = 0;
  socklen_t len = sizeof v;
  EXPECT_EQ(eddy__sys_getsockopt(-1, SOL_SOCKET, SO_ERROR, &v, &len), -EBADF);
  EXPECT_EQ(eddy__sys_setsockopt(-1, SOL_SOCKET, SO_ERROR, &v, len), -EBADF);
}
