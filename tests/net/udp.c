/* UDP: datagrams with the sender's address, bounded reads per turn, drops
 * counted, EMSGSIZE returned, ICMP errors reported, options. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "sys/fault.h"

typedef struct inbox {
  int count, errors, last_err;
  char data[256];
  size_t len;
  unsigned from_port;
} inbox;

static void on_recv(eddy_udp *u, const char *data, size_t len,
                    const struct sockaddr *from, socklen_t fromlen, void *arg) {
  inbox *b = arg;
  (void)u;
  (void)fromlen;
  b->count++;
  b->len = len < sizeof b->data ? len : sizeof b->data;
  memcpy(b->data, data, b->len);
  b->from_port = ntohs(from->sa_family == AF_INET
                           ? ((const struct sockaddr_in *)from)->sin_port
                           : ((const struct sockaddr_in6 *)from)->sin6_port);
}

static void on_error(eddy_udp *u, int err, void *arg) {
  inbox *b = arg;
  (void)u;
  b->errors++;
  b->last_err = err;
}

static socklen_t addr_of(const char *ip, int port,
                         struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    return sizeof *a;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &a->sin_addr);
  return sizeof *a;
}

static void round_trip(const char *ip) {
  eddy_loop *loop = test_loop();
  eddy_udp *a, *b;
  inbox ia = {0}, ib = {0};
  struct sockaddr_storage to;
  socklen_t tl;
  EXPECT_OK(eddy_udp_open(loop, ip, 0, 0, on_recv, &ia, &a));
  EXPECT_OK(eddy_udp_open(loop, ip, 0, 0, on_recv, &ib, &b));
  tl = addr_of(ip, eddy_udp_port(b), &to);
  EXPECT_OK(eddy_udp_send(a, "datagram", 8, (struct sockaddr *)&to, tl));
  for (int i = 0; i < 100 && ib.count == 0; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(ib.count, 1);
  EXPECT_EQ(ib.len, 8);
  cr_assert(memcmp(ib.data, "datagram", 8) == 0);
  EXPECT_EQ(ib.from_port, eddy_udp_port(a));
  eddy_udp_close(a);
  eddy_udp_close(b);
  test_finish(loop);
}

Test(udp, a_datagram_arrives_with_its_sender_ipv4) {
  round_trip("127.0.0.1");
}

Test(udp, a_datagram_arrives_with_its_sender_ipv6) {
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_storage ss;
  socklen_t l = addr_of("::1", 0, &ss);
  int ok = fd >= 0 && bind(fd, (struct sockaddr *)&ss, l) == 0;
  if (fd >= 0)
    close(fd);
  if (!ok)
    cr_skip_test("no ::1 on this machine");
  round_trip("::1");
}

Test(udp, at_most_64_datagrams_are_read_per_turn) {
  eddy_loop *loop = test_loop();
  eddy_udp *a, *b;
  inbox ia = {0}, ib = {0};
  struct sockaddr_storage to;
  socklen_t tl;
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ia, &a));
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ib, &b));
  tl = addr_of("127.0.0.1", eddy_udp_port(b), &to);
  for (int i = 0; i < 100; i++)
    EXPECT_OK(eddy_udp_send(a, "x", 1, (struct sockaddr *)&to, tl));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(ib.count, 64);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(ib.count, 100);
  test_finish(loop);
}

Test(udp, a_datagram_the_kernel_cannot_take_now_is_dropped_and_counted) {
  eddy_loop *loop = test_loop();
  eddy_udp *a;
  inbox ia = {0};
  struct sockaddr_storage to;
  socklen_t tl = addr_of("127.0.0.1", 9, &to);
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ia, &a));
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, EAGAIN);
  EXPECT_OK(eddy_udp_send(a, "x", 1, (struct sockaddr *)&to, tl));
  eddy__fault_fail_nth(EDDY__SYS_SENDMSG, 1, ENOBUFS);
  EXPECT_OK(eddy_udp_send(a, "x", 1, (struct sockaddr *)&to, tl));
  EXPECT_EQ(eddy_udp_dropped(a), 2);
  test_finish(loop);
}

Test(udp, a_datagram_too_large_is_emsgsize) {
  eddy_loop *loop = test_loop();
  eddy_udp *a;
  inbox ia = {0};
  static char big[70000];
  struct sockaddr_storage to;
  socklen_t tl = addr_of("127.0.0.1", 9, &to);
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ia, &a));
  EXPECT_EQ(eddy_udp_send(a, big, sizeof big, (struct sockaddr *)&to, tl),
            -EMSGSIZE);
  EXPECT_EQ(eddy_udp_dropped(a), 0);
  test_finish(loop);
}

/* Nothing listens at the peer: the kernel's ICMP port unreachable comes
 * back as ECONNREFUSED on the connected socket, which stays usable. */
