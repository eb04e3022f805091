/* client.c: the load generator of the TLS benchmark (see run.sh). It speaks
 * just enough HTTP/1.0 that eddy_tls_server.c and nginx answer it alike.
 *
 *   client wait  --port P
 *       connects (plain TCP) until the server answers (at most 5 s).
 *   client info  --port P [--ca PEM]
 *       one handshake and one GET /hs; prints what was negotiated, as
 *       "# ..." comment lines (protocol, cipher, group, certificate key,
 *       session tickets the server sent), so that a run shows both
 *       servers were measured on the same terms.
 *   client hs    --port P --pid PID [--threads N] [--seconds T] [--ca PEM]
 *                [--tag NAME]
 *       N threads (default 4), each one connection at a time: TCP connect,
 *       full TLS 1.3 handshake (X25519 only, no session offered, so never
 *       a resumption), GET /hs, read the answer to its end, close.
 *   client bulk  --port P --pid PID [--seconds T] [--ca PEM] [--tag NAME]
 *       one connection, GET /bulk (HTTP/1.1) again and again, each answer
 *       read to its end; MB/s.
 *
 * Several blocking threads rather than one: a handshake is a ping-pong
 * between client and server, and with one connection each side would idle
 * while the other computes. With a few in flight the client's CPU stays
 * busy (the threads share the client's one CPU).
 *
 * With --ca the server's certificate is verified against that CA and for
 * the name "localhost" (what a real client does, and more client work);
 * without it, the chain is not checked (the handshake's own signature,
 * CertificateVerify, is still checked by TLS 1.3 itself).
 *
 * The timed modes warm up for 0.5 s; at the two ends of the measured
 * interval the client reads the server's CPU time (utime + stime of
 * /proc/PID/stat) and its own, so the CPU figures cover exactly the work
 * counted. Output: "TAG_key value" lines. Every blocking call is bounded
 * (socket timeouts of 5 s); any failure prints a reason and exits 1.
 * Connections are closed with a reset (SO_LINGER 0) so that no run leaves
 * thousands of sockets in TIME_WAIT for the next. */
#define _GNU_SOURCE

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../common.h"

#define WARMUP_NS 500000000LL
#define IO_TIMEOUT_S 5
#define MAX_THREADS 64
#define BULK_READ (256 * 1024)

static int port;
static long server_pid;
static double seconds = 3;
static int nthreads = 4;
static const char *ca_path;

static SSL_CTX *ctx;
static atomic_long handshakes;
static atomic_long tickets;
static atomic_int stop;

/* What OpenSSL knows of the failure die() reports. */
static void print_ssl_errors(void) { ERR_print_errors_fp(stderr); }

static void sleep_until(int64_t t) {
  int64_t left;
  while ((left = t - mono_ns()) > 0) {
    struct timespec ts = {left / 1000000000, left % 1000000000};
    nanosleep(&ts, NULL);
  }
}

/* A blocking TCP connection to 127.0.0.1:port with bounded I/O, or -errno. */
static int tcp_connect(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {IO_TIMEOUT_S, 0};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, err;
  if (fd < 0)
    return -errno;
  /* SO_SNDTIMEO bounds connect() too. */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    err = errno;
    close(fd);
    return -err;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Closes with a reset: no TIME_WAIT left behind. */
static void close_rst(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

/* Counts the NewSessionTicket messages servers send. Nothing is kept: the
 * client never offers a session, so every handshake is a full one. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  (void)ssl, (void)sess;
  atomic_fetch_add_explicit(&tickets, 1, memory_order_relaxed);
  return 0; /* we took no reference */
}

static void make_ctx(void) {
  if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
    die("SSL_CTX_new failed");
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set1_groups_list(ctx, "X25519") != 1)
    die("cannot restrict the client to TLS 1.3 with X25519");
  /* No tickets asked for, none stored, none offered; a server that sends
   * some anyway is counted (see on_new_session). IGNORE_UNEXPECTED_EOF:
   * a server that closes without close_notify after a complete answer is
   * not an error for this benchmark. */
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                          SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  /* Bulk: fewer, larger reads from the socket. */
  SSL_CTX_set_default_read_buffer_len(ctx, BULK_READ);
  if (ca_path) {
    if (SSL_CTX_load_verify_locations(ctx, ca_path, NULL) != 1)
      die("cannot load the CA %s", ca_path);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  }
}

