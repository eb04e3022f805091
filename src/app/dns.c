/* dns.c: `eddy dns`: an authoritative DNS server for the zones given, and
 * a caching forwarder for every other name when upstreams are given.
 *
 *   eddy dns --listen ENDPOINT... [--zone FILE...] [--forward ADDR[:PORT]...]
 *            [--cache-size N] [--query-log FILE] [--tcp-idle-timeout S]
 *
 * Each message goes through eddy__dns_respond (src/proto/dns/server.c),
 * which allocates nothing: over UDP the answer is sent from the loop turn
 * that read the query; over TCP (RFC 7766) each connection reads
 * length-prefixed queries one after another and answers each as soon as
 * it is ready, forwarded ones possibly out of order. SIGHUP loads every
 * zone file again and swaps the new zones in only if all of them load;
 * SIGTERM and SIGINT stop (exit 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"
#include "proto/dns/dns.h"
#include "proto/dns/forward.h"
#include "proto/dns/server.h"
#include "proto/dns/zone.h"

#define MAX_ZONES 256
#define MAX_UDP 16
#define TCP_MSG_MAX 65535
/* Forwarded questions one TCP connection may have waiting before it is
 * read no more until some are answered. */
#define TCP_PENDING_MAX 64
/* Forwarded UDP questions waiting at once; past it a query is answered
 * SERVFAIL at once rather than holding memory for a flood. */
#define UDP_PENDING_MAX 65536
#define DEFAULT_TCP_IDLE 30

typedef struct pending pending;
typedef struct conn conn;

typedef struct dns_app {
  app_server srv;
  const char *zones[MAX_ZONES];
  int nzones;
  eddy__dns_zone_db *db;
  eddy_udp *udp[MAX_UDP];
  const char *udp_names[MAX_UDP];
  int nudp;
  eddy__dns_forward_config fcfg;
  eddy__dns_forwarder *fwd;
  FILE *query_log;
  const char *query_log_path;
  eddy_timer *ready;
  pending *udp_pending; /* forwarded UDP questions, doubly linked */
  size_t nudp_pending;
  conn *conns; /* the TCP connections, doubly linked */
} dns_app;

/* A forwarded question waiting for its answer: from a UDP client (u and
 * the address) or a TCP connection (c). */
struct pending {
  dns_app *app;
  pending *prev, *next;
  eddy__dns_forward_req *req;
  conn *c;
  eddy_udp *u;
  struct sockaddr_storage from;
  socklen_t fromlen;
};

struct conn {
  dns_app *app;
  conn *prev, *next;
  eddy_stream *s;
  uint8_t *in; /* bytes read and not yet framed */
  size_t len, cap;
  pending *pending; /* this connection's forwarded questions */
  size_t npending;
  int paused_for_pending;
  int eof; /* the client half-closed: close once its answers are out */
};

static _Thread_local eddy__dns_scratch scratch;
/* Two bytes of TCP length, then the answer. */
static _Thread_local uint8_t answer_buf[2 + TCP_MSG_MAX];

/* ---- The query log ------------------------------------------------------ */

static void log_query(dns_app *app, const char *transport) {
  const eddy_dns_query_t *q = &scratch.q;
  char name[EDDY_DNS_NAME_TEXT_MAX], tbuf[EDDY_DNS_TYPE_TEXT_MAX];
  if (app->query_log == NULL)
    return;
  if (q->qname_len == 0 ||
      eddy_dns_name_to_text(q->qname, name, sizeof name) < 0) {
    fprintf(app->query_log, "%s - -\n", transport);
  } else {
    fprintf(app->query_log, "%s %s %s\n", transport, name,
            eddy_dns_type_to_text(q->qtype, tbuf, sizeof tbuf));
  }
  fflush(app->query_log);
}

/* ---- Forwarded questions ------------------------------------------------ */

static void unlink_pending(pending *p) {
  pending **head = p->c ? &p->c->pending : &p->app->udp_pending;
  if (p->prev)
    p->prev->next = p->next;
  else
    *head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  if (p->c)
    p->c->npending--;
  else
    p->app->nudp_pending--;
}