Test(udp, icmp_errors_on_a_connected_socket_are_reported) {
  eddy_loop *loop = test_loop();
  eddy_udp *a, *gone, *b;
  inbox ia = {0}, ig = {0}, ib = {0};
  int dead;
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ig, &gone));
  dead = eddy_udp_port(gone);
  eddy_udp_close(gone);
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ia, &a));
  eddy_udp_on_error(a, on_error);
  EXPECT_OK(eddy_udp_connect(a, "127.0.0.1", (unsigned)dead));
  EXPECT_OK(eddy_udp_send(a, "ping", 4, NULL, 0));
  for (int i = 0; i < 100 && ia.errors == 0; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(ia.errors, 1);
  EXPECT_EQ(ia.last_err, -ECONNREFUSED);
  /* Still usable: connect elsewhere and talk. */
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ib, &b));
  EXPECT_OK(eddy_udp_connect(a, "127.0.0.1", (unsigned)eddy_udp_port(b)));
  EXPECT_OK(eddy_udp_send(a, "pong", 4, NULL, 0));
  for (int i = 0; i < 100 && ib.count == 0; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(ib.count, 1);
  test_finish(loop);
}

Test(udp, options_and_bad_arguments) {
  eddy_loop *loop = test_loop();
  eddy_udp *a, *b;
  inbox ia = {0};
  EXPECT_EQ(eddy_udp_open(loop, "not-an-ip", 0, 0, on_recv, &ia, &a), -EINVAL);
  EXPECT_EQ(eddy_udp_open(loop, "127.0.0.1", 70000, 0, on_recv, &ia, &a),
            -EINVAL);
  EXPECT_EQ(eddy_udp_open(loop, "127.0.0.1", 0, 0, NULL, &ia, &a), -EINVAL);
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 1, on_recv, &ia, &a));
  EXPECT_OK(eddy_udp_set_broadcast(a, 1));
  EXPECT_EQ(eddy_udp_join(a, "not-a-group", NULL), -EINVAL);
  EXPECT_EQ(eddy_udp_leave(a, "239.1.2.3", "bad-iface"), -EINVAL);
  EXPECT_EQ(eddy_udp_connect(a, "::1", 9), -EINVAL); /* wrong family */
  eddy__fault_fail_nth(EDDY__SYS_BIND, 1, EADDRINUSE);
  EXPECT_EQ(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ia, &b),
            -EADDRINUSE);
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, &ia, &b), -ENOMEM);
  eddy_udp_close(a);
  EXPECT_EQ(eddy_udp_send(a, "x", 1, NULL, 0), EDDY_ECLOSED);
  test_finish(loop);
}

/* Multicast over loopback needs a multicast route, which a test machine
 * may not have: joining either works, and then leaving works, or fails
 * with the kernel's reason, and nothing else happens. */
