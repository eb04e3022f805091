/* Spawning: the program, its arguments, environment and directory; stdio
 * kinds; descriptors the child gets (and the ones it must not); programs
 * that cannot run; groups, sessions, credentials, signal state. */
#include <sys/stat.h>

#include "proc_test.h"

extern char **environ;

Test(spawn, exit_code_reaches_the_exit_callback_once) {
  eddy_loop *loop = test_loop();
  life l = {0};
  life_run_sh(loop, &l, "echo hello; exit 7");
  EXPECT_EQ(l.exit_status, 7);
  EXPECT_EQ(l.term_signal, 0);
  EXPECT_STR(l.out_buf, "hello\n");
  EXPECT_EQ(eddy_process_exited(l.p), 1);
  eddy_process_close(l.p);
  test_finish(loop);
  EXPECT_EQ(no_children(), 1);
}

Test(spawn, path_lookup_and_default_argv) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy_process_options o = {.file = "true", .exit_cb = life_exit, .arg = &l};
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.exits, 1);
  EXPECT_EQ(l.exit_status, 0);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, given_environment_replaces_the_parents) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo \"$FOO:$HOME\"", NULL};
  const char *env[] = {"FOO=bar", NULL};
  eddy_process_options o = life_options(&l, argv);
  setenv("HOME", "/should/not/be/seen", 1);
  o.env = env;
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(l.out_buf, "bar:\n");
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, path_of_the_given_environment_is_searched) {
  eddy_loop *loop = test_loop();
  eddy_process *p = NULL;
  const char *env[] = {"PATH=/nonexistent:/also/not", NULL};
  eddy_process_options o = {.file = "true", .env = env};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -ENOENT);
  cr_assert(p == NULL);
  test_finish(loop);
}

Test(spawn, working_directory) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/pwd", NULL};
  eddy_process_options o = life_options(&l, argv);
  o.cwd = "/tmp";
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(l.out_buf, "/tmp\n");
  eddy_process_close(l.p);
  o.cwd = "/nonexistent/dir";
  EXPECT_EQ(eddy_process_spawn(loop, &o, &l.p), -ENOENT);
  test_finish(loop);
  EXPECT_EQ(no_children(), 1);
}

Test(spawn, stdin_pipe_feeds_the_child) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/cat", NULL};
  eddy_process_options o = life_options(&l, argv);
  o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = &l.in};
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_OK(eddy_stream_write(l.in, "abc", 3));
  EXPECT_OK(eddy_stream_shutdown(l.in));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(l.out_buf, "abc");
  EXPECT_EQ(l.exit_status, 0);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, stdin_null_reads_end_of_file_at_once) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/sh", "-c", "cat; echo done", NULL};
  eddy_process_options o = life_options(&l, argv);
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(l.out_buf, "done\n");
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, given_descriptors_for_stdout_and_stderr) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int p[2];
  char buf[64] = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  cr_assert(pipe(p) == 0);
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_FD, .fd = p[1]};
  o.stdio[2] = (eddy_stdio){.kind = EDDY_STDIO_FD, .fd = p[1]};
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  close(p[1]);
  EXPECT_EQ(read(p[0], buf, sizeof buf - 1), 8);
  EXPECT_STR(buf, "out\nerr\n");
  close(p[0]);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, inherited_stdout_is_the_parents) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int p[2], saved = dup(1);
  char buf[16] = {0};
  const char *argv[] = {"/bin/echo", "inherited", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  cr_assert(pipe(p) == 0);
  dup2(p[1], 1);
  close(p[1]);
  o.stdio[1].kind = EDDY_STDIO_INHERIT;
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  dup2(saved, 1);
  close(saved);
  EXPECT_EQ(read(p[0], buf, sizeof buf - 1), 10);
  EXPECT_STR(buf, "inherited\n");
  close(p[0]);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* Names of the descriptors open in process pid, "0 1 2". */
static void open_fds(pid_t pid, char *out, size_t len) {
  char dir[64];
  int fds[256], n = 0;
  DIR *d;
  struct dirent *e;
  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  d = opendir(dir);
  cr_assert(d != NULL);
  while ((e = readdir(d)) != NULL && n < 256)
    if (e->d_name[0] != '.')
      fds[n++] = atoi(e->d_name);
  closedir(d);
  /* readdir's order is the kernel's; sort for the comparison. */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
      int t = fds[j];
      fds[j] = fds[j - 1];
      fds[j - 1] = t;
    }
  out[0] = '\0';
  for (int i = 0; i < n; i++)
    snprintf(out + strlen(out), len - strlen(out), i ? " %d" : "%d", fds[i]);
}

