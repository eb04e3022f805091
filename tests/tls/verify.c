/* Certificates: verification failures with their reasons, verify=no, IP
 * literals, SNI, ALPN, client certificates, versions, handshake timeout,
 * and loading errors. */
#include "tls_test.h"

/* Runs a handshake of a client verifying name against a server with the
 * certificate cert_name; returns the client's close status (0 if the
 * handshake succeeded), with its detail in cli->detail. */
static int try_handshake(const char *cert_name, eddy_tls_ctx *cctx,
                         const char *name, test_peer *srv, test_peer *cli) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx(cert_name);
  int status;
  plain_pair(loop, srv, cli);
  tls_both(srv, sctx, cli, cctx, name);
  int64_t end = eddy_loop_now(loop) + 10 * EDDY_NSEC_PER_SEC;
  while (!cli->closes && !(cli->handshakes && srv->handshakes) &&
         eddy_loop_now(loop) < end) {
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
    eddy_loop_update_time(loop);
  }
  status = cli->closes ? cli->status : 0;
  if (cli->s)
    eddy_stream_close(cli->s);
  run_closed(loop, srv, cli);
  finish_pair(loop, NULL, NULL, sctx, cctx);
  return status;
}

static void expect_failure(const char *cert_name, const char *name,
                           const char *reason) {
  test_peer srv = {0}, cli = {0};
  int status = try_handshake(cert_name, client_ctx(), name, &srv, &cli);
  EXPECT_EQ(status, EDDY_ETLS);
  cr_assert(strstr(cli.detail, reason) != NULL, "detail: %s", cli.detail);
  EXPECT_EQ(cli.handshakes, 0);
  /* The server hears why through the client's alert. */
  EXPECT_EQ(srv.status, EDDY_ETLS);
  cr_assert(strstr(srv.detail, "alert") != NULL, "server: %s", srv.detail);
}

Test(verify, expired) {
  expect_failure("expired", "localhost",
                 "certificate verify failed: certificate has expired");
}

Test(verify, wrong_host) {
  expect_failure("server", "wrong.example",
                 "certificate verify failed: hostname mismatch");
}

Test(verify, unknown_ca) {
  expect_failure("unknown", "localhost",
                 "certificate verify failed: unable to get local issuer");
}

Test(verify, self_signed) {
  expect_failure("self", "localhost", "certificate verify failed: self");
}

Test(verify, wrong_ip_address) {
  expect_failure("server", "127.0.0.2",
                 "certificate verify failed: IP address mismatch");
}

Test(verify, ip_literal_matches_its_san) {
  test_peer srv = {0}, cli = {0};
  EXPECT_OK(try_handshake("server", client_ctx(), "127.0.0.1", &srv, &cli));
  EXPECT_EQ(cli.handshakes, 1);
  cr_assert(srv.s == NULL); /* closed by now */
}

/* With the system's trust store only, the test CA is unknown. */
Test(verify, system_store_does_not_trust_the_test_ca) {
  test_peer srv = {0}, cli = {0};
  eddy_tls_ctx *cctx = NULL;
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_CLIENT, &cctx));
  EXPECT_EQ(try_handshake("server", cctx, "localhost", &srv, &cli), EDDY_ETLS);
  cr_assert(strstr(cli.detail, "certificate verify failed") != NULL, "%s",
            cli.detail);
}

Test(verify, off_only_when_asked) {
  test_peer srv = {0}, cli = {0};
  eddy_tls_ctx *cctx = NULL;
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_CLIENT, &cctx));
  EXPECT_OK(eddy_tls_ctx_set_verify(cctx, EDDY_TLS_VERIFY_NONE));
  EXPECT_OK(try_handshake("self", cctx, "anything", &srv, &cli));
  EXPECT_EQ(cli.handshakes, 1);
}

Test(verify, rsa_certificate) {
  test_peer srv = {0}, cli = {0};
  EXPECT_OK(try_handshake("rsa", client_ctx(), "localhost", &srv, &cli));
  EXPECT_EQ(cli.handshakes, 1);
}