/* A TLS connection with the handshake done, or NULL with *why set. */
static SSL *tls_connect(int *fdp, const char **why) {
  SSL *ssl;
  int fd = tcp_connect();
  *why = NULL;
  if (fd < 0) {
    *why = strerror(-fd);
    return NULL;
  }
  if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
      SSL_set_tlsext_host_name(ssl, "localhost") != 1 ||
      (ca_path && SSL_set1_host(ssl, "localhost") != 1)) {
    SSL_free(ssl);
    close_rst(fd);
    *why = "cannot set up the SSL object";
    return NULL;
  }
  ERR_clear_error();
  if (SSL_connect(ssl) != 1) {
    unsigned long e = ERR_peek_error();
    *why = e ? ERR_reason_error_string(e) : "handshake failed (timeout?)";
    SSL_free(ssl);
    close_rst(fd);
    return NULL;
  }
  *fdp = fd;
  return ssl;
}

/* HTTP/1.0 asks for a close after the answer; 1.1 keeps the connection. */
static int send_request(SSL *ssl, const char *path, int http11) {
  char req[128];
  size_t w;
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.%d\r\nHost: localhost\r\n\r\n", path,
                   http11);
  return SSL_write_ex(ssl, req, (size_t)n, &w) == 1 ? 0 : -1;
}

static int is_ok_status(const char *buf, size_t len) {
  return len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0 &&
         memcmp(buf + 8, " 200", 4) == 0;
}

/* One handshake and GET /hs, read to the end. Returns 0, or -1 with *why. */
static int one_handshake(const char **why, SSL **keep, int *keep_fd) {
  char buf[4096];
  size_t got = 0, n;
  int fd = -1, r;
  SSL *ssl = tls_connect(&fd, why);
  if (ssl == NULL)
    return -1;
  if (send_request(ssl, "/hs", 0) != 0) {
    *why = "request not sent";
    goto fail;
  }
  for (;;) {
    ERR_clear_error();
    r = SSL_read_ex(ssl, buf + got, sizeof buf - got, &n);
    if (r == 1) {
      got += n;
      if (got == sizeof buf) {
        *why = "answer too long";
        goto fail;
      }
      continue;
    }
    if (SSL_get_error(ssl, r) != SSL_ERROR_ZERO_RETURN) {
      *why = "read failed or timed out";
      goto fail;
    }
    break;
  }
  if (!is_ok_status(buf, got)) {
    *why = "not a 200 answer";
    goto fail;
  }
  if (keep) {
    *keep = ssl;
    *keep_fd = fd;
    return 0;
  }
  SSL_free(ssl);
  close_rst(fd);
  return 0;
fail:
  SSL_free(ssl);
  close_rst(fd);
  return -1;
}

/* ---- wait ------------------------------------------------------------------ */

static int mode_wait(void) {
  int64_t deadline = mono_ns() + 5000000000LL;
  for (;;) {
    int fd = tcp_connect();
    if (fd >= 0) {
      close_rst(fd);
      return 0;
    }
    if (fd != -ECONNREFUSED || mono_ns() >= deadline)
      die("server on 127.0.0.1:%d not answering: %s", port, strerror(-fd));
    usleep(10000);
  }
}

/* ---- info ------------------------------------------------------------------ */

