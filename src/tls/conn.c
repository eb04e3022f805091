/* conn.c: a TLS connection as a layer over an eddy_stream.
 *
 * eddy_tls_start() moves the stream's descriptors into a new lower stream
 * (the transport) and makes the program's stream a layered one whose bytes
 * pass through OpenSSL. OpenSSL never touches a descriptor: its BIO is ours.
 *
 * Output: the BIO appends records to a per-thread buffer, and every entry
 * point that ran OpenSSL hands that buffer to the transport before it
 * returns (flush_out). The transport copies only what the kernel did not
 * take, so an idle connection holds no output buffer, and a bulk write
 * costs one system call per 64 KiB of plaintext (four records). While the
 * transport's callback for a connection runs, its output is corked: the
 * server's flight and tickets, the program's answer and a close_notify
 * made in the same callback leave in one system call.
 *
 * Input: the transport's data callback lends its bytes; the BIO reads from
 * them directly, and only a part OpenSSL has not consumed when the
 * callback returns (the reader paused) is copied, into the connection's
 * buffer. Bytes that arrive while some are kept there are appended behind
 * them (amortized by the buffer's doubling, never a copy of everything).
 *
 * Flow control: the layer takes plaintext while the transport is below its
 * high watermark, and tells the stream to send more when it drains. The
 * transport reads while the handshake runs or the stream wants data.
 *
 * OpenSSL's WANT_READ during a write and WANT_WRITE during a read cannot
 * strand a connection here: output always fits the buffer (WANT_WRITE
 * never happens), and WANT_READ waits for the transport's next bytes, after
 * which both reading and the queued writes are retried.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/loop.h"
#include "eddy/buf.h"
#include "net/net.h"
#include "sys/alloc.h"
#include "tls/tls.h"

#define SEND_BATCH 65536
#define RECORD 16384
/* The batch as records, with room for their headers and tags, and for a
 * handshake flight with a long certificate chain. */
#define OUT_CAP (SEND_BATCH + 16384)
/* The transport's backlog past which it stops being read. The program's
 * own bytes cannot take it there (a send waits below the high watermark);
 * replies OpenSSL makes by itself (to a flood of key update requests from
 * a peer that never reads) could, without limit. */
#define LOW_READ_CAP (4 * SEND_BATCH)

enum {
  HS_DONE = 1u << 0,
  LOW_EOF = 1u << 1,    /* the transport read its end */
  FINISHED = 1u << 2,   /* the stream ended; the transport is released */
  WANT_READ = 1u << 3,  /* the stream wants data */
  WANT_WRITE = 1u << 4, /* the stream has queued bytes */
  LOW_PAUSED = 1u << 5,
  SHUT_PENDING = 1u << 6, /* half-close asked for before the handshake */
  LOW_FAILED = 1u << 7,   /* the transport refused a write: low_err */
};

typedef struct tls_conn {
  eddy_stream *up, *low;
  eddy_tls_ctx *ctx;
  SSL *ssl;
  unsigned flags;
  int low_err;
  /* Ciphertext not yet read by OpenSSL is in one of two places, never
   * both: lent by the transport's data callback (valid only until it
   * returns), or kept in saved. */
  const char *lent;
  size_t lent_len;
  eddy_buf saved;
  eddy__timer handshake_timer;
  eddy__soon kick; /* drives the connection from the loop, next turn */
  eddy_tls_handshake_cb on_handshake;
  char detail[192];
  char alpn[256];
} tls_conn;

static _Thread_local char out_buf[OUT_CAP];
static _Thread_local size_t out_len;
static _Thread_local tls_conn *out_owner; /* whose records out_buf holds */
static _Thread_local tls_conn *corked;    /* whose callback is running */

static const eddy__layer_ops layer_ops;

/* ---- The BIO ------------------------------------------------------------------ */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void flush_now(void);

static void to_transport(tls_conn *t, const char *data, size_t len) {
  int err;
  if (t->low == NULL || (t->flags & LOW_FAILED))
    return;
  /* A refused write (the transport broke) is kept, so that the next send
   * reports it instead of encrypting into nothing. */
  if ((err = eddy_stream_write(t->low, data, len)) != 0) {
    t->flags |= LOW_FAILED;
    t->low_err = err == EDDY_ECLOSED ? -EPIPE : err;
  }
}