/* SNI picks the certificate whose names match; others get the default. */
static const char *served_name;
static void note_sni(eddy_stream *s, void *arg) {
  peer_handshake(s, arg);
  served_name = eddy_tls_server_name(s);
}
static void sni_case(const char *name, int expect_ok) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  char err[256];
  test_peer srv = {0}, cli = {0};
  cr_assert(eddy_tls_ctx_add_cert(sctx, cert("other.pem"), cert("other.key"),
                                  err, sizeof err) == 0,
            "%s", err);
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, name);
  eddy_tls_on_handshake(srv.s, note_sni);
  while (!cli.closes && !cli.handshakes &&
         eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_EQ(cli.handshakes, expect_ok);
  if (expect_ok) {
    test_run_until(loop, &srv.handshakes);
    EXPECT_STR(served_name, name);
  }
  if (cli.s)
    eddy_stream_close(cli.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, NULL, NULL, sctx, cctx);
}

Test(sni, chooses_matching_certificate) {
  sni_case("other.test", 1);
}

Test(sni, wildcard) {
  sni_case("www.other.test", 1);
}

Test(sni, default_when_no_match) {
  sni_case("localhost", 1);
}

/* ALPN: the server's first choice among the client's offers. */
static int alpn_case(const char *server, const char *client, char *chosen) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  int ok;
  EXPECT_OK(eddy_tls_ctx_set_alpn(sctx, server));
  EXPECT_OK(eddy_tls_ctx_set_alpn(cctx, client));
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  while (!cli.closes && !cli.handshakes &&
         eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  ok = cli.handshakes;
  chosen[0] = '\0';
  if (ok && eddy_tls_alpn(cli.s))
    strcpy(chosen, eddy_tls_alpn(cli.s));
  if (!ok)
    strcpy(chosen, cli.detail);
  if (cli.s)
    eddy_stream_close(cli.s);
  run_closed(loop, &srv, &cli);
  finish_pair(loop, NULL, NULL, sctx, cctx);
  return ok;
}

Test(alpn, server_preference_wins) {
  char chosen[256];
  EXPECT_EQ(alpn_case("h2,http/1.1", "http/1.1,h2", chosen), 1);
  EXPECT_STR(chosen, "h2");
  EXPECT_EQ(alpn_case("http/1.1", "h2,http/1.1", chosen), 1);
  EXPECT_STR(chosen, "http/1.1");
}

Test(alpn, no_overlap_fails_the_handshake) {
  char chosen[256];
  EXPECT_EQ(alpn_case("h2", "imap", chosen), 0);
  cr_assert(strstr(chosen, "no application protocol") != NULL, "%s", chosen);
}

/* Client certificates: required, optional, verified against the CA. */
static int client_cert_case(eddy_tls_verify mode, int with_cert, char *subject,
                            char *detail) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  char err[256];
  test_peer srv = {0}, cli = {0};
  int ok;
  EXPECT_OK(eddy_tls_ctx_set_verify(sctx, mode));
  cr_assert(eddy_tls_ctx_set_trust(sctx, cert("ca.pem"), err, sizeof err) == 0);
  if (with_cert)
    cr_assert(eddy_tls_ctx_add_cert(
                  cctx, cert(with_cert == 2 ? "unknown.pem" : "client.pem"),
                  cert(with_cert == 2 ? "unknown.key" : "client.key"), err,
                  sizeof err) == 0,
              "%s", err);
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  /* TLS 1.3: the client finishes first; the server's verdict follows. */
  EXPECT_OK(eddy_stream_write(cli.s, "x", 1));
  while (!srv.closes && srv.n == 0 && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  ok = srv.n == 1;
  subject[0] = '\0';
  if (ok && eddy_tls_peer_subject(srv.s, subject, 256) != 0)
    strcpy(subject, "(none)");
  strcpy(detail, srv.detail);
  if (cli.s)
    eddy_stream_close(cli.s);
  run_closed(loop, &srv, &cli);
  test_peer_free(&srv);
  finish_pair(loop, NULL, NULL, sctx, cctx);
  return ok;
}

