/*
 * nshelp: one participant of a namespace or hostile-neighbour trial (tests/ns_*.sh,
 * tests/hostile.sh), for the steps the shmkit tool cannot express: holding a lock while another
 * pid namespace tries it, a barrier party, a pipe end, a JoinableQueue worker and joiner.
 * Each step prints one line "STEP RESULT" (RESULT 0, a count, or an errno name such as EPERM)
 * so the calling script can compare outcomes; coordination between processes in different
 * namespaces goes through marker files (touch:PATH, wait:PATH).
 *
 *   nshelp lock NAME STEP...     steps: acq try rel tmo:MS sleep:MS touch:PATH wait:PATH
 *                                use:NAME (the steps after it act on lock NAME, opened then)
 *   nshelp lockloop LOCK VALUE N   N acquire/release rounds, checking that nobody else is
 *                                  inside (VALUE counts who is); prints violations
 *   nshelp barrier NAME TIMEOUT_MS
 *   nshelp pipe-send NAME END N [GAP_MS]   then close
 *   nshelp pipe-recv NAME END TIMEOUT_MS   until EOF; checks order and content
 *   nshelp jq-work NAME N DELAY_MS LASTFILE  get N, task_done each after DELAY_MS; LASTFILE is
 *                                            made before the last task_done
 *   nshelp jq-join NAME TIMEOUT_MS LASTFILE  join; prints whether LASTFILE existed by then
 *   nshelp sem-open NAME                     what shmkit_sem_open (and a use) answer
 *   nshelp fork-put NAME                     put, fork, the child puts through the same handle
 *   nshelp close-null                        every close(NULL) returns 0
 * Exit status: 0 when every step ran (whatever it returned), 3 when a wait:PATH timed out,
 * 2 on bad arguments, 1 when a check inside a step failed (lockloop, pipe-recv).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"

#define MS 1000000LL
#define WAIT_FILE_MS 60000 /* generous: the machine is shared */

static const char *res(int rc)
{
	static char buf[32];
	const char *n;

	if (rc >= 0) {
		snprintf(buf, sizeof(buf), "%d", rc);
		return buf;
	}
	n = strerrorname_np(-rc);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E%d", -rc);
	return buf;
}

static void say(const char *step, int rc)
{
	printf("%s %s\n", step, res(rc));
	fflush(stdout);
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int touch(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fclose(f);
	return 0;
}

static int wait_file(const char *path)
{
	int64_t end = now_ms() + WAIT_FILE_MS;
	struct stat st;

	while (stat(path, &st) < 0) {
		if (now_ms() > end)
			return -ETIMEDOUT;
		nap_ms(5);
	}
	return 0;
}

static long num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "nshelp: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static int cmd_lock(int argc, char **argv)
{
	shmkit_lock *l, *all[8];
	int i, n = 0, rc = shmkit_lock_open(argv[0], &l);

	if (rc) {
		say("open", rc);
		return 1;
	}
	all[n++] = l;
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (!strncmp(s, "use:", 4)) {
			if (n == 8 || (rc = shmkit_lock_open(s + 4, &l))) {
				say("open", n == 8 ? -E2BIG : rc);
				return 1;
			}
			all[n++] = l;
		} else if (!strcmp(s, "acq"))
			say(s, shmkit_lock_acquire(l));
		else if (!strcmp(s, "try"))
			say(s, shmkit_lock_acquire_try(l));
		else if (!strcmp(s, "rel"))
			say(s, shmkit_lock_release(l));
		else if (!strncmp(s, "tmo:", 4))
			say("tmo", shmkit_lock_acquire_timeout(l, num(s + 4) * MS));
		else if (!strncmp(s, "sleep:", 6))
			nap_ms(num(s + 6));
		else if (!strncmp(s, "touch:", 6))
			touch(s + 6);
		else if (!strncmp(s, "wait:", 5)) {
			if (wait_file(s + 5)) {
				say("wait", -ETIMEDOUT);
				return 3;
			}
		} else {
			fprintf(stderr, "nshelp: unknown step '%s'\n", s);
			return 2;
		}
	}
	while (n > 0)
		shmkit_lock_close(all[--n]);
	return 0;
}

