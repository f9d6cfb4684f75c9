/*
 * check_deadlock: lock-order cycles between processes are reported as -EDEADLK instead of
 * hanging (issue 12): two processes taking two locks in opposite order, three in a ring, a
 * cycle through a Condition's lock, and the same with anonymous locks inherited over fork.
 * In each, exactly one acquire (the one that would close the cycle) returns -EDEADLK, the
 * others proceed once it backs off, and while the cycle stood `shmkit_info` named what the
 * other holder waits for. The detector keeps working when a process of the same user holds
 * its guard (stopped inside it) or died inside it. And no false report: 200 processes
 * contending one lock.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>

#include "testutil.h"

#define MAXP 3
#define WAIT_S 60.0
#define RC_UNSET 999 /* no acquire result yet */

/* What the children of one cycle share. */
struct cycle {
	_Atomic int have[MAXP];  /* child i holds its first lock */
	_Atomic int rc[MAXP];    /* what its second acquire returned */
	_Atomic int named_ok;    /* the -EDEADLK child saw the cycle in shmkit_info */
	_Atomic int others_blocked; /* ... and nobody else got through before it backed off */
	_Atomic int info_rc;
	char waits_for[MAXP][TU_NAME_SIZE];
};

struct cycle_arg {
	struct cycle *sh;
	int i, n;
	shmkit_lock *first, *second;
	const char *first_name, *second_name; /* NULL when anonymous */
};

/* Spin-sleep until *flag, at most WAIT_S. */
static int await_flag(_Atomic int *flag)
{
	int64_t end = tu_now_ns() + (int64_t)(WAIT_S * TU_NS_PER_S);

	while (!atomic_load(flag)) {
		if (tu_now_ns() > end)
			return -1;
		tu_sleep_ms(1);
	}
	return 0;
}

/* Take the first lock, wait until everyone holds theirs, take the second. On -EDEADLK, look
 * at what the holder of the second lock is shown waiting for, then back off. */
static int cycle_child(void *p)
{
	struct cycle_arg *a = p;
	struct cycle *sh = a->sh;
	int k, rc;

	if (shmkit_lock_acquire(a->first) != 0)
		return 10;
	atomic_store(&sh->have[a->i], 1);
	for (k = 0; k < a->n; k++)
		if (await_flag(&sh->have[k]))
			return 11;
	rc = shmkit_lock_acquire(a->second);
	atomic_store(&sh->rc[a->i], rc);
	if (rc == -EDEADLK) {
		if (a->second_name) {
			struct shmkit_info info;
			int ir = shmkit_info(a->second_name, &info);

			atomic_store(&sh->info_rc, ir);
			snprintf(sh->waits_for[a->i], TU_NAME_SIZE, "%s", info.holder_waits_for);
			/* Its holder waits for a lock the cycle holds: ours, or (three in a ring)
			 * the next one's. Any name of the cycle but its own will do. */
			atomic_store(&sh->named_ok, ir == 0 && info.holder_waits_for[0] &&
							    strcmp(info.holder_waits_for,
								   a->second_name) != 0);
		}
		/* The others stay blocked meanwhile: nobody may get through. */
		tu_sleep_ms(100);
		atomic_store(&sh->others_blocked, 1);
		for (k = 0; k < a->n; k++)
			if (k != a->i && atomic_load(&sh->rc[k]) != RC_UNSET)
				atomic_store(&sh->others_blocked, 0);
		return shmkit_lock_release(a->first) == 0 ? 0 : 12;
	}
	if (rc != 0)
		return 13;
	if (shmkit_lock_release(a->second) || shmkit_lock_release(a->first))
		return 14;
	return 0;
}