/* The host program leaves a descriptor open without close-on-exec (as a
 * careless library would) and gives the child two extra ones: the child
 * has 0, 1, 2, 3, 4 and nothing else, and 3 and 4 are the right ones. */
Test(spawn, child_gets_exactly_the_descriptors_it_is_given) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int leak = dup(0), extra[2], p[2];
  char fds[128], a[128], b[128], path[64];
  const char *argv[] = {"/bin/sleep", "10", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  cr_assert(leak >= 0 && pipe(p) == 0);
  /* In reverse, and on 3 and 4 themselves if they are free: the layout
   * must survive sources that sit on targets. */
  extra[0] = p[1];
  extra[1] = p[0];
  o.extra_fds = extra;
  o.nextra = 2;
  EXPECT_OK(life_spawn(loop, &l, &o));
  /* The spawn returns once execve() has replaced the child's memory; the
   * kernel closes the close-on-exec descriptors a moment later. */
  for (int i = 0; i < 100; i++) {
    open_fds(eddy_process_pid(l.p), fds, sizeof fds);
    if (strcmp(fds, "0 1 2 3 4") == 0)
      break;
    usleep(10 * 1000);
  }
  EXPECT_STR(fds, "0 1 2 3 4");
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)eddy_process_pid(l.p),
             3 + i);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    cr_assert(readlink(path, a, sizeof a - 1) > 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", extra[i]);
    cr_assert(readlink(path, b, sizeof b - 1) > 0);
    EXPECT_STR(a, b);
  }
  EXPECT_OK(eddy_process_kill(l.p, SIGKILL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.term_signal, SIGKILL);
  close(leak);
  close(p[0]);
  close(p[1]);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* The same seen from inside: the child lists /proc/self/fd. ls opens the
 * directory itself, which is the 3 it reports. */
Test(spawn, child_lists_only_stdio_and_its_own_directory) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int leak = dup(1);
  cr_assert(leak >= 0);
  life_run_sh(loop, &l, "exec /bin/ls /proc/self/fd");
  EXPECT_STR(l.out_buf, "0\n1\n2\n3\n");
  close(leak);
  eddy_process_close(l.p);
  test_finish(loop);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  cr_assert(f != NULL);
  fputs(text, f);
  fclose(f);
  cr_assert(chmod(path, mode) == 0);
}

static int spawn_error(eddy_loop *loop, const char *file) {
  eddy_process *p = NULL;
  eddy_process_options o = {.file = file};
  int err = eddy_process_spawn(loop, &o, &p);
  cr_assert(p == NULL);
  return err;
}

Test(spawn, programs_that_cannot_run_are_errors_not_exit_127) {
  eddy_loop *loop = test_loop();
  char dir[] = "/tmp/eddy-spawn-XXXXXX", path[128];
  int fds = count_fds();
  cr_assert(mkdtemp(dir) != NULL);
  EXPECT_EQ(spawn_error(loop, "/nonexistent/program"), -ENOENT);
  EXPECT_EQ(spawn_error(loop, "no-such-program-anywhere"), -ENOENT);
  EXPECT_EQ(spawn_error(loop, ""), -ENOENT);
  snprintf(path, sizeof path, "%s/noexec", dir);
  write_file(path, "#!/bin/sh\nexit 0\n", 0644);
  EXPECT_EQ(spawn_error(loop, path), -EACCES);
  snprintf(path, sizeof path, "%s/garbage", dir);
  write_file(path, "\x01\x02 not a program\n", 0755);
  EXPECT_EQ(spawn_error(loop, path), -ENOEXEC);
  EXPECT_EQ(spawn_error(loop, dir), -EACCES);
  snprintf(path, sizeof path, "%s/garbage/x", dir);
  EXPECT_EQ(spawn_error(loop, path), -ENOTDIR);
  EXPECT_EQ(count_fds(), fds);
  EXPECT_EQ(no_children(), 1);
  /* The loop is intact: a good program still runs. */
  {
    life l = {0};
    life_run_sh(loop, &l, "exit 0");
    eddy_process_close(l.p);
  }
  unlink(path);
  snprintf(path, sizeof path, "rm -rf %s", dir);
  cr_assert(system(path) == 0);
  test_finish(loop);
}

