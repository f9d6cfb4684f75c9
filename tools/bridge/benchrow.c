/*
 * `shmkit bench --only bridge`: the rows come from `shmkit-bridge bench --json` (the ZeroMQ
 * side, bare ZeroMQ included, is measured by the program linked with libzmq), read back into
 * shmkit bench's table and JSON. Without shmkit-bridge the rows say why they are missing.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bridge/launch.h"

/* The number after "key": in the JSON line, or NAN. */
static double field(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	if (!(p = strstr(json, pat)))
		return NAN;
	return strtod(p + strlen(pat), NULL);
}

/* Run shmkit-bridge bench --json [--quick], its one line of output into line. */
static int run(const char *path, bool quick, char *line, size_t n)
{
	char *args[] = { (char *)BRIDGE_PROGRAM, "bench", "--json", quick ? "--quick" : NULL, NULL };
	int fds[2], status;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	if (pipe(fds))
		return -errno;
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(path, args);
		_exit(127);
	}
	close(fds[1]);
	while (got + 1 < n && (r = read(fds[0], line + got, n - 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		got += (size_t)r;
	}
	line[got] = 0;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

int bench_bridge(const struct bench_opts *o)
{
	static const char *const names[] = { "zmq", "bridge" };
	char path[PATH_MAX + 32], looked[2 * PATH_MAX + 64], line[1024];
	struct bench_result r[2];
	int i, rc;

	for (i = 0; i < 2; i++) {
		bench_result_init(&r[i], names[i], BENCH_BRIDGE);
		r[i].size = 64;
		r[i].producers = r[i].consumers = 1;
	}
	if (bridge_locate(path, sizeof(path), looked, sizeof(looked))) {
		for (i = 0; i < 2; i++) {
			snprintf(r[i].unsupported, sizeof(r[i].unsupported),
				 "%s (the ZeroMQ bridge) is not installed", BRIDGE_PROGRAM);
			bench_add(&r[i]);
		}
		return 0;
	}
	bench_progress(o, "bridge: %s bench (bare ZeroMQ, then the bridge)", BRIDGE_PROGRAM);
	rc = run(path, o->quick, line, sizeof(line));
	bench_progress(o, NULL);
	for (i = 0; i < 2; i++) {
		r[i].msgs_per_s = field(line, names[i]);
		if (rc || !(r[i].msgs_per_s > 0)) {
			r[i].msgs_per_s = NAN;
			snprintf(r[i].error, sizeof(r[i].error), "%s bench failed", BRIDGE_PROGRAM);
		} else if (i == 0) {
			snprintf(r[i].note, sizeof(r[i].note), "PUSH -> PULL, %.0f messages, one per "
				 "zmq_send", field(line, "messages"));
		} else {
			snprintf(r[i].note, sizeof(r[i].note), "queue -> send -> TCP -> recv -> keeper "
				 "-> queue, window %.0f, <= %.0f per frame", field(line, "window"),
				 field(line, "batch"));
		}
		bench_add(&r[i]);
	}
	return r[0].error[0] || r[1].error[0] ? -1 : 0;
}
