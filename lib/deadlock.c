/*
 * The wait-for graph: deadlocks reported instead of hung.
 *
 * One region per user, "/.shmkit-wfg.<uid>" (mode 0600), holds a record per thread that is
 * sleeping, or has slept, on a shmkit lock: its global thread id (tgid, random 64 bits) and,
 * while it waits, which lock (the file identity dev/ino and name of the lock's region). A
 * record is held through a lease (lease.c) like a seat, so a dead thread's record is free.
 *
 * A thread about to sleep on lock L held by thread H, under the graph's lock:
 *   publishes "I wait for L", then follows H: if H is waiting, for lock M, whose holder is
 *   H', follow H', and so on; reaching itself is a cycle: it withdraws its record and
 *   reports -EDEADLK. Publishing and looking happen under one lock, so of the threads whose
 *   waits close a cycle exactly the last one sees it, and the others keep waiting for the
 *   lock it will release once it backs off.
 * A lock's holder is read from the lock itself (mutex.c), so the graph only needs the edges
 * "thread waits for lock"; the locks are found among this process's mapped regions by file
 * identity, or opened read-only by name. A path through a lock we cannot reach (an anonymous
 * region of an unrelated process) ends the search: the detector misses that cycle, it never
 * invents one. Only threads about to sleep pay for any of this.
 *
 * The graph is per user: locks shared between users are not followed across them. A graph
 * owned by someone else, or not a regular file, disables detection (nothing else changes).
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deadlock.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "wait.h"

#define WFG_RECORDS 512u
#define WFG_DEPTH 64 /* longest chain followed */
#define WFG_GUARD_BYTE 0 /* OFD lock byte that serialises publish-and-look between processes */
#define WFG_GUARD_WAIT_NS (20 * 1000000LL) /* the longest a look waits for that guard */

struct wfg_rec {
	_Atomic uint32_t seq;  /* odd while its owner rewrites it (a seqlock) */
	_Atomic uint32_t used;
	_Atomic int32_t pid;   /* for display */
	uint32_t reserved;
	_Atomic uint64_t tgid; /* owner thread */
	_Atomic uint64_t dev, ino; /* the lock region it waits for; ino 0: not waiting */
	_Atomic uint64_t holder;   /* the holder it saw, for display */
	char name[SHMKIT_NAME_MAX + 2]; /* that region's name, "" when anonymous */
	uint8_t pad[256 - 48 - (SHMKIT_NAME_MAX + 2)];
};
_Static_assert(sizeof(struct wfg_rec) == 256, "graph record size");

static pthread_mutex_t wfg_mu = PTHREAD_MUTEX_INITIALIZER; /* threads of this process */
static struct shmkit__region graph = { .fd = -1, .seat_mu = PTHREAD_MUTEX_INITIALIZER };
static unsigned graph_gen = ~0u; /* fork generation the graph was opened in */
static bool graph_off;

static __thread int tls_rec = -1;
static __thread unsigned tls_rec_gen;

static struct wfg_rec *records(void)
{
	return (struct wfg_rec *)graph.hdr;
}

/* Open (creating) this user's graph; with wfg_mu held. false when detection is off. */
static void wfg_lock(void)
{
	pthread_mutex_lock(&wfg_mu);
}

static void wfg_unlock(void)
{
	pthread_mutex_unlock(&wfg_mu);
}

static void wfg_atfork(void)
{
	/* Registered after lease.c's registry handler, so its prepare runs first: the order is
	 * wfg_mu, then the registry's lock, as in graph_open. */
	pthread_atfork(wfg_lock, wfg_unlock, wfg_unlock);
}

static pthread_once_t wfg_once = PTHREAD_ONCE_INIT;

static bool graph_open(void)
{
	char name[64];
	struct stat st;
	size_t size = WFG_RECORDS * sizeof(struct wfg_rec);
	void *p;
	int fd;

	if (graph.hdr && graph_gen == shmkit__fork_generation())
		return !graph_off;
	if (graph_off)
		return false;
	pthread_once(&wfg_once, wfg_atfork);
	snprintf(name, sizeof(name), "/.shmkit-wfg.%u", (unsigned)geteuid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		goto off;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077))
		goto off_fd;
	/* Two processes may both find it new and both grow it to the same size. */
	if ((size_t)st.st_size < size && ftruncate(fd, (off_t)size) < 0)
		goto off_fd;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size != size)
		goto off_fd;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto off_fd;
	/* Leases go on a description no mapping references (see region.c's lease_fd): a fork
	 * child inherits the mapping, and would keep our records "alive" after we die. */
	{
		struct stat a;
		int lfd = shm_open(name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);

		if (lfd >= 0 && fstat(lfd, &a) == 0 && a.st_ino == st.st_ino &&
		    a.st_dev == st.st_dev) {
			close(fd);
			fd = lfd;
		} else if (lfd >= 0) {
			close(lfd);
		}
	}
	if (graph.hdr) { /* a fork child: the registry gave it a description of its own */
		munmap(graph.hdr, graph.size);
		shmkit__region_untrack(&graph);
		if (graph.fd >= 0)
			close(graph.fd);
	}
	graph.hdr = p;
	graph.size = size;
	graph.fd = fd;
	graph.named = true;
	snprintf(graph.name, sizeof(graph.name), "%s", name);
	shmkit__region_track(&graph);
	graph_gen = shmkit__fork_generation();
	return true;