static int bio_write(BIO *b, const char *data, int len) {
  tls_conn *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0)
    return 0;
  /* Another connection's records go first, in their own write. */
  if (out_len > 0 && (out_owner != t || out_len + (size_t)len > OUT_CAP))
    flush_now();
  if ((size_t)len > OUT_CAP) {
    to_transport(t, data, (size_t)len);
    return len;
  }
  out_owner = t;
  memcpy(out_buf + out_len, data, (size_t)len);
  out_len += (size_t)len;
  assert(out_len <= OUT_CAP);
  return len;
}

/* Ciphertext not yet read by OpenSSL. */
static size_t input_len(const tls_conn *t) {
  assert(t->lent_len == 0 || eddy_buf_len(&t->saved) == 0);
  return t->lent_len + eddy_buf_len(&t->saved);
}

static int bio_read(BIO *b, char *buf, int len) {
  tls_conn *t = BIO_get_data(b);
  size_t n, kept = eddy_buf_len(&t->saved);
  BIO_clear_retry_flags(b);
  if (input_len(t) == 0) {
    /* Even at the transport's end: the caller tells a clean end from a
     * truncated one, which OpenSSL's "unexpected EOF" would blur. */
    BIO_set_retry_read(b);
    return -1;
  }
  n = kept ? kept : t->lent_len;
  n = n < (size_t)len ? n : (size_t)len;
  if (kept) {
    memcpy(buf, eddy_buf_data(&t->saved), n);
    eddy_buf_consume(&t->saved, n);
  } else {
    memcpy(buf, t->lent, n);
    t->lent += n;
    t->lent_len -= n;
  }
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  tls_conn *t = BIO_get_data(b);
  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_PENDING:
    return t ? (long)input_len(t) : 0;
  case BIO_CTRL_WPENDING:
    return 0;
  default:
    return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void make_method(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                               "eddy stream");
  if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
      BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create)) {
    bio_method = m;
    return;
  }
  BIO_meth_free(m);
}

/* Hands the buffered records to their connection's transport. */
static void flush_now(void) {
  tls_conn *t = out_owner;
  size_t n = out_len;
  out_len = 0;
  out_owner = NULL;
  if (n > 0 && t)
    to_transport(t, out_buf, n);
}

/* The same at the end of an entry point, unless t's callback is running:
 * then its end flushes. */
static void flush_out(tls_conn *t) {
  if (corked != t && out_owner == t)
    flush_now();
}

static void cork(tls_conn *t) {
  corked = t;
}

static void uncork(void) {
  corked = NULL;
  flush_now();
}

/* Keeps the unread part of a lent buffer past the callback that lent it
 * (which is returning: the lent bytes are forgotten either way). */
static int keep_input(tls_conn *t) {
  int err = 0;
  if (t->lent_len > 0) {
    assert(eddy_buf_len(&t->saved) == 0);
    err = eddy_buf_append(&t->saved, t->lent, t->lent_len);
  }
  t->lent = NULL;
  t->lent_len = 0;
  return err;
}

/* Adds bytes behind what is still unread: lent as they are if nothing is
 * kept, else appended to what is. */
static int add_input(tls_conn *t, const char *data, size_t len) {
  assert(t->lent_len == 0); /* the previous callback kept or read it all */
  if (eddy_buf_len(&t->saved) == 0) {
    t->lent = data;
    t->lent_len = len;
    return 0;
  }
  return eddy_buf_append(&t->saved, data, len);
}

/* ---- Errors ----------------------------------------------------------------- */

static void fail(tls_conn *t, int status, const char *detail) {
  if (t->flags & FINISHED)
    return;
  if (detail != t->detail)
    snprintf(t->detail, sizeof t->detail, "%s", detail);
  eddy__stream_fail(t->up, status, t->detail);
}

