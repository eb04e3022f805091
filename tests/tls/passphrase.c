/* Encrypted private keys: OpenSSL must never prompt for a passphrase (on
 * a terminal start-up would block at "Enter PEM pass phrase:"); a key
 * that cannot be decrypted is reported as encrypted, and a passphrase
 * given by the program or by a passphraseFile= parameter opens it. */
#include <fcntl.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tls_test.h"

#define PASS "correct horse"

/* Writes server.key encrypted with PASS (AES-256-CBC) to a new file in a
 * temporary directory; returns its path. */
static const char *encrypted_key(void) {
  static char path[600];
  char dir[] = "/tmp/eddy-passXXXXXX";
  EVP_PKEY *key;
  FILE *in, *out;
  cr_assert(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/enc.key", dir);
  in = fopen(cert("server.key"), "r");
  cr_assert(in != NULL);
  key = PEM_read_PrivateKey(in, NULL, NULL, NULL);
  fclose(in);
  cr_assert(key != NULL);
  out = fopen(path, "w");
  cr_assert(out != NULL);
  cr_assert(PEM_write_PrivateKey(out, key, EVP_aes_256_cbc(),
                                 (unsigned char *)PASS, (int)strlen(PASS), NULL,
                                 NULL) == 1);
  fclose(out);
  EVP_PKEY_free(key);
  return path;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f != NULL);
  fputs(text, f);
  fclose(f);
}

/* Removes the key and the directory encrypted_key() made. */
static void remove_key(const char *path, const char *other) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  unlink(path);
  if (other)
    unlink(other);
  rmdir(dir);
}

/* stdin is a terminal-less pipe here; OpenSSL's default callback would
 * read it (and block forever with a writer that never writes). */
static void stdin_that_blocks(int fds[2]) {
  cr_assert(pipe(fds) == 0);
  cr_assert(dup2(fds[0], 0) == 0);
}

Test(passphrase, encrypted_key_without_passphrase_is_reported_not_prompted,
     .timeout = 20) {
  const char *key = encrypted_key();
  eddy_tls_ctx *ctx = NULL;
  char err[512] = "";
  char want[700];
  int fds[2];
  stdin_that_blocks(fds);
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_SERVER, &ctx));
  EXPECT_EQ(eddy_tls_ctx_add_cert(ctx, cert("server.pem"), key, err,
                                  sizeof err),
            EDDY_ETLS);
  snprintf(want, sizeof want, "private key in '%s' is encrypted", key);
  cr_assert(strstr(err, want) != NULL, "%s", err);
  eddy_tls_ctx_free(ctx);
  remove_key(key, NULL);
  close(fds[1]);
}

Test(passphrase, set_passphrase_opens_an_encrypted_key, .timeout = 20) {
  const char *key = encrypted_key();
  eddy_tls_ctx *ctx = NULL;
  char err[512] = "";
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_SERVER, &ctx));
  EXPECT_OK(eddy_tls_ctx_set_passphrase(ctx, PASS));
  cr_assert(eddy_tls_ctx_add_cert(ctx, cert("server.pem"), key, err,
                                  sizeof err) == 0,
            "%s", err);
  eddy_tls_ctx_free(ctx);
  remove_key(key, NULL);
}

Test(passphrase, wrong_passphrase_is_reported, .timeout = 20) {
  const char *key = encrypted_key();
  eddy_tls_ctx *ctx = NULL;
  char err[512] = "";
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_SERVER, &ctx));
  EXPECT_OK(eddy_tls_ctx_set_passphrase(ctx, "wrong"));
  EXPECT_EQ(eddy_tls_ctx_add_cert(ctx, cert("server.pem"), key, err,
                                  sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "wrong passphrase") != NULL, "%s", err);
  cr_assert(strstr(err, key) != NULL, "%s", err);
  eddy_tls_ctx_free(ctx);
  remove_key(key, NULL);
}

Test(passphrase, passphrase_file_parameter_opens_an_encrypted_key,
     .timeout = 20) {
  const char *key = encrypted_key();
  char pfile[700], text[2048], err[512] = "";
  eddy_endpoint ep;
  eddy_tls_ctx *ctx = NULL;
  snprintf(pfile, sizeof pfile, "%s.pass", key);
  write_file(pfile, PASS "\n"); /* the newline is not part of it */
  snprintf(text, sizeof text,
           "tls:0:certKey=%s:privateKey=%s:passphraseFile=%s",
           cert("server.pem"), key, pfile);
  cr_assert(eddy_endpoint_parse_server(text, &ep, err, sizeof err) == 0, "%s",
            err);
  EXPECT_EQ(strcmp(ep.passphrase_file, pfile), 0);
  cr_assert(eddy_tls_ctx_from_endpoint(&ep, 1, &ctx, err, sizeof err) == 0,
            "%s", err);
  eddy_tls_ctx_free(ctx);
  remove_key(key, pfile);
}

Test(passphrase, unreadable_passphrase_file_is_named, .timeout = 20) {
  eddy_endpoint ep;
  eddy_tls_ctx *ctx = NULL;
  char text[1024], err[512] = "";
  snprintf(text, sizeof text,
           "tls:0:certKey=%s:passphraseFile=/nonexistent/pass",
           cert("server.pem"));
  cr_assert(eddy_endpoint_parse_server(text, &ep, err, sizeof err) == 0, "%s",
            err);
  EXPECT_EQ(eddy_tls_ctx_from_endpoint(&ep, 1, &ctx, err, sizeof err),
            EDDY_ETLS);
  cr_assert(strstr(err, "/nonexistent/pass") != NULL, "%s", err);
}

Test(passphrase, passphrase_file_is_a_server_parameter) {
  eddy_endpoint ep;
  char err[512] = "";
  cr_assert(eddy_endpoint_parse_client("tls:localhost:1:passphraseFile=/x", &ep,
                                       err, sizeof err) != 0);
}

Test(passphrase, plain_key_ignores_the_passphrase, .timeout = 20) {
  eddy_tls_ctx *ctx = NULL;
  char err[512] = "";
  EXPECT_OK(eddy_tls_ctx_new(EDDY_TLS_SERVER, &ctx));
  EXPECT_OK(eddy_tls_ctx_set_passphrase(ctx, PASS));
  cr_assert(eddy_tls_ctx_add_cert(ctx, cert("server.pem"), cert("server.key"),
                                  err, sizeof err) == 0,
            "%s", err);
  EXPECT_EQ(eddy_tls_ctx_set_passphrase(ctx, NULL), 0);
  eddy_tls_ctx_free(ctx);
}