off_fd:
	close(fd);
off:
	graph_off = true;
	return false;
}

/* This thread's record, taken on first use (per fork generation); -1 when none is free. */
static int my_record(void)
{
	unsigned gen = shmkit__fork_generation();
	struct wfg_rec *rec = records();
	uint32_t i, seq;

	if (tls_rec >= 0 && tls_rec_gen == gen)
		return tls_rec;
	tls_rec = -1;
	for (i = 0; i < WFG_RECORDS; i++) {
		if (shmkit__lease_take(graph.fd, SHMKIT__LEASE_BASE + i) != 0)
			continue;
		/* Our description holds the leases of all our threads' records, so the lease
		 * cannot tell another thread of ours from a dead process: a record in use with
		 * our pid is another thread's (or a dead namesake's, merely skipped). */
		if (atomic_load_explicit(&rec[i].used, memory_order_relaxed) &&
		    atomic_load_explicit(&rec[i].pid, memory_order_relaxed) == shmkit__pid() &&
		    atomic_load_explicit(&rec[i].tgid, memory_order_relaxed) != shmkit__tgid())
			continue;
		/* A holder killed inside publish() left seq odd; left so, the record would read
		 * as "being rewritten" whenever it is stable, for every later owner, and no
		 * cycle through it would ever be seen. The lease makes us its only writer. */
		seq = atomic_load_explicit(&rec[i].seq, memory_order_relaxed);
		if (seq & 1)
			atomic_store_explicit(&rec[i].seq, seq + 1, memory_order_release);
		/* Relaxed: the record is ours (its lease says so); readers validate what they
		 * read with the record's seqlock and its lease. */
		atomic_store_explicit(&rec[i].ino, 0, memory_order_relaxed);
		atomic_store_explicit(&rec[i].tgid, shmkit__tgid(), memory_order_relaxed);
		atomic_store_explicit(&rec[i].pid, shmkit__pid(), memory_order_relaxed);
		atomic_store_explicit(&rec[i].used, 1, memory_order_relaxed);
		tls_rec = (int)i;
		tls_rec_gen = gen;
		return tls_rec;
	}
	return -1;
}

/* Take (or let go of) the guard that serialises publish-and-look between processes. Taking it
 * never waits long: its holder may be stopped (SIGSTOP, a debugger) while it holds it, and a
 * lock waiter must not wait on a stranger. false when it stayed busy: the caller skips the
 * look this time and tries again at its next one (a lock waiter looks every 200 ms). */
static bool guard(bool on)
{
	struct flock fl;
	int64_t give_up = shmkit__now() + WFG_GUARD_WAIT_NS;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = on ? F_WRLCK : F_UNLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = WFG_GUARD_BYTE;
	fl.l_len = 1;
	while (fcntl(graph.fd, F_OFD_SETLK, &fl) < 0) {
		if (!on || (errno != EAGAIN && errno != EACCES && errno != EINTR) ||
		    shmkit__now() >= give_up)
			return false;
		sched_yield();
	}
	return true;
}

/* A consistent copy of record i, or false when it is free or not waiting. */
static bool read_rec(uint32_t i, uint64_t *tgid, uint64_t *dev, uint64_t *ino, char *name)
{
	struct wfg_rec *r = &records()[i];
	uint32_t s1, s2;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		*tgid = atomic_load_explicit(&r->tgid, memory_order_relaxed);
		*dev = atomic_load_explicit(&r->dev, memory_order_relaxed);
		*ino = atomic_load_explicit(&r->ino, memory_order_relaxed);
		memcpy(name, r->name, sizeof(r->name));
		name[SHMKIT_NAME_MAX + 1] = '\0';
		/* Pairs with the release increment that ends a rewrite in publish(). */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
		if (s1 == s2)
			return atomic_load_explicit(&r->used, memory_order_relaxed) && *ino != 0;
	}
	return false;
}

