/* app.h: what the eddy program's subcommands share. */
#ifndef EDDY_APP_APP_H
#define EDDY_APP_APP_H

/* If argv[*i] is the option name ("--listen VALUE" or "--listen=VALUE"),
 * sets *value (NULL when the value is missing), advances *i past a
 * separate value, and returns 1; otherwise returns 0. */
int app_option_value(int argc, char **argv, int *i, const char *name,
                     const char **value);

int app_echo(int argc, char **argv);

#endif
