/*
 * nstorture: SIGKILL queue and lock participants at random in two sibling pid namespaces
 * (issue 12), and check that the kernel-lease liveness holds across them.
 *
 * Namespace A (its own /proc, as a container) runs 3 producers and 2 lock workers; namespace B
 * (no /proc of its own: its pids name other processes in the host's /proc) runs 3 consumers and
 * 2 lock workers. The pid 1 of each namespace kills one of its children every 20..80 ms and
 * starts a new one in its place. All of them share one named Queue and one named Lock; the
 * top process, in the host namespace, stays attached as a writer until the end, so producer
 * deaths never bring EOF early, and then lets go: the consumers must drain to EOF.
 * Checked at the end:
 *  - every message taken is whole and taken once; every message whose put returned was
 *    taken, except at most one per consumer killed between get and recording it;
 *  - no message was taken whose put neither returned nor was cut short by a kill;
 *  - the Lock was never found occupied by a process that acquired it without
 *    SHMKIT_OWNER_DIED (never held twice, a dead holder always reported), and no acquire or
 *    release failed;
 *  - nobody hung: every get and acquire has a 30 s limit, the drain a 60 s one.
 * Usage: nstorture [SECONDS [SEED]]   (default 8 s, seed from the clock). Exit 0 pass, 1 fail,
 * 77 when pid namespaces are not available (not root, or refused).
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"

#define MAX_IDS (1u << 22)
#define MAX_MSG 65536
#define NPROD 3
#define NCONS 3
#define NLOCK 2
#define LIMIT_NS (30 * 1000000000LL)

enum phase { RUN = 0, STOP_A = 1, DRAIN = 2 };

struct board {
	_Atomic uint32_t next_id;
	_Atomic int phase;
	_Atomic int a_done;
	_Atomic uint8_t acked[MAX_IDS];
	_Atomic uint8_t taken[MAX_IDS];
	_Atomic int cons_getting[NCONS];
	_Atomic uint32_t prod_putting[NPROD]; /* id + 1 while in put, 0 otherwise */
	/* figures */
	_Atomic uint64_t kills[2], maybe_lost, cut_puts;
	_Atomic uint64_t corrupt, dup, errors, stalls, lock_rounds, lock_died, lock_twice;
	_Atomic int64_t inside;
	char qname[64], lname[64];
	char err[256];
};

static struct board *B;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void note_err(const char *what, int rc)
{
	atomic_fetch_add(&B->errors, 1);
	snprintf(B->err, sizeof(B->err), "%s: %s (pid %d)", what, shmkit_strerror(rc),
		 (int)getpid());
}

static uint8_t pattern(uint32_t id, size_t i)
{
	return (uint8_t)(id * 31u + i * 7u);
}

static size_t msg_len(uint32_t id)
{
	return 8 + (id * 2654435761u) % (MAX_MSG - 8);
}

static int producer(int slot)
{
	static unsigned char msg[MAX_MSG];
	shmkit_queue *q;
	uint32_t id;
	size_t len, i;
	int rc;

	if ((rc = shmkit_queue_open(B->qname, &q))) {
		note_err("producer open", rc);
		return 1;
	}
	while (atomic_load(&B->phase) == RUN) {
		id = atomic_fetch_add(&B->next_id, 1);
		if (id >= MAX_IDS)
			break;
		len = msg_len(id);
		memcpy(msg, &id, 4);
		memcpy(msg + 4, &len, 4);
		for (i = 8; i < len; i++)
			msg[i] = pattern(id, i);
		atomic_store(&B->prod_putting[slot], id + 1);
		rc = shmkit_queue_put_timeout(q, msg, len, LIMIT_NS);
		if (rc) {
			atomic_store(&B->prod_putting[slot], 0);
			if (rc == -ETIMEDOUT)
				atomic_fetch_add(&B->stalls, 1);
			note_err("put", rc);
			return 1;
		}
		atomic_store(&B->acked[id], 1);
		atomic_store(&B->prod_putting[slot], 0);
	}
	shmkit_queue_close(q);
	return 0;
}

