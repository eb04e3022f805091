/* main.c: the eddy program: global options and subcommand dispatch.
 *
 *   eddy [--log-level LEVEL] COMMAND [OPTIONS...]
 *
 * Each subcommand lives in a file of its own and is listed in commands[].
 * Usage errors print one line naming the problem and exit 2.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "app/log.h"
#include "eddy.h"

typedef struct command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} command;

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"chat", "one chat room for browsers, line clients and IRC", app_chat},
    {"dns", "an authoritative DNS server and caching forwarder", app_dns},
    {"echo", "echo every byte back to its sender", app_echo},
    {"help", "show help for eddy or for one command", cmd_help},
    {"irc", "an IRC server", app_irc},
    {"portforward", "relay each connection to a target endpoint",
     app_portforward},
    {"procmon", "run commands, log their output, restart them when they exit",
     app_procmon},
    {"version", "print the version", cmd_version},
    {"web", "serve files and web applications over HTTP/1.1", app_web},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out,
          "Usage: eddy [OPTIONS] COMMAND [ARGS...]\n"
          "\n"
          "eddy runs ready-made network servers on one event loop.\n"
          "\n"
          "Options:\n"
          "  -h, --help             show this help and exit\n"
          "  -V, --version          print the version and exit\n"
          "      --log-level LEVEL  error, warn, info (default) or debug\n"
          "\n"
          "Commands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nRun 'eddy help COMMAND' for a command's options.\n");
}

static const command *find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int cmd_version(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fprintf(stderr, "eddy version: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  printf("eddy %s\n", eddy_version());
  return 0;
}

static int cmd_help(int argc, char **argv) {
  const command *cmd;
  if (argc < 2) {
    usage(stdout);
    return 0;
  }
  if ((cmd = find(argv[1])) == NULL) {
    char quoted[160];
    fprintf(stderr, "eddy help: unknown command '%s'\n",
            app_quote(quoted, sizeof quoted, argv[1]));
    return 2;
  }
  if (cmd->run == cmd_help || cmd->run == cmd_version) {
    printf("eddy %s: %s\n", argv[1], cmd->summary);
    return 0;
  }
  {
    char *args[] = {argv[1], "--help", NULL};
    return cmd->run(2, args);
  }
}

int app_option_value(int argc, char **argv, int *i, const char *name,
                     const char **value) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
    return 0;
  if (a[n] == '=')
    *value = a + n + 1;
  else
    *value = *i + 1 < argc ? argv[++*i] : NULL;
  return 1;
}

int app_usage_error(const char *cmd, const char *before, const char *value,
                    const char *after) {
  char quoted[256];
  if (value == NULL)
    fprintf(stderr, "eddy %s: %s\n", cmd, before);
  else
    fprintf(stderr, "eddy %s: %s'%s'%s\n", cmd, before,
            app_quote(quoted, sizeof quoted, value), after);
  return 2;
}

/* Parses the global options; returns the index of the command, or -1 with
 * *status set when the program should exit. */
static int global_options(int argc, char **argv, int *status) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      *status = 0;
      return -1;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("eddy %s\n", eddy_version());
      *status = 0;
      return -1;
    }
    const char *level;
    if (app_option_value(argc, argv, &i, "--log-level", &level)) {
      if (level == NULL) {
        fprintf(stderr,
                "eddy: --log-level needs a value (error, warn, info, debug)\n");
        *status = 2;
        return -1;
      }
      if (app_log_set_level(level) != 0) {
        char quoted[160];
        fprintf(stderr,
                "eddy: unknown log level '%s' (error, warn, info, debug)\n",
                app_quote(quoted, sizeof quoted, level));
        *status = 2;
        return -1;
      }
      continue;
    }
    char quoted[160];
    fprintf(stderr, "eddy: unknown option '%s'; see 'eddy --help'\n",
            app_quote(quoted, sizeof quoted, a));
    *status = 2;
    return -1;
  }
  if (i >= argc) {
    usage(stderr);
    *status = 2;
    return -1;
  }
  return i;
}

/* The library reports an error that no errback handled when its Deferred
 * is freed; the program logs it, since the library never prints. */
static void log_unhandled(int code, const char *message, void *arg) {
  (void)arg;
  app_log(LOG_ERROR, "%s (%s)", message, eddy_errname(code));
}

int main(int argc, char **argv) {
  int status = 0;
  int i = global_options(argc, argv, &status);
  const command *cmd;
  if (i < 0)
    return status;
  /* A peer that goes away must not kill the server: write errors are
   * reported by the streams instead (sockets never raise it; pipes do). */
  signal(SIGPIPE, SIG_IGN);
  eddy_deferred_set_unhandled_hook(log_unhandled, NULL);
  cmd = find(argv[i]);
  if (cmd == NULL) {
    char quoted[160];
    fprintf(stderr, "eddy: unknown command '%s'; see 'eddy --help'\n",
            app_quote(quoted, sizeof quoted, argv[i]));
    return 2;
  }
  return cmd->run(argc - i, argv + i);
}
