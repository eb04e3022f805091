/* uv_spawn.c: the subprocess benchmark on libuv, the peer eddy is measured
 * against. Same work and output as eddy_spawn.c; see that file. libuv
 * makes its stdio "pipes" as socket pairs; that is its choice, and part of
 * what is measured. */
#define _POSIX_C_SOURCE 200809L

#include <uv.h>

#include "common.h"

static int remaining;
static int64_t received;
static char buf[65536];

static void die_code(const char *what, int err) {
  fprintf(stderr, "uv_spawn: %s: %s\n", what, uv_strerror(err));
  exit(1);
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

static void spawn_true(uv_loop_t *loop);

static void true_exited(uv_process_t *p, int64_t status, int sig) {
  if (status != 0 || sig != 0)
    die_code("/bin/true failed", UV_ESRCH);
  uv_close((uv_handle_t *)p, free_handle);
  if (--remaining > 0)
    spawn_true(p->loop);
}

static void spawn_true(uv_loop_t *loop) {
  char *argv[] = {"/bin/true", NULL};
  uv_process_options_t o = {.file = argv[0], .args = argv,
                            .exit_cb = true_exited};
  uv_process_t *p = malloc(sizeof *p);
  int err;
  if (p == NULL)
    die_code("malloc", UV_ENOMEM);
  if ((err = uv_spawn(loop, p, &o)) != 0)
    die_code("spawn /bin/true", err);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h, (void)suggested;
  *b = uv_buf_init(buf, sizeof buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n > 0)
    received += n;
  else if (n < 0)
    uv_close((uv_handle_t *)s, NULL);
}

static void producer_exited(uv_process_t *p, int64_t status, int sig) {
  if (status != 0 || sig != 0)
    die_code("the producer failed", UV_ESRCH);
  uv_close((uv_handle_t *)p, NULL);
}

int main(int argc, char **argv) {
  uv_loop_t loop;
  uv_pipe_t out;
  uv_process_t p;
  uv_stdio_container_t stdio[3];
  char bytes[32];
  char *pargv[] = {argc > 1 ? argv[1] : "producer", bytes, NULL};
  uv_process_options_t o = {.file = pargv[0], .args = pargv,
                            .exit_cb = producer_exited, .stdio = stdio,
                            .stdio_count = 3};
  int64_t t0, c0;
  int err;
  if ((err = uv_loop_init(&loop)) != 0)
    die_code("uv_loop_init", err);

  remaining = NSPAWNS;
  t0 = mono_ns();
  c0 = cpu_ns();
  spawn_true(&loop);
  uv_run(&loop, UV_RUN_DEFAULT);
  put_int("spawn_wall_ns", mono_ns() - t0);
  put_int("spawn_cpu_ns", cpu_ns() - c0);

  snprintf(bytes, sizeof bytes, "%" PRId64, STREAM_BYTES);
  uv_pipe_init(&loop, &out, 0);
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&out;
  stdio[2].flags = UV_IGNORE;
  t0 = mono_ns();
  c0 = cpu_ns();
  if ((err = uv_spawn(&loop, &p, &o)) != 0)
    die_code("spawn the producer", err);
  uv_read_start((uv_stream_t *)&out, alloc_cb, on_read);
  uv_run(&loop, UV_RUN_DEFAULT);
  put_int("stream_wall_ns", mono_ns() - t0);
  put_int("stream_cpu_ns", cpu_ns() - c0);
  if (received != STREAM_BYTES)
    die_code("short stream", UV_EIO);
  return uv_loop_close(&loop) == 0 ? 0 : 1;
}
