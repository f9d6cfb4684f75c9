/*
 * Helpers shared by the Check suites: unique object names removed at teardown, forked children
 * with bounded waits, polling for another process's progress with a timeout, monotonic time,
 * shared scratch memory, the /dev/shm paths behind a name, and the skip for a missing /dev/shm.
 *
 * Use: main() calls tu_skip_if_no_shm() and tu_init(); test cases come from tu_tcase() so
 * every name made with tu_name*() is removed after each test, passed or failed.
 * Children forked with tu_fork() must not call ck_assert*: report through the return value
 * (it becomes the exit status) or through tu_shared() memory, and let the parent assert.
 * Everything here is static: each suite is one translation unit.
 */
#ifndef SHMKIT_TESTUTIL_H
#define SHMKIT_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "shmkit.h"

/* Room for any shmkit name, "/" and NUL included. */
#define TU_NAME_SIZE (SHMKIT_NAME_MAX + 2)
#define TU_MAX_NAMES 512
#define TU_NS_PER_MS 1000000LL
#define TU_NS_PER_S 1000000000LL

typedef int (*tu_unlink_fn)(const char *name);

struct tu__entry {
	char name[TU_NAME_SIZE + 64]; /* room for the over-long names tests reject */
	tu_unlink_fn unlink;
};

/* The registry lives in shared memory made by tu_init() before Check forks a process per
 * test: a failing assertion _exits that process without running its checked teardown, so the
 * runner's unchecked teardown (see tu_tcase) must see the names the test registered. */
struct tu__registry {
	_Atomic int count;
	struct tu__entry e[TU_MAX_NAMES];
};

static struct tu__registry *tu__reg;
static unsigned tu__seq;

/* Set up the shared name registry; call once in main() before running suites. */
static inline void tu_init(void)
{
	void *p;

	if (tu__reg)
		return;
	p = mmap(NULL, sizeof(*tu__reg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED) {
		perror("tu_init: mmap");
		exit(99);
	}
	tu__reg = p;
}

/* Register `name` for removal by tu_cleanup() with the kind's unlink `fn` (NULL: only the raw
 * shm_unlink and sem_unlink in tu_cleanup). Returns name. */
static inline const char *tu_track(const char *name, tu_unlink_fn fn)
{
	struct tu__entry *e;
	size_t len;
	int i;

	tu_init();
	i = atomic_fetch_add(&tu__reg->count, 1);
	ck_assert_msg(i < TU_MAX_NAMES, "too many test names");
	e = &tu__reg->e[i];
	len = strlen(name);
	ck_assert_msg(len < sizeof(e->name), "test name too long");
	memcpy(e->name, name, len + 1);
	e->unlink = fn;
	return name;
}

/* A name unique to this process and call, "/shmkit-test-<tag>-<pid>-<n>", written into buf
 * (TU_NAME_SIZE bytes) and registered with the kind's unlink `fn` (may be NULL). */
static inline const char *tu_name_kind(char *buf, const char *tag, tu_unlink_fn fn)
{
	snprintf(buf, TU_NAME_SIZE, "/shmkit-test-%s-%d-%u", tag, (int)getpid(), ++tu__seq);
	return tu_track(buf, fn);
}

static inline const char *tu_name(char *buf, const char *tag)
{
	return tu_name_kind(buf, tag, NULL);
}

/* Remove every registered name: the kind's unlink first, then whatever a half-made or
 * hand-made object left (the region file and a derived "<name>.sem" semaphore). Errors are
 * ignored: most names are already gone. */
static inline void tu_cleanup(void)
{
	char sem[TU_NAME_SIZE + 8];
	int i, n;

	if (!tu__reg)
		return;
	n = atomic_load(&tu__reg->count);
	if (n > TU_MAX_NAMES)
		n = TU_MAX_NAMES;
	for (i = 0; i < n; i++) {
		struct tu__entry *e = &tu__reg->e[i];

		if (e->unlink)
			e->unlink(e->name);
		shm_unlink(e->name);
		snprintf(sem, sizeof(sem), "%s.sem", e->name);
		sem_unlink(sem);
	}
	atomic_store(&tu__reg->count, 0);
}

/* A test case whose names are removed after every test, whether it passed or not. */
static inline TCase *tu_tcase(Suite *s, const char *name, double timeout_s)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, NULL, tu_cleanup);   /* after each test that returns */
	tcase_add_unchecked_fixture(tc, NULL, tu_cleanup); /* in the runner, after failures */
	tcase_set_timeout(tc, timeout_s);
	suite_add_tcase(s, tc);
	return tc;
}

/* CLOCK_MONOTONIC now, in nanoseconds. */
static inline int64_t tu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * TU_NS_PER_S + ts.tv_nsec;
}

/* Sleep ms milliseconds (restarting after signals). */
static inline void tu_sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* `size` bytes of zeroed memory shared with children forked afterwards (never freed: tests
 * are short-lived processes). */
static inline void *tu_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