Test(udp, multicast_join_and_leave) {
  eddy_loop *loop = test_loop();
  eddy_udp *a;
  inbox ia = {0};
  int err;
  EXPECT_OK(eddy_udp_open(loop, "0.0.0.0", 0, 1, on_recv, &ia, &a));
  err = eddy_udp_join(a, "239.255.42.99", "127.0.0.1");
  if (err == 0) {
    EXPECT_OK(eddy_udp_leave(a, "239.255.42.99", "127.0.0.1"));
    EXPECT_EQ(eddy_udp_leave(a, "239.255.42.99", "127.0.0.1"), -EADDRNOTAVAIL);
  } else {
    cr_assert(err == -ENODEV || err == -EADDRNOTAVAIL || err == -ENOBUFS, "%s",
              eddy_errname(err));
  }
  test_finish(loop);
}

/* ---- udp: server endpoints ---- */

Test(udp, endpoint_parses_port_interface_and_reuseport) {
  eddy_endpoint ep;
  char err[128];
  EXPECT_OK(eddy_endpoint_parse_server("udp:5353", &ep, err, sizeof err));
  EXPECT_EQ(ep.kind, EDDY_ENDPOINT_UDP);
  EXPECT_EQ(ep.port, 5353);
  cr_assert_str_eq(ep.host, "");
  EXPECT_OK(eddy_endpoint_parse_server("udp:53:interface=[::1]:reuseport=1",
                                       &ep, err, sizeof err));
  cr_assert_str_eq(ep.host, "::1");
  EXPECT_EQ(ep.reuseport, 1);
  EXPECT_OK(eddy_endpoint_parse_server("udp:port=53:interface=127.0.0.2", &ep,
                                       err, sizeof err));
  cr_assert_str_eq(ep.host, "127.0.0.2");
}

Test(udp, endpoint_refuses_what_a_datagram_socket_cannot_take) {
  static const struct {
    const char *text, *fragment;
  } bad[] = {
      {"udp", "missing port"},
      {"udp:70000", "port"},
      {"udp:53:interface=localhost", "not a numeric IPv4 or IPv6 address"},
      {"udp:53:backlog=5", "backlog"},
      {"udp:53:certKey=x.pem", "certKey"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eddy_endpoint ep;
    char err[160] = "";
    EXPECT_EQ(eddy_endpoint_parse_server(bad[i].text, &ep, err, sizeof err),
              EDDY_EPARSE);
    cr_assert(strstr(err, bad[i].fragment) != NULL, "%s: %s", bad[i].text, err);
  }
  /* It is a server kind only. */
  eddy_endpoint ep;
  char err[160] = "";
  EXPECT_EQ(eddy_endpoint_parse_client("udp:host=1.2.3.4:port=53", &ep, err,
                                       sizeof err),
            EDDY_EPARSE);
  cr_assert(strstr(err, "not a client endpoint") != NULL, "%s", err);
}

Test(udp, endpoint_opens_a_socket_and_a_listener_refuses_it) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_udp *server, *client;
  eddy_listener *l;
  inbox in = {0};
  char err[160];
  struct sockaddr_storage to;
  socklen_t tl;
  EXPECT_OK(eddy_endpoint_parse_server("udp:0:interface=127.0.0.1", &ep, err,
                                       sizeof err));
  EXPECT_OK(eddy_udp_open_endpoint(loop, &ep, on_recv, &in, &server, err,
                                   sizeof err));
  EXPECT_EQ(eddy_listener_open(loop, &ep, NULL, NULL, &l, err, sizeof err),
            -EINVAL);
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, NULL, &client));
  tl = addr_of("127.0.0.1", eddy_udp_port(server), &to);
  EXPECT_OK(eddy_udp_send(client, "q", 1, (struct sockaddr *)&to, tl));
  for (int i = 0; i < 100 && in.count == 0; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(in.count, 1);
  EXPECT_EQ(in.from_port, eddy_udp_port(client));
  eddy_udp_close(client);
  eddy_udp_close(server);
  test_finish(loop);
}

static void accept_nothing(eddy_listener *l, eddy_stream *s, void *arg) {
  (void)l;
  (void)arg;
  eddy_stream_abort(s);
}

