/* hub.c: topics, subscribers, and fan-out of one encoded block per wire
 * format to every subscriber.
 *
 * A topic's subscribers are a list the delivery walks; one that leaves
 * while a delivery (or a replay) is walking the topic is only marked, and
 * unlinked once no walk is left (the topic's busy count back at 0). The
 * history is trimmed at the same moment, so that a walk never meets a
 * message that has been freed under it. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "proto/comet/comet.h"
#include "sys/alloc.h"

#define DEFAULT_HISTORY_COUNT 256
#define DEFAULT_HISTORY_BYTES (1u << 20)

typedef struct topic topic;

/* A message: published, in the history, or both. Its event name and data
 * follow the struct in the same allocation. */
typedef struct entry {
  struct entry *next;
  eddy_comet_msg m;
  void *blocks[EDDY_COMET_MAX_FORMATS]; /* encoded, each holding one ref */
  size_t size;                          /* counted against history_bytes */
} entry;

struct eddy_comet_sub {
  eddy_comet_sub *prev, *next;
  eddy_comet_hub *h;
  topic *t;
  int format;
  int dead;
  eddy_comet_sub_callbacks cb;
  void *arg;
};

struct topic {
  topic *prev, *next;
  eddy_comet_sub *subs;
  size_t nsubs; /* live ones */
  size_t per_format[EDDY_COMET_MAX_FORMATS];
  entry *first, *last; /* the history, oldest first */
  size_t count, bytes;
  int busy;  /* walks in progress */
  int dirty; /* dead subscribers wait to be unlinked */
  char name[];
};

typedef struct wire_format {
  eddy_comet_encode_fn encode;
  void *arg;
  char name[32];
} wire_format;

struct eddy_comet_hub {
  eddy_comet_hub_options o;
  wire_format formats[EDDY_COMET_MAX_FORMATS];
  int nformats;
  topic *topics;
  uint64_t last_id;
  eddy_comet_hub_stats st;
  eddy_buf scratch; /* an encoder's output, before it becomes a block */
};

static void set_format(eddy_comet_hub *h, int i, const char *name,
                       eddy_comet_encode_fn fn, void *arg) {
  h->formats[i].encode = fn;
  h->formats[i].arg = arg;
  strncpy(h->formats[i].name, name ? name : "", sizeof h->formats[i].name - 1);
}

int eddy_comet_hub_new(const eddy_comet_hub_options *o, eddy_comet_hub **out) {
  eddy_comet_hub *h = eddy__calloc(1, sizeof *h);
  if (h == NULL)
    return -ENOMEM;
  if (o)
    h->o = *o;
  if (h->o.history_count == 0)
    h->o.history_count = DEFAULT_HISTORY_COUNT;
  if (h->o.history_bytes == 0)
    h->o.history_bytes = DEFAULT_HISTORY_BYTES;
  set_format(h, EDDY_COMET_SSE, "sse", eddy__comet_encode_sse, NULL);
  set_format(h, EDDY_COMET_SSE_CHUNKED, "sse-chunked",
             eddy__comet_encode_sse_chunked, NULL);
  set_format(h, EDDY_COMET_LINE, "line", eddy__comet_encode_line, NULL);
  h->nformats = 3;
  eddy_buf_init(&h->scratch, 0);
  *out = h;
  return 0;
}

int eddy_comet_format_add(eddy_comet_hub *h, const char *name,
                          eddy_comet_encode_fn encode, void *arg) {
  if (encode == NULL)
    return -EINVAL;
  if (h->nformats == EDDY_COMET_MAX_FORMATS)
    return -ENOSPC;
  set_format(h, h->nformats, name, encode, arg);
  return h->nformats++;
}

/* ---- Topics ------------------------------------------------------------------ */

static topic *find(const eddy_comet_hub *h, const char *name) {
  for (topic *t = h->topics; t; t = t->next)
    if (strcmp(t->name, name) == 0)
      return t;
  return NULL;
}

static topic *find_or_add(eddy_comet_hub *h, const char *name) {
  topic *t = find(h, name);
  size_t n;
  if (t)
    return t;
  n = strlen(name);
  if ((t = eddy__calloc(1, sizeof *t + n + 1)) == NULL)
    return NULL;
  memcpy(t->name, name, n + 1);
  t->next = h->topics;
  if (t->next)
    t->next->prev = t;
  h->topics = t;
  return t;
}

