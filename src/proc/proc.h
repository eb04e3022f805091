/* proc.h: internals shared by the files of src/proc. */
#ifndef EDDY_PROC_PROC_H
#define EDDY_PROC_PROC_H

#include <sys/types.h>

#include "eddy/proc.h"

/* Descriptors a child can be given: 0, 1, 2 and the extra ones. */
#define EDDY__CHILD_MAX_FDS 64

/* Everything the child needs, prepared by the parent before clone() so
 * that the child only makes system calls (see child.c). */
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
  long max_fd; /* for a kernel without close_range() */
  int err;     /* set by the child: the errno that stopped it, or 0 */
} eddy__child;

/* The child's body, given to clone(CLONE_VM | CLONE_VFORK) with its spec:
 * sets the child up and executes the program. On any failure it sets
 * err and exits with status 127; it never returns. */
int eddy__child_main(void *spec);

/* Marks p as part of another object (eddy_process_output's collection):
 * eddy_loop_close_all leaves it to its owner. */
typedef struct eddy_process eddy_process;
void eddy__process_own(eddy_process *p);

#endif