static void link_pending(pending *p) {
  pending **head = p->c ? &p->c->pending : &p->app->udp_pending;
  p->prev = NULL;
  p->next = *head;
  if (*head)
    (*head)->prev = p;
  *head = p;
  if (p->c)
    p->c->npending++;
  else
    p->app->nudp_pending++;
}

static void tcp_send(conn *c, uint8_t *framed, size_t len);
static void tcp_resume_if_room(conn *c);

static void forwarded(void *arg, const uint8_t *msg, size_t len) {
  pending *p = arg;
  conn *c = p->c;
  unlink_pending(p);
  if (c != NULL) {
    /* The answer is borrowed: frame it in our buffer. */
    if (len <= TCP_MSG_MAX) {
      memcpy(answer_buf + 2, msg, len);
      tcp_send(c, answer_buf, len);
    }
    if (c->eof && c->npending == 0)
      eddy_stream_close(c->s); /* after the answers written */
    else
      tcp_resume_if_room(c);
  } else {
    (void)eddy_udp_send(p->u, msg, len, (struct sockaddr *)&p->from,
                        p->fromlen);
  }
  free(p);
}

/* Hands scratch.q to the forwarder for a UDP client (u, from) or a TCP
 * connection c. Returns the length of an answer to send now (from the
 * cache, or SERVFAIL), written in out, or 0 when it will come later. */
static int forward(dns_app *app, conn *c, eddy_udp *u,
                   const struct sockaddr *from, socklen_t fromlen, size_t cap,
                   uint8_t *out) {
  pending *p;
  int n;
  if (c == NULL && app->nudp_pending >= UDP_PENDING_MAX)
    return eddy__dns_respond_rcode(&scratch.q, EDDY_DNS_RCODE_SERVFAIL, out,
                                   cap);
  if ((p = calloc(1, sizeof *p)) == NULL)
    return eddy__dns_respond_rcode(&scratch.q, EDDY_DNS_RCODE_SERVFAIL, out,
                                   cap);
  p->app = app;
  p->c = c;
  p->u = u;
  if (from != NULL) {
    memcpy(&p->from, from, fromlen);
    p->fromlen = fromlen;
  }
  n = eddy__dns_forward(app->fwd, &scratch.q, cap, out, forwarded, p, &p->req);
  if (n != 0) {
    free(p);
    return n > 0 ? n
                 : eddy__dns_respond_rcode(&scratch.q, EDDY_DNS_RCODE_SERVFAIL,
                                           out, cap);
  }
  link_pending(p);
  return 0;
}

static void cancel_all(pending **head) {
  while (*head) {
    pending *p = *head;
    eddy__dns_forward_cancel(p->req);
    unlink_pending(p);
    free(p);
  }
}

/* ---- UDP ---------------------------------------------------------------- */

static void on_datagram(eddy_udp *u, const char *data, size_t len,
                        const struct sockaddr *from, socklen_t fromlen,
                        void *arg) {
  dns_app *app = arg;
  uint8_t *out = answer_buf + 2;
  int n = eddy__dns_respond(app->db, (const uint8_t *)data, len, EDDY__DNS_UDP,
                            app->fwd != NULL, &scratch, out, TCP_MSG_MAX);
  if (app->query_log && scratch.verdict != EDDY_DNS_VERDICT_DROP)
    log_query(app, "udp");
  if (n == EDDY__DNS_RESPOND_FORWARD)
    n = forward(app, NULL, u, from, fromlen, scratch.q.udp_size, out);
  if (n > 0)
    (void)eddy_udp_send(u, out, (size_t)n, from, fromlen);
}

static void on_udp_error(eddy_udp *u, int err, void *arg) {
  dns_app *app = arg;
  (void)u;
  if (app_log_allow(&app->srv.warnings, LOG_DEBUG, "dns"))
    app_log(LOG_DEBUG, "dns: udp: %s", eddy_strerror(err));
}

