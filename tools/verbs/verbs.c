/* Helpers shared by the shell verbs (see verbs.h): dispatch, parsing, names, signals, children. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "verbs/verbs.h"

int verbs_dispatch(const char *kind, const char *about, const struct verb *verbs, int argc,
		   char **argv)
{
	static char cmd[64];
	const struct verb *v;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: shmkit %s VERB NAME [OPTIONS...]\n%s\n\nVerbs:\n", kind, about);
		for (v = verbs; v->name; v++)
			printf("  %-8s %s\n", v->name, v->summary);
		printf("\n'shmkit %s VERB --help' describes one verb.\n", kind);
		return 0;
	}
	if (argc < 2)
		return usage_error(kind, "missing VERB");
	for (v = verbs; v->name; v++) {
		if (strcmp(argv[1], v->name))
			continue;
		snprintf(cmd, sizeof(cmd), "%s %s", kind, v->name);
		return v->run(cmd, argc - 1, argv + 1);
	}
	return usage_error(kind, "unknown verb '%s'", argv[1]);
}

/* ------------------------------------------------------------------------------------------- */

void verb_parser_init(struct verb_parser *p, const char *cmd, int argc, char **argv,
		      const char *optstring, const struct option *longopts,
		      const char *const *pos_names, int min_pos, int max_pos, bool command)
{
	memset(p, 0, sizeof(*p));
	p->cmd = cmd;
	p->argc = argc;
	p->argv = argv;
	p->optstring = optstring;
	p->longopts = longopts;
	p->pos_names = pos_names;
	p->min_pos = min_pos;
	p->max_pos = max_pos < VERB_MAX_POS ? max_pos : VERB_MAX_POS;
	p->command = command;
	optind = 1;
	opterr = 0;
}

/* "-5" and "-0" are numbers for value/array verbs, not options. */
static bool negative_number(const char *a)
{
	return a[0] == '-' && a[1] >= '0' && a[1] <= '9';
}

int verb_getopt(struct verb_parser *p)
{
	while (!p->done) {
		char *a;

		if (optind >= p->argc) {
			p->done = true;
			break;
		}
		a = p->argv[optind];
		if (p->command && p->npos == p->max_pos &&
		    (!strcmp(a, "--") || a[0] != '-' || a[1] == '\0')) {
			/* The command starts here: its own options are not ours. */
			if (!strcmp(a, "--"))
				optind++;
			p->rest = &p->argv[optind];
			p->done = true;
			break;
		}
		if (!strcmp(a, "--")) {
			optind++;
			if (p->command) {
				/* Whatever positionals are missing, the rest is the command. */
				p->rest = &p->argv[optind];
				p->done = true;
				break;
			}
			while (optind < p->argc && p->npos < p->max_pos)
				p->pos[p->npos++] = p->argv[optind++];
			if (optind < p->argc)
				p->extra = p->argv[optind];
			p->done = true;
			break;
		}
		if (a[0] != '-' || a[1] == '\0' || negative_number(a)) {
			if (p->npos == p->max_pos) {
				p->extra = a;
				p->done = true;
				break;
			}
			p->pos[p->npos++] = a;
			optind++;
			continue;
		}
		return getopt_long(p->argc, p->argv, p->optstring, p->longopts, NULL);
	}
	return -1;
}

int verb_parser_finish(struct verb_parser *p)
{
	if (p->extra)
		return usage_error(p->cmd, "unexpected argument '%s'", p->extra);
	if (p->npos < p->min_pos)
		return usage_error(p->cmd, "missing %s", p->pos_names[p->npos]);
	if (p->command && (!p->rest || !p->rest[0]))
		return usage_error(p->cmd, "missing the command to run (after '--')");
	return 0;
}

/* ------------------------------------------------------------------------------------------- */

int verb_check_name(const char *cmd, const char *name)
{
	return check_name(cmd, name);
}

