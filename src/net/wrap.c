/* wrap.c: the wrappers a listener or a connect puts on each new stream.
 *
 * A layer that wraps whole connections fills in an eddy__wrap_ops (see
 * net.h) and is listed in eddy__wrappers[], a table that lives above every
 * layer (src/layers.c). A listener or a connect keeps an eddy__wraps: the
 * wrappers its endpoint asked for, each with the state it shares among its
 * streams (a TLS context, say), and applies them, in order, to every stream
 * it accepts or connects before the program sees that stream. net knows
 * the wrappers only through their ops: it never names a layer, and a new
 * layer plugs in by adding its ops to the table.
 *
 * The limit admitted: the endpoint syntax a wrapper answers to is still
 * parsed by net (src/net/endpoint.c knows TLS's words), so a layer with a
 * syntax of its own adds its words to the parser.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>

#include "net/net.h"

static int find(const eddy__wraps *ws, const eddy__wrap_ops *ops) {
  for (int i = 0; i < ws->n; i++)
    if (ws->w[i].ops == ops)
      return i;
  return -1;
}

int eddy__wraps_set(eddy__wraps *ws, const eddy__wrap_ops *ops, void *state) {
  int i = find(ws, ops);
  assert(ws->n >= 0 && ws->n <= EDDY__WRAP_MAX);
  if (i < 0 && state == NULL)
    return 0;
  if (i < 0 && ws->n == EDDY__WRAP_MAX)
    return -ENOSPC;
  if (state)
    ops->ref(state); /* first: state may be the one it replaces */
  if (i < 0) {
    i = ws->n++;
    ws->w[i].ops = ops;
  } else {
    ops->unref(ws->w[i].state);
  }
  ws->w[i].state = state;
  if (state == NULL) { /* removed: the later ones move up, in order */
    for (; i + 1 < ws->n; i++)
      ws->w[i] = ws->w[i + 1];
    ws->n--;
  }
  return 0;
}

int eddy__wraps_from_endpoint(eddy__wraps *ws,
                              const eddy__wrap_ops *const *table,
                              const eddy_endpoint *ep, int server, char *err,
                              size_t errlen) {
  ws->n = 0;
  for (table = table ? table : eddy__wrappers; *table; table++) {
    const eddy__wrap_ops *ops = *table;
    int e;
    if (!ops->wants(ep))
      continue;
    if (ws->n == EDDY__WRAP_MAX) {
      e = -ENOSPC;
      if (errlen > 0)
        snprintf(err, errlen, "%s: more than %d layers on one endpoint",
                 ops->name, EDDY__WRAP_MAX);
    } else {
      e = ops->make(ep, server, &ws->w[ws->n].state, err, errlen);
      if (e == 0)
        ws->w[ws->n++].ops = ops; /* make gave us its reference */
    }
    if (e) {
      eddy__wraps_clear(ws);
      return e;
    }
  }
  return 0;
}

int eddy__wraps_apply(const eddy__wraps *ws, eddy_stream *s,
                      const char *server_name) {
  for (int i = 0; i < ws->n; i++) {
    int e = ws->w[i].ops->wrap(ws->w[i].state, s, server_name);
    if (e)
      return e;
  }
  return 0;
}

void eddy__wraps_clear(eddy__wraps *ws) {
  while (ws->n > 0) {
    ws->n--;
    ws->w[ws->n].ops->unref(ws->w[ws->n].state);
  }
}
