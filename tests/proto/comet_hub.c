/* The publish/subscribe hub on its own: one encode per format however many
 * subscribers, one shared block with a reference each, lazy encoding,
 * history bounds and replay, subscribers leaving during a delivery,
 * nested publishing, freeing a hub with subscribers, and every allocation
 * failure of a publish leaving nothing behind. Also the SSE and line
 * encodings, byte for byte. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define NSUBS 1000

typedef struct rec {
  eddy_comet_sub *sub;
  int got;
  void *last; /* the last block, still held (keep) or not */
  size_t last_len;
  int keep;       /* hold the block instead of dropping it */
  char text[256]; /* the bytes of every block, in order */
  size_t n;
  int gone;
  /* reactions */
  eddy_comet_sub *kill; /* unsubscribe this one on delivery */
  int leave;            /* unsubscribe self on delivery */
  eddy_comet_hub *hub;  /* publish into it on the first delivery */
} rec;

static void rec_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  rec *r = arg;
  r->got++;
  if (r->n + len < sizeof r->text) {
    memcpy(r->text + r->n, block, len);
    r->n += len;
    r->text[r->n] = '\0';
  }
  if (r->keep) {
    eddy_comet_block_unref(r->last);
    r->last = block;
  } else {
    r->last = block;
    eddy_comet_block_unref(block);
  }
  r->last_len = len;
  if (r->kill) {
    eddy_comet_unsubscribe(r->kill);
    r->kill = NULL;
  }
  if (r->leave) {
    eddy_comet_unsubscribe(sub);
    r->sub = NULL;
  }
  if (r->hub) {
    eddy_comet_hub *h = r->hub;
    eddy_comet_msg m = {.topic = "t", .data = "nested", .len = 6};
    r->hub = NULL;
    EXPECT_OK(eddy_comet_publish(h, &m, NULL));
  }
}

static void rec_gone(eddy_comet_sub *sub, void *arg) {
  rec *r = arg;
  (void)sub;
  r->gone++;
  r->sub = NULL;
}

static const eddy_comet_sub_callbacks rec_cb = {rec_send, rec_gone};

static int encodes;

static int count_encode(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  char head[32];
  int n = snprintf(head, sizeof head, "%llu:", (unsigned long long)m->id);
  (void)arg;
  encodes++;
  if (eddy_buf_append(out, head, (size_t)n) != 0 ||
      eddy_buf_append(out, m->data, m->len) != 0)
    return -ENOMEM;
  return 0;
}

static int publish(eddy_comet_hub *h, const char *topic, const char *text) {
  eddy_comet_msg m = {.topic = topic, .data = text, .len = strlen(text)};
  return eddy_comet_publish(h, &m, NULL);
}

Test(comet_hub, sse_encoding_splits_every_line_ending) {
  eddy_buf b;
  eddy_buf_init(&b, 0);
  EXPECT_OK(eddy_comet_sse_encode(&b, "chat", "7", "a\r\nb\rc\nd", 8));
  EXPECT_OK(eddy_buf_append(&b, "", 1));
  EXPECT_STR(eddy_buf_data(&b),
             "event: chat\nid: 7\ndata: a\ndata: b\n"
             "data: c\ndata: d\n\n");
  eddy_buf_reset(&b);
  EXPECT_OK(eddy_comet_sse_encode(&b, NULL, NULL, "x\n", 2));
  EXPECT_OK(eddy_comet_sse_encode(&b, NULL, NULL, "", 0));
  EXPECT_OK(eddy_buf_append(&b, "", 1));
  EXPECT_STR(eddy_buf_data(&b), "data: x\ndata: \n\ndata: \n\n");
  eddy_buf_reset(&b);
  EXPECT_EQ(eddy_comet_sse_encode(&b, "a\nb", NULL, "x", 1), -EINVAL);
  EXPECT_EQ(eddy_comet_sse_encode(&b, NULL, "1\r", "x", 1), -EINVAL);
  EXPECT_EQ(eddy_buf_len(&b), 0);
  eddy_buf_free(&b);
  EXPECT_LIVE(0);
}

