/*
 * The wait-for graph: deadlocks reported instead of hung.
 *
 * One file per user (mode 0600, see graph_open for where) holds a record per thread that is
 * sleeping on a shmkit lock right now: its global thread id (tgid, random 64 bits), which lock
 * it waits for (the file identity dev/ino and name of the lock's region) and a ticket, the
 * CLOCK_MONOTONIC time its wait began. A record is held through a lease (lease.c) like a seat,
 * taken when the wait is published and given back when it ends, so records belong to live
 * waiters only: a dead thread's record is free the moment its process is gone, and a thread
 * that waited once holds nothing afterwards.
 *
 * A thread T0 about to sleep on lock L0 publishes "T0 waits for L0" and walks: the holder of
 * L0 is T1 (read from the lock itself, mutex.c), T1's record says it waits for L1, whose
 * holder is T2, ..., until a holder is T0 again (a cycle), or a lock is free, or a holder does
 * not wait. A candidate cycle is then read a second time, in the same order, and reported only
 * if every record and every holder read the same both times and every record's lease still
 * stands. Why that is a real cycle at one instant:
 *
 *   Let r1(i), r2(i) be the two reads of T(i)'s record (i >= 1) and h1(i), h2(i) the two
 *   reads of L(i)'s holder. Pass 1 reads h1(0), r1(1), h1(1), r1(2), ...; pass 2 does the same
 *   after pass 1 ended, so every r1 precedes the instant t* between the passes and every r2
 *   follows it.
 *   (a) A record changes (its seqlock count moves) whenever its thread publishes, ends or
 *       restarts a wait, and the count never repeats (32 bits, two steps a change). Same
 *       even count at r1(i) and r2(i): T(i) was inside one acquire call of L(i), without
 *       returning, for all of [r1(i), r2(i)], which contains t*.
 *   (b) A thread inside an acquire call releases nothing: its holdings can only grow, and
 *       only by L(i) itself, the lock it waits for. The lock's holder id is written by the
 *       holder after it took the lock and cleared before it lets go (and by a recovery
 *       before it frees a dead holder's lock), so reading T(i+1) at h2(i) means T(i+1) held
 *       L(i) at h2(i). h2(i) lies in [r1(i+1), r2(i+1)] (after all of pass 1, before r2(i+1)
 *       in pass 2): by (b) T(i+1) held L(i) through the rest of that interval, and before
 *       h2(i) back to r1(i+1) too, since a lock it holds at h2(i) and that it does not wait
 *       for was taken before its wait began. So T(i+1) held L(i) at t*.
 *   (c) T(i) waits for L(i) at t* by (a) and does not hold it, since T(i+1) != T(i) does
 *       (a lock has one holder). The caller T0 holds its locks and waits for L0 throughout.
 *   (d) A process that died loses its record's lease, and a lease is never taken back by
 *       the dead: the leases checked after pass 2 stood at t*.
 *   So at t* every T(i) waited for L(i), held by T(i+1), and T(n) = T0: a cycle, all at once.
 *   A release and a new wait between the reads (the false reports of the old detector) move
 *   a seqlock count or a holder, and nothing is reported.
 *
 * Exactly one report per cycle: among the threads of a verified cycle only the one whose wait
 * began last (the greatest ticket, then the greatest tgid) reports it and backs off; the
 * others keep waiting, and get the lock once it lets go. Tickets do not change while a wait
 * lasts, so two members of one cycle never both see themselves last. The last one sees the
 * cycle in the walk that follows its publishing, or in one of the walks it repeats every
 * 200 ms (mutex.c) if another member's record was not yet visible then. No lock is shared
 * between lookers: a process stopped in the middle of a look (SIGSTOP, a debugger) holds
 * nothing anyone waits for, and a record caught half-written is simply read as not waiting.
 *
 * A lock's holder is found among this process's mapped regions by file identity, or opened
 * read-only by name. A path through a lock we cannot reach (an anonymous region of an
 * unrelated process) ends the walk: the detector misses that cycle, it never invents one.
 * Only threads about to sleep pay for any of this. The graph is per user: locks shared
 * between users are not followed across them.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadlock.h"
#include "lease.h"
#include "mutex.h"
#include "proc.h"
#include "wait.h"

#define WFG_RECORDS 512u
#define WFG_DEPTH 64 /* longest chain followed */
#define WFG_SIZE (WFG_RECORDS * sizeof(struct wfg_rec))
#define WFG_PREFIX ".shmkit-wfg."