/* Run n children, child i taking locks[i] then locks[(i+1) % n]; check the outcome. */
static void run_cycle(int n, shmkit_lock **locks, const char **names)
{
	struct cycle *sh = tu_shared(sizeof(*sh));
	struct cycle_arg args[MAXP];
	pid_t pids[MAXP];
	int i, deadlk = 0, ok = 0;

	for (i = 0; i < n; i++)
		atomic_store(&sh->rc[i], RC_UNSET);
	for (i = 0; i < n; i++) {
		args[i] = (struct cycle_arg){ sh, i, n, locks[i], locks[(i + 1) % n],
					      names ? names[i] : NULL,
					      names ? names[(i + 1) % n] : NULL };
		pids[i] = tu_fork(cycle_child, &args[i]);
	}
	for (i = 0; i < n; i++) {
		int st = tu_wait_child(pids[i], 2 * WAIT_S);

		ck_assert_msg(st == 0, "child %d: status %d (-1: hung)", i, st);
	}
	for (i = 0; i < n; i++) {
		int rc = atomic_load(&sh->rc[i]);

		if (rc == -EDEADLK)
			deadlk++;
		else if (rc == 0)
			ok++;
	}
	ck_assert_msg(deadlk == 1 && ok == n - 1, "%d of %d got -EDEADLK, %d proceeded", deadlk, n,
		      ok);
	ck_assert_msg(atomic_load(&sh->others_blocked),
		      "another acquire returned before the -EDEADLK one backed off");
	if (names)
		ck_assert_msg(atomic_load(&sh->named_ok),
			      "shmkit_info did not name the cycle: rc %d, waits for '%s' '%s' '%s'",
			      atomic_load(&sh->info_rc), sh->waits_for[0], sh->waits_for[1],
			      sh->waits_for[2]);
}

static void named_cycle(int n)
{
	char buf[MAXP][TU_NAME_SIZE];
	const char *names[MAXP];
	shmkit_lock *locks[MAXP];
	int i;

	for (i = 0; i < n; i++) {
		names[i] = tu_name_kind(buf[i], "dl", shmkit_lock_unlink);
		ck_assert_int_eq(shmkit_lock_create(names[i], 0, 0600, &locks[i]), 0);
	}
	run_cycle(n, locks, names);
	for (i = 0; i < n; i++)
		shmkit_lock_close(locks[i]);
}

START_TEST(two_named)
{
	named_cycle(2);
}
END_TEST

START_TEST(three_named)
{
	named_cycle(3);
}
END_TEST

START_TEST(two_anonymous)
{
	shmkit_lock *locks[2];

	ck_assert_int_eq(shmkit_lock_create(NULL, 0, 0600, &locks[0]), 0);
	ck_assert_int_eq(shmkit_lock_create(NULL, 0, 0600, &locks[1]), 0);
	run_cycle(2, locks, NULL);
	shmkit_lock_close(locks[0]);
	shmkit_lock_close(locks[1]);
}
END_TEST

START_TEST(three_anonymous)
{
	shmkit_lock *locks[3];
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(shmkit_lock_create(NULL, SHMKIT_RECURSIVE, 0600, &locks[i]), 0);
	run_cycle(3, locks, NULL);
	for (i = 0; i < 3; i++)
		shmkit_lock_close(locks[i]);
}
END_TEST

/* A Condition's lock (an RLock owned by the Condition) and a plain Lock, taken in opposite
 * orders: the cycle forms through the Condition. */
START_TEST(through_condition)
{
	char cb[TU_NAME_SIZE], lb[TU_NAME_SIZE];
	const char *names[2];
	shmkit_cond *c;
	shmkit_lock *locks[2];

	names[0] = tu_name_kind(cb, "dlc", shmkit_cond_unlink);
	names[1] = tu_name_kind(lb, "dll", shmkit_lock_unlink);
	ck_assert_int_eq(shmkit_cond_create(names[0], 0600, &c), 0);
	ck_assert_int_eq(shmkit_lock_create(names[1], 0, 0600, &locks[1]), 0);
	locks[0] = shmkit_cond_lock(c);
	run_cycle(2, locks, names);
	shmkit_lock_close(locks[1]);
	shmkit_cond_close(c);
}
END_TEST

