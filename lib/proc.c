/*
 * This process: its pid, start time and pid namespace (shown by `shmkit stat`, never used to
 * judge liveness: leases do that, see lease.c), its thread ids, the fork hook that lets
 * handles notice they changed process, and the asymmetric fence's registration.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/random.h>

#include "proc.h"
#include "wait.h"

_Atomic int32_t shmkit__self_pid;
static _Atomic uint64_t self_start;
static _Atomic unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;


static void child_after_fork(void)
{
	/* The child is single-threaded here: relaxed is enough. */
	atomic_store_explicit(&shmkit__self_pid, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
	shmkit__fence_register(); /* a new mm: not known to be registered */
}

static void install_atfork(void)
{
	shmkit__fence_register();
	pthread_atfork(NULL, NULL, child_after_fork);
}

/* Read the start time of pid; 0, or -ESRCH when it cannot be read. */
static int read_start(int32_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and ')': fields resume after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -ESRCH;
	p += 2; /* field 3 */
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", &st) != 1)
		return -ESRCH;
	*start = st;
	return 0;
}

void shmkit__self(int32_t *pid, uint64_t *start)
{
	int32_t me;
	uint64_t st = 0;

	pthread_once(&atfork_once, install_atfork);
	me = atomic_load_explicit(&shmkit__self_pid, memory_order_acquire);
	if (shmkit__likely(me)) {
		*pid = me;
		*start = atomic_load_explicit(&self_start, memory_order_relaxed);
		return;
	}
	me = (int32_t)getpid();
	if (read_start(me, &st) < 0)
		st = 0; /* no /proc: shown as unknown */
	atomic_store_explicit(&self_start, st, memory_order_relaxed);
	/* Release: pairs with the acquire load above, so whoever sees the pid sees the start. */
	atomic_store_explicit(&shmkit__self_pid, me, memory_order_release);
	*pid = me;
	*start = st;
}

uint64_t shmkit__pidns(void)
{
	static _Atomic uint64_t ns;
	static _Atomic unsigned ns_gen = ~0u;
	char buf[64];
	unsigned long long ino = 0;
	ssize_t n;

	/* A fork child of an unshare(CLONE_NEWPID) caller lives in another namespace. */
	/* A cache: racing threads compute the same value; relaxed throughout. */
	if (atomic_load_explicit(&ns_gen, memory_order_relaxed) ==
	    atomic_load_explicit(&fork_gen, memory_order_relaxed))
		return atomic_load_explicit(&ns, memory_order_relaxed);
	n = readlink("/proc/self/ns/pid", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		if (sscanf(buf, "pid:[%llu]", &ino) != 1)
			ino = 0;
	}
	atomic_store_explicit(&ns, ino, memory_order_relaxed);
	atomic_store_explicit(&ns_gen, atomic_load_explicit(&fork_gen, memory_order_relaxed),
			      memory_order_relaxed);
	return ino;
}

void shmkit__proc_init(void)
{
	pthread_once(&atfork_once, install_atfork);
}

unsigned shmkit__fork_generation(void)
{
	/* Every handle is made through shmkit__handle_new(), which installed the hook. */
	return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

int32_t shmkit__pid_slow(void)
{
	int32_t pid;
	uint64_t start;

	shmkit__self(&pid, &start);
	return pid;
}

static __thread uint64_t tls_tgid;
static __thread unsigned tls_tgid_gen;

uint64_t shmkit__tgid(void)
{
	unsigned gen = shmkit__fork_generation();

	if (shmkit__unlikely(!tls_tgid || tls_tgid_gen != gen)) {
		uint64_t t = 0;

		while (!t && getrandom(&t, sizeof(t), 0) != (ssize_t)sizeof(t))
			;
		tls_tgid = t ? t : 1;
		tls_tgid_gen = gen;
	}
	return tls_tgid;
}