static void entry_free(entry *e) {
  for (int f = 0; f < EDDY_COMET_MAX_FORMATS; f++)
    eddy_comet_block_unref(e->blocks[f]);
  eddy__free(e);
}

/* A topic with nothing left in it goes. */
static void maybe_drop(eddy_comet_hub *h, topic *t) {
  if (t->busy || t->subs || t->first)
    return;
  if (t->prev)
    t->prev->next = t->next;
  else
    h->topics = t->next;
  if (t->next)
    t->next->prev = t->prev;
  eddy__free(t);
}

static void unlink_sub(topic *t, eddy_comet_sub *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    t->subs = s->next;
  if (s->next)
    s->next->prev = s->prev;
}

/* Once no walk is left: dead subscribers go, and the history is cut back
 * to its bounds. */
static void settle(eddy_comet_hub *h, topic *t) {
  if (t->busy)
    return;
  if (t->dirty) {
    eddy_comet_sub *s = t->subs, *next;
    for (; s; s = next) {
      next = s->next;
      if (s->dead) {
        unlink_sub(t, s);
        eddy__free(s);
      }
    }
    t->dirty = 0;
  }
  while (t->first && (t->count > h->o.history_count ||
                      t->bytes > h->o.history_bytes || h->o.no_history)) {
    entry *e = t->first;
    t->first = e->next;
    if (t->first == NULL)
      t->last = NULL;
    t->count--;
    t->bytes -= e->size;
    h->st.history--;
    h->st.history_size -= e->size;
    entry_free(e);
  }
  maybe_drop(h, t);
}

/* ---- Subscribers ------------------------------------------------------------- */

int eddy_comet_subscribe(eddy_comet_hub *h, const char *name, int format,
                         const eddy_comet_sub_callbacks *cb, void *arg,
                         eddy_comet_sub **out) {
  eddy_comet_sub *s;
  topic *t;
  if (name == NULL || *name == '\0' || format < 0 || format >= h->nformats ||
      cb == NULL || cb->send == NULL)
    return -EINVAL;
  if ((s = eddy__calloc(1, sizeof *s)) == NULL)
    return -ENOMEM;
  if ((t = find_or_add(h, name)) == NULL) {
    eddy__free(s);
    return -ENOMEM;
  }
  s->h = h;
  s->t = t;
  s->format = format;
  s->cb = *cb;
  s->arg = arg;
  s->next = t->subs;
  if (s->next)
    s->next->prev = s;
  t->subs = s;
  t->nsubs++;
  t->per_format[format]++;
  *out = s;
  return 0;
}

void eddy_comet_unsubscribe(eddy_comet_sub *s) {
  topic *t;
  if (s == NULL || s->dead)
    return;
  t = s->t;
  s->dead = 1;
  t->nsubs--;
  t->per_format[s->format]--;
  if (t->busy) {
    t->dirty = 1;
    return;
  }
  unlink_sub(t, s);
  maybe_drop(s->h, t);
  eddy__free(s);
}

/* ---- Publishing -------------------------------------------------------------- */

/* e's block for format f, encoded now if it has none. */
static int encode(eddy_comet_hub *h, topic *t, entry *e, int f) {
  wire_format *fm = &h->formats[f];
  void *b;
  size_t n;
  int err;
  if (e->blocks[f])
    return 0;
  eddy_buf_reset(&h->scratch);
  h->st.encoded++;
  if ((err = fm->encode(&e->m, &h->scratch, fm->arg)) != 0)
    return err;
  n = eddy_buf_len(&h->scratch);
  if ((b = eddy_comet_block_new(n)) == NULL)
    return -ENOMEM;
  if (n)
    memcpy(b, eddy_buf_data(&h->scratch), n);
  e->blocks[f] = b;
  e->size += n;
  if (e->next || t->last == e) { /* already in the history */
    t->bytes += n;
    h->st.history_size += n;
  }
  return 0;
}

static void deliver(eddy_comet_hub *h, eddy_comet_sub *s, entry *e) {
  void *b = e->blocks[s->format];
  h->st.delivered++;
  s->cb.send(s, eddy_comet_block_ref(b), eddy_comet_block_len(b), s->arg);
}