/* The same through an anonymous Condition inherited over fork. */
START_TEST(through_anonymous_condition)
{
	shmkit_cond *c;
	shmkit_lock *locks[2];

	ck_assert_int_eq(shmkit_cond_create(NULL, 0600, &c), 0);
	ck_assert_int_eq(shmkit_lock_create(NULL, 0, 0600, &locks[1]), 0);
	locks[0] = shmkit_cond_lock(c);
	run_cycle(2, locks, NULL);
	shmkit_lock_close(locks[1]);
	shmkit_cond_close(c);
}
END_TEST

/* ---- records left by processes killed inside the detector --------------------------------- */

/* The graph's layout as lib/wfg.c has it: 512 records of 256 bytes, each starting with a
 * seqlock word, record i leased through byte 2^52 + i. */
#define WFG_RECORDS 512
#define WFG_REC_SIZE 256
#define WFG_LEASE_BASE (1ULL << 52)

/* A process SIGKILLed inside the detector's publish leaves its record's seqlock odd. Make
 * every free record so, as a long torture run does, then form a cycle: the new owners of
 * those records must still be seen. */
/* Make every free record's seqlock odd (odd = 1) or even again (odd = 0); how many. */
static int set_free_records_parity(int odd)
{
	char graph[64];
	struct flock fl;
	unsigned char *map;
	int fd, i, n = 0;

	snprintf(graph, sizeof(graph), "/dev/shm/.shmkit-wfg.%u", (unsigned)geteuid());
	fd = open(graph, O_RDWR | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "no wait-for graph at %s: %s", graph, strerror(errno));
	map = mmap(NULL, WFG_RECORDS * WFG_REC_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(map != MAP_FAILED);
	for (i = 0; i < WFG_RECORDS; i++) {
		_Atomic uint32_t *seq = (_Atomic uint32_t *)(map + (size_t)i * WFG_REC_SIZE);

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)(WFG_LEASE_BASE + (uint64_t)i);
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_UNLCK)
			continue; /* someone's live record: not ours to touch */
		if ((atomic_load(seq) & 1) != (uint32_t)odd)
			atomic_fetch_add(seq, 1);
		n++;
	}
	munmap(map, WFG_RECORDS * WFG_REC_SIZE);
	close(fd);
	return n;
}

/* A process SIGKILLed inside the detector's publish leaves its record's seqlock odd. Make
 * every free record so, as a long torture run does, then form a cycle: the new owners of
 * those records must still be seen. The graph is shared by every process of this user, other
 * builds of shmkit included, so the records are made even again afterwards. */
START_TEST(records_of_killed_lookers)
{
	named_cycle(2); /* makes the graph exist */
	ck_assert_msg(set_free_records_parity(1) >= 3, "fewer than 3 free records");
	named_cycle(3);
	set_free_records_parity(0);
}
END_TEST

/* ---- a process stopped inside the detector ----------------------------------------------- */

struct guard_arg {
	const char *name;
	_Atomic int rc;
};

/* Hold the lock named a->name until killed; a->rc says 0 once held. */
static int holder_child(void *p)
{
	struct guard_arg *a = p;
	shmkit_lock *l;

	if (shmkit_lock_open(a->name, &l) || shmkit_lock_acquire(l))
		return 10;
	atomic_store(&a->rc, 0);
	for (;;)
		pause();
}

static int timed_acquirer(void *p)
{
	struct guard_arg *a = p;
	shmkit_lock *l;

	if (shmkit_lock_open(a->name, &l))
		return 10;
	atomic_store(&a->rc, shmkit_lock_acquire_timeout(l, 300 * TU_NS_PER_MS));
	return 0;
}

/* The detector serialises its look through the per-user graph file; a process of the same
 * user stopped (SIGSTOP, a debugger) while it looks, or one simply locking that file, stands
 * for it here by holding the graph's guard byte. A timed acquire must still time out. */
