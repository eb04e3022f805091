/* errnames.h: X-list of the errno values eddy names, X(NAME). Used by
 * eddy_errname() and by the fault-injection parser ("accept4:EMFILE"). */
#ifndef EDDY_SYS_ERRNAMES_H
#define EDDY_SYS_ERRNAMES_H

#include <errno.h>

/* The list is laid out by hand, rows of related calls. */
/* clang-format off */
#define EDDY__ERRNO_NAMES(X)                                                 \
  X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG)              \
  X(ENOEXEC) X(EBADF) X(ECHILD) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT)      \
  X(EBUSY) X(EEXIST) X(EXDEV) X(ENODEV) X(ENOTDIR) X(EISDIR) X(EINVAL)       \
  X(ENFILE) X(EMFILE) X(ENOTTY) X(ETXTBSY) X(EFBIG) X(ENOSPC) X(ESPIPE)      \
  X(EROFS) X(EMLINK) X(EPIPE) X(EDOM) X(ERANGE) X(EDEADLK) X(ENAMETOOLONG)  \
  X(ENOLCK) X(ENOSYS) X(ENOTEMPTY) X(ELOOP) X(ENOMSG) X(ENONET) X(EPROTO)   \
  X(EOVERFLOW) X(EILSEQ) X(ENOTSOCK) X(EDESTADDRREQ) X(EMSGSIZE)            \
  X(EPROTOTYPE) X(ENOPROTOOPT) X(EPROTONOSUPPORT) X(EOPNOTSUPP)             \
  X(EAFNOSUPPORT) X(EADDRINUSE) X(EADDRNOTAVAIL) X(ENETDOWN) X(ENETUNREACH) \
  X(ENETRESET) X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS) X(EISCONN)          \
  X(ENOTCONN) X(ESHUTDOWN) X(ETIMEDOUT) X(ECONNREFUSED) X(EHOSTDOWN)        \
  X(EHOSTUNREACH) X(EALREADY) X(EINPROGRESS) X(ECANCELED) X(ENOTSUP)
/* clang-format on */

#endif
