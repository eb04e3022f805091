/* forward_none.c: stands in for the forwarder until it is built: every
 * --forward is refused at start. */
#include <errno.h>

#include "proto/dns/forward.h"

int eddy__dns_forwarder_new(eddy_loop *loop,
                            const eddy__dns_forward_config *cfg,
                            eddy__dns_forwarder **out) {
  (void)loop;
  (void)cfg;
  (void)out;
  return -ENOSYS;
}

void eddy__dns_forwarder_free(eddy__dns_forwarder *f) {
  (void)f;
}

int eddy__dns_forward(eddy__dns_forwarder *f, const eddy_dns_query_t *q,
                      size_t cap, uint8_t *out, eddy__dns_forward_cb cb,
                      void *arg, eddy__dns_forward_req **req) {
  (void)f, (void)q, (void)cap, (void)out, (void)cb, (void)arg, (void)req;
  return -ENOSYS;
}

void eddy__dns_forward_cancel(eddy__dns_forward_req *req) {
  (void)req;
}

int eddy__dns_upstream_parse(const char *text, eddy__dns_upstream *u) {
  (void)text;
  (void)u;
  return 0;
}