/* The sentence for an OpenSSL failure, and the queue cleared. */
static void ssl_detail(tls_conn *t, int ssl_err) {
  unsigned long e = ERR_peek_error();
  const char *what = (t->flags & HS_DONE) ? "TLS error"
                                          : "TLS handshake failed";
  long v = SSL_get_verify_result(t->ssl);
  if (e && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      v != X509_V_OK)
    snprintf(t->detail, sizeof t->detail, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  else if (e && ERR_reason_error_string(e))
    snprintf(t->detail, sizeof t->detail, "%s: %s", what,
             ERR_reason_error_string(e));
  else
    snprintf(t->detail, sizeof t->detail, "%s (OpenSSL error %d)", what,
             ssl_err);
  ERR_clear_error();
}

/* ---- The transport ---------------------------------------------------------- */

static void update_lower(tls_conn *t) {
  int read = !(t->flags & HS_DONE) || (t->flags & WANT_READ);
  if (t->low == NULL)
    return;
  if (eddy_stream_buffered(t->low) > LOW_READ_CAP)
    read = 0;
  if (read && (t->flags & LOW_PAUSED)) {
    t->flags &= ~LOW_PAUSED;
    eddy_stream_resume(t->low);
  } else if (!read && !(t->flags & LOW_PAUSED)) {
    t->flags |= LOW_PAUSED;
    eddy_stream_pause(t->low);
  }
}

static void do_shutdown(tls_conn *t) {
  t->flags &= ~SHUT_PENDING;
  ERR_clear_error();
  (void)SSL_shutdown(t->ssl); /* sends close_notify; reading goes on */
  ERR_clear_error();
  if (out_owner == t)
    flush_now(); /* even corked: the transport's shutdown follows at once */
  if (t->low)
    (void)eddy_stream_shutdown(t->low);
}

/* Runs the handshake as far as the input allows. Returns 1 when done, 0
 * when it needs more, -1 when it failed (the stream is ending). */
static int handshake(tls_conn *t) {
  int r, e;
  ERR_clear_error();
  r = SSL_do_handshake(t->ssl);
  e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL)
    ssl_detail(t, e);
  flush_out(t); /* the next flight, or the alert that explains a failure */
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    if (t->flags & LOW_EOF) {
      fail(t, EDDY_ETLS,
           "the peer closed the connection during the TLS "
           "handshake");
      return -1;
    }
    return 0;
  }
  if (e != SSL_ERROR_NONE) {
    fail(t, EDDY_ETLS, t->detail);
    return -1;
  }
  t->flags |= HS_DONE;
  eddy__timer_stop(&t->handshake_timer);
  if (t->on_handshake)
    t->on_handshake(t->up, eddy__stream_arg(t->up));
  if (t->flags & FINISHED)
    return -1;
  if (t->flags & SHUT_PENDING)
    do_shutdown(t);
  update_lower(t);
  return 1;
}

/* New input, or a change that may let the stream go on: handshake, then
 * queued writes, then reads. */
static void drive(tls_conn *t) {
  if (!(t->flags & HS_DONE) && handshake(t) <= 0)
    return;
  if (t->flags & WANT_WRITE)
    eddy__stream_layer_ready(t->up, EDDY__IO_WRITE);
  if (!(t->flags & FINISHED))
    eddy__stream_layer_ready(t->up, EDDY__IO_READ);
}

static void low_data(eddy_stream *low, const char *data, size_t len,
                     void *arg) {
  tls_conn *t = arg;
  (void)low;
  if (add_input(t, data, len) != 0) {
    fail(t, -ENOMEM, "out of memory while buffering TLS input");
    return;
  }
  cork(t);
  drive(t);
  uncork();
  if (t->flags & FINISHED) {
    t->lent = NULL; /* nothing reads it any more */
    t->lent_len = 0;
    return;
  }
  if (keep_input(t) != 0)
    fail(t, -ENOMEM, "out of memory while buffering TLS input");
  if (!(t->flags & FINISHED))
    update_lower(t);
}

static void low_eof(eddy_stream *low, void *arg) {
  tls_conn *t = arg;
  (void)low;
  t->flags |= LOW_EOF;
  drive(t);
}

static void low_drain(eddy_stream *low, void *arg) {
  tls_conn *t = arg;
  (void)low;
  if ((t->flags & (HS_DONE | WANT_WRITE)) == (HS_DONE | WANT_WRITE))
    eddy__stream_layer_ready(t->up, EDDY__IO_WRITE);
  if (!(t->flags & FINISHED))
    eddy__stream_layer_drained(t->up);
  if (!(t->flags & FINISHED))
    update_lower(t);
}

static void low_close(eddy_stream *low, int status, const char *detail,
                      void *arg) {
  tls_conn *t = arg;
  (void)low;
  t->low = NULL;
  t->flags |= LOW_EOF;
  if (status != 0)
    fail(t, status, detail);
  else
    drive(t); /* a clean end after our half-close: deliver what is left */
}

static const eddy_stream_callbacks low_callbacks = {low_data, low_eof,
                                                    low_drain, low_close};

/* ---- The handshake timer and the kick ---------------------------------------- */

