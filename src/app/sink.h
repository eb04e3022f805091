/* sink.h: outputs for whole lines that never block the loop (sink.c): the
 * log on standard error, an access log on a file or standard output. */
#ifndef EDDY_APP_SINK_H
#define EDDY_APP_SINK_H

#include <stddef.h>

#include "eddy.h"

typedef struct app_sink app_sink;

/* A sink on an inherited descriptor (2, 1), or on a file opened for
 * appending ("-": standard output). Returns 0, -ENOMEM, or the open's
 * error. Sinks live until the program exits. */
int app_sink_open_fd(int fd, app_sink **out);
int app_sink_open_path(const char *path, app_sink **out);

/* Appends a whole line (its newline included): 0, or -1 if it did not fit
 * and was dropped (counted). */
int app_sink_put(app_sink *s, const char *line, size_t len);
/* Free room in the buffer. */
size_t app_sink_room(const app_sink *s);
/* Starts writing what is buffered (now, or when the descriptor can take
 * it). */
void app_sink_flush(app_sink *s);
/* Lines dropped since the last call. */
unsigned long app_sink_take_dropped(app_sink *s);

/* While a loop runs, every sink is written whenever its descriptor can
 * take more; detach before eddy_loop_close_all. */
int app_sink_attach_all(eddy_loop *loop);
void app_sink_detach_all(void);

#endif