static int consumer(int slot)
{
	static unsigned char msg[MAX_MSG];
	shmkit_queue *q;
	uint32_t id, len;
	int rc, i;

	if ((rc = shmkit_queue_open(B->qname, &q))) {
		note_err("consumer open", rc);
		return 1;
	}
	for (;;) {
		atomic_store(&B->cons_getting[slot], 1);
		rc = shmkit_queue_get_timeout(q, msg, sizeof(msg), LIMIT_NS);
		if (rc == -EPIPE) {
			atomic_store(&B->cons_getting[slot], 0);
			break;
		}
		if (rc < 0) {
			atomic_store(&B->cons_getting[slot], 0);
			if (rc == -ETIMEDOUT)
				atomic_fetch_add(&B->stalls, 1);
			note_err("get", rc);
			return 1;
		}
		memcpy(&id, msg, 4);
		memcpy(&len, msg + 4, 4);
		if (rc < 8 || id >= MAX_IDS || len != (uint32_t)rc || len != msg_len(id)) {
			atomic_fetch_add(&B->corrupt, 1);
		} else {
			for (i = 8; i < rc; i++)
				if (msg[i] != pattern(id, (size_t)i))
					break;
			if (i < rc)
				atomic_fetch_add(&B->corrupt, 1);
			else if (atomic_fetch_add(&B->taken[id], 1) != 0)
				atomic_fetch_add(&B->dup, 1);
		}
		atomic_store(&B->cons_getting[slot], 0);
	}
	shmkit_queue_close(q);
	return 0;
}

/* Acquire; nobody may be inside unless the lock says its holder died. */
static int lock_worker(void)
{
	shmkit_lock *l;
	int rc, k;

	if ((rc = shmkit_lock_open(B->lname, &l))) {
		note_err("lock open", rc);
		return 1;
	}
	while (atomic_load(&B->phase) == RUN) {
		rc = shmkit_lock_acquire_timeout(l, LIMIT_NS);
		if (rc < 0) {
			if (rc == -ETIMEDOUT)
				atomic_fetch_add(&B->stalls, 1);
			note_err("acquire", rc);
			return 1;
		}
		if (rc == SHMKIT_OWNER_DIED) {
			atomic_fetch_add(&B->lock_died, 1);
			atomic_store(&B->inside, 0);
		}
		if (atomic_fetch_add(&B->inside, 1) != 0)
			atomic_fetch_add(&B->lock_twice, 1);
		for (k = 0; k < 200; k++)
			atomic_signal_fence(memory_order_seq_cst);
		atomic_fetch_sub(&B->inside, 1);
		if ((rc = shmkit_lock_release(l))) {
			note_err("release", rc);
			return 1;
		}
		atomic_fetch_add(&B->lock_rounds, 1);
	}
	shmkit_lock_close(l);
	return 0;
}

enum role { PROD, CONS, LOCKW };

struct kid {
	enum role role;
	int slot;
	pid_t pid;
};

static pid_t start(struct kid *k)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		switch (k->role) {
		case PROD:
			_exit(producer(k->slot));
		case CONS:
			_exit(consumer(k->slot));
		default:
			_exit(lock_worker());
		}
	}
	k->pid = pid;
	return pid;
}

