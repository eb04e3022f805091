/* eddy/proc.h: subprocesses: spawn, stdio as streams, exit status, kill.
 *
 * A process handle (eddy_process) stands for one child. Spawning never waits
 * for the program itself: it returns once the child has called execve(),
 * which takes the time of a few system calls, so that a program that
 * cannot be run is reported by the spawn call (-ENOENT, -EACCES, -ENOEXEC)
 * and never as an exit status of 127.
 *
 * The child gets exactly the descriptors it is given: 0, 1 and 2 as the
 * options say, the extra descriptors as 3, 4, ...; nothing else, whatever
 * the host program left open without close-on-exec. Its signal mask is
 * empty, every signal the parent catches is back to its default action,
 * and so is SIGPIPE (which the eddy program ignores).
 *
 * Exit: the exit callback is called exactly once, from the loop, when the
 * child has ended and been reaped, with its exit code or the signal that
 * ended it. Children are reaped through a pidfd where the kernel has one
 * (Linux 5.3), else on SIGCHLD; either way eddy waits only for its own
 * children (waitpid on each pid, never on -1), so the host program's other
 * children are left alone.
 *
 * Exit and output are independent: the exit callback may come before or
 * after the last bytes the child wrote to a pipe, since a pipe stays open
 * while anything (a grandchild) holds its write end. Every byte is still
 * delivered through the stream, and the stream's eof callback marks the end
 * of the output. eddy_process_output() waits for both.
 */
#ifndef EDDY_PROC_H
#define EDDY_PROC_H

#include <sys/types.h>

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_process eddy_process;

/* What one of the child's descriptors 0, 1, 2 is. */
typedef enum eddy_stdio_kind {
  EDDY_STDIO_NULL = 0, /* /dev/null (the default) */
  EDDY_STDIO_INHERIT,  /* the parent's descriptor of the same number */
  EDDY_STDIO_PIPE,     /* a pipe; the parent's end becomes a stream */
  EDDY_STDIO_FD,       /* a descriptor of the parent's (it keeps its copy) */
  /* A Unix socket pair instead of a pipe: the parent's end becomes a
   * stream that reads and writes, and so may the child. Bulk data moves
   * faster through it than through a pipe on Linux, but a program that
   * opens /dev/stdout (or /proc/self/fd/N) fails with ENXIO on a socket:
   * the pipe is the compatible default. */
  EDDY_STDIO_SOCKETPAIR,
} eddy_stdio_kind;

typedef struct eddy_stdio {
  eddy_stdio_kind kind;
  int fd; /* EDDY_STDIO_FD */
  /* EDDY_STDIO_PIPE and _SOCKETPAIR: set to the parent's end on success,
   * a stream with no callbacks (set them with eddy_stream_set_callbacks; it
   * reads nothing until it has a data callback). A pipe's is writable for
   * stdin and readable for stdout and stderr. The caller closes it, as any
   * stream. */
  eddy_stream **stream;
} eddy_stdio;

/* The child ended: exit_status is its exit code (0..255) and term_signal 0,
 * or exit_status is 0 and term_signal the signal that killed it. A negative
 * exit_status is an error of eddy's: -ECHILD when something else in the
 * process reaped the child first (a waitpid(-1) in the host program). */
typedef void (*eddy_process_exit_cb)(eddy_process *p, int exit_status,
                                     int term_signal, void *arg);

/* Option flags. */
#define EDDY_PROCESS_NEW_GROUP                                                 \
  1u /* setpgid(0, 0): a process group of its own */
#define EDDY_PROCESS_NEW_SESSION                                               \
  2u                            /* setsid(): a session (and group) of its own */
#define EDDY_PROCESS_SET_UID 4u /* setuid(uid); needs the privilege */
#define EDDY_PROCESS_SET_GID 8u /* setgid(gid) and no supplementary groups */