Test(comet_hub, builtin_formats_byte_for_byte) {
  eddy_comet_hub *h;
  rec a = {0}, b = {0}, c = {0};
  eddy_comet_msg m = {.topic = "t",
                      .event = "say",
                      .data = "hi\nyou",
                      .len = 6};
  uint64_t id;
  EXPECT_OK(eddy_comet_hub_new(NULL, &h));
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_SSE, &rec_cb, &a, &a.sub));
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_SSE_CHUNKED, &rec_cb, &b,
                                 &b.sub));
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_LINE, &rec_cb, &c, &c.sub));
  EXPECT_OK(eddy_comet_publish(h, &m, &id));
  EXPECT_EQ(id, 1);
  EXPECT_STR(a.text, "event: say\nid: 1\ndata: hi\ndata: you\n\n");
  EXPECT_STR(b.text,
             "00000025\r\nevent: say\nid: 1\ndata: hi\ndata: you\n\n"
             "\r\n");
  EXPECT_STR(c.text, "hi you\n");
  m.event = "bad\r";
  EXPECT_EQ(eddy_comet_publish(h, &m, &id), -EINVAL);
  m.event = NULL;
  m.topic = "";
  EXPECT_EQ(eddy_comet_publish(h, &m, &id), -EINVAL);
  EXPECT_EQ(eddy_comet_last_id(h), 1);
  eddy_comet_hub_free(h);
  EXPECT_EQ(a.gone + b.gone + c.gone, 3);
  EXPECT_LIVE(0);
}

Test(comet_hub, fan_out_encodes_once_per_format_and_shares_one_block) {
  eddy_comet_hub *h;
  eddy_comet_hub_options o = {.no_history = 1};
  static rec subs[NSUBS];
  eddy_comet_hub_stats st;
  int fmt, other;
  memset(subs, 0, sizeof subs);
  EXPECT_OK(eddy_comet_hub_new(&o, &h));
  fmt = eddy_comet_format_add(h, "counted", count_encode, NULL);
  other = eddy_comet_format_add(h, "unused", count_encode, NULL);
  EXPECT_EQ(fmt, 3);
  EXPECT_EQ(other, 4);
  for (int i = 0; i < NSUBS; i++) {
    subs[i].keep = 1;
    EXPECT_OK(eddy_comet_subscribe(h, "room", i % 2 ? fmt : EDDY_COMET_LINE,
                                   &rec_cb, &subs[i], &subs[i].sub));
  }
  encodes = 0;
  EXPECT_OK(publish(h, "room", "hello"));
  /* Once for "counted"; the unused format was never encoded. */
  EXPECT_EQ(encodes, 1);
  eddy_comet_hub_stats_get(h, &st);
  EXPECT_EQ(st.encoded, 2);
  EXPECT_EQ(st.delivered, NSUBS);
  for (int i = 2; i < NSUBS; i++)
    cr_assert(subs[i].last == subs[i % 2].last, "subscriber %d's block", i);
  /* One reference per subscriber, none kept by the hub (no history). */
  EXPECT_EQ(eddy_comet_block_refs(subs[0].last), NSUBS / 2);
  EXPECT_EQ(eddy_comet_block_refs(subs[1].last), NSUBS / 2);
  EXPECT_STR(subs[1].text, "1:hello");
  {
    long live = eddy__alloc_live();
    for (int i = 0; i < NSUBS; i++) {
      eddy_comet_block_unref(subs[i].last);
      subs[i].last = NULL;
      subs[i].keep = 0;
    }
#ifdef EDDY_FAULTS
    EXPECT_EQ(eddy__alloc_live(), live - 2); /* two blocks, freed once */
#else
    (void)live;
#endif
  }
  /* A topic nobody follows costs no encoding. */
  encodes = 0;
  EXPECT_OK(publish(h, "empty", "x"));
  EXPECT_EQ(encodes, 0);
  eddy_comet_hub_free(h);
  EXPECT_LIVE(0);
}