Test(udp, listener_refuses_a_udp_endpoint_by_name) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_listener *l;
  char err[160] = "";
  EXPECT_OK(eddy_endpoint_parse_server("udp:0", &ep, err, sizeof err));
  EXPECT_EQ(eddy_listener_open(loop, &ep, accept_nothing, NULL, &l, err,
                               sizeof err),
            -EINVAL);
  cr_assert(strstr(err, "datagram") != NULL, "%s", err);
  test_finish(loop);
}

Test(udp, endpoint_reuseport_lets_two_sockets_share_a_port) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_udp *a, *b, *c;
  char text[64], err[160];
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, on_recv, NULL, &c));
  int port = eddy_udp_port(c);
  eddy_udp_close(c);
  snprintf(text, sizeof text, "udp:%d:interface=127.0.0.1:reuseport=1", port);
  EXPECT_OK(eddy_endpoint_parse_server(text, &ep, err, sizeof err));
  EXPECT_OK(
      eddy_udp_open_endpoint(loop, &ep, on_recv, NULL, &a, err, sizeof err));
  EXPECT_OK(
      eddy_udp_open_endpoint(loop, &ep, on_recv, NULL, &b, err, sizeof err));
  /* Without it, the port is taken, and the message says where. */
  snprintf(text, sizeof text, "udp:%d:interface=127.0.0.1", port);
  EXPECT_OK(eddy_endpoint_parse_server(text, &ep, err, sizeof err));
  EXPECT_EQ(eddy_udp_open_endpoint(loop, &ep, on_recv, NULL, &c, err,
                                   sizeof err),
            -EADDRINUSE);
  cr_assert(strstr(err, "127.0.0.1") != NULL, "%s", err);
  eddy_udp_close(a);
  eddy_udp_close(b);
  test_finish(loop);
}

Test(udp, endpoint_of_another_kind_is_refused) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_udp *u;
  char err[160];
  EXPECT_OK(eddy_endpoint_parse_server("tcp:0", &ep, err, sizeof err));
  EXPECT_EQ(eddy_udp_open_endpoint(loop, &ep, on_recv, NULL, &u, err,
                                   sizeof err),
            -EINVAL);
  cr_assert(strstr(err, "udp") != NULL, "%s", err);
  test_finish(loop);
}

/* ---- Batching ---- */

static inbox *u_arg_errors;

static void batch_error(eddy_udp *u, int err, void *arg) {
  (void)arg;
  on_error(u, err, u_arg_errors);
}

/* A server that echoes each datagram back to its sender, from inside the
 * receive callback; big_reply makes each echo larger than a held slot. */
typedef struct echo_server {
  int received;
  size_t reply_len;
  int close_after; /* close the socket after this many (0: never) */
  int send_err;
} echo_server;

static void echo_recv(eddy_udp *u, const char *data, size_t len,
                      const struct sockaddr *from, socklen_t fromlen,
                      void *arg) {
  static char big[4096];
  echo_server *e = arg;
  e->received++;
  if (e->reply_len) {
    memset(big, 'b', sizeof big);
    memcpy(big, data, len < 8 ? len : 8);
    e->send_err = eddy_udp_send(u, big, e->reply_len, from, fromlen);
  } else {
    e->send_err = eddy_udp_send(u, data, len, from, fromlen);
  }
  if (e->close_after && e->received == e->close_after)
    eddy_udp_close(u);
}

/* Sends n numbered datagrams from a plain socket to port. */
static int plain_client(int port, int n) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_storage to;
  socklen_t tl = addr_of("127.0.0.1", port, &to);
  cr_assert(fd >= 0);
  for (int i = 0; i < n; i++) {
    char msg[16];
    int len = snprintf(msg, sizeof msg, "d%03d", i);
    cr_assert(sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&to, tl) ==
              len);
  }
  return fd;
}

/* Reads datagrams from fd until n arrived or 5 s passed; returns the count
 * and checks each carries one of the numbers sent, in order. */