Test(client_cert, required_and_given) {
  char subject[256], detail[256];
  EXPECT_EQ(client_cert_case(EDDY_TLS_VERIFY_REQUIRE, 1, subject, detail), 1);
  cr_assert(strstr(subject, "CN=client") != NULL, "%s", subject);
}

Test(client_cert, required_and_missing) {
  char subject[256], detail[256];
  EXPECT_EQ(client_cert_case(EDDY_TLS_VERIFY_REQUIRE, 0, subject, detail), 0);
  cr_assert(strstr(detail, "certificate") != NULL, "%s", detail);
}

Test(client_cert, from_an_unknown_ca) {
  char subject[256], detail[256];
  EXPECT_EQ(client_cert_case(EDDY_TLS_VERIFY_OPTIONAL, 2, subject, detail), 0);
  cr_assert(strstr(detail, "certificate verify failed") != NULL, "%s", detail);
}

Test(client_cert, optional_and_missing) {
  char subject[256], detail[256];
  EXPECT_EQ(client_cert_case(EDDY_TLS_VERIFY_OPTIONAL, 0, subject, detail), 1);
  EXPECT_STR(subject, "(none)");
}

Test(versions, tls12_when_the_client_caps_it) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {.echo = 1}, cli = {0};
  EXPECT_OK(eddy_tls_ctx_set_versions(cctx, 0, EDDY_TLS_1_2));
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  EXPECT_OK(eddy_stream_write(cli.s, "ping", 4));
  while (cli.n < 4 && !cli.closes && eddy_loop_run(loop, EDDY_RUN_ONCE) >= 0)
    ;
  EXPECT_STR(eddy_tls_version(cli.s), "TLSv1.2");
  cr_assert(strstr(eddy_tls_cipher(cli.s), "GCM") ||
            strstr(eddy_tls_cipher(cli.s), "CHACHA"));
  eddy_stream_close(cli.s);
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.status, 0);
  finish_pair(loop, &srv, &cli, sctx, cctx);
}

Test(versions, no_common_version) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  test_peer srv = {0}, cli = {0};
  EXPECT_OK(eddy_tls_ctx_set_versions(sctx, EDDY_TLS_1_3, 0));
  EXPECT_OK(eddy_tls_ctx_set_versions(cctx, 0, EDDY_TLS_1_2));
  plain_pair(loop, &srv, &cli);
  tls_both(&srv, sctx, &cli, cctx, "localhost");
  run_closed(loop, &srv, &cli);
  EXPECT_EQ(cli.status, EDDY_ETLS);
  EXPECT_EQ(srv.status, EDDY_ETLS);
  cr_assert(strstr(srv.detail, "protocol") != NULL, "%s", srv.detail);
  finish_pair(loop, NULL, NULL, sctx, cctx);
}

/* A test_peer that says nothing: the handshake times out, and the transport is
 * closed. The fake clock makes it exact. */
Test(timeout, silent_peer) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_tls_ctx *sctx = server_ctx("server");
  test_peer srv = {0}, raw = {0};
  EXPECT_OK(eddy_tls_ctx_set_handshake_timeout(sctx, 2 * EDDY_NSEC_PER_SEC));
  plain_pair(loop, &srv, &raw);
  EXPECT_OK(eddy_tls_start(srv.s, sctx, NULL, NULL, 0));
  for (int i = 0; i < 5; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy_loop_advance(loop, 1999 * MS));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(srv.closes, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1 * MS));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(srv.closes, 1);
  EXPECT_EQ(srv.status, -ETIMEDOUT);
  EXPECT_STR(srv.detail, "TLS handshake timed out");
  /* The raw side sees the transport go. */
  for (int i = 0; i < 5 && !raw.eofs; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(raw.eofs, 1);
  eddy_tls_ctx_free(sctx);
  test_finish(loop);
}