START_TEST(stopped_inside_detector)
{
	char buf[TU_NAME_SIZE], graph[64];
	const char *name = tu_name_kind(buf, "guard", shmkit_lock_unlink);
	struct guard_arg *a = tu_shared(sizeof(*a));
	struct flock fl;
	shmkit_lock *l;
	pid_t pid;
	int fd, st;

	ck_assert_int_eq(shmkit_lock_create(name, 0, 0600, &l), 0);
	ck_assert_int_eq(shmkit_lock_acquire(l), 0);
	a->name = name;
	atomic_store(&a->rc, RC_UNSET);
	/* A first waiter makes the graph exist. */
	pid = tu_fork(timed_acquirer, a);
	ck_assert_int_eq(tu_wait_child(pid, 60), 0);
	ck_assert_int_eq(atomic_load(&a->rc), -ETIMEDOUT);

	snprintf(graph, sizeof(graph), "/dev/shm/.shmkit-wfg.%u", (unsigned)geteuid());
	fd = open(graph, O_RDWR | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "no wait-for graph at %s: %s", graph, strerror(errno));
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLKW, &fl), 0);

	atomic_store(&a->rc, RC_UNSET);
	pid = tu_fork(timed_acquirer, a);
	st = tu_wait_child(pid, 30);
	close(fd);
	ck_assert_msg(st == 0, "a 300 ms acquire was still blocked after 30 s (status %d)", st);
	ck_assert_int_eq(atomic_load(&a->rc), -ETIMEDOUT);
	ck_assert_int_eq(shmkit_lock_release(l), 0);
	shmkit_lock_close(l);
}
END_TEST

/* ---- no false report under contention ---------------------------------------------------- */

#define CROWD 200
#define ROUNDS 500

struct crowd {
	int64_t counter; /* plain memory: only ever touched under the lock */
	_Atomic int deadlk, other_err;
	_Atomic int ready, go;
};

struct crowd_arg {
	struct crowd *sh;
	const char *name;
};

static int crowd_child(void *p)
{
	struct crowd_arg *a = p;
	shmkit_lock *l;
	int i, k, rc;

	if (shmkit_lock_open(a->name, &l))
		return 10;
	atomic_fetch_add(&a->sh->ready, 1);
	if (await_flag(&a->sh->go))
		return 11;
	for (i = 0; i < ROUNDS; i++) {
		rc = shmkit_lock_acquire(l);
		if (rc == -EDEADLK) {
			atomic_fetch_add(&a->sh->deadlk, 1);
			continue;
		}
		if (rc != 0) {
			atomic_fetch_add(&a->sh->other_err, 1);
			continue;
		}
		/* A short critical section whose update a second holder would tear. */
		{
			int64_t v = a->sh->counter;

			for (k = 0; k < 20; k++)
				atomic_signal_fence(memory_order_seq_cst);
			a->sh->counter = v + 1;
		}
		if (shmkit_lock_release(l))
			atomic_fetch_add(&a->sh->other_err, 1);
	}
	shmkit_lock_close(l);
	return 0;
}

START_TEST(no_false_report)
{
	char buf[TU_NAME_SIZE];
	const char *name = tu_name_kind(buf, "crowd", shmkit_lock_unlink);
	struct crowd *sh = tu_shared(sizeof(*sh));
	struct crowd_arg arg = { sh, name };
	static pid_t pids[CROWD];
	shmkit_lock *l;
	int i, bad;

	ck_assert_int_eq(shmkit_lock_create(name, 0, 0600, &l), 0);
	for (i = 0; i < CROWD; i++)
		pids[i] = tu_fork(crowd_child, &arg);
	while (atomic_load(&sh->ready) < CROWD)
		tu_sleep_ms(5);
	atomic_store(&sh->go, 1);
	bad = tu_wait_children(pids, CROWD, 600);
	ck_assert_msg(bad == 0, "%d of %d children failed or hung", bad, CROWD);
	ck_assert_msg(atomic_load(&sh->deadlk) == 0, "%d false -EDEADLK", atomic_load(&sh->deadlk));
	ck_assert_msg(atomic_load(&sh->other_err) == 0, "%d other errors",
		      atomic_load(&sh->other_err));
	ck_assert_msg(sh->counter == (int64_t)CROWD * ROUNDS, "counter %lld, want %lld",
		      (long long)sh->counter, (long long)CROWD * ROUNDS);
	shmkit_lock_close(l);
}
END_TEST

/* ---- records of threads that waited once ---------------------------------------------------- */

