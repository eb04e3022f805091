/* Connecting: numeric and named hosts, refusals, resolution that fails or
 * is slow, timeouts, cancellation, Happy Eyeballs, Unix paths, faults. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"
#include "net/net.h"

#define MS EDDY_NSEC_PER_MSEC

/* A listening socket on 127.0.0.1 (backlog as given); returns its port. */
static int raw_listener(int *fd, int backlog) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(*fd, 0);
  cr_assert(bind(*fd, (struct sockaddr *)&a, sizeof a) == 0);
  cr_assert(listen(*fd, backlog) == 0);
  cr_assert(getsockname(*fd, (struct sockaddr *)&a, &len) == 0);
  return ntohs(a.sin_port);
}

static int closed_port(void) {
  int fd, port = raw_listener(&fd, 1);
  close(fd);
  return port;
}

static eddy_endpoint tcp_ep(const char *host, int port) {
  eddy_endpoint ep;
  char text[300], err[200];
  snprintf(text, sizeof text, "tcp:host=%s:port=%d", host, port);
  EXPECT_OK(eddy_endpoint_parse_client(text, &ep, err, sizeof err));
  return ep;
}

static void run_until_called(eddy_loop *loop, test_connect_result *r) {
  for (int i = 0; i < 10000 && r->calls == 0; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
}

Test(connect, to_a_numeric_address_gives_a_working_stream) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd, 8), peer;
  test_connect_result r = {0};
  eddy_endpoint ep = tcp_ep("127.0.0.1", port);
  char buf[8];
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  EXPECT_EQ(r.calls, 0); /* never from inside the call */
  run_until_called(loop, &r);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, 0);
  cr_assert(r.s != NULL);
  peer = accept(lfd, NULL, NULL);
  cr_assert(peer >= 0);
  EXPECT_OK(eddy_stream_write(r.s, "hi", 2));
  EXPECT_EQ(read(peer, buf, sizeof buf), 2);
  eddy_stream_close(r.s);
  close(peer);
  close(lfd);
  test_finish(loop);
}

Test(connect, a_refused_connection_says_where) {
  eddy_loop *loop = test_loop();
  int port = closed_port();
  test_connect_result r = {0};
  char want[64];
  {
    eddy_endpoint ep = tcp_ep("127.0.0.1", port);
    EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  }
  run_until_called(loop, &r);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -ECONNREFUSED);
  EXPECT_EQ(r.s, 0);
  snprintf(want, sizeof want, "127.0.0.1 port %d", port);
  cr_assert(strstr(r.detail, want) != NULL, "%s", r.detail);
  test_finish(loop);
}

Test(connect, a_host_name_is_resolved_on_the_pool) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd, 8);
  test_connect_result r = {0};
  eddy_endpoint ep = tcp_ep("localhost", port);
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 1);
  /* localhost may resolve to ::1 first, where nothing listens: Happy
   * Eyeballs moves on to 127.0.0.1. */
  EXPECT_EQ(r.status, 0);
  eddy_stream_abort(r.s);
  close(lfd);
  test_finish(loop);
}

static int fail_resolve(const char *host, unsigned port,
                        struct sockaddr_storage *out, socklen_t *lens,
                        int max) {
  (void)host;
  (void)port;
  (void)out;
  (void)lens;
  (void)max;
  return EDDY_ERESOLVE;
}

Test(connect, a_name_that_does_not_resolve_is_named_in_the_error) {
  eddy_loop *loop = test_loop();
  test_connect_result r = {0};
  eddy_endpoint ep = tcp_ep("no-such-host.invalid", 80);
  eddy__resolve_hook = fail_resolve;
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, EDDY_ERESOLVE);
  cr_assert(strstr(r.detail, "no-such-host.invalid") != NULL, "%s", r.detail);
  test_finish(loop);
}

static int slow_port;
static int slow_resolve(const char *host, unsigned port,
                        struct sockaddr_storage *out, socklen_t *lens,
                        int max) {
  (void)host;
  (void)max;
  usleep(400000);
  lens[0] = (socklen_t)eddy__sockaddr_ip(AF_INET, "127.0.0.1", port, &out[0]);
  return 1;
}