Test(spawn, bad_options_are_einval) {
  eddy_loop *loop = test_loop();
  eddy_process *p = NULL;
  eddy_process_options o = {0};
  int fd = 0;
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EINVAL);
  o.file = "/bin/true";
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_PIPE, .stream = NULL};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EINVAL);
  o.stdio[1] = (eddy_stdio){.kind = (eddy_stdio_kind)42};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EINVAL);
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_FD, .fd = -1};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EBADF);
  o.stdio[1] = (eddy_stdio){0};
  o.extra_fds = &fd;
  o.nextra = 1000;
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EINVAL);
  EXPECT_EQ(eddy_process_spawn(loop, NULL, &p), -EINVAL);
  cr_assert(p == NULL);
  test_finish(loop);
}

Test(spawn, new_group_and_new_session) {
  eddy_loop *loop = test_loop();
  life a = {0}, b = {0};
  const char *argv[] = {"/bin/sleep", "10", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &a};
  o.flags = EDDY_PROCESS_NEW_GROUP;
  EXPECT_OK(life_spawn(loop, &a, &o));
  EXPECT_EQ(getpgid(eddy_process_pid(a.p)), eddy_process_pid(a.p));
  EXPECT_EQ(getsid(eddy_process_pid(a.p)), getsid(0));
  o.flags = EDDY_PROCESS_NEW_SESSION;
  o.arg = &b;
  EXPECT_OK(life_spawn(loop, &b, &o));
  EXPECT_EQ(getsid(eddy_process_pid(b.p)), eddy_process_pid(b.p));
  EXPECT_EQ(getpgid(eddy_process_pid(b.p)), eddy_process_pid(b.p));
  EXPECT_OK(eddy_process_kill_group(a.p, SIGTERM));
  EXPECT_OK(eddy_process_kill_group(b.p, SIGTERM));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.term_signal, SIGTERM);
  EXPECT_EQ(b.term_signal, SIGTERM);
  eddy_process_close(a.p);
  eddy_process_close(b.p);
  test_finish(loop);
}

Test(spawn, uid_and_gid_when_root) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo $(id -u) $(id -g) $(id -G)",
                        NULL};
  eddy_process_options o = life_options(&l, argv);
  if (geteuid() != 0) {
    test_finish(loop);
    cr_skip_test("needs root");
  }
  o.flags = EDDY_PROCESS_SET_UID | EDDY_PROCESS_SET_GID;
  o.uid = 65534;
  o.gid = 65534;
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(l.out_buf, "65534 65534 65534\n");
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, cwd_that_the_new_uid_cannot_enter_is_an_error) {
  eddy_loop *loop = test_loop();
  eddy_process *p = NULL;
  char dir[] = "/tmp/eddy-cwd-XXXXXX";
  eddy_process_options o = {.file = "/bin/true",
                            .flags = EDDY_PROCESS_SET_UID,
                            .uid = 65534};
  if (geteuid() != 0) {
    test_finish(loop);
    cr_skip_test("needs root");
  }
  cr_assert(mkdtemp(dir) != NULL);
  cr_assert(chmod(dir, 0700) == 0);
  o.cwd = dir;
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p), -EACCES);
  rmdir(dir);
  EXPECT_EQ(no_children(), 1);
  test_finish(loop);
}

static unsigned long long status_mask(pid_t pid, const char *field) {
  char path[64], line[256];
  unsigned long long v = ~0ULL;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  cr_assert(f != NULL);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, strlen(field)) == 0)
      v = strtoull(line + strlen(field) + 1, NULL, 16);
  fclose(f);
  return v;
}

static void on_usr1(eddy_signal *h, int signum, void *arg) {
  (void)h, (void)signum, (void)arg;
}

/* The parent catches SIGUSR1 (through eddy), ignores SIGPIPE and SIGHUP, and
 * blocks SIGUSR2: the child blocks nothing, catches nothing, and ignores
 * SIGHUP only. */
Test(spawn, child_starts_with_default_signals_and_an_empty_mask) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy_signal *sig;
  sigset_t block;
  pid_t pid;
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_usr1, NULL, &sig));
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &block, NULL);
  life_spawn_sleeper(loop, &l);
  pid = eddy_process_pid(l.p);
  EXPECT_EQ(status_mask(pid, "SigBlk"), 0);
  EXPECT_EQ(status_mask(pid, "SigCgt"), 0);
  /* Only the two this test set: what the test runner ignores is kept. */
  EXPECT_EQ(status_mask(pid, "SigIgn") &
                ((1ULL << (SIGHUP - 1)) | (1ULL << (SIGPIPE - 1))),
            1ULL << (SIGHUP - 1));
  EXPECT_OK(eddy_process_kill(l.p, SIGKILL));
  RUN_UNTIL(loop, l.exits == 1, 5000);
  EXPECT_EQ(l.exits, 1);
  eddy_signal_close(sig);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* Socket pairs for stdin and stdout: the same as pipes for the child that
 * reads one and writes the other. */