Test(comet_hub, leaving_during_a_delivery) {
  eddy_comet_hub *h;
  rec a = {0}, b = {0}, c = {0};
  EXPECT_OK(eddy_comet_hub_new(NULL, &h));
  /* Subscribers are walked newest first: c, b, a. */
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_LINE, &rec_cb, &a, &a.sub));
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_LINE, &rec_cb, &b, &b.sub));
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_LINE, &rec_cb, &c, &c.sub));
  c.leave = 1;
  c.kill = b.sub; /* b is still to come in this delivery */
  EXPECT_OK(publish(h, "t", "one"));
  EXPECT_EQ(c.got, 1);
  EXPECT_EQ(b.got, 0);
  EXPECT_EQ(a.got, 1);
  EXPECT_EQ(eddy_comet_subscribers(h, "t"), 1);
  EXPECT_OK(publish(h, "t", "two"));
  EXPECT_EQ(c.got + b.got, 1);
  EXPECT_EQ(a.got, 2);
  /* a leaves, and a nested publish from inside a delivery. */
  a.hub = h;
  a.leave = 0;
  EXPECT_OK(publish(h, "t", "three"));
  EXPECT_EQ(a.got, 4);
  EXPECT_STR(a.text, "one\ntwo\nthree\nnested\n");
  a.leave = 1;
  EXPECT_OK(publish(h, "t", "four"));
  EXPECT_EQ(eddy_comet_subscribers(h, "t"), 0);
  eddy_comet_hub_free(h);
  EXPECT_EQ(a.gone, 0);
  EXPECT_LIVE(0);
}

Test(comet_hub, history_is_bounded_and_replayed) {
  eddy_comet_hub *h;
  eddy_comet_hub_options o = {.history_count = 3, .history_bytes = 4096};
  eddy_comet_hub_stats st;
  rec a = {0};
  char big[5000];
  EXPECT_OK(eddy_comet_hub_new(&o, &h));
  for (int i = 1; i <= 5; i++) {
    char t[8];
    snprintf(t, sizeof t, "m%d", i);
    EXPECT_OK(publish(h, "t", t));
  }
  eddy_comet_hub_stats_get(h, &st);
  EXPECT_EQ(st.history, 3);
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_LINE, &rec_cb, &a, &a.sub));
  EXPECT_EQ(eddy_comet_replay(a.sub, 0), 3);
  EXPECT_STR(a.text, "m3\nm4\nm5\n");
  EXPECT_EQ(eddy_comet_replay(a.sub, 4), 1);
  EXPECT_STR(a.text, "m3\nm4\nm5\nm5\n");
  EXPECT_EQ(eddy_comet_replay(a.sub, 5), 0);
  /* The bytes bound: a message larger than it does not stay. */
  memset(big, 'x', sizeof big);
  {
    eddy_comet_msg m = {.topic = "t", .data = big, .len = sizeof big};
    EXPECT_OK(eddy_comet_publish(h, &m, NULL));
  }
  eddy_comet_hub_stats_get(h, &st);
  EXPECT_EQ(st.history, 0);
  EXPECT_EQ(st.history_size, 0);
  EXPECT_EQ(eddy_comet_history(h, "nope", 0, NULL, NULL), 0);
  eddy_comet_unsubscribe(a.sub);
  eddy_comet_hub_free(h);
  EXPECT_LIVE(0);
}

static void count_msg(const eddy_comet_msg *m, void *arg) {
  uint64_t *sum = arg;
  *sum += m->id;
  cr_assert(m->time_ms > 1000000000000LL); /* stamped with the wall clock */
}

Test(comet_hub, history_walk_and_formats_limit) {
  eddy_comet_hub *h;
  uint64_t sum = 0;
  rec a = {0};
  EXPECT_OK(eddy_comet_hub_new(NULL, &h));
  for (int i = 0; i < 4; i++)
    EXPECT_OK(publish(h, "t", "x"));
  EXPECT_EQ(eddy_comet_history(h, "t", 2, count_msg, &sum), 2);
  EXPECT_EQ(sum, 3 + 4);
  EXPECT_EQ(eddy_comet_format_add(h, "x", NULL, NULL), -EINVAL);
  for (int i = 3; i < EDDY_COMET_MAX_FORMATS; i++)
    EXPECT_EQ(eddy_comet_format_add(h, "f", count_encode, NULL), i);
  EXPECT_EQ(eddy_comet_format_add(h, "f", count_encode, NULL), -ENOSPC);
  EXPECT_EQ(eddy_comet_subscribe(h, "t", EDDY_COMET_MAX_FORMATS, &rec_cb, &a,
                                 &a.sub),
            -EINVAL);
  EXPECT_EQ(eddy_comet_subscribe(h, "", 0, &rec_cb, &a, &a.sub), -EINVAL);
  eddy_comet_hub_free(h);
  EXPECT_LIVE(0);
}