static int open_udp(dns_app *app) {
  for (int i = 0; i < app->nudp; i++) {
    eddy_endpoint ep;
    char err[256], quoted[256], detail[512];
    int v6,
        e = eddy_endpoint_parse_server(app->udp_names[i], &ep, err, sizeof err);
    if (e == 0)
      e = eddy_udp_open_endpoint(app->srv.loop, &ep, on_datagram, app,
                                 &app->udp[i], err, sizeof err);
    if (e != 0) {
      fprintf(stderr, "eddy dns: cannot listen on '%s': %s\n",
              app_quote(quoted, sizeof quoted, app->udp_names[i]),
              app_quote(detail, sizeof detail, err));
      return e == EDDY_EPARSE ? 2 : 1;
    }
    eddy_udp_on_error(app->udp[i], on_udp_error);
    /* Many queries per system call under load; without the memory for
     * it, one at a time still works. */
    (void)eddy_udp_set_batching(app->udp[i], 1);
    v6 = strchr(ep.host, ':') != NULL;
    app_log(LOG_INFO, "dns: listening on udp:%s%s%s:%d", v6 ? "[" : "",
            ep.host[0] ? ep.host : "0.0.0.0", v6 ? "]" : "",
            eddy_udp_port(app->udp[i]));
  }
  return 0;
}

static void close_udp(dns_app *app) {
  cancel_all(&app->udp_pending);
  for (int i = 0; i < app->nudp; i++)
    if (app->udp[i]) {
      eddy_udp_close(app->udp[i]);
      app->udp[i] = NULL;
    }
}

/* ---- TCP ---------------------------------------------------------------- */

static void tcp_send(conn *c, uint8_t *framed, size_t len) {
  eddy__dns_put16(framed, (uint16_t)len);
  if (eddy_stream_write(c->s, framed, len + 2) != 0)
    return; /* closing: its close callback cleans up */
  if (eddy_stream_over_high(c->s))
    eddy_stream_pause(c->s);
}

static void tcp_resume_if_room(conn *c) {
  if (c->paused_for_pending && c->npending < TCP_PENDING_MAX / 2) {
    c->paused_for_pending = 0;
    if (!eddy_stream_over_high(c->s))
      eddy_stream_resume(c->s);
  }
}

/* Answers every whole message in c->in. */
static void tcp_frames(conn *c) {
  dns_app *app = c->app;
  size_t off = 0;
  while (c->len - off >= 2) {
    size_t mlen = eddy__dns_get16(c->in + off);
    int n;
    if (c->len - off < 2 + mlen)
      break;
    n = eddy__dns_respond(app->db, c->in + off + 2, mlen, EDDY__DNS_TCP,
                          app->fwd != NULL, &scratch, answer_buf + 2,
                          TCP_MSG_MAX);
    off += 2 + mlen;
    if (app->query_log && scratch.verdict != EDDY_DNS_VERDICT_DROP)
      log_query(app, "tcp");
    if (n == EDDY__DNS_RESPOND_FORWARD)
      n = forward(app, c, NULL, NULL, 0, TCP_MSG_MAX, answer_buf + 2);
    if (n > 0)
      tcp_send(c, answer_buf, (size_t)n);
    if (c->s == NULL)
      break;
    if (c->npending >= TCP_PENDING_MAX) {
      c->paused_for_pending = 1;
      eddy_stream_pause(c->s);
      break;
    }
  }
  if (off > 0) {
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
  }
}

static void tcp_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  conn *c = arg;
  while (len > 0) {
    size_t room, take;
    if (c->cap - c->len == 0) {
      /* Room for the longest message and its length, and no more: a
       * client cannot make a connection hold more than that unread. */
      size_t cap = c->cap ? c->cap * 2 : 512;
      uint8_t *in;
      if (cap > 2 + TCP_MSG_MAX)
        cap = 2 + TCP_MSG_MAX;
      if (cap <= c->cap || (in = realloc(c->in, cap)) == NULL) {
        eddy_stream_abort(s);
        return;
      }
      c->in = in;
      c->cap = cap;
    }
    room = c->cap - c->len;
    take = len < room ? len : room;
    memcpy(c->in + c->len, data, take);
    c->len += take;
    data += take;
    len -= take;
    tcp_frames(c);
    if (c->paused_for_pending && len > 0) {
      /* Paused with bytes in hand: keep them if they fit, else this
       * client sends faster than its answers come: close it. */
      if (len > c->cap - c->len) {
        eddy_stream_abort(s);
        return;
      }
      memcpy(c->in + c->len, data, len);
      c->len += len;
      return;
    }
  }
}