/* Fork a child that runs fn(arg) and _exits with its return value (low 8 bits). */
static inline pid_t tu_fork(int (*fn)(void *arg), void *arg)
{
	pid_t pid, parent;

	fflush(NULL);
	parent = getpid();
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* A test that fails _exits without waiting for its children: take them along. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg) & 0xff);
	}
	return pid;
}

/* Wait at most timeout_s seconds for child pid. Its exit status (0..255), or 128 + the signal
 * that killed it; -1 when it did not finish in time (it is SIGKILLed and reaped) or on error. */
static inline int tu_wait_child(pid_t pid, double timeout_s)
{
	int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * TU_NS_PER_S);
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (tu_now_ns() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return -1;
		}
		tu_sleep_ms(1);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

/* SIGKILL child pid and reap it (for a child a test kills on purpose, or gives up on). */
static inline void tu_kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Poll pred(arg) every millisecond until it holds or timeout_s seconds pass; its last answer.
 * For waiting on another process's progress: a bug then fails the test instead of hanging. */
static inline bool tu_await(bool (*pred)(void *arg), void *arg, double timeout_s)
{
	int64_t deadline = tu_now_ns() + (int64_t)(timeout_s * TU_NS_PER_S);

	while (!pred(arg)) {
		if (tu_now_ns() >= deadline)
			return pred(arg);
		tu_sleep_ms(1);
	}
	return true;
}

struct tu__at_least {
	_Atomic int *v;
	int want;
};

static inline bool tu__reached(void *arg)
{
	struct tu__at_least *a = arg;

	return atomic_load(a->v) >= a->want;
}

/* Wait at most timeout_s seconds until *v >= want (a counter other processes advance). */
static inline bool tu_await_at_least(_Atomic int *v, int want, double timeout_s)
{
	struct tu__at_least a = { v, want };

	return tu_await(tu__reached, &a, timeout_s);
}

/* Whether pid is asleep in the kernel now (state 'S' in /proc/PID/stat). */
static inline bool tu__sleeping(void *arg)
{
	char path[64], buf[512], *p;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)*(pid_t *)arg);
	if ((f = fopen(path, "r"))) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	/* The command name in parentheses may hold anything: the state follows the last ')'. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* Wait at most timeout_s seconds until child pid sleeps in the kernel. Callers make sure the
 * only place it can sleep at that point is the wait under test. */
static inline bool tu_await_sleeping(pid_t pid, double timeout_s)
{
	return tu_await(tu__sleeping, &pid, timeout_s);
}

/* Wait for n children, each within timeout_s; the number that did not exit with status 0. */
static inline int tu_wait_children(const pid_t *pids, int n, double timeout_s)
{
	int i, bad = 0;

	for (i = 0; i < n; i++)
		if (tu_wait_child(pids[i], timeout_s) != 0)
			bad++;
	return bad;
}

/* The file behind a region name ("/dev/shm/NAME"), and behind the named semaphore a
 * Semaphore object owns ("/dev/shm/sem.NAME.sem"), written into buf. */
static inline const char *tu_shm_path(char *buf, size_t size, const char *name)
{
	while (*name == '/')
		name++;
	snprintf(buf, size, "/dev/shm/%s", name);
	return buf;
}

static inline const char *tu_sem_path(char *buf, size_t size, const char *name)
{
	while (*name == '/')
		name++;
	snprintf(buf, size, "/dev/shm/sem.%s.sem", name);
	return buf;
}

static inline bool tu_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* A file made by hand under a region name: `size` bytes of `fill`. Returns an open fd. */
static inline int tu_raw_file(const char *name, size_t size, int fill)
{
	char buf[4096];
	size_t done;
	int fd;

	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_msg(fd >= 0, "shm_open %s: %s", name, strerror(errno));
	memset(buf, fill, sizeof(buf));
	for (done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		ssize_t w = write(fd, buf, n);

		ck_assert_msg(w > 0, "write: %s", strerror(errno));
		done += (size_t)w;
	}
	return fd;
}

/* Hold an OFD write lock on byte `byte` of the named region's file, as shmkit's leases are held
 * (lib/lease.c; the bytes are in lib/layout.h): stands in for a live participant. The fd that
 * holds it until closed, or -errno (no ck_assert: usable in a forked child). */
static inline int tu_ofd_lock(const char *name, uint64_t byte)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)byte,
			    .l_len = 1 };
	int fd = shm_open(name, O_RDWR, 0), err;

	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Exit 77 (automake's "skipped") when POSIX shared memory cannot be created and mapped. */
static inline void tu_skip_if_no_shm(void)
{
	char name[64];
	void *p = MAP_FAILED;
	int fd;

	snprintf(name, sizeof(name), "/shmkit-test-probe-%d", (int)getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		if (ftruncate(fd, 4096) == 0)
			p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		shm_unlink(name);
	}
	if (p == MAP_FAILED) {
		fprintf(stderr, "no usable POSIX shared memory (/dev/shm): skipped\n");
		exit(77);
	}
	munmap(p, 4096);
}

/* Run one suite the usual way; the process exit status. */
static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists every test */
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* SHMKIT_TESTUTIL_H */
