/* error.c: names and texts for error codes. */
#include <string.h>

#include "eddy/common.h"
#include "eddy_config.h"
#include "sys/errnames.h"

const char *eddy_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define EDDY__ERR_TEXT(name, value, text)                                      \
  case name:                                                                   \
    return text;
    EDDY_ERRNO_MAP(EDDY__ERR_TEXT)
#undef EDDY__ERR_TEXT
  default:
    break;
  }
  if (code < 0 && code > -4096)
    return strerror(-code);
  return "unknown error";
}

const char *eddy_errname(int code) {
  switch (code) {
#define EDDY__ERR_NAME(name, value, text)                                      \
  case name:                                                                   \
    return #name;
    EDDY_ERRNO_MAP(EDDY__ERR_NAME)
#undef EDDY__ERR_NAME
  default:
    break;
  }
  /* Some errno values share a number (EAGAIN/EWOULDBLOCK, ENOTSUP/
   * EOPNOTSUPP on Linux); the first name listed wins. */
#define EDDY__ERRNO_NAME(e)                                                    \
  if (code == -(e))                                                            \
    return #e;
  EDDY__ERRNO_NAMES(EDDY__ERRNO_NAME)
#undef EDDY__ERRNO_NAME
  return "EUNKNOWN";
}

const char *eddy_version(void) {
  return EDDY_VERSION;
}