/* Rounds of acquire, "am I alone inside?", release. A Value counts who is inside: a lock held
 * twice shows as a count of 2. A holder killed inside leaves the count at 1; whoever gets
 * SHMKIT_OWNER_DIED next repairs it. */
static int cmd_lockloop(int argc, char **argv)
{
	shmkit_lock *l;
	shmkit_value *v;
	long n = num(argv[2]), i, violations = 0, died = 0;
	int64_t in;
	int rc;

	(void)argc;
	if ((rc = shmkit_lock_open(argv[0], &l)) || (rc = shmkit_value_open(argv[1], &v))) {
		say("open", rc);
		return 1;
	}
	for (i = 0; i < n; i++) {
		rc = shmkit_lock_acquire_timeout(l, 60000 * MS);
		if (rc < 0) {
			say("acquire", rc);
			return 1;
		}
		if (rc == SHMKIT_OWNER_DIED) {
			died++;
			shmkit_value_store(v, 0);
		}
		shmkit_value_add(v, 1, SHMKIT_ADD_ATOMIC, &in);
		if (in != 1)
			violations++;
		if (i % 16 == 0)
			nap_ms(1);
		shmkit_value_add(v, -1, SHMKIT_ADD_ATOMIC, &in);
		if (in != 0)
			violations++;
		if ((rc = shmkit_lock_release(l))) {
			say("release", rc);
			return 1;
		}
	}
	printf("rounds %ld violations %ld owner_died %ld\n", n, violations, died);
	fflush(stdout);
	shmkit_value_close(v);
	shmkit_lock_close(l);
	return violations ? 1 : 0;
}

static int cmd_barrier(int argc, char **argv)
{
	shmkit_barrier *b;
	int rc = shmkit_barrier_open(argv[0], &b);

	(void)argc;
	if (rc) {
		say("open", rc);
		return 1;
	}
	say("wait", shmkit_barrier_wait_timeout(b, num(argv[1]) * MS));
	shmkit_barrier_close(b);
	return 0;
}

static int cmd_pipe_send(int argc, char **argv)
{
	shmkit_pipe *p;
	long n = num(argv[2]), gap = argc > 3 ? num(argv[3]) : 0, i;
	char msg[64];
	int rc = shmkit_pipe_open(argv[0], &p);

	if (rc || (rc = shmkit_pipe_attach(p, (int)num(argv[1])))) {
		say("open", rc);
		return 1;
	}
	for (i = 0; i < n; i++) {
		int len = snprintf(msg, sizeof(msg), "msg%ld", i);

		if ((rc = shmkit_pipe_send_timeout(p, msg, (size_t)len, 60000 * MS))) {
			say("send", rc);
			return 1;
		}
		if (gap)
			nap_ms(gap);
	}
	say("sent", (int)n);
	shmkit_pipe_close(p);
	return 0;
}

static int cmd_pipe_recv(int argc, char **argv)
{
	shmkit_pipe *p;
	char buf[64], want[64];
	long got = 0;
	int rc = shmkit_pipe_open(argv[0], &p);

	(void)argc;
	if (rc || (rc = shmkit_pipe_attach(p, (int)num(argv[1])))) {
		say("open", rc);
		return 1;
	}
	for (;;) {
		rc = shmkit_pipe_recv_timeout(p, buf, sizeof(buf) - 1, num(argv[2]) * MS);
		if (rc < 0)
			break;
		buf[rc] = '\0';
		snprintf(want, sizeof(want), "msg%ld", got);
		if (strcmp(buf, want)) {
			printf("wrong message %s, want %s\n", buf, want);
			return 1;
		}
		got++;
	}
	printf("recv %ld %s\n", got, res(rc));
	fflush(stdout);
	shmkit_pipe_close(p);
	return 0;
}

