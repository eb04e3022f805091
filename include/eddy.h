/* eddy: an event-driven networking engine for C.
 *
 * This header includes every public layer. Each layer's header under eddy/
 * reads top to bottom as that layer's manual.
 */
#ifndef EDDY_H
#define EDDY_H

#include "eddy/common.h"
#include "eddy/core.h"
#include "eddy/buf.h"
#include "eddy/net.h"
#include "eddy/tls.h"
#include "eddy/proc.h"
#include "eddy/line.h"
#include "eddy/async.h"
#include "eddy/coro.h"
#include "eddy/http.h"
#include "eddy/ws.h"
#include "eddy/comet.h"
#include "eddy/dns.h"
#include "eddy/resolver.h"
#include "eddy/irc.h"

#endif
