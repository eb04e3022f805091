/* The descriptor-watch API the upper layers use: read and write interest,
 * hang-up, removal from callbacks, fairness, and backend refusals. */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/io.h"
#include "helpers.h"

static void make_pipe(int fds[2]) {
  cr_assert(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
}

typedef struct reader {
  eddy__io io;
  int calls;
  unsigned last;
  long bytes;
  int remove_after; /* remove self after this many calls (0: never) */
  eddy__io *also_remove;
} reader;

static void on_ready(eddy_loop *loop, eddy__io *io, unsigned events) {
  reader *r = io->data;
  char buf[16];
  ssize_t n;
  r->calls++;
  r->last = events;
  if (events & EDDY__IO_READ) {
    /* Bounded work per call: at most 16 bytes. */
    n = read(io->fd, buf, sizeof buf);
    if (n > 0)
      r->bytes += n;
  }
  if (r->also_remove)
    eddy__io_remove(loop, r->also_remove);
  if (r->remove_after && r->calls >= r->remove_after)
    eddy__io_remove(loop, io);
}

Test(io, read_interest_calls_back_when_data_arrives_until_removed) {
  eddy_loop *loop = test_loop();
  int p[2];
  reader r = {.remove_after = 3};
  make_pipe(p);
  eddy__io_init(&r.io, p[0], on_ready, &r);
  EXPECT_OK(eddy__io_start(loop, &r.io, EDDY__IO_READ));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1); /* nothing yet */
  EXPECT_EQ(r.calls, 0);
  cr_assert(write(p[1], "0123456789abcdef0123456789abcdef0123", 36) == 36);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  /* Level-triggered: called each turn while data remains. */
  EXPECT_EQ(r.calls, 3);
  EXPECT_EQ(r.bytes, 36);
  EXPECT_EQ(r.last, EDDY__IO_READ);
  close(p[0]);
  close(p[1]);
  test_finish(loop);
}

Test(io, write_interest_and_hang_up_are_reported) {
  eddy_loop *loop = test_loop();
  int p[2];
  reader w = {.remove_after = 1}, r = {.remove_after = 1};
  make_pipe(p);
  eddy__io_init(&w.io, p[1], on_ready, &w);
  EXPECT_OK(eddy__io_start(loop, &w.io, EDDY__IO_WRITE));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(w.calls, 1);
  EXPECT_EQ(w.last, EDDY__IO_WRITE);
  /* The writer goes away: the reader is told, and its read finds EOF. */
  close(p[1]);
  eddy__io_init(&r.io, p[0], on_ready, &r);
  EXPECT_OK(eddy__io_start(loop, &r.io, EDDY__IO_READ));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.last, EDDY__IO_READ); /* only what it asked for */
  close(p[0]);
  test_finish(loop);
}

Test(io, stopping_one_event_keeps_the_other) {
  eddy_loop *loop = test_loop();
  int sv[2];
  reader r = {0};
  cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
  eddy__io_init(&r.io, sv[0], on_ready, &r);
  EXPECT_OK(eddy__io_start(loop, &r.io, EDDY__IO_READ));
  EXPECT_OK(eddy__io_start(loop, &r.io, EDDY__IO_WRITE));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(r.last, EDDY__IO_WRITE);
  eddy__io_stop(loop, &r.io, EDDY__IO_WRITE);
  r.calls = 0;
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1); /* still reading */
  EXPECT_EQ(r.calls, 0);
  cr_assert(write(sv[1], "x", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.last, EDDY__IO_READ);
  eddy__io_remove(loop, &r.io);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  close(sv[0]);
  close(sv[1]);
  test_finish(loop);
}

/* Two ready descriptors; the first one's callback removes the second
 * before it is dispatched in the same batch: the second is not called. */