/* pid 1 of a namespace: run and kill its participants until told to stop. */
static int supervise(int ns, unsigned seed, int64_t end)
{
	struct kid kids[NPROD + NCONS + NLOCK];
	int n = 0, i, status, bad = 0;
	int64_t limit;

	if (ns == 0) {
		/* A's own /proc, as unshare --mount-proc gives a container. */
		if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
			mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		for (i = 0; i < NPROD; i++)
			kids[n++] = (struct kid){ PROD, i, 0 };
	} else {
		for (i = 0; i < NCONS; i++)
			kids[n++] = (struct kid){ CONS, i, 0 };
	}
	for (i = 0; i < NLOCK; i++)
		kids[n++] = (struct kid){ LOCKW, i, 0 };
	for (i = 0; i < n; i++)
		start(&kids[i]);
	while (now_ns() < end) {
		struct kid *k = &kids[rand_r(&seed) % (unsigned)n];

		nap_ms(20 + rand_r(&seed) % 60);
		kill(k->pid, SIGKILL);
		waitpid(k->pid, &status, 0);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			atomic_fetch_add(&B->kills[ns], 1);
			/* A consumer killed between get and recording may have taken a message
			 * we will never see; a producer killed in put may or may not have put. */
			if (k->role == CONS && atomic_load(&B->cons_getting[k->slot]))
				atomic_fetch_add(&B->maybe_lost, 1);
			if (k->role == PROD && atomic_load(&B->prod_putting[k->slot]))
				atomic_fetch_add(&B->cut_puts, 1);
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			bad++;
		}
		if (k->role == CONS)
			atomic_store(&B->cons_getting[k->slot], 0);
		if (k->role == PROD)
			atomic_store(&B->prod_putting[k->slot], 0);
		start(k);
	}
	/* A stops: its producers and lock workers finish their step and leave. */
	if (ns == 0)
		atomic_store(&B->phase, STOP_A);
	else
		while (atomic_load(&B->phase) == RUN)
			nap_ms(10);
	limit = now_ns() + 2 * LIMIT_NS;
	for (i = 0; i < n; i++) {
		while (waitpid(kids[i].pid, &status, WNOHANG) == 0) {
			if (now_ns() > limit) {
				atomic_fetch_add(&B->stalls, 1);
				kill(kids[i].pid, SIGKILL);
			}
			nap_ms(5);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	}
	return bad ? 1 : 0;
}

/* Fork the pid 1 of a new pid namespace (through a child, so the namespaces are siblings). */
static pid_t in_namespace(int ns, unsigned seed, int64_t end)
{
	pid_t c = fork();

	if (c == 0) {
		pid_t init;
		int status;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWPID | (ns == 0 ? CLONE_NEWNS : 0)) < 0)
			_exit(77);
		init = fork();
		if (init == 0)
			_exit(supervise(ns, seed, end));
		if (init < 0 || waitpid(init, &status, 0) < 0)
			_exit(1);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	return c;
}