#define SHORT_THREADS 600 /* more than the graph's 512 records */

static void *short_waiter(void *p)
{
	/* Waits long enough to publish (a waiter looks after a millisecond), then gives up. */
	return (void *)(intptr_t)shmkit_lock_acquire_timeout(p, 4 * TU_NS_PER_MS);
}

/* Issue 22 item 5: a thread holds a graph record only while it waits. 600 short-lived threads
 * of this (still running) process each wait once; a cycle formed afterwards is still seen. */
START_TEST(short_lived_waiters)
{
	char buf[TU_NAME_SIZE];
	const char *name = tu_name_kind(buf, "short", shmkit_lock_unlink);
	struct guard_arg *a = tu_shared(sizeof(*a));
	shmkit_lock *l, *mine;
	pthread_t t;
	void *rc;
	pid_t pid;
	int i;

	ck_assert_int_eq(shmkit_lock_create(name, 0, 0600, &l), 0);
	/* Held by another process, so our threads wait. */
	a->name = name;
	atomic_store(&a->rc, RC_UNSET);
	pid = tu_fork(holder_child, a);
	while (atomic_load(&a->rc) == RC_UNSET)
		tu_sleep_ms(1);
	ck_assert_int_eq(shmkit_lock_open(name, &mine), 0);
	for (i = 0; i < SHORT_THREADS; i++) {
		ck_assert_int_eq(pthread_create(&t, NULL, short_waiter, mine), 0);
		ck_assert_int_eq(pthread_join(t, &rc), 0);
		ck_assert_int_eq((int)(intptr_t)rc, -ETIMEDOUT);
	}
	kill(pid, SIGKILL);
	tu_wait_child(pid, 30);
	named_cycle(2);
	shmkit_lock_close(mine);
	shmkit_lock_close(l);
}
END_TEST

/* ---- a holder that lets go and then waits: no cycle ------------------------------------- */

struct letgo {
	const char *m, *l;
	_Atomic int a_has, b_has, a_go, b_go, a_rc, b_rc;
};

/* A: holds M, then waits for L (held by B). */
static int letgo_a(void *p)
{
	struct letgo *g = p;
	shmkit_lock *m, *l;

	if (shmkit_lock_open(g->m, &m) || shmkit_lock_open(g->l, &l) || shmkit_lock_acquire(m))
		return 10;
	atomic_store(&g->a_has, 1);
	if (await_flag(&g->a_go))
		return 11;
	atomic_store(&g->a_rc, shmkit_lock_acquire(l));
	if (atomic_load(&g->a_rc) == 0)
		shmkit_lock_release(l);
	shmkit_lock_release(m);
	return 0;
}

/* B: holds L; told to, lets it go and waits for M (held by A). */
static int letgo_b(void *p)
{
	struct letgo *g = p;
	shmkit_lock *m, *l;

	if (shmkit_lock_open(g->m, &m) || shmkit_lock_open(g->l, &l) || shmkit_lock_acquire(l))
		return 10;
	atomic_store(&g->b_has, 1);
	if (await_flag(&g->b_go))
		return 11;
	shmkit_lock_release(l);
	atomic_store(&g->b_rc, shmkit_lock_acquire(m));
	if (atomic_load(&g->b_rc) == 0)
		shmkit_lock_release(m);
	return 0;
}

/* Issue 22 item 4's reproducer with the timing widened: A waits for L held by B; while A
 * looks, B lets L go and waits for M, which A holds. At no instant do A and B wait for each
 * other, so neither may get -EDEADLK. The window is widened by holding byte 0 of the graph
 * (where the old detector serialised its looks) while B moves; the detector must not care. */
