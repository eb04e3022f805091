/* endpoint.c: TLS as a wrapper of new connections (tls: endpoints,
 * eddy_listener_set_tls, eddy_connect_tls).
 *
 * net knows nothing of TLS: a listener or a connect wraps each new stream
 * through the eddy__wrap_ops interface (net/net.h), and this file fills it
 * in. The state a listener or a connect shares among its streams is an
 * eddy_tls_ctx, made from the endpoint (its certificate, or its trust
 * roots and verify=) or given by the program; each stream starts TLS with
 * it as soon as it exists, so the handshake's outcome reaches the stream's
 * close callback like any other end. src/layers.c lists eddy__tls_wrap in
 * the table net walks.
 */
#include <assert.h>
#include <errno.h>

#include "net/net.h"
#include "tls/tls.h"

static int wants(const eddy_endpoint *ep) {
  return ep->tls != 0;
}

static int make(const eddy_endpoint *ep, int server, void **state, char *err,
                size_t errlen) {
  eddy_tls_ctx *ctx;
  int e = eddy_tls_ctx_from_endpoint(ep, server, &ctx, err, errlen);
  if (e == 0)
    *state = ctx;
  return e;
}

static int wrap(void *state, eddy_stream *s, const char *server_name) {
  return eddy_tls_start(s, state, server_name, NULL, 0);
}

static void ref(void *state) {
  eddy__tls_ctx_ref(state);
}

static void unref(void *state) {
  eddy_tls_ctx_free(state);
}

const eddy__wrap_ops eddy__tls_wrap = {
    .name = "tls",
    .wants = wants,
    .make = make,
    .wrap = wrap,
    .ref = ref,
    .unref = unref,
};

void eddy_listener_set_tls(eddy_listener *l, eddy_tls_ctx *ctx) {
  /* Cannot fail: a listener holds at most one wrapper per layer of
   * eddy__wrappers, which src/layers.c keeps within EDDY__WRAP_MAX, and
   * this replaces TLS's own. */
  int e = eddy__listener_wrap(l, &eddy__tls_wrap, ctx);
  assert(e == 0);
  (void)e;
}

int eddy_connect_tls(eddy_loop *loop, const eddy_endpoint *ep,
                     eddy_tls_ctx *ctx, eddy_connect_cb cb, void *arg,
                     eddy_connect **req) {
  if (ctx == NULL || ctx->server || ep == NULL || ep->kind != EDDY_ENDPOINT_TCP)
    return -EINVAL;
  return eddy__connect_with(loop, ep, NULL, &eddy__tls_wrap, ctx, cb, arg, req,
                            NULL, 0);
}