static int cmd_jq_work(int argc, char **argv)
{
	shmkit_queue *q;
	long n = num(argv[1]), delay = num(argv[2]), i;
	char buf[256];
	int rc = shmkit_queue_open(argv[0], &q);

	(void)argc;
	if (rc) {
		say("open", rc);
		return 1;
	}
	for (i = 0; i < n; i++) {
		if ((rc = shmkit_queue_get_timeout(q, buf, sizeof(buf), 60000 * MS)) < 0) {
			say("get", rc);
			return 1;
		}
		nap_ms(delay);
		if (i == n - 1) {
			touch(argv[3]);
			nap_ms(delay);
		}
		if ((rc = shmkit_queue_task_done(q))) {
			say("task_done", rc);
			return 1;
		}
	}
	say("done", (int)n);
	shmkit_queue_close(q);
	return 0;
}

static int cmd_jq_join(int argc, char **argv)
{
	shmkit_queue *q;
	struct stat st;
	int rc = shmkit_queue_open(argv[0], &q);

	(void)argc;
	if (rc) {
		say("open", rc);
		return 1;
	}
	rc = shmkit_queue_join_timeout(q, num(argv[1]) * MS);
	printf("join %s last=%d\n", res(rc), stat(argv[2], &st) == 0);
	fflush(stdout);
	shmkit_queue_close(q);
	return 0;
}

static int cmd_sem_open(int argc, char **argv)
{
	shmkit_sem *s;
	int rc = shmkit_sem_open(argv[0], &s);

	(void)argc;
	say("open", rc);
	if (rc == 0) {
		say("value", shmkit_sem_value(s));
		say("try", shmkit_sem_acquire_try(s));
		shmkit_sem_close(s);
	}
	return 0;
}

/* Put one message, then fork: the child puts through the parent's handle. */
static int cmd_fork_put(int argc, char **argv)
{
	shmkit_queue *q;
	pid_t pid;
	int rc = shmkit_queue_open(argv[0], &q), status;

	(void)argc;
	if (rc || (rc = shmkit_queue_put(q, "p", 1))) {
		say("parent", rc);
		return 1;
	}
	say("parent", 0);
	pid = fork();
	if (pid == 0) {
		say("child", shmkit_queue_put_timeout(q, "c", 1, 10000 * MS));
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	shmkit_queue_close(q);
	return 0;
}

static int cmd_close_null(void)
{
	int bad = 0;

	bad |= shmkit_value_close(NULL) != 0;
	bad |= shmkit_array_close(NULL) != 0;
	bad |= shmkit_lock_close(NULL) != 0;
	bad |= shmkit_sem_close(NULL) != 0;
	bad |= shmkit_queue_close(NULL) != 0;
	bad |= shmkit_pipe_close(NULL) != 0;
	bad |= shmkit_event_close(NULL) != 0;
	bad |= shmkit_cond_close(NULL) != 0;
	bad |= shmkit_barrier_close(NULL) != 0;
	say("close-null", bad ? -EINVAL : 0);
	return bad;
}

struct cmd {
	const char *name;
	int min_args;
	int (*fn)(int argc, char **argv);
};

int main(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "lock", 1, cmd_lock },	     { "lockloop", 3, cmd_lockloop },
		{ "barrier", 2, cmd_barrier },	     { "pipe-send", 3, cmd_pipe_send },
		{ "pipe-recv", 3, cmd_pipe_recv },   { "jq-work", 4, cmd_jq_work },
		{ "jq-join", 3, cmd_jq_join },	     { "sem-open", 1, cmd_sem_open },
		{ "fork-put", 1, cmd_fork_put },
	};
	size_t i;

	if (argc >= 2 && !strcmp(argv[1], "close-null"))
		return cmd_close_null();
	for (i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name) && argc - 2 >= cmds[i].min_args)
			return cmds[i].fn(argc - 2, argv + 2);
	fprintf(stderr, "usage: nshelp lock|lockloop|barrier|pipe-send|pipe-recv|jq-work|jq-join|"
			"sem-open|fork-put|close-null ARGS (see the source)\n");
	return 2;
}