/* Garbage instead of a ClientHello: a clear error, not a hang. */
Test(garbage, plaintext_to_a_tls_server) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server");
  test_peer srv = {0}, raw = {0};
  plain_pair(loop, &srv, &raw);
  EXPECT_OK(eddy_tls_start(srv.s, sctx, NULL, NULL, 0));
  EXPECT_OK(eddy_stream_write(raw.s, "GET / HTTP/1.0\r\n\r\n", 18));
  run_closed(loop, &srv, &raw);
  EXPECT_EQ(srv.status, EDDY_ETLS);
  cr_assert(strstr(srv.detail, "TLS handshake failed") != NULL, "%s",
            srv.detail);
  eddy_tls_ctx_free(sctx);
  test_peer_free(&raw);
  test_finish(loop);
}

Test(garbage, closed_during_handshake) {
  eddy_loop *loop = test_loop();
  eddy_tls_ctx *sctx = server_ctx("server");
  test_peer srv = {0}, raw = {0};
  plain_pair(loop, &srv, &raw);
  EXPECT_OK(eddy_tls_start(srv.s, sctx, NULL, NULL, 0));
  EXPECT_OK(eddy_stream_write(raw.s, "\x16\x03\x01", 3)); /* a record's start */
  eddy_stream_close(raw.s);
  run_closed(loop, &srv, &raw);
  EXPECT_EQ(srv.status, EDDY_ETLS);
  cr_assert(strstr(srv.detail, "during the TLS handshake") != NULL, "%s",
            srv.detail);
  eddy_tls_ctx_free(sctx);
  test_finish(loop);
}

Test(files, loading_errors_name_the_file) {
  eddy_tls_ctx *ctx = NULL;
  char err[512];
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_SERVER, &ctx));
  EXPECT_EQ(eddy_tls_ctx_add_cert(ctx, "/nonexistent/cert.pem", NULL, err,
                                  sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/cert.pem") != NULL, "%s", err);
  EXPECT_EQ(eddy_tls_ctx_add_cert(ctx, cert("ca.cnf"), NULL, err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "no PEM certificate") != NULL, "%s", err);
  EXPECT_EQ(eddy_tls_ctx_add_cert(ctx, cert("server.pem"), cert("ca.pem"), err,
                                  sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "no PEM private key") != NULL, "%s", err);
  EXPECT_EQ(eddy_tls_ctx_add_cert(ctx, cert("server.pem"), cert("other.key"),
                                  err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "does not match") != NULL, "%s", err);
  EXPECT_EQ(eddy_tls_ctx_set_trust(ctx, "/nonexistent/ca.pem", err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
  EXPECT_EQ(eddy_tls_ctx_set_trust(ctx, cert("ca.cnf"), err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "no CA certificates") != NULL, "%s", err);
  /* A chain file with the key in another file, and a combined file. */
  EXPECT_OK(eddy_tls_ctx_add_cert(ctx, cert("server-chain.pem"),
                                  cert("server.key"), err, sizeof err));
  eddy_tls_ctx_free(ctx);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

/* Session tickets: one by default, none when turned off; the client sees
 * them as NewSessionTicket messages after the handshake. */
Test(tickets, count_and_bad_arguments) {
  eddy_tls_ctx *sctx = server_ctx("server"), *cctx = client_ctx();
  EXPECT_EQ(eddy_tls_ctx_set_session_tickets(cctx, 1), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_session_tickets(sctx, -1), -EINVAL);
  EXPECT_EQ(eddy_tls_ctx_set_session_tickets(sctx, 17), -EINVAL);
  EXPECT_OK(eddy_tls_ctx_set_session_tickets(sctx, 0));
  EXPECT_OK(eddy_tls_ctx_set_session_tickets(sctx, 3));
  eddy_tls_ctx_free(sctx);
  eddy_tls_ctx_free(cctx);
  EXPECT_EQ(eddy__alloc_live(), 0);
}