/* Resolution that takes long delays nobody else. */
Test(connect, a_slow_resolution_does_not_delay_other_connections) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd, 8);
  test_connect_result slow = {0}, fast = {0};
  eddy_endpoint named = tcp_ep("slow.example", port),
                num = tcp_ep("127.0.0.1", port);
  slow_port = port;
  eddy__resolve_hook = slow_resolve;
  EXPECT_OK(eddy_connect_endpoint(loop, &named, test_on_connect, &slow, NULL));
  EXPECT_OK(eddy_connect_endpoint(loop, &num, test_on_connect, &fast, NULL));
  run_until_called(loop, &fast);
  EXPECT_EQ(fast.status, 0);
  EXPECT_EQ(slow.calls, 0); /* still resolving */
  run_until_called(loop, &slow);
  EXPECT_EQ(slow.status, 0);
  eddy_stream_abort(fast.s);
  eddy_stream_abort(slow.s);
  close(lfd);
  test_finish(loop);
}

Test(connect, the_endpoint_timeout_ends_a_slow_attempt) {
  eddy_loop *loop = test_loop();
  test_connect_result r = {0};
  eddy_endpoint ep;
  char err[100];
  eddy__resolve_hook = slow_resolve;
  EXPECT_OK(
      eddy_endpoint_parse_client("tcp:host=slow.example:port=9:timeout=0.1",
                                 &ep, err, sizeof err));
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -ETIMEDOUT);
  test_finish(loop);
}