struct wfg_rec {
	_Atomic uint32_t seq;  /* odd while its owner rewrites it (a seqlock) */
	_Atomic uint32_t used;
	_Atomic int32_t pid;   /* for display */
	uint32_t reserved;
	_Atomic uint64_t tgid; /* owner thread */
	_Atomic uint64_t dev, ino; /* the lock region it waits for; ino 0: not waiting */
	_Atomic uint64_t ticket;   /* when this wait began (CLOCK_MONOTONIC ns) */
	char name[SHMKIT_NAME_MAX + 2]; /* that region's name, "" when anonymous */
	uint8_t pad[256 - 48 - (SHMKIT_NAME_MAX + 2)];
};
_Static_assert(sizeof(struct wfg_rec) == 256, "graph record size");

static pthread_mutex_t wfg_mu = PTHREAD_MUTEX_INITIALIZER; /* threads of this process */
static struct shmkit__region graph = { .fd = -1, .cfd = -1, .seat_mu = PTHREAD_MUTEX_INITIALIZER };
static unsigned graph_gen = ~0u; /* fork generation the graph was opened in */
static int graph_err;            /* why detection is off in this process, 0 while on */

static __thread int tls_rec = -1;
static __thread unsigned tls_rec_gen;

static struct wfg_rec *records(void)
{
	return (struct wfg_rec *)graph.hdr;
}

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

/* Open /dev/shm/<file> as this user's graph: a regular file of ours, mode 0600, nothing else
 * (O_NOFOLLOW, O_NONBLOCK: a symlink or FIFO under the name is refused, not followed or
 * waited on). -errno, or the descriptor. */
static int graph_try(const char *file, bool create)
{
	char name[80];
	struct stat st;
	int fd, flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

	snprintf(name, sizeof(name), "/%s", file);
	fd = shm_open(name, flags | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || (size_t)st.st_size > WFG_SIZE) {
		close(fd);
		return -EEXIST; /* someone else's, or not a graph */
	}
	if (!create && (size_t)st.st_size != WFG_SIZE) {
		close(fd);
		return -ENOENT; /* not made yet: looking makes none */
	}
	/* Reserved, not merely sized: a record written into a hole of a full /dev/shm would be
	 * a SIGBUS. Two processes may both find it new and both reserve it: the same size; and
	 * reserving what is reserved already costs a walk over 32 pages. */
	if (create) {
		int err = posix_fallocate(fd, 0, (off_t)WFG_SIZE);

		if (err) {
			close(fd);
			return -err;
		}
	}
	return fd;
}

/*
 * Where the graph lives. The obvious name, /dev/shm/.shmkit-wfg.<uid>, can be made first by
 * any other user (a file, FIFO, directory or symlink), and the sticky /dev/shm would not let
 * us remove it. So that name is only the first choice: when it holds something that is not
 * ours, the graph is /dev/shm/.shmkit-wfg.<uid>.<16 random hex digits>, and every process of
 * the user finds it by listing /dev/shm for such names that are regular files of ours with
 * mode 0600 (nobody else can make one), taking the least; a process that made one and then
 * sees a lesser one removes its own. Processes that start together may use two graphs for a
 * moment (missing, never inventing, a cycle); each looks again at its next open.
 */