static void handshake_expired(eddy__timer *timer, void *arg) {
  tls_conn *t = arg;
  (void)timer;
  fail(t, -ETIMEDOUT, "TLS handshake timed out");
}

static void kicked(eddy__soon *call, void *arg) {
  tls_conn *t = arg;
  (void)call;
  assert(t->lent_len == 0); /* lent bytes never outlive low_data */
  cork(t);
  if (!(t->flags & FINISHED))
    drive(t);
  uncork();
}

/* ---- The layer ------------------------------------------------------------- */

static int encrypt(tls_conn *t, const char *p, size_t len) {
  size_t w;
  if (SSL_write_ex(t->ssl, p, len, &w) == 1)
    return 0;
  ssl_detail(t, SSL_get_error(t->ssl, 0));
  flush_out(t);
  return EDDY_ETLS;
}

/* Encrypts up to SEND_BATCH bytes of iov, in records of 16 KiB: small
 * pieces are gathered into one record, large ones encrypted where they
 * lie. Returns the bytes taken, -EAGAIN, or an error. */
static ssize_t layer_send(void *layer, const struct iovec *iov, int n) {
  tls_conn *t = layer;
  char small[RECORD];
  size_t total = 0, fill = 0;
  if (t->flags & LOW_FAILED)
    return t->low_err;
  if (!(t->flags & HS_DONE))
    return -EAGAIN;
  if (t->low == NULL)
    return -EPIPE;
  if (eddy_stream_over_high(t->low))
    return -EAGAIN;
  ERR_clear_error();
  for (int i = 0; i < n && total + fill < SEND_BATCH; i++) {
    const char *p = iov[i].iov_base;
    size_t len = iov[i].iov_len;
    while (len > 0 && total + fill < SEND_BATCH) {
      size_t room = SEND_BATCH - total - fill;
      size_t k = len < room ? len : room;
      if (fill == 0 && k >= RECORD) {
        if (encrypt(t, p, RECORD))
          return EDDY_ETLS;
        total += RECORD;
        p += RECORD;
        len -= RECORD;
        continue;
      }
      k = k < RECORD - fill ? k : RECORD - fill;
      memcpy(small + fill, p, k);
      fill += k;
      p += k;
      len -= k;
      if (fill == RECORD) {
        if (encrypt(t, small, fill))
          return EDDY_ETLS;
        total += fill;
        fill = 0;
      }
    }
  }
  if (fill > 0) {
    if (encrypt(t, small, fill))
      return EDDY_ETLS;
    total += fill;
  }
  flush_out(t);
  if (t->flags & LOW_FAILED) /* the transport failed while taking it */
    return t->low_err;
  return total > 0 ? (ssize_t)total : -EAGAIN;
}

static ssize_t layer_recv(void *layer, char *buf, size_t len) {
  tls_conn *t = layer;
  size_t n = 0;
  int r, e;
  if (!(t->flags & HS_DONE))
    return -EAGAIN;
  ERR_clear_error();
  r = SSL_read_ex(t->ssl, buf, len, &n);
  e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
  if (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL)
    ssl_detail(t, e);
  flush_out(t); /* replies OpenSSL makes by itself (key updates) */
  switch (e) {
  case SSL_ERROR_NONE:
    return (ssize_t)n;
  case SSL_ERROR_ZERO_RETURN: /* close_notify: a clean end */
    return 0;
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    if (t->flags & LOW_EOF) {
      snprintf(t->detail, sizeof t->detail,
               "the peer closed the connection without TLS close_notify "
               "(the data may be truncated)");
      return EDDY_ETRUNCATED;
    }
    return -EAGAIN;
  default:
    return EDDY_ETLS;
  }
}

/* Input the stream could be given now, without the transport's help:
 * ciphertext not yet read, a record decrypted but not yet delivered, or
 * the transport's end. A partial record does not count: it needs more
 * bytes, and retrying it would only spin. */
static int pending_input(tls_conn *t) {
  return input_len(t) > 0 || SSL_pending(t->ssl) > 0 || (t->flags & LOW_EOF);
}

/* Once scheduled, a second kick before the first has run is the same
 * kick. A finished connection is never kicked: its memory may go. */
static void kick(tls_conn *t) {
  if (!(t->flags & FINISHED))
    eddy__soon_schedule(eddy_stream_loop(t->up), &t->kick);
}