START_TEST(letgo_then_wait)
{
	char bm[TU_NAME_SIZE], bl[TU_NAME_SIZE], graph[64];
	struct letgo *g = tu_shared(sizeof(*g));
	int round, false_reports = 0;

	g->m = tu_name_kind(bm, "lgm", shmkit_lock_unlink);
	g->l = tu_name_kind(bl, "lgl", shmkit_lock_unlink);
	{
		shmkit_lock *x, *y;

		ck_assert_int_eq(shmkit_lock_create(g->m, 0, 0600, &x), 0);
		ck_assert_int_eq(shmkit_lock_create(g->l, 0, 0600, &y), 0);
		shmkit_lock_close(x);
		shmkit_lock_close(y);
	}
	named_cycle(2); /* makes the graph exist */
	snprintf(graph, sizeof(graph), "/dev/shm/.shmkit-wfg.%u", (unsigned)geteuid());
	for (round = 0; round < 10; round++) {
		struct flock fl;
		pid_t a, b;
		int fd = open(graph, O_RDWR | O_CLOEXEC);

		ck_assert_msg(fd >= 0, "no graph at %s", graph);
		memset(g, 0, sizeof(*g));
		g->m = bm;
		g->l = bl;
		atomic_store(&g->a_rc, RC_UNSET);
		atomic_store(&g->b_rc, RC_UNSET);
		a = tu_fork(letgo_a, g);
		ck_assert_int_eq(await_flag(&g->a_has), 0);
		b = tu_fork(letgo_b, g);
		ck_assert_int_eq(await_flag(&g->b_has), 0);
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_len = 1;
		ck_assert_int_eq(fcntl(fd, F_OFD_SETLKW, &fl), 0);
		atomic_store(&g->a_go, 1);
		tu_sleep_ms(2); /* A looks: L held by B */
		atomic_store(&g->b_go, 1);
		tu_sleep_ms(3); /* B let go of L, waits for M and looks */
		close(fd);
		ck_assert_int_eq(tu_wait_child(a, 60), 0);
		ck_assert_int_eq(tu_wait_child(b, 60), 0);
		ck_assert_msg(atomic_load(&g->a_rc) == 0 || atomic_load(&g->a_rc) == -EDEADLK,
			      "A: %d", atomic_load(&g->a_rc));
		ck_assert_msg(atomic_load(&g->b_rc) == 0 || atomic_load(&g->b_rc) == -EDEADLK,
			      "B: %d", atomic_load(&g->b_rc));
		false_reports += (atomic_load(&g->a_rc) == -EDEADLK) +
				 (atomic_load(&g->b_rc) == -EDEADLK);
	}
	ck_assert_msg(false_reports == 0, "%d false -EDEADLK in 10 rounds", false_reports);
}
END_TEST

/* ---- churn without a cycle beside real cycles --------------------------------------------- */

#define CHURNERS 10
#define CHURN_LOCKS 3
#define CHURN_ROUNDS 600

struct churn {
	_Atomic int deadlk, other_err, ready, go, stop;
	int64_t counter[CHURN_LOCKS]; /* plain memory, each touched under its lock only */
};

struct churn_arg {
	struct churn *sh;
	char names[CHURN_LOCKS][TU_NAME_SIZE];
};

/* Take a random non-empty set of the locks, always in index order (so no cycle can ever
 * form), hold them a random short while, let them go in a random order, and again. What the
 * old detector mistook for a cycle: a holder letting go of one lock and, next round, waiting
 * for one the looker holds. */