/* The record of live thread tgid that is waiting: its lock's identity and name. */
static bool find_waiter(uint64_t tgid, uint64_t *dev, uint64_t *ino, char *name)
{
	uint64_t t;
	uint32_t i;

	for (i = 0; i < WFG_RECORDS; i++) {
		if (!read_rec(i, &t, dev, ino, name) || t != tgid)
			continue;
		/* A dead thread's record may still say it waits: its lease says otherwise (our
		 * own process's records are ours to trust: GETLK does not see our locks). */
		if (atomic_load_explicit(&records()[i].pid, memory_order_relaxed) != shmkit__pid() &&
		    !shmkit__lease_held(graph.fd, SHMKIT__LEASE_BASE + i))
			return false;
		return true;
	}
	return false;
}

static int holder_of(struct shmkit__region *r, void *arg)
{
	uint64_t *out = arg;
	uint32_t w;

	if (!r->lk)
		return -ENOENT;
	w = atomic_load_explicit(&r->lk->word, memory_order_acquire);
	/* Pairs with the release exchange in shmkit__lk_release (see mutex.c's holder_tgid). */
	*out = (w & SHMKIT__LK_SEAT_MASK)
		       ? atomic_load_explicit(&r->lk->holder_tgid, memory_order_relaxed)
		       : 0;
	return 0;
}

/* The thread holding the lock of region (dev, ino, name): 0 when free or unreachable. */
static uint64_t lock_holder(uint64_t dev, uint64_t ino, const char *name)
{
	struct shmkit__region r;
	uint64_t h = 0;

	if (shmkit__region_lookup(dev, ino, holder_of, &h) == 0)
		return h;
	if (!name[0] || shmkit__region_open_mode(name, 0, true, &r))
		return 0;
	if (r.dev == dev && r.ino == ino)
		holder_of(&r, &h);
	shmkit__region_close(&r);
	return h;
}

static void publish(struct wfg_rec *rec, const struct shmkit__region *r, uint64_t holder)
{
	/* A seqlock write: readers retry while seq is odd or changed. */
	atomic_fetch_add_explicit(&rec->seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release); /* pairs with read_rec's acquire fence */
	atomic_store_explicit(&rec->dev, r->dev, memory_order_relaxed);
	atomic_store_explicit(&rec->holder, holder, memory_order_relaxed);
	snprintf(rec->name, sizeof(rec->name), "%s", r->named ? r->name : "");
	atomic_store_explicit(&rec->ino, r->ino, memory_order_relaxed);
	/* Release: pairs with read_rec's first acquire load of seq. */
	atomic_fetch_add_explicit(&rec->seq, 1, memory_order_release);
}

int shmkit__wfg_enter(struct shmkit__region *r, uint64_t holder)
{
	char name[SHMKIT_NAME_MAX + 2];
	uint64_t me = shmkit__tgid(), cur = holder, dev, ino;
	struct wfg_rec *rec;
	int i, depth, rc = 0;

	pthread_mutex_lock(&wfg_mu);
	if (!graph_open() || (i = my_record()) < 0) {
		pthread_mutex_unlock(&wfg_mu);
		return 0;
	}
	rec = &records()[i];
	if (!guard(true)) {
		pthread_mutex_unlock(&wfg_mu);
		return 0; /* busy: no look this time, and nothing published half-way */
	}
	publish(rec, r, holder);
	for (depth = 0; depth < WFG_DEPTH && cur; depth++) {
		if (cur == me) {
			rc = -EDEADLK;
			break;
		}
		if (!find_waiter(cur, &dev, &ino, name))
			break;
		cur = lock_holder(dev, ino, name);
	}
	if (rc)
		atomic_store_explicit(&rec->ino, 0, memory_order_release);
	guard(false);
	pthread_mutex_unlock(&wfg_mu);
	return rc;
}

void shmkit__wfg_leave(void)
{
	if (tls_rec < 0 || tls_rec_gen != shmkit__fork_generation() || !graph.hdr)
		return;
	/* One store: a reader that sees ino 0 sees "not waiting", whatever else it read. */
	atomic_store_explicit(&records()[tls_rec].ino, 0, memory_order_release);
}

int shmkit__wfg_waits(uint64_t tgid, char *name, size_t size, int32_t *pid)
{
	char n[SHMKIT_NAME_MAX + 2];
	uint64_t dev, ino, t;
	uint32_t i;
	int rc = 0;

	if (!tgid)
		return 0;
	pthread_mutex_lock(&wfg_mu);
	if (!graph_open()) {
		pthread_mutex_unlock(&wfg_mu);
		return 0;
	}
	for (i = 0; i < WFG_RECORDS; i++) {
		if (!read_rec(i, &t, &dev, &ino, n) || t != tgid)
			continue;
		snprintf(name, size, "%s", n);
		if (pid)
			*pid = atomic_load_explicit(&records()[i].pid, memory_order_relaxed);
		rc = 1;
		break;
	}
	pthread_mutex_unlock(&wfg_mu);
	return rc;
}