int main(int argc, char **argv)
{
	struct shmkit_queue_attr attr = { .capacity = 8, .max_size = MAX_MSG, .mode = 0600 };
	unsigned seed = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : (unsigned)time(NULL);
	double secs = argc > 1 ? atof(argv[1]) : 8;
	shmkit_queue *q;
	shmkit_lock *l;
	struct shmkit_queue_stats st;
	uint64_t acked = 0, taken = 0, missing = 0, unacked_taken = 0;
	int64_t end;
	pid_t a, b;
	int sa, sb, rc, fail = 0;
	uint32_t id, n;

	if (geteuid() != 0) {
		printf("SKIP: pid namespaces need root here\n");
		return 77;
	}
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (B == MAP_FAILED)
		return 99;
	snprintf(B->qname, sizeof(B->qname), "/nstorture-%d.q", (int)getpid());
	snprintf(B->lname, sizeof(B->lname), "/nstorture-%d.l", (int)getpid());
	if ((rc = shmkit_queue_create(B->qname, &attr, &q)) ||
	    (rc = shmkit_lock_create(B->lname, 0, 0600, &l))) {
		fprintf(stderr, "nstorture: create: %s\n", shmkit_strerror(rc));
		shmkit_queue_unlink(B->qname);
		return 99;
	}
	if ((rc = shmkit_queue_attach_writer(q))) {
		fprintf(stderr, "nstorture: attach: %s\n", shmkit_strerror(rc));
		fail = 1;
		goto out;
	}
	printf("nstorture: %.0f s, seed %u\n", secs, seed);
	fflush(stdout);
	end = now_ns() + (int64_t)(secs * 1e9);
	a = in_namespace(0, seed, end);
	b = in_namespace(1, seed * 7919u + 1, end);
	waitpid(a, &sa, 0);
	sa = WIFEXITED(sa) ? WEXITSTATUS(sa) : 1;
	if (sa == 77) {
		kill(b, SIGKILL);
		waitpid(b, &sb, 0);
		printf("SKIP: unshare(CLONE_NEWPID) refused\n");
		shmkit_queue_close(q);
		shmkit_lock_close(l);
		shmkit_queue_unlink(B->qname);
		shmkit_lock_unlink(B->lname);
		return 77;
	}
	/* A's producers are gone: let go of the queue, the consumers drain to EOF. */
	shmkit_queue_detach_writer(q);
	atomic_store(&B->phase, DRAIN);
	waitpid(b, &sb, 0);
	sb = WIFEXITED(sb) ? WEXITSTATUS(sb) : 1;
	if (sa || sb) {
		printf("FAIL: namespace A exit %d, B exit %d (a participant failed or hung)\n", sa,
		       sb);
		fail = 1;
	}

	n = atomic_load(&B->next_id);
	if (n > MAX_IDS)
		n = MAX_IDS;
	for (id = 0; id < n; id++) {
		int ack = atomic_load(&B->acked[id]), got = atomic_load(&B->taken[id]);

		acked += ack;
		taken += got != 0;
		if (ack && !got)
			missing++;
		if (!ack && got)
			unacked_taken++;
	}
	shmkit_queue_stats(q, &st);
	printf("kills: %llu in A, %llu in B; messages acknowledged %llu, taken %llu, missing %llu "
	       "(at most %llu consumers killed mid-get), taken unacknowledged %llu (puts cut "
	       "short %llu); slots reclaimed %llu, lost to dead consumers %llu\n",
	       (unsigned long long)B->kills[0], (unsigned long long)B->kills[1],
	       (unsigned long long)acked, (unsigned long long)taken, (unsigned long long)missing,
	       (unsigned long long)B->maybe_lost, (unsigned long long)unacked_taken,
	       (unsigned long long)B->cut_puts, (unsigned long long)st.slots_reclaimed,
	       (unsigned long long)st.lost_dead_consumer);
	printf("lock: %llu rounds, %llu owner-died recoveries, %llu times held twice\n",
	       (unsigned long long)B->lock_rounds, (unsigned long long)B->lock_died,
	       (unsigned long long)B->lock_twice);
	if (B->corrupt || B->dup) {
		printf("FAIL: %llu corrupt, %llu duplicated messages\n",
		       (unsigned long long)B->corrupt, (unsigned long long)B->dup);
		fail = 1;
	}
	if (missing > B->maybe_lost) {
		printf("FAIL: %llu acknowledged messages never arrived\n",
		       (unsigned long long)missing);
		fail = 1;
	}
	if (unacked_taken > B->cut_puts) {
		printf("FAIL: %llu messages arrived whose put neither returned nor was killed\n",
		       (unsigned long long)unacked_taken);
		fail = 1;
	}
	if (B->lock_twice) {
		printf("FAIL: the lock was held twice (or a dead holder not reported)\n");
		fail = 1;
	}
	if (B->errors || B->stalls) {
		printf("FAIL: %llu errors, %llu stalls; last: %s\n", (unsigned long long)B->errors,
		       (unsigned long long)B->stalls, B->err);
		fail = 1;
	}
	if (!B->kills[0] || !B->kills[1] || !acked || !B->lock_rounds) {
		printf("FAIL: the run did nothing worth checking\n");
		fail = 1;
	}
	if (!st.eof) {
		printf("FAIL: the queue is not at EOF\n");
		fail = 1;
	}
out:
	shmkit_queue_close(q);
	shmkit_lock_close(l);
	shmkit_queue_unlink(B->qname);
	shmkit_lock_unlink(B->lname);
	printf("%s\n", fail ? "FAIL" : "PASS");
	return fail;
}
