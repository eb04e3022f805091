/* Internals shared by the IRC message files (src/proto/irc/). */
#ifndef EDDY_PROTO_IRC_IRC_H
#define EDDY_PROTO_IRC_IRC_H

#include <stdbool.h>
#include <stddef.h>

#include "eddy/irc.h"

/* Whether tags[0..n) is tag data the parser accepts (keys well formed,
 * values free of NUL, CR, LF and space). */
bool eddy__irc_tags_valid(const char *tags, size_t n);

/* eddy_irc_mask_match, also counting in *steps (when not NULL) the
 * comparisons it made: the fuzz target checks the bound on the work. */
bool eddy__irc_mask_match(eddy_irc_casemap_t cm, const char *mask, size_t mn,
                          const char *subject, size_t sn, size_t *steps);

#endif