static int mode_info(void) {
  const char *why;
  SSL *ssl;
  int fd, type = NID_undef, md = NID_undef;
  EVP_PKEY *key;
  if (one_handshake(&why, &ssl, &fd) != 0)
    die("handshake with 127.0.0.1:%d: %s", port, why);
  key = X509_get0_pubkey(SSL_get0_peer_certificate(ssl));
  if (SSL_get_peer_signature_type_nid(ssl, &type) != 1)
    type = NID_undef;
  if (SSL_get_peer_signature_nid(ssl, &md) != 1)
    md = NID_undef;
  printf("# %s %s group=%s cert=%s-%d sig=%s+%s resumed=%d tickets=%ld "
         "verify=%s\n",
         SSL_get_version(ssl), SSL_get_cipher_name(ssl),
         OBJ_nid2sn(SSL_get_negotiated_group(ssl)),
         key ? EVP_PKEY_get0_type_name(key) : "none",
         key ? EVP_PKEY_get_bits(key) : 0,
         type == EVP_PKEY_EC ? "ECDSA" : OBJ_nid2sn(type), OBJ_nid2sn(md),
         SSL_session_reused(ssl), atomic_load(&tickets),
         ca_path ? "ca+name" : "none");
  SSL_free(ssl);
  close_rst(fd);
  return 0;
}

/* ---- hs -------------------------------------------------------------------- */

static char thread_error[256];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

static void *hs_thread(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    const char *why;
    if (one_handshake(&why, NULL, NULL) != 0) {
      pthread_mutex_lock(&error_lock);
      if (!thread_error[0])
        snprintf(thread_error, sizeof thread_error, "%s", why);
      pthread_mutex_unlock(&error_lock);
      atomic_store(&stop, 1);
      break;
    }
    atomic_fetch_add_explicit(&handshakes, 1, memory_order_relaxed);
  }
  return NULL;
}

static int mode_hs(void) {
  pthread_t th[MAX_THREADS];
  int64_t start = mono_ns(), t0 = start + WARMUP_NS, t1, a, b;
  long n0, n1, k0, k1;
  double cpu0, cpu1, self0, self1, dt;
  for (int i = 0; i < nthreads; i++)
    if (pthread_create(&th[i], NULL, hs_thread, NULL) != 0)
      die("pthread_create failed");
  sleep_until(t0);
  a = mono_ns();
  n0 = atomic_load(&handshakes);
  k0 = atomic_load(&tickets);
  cpu0 = proc_cpu_s(server_pid);
  self0 = self_cpu_s();
  t1 = a + (int64_t)(seconds * 1e9);
  sleep_until(t1);
  b = mono_ns();
  n1 = atomic_load(&handshakes);
  k1 = atomic_load(&tickets);
  cpu1 = proc_cpu_s(server_pid);
  self1 = self_cpu_s();
  atomic_store(&stop, 1);
  /* Each thread ends within one handshake, itself bounded by the socket
   * timeouts. */
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  if (thread_error[0])
    die("handshake with 127.0.0.1:%d: %s", port, thread_error);
  dt = (double)(b - a) / 1e9;
  if (n1 <= n0)
    die("no handshake completed in %.1f s", dt);
  put("hs_s", (double)(n1 - n0) / dt);
  put("hs_cpu_us_per_hs", (cpu1 - cpu0) * 1e6 / (double)(n1 - n0));
  put("hs_server_cpu_pct", (cpu1 - cpu0) * 100 / dt);
  put("hs_client_cpu_pct", (self1 - self0) * 100 / dt);
  put("hs_tickets_per_hs", (double)(k1 - k0) / (double)(n1 - n0));
  return 0;
}

/* ---- bulk ------------------------------------------------------------------ */

/* Sends GET /bulk and reads the answer's header. Returns the body's
 * length; *early is how much of it came with the header (in buf). */
static uint64_t bulk_request(SSL *ssl, char *buf, size_t cap, size_t *early) {
  char head[4096], *end, *cl;
  size_t hlen = 0, n;
  unsigned long long len;
  if (send_request(ssl, "/bulk", 1) != 0)
    die("request not sent");
  for (;;) {
    if (SSL_read_ex(ssl, head + hlen, sizeof head - 1 - hlen, &n) != 1)
      die("no answer header");
    hlen += n;
    head[hlen] = '\0';
    if ((end = strstr(head, "\r\n\r\n")) != NULL)
      break;
    if (hlen == sizeof head - 1)
      die("answer header too long");
  }
  if (!is_ok_status(head, hlen))
    die("not a 200 answer: %.40s", head);
  *end = '\0';
  if ((cl = strcasestr(head, "\r\ncontent-length:")) == NULL ||
      sscanf(cl + 17, "%llu", &len) != 1)
    die("no Content-Length in the answer");
  *early = hlen - (size_t)(end + 4 - head);
  if (*early > cap || *early > len)
    die("more body than announced");
  memcpy(buf, end + 4, *early);
  return len;
}

