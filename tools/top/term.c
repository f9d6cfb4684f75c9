/*
 * The terminal side of `shmkit top`: plain ANSI/VT100 escapes (an alternate screen, cursor
 * hidden, no echo, keys one at a time), restored on every way out that can be caught.
 *
 * Why not ncurses: top draws one table a second and reads single keys; the five escape
 * sequences below do that on every terminal emulator in use, and the tool keeps its only
 * dependencies libc and libshmkit.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "top/top.h"

static struct termios saved;
static bool raw_mode, alt_screen;
static volatile sig_atomic_t stop_signal, resized;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

int term_enter(void)
{
	struct sigaction sa;
	struct termios t;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: poll returns and the loop sees the flag */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, NULL);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		t = saved;
		t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			raw_mode = true;
	}
	/* alternate screen, cursor hidden */
	fputs("\033[?1049h\033[?25l", stdout);
	alt_screen = true;
	return 0;
}

void term_leave(void)
{
	if (alt_screen)
		fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	alt_screen = false;
	if (raw_mode)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	raw_mode = false;
}

void term_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

int term_wait_key(int timeout_ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	unsigned char ch;
	int n;

	if (stop_signal)
		return KEY_STOP;
	if (!raw_mode) {
		/* No keyboard (stdin not a terminal): just wait. */
		n = poll(NULL, 0, timeout_ms);
		return stop_signal ? KEY_STOP : resized ? (resized = 0, KEY_RESIZE) : KEY_NONE;
	}
	n = poll(&p, 1, timeout_ms);
	if (stop_signal)
		return KEY_STOP;
	if (resized) {
		resized = 0;
		return KEY_RESIZE;
	}
	if (n <= 0)
		return KEY_NONE;
	if (read(STDIN_FILENO, &ch, 1) != 1)
		return errno == EINTR ? KEY_NONE : KEY_STOP; /* EOF on the terminal: leave */
	return ch;
}

bool term_stopped(void)
{
	return stop_signal != 0;
}
