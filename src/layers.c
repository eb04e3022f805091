/* layers.c: the table of layers that wrap new connections.
 *
 * net walks eddy__wrappers when a listener opens or a connect starts (see
 * eddy__wrap_ops in net/net.h), and each layer that wraps connections
 * fills in its ops in its own folder. This file is the one place that
 * names them, above every layer, so that net never points up.
 *
 * A table and not self-registration: a static link takes from libeddy.a
 * only the objects something references. net references this table and
 * the table references each layer's ops, so a program that only says
 * eddy_listen("tls:...") still links TLS; a constructor in tls's objects
 * would have been dropped, and the listener would have stayed plaintext.
 *
 * A new wrapping layer adds its ops here, lowest layer first: on an
 * endpoint that several want, the first listed wraps the stream first.
 */
#include "net/net.h"
#include "tls/tls.h"

const eddy__wrap_ops *const eddy__wrappers[] = {
    &eddy__tls_wrap,
    NULL,
};

/* A listener or connect holds at most one wrapper per layer listed here. */
_Static_assert(sizeof eddy__wrappers / sizeof eddy__wrappers[0] - 1 <=
                   EDDY__WRAP_MAX,
               "more wrapping layers than eddy__wraps has room for");