typedef struct eddy_process_options {
  /* The program: a path (with a '/'), or a name looked up in PATH (the
   * child's environment's PATH if env sets one, else the parent's). */
  const char *file;
  /* Arguments, NULL-terminated, argv[0] first; NULL means {file, NULL}. */
  const char *const *argv;
  /* "NAME=value" strings, NULL-terminated; NULL inherits the parent's. */
  const char *const *env;
  const char *cwd; /* NULL: the parent's */
  eddy_stdio stdio[3];
  /* Extra descriptors: extra_fds[i] becomes the child's 3 + i (at most
   * 61 of them). */
  const int *extra_fds;
  int nextra;
  unsigned flags; /* EDDY_PROCESS_* */
  uid_t uid;
  gid_t gid;
  eddy_process_exit_cb exit_cb; /* may be NULL */
  void *arg;
} eddy_process_options;

/* Starts a child. Returns 0 and sets *out (and the streams of the pipes it
 * asked for), or a negative code with nothing left behind: no child, no
 * stream, no descriptor. Codes: -EINVAL (no file, a pipe without a stream
 * pointer, a bad stdio kind, nextra outside 0..61), -EBADF (a negative
 * descriptor given), -ENOENT / -EACCES / -ENOEXEC / -ENOTDIR (the program
 * cannot be run), the error of chdir(), setgid() or setuid() in the child,
 * -EAGAIN or -ENOMEM (the child could not be made: too many processes, or
 * no memory), -EMFILE (no descriptors for the pipes). */
EDDY_API int eddy_process_spawn(eddy_loop *loop, const eddy_process_options *o,
                                eddy_process **out);

/* The child's process id (still valid, and not reused, until the exit
 * callback). */
EDDY_API pid_t eddy_process_pid(const eddy_process *p);

/* 1 once the child has been reaped. */
EDDY_API int eddy_process_exited(const eddy_process *p);

/* Sends signum to the child. Returns 0, -ESRCH once it has been reaped
 * (eddy never signals a pid that may have been reused), or kill()'s error.
 * signum 0 checks that the child is there. */
EDDY_API int eddy_process_kill(eddy_process *p, int signum);

/* Sends signum to the child's process group; -EINVAL unless it was spawned
 * with EDDY_PROCESS_NEW_GROUP or EDDY_PROCESS_NEW_SESSION. Works after the
 * leader is reaped while members of the group remain (-ESRCH after). */
EDDY_API int eddy_process_kill_group(eddy_process *p, int signum);

/* Graceful stop: SIGTERM now and, if the child has not exited timeout_ns
 * later, SIGKILL. A child that leads its own group has the whole group
 * signalled, and when the leader ends, whatever is left of the group gets
 * SIGKILL at once, so nothing it started outlives it. The timer is part
 * of the handle: nothing is allocated. Returns 0, -ESRCH (already reaped),
 * -ENOMEM (the loop's timer heap could not grow: nothing was sent), or
 * kill()'s error (the timer is then not left armed). A second call
 * restarts the timeout. */
EDDY_API int eddy_process_terminate(eddy_process *p, int64_t timeout_ns);

/* Releases the handle. The child is not signalled: if it is still running
 * the handle stays (and keeps the loop running) until it exits and is
 * reaped, so no zombie is left, but the exit callback is no longer called.
 * Safe from any callback, the exit callback included. */
EDDY_API void eddy_process_close(eddy_process *p);

/* ---- Output and status together (Twisted's getProcessOutputAndValue) -------
 *
 * Runs a program with stdin on /dev/null (unless o->stdio[0] says
 * otherwise) and stdout and stderr on pipes, collects both in memory, and
 * calls cb once, from the loop, after the child has exited AND both pipes
 * have reached end of file (a grandchild that keeps them open delays it).
 * The buffers are borrowed (valid until cb returns) and NUL-terminated.
 * status is 0, or a negative code when the output could not be kept
 * (-ENOMEM: the child is then killed); exit_status and term_signal are as
 * for the exit callback. o->stdio[1], o->stdio[2], exit_cb and arg are
 * ignored. eddy_loop_close_all ends the pipes but not the wait for the
 * child: cb still runs, once it has exited, with what was read.
 */
typedef void (*eddy_process_output_cb)(const char *out, size_t out_len,
                                       const char *err, size_t err_len,
                                       int status, int exit_status,
                                       int term_signal, void *arg);

/* Returns 0 (cb will be called) or the spawn's error (cb will not). */
EDDY_API int eddy_process_output(eddy_loop *loop, const eddy_process_options *o,
                                 eddy_process_output_cb cb, void *arg);

#ifdef __cplusplus
}
#endif
#endif