/* A client that half-closes still gets the answers to what it asked
 * (RFC 7766 section 6.2.4), the forwarded ones too. */
static void tcp_eof(eddy_stream *s, void *arg) {
  conn *c = arg;
  c->eof = 1;
  if (c->npending == 0)
    eddy_stream_close(s);
}

static void tcp_drain(eddy_stream *s, void *arg) {
  conn *c = arg;
  if (!c->paused_for_pending)
    eddy_stream_resume(s);
}

static void tcp_closed(eddy_stream *s, int status, const char *detail,
                       void *arg) {
  conn *c = arg;
  app_server *srv = &c->app->srv;
  (void)s;
  c->s = NULL;
  cancel_all(&c->pending);
  if (c->prev)
    c->prev->next = c->next;
  else
    c->app->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  if (status != 0)
    app_server_log_close(srv, NULL, status, detail);
  free(c->in);
  free(c);
  app_server_closed_one(srv);
}

static const eddy_stream_callbacks tcp_callbacks = {.data = tcp_data,
                                                    .eof = tcp_eof,
                                                    .drain = tcp_drain,
                                                    .close = tcp_closed};

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  dns_app *app = arg;
  conn *c;
  (void)l;
  if (app_server_set_idle(&app->srv, s) != 0 ||
      (c = calloc(1, sizeof *c)) == NULL) {
    eddy_stream_abort(s);
    return;
  }
  c->app = app;
  c->s = s;
  c->next = app->conns;
  if (app->conns)
    app->conns->prev = c;
  app->conns = c;
  app->srv.open++;
  eddy_stream_set_callbacks(s, &tcp_callbacks, c);
}

/* ---- Zones ---------------------------------------------------------------- */

/* Loads every zone file into a new database: 0, or -1 with the problem in
 * msg ("FILE:LINE: ..."). */
static int load_zones(dns_app *app, eddy__dns_zone_db **out, char *msg,
                      size_t cap) {
  eddy__dns_zone_db *db;
  size_t records = 0;
  if (eddy__dns_zone_db_new(&db) != 0) {
    snprintf(msg, cap, "out of memory");
    return -1;
  }
  for (int i = 0; i < app->nzones; i++) {
    int e = eddy__dns_zone_db_add(db, app->zones[i], NULL);
    if (e != 0) {
      const char *why = eddy__dns_zone_db_error(db);
      snprintf(msg, cap, "%s", why[0] ? why : eddy_strerror(e));
      eddy__dns_zone_db_free(db);
      return -1;
    }
  }
  for (size_t i = 0; i < eddy__dns_zone_db_count(db); i++)
    records += eddy__dns_zone_records(eddy__dns_zone_db_zone(db, i));
  snprintf(msg, cap, "%zu zone(s), %zu record(s)", eddy__dns_zone_db_count(db),
           records);
  *out = db;
  return 0;
}

static int reload_zones(app_server *srv, int signum) {
  dns_app *app = (dns_app *)srv;
  eddy__dns_zone_db *db;
  char msg[600];
  if (app->nzones == 0)
    return 0;
  if (load_zones(app, &db, msg, sizeof msg) != 0) {
    app_log(LOG_WARN, "dns: %s: reload failed: %s; the old zones keep serving",
            strsignal(signum), msg);
    return 1;
  }
  /* Lookups run inside loop callbacks only, never across turns: the old
   * database has no reader left. */
  eddy__dns_zone_db_free(app->db);
  app->db = db;
  app_log(LOG_INFO, "dns: %s: reloaded %s", strsignal(signum), msg);
  return 1;
}

/* ---- Running ---------------------------------------------------------------- */

static void on_ready(eddy_timer *t, void *arg) {
  dns_app *app = arg;
  (void)t;
  app_log(LOG_INFO, "dns: serving %zu zone(s)%s",
          app->db ? eddy__dns_zone_db_count(app->db) : 0,
          app->fwd ? ", forwarding the rest" : "");
}

static void on_stop(app_server *srv) {
  close_udp((dns_app *)srv);
}

static void on_close(app_server *srv) {
  dns_app *app = (dns_app *)srv;
  close_udp(app);
  /* The TCP connections are closed after this: their questions are
   * given up now, while the forwarder that holds them still exists. */
  for (conn *c = app->conns; c; c = c->next)
    cancel_all(&c->pending);
  eddy__dns_forwarder_free(app->fwd);
  app->fwd = NULL;
}