/* One connection; the file asked for again and again (HTTP/1.1), each
 * answer read to its end before the next request: on loopback the gap
 * between two answers is a few microseconds per file. */
static int mode_bulk(void) {
  static char buf[BULK_READ];
  const char *why;
  size_t n, early;
  uint64_t got = 0, got0 = 0, left;
  int64_t start, t0, t1 = 0, a = 0, b = 0, now;
  double cpu0 = 0, cpu1, self0 = 0, self1;
  int fd, measuring = 0;
  SSL *ssl;

  start = mono_ns();
  if ((ssl = tls_connect(&fd, &why)) == NULL)
    die("handshake with 127.0.0.1:%d: %s", port, why);
  t0 = start + WARMUP_NS;
  for (;;) {
    left = bulk_request(ssl, buf, sizeof buf, &early);
    got += early;
    left -= early;
    while (left > 0) {
      if (SSL_read_ex(ssl, buf, left < sizeof buf ? left : sizeof buf, &n) !=
          1)
        die("read failed, ended early or timed out after %llu bytes",
            (unsigned long long)got);
      got += n;
      left -= n;
      now = mono_ns();
      if (!measuring && now >= t0) {
        measuring = 1;
        a = now;
        got0 = got;
        cpu0 = proc_cpu_s(server_pid);
        self0 = self_cpu_s();
        t1 = a + (int64_t)(seconds * 1e9);
      } else if (measuring && now >= t1) {
        b = now;
        goto done;
      }
    }
  }
done:
  cpu1 = proc_cpu_s(server_pid);
  self1 = self_cpu_s();
  SSL_free(ssl);
  close_rst(fd);
  {
    double dt = (double)(b - a) / 1e9, mb = (double)(got - got0) / 1e6;
    if (mb <= 0)
      die("nothing received in the measured interval");
    put("bulk_mb_s", mb / dt);
    put("bulk_cpu_us_per_mb", (cpu1 - cpu0) * 1e6 / mb);
    put("bulk_server_cpu_pct", (cpu1 - cpu0) * 100 / dt);
    put("bulk_client_cpu_pct", (self1 - self0) * 100 / dt);
  }
  return 0;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  bench_name = "tls client";
  bench_on_die = print_ssl_errors;
  const char *mode;
  if (argc < 2)
    die("usage: client wait|info|hs|bulk --port P [--pid PID] [--threads N] "
        "[--seconds T] [--ca PEM] [--tag NAME]");
  mode = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      die("%s needs a value", opt);
    if (strcmp(opt, "--port") == 0)
      port = atoi(v);
    else if (strcmp(opt, "--pid") == 0)
      server_pid = atol(v);
    else if (strcmp(opt, "--threads") == 0)
      nthreads = atoi(v);
    else if (strcmp(opt, "--seconds") == 0)
      seconds = atof(v);
    else if (strcmp(opt, "--ca") == 0)
      ca_path = *v ? v : NULL;
    else if (strcmp(opt, "--tag") == 0)
      put_tag = v;
    else
      die("unknown option %s", opt);
    i++;
  }
  if (port <= 0 || port > 65535)
    die("--port needs a port number");
  if (nthreads < 1 || nthreads > MAX_THREADS)
    die("--threads needs 1 to %d", MAX_THREADS);
  if (!(seconds > 0 && seconds <= 600))
    die("--seconds needs a time from 0 to 600");
  if (strcmp(mode, "wait") == 0)
    return mode_wait();
  make_ctx();
  if (strcmp(mode, "info") == 0)
    return mode_info();
  if (server_pid <= 0)
    die("%s needs --pid", mode);
  if (strcmp(mode, "hs") == 0)
    return mode_hs();
  if (strcmp(mode, "bulk") == 0)
    return mode_bulk();
  die("unknown mode %s", mode);
  return 1;
}