static int read_echoes(int fd, int n, size_t len) {
  int got = 0;
  int64_t end = test_clock_ms() + 5000;
  while (got < n && test_clock_ms() < end) {
    char buf[8192], want[16];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0) {
      usleep(1000);
      continue;
    }
    snprintf(want, sizeof want, "d%03d", got);
    cr_assert(memcmp(buf, want, 4) == 0, "echo %d out of order", got);
    if (len)
      EXPECT_EQ((size_t)r, len);
    got++;
  }
  return got;
}

static void batch_round(size_t reply_len, int n, int *syscalls) {
  eddy_loop *loop = test_loop();
  eddy_udp *u;
  echo_server e = {.reply_len = reply_len};
  uint64_t rcalls, scalls, single;
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, echo_recv, &e, &u));
  EXPECT_OK(eddy_udp_set_batching(u, 1));
  int fd = plain_client(eddy_udp_port(u), n);
  rcalls = eddy__fault_calls(EDDY__SYS_RECVMMSG);
  scalls = eddy__fault_calls(EDDY__SYS_SENDMMSG);
  single = eddy__fault_calls(EDDY__SYS_SENDMSG);
  for (int i = 0; i < 100 && e.received < n; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(e.received, n);
  EXPECT_EQ(read_echoes(fd, n, reply_len), n);
  syscalls[0] = (int)(eddy__fault_calls(EDDY__SYS_RECVMMSG) - rcalls);
  syscalls[1] = (int)(eddy__fault_calls(EDDY__SYS_SENDMMSG) - scalls);
  syscalls[2] = (int)(eddy__fault_calls(EDDY__SYS_SENDMSG) - single);
  EXPECT_EQ(eddy_udp_dropped(u), 0);
  close(fd);
  eddy_udp_close(u);
  test_finish(loop);
}

Test(udp, batching_reads_and_answers_many_datagrams_per_system_call) {
  int calls[3];
  batch_round(0, 20, calls);
  /* 20 datagrams queued before the loop ran: one read, one send. */
  EXPECT_EQ(calls[0], 1);
  EXPECT_EQ(calls[1], 1);
  EXPECT_EQ(calls[2], 0);
}

Test(udp, batching_takes_more_than_a_batch_in_order) {
  int calls[3];
  batch_round(0, 50, calls);
  cr_assert(calls[0] >= 2, "%d reads", calls[0]);
  cr_assert(calls[1] >= 2 && calls[1] <= calls[0], "%d sends", calls[1]);
}

Test(udp, batching_sends_a_large_reply_alone_and_in_order) {
  int calls[3];
  batch_round(3000, 6, calls);
  EXPECT_EQ(calls[2], 6);
  EXPECT_EQ(calls[1], 0);
}

Test(udp, batching_flushes_held_replies_when_the_socket_closes) {
  eddy_loop *loop = test_loop();
  eddy_udp *u;
  echo_server e = {.close_after = 3};
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, echo_recv, &e, &u));
  EXPECT_OK(eddy_udp_set_batching(u, 1));
  int fd = plain_client(eddy_udp_port(u), 10);
  for (int i = 0; i < 100 && e.received < 3; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(e.received, 3); /* no callback after the close */
  EXPECT_EQ(read_echoes(fd, 3, 0), 3);
  close(fd);
  test_finish(loop);
}

Test(udp, batching_counts_replies_the_kernel_refuses) {
  eddy_loop *loop = test_loop();
  eddy_udp *u;
  echo_server e = {0};
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, echo_recv, &e, &u));
  EXPECT_OK(eddy_udp_set_batching(u, 1));
  int fd = plain_client(eddy_udp_port(u), 5);
  eddy__fault_fail_nth(EDDY__SYS_SENDMMSG, 1, EAGAIN);
  for (int i = 0; i < 100 && e.received < 5; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  eddy__fault_reset();
  EXPECT_EQ(e.received, 5);
  EXPECT_EQ(e.send_err, 0);
  EXPECT_EQ(eddy_udp_dropped(u), 5);
  close(fd);
  eddy_udp_close(u);
  test_finish(loop);
}