static void usage(void) {
  printf(
      "Usage: eddy dns --listen ENDPOINT [--listen ENDPOINT...] [--zone "
      "FILE...]\n"
      "                [--forward ADDR[:PORT]...] [--cache-size N]\n"
      "                [--query-log FILE] [--tcp-idle-timeout S] [--grace S]\n"
      "\n"
      "Answers DNS queries for the zones in the master files given, and,\n"
      "with --forward, every other name through the upstream servers,\n"
      "caching their answers.\n"
      "\n"
      "  --listen ENDPOINT     udp:PORT[:interface=ADDR] for UDP, or a stream\n"
      "                        endpoint (tcp:53:interface=127.0.0.1) for TCP\n"
      "                        (repeatable; list both for one port)\n"
      "  --zone FILE           an RFC 1035 master file; the zone is named by\n"
      "                        its SOA record (repeatable)\n"
      "  --forward ADDR[:PORT] an upstream server for names outside the\n"
      "                        zones (repeatable, tried in order; port 53)\n"
      "  --cache-size N        answers the forwarder keeps (default 10000)\n"
      "  --query-log FILE      one line per query: transport, name, type\n"
      "                        ('-' for standard output)\n"
      "  --tcp-idle-timeout S  close a TCP connection quiet for S seconds\n"
      "                        (default 30)\n"
      "  --grace S             on SIGTERM/SIGINT, let TCP connections finish\n"
      "                        for S seconds (default 10)\n"
      "\n"
      "SIGHUP reloads every zone file; if one fails, the old zones keep\n"
      "serving.\n");
}

static int bad_option(const char *before, const char *value,
                      const char *after) {
  return app_usage_error("dns", before, value, after);
}

/* Sorts one --listen value: udp: ones are ours, the others the server's. */
static int add_listen(dns_app *app, const char *value) {
  if (strncmp(value, "udp:", 4) == 0) {
    if (app->nudp == MAX_UDP)
      return bad_option("too many udp: endpoints at ", value, "");
    app->udp_names[app->nudp++] = value;
    return 0;
  }
  if (app->srv.nendpoints == APP_MAX_LISTEN)
    return bad_option("too many --listen endpoints at ", value, "");
  app->srv.endpoints[app->srv.nendpoints++] = value;
  return 0;
}

static int parse_options(dns_app *app, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int rc;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage();
      return -1;
    }
    if (app_option_value(argc, argv, &i, "--listen", &v)) {
      if (v == NULL)
        return bad_option("--listen needs an endpoint", NULL, NULL);
      if ((rc = add_listen(app, v)) != 0)
        return rc;
    } else if (app_option_value(argc, argv, &i, "--zone", &v)) {
      if (v == NULL || v[0] == '\0')
        return bad_option("--zone needs a file", NULL, NULL);
      if (app->nzones == MAX_ZONES)
        return bad_option("too many zones at ", v, "");
      app->zones[app->nzones++] = v;
    } else if (app_option_value(argc, argv, &i, "--forward", &v)) {
      eddy__dns_exchange_opts *o = &app->fcfg.upstream;
      if (v == NULL)
        return bad_option("--forward needs ADDR[:PORT]", NULL, NULL);
      if (o->nservers == EDDY__DNS_UPSTREAMS_MAX)
        return bad_option("too many --forward servers at ", v, "");
      if (eddy__dns_upstream_parse(v, &o->servers[o->nservers]) != 0)
        return bad_option("--forward ", v,
                          " is not ADDR[:PORT] with a numeric address");
      o->nservers++;
    } else if (app_option_value(argc, argv, &i, "--cache-size", &v)) {
      char *end;
      unsigned long long n;
      if (v == NULL)
        return bad_option("--cache-size needs a number", NULL, NULL);
      errno = 0;
      n = strtoull(v, &end, 10);
      if (errno || end == v || *end || v[0] == '-' || n < 1 || n > 100000000)
        return bad_option("--cache-size ", v,
                          " is not a number from 1 to 100000000");
      app->fcfg.cache_size = (size_t)n;
    } else if (app_option_value(argc, argv, &i, "--query-log", &v)) {
      if (v == NULL || v[0] == '\0')
        return bad_option("--query-log needs a file", NULL, NULL);
      app->query_log_path = v;
    } else if ((rc = app_seconds_option("dns", argc, argv, &i,
                                        "--tcp-idle-timeout", 0, 86400,
                                        &app->srv.idle_s)) != 0) {
      if (rc < 0)
        return 2;
    } else if ((rc = app_server_option(&app->srv, argc, argv, &i)) != 0) {
      if (rc < 0)
        return 2;
    } else {
      return bad_option("unknown option ", argv[i], "; see 'eddy dns --help'");
    }
  }
  if (app->nudp == 0 && app->srv.nendpoints == 0)
    return bad_option("at least one --listen ENDPOINT is needed", NULL, NULL);
  if (app->nzones == 0 && app->fcfg.upstream.nservers == 0)
    return bad_option("nothing to serve: give --zone FILE or --forward ADDR",
                      NULL, NULL);
  return 0;
}