Test(spawn, socket_pairs_for_stdin_and_stdout) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/cat", NULL};
  eddy_process_options o = life_options(&l, argv);
  struct stat st;
  o.stdio[0] = (eddy_stdio){.kind = EDDY_STDIO_SOCKETPAIR, .stream = &l.in};
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_SOCKETPAIR, .stream = &l.out};
  EXPECT_OK(life_spawn(loop, &l, &o));
  cr_assert(fstat(eddy_stream_fd(l.out), &st) == 0 && S_ISSOCK(st.st_mode));
  EXPECT_OK(eddy_stream_write(l.in, "through a socket", 16));
  EXPECT_OK(eddy_stream_shutdown(l.in));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(l.out_buf, "through a socket");
  EXPECT_EQ(l.exit_status, 0);
  EXPECT_EQ(l.out_eof, 1);
  eddy_process_close(l.p);
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_SOCKETPAIR, .stream = NULL};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &l.p), -EINVAL);
  test_finish(loop);
}

/* stdout goes to the parent's 2 and stderr to its 1: each source sits on
 * the other's target, so the child must move them out of the way first. */
Test(spawn, swapped_stdout_and_stderr) {
  eddy_loop *loop = test_loop();
  life l = {0};
  int a[2], b[2], saved1 = dup(1), saved2 = dup(2);
  char out[16] = {0}, err[16] = {0};
  const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  cr_assert(pipe(a) == 0 && pipe(b) == 0);
  dup2(a[1], 1);
  dup2(b[1], 2);
  close(a[1]);
  close(b[1]);
  o.stdio[1] = (eddy_stdio){.kind = EDDY_STDIO_FD, .fd = 2};
  o.stdio[2] = (eddy_stdio){.kind = EDDY_STDIO_FD, .fd = 1};
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  dup2(saved1, 1);
  dup2(saved2, 2);
  close(saved1);
  close(saved2);
  EXPECT_EQ(read(b[0], out, sizeof out - 1), 4);
  EXPECT_EQ(read(a[0], err, sizeof err - 1), 4);
  EXPECT_STR(out, "out\n");
  EXPECT_STR(err, "err\n");
  close(a[0]);
  close(b[0]);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* An empty entry in PATH is the current directory, as for execvp(). */
Test(spawn, empty_path_entry_is_the_working_directory) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *env[] = {"PATH=/nonexistent:", NULL};
  eddy_process_options o = {.file = "true",
                            .env = env,
                            .cwd = "/bin",
                            .exit_cb = life_exit,
                            .arg = &l};
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.exit_status, 0);
  eddy_process_close(l.p);
  test_finish(loop);
}

/* With no PATH at all, the usual directories are searched. */
Test(spawn, no_path_at_all_searches_the_usual_directories) {
  eddy_loop *loop = test_loop();
  life l = {0};
  eddy_process_options o = {.file = "true", .exit_cb = life_exit, .arg = &l};
  unsetenv("PATH");
  EXPECT_OK(life_spawn(loop, &l, &o));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(l.exit_status, 0);
  eddy_process_close(l.p);
  test_finish(loop);
}

Test(spawn, a_gid_the_kernel_refuses_is_an_error) {
  eddy_loop *loop = test_loop();
  eddy_process *p = NULL;
  eddy_process_options o = {.file = "/bin/true",
                            .flags = EDDY_PROCESS_SET_GID,
                            .gid = (gid_t)-1};
  EXPECT_EQ(eddy_process_spawn(loop, &o, &p),
            geteuid() == 0 ? -EINVAL : -EPERM);
  cr_assert(p == NULL);
  EXPECT_EQ(no_children(), 1);
  test_finish(loop);
}

/* The program never closes the handle: closing every handle of the loop
 * (as a program does at exit) keeps it until the child is reaped. */
Test(spawn, close_all_waits_for_a_running_child) {
  eddy_loop *loop = test_loop();
  life l = {0};
  const char *argv[] = {"/bin/sleep", "0.1", NULL};
  eddy_process_options o = {.file = argv[0],
                            .argv = argv,
                            .exit_cb = life_exit,
                            .arg = &l};
  EXPECT_OK(life_spawn(loop, &l, &o));
  test_finish(loop);
  EXPECT_EQ(l.exits, 0);
  EXPECT_EQ(no_children(), 1);
}