Test(connect, cancel_reports_ecanceled_once_while_resolving_or_connecting) {
  eddy_loop *loop = test_loop();
  test_connect_result a = {0}, b = {0};
  eddy_connect *ra, *rb;
  int lfd, port = raw_listener(&lfd, 0), c1, c2;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  eddy_endpoint named = tcp_ep("slow.example", 9),
                full = tcp_ep("127.0.0.1", port);
  /* Fill the backlog so that a new connection hangs in the handshake. */
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c1 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  (void)connect(c1, (struct sockaddr *)&sa, sizeof sa);
  (void)connect(c2, (struct sockaddr *)&sa, sizeof sa);
  eddy__resolve_hook = slow_resolve;
  EXPECT_OK(eddy_connect_endpoint(loop, &named, test_on_connect, &a, &ra));
  EXPECT_OK(eddy_connect_endpoint(loop, &full, test_on_connect, &b, &rb));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  eddy_connect_cancel(ra);
  eddy_connect_cancel(rb);
  eddy_connect_cancel(rb); /* twice: still one callback */
  EXPECT_EQ(a.calls + b.calls, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(a.status, -ECANCELED);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(b.status, -ECANCELED);
  close(c1);
  close(c2);
  close(lfd);
  test_finish(loop);
}

static int hang_port, live_port;
static int two_addrs(const char *host, unsigned port,
                     struct sockaddr_storage *out, socklen_t *lens, int max) {
  (void)host;
  (void)port;
  (void)max;
  lens[0] = (socklen_t)eddy__sockaddr_ip(AF_INET, "127.0.0.1",
                                         (unsigned)hang_port, &out[0]);
  lens[1] = (socklen_t)eddy__sockaddr_ip(AF_INET, "127.0.0.1",
                                         (unsigned)live_port, &out[1]);
  return 2;
}

/* The first address never answers (a full backlog drops the SYN); after
 * 250 ms the second is tried and wins. */
Test(connect, happy_eyeballs_tries_the_next_address_after_250_ms) {
  eddy_loop *loop = test_loop();
  int hfd, lfd, c1, c2;
  test_connect_result r = {0};
  struct sockaddr_in sa = {.sin_family = AF_INET};
  eddy_endpoint ep = tcp_ep("two.example", 1);
  int64_t start;
  hang_port = raw_listener(&hfd, 0);
  live_port = raw_listener(&lfd, 8);
  sa.sin_port = htons((uint16_t)hang_port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c1 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  (void)connect(c1, (struct sockaddr *)&sa, sizeof sa);
  (void)connect(c2, (struct sockaddr *)&sa, sizeof sa);
  eddy__resolve_hook = two_addrs;
  eddy_loop_update_time(loop);
  start = eddy_loop_now(loop);
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  run_until_called(loop, &r);
  eddy_loop_update_time(loop);
  EXPECT_EQ(r.status, 0);
  EXPECT_GE(eddy_loop_now(loop) - start, 250 * MS);
  {
    char name[64], want[64];
    EXPECT_OK(eddy_stream_peer_name(r.s, name, sizeof name));
    snprintf(want, sizeof want, "127.0.0.1:%d", live_port);
    EXPECT_STR(name, want);
  }
  eddy_stream_abort(r.s);
  close(c1);
  close(c2);
  close(hfd);
  close(lfd);
  test_finish(loop);
}

/* A listener on ::1 whose accept queue is full (backlog 0 and one
 * connection waiting; a second keeps it so): a SYN to it is dropped, so a
 * connection to it neither completes nor is refused. The two clients go
 * to q[0], q[1]. Returns the port, or -1 when there is no IPv6 loopback. */
static int black_hole6(int *fd, int q[2]) {
  struct sockaddr_in6 a = {.sin6_family = AF_INET6};
  socklen_t len = sizeof a;
  a.sin6_addr = in6addr_loopback;
  *fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0)
    return -1;
  if (bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(*fd, 0) != 0 ||
      getsockname(*fd, (struct sockaddr *)&a, &len) != 0) {
    close(*fd);
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    q[i] = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(q[i] >= 0);
    (void)connect(q[i], (struct sockaddr *)&a, sizeof a);
  }
  return ntohs(a.sin6_port);
}

static int v6_ports[2], v4_ports[2];
static int mixed_addrs(const char *host, unsigned port,
                       struct sockaddr_storage *out, socklen_t *lens, int max) {
  (void)host;
  (void)port;
  cr_assert(max >= 4);
  for (int i = 0; i < 2; i++) {
    lens[i] = (socklen_t)eddy__sockaddr_ip(AF_INET6, "::1",
                                           (unsigned)v6_ports[i], &out[i]);
    lens[2 + i] = (socklen_t)eddy__sockaddr_ip(AF_INET, "127.0.0.1",
                                               (unsigned)v4_ports[i],
                                               &out[2 + i]);
  }
  return 4;
}

/* The resolver answers (v6, v6, v4, v4) and IPv6 is black-holed. RFC 8305
 * says to alternate families: the first IPv4 address is the second
 * attempt, 250 ms after the first, and it wins. Tried in the resolver's
 * order instead, IPv4 would be the third attempt, after 500 ms; the count
 * of connect() calls tells the two apart without an upper bound on time. */
Test(connect,
     happy_eyeballs_alternates_families_and_ipv4_wins_over_a_black_holed_ipv6) {
  eddy_loop *loop = test_loop();
  int h6[2], q6[2][2], l4[2];
  test_connect_result r = {0};
  eddy_endpoint ep = tcp_ep("mixed.example", 1);
  int64_t start;
  for (int i = 0; i < 2; i++) {
    v6_ports[i] = black_hole6(&h6[i], q6[i]);
    if (v6_ports[i] < 0) {
      if (i == 1) {
        close(q6[0][0]);
        close(q6[0][1]);
        close(h6[0]);
        close(l4[0]);
      }
      test_finish(loop);
      cr_skip_test("no IPv6 loopback (::1)");
    }
    v4_ports[i] = raw_listener(&l4[i], 8);
  }
  eddy__resolve_hook = mixed_addrs;
  eddy__fault_reset(); /* counts connect() calls from here */
  eddy_loop_update_time(loop);
  start = eddy_loop_now(loop);
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  run_until_called(loop, &r);
  eddy_loop_update_time(loop);
  cr_assert(r.status == 0, "%s", r.detail);
  EXPECT_GE(eddy_loop_now(loop) - start, 250 * MS);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_CONNECT), 2); /* v6, then v4 */
  {
    char name[64], want[64];
    EXPECT_OK(eddy_stream_peer_name(r.s, name, sizeof name));
    snprintf(want, sizeof want, "127.0.0.1:%d", v4_ports[0]);
    EXPECT_STR(name, want);
  }
  eddy_stream_abort(r.s);
  for (int i = 0; i < 2; i++) {
    close(q6[i][0]);
    close(q6[i][1]);
    close(h6[i]);
    close(l4[i]);
  }
  test_finish(loop);
}