static void verb_vfail(const char *cmd, const char *name, const char *fmt, va_list ap)
{
	fprintf(stderr, "shmkit: %s %s: ", cmd, name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int verb_fail(const char *cmd, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verb_vfail(cmd, name, fmt, ap);
	va_end(ap);
	return 1;
}

/* One error path for the tool: runtime_error (util.c) explains a refusal by its mode, a
 * leftover, or a create in progress, as every other command's errors do. */
int verb_error(const char *cmd, const char *name, int err)
{
	char what[SHMKIT_NAME_MAX + 80];

	snprintf(what, sizeof(what), "%s %s", cmd, name);
	return runtime_error(what, err);
}

/* "a lock", "an event": for messages naming kinds. */
static const char *article(const char *kind)
{
	static char buf[2][64];
	static int which;
	bool an = kind[0] == 'a' || kind[0] == 'e' || kind[0] == 'u';

	which ^= 1;
	snprintf(buf[which], sizeof(buf[which]), "%s %s", an ? "an" : "a", kind);
	return buf[which];
}

int verb_open_failed(const char *cmd, const char *name, const char *want, int err)
{
	struct shmkit_info info;

	if (err == -EPROTOTYPE && shmkit_info(name, &info) == 0)
		return verb_fail(cmd, name, "%s is %s, not %s", name,
				 article(shmkit_kind_name(info.kind)), article(want));
	return verb_error(cmd, name, err);
}

/* ------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t caught_signal;
static volatile sig_atomic_t caught_from_kill;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!caught_signal)
		caught_signal = sig;
	/* The terminal signals the whole foreground group, the child included; only a signal sent
	 * to this process alone needs passing on. */
	if (si && (si->si_code == SI_USER || si->si_code == SI_QUEUE))
		caught_from_kill = sig;
}

void verb_catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: waitpid and read return EINTR */
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	/* A command that does not read the message we write it must not kill us. */
	signal(SIGPIPE, SIG_IGN);
}

int verb_signal_caught(void)
{
	return caught_signal;
}

const char *verb_signal_name(int sig)
{
	switch (sig) {
	case SIGINT:
		return "SIGINT";
	case SIGTERM:
		return "SIGTERM";
	case SIGHUP:
		return "SIGHUP";
	default:
		return "a signal";
	}
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int verb_wait_sliced(int (*fn)(void *arg, int64_t slice_ns), void *arg, int64_t timeout_ns)
{
	int64_t deadline = timeout_ns < 0 ? -1 : mono_ns() + timeout_ns;

	for (;;) {
		int64_t slice = VERB_SLICE_NS;
		int r;

		if (caught_signal)
			return -EINTR;
		if (deadline >= 0) {
			int64_t left = deadline - mono_ns();
			if (left < 0)
				left = 0;
			if (left < slice)
				slice = left;
		}
		r = fn(arg, slice);
		if (r != -ETIMEDOUT)
			return r;
		if (deadline >= 0 && mono_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

const char *verb_seconds(int64_t ns)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%g s", ns / 1e9);
	return buf;
}

/* ------------------------------------------------------------------------------------------- */

pid_t verb_spawn(const char *cmd, char **command, int stdin_fd, bool die_with_us)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	pid_t parent = getpid(), pid;
	sigset_t none;
	size_t i;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (die_with_us) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Died before the line above took effect: the death signal will never come. */
		if (getppid() != parent)
			_exit(128 + SIGKILL);
	}
	if (stdin_fd >= 0 && stdin_fd != STDIN_FILENO) {
		if (dup2(stdin_fd, STDIN_FILENO) < 0)
			_exit(127);
		close(stdin_fd);
	}
	execvp(command[0], command);
	fprintf(stderr, "shmkit: %s: cannot run '%s': %s\n", cmd, command[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static void on_child(int sig)
{
	(void)sig; /* only here so that sigsuspend returns when a child exits */
}

int verb_wait_child(pid_t pid)
{
	sigset_t block, old;
	struct sigaction sa;
	int status = 0, forwarded = 0;
	pid_t r;

	/* Block what we wait for, then test and sleep atomically in sigsuspend: a signal landing
	 * between the test and the sleep would otherwise go unforwarded until the child exits. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_child;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		if (caught_from_kill && caught_from_kill != forwarded) {
			forwarded = caught_from_kill;
			kill(pid, forwarded);
		}
		sigsuspend(&old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (status < 0)
		return 127;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}