static int churn_child(void *p)
{
	struct churn_arg *a = p;
	shmkit_lock *l[CHURN_LOCKS];
	unsigned seed = (unsigned)getpid();
	int i, k, rc, held[CHURN_LOCKS];

	for (k = 0; k < CHURN_LOCKS; k++)
		if (shmkit_lock_open(a->names[k], &l[k]))
			return 10;
	atomic_fetch_add(&a->sh->ready, 1);
	if (await_flag(&a->sh->go))
		return 11;
	for (i = 0; i < CHURN_ROUNDS && !atomic_load(&a->sh->stop); i++) {
		int set = 1 + (int)(rand_r(&seed) % ((1u << CHURN_LOCKS) - 1));

		for (k = 0; k < CHURN_LOCKS; k++) {
			held[k] = 0;
			if (!(set & (1 << k)))
				continue;
			rc = shmkit_lock_acquire(l[k]);
			if (rc == -EDEADLK)
				atomic_fetch_add(&a->sh->deadlk, 1);
			else if (rc != 0)
				atomic_fetch_add(&a->sh->other_err, 1);
			else
				held[k] = 1;
		}
		for (k = 0; k < CHURN_LOCKS; k++)
			if (held[k])
				a->sh->counter[k]++;
		/* Held long enough, often enough, that the waiters publish and look (a waiter
		 * looks after a millisecond). */
		if (rand_r(&seed) % 4 == 0)
			tu_sleep_ms(1 + (int)(rand_r(&seed) % 2));
		else
			sched_yield();
		for (k = 0; k < CHURN_LOCKS; k++) {
			int j = (k + (int)(rand_r(&seed) % CHURN_LOCKS)) % CHURN_LOCKS;

			if (held[j] && shmkit_lock_release(l[j]) == 0)
				held[j] = 0;
		}
		for (k = 0; k < CHURN_LOCKS; k++)
			if (held[k] && shmkit_lock_release(l[k]))
				atomic_fetch_add(&a->sh->other_err, 1);
	}
	for (k = 0; k < CHURN_LOCKS; k++)
		shmkit_lock_close(l[k]);
	return 0;
}

/* Churn with no cycle, and (with_cycles) real two- and three-cycles formed beside it. */
static void run_churn(bool with_cycles)
{
	struct churn_arg *arg = tu_shared(sizeof(*arg));
	static pid_t pids[CHURNERS];
	shmkit_lock *l[CHURN_LOCKS];
	int i, k, bad;

	arg->sh = tu_shared(sizeof(*arg->sh));
	for (k = 0; k < CHURN_LOCKS; k++) {
		tu_name_kind(arg->names[k], "churn", shmkit_lock_unlink);
		ck_assert_int_eq(shmkit_lock_create(arg->names[k], 0, 0600, &l[k]), 0);
	}
	for (i = 0; i < CHURNERS; i++)
		pids[i] = tu_fork(churn_child, arg);
	while (atomic_load(&arg->sh->ready) < CHURNERS)
		tu_sleep_ms(5);
	atomic_store(&arg->sh->go, 1);
	for (i = 0; with_cycles && i < 3; i++) {
		named_cycle(2); /* each asserts exactly one -EDEADLK */
		named_cycle(3);
	}
	if (with_cycles)
		atomic_store(&arg->sh->stop, 1);
	bad = tu_wait_children(pids, CHURNERS, 600);
	ck_assert_msg(bad == 0, "%d of %d churners failed or hung", bad, CHURNERS);
	ck_assert_msg(atomic_load(&arg->sh->deadlk) == 0, "%d false -EDEADLK under churn",
		      atomic_load(&arg->sh->deadlk));
	ck_assert_int_eq(atomic_load(&arg->sh->other_err), 0);
	for (k = 0; k < CHURN_LOCKS; k++)
		shmkit_lock_close(l[k]);
}

/* Issue 22 item 4: many processes churning in random orders with no cycle get no -EDEADLK,
 * while real two- and three-cycles formed beside them each get exactly one, every round. */
START_TEST(churn_beside_cycles)
{
	run_churn(true);
}
END_TEST

/* Churn alone, all its rounds: zero reports. */
START_TEST(churn_alone)
{
	run_churn(false);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("deadlock");
	TCase *tc;

	tu_skip_if_no_shm();
	tu_init();
	tc = tu_tcase(s, "cycles", 240);
	tcase_add_test(tc, two_named);
	tcase_add_test(tc, three_named);
	tcase_add_test(tc, two_anonymous);
	tcase_add_test(tc, three_anonymous);
	tcase_add_test(tc, through_condition);
	tcase_add_test(tc, through_anonymous_condition);
	tcase_add_test(tc, stopped_inside_detector);
	tcase_add_test(tc, records_of_killed_lookers);
	tc = tu_tcase(s, "crowd", 900);
	tcase_add_test(tc, no_false_report);
	tcase_add_test(tc, churn_alone);
	tcase_add_test(tc, short_lived_waiters);
	tcase_add_test(tc, letgo_then_wait);
	tcase_add_test(tc, churn_beside_cycles);
	return tu_run(s);
}