static void layer_want(void *layer, int read, int write) {
  tls_conn *t = layer;
  int was_reading = (t->flags & WANT_READ) != 0;
  t->flags = (t->flags & ~(WANT_READ | WANT_WRITE)) | (read ? WANT_READ : 0u) |
             (write ? WANT_WRITE : 0u);
  update_lower(t);
  /* Bytes that arrived while the stream was paused come from the loop,
   * not from inside the resume call; only a resume needs this. */
  if (read && !was_reading && (t->flags & HS_DONE) && pending_input(t))
    kick(t);
  /* Queued bytes the transport has room for: a send takes one batch at a
   * time, and no event from the transport would ask for the rest. When it
   * has no room, its drain callback asks instead. */
  if (write && (t->flags & HS_DONE) && t->low && !eddy_stream_over_high(t->low))
    kick(t);
}

static int layer_shutdown(void *layer) {
  tls_conn *t = layer;
  if (t->flags & HS_DONE)
    do_shutdown(t);
  else
    t->flags |= SHUT_PENDING;
  return 0;
}

static void layer_finish(void *layer, int status) {
  tls_conn *t = layer;
  eddy_stream *low = t->low;
  t->flags |= FINISHED;
  eddy__timer_stop(&t->handshake_timer);
  eddy__soon_cancel(&t->kick);
  if (low == NULL)
    return;
  if (status == 0 && (t->flags & HS_DONE) &&
      !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
  }
  if (out_owner == t)
    flush_now(); /* close_notify, or the alert of a failure */
  t->low = NULL;
  eddy_stream_set_callbacks(low, NULL, NULL);
  (void)eddy_stream_set_linger(low, eddy__stream_linger(t->up));
  if (status == -ECONNABORTED || status == -ETIMEDOUT)
    eddy_stream_abort(low);
  else
    eddy_stream_close(low);
}

static const char *layer_detail(void *layer, int status) {
  tls_conn *t = layer;
  (void)status;
  return t->detail[0] ? t->detail : NULL;
}

static void conn_free(tls_conn *t) {
  if (out_owner == t) { /* cannot be after finish; never point at freed t */
    out_owner = NULL;
    out_len = 0;
  }
  SSL_free(t->ssl);
  eddy_buf_free(&t->saved);
  eddy_tls_ctx_free(t->ctx);
  eddy__free(t);
}

static void layer_release(void *layer) {
  assert(((tls_conn *)layer)->flags & FINISHED);
  conn_free(layer);
}

static eddy_stream *layer_lower(void *layer) {
  return ((tls_conn *)layer)->low;
}

static const eddy__layer_ops layer_ops = {
    layer_send,   layer_recv,   layer_want,    layer_shutdown,
    layer_finish, layer_detail, layer_release, layer_lower,
};

/* ---- Starting -------------------------------------------------------------- */

static int is_ip_literal(const char *name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name, buf) == 1 ||
         inet_pton(AF_INET6, name, buf) == 1;
}

/* The per-connection OpenSSL object: BIO, role, the name to verify. */
static int make_ssl(tls_conn *t, const char *server_name) {
  eddy_tls_ctx *ctx = t->ctx;
  BIO *bio;
  if ((t->ssl = SSL_new(ctx->ssl)) == NULL)
    return -ENOMEM;
  if ((bio = BIO_new(bio_method)) == NULL)
    return -ENOMEM;
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  if (ctx->server) {
    SSL_set_accept_state(t->ssl);
    return 0;
  }
  SSL_set_connect_state(t->ssl);
  if (server_name == NULL)
    return 0;
  if (is_ip_literal(server_name)) {
    /* RFC 6066: no SNI for an address; verify the address instead. */
    if (ctx->verify != EDDY_TLS_VERIFY_NONE &&
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name) != 1)
      return -EINVAL;
    return 0;
  }
  if (SSL_set_tlsext_host_name(t->ssl, server_name) != 1)
    return -EINVAL;
  if (ctx->verify != EDDY_TLS_VERIFY_NONE &&
      SSL_set1_host(t->ssl, server_name) != 1)
    return -EINVAL;
  return 0;
}

static void discard(tls_conn *t) {
  eddy__timer_stop(&t->handshake_timer);
  eddy__soon_cancel(&t->kick);
  conn_free(t);
  ERR_clear_error();
}