Test(io, a_watcher_removed_by_an_earlier_callback_in_the_batch_is_not_called) {
  eddy_loop *loop = test_loop();
  int a[2], b[2];
  reader ra = {0}, rb = {0};
  make_pipe(a);
  make_pipe(b);
  eddy__io_init(&ra.io, a[0], on_ready, &ra);
  eddy__io_init(&rb.io, b[0], on_ready, &rb);
  ra.also_remove = &rb.io;
  rb.also_remove = &ra.io;
  EXPECT_OK(eddy__io_start(loop, &ra.io, EDDY__IO_READ));
  EXPECT_OK(eddy__io_start(loop, &rb.io, EDDY__IO_READ));
  cr_assert(write(a[1], "x", 1) == 1 && write(b[1], "y", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(ra.calls + rb.calls, 1);
  eddy__io_remove(loop, &ra.io);
  eddy__io_remove(loop, &rb.io);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  for (int i = 0; i < 2; i++) {
    close(a[i]);
    close(b[i]);
  }
  test_finish(loop);
}

/* One descriptor that always has data (a full pipe) cannot starve the
 * others: in every turn, each ready descriptor gets its callback. */
Test(io, a_descriptor_that_always_has_data_does_not_starve_others) {
  enum { N = 8 };
  eddy_loop *loop = test_loop();
  int p[N][2];
  reader r[N];
  char big[65536];
  memset(big, 'z', sizeof big);
  memset(r, 0, sizeof r);
  for (int i = 0; i < N; i++) {
    make_pipe(p[i]);
    eddy__io_init(&r[i].io, p[i][0], on_ready, &r[i]);
    EXPECT_OK(eddy__io_start(loop, &r[i].io, EDDY__IO_READ));
  }
  cr_assert(write(p[0][1], big, sizeof big) > 0); /* the flood */
  for (int i = 1; i < N; i++)
    cr_assert(write(p[i][1], "a", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  for (int i = 0; i < N; i++)
    EXPECT_EQ(r[i].calls, 1);
  for (int i = 0; i < N; i++) {
    eddy__io_remove(loop, &r[i].io);
    close(p[i][0]);
    close(p[i][1]);
  }
  test_finish(loop);
}

Test(io, a_regular_file_is_refused_by_epoll_and_accepted_by_poll) {
  eddy_loop *loop = test_loop();
  int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
  reader r = {.remove_after = 1};
  int err;
  cr_assert(fd >= 0);
  eddy__io_init(&r.io, fd, on_ready, &r);
  err = eddy__io_start(loop, &r.io, EDDY__IO_READ);
  if (strcmp(eddy_loop_backend_name(loop), "epoll") == 0) {
    EXPECT_EQ(err, -EPERM);
    EXPECT_EQ(r.io.events, 0);
    EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0); /* not watched */
  } else {
    EXPECT_OK(err);
    EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
    EXPECT_EQ(r.calls, 1);
  }
  close(fd);
  test_finish(loop);
}

Test(io, bad_descriptor_and_allocation_failure_are_errors) {
  eddy_loop *loop = test_loop();
  int p[2];
  reader r = {0};
  eddy__io_init(&r.io, -1, on_ready, &r);
  EXPECT_EQ(eddy__io_start(loop, &r.io, EDDY__IO_READ), -EBADF);
  make_pipe(p);
  /* A descriptor number above the table's size makes it grow. */
  cr_assert(dup2(p[0], 900) == 900);
  eddy__io_init(&r.io, 900, on_ready, &r);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy__io_start(loop, &r.io, EDDY__IO_READ), -ENOMEM);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy__io_start(loop, &r.io, EDDY__IO_READ));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  eddy__io_remove(loop, &r.io);
  close(900);
  close(p[0]);
  close(p[1]);
  test_finish(loop);
}

Test(io, a_descriptor_closed_before_removal_is_forgotten_anyway) {
  eddy_loop *loop = test_loop();
  int p[2];
  reader r = {0};
  make_pipe(p);
  eddy__io_init(&r.io, p[0], on_ready, &r);
  EXPECT_OK(eddy__io_start(loop, &r.io, EDDY__IO_READ));
  close(p[0]); /* the owner broke the rule */
  eddy__io_remove(loop, &r.io);
  EXPECT_EQ(r.io.events, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  close(p[1]);
  test_finish(loop);
}

Test(io, the_poll_backend_compacts_slots_removed_during_dispatch) {
  enum { N = 6 };
  eddy_loop *loop;
  eddy_loop_options o = {.backend = EDDY_BACKEND_POLL};
  int p[N][2];
  reader r[N];
  memset(r, 0, sizeof r);
  EXPECT_OK(eddy_loop_new(&o, &loop));
  for (int i = 0; i < N; i++) {
    make_pipe(p[i]);
    eddy__io_init(&r[i].io, p[i][0], on_ready, &r[i]);
    r[i].remove_after = 1;
    EXPECT_OK(eddy__io_start(loop, &r[i].io, EDDY__IO_READ));
    cr_assert(write(p[i][1], "x", 1) == 1);
  }
  /* Every other one also removes its neighbour. */
  for (int i = 0; i + 1 < N; i += 2)
    r[i].also_remove = &r[i + 1].io;
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  for (int i = 0; i < N; i += 2)
    EXPECT_EQ(r[i].calls, 1);
  for (int i = 0; i < N; i++) {
    close(p[i][0]);
    close(p[i][1]);
  }
  test_finish(loop);
}