Test(connect, unix_paths_connect_and_a_missing_one_is_enoent) {
  eddy_loop *loop = test_loop();
  test_connect_result r = {0}, missing = {0};
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  char text[200], err[100];
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf(un.sun_path, sizeof un.sun_path, "/tmp/eddy-connect-%d.sock",
           getpid());
  unlink(un.sun_path);
  cr_assert(bind(lfd, (struct sockaddr *)&un, sizeof un) == 0 &&
            listen(lfd, 4) == 0);
  snprintf(text, sizeof text, "unix:path=%s", un.sun_path);
  EXPECT_OK(
      eddy_connect_to(loop, text, test_on_connect, &r, NULL, err, sizeof err));
  EXPECT_OK(eddy_connect_to(loop, "unix:path=/nonexistent/eddy.sock",
                            test_on_connect, &missing, NULL, err, sizeof err));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(missing.status, -ENOENT);
  cr_assert(strstr(missing.detail, "/nonexistent/eddy.sock") != NULL);
  eddy_stream_close(r.s);
  unlink(un.sun_path);
  close(lfd);
  test_finish(loop);
}

Test(connect, failures_before_any_attempt_are_reported_from_the_loop) {
  eddy_loop *loop = test_loop();
  test_connect_result r = {0};
  eddy_endpoint ep = tcp_ep("127.0.0.1", 9);
  eddy_connect *req = NULL;
  char err[100];
  eddy__fault_fail_nth(EDDY__SYS_SOCKET, 1, EMFILE);
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, &req));
  EXPECT_EQ(r.calls, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -EMFILE);
  /* Errors that stop the request from existing are returned instead: the
   * request is its one allocation (its timers and report are inside it). */
  r = (test_connect_result){0};
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL),
            -ENOMEM);
  EXPECT_EQ(eddy_connect_to(loop, "tcp:host=x", test_on_connect, &r, NULL, err,
                            sizeof err),
            EDDY_EPARSE);
  EXPECT_EQ(eddy_connect_endpoint(loop, NULL, test_on_connect, &r, NULL),
            -EINVAL);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 0);
  test_finish(loop);
}

/* The deadline, the stagger timer and the report are parts of the request:
 * once the loop's timer heap has room, a connection allocates nothing but
 * the request itself, and with every allocation failing after that, the
 * report still arrives from the loop. */
Test(connect, a_connection_allocates_nothing_for_its_timers_or_its_report) {
  eddy_loop *loop = test_loop();
  test_connect_result warm = {0}, r = {0};
  char err[100];
  const char *missing = "unix:path=/nonexistent/eddy.sock";
  long live;
  EXPECT_OK(eddy_connect_to(loop, missing, test_on_connect, &warm, NULL, err,
                            sizeof err));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(warm.status, -ENOENT);
  live = eddy__alloc_live();
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_OK(eddy_connect_to(loop, missing, test_on_connect, &r, NULL, err,
                            sizeof err));
  EXPECT_EQ(eddy__alloc_live(), live + 1); /* the request */
  EXPECT_EQ(r.calls, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -ENOENT);
  EXPECT_EQ(eddy__alloc_live(), live);
  eddy__fault_reset();
  test_finish(loop);
}

Test(connect, close_all_cancels_pending_attempts) {
  eddy_loop *loop = test_loop();
  test_connect_result r = {0};
  eddy_endpoint ep = tcp_ep("slow.example", 9);
  eddy__resolve_hook = slow_resolve;
  EXPECT_OK(eddy_connect_endpoint(loop, &ep, test_on_connect, &r, NULL));
  test_finish(loop);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.status, -ECANCELED);
}

Test(connect, bind_address_sets_the_local_address) {
  eddy_loop *loop = test_loop();
  int lfd, port = raw_listener(&lfd, 8), peer;
  test_connect_result r = {0}, wrong = {0};
  char text[100], err[100];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  snprintf(text, sizeof text,
           "tcp:host=127.0.0.1:port=%d:bindAddress=127.0.0.2", port);
  EXPECT_OK(
      eddy_connect_to(loop, text, test_on_connect, &r, NULL, err, sizeof err));
  snprintf(text, sizeof text, "tcp:host=127.0.0.1:port=%d:bindAddress=\\:\\:1",
           port);
  EXPECT_OK(eddy_connect_to(loop, text, test_on_connect, &wrong, NULL, err,
                            sizeof err));
  run_until_called(loop, &r);
  run_until_called(loop, &wrong);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(wrong.status,
            -EAFNOSUPPORT); /* a local address of the other family */
  peer = accept(lfd, (struct sockaddr *)&from, &fl);
  cr_assert(peer >= 0);
  EXPECT_EQ(ntohl(from.sin_addr.s_addr), 0x7f000002);
  eddy_stream_abort(r.s);
  close(peer);
  close(lfd);
  test_finish(loop);
}