int eddy_comet_publish(eddy_comet_hub *h, const eddy_comet_msg *m,
                       uint64_t *id) {
  size_t evlen, size;
  topic *t;
  entry *e;
  char *p;
  int err = 0;
  if (m == NULL || m->topic == NULL || *m->topic == '\0' ||
      (m->event && strpbrk(m->event, "\r\n")) || (m->len && m->data == NULL))
    return -EINVAL;
  evlen = m->event ? strlen(m->event) + 1 : 0;
  if (m->len > SIZE_MAX - sizeof *e - evlen)
    return -ENOMEM;
  if ((t = find_or_add(h, m->topic)) == NULL)
    return -ENOMEM;
  size = sizeof *e + evlen + m->len;
  if ((e = eddy__calloc(1, size)) == NULL) {
    maybe_drop(h, t);
    return -ENOMEM;
  }
  p = (char *)(e + 1);
  e->m.id = h->last_id + 1;
  e->m.time_ms = m->time_ms;
  if (e->m.time_ms == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e->m.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  }
  e->m.topic = t->name;
  if (m->event) {
    memcpy(p, m->event, evlen);
    e->m.event = p;
    p += evlen;
  }
  if (m->len)
    memcpy(p, m->data, m->len);
  e->m.data = p;
  e->m.len = m->len;
  e->size = evlen + m->len;
  for (int f = 0; f < h->nformats && err == 0; f++)
    if (t->per_format[f] > 0)
      err = encode(h, t, e, f);
  if (err) {
    entry_free(e);
    maybe_drop(h, t);
    return err;
  }
  h->last_id = e->m.id;
  h->st.published++;
  if (id)
    *id = e->m.id;
  /* Into the history first, so that a subscriber publishing from its send
   * callback puts its message after this one. */
  if (t->last)
    t->last->next = e;
  else
    t->first = e;
  t->last = e;
  t->count++;
  t->bytes += e->size;
  h->st.history++;
  h->st.history_size += e->size;
  t->busy++;
  for (eddy_comet_sub *s = t->subs; s; s = s->next)
    if (!s->dead && e->blocks[s->format])
      deliver(h, s, e);
  t->busy--;
  settle(h, t);
  return 0;
}

int eddy_comet_replay(eddy_comet_sub *s, uint64_t since) {
  eddy_comet_hub *h = s->h;
  topic *t = s->t;
  int n = 0, err = 0;
  if (s->dead)
    return 0;
  t->busy++;
  for (entry *e = t->first; e && !s->dead; e = e->next) {
    if (e->m.id <= since)
      continue;
    if ((err = encode(h, t, e, s->format)) != 0)
      break;
    deliver(h, s, e);
    n++;
  }
  t->busy--;
  settle(h, t);
  return err ? err : n;
}

size_t eddy_comet_history(eddy_comet_hub *h, const char *name, uint64_t since,
                          void (*fn)(const eddy_comet_msg *m, void *arg),
                          void *arg) {
  topic *t = name ? find(h, name) : NULL;
  size_t n = 0;
  if (t == NULL)
    return 0;
  t->busy++;
  for (entry *e = t->first; e; e = e->next)
    if (e->m.id > since) {
      fn(&e->m, arg);
      n++;
    }
  t->busy--;
  settle(h, t);
  return n;
}

uint64_t eddy_comet_last_id(const eddy_comet_hub *h) {
  return h->last_id;
}

size_t eddy_comet_subscribers(const eddy_comet_hub *h, const char *name) {
  topic *t = name ? find(h, name) : NULL;
  return t ? t->nsubs : 0;
}

void eddy_comet_hub_stats_get(const eddy_comet_hub *h,
                              eddy_comet_hub_stats *st) {
  *st = h->st;
}

void eddy_comet_hub_free(eddy_comet_hub *h) {
  topic *t, *tn;
  if (h == NULL)
    return;
  /* Every topic busy: a gone callback that unsubscribes only marks. */
  for (t = h->topics; t; t = t->next)
    t->busy++;
  for (t = h->topics; t; t = t->next)
    for (eddy_comet_sub *s = t->subs; s; s = s->next)
      if (!s->dead && s->cb.gone)
        s->cb.gone(s, s->arg);
  for (t = h->topics; t; t = tn) {
    eddy_comet_sub *s, *sn;
    entry *e, *en;
    tn = t->next;
    for (s = t->subs; s; s = sn) {
      sn = s->next;
      eddy__free(s);
    }
    for (e = t->first; e; e = en) {
      en = e->next;
      entry_free(e);
    }
    eddy__free(t);
  }
  eddy_buf_free(&h->scratch);
  eddy__free(h);
}