Test(comet_hub, hub_freed_with_blocks_still_held) {
  eddy_comet_hub *h;
  rec a = {0};
  a.keep = 1;
  EXPECT_OK(eddy_comet_hub_new(NULL, &h));
  EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_LINE, &rec_cb, &a, &a.sub));
  EXPECT_OK(publish(h, "t", "kept"));
  EXPECT_EQ(eddy_comet_block_refs(a.last), 2); /* a's and the history's */
  eddy_comet_hub_free(h);
  EXPECT_EQ(a.gone, 1);
  EXPECT_EQ(eddy_comet_block_refs(a.last), 1);
  cr_assert(memcmp(a.last, "kept\n", 5) == 0);
  eddy_comet_block_unref(a.last);
  EXPECT_LIVE(0);
}

/* Every allocation a publish makes, failed in turn: the publish says
 * -ENOMEM, nobody got anything, the id was not used, nothing leaked. */
Test(comet_hub, publish_out_of_memory_leaves_nothing) {
  int kinds[] = {EDDY__SYS_MALLOC, EDDY__SYS_CALLOC, EDDY__SYS_REALLOC};
  for (size_t k = 0; k < 3; k++)
    for (uint64_t n = 1; n < 20; n++) {
      eddy_comet_hub *h;
      rec a = {0}, b = {0};
      int fmt, rc;
      long live;
      eddy__fault_reset();
      EXPECT_OK(eddy_comet_hub_new(NULL, &h));
      fmt = eddy_comet_format_add(h, "counted", count_encode, NULL);
      EXPECT_OK(eddy_comet_subscribe(h, "t", fmt, &rec_cb, &a, &a.sub));
      EXPECT_OK(eddy_comet_subscribe(h, "t", EDDY_COMET_SSE_CHUNKED, &rec_cb,
                                     &b, &b.sub));
      EXPECT_OK(publish(h, "t", "first"));
      live = eddy__alloc_live();
      eddy__fault_fail_nth(kinds[k], n, ENOMEM);
      rc = publish(h, "new topic", "x"); /* a topic to create */
      if (rc == 0)
        rc = publish(h, "t", "second message, longer than the first one");
      eddy__fault_reset();
      if (rc == 0) {
        EXPECT_EQ(a.got, 2);
        eddy_comet_hub_free(h);
        break;
      }
      EXPECT_EQ(rc, -ENOMEM);
      EXPECT_EQ(a.got, 1);
      EXPECT_EQ(b.got, 1);
      cr_assert(eddy_comet_last_id(h) <= 2);
      (void)live;
      EXPECT_OK(publish(h, "t", "after"));
      EXPECT_EQ(a.got, 2);
      eddy_comet_hub_free(h);
      EXPECT_LIVE(0);
    }
  EXPECT_LIVE(0);
}

Test(comet_hub, subscribe_and_new_out_of_memory) {
  eddy_comet_hub *h;
  rec a = {0};
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_comet_hub_new(NULL, &h), -ENOMEM);
  eddy__fault_reset();
  EXPECT_OK(eddy_comet_hub_new(NULL, &h));
  for (uint64_t n = 1; n <= 2; n++) {
    eddy__fault_fail_nth(EDDY__SYS_CALLOC, n, ENOMEM);
    EXPECT_EQ(eddy_comet_subscribe(h, "t", 0, &rec_cb, &a, &a.sub), -ENOMEM);
    EXPECT_EQ(eddy_comet_subscribers(h, "t"), 0);
  }
  eddy__fault_reset();
  cr_assert(eddy_comet_block_new(SIZE_MAX) == NULL);
  eddy_comet_hub_free(h);
  EXPECT_LIVE(0);
}
