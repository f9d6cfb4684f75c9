/* `shmkit top`: the terminal helpers (term.c) the view (top.c) uses. */
#ifndef SHMKIT_TOOLS_TOP_H
#define SHMKIT_TOOLS_TOP_H

#include <stdbool.h>
#include <stdio.h>

enum { KEY_NONE = -1, KEY_STOP = -2, KEY_RESIZE = -3 };

/* Alternate screen, hidden cursor, keys without echo; SIGINT/SIGTERM/SIGHUP only set a flag. */
int term_enter(void);
/* Undo term_enter (safe to call twice). */
void term_leave(void);
void term_size(int *rows, int *cols);
/* Wait up to timeout_ms for a key: the key, KEY_NONE, KEY_RESIZE or KEY_STOP (a signal). */
int term_wait_key(int timeout_ms);
bool term_stopped(void);

#endif
