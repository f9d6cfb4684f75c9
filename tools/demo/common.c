/* Small helpers the demo sections share: forking workers and collecting them. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo/demo.h"

pid_t demo_fork(int (*fn)(void *arg, int id), void *arg, int id)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int rc = fn(arg, id);
		fflush(stdout);
		_exit(rc);
	}
	return pid;
}

int demo_reap(const pid_t *pids, int n)
{
	int i, status, failed = 0;

	for (i = 0; i < n; i++)
		if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failed++;
	return failed;
}

void demo_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void demo_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	/* Each line goes out whole and at once: several processes share stdout. */
	fflush(stdout);
}
