/* proc.h: internals shared by the files of src/proc. */
#ifndef EDDY_PROC_PROC_H
#define EDDY_PROC_PROC_H

#include <sys/types.h>

#include "eddy/proc.h"

/* Descriptors a child can be given: 0, 1, 2 and the extra ones. */
#define EDDY__CHILD_MAX_FDS 64

/* Everything the child needs, prepared by the parent before fork() so that
 * the child only makes system calls: no allocation, no lock, nothing that
 * is unsafe between fork() and execve() in a threaded program. */
typedef struct eddy__child {
  int src[EDDY__CHILD_MAX_FDS]; /* src[i] becomes the child's i */
  int nfds;
  char *const *paths; /* the program's candidate paths, NULL-terminated */
  char *const *argv;
  char *const *envp;
  const char *cwd;
  unsigned flags; /* EDDY_PROCESS_* */
  uid_t uid;
  gid_t gid;
  int status_fd; /* close-on-exec; gets errno if anything fails */
} eddy__child;

/* Runs in the child: sets it up and executes the program. On any failure
 * writes the errno to status_fd and exits with status 127. */
_Noreturn void eddy__child_exec(eddy__child *c);

#endif