/* The loop when the server never ran (a UDP socket failed to open). */
static void discard_loop(dns_app *app) {
  on_close(&app->srv);
  eddy_loop_close_all(app->srv.loop);
  eddy_loop_run(app->srv.loop, EDDY_RUN_UNTIL_IDLE);
  eddy_loop_free(app->srv.loop);
}

static int setup(dns_app *app) {
  char msg[600];
  int e, status;
  if (app->nzones > 0 && load_zones(app, &app->db, msg, sizeof msg) != 0) {
    fprintf(stderr, "eddy dns: %s\n", msg);
    return 1;
  }
  if (app->query_log_path) {
    app->query_log = strcmp(app->query_log_path, "-") == 0
                         ? stdout
                         : fopen(app->query_log_path, "ae");
    if (app->query_log == NULL) {
      fprintf(stderr, "eddy dns: --query-log '%s': %s\n", app->query_log_path,
              strerror(errno));
      return 1;
    }
  }
  /* The stream listeners' checks (none is fine: UDP only). */
  if (app->srv.nendpoints > 0 && (status = app_server_start(&app->srv)) != 0)
    return status;
  if (app->srv.nendpoints == 0 &&
      (e = eddy_loop_new(NULL, &app->srv.loop)) != 0) {
    fprintf(stderr, "eddy dns: %s\n", eddy_strerror(e));
    return 1;
  }
  if (app->fcfg.upstream.nservers > 0) {
    app->fcfg.upstream.rd = true;
    if ((e = eddy__dns_forwarder_new(app->srv.loop, &app->fcfg, &app->fwd)) !=
        0) {
      fprintf(stderr, "eddy dns: the forwarder: %s\n", eddy_strerror(e));
      discard_loop(app);
      return 1;
    }
  }
  if ((status = open_udp(app)) != 0) {
    discard_loop(app);
    return status;
  }
  if ((e = eddy_timer_new(app->srv.loop, on_ready, app, &app->ready)) != 0 ||
      (e = eddy_timer_start(app->ready, 0, 0)) != 0) {
    fprintf(stderr, "eddy dns: %s\n", eddy_strerror(e));
    discard_loop(app);
    return 1;
  }
  return 0;
}

int app_dns(int argc, char **argv) {
  dns_app *app = calloc(1, sizeof *app);
  int status;
  if (app == NULL) {
    fprintf(stderr, "eddy dns: out of memory\n");
    return 1;
  }
  app->srv.name = "dns";
  app->srv.grace_s = 10;
  app->srv.idle_s = DEFAULT_TCP_IDLE;
  app->srv.on_accept = on_accept;
  app->srv.arg = app;
  app->srv.reload = reload_zones;
  app->srv.on_stop = on_stop;
  app->srv.on_close = on_close;
  status = parse_options(app, argc, argv);
  if (status == 0)
    status = setup(app);
  else if (status < 0)
    status = 0; /* --help */
  if (status == 0 && app->srv.loop)
    status = app_server_run(&app->srv);
  if (app->query_log && app->query_log != stdout)
    fclose(app->query_log);
  eddy__dns_zone_db_free(app->db);
  free(app);
  return status;
}