Test(udp, batching_reports_a_read_error_and_goes_on) {
  eddy_loop *loop = test_loop();
  eddy_udp *u;
  echo_server e = {0};
  inbox errs = {0};
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, echo_recv, &e, &u));
  EXPECT_OK(eddy_udp_set_batching(u, 1));
  u_arg_errors = &errs;
  eddy_udp_on_error(u, batch_error);
  int fd = plain_client(eddy_udp_port(u), 4);
  eddy__fault_fail_nth(EDDY__SYS_RECVMMSG, 1, ECONNREFUSED);
  for (int i = 0; i < 100 && e.received < 4; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  eddy__fault_reset();
  EXPECT_EQ(errs.errors, 1);
  EXPECT_EQ(errs.last_err, -ECONNREFUSED);
  EXPECT_EQ(e.received, 4);
  EXPECT_EQ(read_echoes(fd, 4, 0), 4);
  close(fd);
  eddy_udp_close(u);
  test_finish(loop);
}

Test(udp, batching_out_of_memory_and_off_again) {
  eddy_loop *loop = test_loop();
  eddy_udp *u;
  echo_server e = {0};
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, echo_recv, &e, &u));
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_udp_set_batching(u, 1), -ENOMEM);
  eddy__fault_reset();
  EXPECT_OK(eddy_udp_set_batching(u, 1));
  EXPECT_OK(eddy_udp_set_batching(u, 0));
  /* Plain reads again: the echo still works. */
  int fd = plain_client(eddy_udp_port(u), 3);
  uint64_t before = eddy__fault_calls(EDDY__SYS_RECVMMSG);
  for (int i = 0; i < 100 && e.received < 3; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_RECVMMSG), before);
  EXPECT_EQ(read_echoes(fd, 3, 0), 3);
  close(fd);
  eddy_udp_close(u);
  EXPECT_EQ(eddy_udp_set_batching(u, 1), EDDY_ECLOSED);
  test_finish(loop);
}

Test(udp, batching_counts_a_refused_reply_and_sends_the_rest) {
  eddy_loop *loop = test_loop();
  eddy_udp *u;
  echo_server e = {0};
  EXPECT_OK(eddy_udp_open(loop, "127.0.0.1", 0, 0, echo_recv, &e, &u));
  EXPECT_OK(eddy_udp_set_batching(u, 1));
  int fd = plain_client(eddy_udp_port(u), 5);
  /* The kernel refuses the first held reply outright: that one is
   * counted, the next call sends the other four. */
  eddy__fault_fail_nth(EDDY__SYS_SENDMMSG, 1, EPERM);
  for (int i = 0; i < 100 && e.received < 5; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  eddy__fault_reset();
  EXPECT_EQ(e.received, 5);
  EXPECT_EQ(eddy_udp_dropped(u), 1);
  int got = 0;
  int64_t end = test_clock_ms() + 5000;
  while (got < 4 && test_clock_ms() < end) {
    char buf[64];
    if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
      got++;
    else
      usleep(1000);
  }
  EXPECT_EQ(got, 4);
  close(fd);
  eddy_udp_close(u);
  test_finish(loop);
}

Test(udp, endpoint_reuseport_that_fails_closes_the_socket) {
  eddy_loop *loop = test_loop();
  eddy_endpoint ep;
  eddy_udp *u;
  char err[160];
  EXPECT_OK(eddy_endpoint_parse_server("udp:0:interface=127.0.0.1:reuseport=1",
                                       &ep, err, sizeof err));
  int fd = dup(0), next;
  close(fd); /* the lowest free descriptor: the socket's, if it leaked */
  eddy__fault_fail_nth(EDDY__SYS_SETSOCKOPT, 1, ENOPROTOOPT);
  EXPECT_EQ(eddy_udp_open_endpoint(loop, &ep, on_recv, NULL, &u, err,
                                   sizeof err),
            -ENOPROTOOPT);
  eddy__fault_reset();
  cr_assert(strstr(err, "127.0.0.1") != NULL, "%s", err);
  next = dup(0);
  EXPECT_EQ(next, fd);
  close(next);
  test_finish(loop);
}
