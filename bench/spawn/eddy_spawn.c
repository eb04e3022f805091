/* eddy_spawn.c: the subprocess benchmark on eddy (uv_spawn.c is the same
 * program on libuv; run.sh compares them).
 *
 *   1. spawn /bin/true and wait for its exit, NSPAWNS times in a row;
 *   2. spawn the producer, read STREAM_BYTES from its stdout to the end:
 *      on a socket pair (what libuv uses), then on a pipe (eddy's
 *      default, slower for bulk on Linux but compatible with programs
 *      that open /dev/stdout).
 *
 * Prints wall and CPU time (the parent's) of each. Usage: eddy_spawn
 * PRODUCER. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>

#include "eddy.h"

#include "common.h"

static int remaining;
static int64_t received;

static void die_code(const char *what, int err) {
  fprintf(stderr, "eddy_spawn: %s: %s\n", what, eddy_strerror(err));
  exit(1);
}

static void spawn_true(eddy_loop *loop);

static void true_exited(eddy_process *p, int status, int sig, void *arg) {
  if (status != 0 || sig != 0)
    die_code("/bin/true failed", -ECHILD);
  eddy_process_close(p);
  if (--remaining > 0)
    spawn_true(arg);
}

static void spawn_true(eddy_loop *loop) {
  const char *argv[] = {"/bin/true", NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv,
                            .exit_cb = true_exited, .arg = loop};
  eddy_process *p;
  int err = eddy_process_spawn(loop, &o, &p);
  if (err)
    die_code("spawn /bin/true", err);
}

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  (void)s, (void)data, (void)arg;
  received += (int64_t)len;
}

static void producer_exited(eddy_process *p, int status, int sig, void *arg) {
  (void)arg;
  if (status != 0 || sig != 0)
    die_code("the producer failed", -ECHILD);
  eddy_process_close(p);
}

static void stream_once(eddy_loop *loop, const char *producer,
                        eddy_stdio_kind kind, const char *wall,
                        const char *cpu) {
  eddy_stream *out;
  eddy_process *p;
  eddy_stream_callbacks cb = {.data = on_data};
  char bytes[32];
  const char *argv[] = {producer, bytes, NULL};
  eddy_process_options o = {.file = argv[0], .argv = argv,
                            .exit_cb = producer_exited};
  int64_t t0, c0;
  int err;
  snprintf(bytes, sizeof bytes, "%" PRId64, STREAM_BYTES);
  o.stdio[1] = (eddy_stdio){.kind = kind, .stream = &out};
  received = 0;
  t0 = mono_ns();
  c0 = cpu_ns();
  if ((err = eddy_process_spawn(loop, &o, &p)) != 0)
    die_code("spawn the producer", err);
  eddy_stream_set_callbacks(out, &cb, NULL);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  put_int(wall, mono_ns() - t0);
  put_int(cpu, cpu_ns() - c0);
  if (received != STREAM_BYTES)
    die_code("short stream", -EIO);
}

int main(int argc, char **argv) {
  const char *producer = argc > 1 ? argv[1] : "producer";
  eddy_loop *loop;
  int64_t t0, c0;
  int err;
  if ((err = eddy_loop_new(NULL, &loop)) != 0)
    die_code("eddy_loop_new", err);

  remaining = NSPAWNS;
  t0 = mono_ns();
  c0 = cpu_ns();
  spawn_true(loop);
  eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE);
  put_int("spawn_wall_ns", mono_ns() - t0);
  put_int("spawn_cpu_ns", cpu_ns() - c0);

  stream_once(loop, producer, EDDY_STDIO_SOCKETPAIR, "stream_wall_ns",
              "stream_cpu_ns");
  stream_once(loop, producer, EDDY_STDIO_PIPE, "stream_pipe_wall_ns",
              "stream_pipe_cpu_ns");
  return eddy_loop_free(loop) == 0 ? 0 : 1;
}