int eddy_tls_start(eddy_stream *s, eddy_tls_ctx *ctx, const char *server_name,
                   const void *pending, size_t len) {
  tls_conn *t;
  int err;
  if (s == NULL || ctx == NULL || (len > 0 && pending == NULL))
    return -EINVAL;
  if (!ctx->server && ctx->verify != EDDY_TLS_VERIFY_NONE &&
      (server_name == NULL || server_name[0] == '\0'))
    return -EINVAL; /* nothing to verify the certificate against */
  if (eddy__stream_layer_of(s, &layer_ops))
    return -EALREADY;
  pthread_once(&bio_once, make_method);
  if (bio_method == NULL)
    return -ENOMEM;
  if ((t = eddy__calloc(1, sizeof *t)) == NULL)
    return -ENOMEM;
  /* No cap: the transport stops being read while the stream is paused,
   * so at most one read's worth (64 KiB) is ever kept. */
  eddy_buf_init(&t->saved, 0);
  t->ctx = ctx;
  eddy__tls_ctx_ref(ctx);
  t->up = s;
  eddy__timer_init(eddy_stream_loop(s), &t->handshake_timer, handshake_expired,
                   t);
  eddy__soon_init(&t->kick, kicked, t);
  err = make_ssl(t, server_name);
  /* Fails only if the timer heap cannot grow. */
  if (err == 0)
    err = eddy__timer_start(&t->handshake_timer, ctx->handshake_timeout);
  if (err == 0)
    err = eddy_buf_append(&t->saved, pending, len);
  if (err == 0)
    err = eddy__stream_layer(s, &layer_ops, t, &t->low);
  if (err) {
    discard(t);
    return err;
  }
  eddy_stream_set_callbacks(t->low, &low_callbacks, t);
  /* The first flight (a client's hello, or a server's answer to pending
   * bytes) goes from the loop, like every later one. */
  kick(t);
  return 0;
}

/* ---- Questions ---------------------------------------------------------------- */

static tls_conn *conn_of(const eddy_stream *s) {
  return s ? eddy__stream_layer_of(s, &layer_ops) : NULL;
}

void eddy_tls_on_handshake(eddy_stream *s, eddy_tls_handshake_cb cb) {
  tls_conn *t = conn_of(s);
  if (t)
    t->on_handshake = cb;
}

int eddy_stream_is_tls(const eddy_stream *s) {
  return conn_of(s) != NULL;
}

int eddy_tls_handshake_done(const eddy_stream *s) {
  tls_conn *t = conn_of(s);
  return t && (t->flags & HS_DONE);
}

const char *eddy_tls_version(const eddy_stream *s) {
  tls_conn *t = conn_of(s);
  return t && (t->flags & HS_DONE) ? SSL_get_version(t->ssl) : NULL;
}

const char *eddy_tls_cipher(const eddy_stream *s) {
  tls_conn *t = conn_of(s);
  return t && (t->flags & HS_DONE) ? SSL_get_cipher_name(t->ssl) : NULL;
}

const char *eddy_tls_alpn(const eddy_stream *s) {
  tls_conn *t = conn_of(s);
  const unsigned char *p = NULL;
  unsigned n = 0;
  if (t == NULL)
    return NULL;
  SSL_get0_alpn_selected(t->ssl, &p, &n);
  if (p == NULL || n == 0)
    return NULL;
  memcpy(t->alpn, p, n);
  t->alpn[n] = '\0';
  return t->alpn;
}

const char *eddy_tls_server_name(const eddy_stream *s) {
  tls_conn *t = conn_of(s);
  return t ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int eddy_tls_resumed(const eddy_stream *s) {
  tls_conn *t = conn_of(s);
  return t ? SSL_session_reused(t->ssl) : 0;
}

int eddy_tls_peer_subject(const eddy_stream *s, char *buf, size_t len) {
  tls_conn *t = conn_of(s);
  X509 *peer;
  BIO *b;
  int n;
  if (t == NULL || buf == NULL || len == 0)
    return -EINVAL;
  if ((peer = SSL_get1_peer_certificate(t->ssl)) == NULL)
    return -ENOENT;
  b = BIO_new(BIO_s_mem());
  if (b == NULL) {
    X509_free(peer);
    return -ENOMEM;
  }
  X509_NAME_print_ex(b, X509_get_subject_name(peer), 0,
                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  n = BIO_read(b, buf, (int)len - 1);
  buf[n > 0 ? n : 0] = '\0';
  BIO_free(b);
  X509_free(peer);
  return 0;
}