static int graph_find(bool create, char *file, size_t size)
{
	char best[80] = "", mine[80] = "";
	uint64_t rnd;
	struct dirent *de;
	DIR *d;
	int fd, pass;
	size_t plen;

	snprintf(file, size, WFG_PREFIX "%u", (unsigned)geteuid());
	fd = graph_try(file, create);
	/* Ours; or absent (only looking); or /dev/shm or this process short of something. Any
	 * other refusal is the name's: something not ours is there. */
	if (fd >= 0 || fd == -ENOENT || fd == -ENOSPC || fd == -EDQUOT || fd == -EMFILE ||
	    fd == -ENFILE || fd == -ENOMEM)
		return fd;
	plen = strlen(file);
	for (pass = 0; pass < 2; pass++) {
		if (!(d = opendir("/dev/shm")))
			return -errno;
		best[0] = '\0';
		while ((de = readdir(d))) {
			struct stat st;

			if (strncmp(de->d_name, file, plen) || de->d_name[plen] != '.' ||
			    strlen(de->d_name) != plen + 17 || fstatat(dirfd(d), de->d_name, &st,
									AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
				continue;
			if (!best[0] || strcmp(de->d_name, best) < 0)
				snprintf(best, sizeof(best), "%s", de->d_name);
		}
		closedir(d);
		if (best[0] || !create || pass)
			break;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		snprintf(mine, sizeof(mine), "%s.%016llx", file, (unsigned long long)rnd);
		if ((fd = graph_try(mine, true)) < 0)
			return fd;
		close(fd);
	}
	if (!best[0])
		return -ENOENT;
	if (pass && strcmp(best, mine) && strncmp(mine, file, plen) == 0) {
		char n[82];

		snprintf(n, sizeof(n), "/%s", mine);
		shm_unlink(n); /* ours, and not the least: everyone else uses the least */
	}
	snprintf(file, size, "%s", best);
	return graph_try(best, create);
}

/* Open this user's graph (creating it when `create`), with wfg_mu held: false when detection
 * is off (graph_err says why). */
static bool graph_open(bool create)
{
	char file[80], name[82];
	struct stat st, a;
	void *p;
	int fd, lfd;

	if (graph.hdr && graph_gen == shmkit__fork_generation())
		return true;
	/* Not there, or refused (a full /dev/shm): asked again at every look, so detection
	 * comes back once the cause is gone. graph_err keeps the reason for whoever asks. */
	pthread_once(&wfg_once, wfg_atfork);
	fd = graph_find(create, file, sizeof(file));
	if (fd < 0) {
		graph_err = fd;
		return false;
	}
	graph_err = 0;
	snprintf(name, sizeof(name), "/%s", file);
	p = mmap(NULL, WFG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || fstat(fd, &st) < 0) {
		graph_err = -errno;
		if (p != MAP_FAILED)
			munmap(p, WFG_SIZE);
		close(fd);
		return false;
	}
	/* Leases go on a description no mapping references (see region.c): a fork child
	 * inherits the mapping, and would keep our records "alive" after we die. */
	lfd = shm_open(name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (lfd < 0 || fstat(lfd, &a) < 0 || a.st_ino != st.st_ino || a.st_dev != st.st_dev) {
		if (lfd >= 0)
			close(lfd);
		munmap(p, WFG_SIZE);
		close(fd);
		graph_err = -EMFILE;
		return false;
	}
	close(fd);
	if (graph.hdr) { /* a fork child: the registry gave it a description of its own */
		munmap(graph.hdr, graph.size);
		shmkit__region_untrack(&graph);
		if (graph.fd >= 0)
			close(graph.fd);
	}
	graph.hdr = p;
	graph.size = WFG_SIZE;
	graph.fd = lfd;
	graph.named = true;
	snprintf(graph.name, sizeof(graph.name), "%s", name);
	shmkit__region_track(&graph);
	graph_gen = shmkit__fork_generation();
	return true;
}

int shmkit__wfg_status(void)
{
	int rc;

	pthread_mutex_lock(&wfg_mu);
	rc = graph.hdr && graph_gen == shmkit__fork_generation() ? 0 : graph_err;
	pthread_mutex_unlock(&wfg_mu);
	return rc == -ENOENT ? 0 : rc;
}

/* Take a free record for this thread's wait (its lease is the record's liveness); -1 when
 * none is free. */
static int take_record(void)
{
	struct wfg_rec *rec = records();
	uint32_t i, k, seq, first = (uint32_t)shmkit__tgid() % WFG_RECORDS;

	for (k = 0; k < WFG_RECORDS; k++) {
		i = (first + k) % WFG_RECORDS;
		/* Our description holds the leases of all our threads' records, so the lease
		 * cannot tell another waiting thread of ours from a free record: `used` with our
		 * pid is another thread's (a record is given back by clearing `used`). */
		/* G5: establishes a synchronizing edge with G6 and G10. */
		if (atomic_load_explicit(&rec[i].used, memory_order_acquire) &&
		    atomic_load_explicit(&rec[i].pid, memory_order_relaxed) == shmkit__pid())
			continue;
		if (shmkit__lease_take(graph.fd, SHMKIT__LEASE_BASE + i) != 0)
			continue;
		/* A holder killed inside publish() left seq odd: even it again (the lease makes
		 * us its only writer). */
		seq = atomic_load_explicit(&rec[i].seq, memory_order_relaxed);
		if (seq & 1)
			/* G7: as G2, for the rewrite a dead writer left half done. */
			atomic_store_explicit(&rec[i].seq, seq + 1, memory_order_release);
		atomic_store_explicit(&rec[i].ino, 0, memory_order_relaxed);
		atomic_store_explicit(&rec[i].tgid, shmkit__tgid(), memory_order_relaxed);
		atomic_store_explicit(&rec[i].pid, shmkit__pid(), memory_order_relaxed);
		/* G6: establishes a synchronizing edge with G5 (a taken record's fields first). */
		atomic_store_explicit(&rec[i].used, 1, memory_order_release);
		return (int)i;
	}
	return -1;
}

/* A consistent copy of record i and its seqlock count; false when it is free, not waiting,
 * or being rewritten. */
struct wfg_view {
	uint32_t seq;
	uint64_t tgid, dev, ino, ticket;
	char name[SHMKIT_NAME_MAX + 2];
};

static bool read_rec(uint32_t i, struct wfg_view *v)
{
	struct wfg_rec *r = &records()[i];
	uint32_t s2;
	int tries;

	for (tries = 0; tries < 100; tries++) {
		/* G3: establishes a synchronizing edge with G2 and G9 (publish's closing increment). */
		v->seq = atomic_load_explicit(&r->seq, memory_order_acquire);
		if (v->seq & 1)
			continue;
		v->tgid = atomic_load_explicit(&r->tgid, memory_order_relaxed);
		v->dev = atomic_load_explicit(&r->dev, memory_order_relaxed);
		v->ino = atomic_load_explicit(&r->ino, memory_order_relaxed);
		v->ticket = atomic_load_explicit(&r->ticket, memory_order_relaxed);
		memcpy(v->name, r->name, sizeof(r->name));
		v->name[SHMKIT_NAME_MAX + 1] = '\0';
		/* Pairs with the release increment that ends a rewrite in publish(). */
		/* G4: establishes a synchronizing edge with G1 (publish's opening fence). */
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
		if (v->seq == s2)
			return atomic_load_explicit(&r->used, memory_order_relaxed) && v->ino != 0;
	}
	return false;
}

/* Whether record i's owner lives (our own process's records: GETLK does not see our locks). */
static bool rec_alive(uint32_t i)
{
	return atomic_load_explicit(&records()[i].pid, memory_order_relaxed) == shmkit__pid() ||
	       shmkit__lease_held(graph.fd, SHMKIT__LEASE_BASE + i);
}

/* The record of thread tgid while it waits: its index, or -1. */
static int find_waiter(uint64_t tgid, struct wfg_view *v)
{
	uint32_t i;

	for (i = 0; i < WFG_RECORDS; i++)
		if (read_rec(i, v) && v->tgid == tgid)
			return (int)i;
	return -1;
}

struct holder_read {
	uint64_t tgid;
	uint32_t seat; /* its seat + 1 */
};

static int holder_of(struct shmkit__region *r, void *arg)
{
	struct holder_read *out = arg;
	uint32_t w;
	uint64_t t;

	out->tgid = 0;
	out->seat = 0;
	if (!r->lk)
		return -ENOENT;
	/* Pairs with the release exchange in shmkit__lk_release, which clears the id before
	 * it frees the word: an id seen here was its holder's while it held the lock. */
	/* H1, H2: establish a synchronizing edge with shmkit__lk_release's release exchange. */
	t = atomic_load_explicit(&r->lk->holder_tgid, memory_order_acquire);
	w = atomic_load_explicit(&r->lk->word, memory_order_acquire);
	if ((w & SHMKIT__LK_SEAT_MASK) && (w & SHMKIT__LK_SEAT_MASK) <= r->nseats) {
		out->tgid = t;
		out->seat = w & SHMKIT__LK_SEAT_MASK;
	}
	return 0;
}

/* The thread holding the lock of region (dev, ino, name): tgid 0 when free or unreachable. */
static void lock_holder(uint64_t dev, uint64_t ino, const char *name, struct holder_read *h)
{
	struct shmkit__region r;

	h->tgid = 0;
	if (shmkit__region_lookup(dev, ino, holder_of, h) == 0 || !name[0] ||
	    shmkit__region_open_mode(name, 0, true, &r))
		return;
	if (r.dev == dev && r.ino == ino)
		holder_of(&r, h);
	shmkit__region_close(&r);
}

static void publish(struct wfg_rec *rec, const struct shmkit__region *r, uint64_t ticket)
{
	/* A seqlock write: readers retry while seq is odd or changed. */
	atomic_fetch_add_explicit(&rec->seq, 1, memory_order_relaxed);
	/* G1: establishes a synchronizing edge with G4 (read_rec's acquire fence). */
	atomic_thread_fence(memory_order_release); /* pairs with read_rec's acquire fence */
	atomic_store_explicit(&rec->dev, r->dev, memory_order_relaxed);
	atomic_store_explicit(&rec->ticket, ticket, memory_order_relaxed);
	snprintf(rec->name, sizeof(rec->name), "%s", r->named ? r->name : "");
	atomic_store_explicit(&rec->ino, r->ino, memory_order_relaxed);
	/* Release: pairs with read_rec's first acquire load of seq. */
	/* G2: establishes a synchronizing edge with G3 (read_rec's load of seq). */
	atomic_fetch_add_explicit(&rec->seq, 1, memory_order_release);
}

/* One step of a walk: the lock L(i) and its holder, then the holder's record. */
struct step {
	uint64_t dev, ino;
	char name[SHMKIT_NAME_MAX + 2];
	struct holder_read h;
	int rec;      /* the holder's record, -1 for the caller at the end */
	uint32_t seq; /* its seqlock count */
	uint64_t ticket;
};

/* Walk from my lock; the number of steps of a cycle back to me, or 0. Pass 2 re-reads. */
static int walk(const struct shmkit__region *r, struct step *st, uint64_t me)
{
	struct wfg_view v;
	int n, k;

	st[0].dev = r->dev;
	st[0].ino = r->ino;
	snprintf(st[0].name, sizeof(st[0].name), "%s", r->named ? r->name : "");
	for (n = 0; n < WFG_DEPTH; n++) {
		lock_holder(st[n].dev, st[n].ino, st[n].name, &st[n].h);
		if (!st[n].h.tgid)
			return 0;
		if (st[n].h.tgid == me)
			return n + 1;
		for (k = 0; k < n; k++)
			if (st[k].h.tgid == st[n].h.tgid)
				return 0; /* a cycle, but not through us */
		if ((st[n].rec = find_waiter(st[n].h.tgid, &v)) < 0 || n + 1 >= WFG_DEPTH)
			return 0;
		st[n].seq = v.seq;
		st[n].ticket = v.ticket;
		st[n + 1].dev = v.dev;
		st[n + 1].ino = v.ino;
		snprintf(st[n + 1].name, sizeof(st[n + 1].name), "%s", v.name);
	}
	return 0;
}

/* Pass 2 of the proof in the header comment: the same reads in the same order. */
static bool confirm(const struct step *st, int n, uint64_t me)
{
	struct holder_read h;
	struct wfg_view v;
	int i;

	for (i = 0; i < n; i++) {
		lock_holder(st[i].dev, st[i].ino, st[i].name, &h);
		if (h.tgid != st[i].h.tgid || h.seat != st[i].h.seat)
			return false;
		if (i == n - 1)
			break; /* held by me */
		if (!read_rec((uint32_t)st[i].rec, &v) || v.seq != st[i].seq || v.tgid != h.tgid)
			return false;
	}
	for (i = 0; i < n - 1; i++)
		if (!rec_alive((uint32_t)st[i].rec))
			return false;
	(void)me;
	return true;
}

int shmkit__wfg_enter(struct shmkit__region *r, uint64_t holder)
{
	struct step *st;
	uint64_t me = shmkit__tgid(), ticket;
	struct wfg_rec *rec;
	int i, n, rc = 0;

	(void)holder; /* read again by the walk, which must read it itself (see the proof) */
	pthread_mutex_lock(&wfg_mu);
	if (!graph_open(true)) {
		pthread_mutex_unlock(&wfg_mu);
		return 0;
	}
	if (tls_rec < 0 || tls_rec_gen != shmkit__fork_generation()) {
		/* A new wait: a record, and its ticket, for as long as it lasts. */
		if ((tls_rec = take_record()) < 0) {
			pthread_mutex_unlock(&wfg_mu);
			return 0;
		}
		tls_rec_gen = shmkit__fork_generation();
		rec = &records()[tls_rec];
		publish(rec, r, (uint64_t)shmkit__now());
	}
	rec = &records()[tls_rec];
	ticket = atomic_load_explicit(&rec->ticket, memory_order_relaxed);
	if (!(st = calloc(WFG_DEPTH, sizeof(*st)))) {
		pthread_mutex_unlock(&wfg_mu);
		return 0; /* no look this time */
	}
	n = walk(r, st, me);
	if (n && confirm(st, n, me)) {
		/* A real cycle: its last waiter reports it. */
		rc = -EDEADLK;
		for (i = 0; i < n - 1; i++)
			if (st[i].ticket > ticket || (st[i].ticket == ticket && st[i].h.tgid > me))
				rc = 0;
	}
	free(st);
	pthread_mutex_unlock(&wfg_mu);
	if (rc)
		shmkit__wfg_leave();
	return rc;
}

void shmkit__wfg_leave(void)
{
	struct wfg_rec *rec;

	pthread_mutex_lock(&wfg_mu);
	if (tls_rec < 0 || tls_rec_gen != shmkit__fork_generation() || !graph.hdr) {
		tls_rec = -1;
		pthread_mutex_unlock(&wfg_mu);
		return;
	}
	rec = &records()[tls_rec];
	/* The wait ends: the count moves (so a walk that read the wait does not confirm it),
	 * the record is given back, its lease last. */
	atomic_fetch_add_explicit(&rec->seq, 1, memory_order_relaxed);
	/* G8: as G1, opens the count's move for G4. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&rec->ino, 0, memory_order_relaxed);
	/* G9: as G2, closes the count's move for G3. */
	atomic_fetch_add_explicit(&rec->seq, 1, memory_order_release);
	/* G10: establishes a synchronizing edge with G5 (the record is free again). */
	atomic_store_explicit(&rec->used, 0, memory_order_release);
	shmkit__lease_drop(graph.fd, SHMKIT__LEASE_BASE + (uint32_t)tls_rec);
	tls_rec = -1;
	pthread_mutex_unlock(&wfg_mu);
}

int shmkit__wfg_waits(uint64_t tgid, char *name, size_t size, int32_t *pid)
{
	struct wfg_view v;
	uint32_t i;
	int rc = 0;

	if (!tgid)
		return 0;
	pthread_mutex_lock(&wfg_mu);
	/* Only looks: a user who never waited has no graph, and looking makes none. */
	if (!graph_open(false)) {
		pthread_mutex_unlock(&wfg_mu);
		return 0;
	}
	for (i = 0; i < WFG_RECORDS; i++) {
		if (!read_rec(i, &v) || v.tgid != tgid || !rec_alive(i))
			continue;
		snprintf(name, size, "%s", v.name);
		if (pid)
			*pid = atomic_load_explicit(&records()[i].pid, memory_order_relaxed);
		rc = 1;
		break;
	}
	pthread_mutex_unlock(&wfg_mu);
	return rc;
}
