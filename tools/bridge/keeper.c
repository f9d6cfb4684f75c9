/*
 * The keeper: the far queue's writer, in a process of its own that outlives receiving bridges.
 *
 * Why: a queue reaches EOF when its last writer goes, and a dead process's writer attachment
 * goes with it; a queue made with --writers 1 even refuses a second writer. So if the
 * receiving bridge itself put into the far queue, killing and restarting it would end the far
 * consumers' stream. Instead the bridge puts into a staging queue (FAR.bridge-q) and the keeper,
 * started by the receiver (`shmkit-bridge keeper ...`, in a session of its own), moves messages
 * from there to the far queue as its one writer. A restarted bridge finds the keeper alive (it
 * holds the lock FAR.bridge-l for its whole life) and carries on; the keeper leaves, and the
 * far queue sees its writer go, only when every send bridge has forwarded EOF.
 *
 * The keeper drops the second copy of a message a killed bridge put into staging without
 * recording it (see bridge.h): a sender's sequence numbers reach staging in order, with at most
 * such repeats, so "seq <= the last one put" (RS_KEPT) is a duplicate.
 *
 * A killed keeper. Messages in staging were acknowledged to their senders, so none may vanish
 * uncounted:
 *  - a message is peeked (claimed in place), put into the far queue, recorded (RS_KEPT) and
 *    only then released; the keeper notes which message it holds (RH_HAND_*). A holder that
 *    dies has its message skipped and counted in staging's lost_dead_consumer; the successor
 *    counts each such loss in the far queue's stats (shmkit_queue_count_lost), except the one
 *    its predecessor had already recorded as put. Killed between its put and its record (one
 *    store), a message is delivered and counted lost: counted, never silently gone.
 *  - the receiver starts a successor whenever it finds the keeper dead (keeper_ensure). Should
 *    receiver and keeper both be dead, staging has lost its last writer and is closed: the
 *    successor moves what it holds to the far queue, then makes staging anew.
 *  - the far queue itself sees its writer leave when a keeper dies: a queue made with
 *    --writers 1 is at EOF for good (its consumers see the end of the stream), one made with
 *    --writers N lets N-1 successors attach.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "util.h"

#define REPORT_FD 3        /* where a starting keeper says how it went */
#define RECONCILE_EVERY_S 1.0

static int open_lock(const char *name, shmkit_lock **l)
{
	int rc = shmkit_lock_create(name, 0, 0600, l);

	if (rc == -EEXIST)
		rc = shmkit_lock_open(name, l);
	return rc;
}

bool bridge_keeper_alive(const char *lock)
{
	shmkit_lock *l;
	int rc;

	if (shmkit_lock_open(lock, &l))
		return false;
	rc = shmkit_lock_acquire_try(l);
	if (rc >= 0)
		shmkit_lock_release(l);
	shmkit_lock_close(l);
	return rc == -EAGAIN;
}

/* Tell the bridge waiting on `fd` how it went: "R" ready, or "E<errno> <what>". */
static void report(int fd, int err, const char *what)
{
	char msg[400];
	int n = err ? snprintf(msg, sizeof(msg), "E%d %s", -err, what) : snprintf(msg, sizeof(msg), "R");

	if (fd >= 0 && n > 0 && write(fd, msg, (size_t)n) < 0) {
		/* the bridge is gone: nobody to tell */
	}
}

struct keeper {
	shmkit_queue *fq, *sq;
	struct bridge_rstate rs;
	const char *far, *stage;
	double next_reconcile;
	bool dead_hand_put; /* the predecessor died holding a message it had already put */
	unsigned char *big;  /* a message too long to peek, got here */
	bool got;            /* the message in hand was got, not peeked: nothing to release */
};

/*
 * Count in the far queue what dead keepers took from staging and never put: staging's
 * lost_dead_consumer beyond what was accounted for (RH_STAGE_LOST; we are staging's only
 * consumer, so every such loss is a keeper's), less the one message a predecessor held and
 * had recorded as put.
 */
static void reconcile(struct keeper *k)
{
	struct shmkit_queue_stats st;
	uint64_t done = (uint64_t)bridge_rstate_hdr(&k->rs, RH_STAGE_LOST), n;

	k->next_reconcile = now_seconds() + RECONCILE_EVERY_S;
	if (shmkit_queue_stats(k->sq, &st) || st.lost_dead_consumer <= done)
		return;
	n = st.lost_dead_consumer - done;
	if (k->dead_hand_put) {
		n--;
		k->dead_hand_put = false;
	}
	if (n)
		shmkit_queue_count_lost(k->fq, n);
	bridge_rstate_set_hdr(&k->rs, RH_STAGE_LOST, (int64_t)st.lost_dead_consumer);
}

static int release(struct keeper *k)
{
	return k->got ? 0 : shmkit_queue_release(k->sq);
}

/* Move one message from staging to the far queue: 1 when it was the leave marker, 0 moved (or
 * dropped as a duplicate), negative errno. */
static int move_one(struct keeper *k, const unsigned char *msg, size_t len)
{
	uint64_t id, seq;
	int slot, rc;

	if (len < BRIDGE_STAGE_HDR)
		return release(k); /* only bridges put here; never meant */
	id = bridge_get64(msg);
	seq = bridge_get64(msg + 8);
	if (id == 0) {
		release(k);
		return 1; /* every sender forwarded EOF: the bridge asks us to leave */
	}
	slot = bridge_rstate_slot(&k->rs, id, false);
	if (slot < 0 || (int64_t)seq <= bridge_rstate_get(&k->rs, slot, RS_KEPT))
		return release(k); /* a second copy from a killed bridge */
	bridge_rstate_set_hdr(&k->rs, RH_HAND_ID, (int64_t)id);
	bridge_rstate_set_hdr(&k->rs, RH_HAND_SEQ, (int64_t)seq);
	bridge_killpoint("keeper-hand");
	rc = shmkit_queue_put(k->fq, msg + BRIDGE_STAGE_HDR, len - BRIDGE_STAGE_HDR);
	if (rc < 0) {
		fprintf(stderr, "shmkit: bridge keeper: %s: %s\n", k->far, shmkit_strerror(rc));
		return rc;
	}
	bridge_killpoint("keeper-put");
	bridge_rstate_set(&k->rs, slot, RS_KEPT, (int64_t)seq);
	bridge_killpoint("keeper-kept");
	rc = release(k);
	bridge_rstate_set_hdr(&k->rs, RH_HAND_SEQ, 0);
	return rc;
}

/* Move messages until the leave marker (1), staging's EOF (-EPIPE) or an error. */
static int move_all(struct keeper *k)
{
	const void *msg;
	int rc;

	for (;;) {
		if (now_seconds() >= k->next_reconcile)
			reconcile(k);
		rc = shmkit_queue_peek_timeout(k->sq, &msg, 500 * 1000000LL);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc == -EMSGSIZE) {
			/* Longer than a staging slot (over 16 MiB): not peekable, so got. A keeper
			 * killed between this get and its note of the message loses it uncounted. */
			if (!k->big && !(k->big = malloc(shmkit_queue_max_size(k->sq))))
				return -ENOMEM;
			rc = shmkit_queue_get(k->sq, k->big, shmkit_queue_max_size(k->sq));
			if (rc < 0)
				return rc;
			k->got = true;
			msg = k->big;
		}
		if (rc < 0)
			return rc;
		rc = move_one(k, msg, (size_t)rc);
		k->got = false;
		if (rc != 0)
			return rc;
	}
}

/* Staging closed (receiver and keeper both died): move what it holds, then make it anew. */
static int renew_stage(struct keeper *k)
{
	struct shmkit_queue_attr a = { .mode = 0600 };
	struct shmkit_queue_stats st;
	int rc = move_all(k);

	if (rc != -EPIPE)
		return rc < 0 ? rc : -EPIPE; /* a leave marker in a closed staging: the end */
	reconcile(k);
	if ((rc = shmkit_queue_stats(k->sq, &st)))
		return rc;
	a.capacity = st.capacity;
	a.max_size = st.max_size;
	bridge_rstate_set_hdr(&k->rs, RH_STAGE_LOST, 0);
	shmkit_queue_close(k->sq);
	k->sq = NULL;
	shmkit_queue_unlink(k->stage);
	if ((rc = shmkit_queue_create(k->stage, &a, &k->sq)))
		return rc;
	return shmkit_queue_attach_writer(k->sq);
}

static int keeper_start(struct keeper *k, const char *rname)
{
	struct shmkit_queue_stats st;
	int64_t hand;
	int rc, slot;

	if ((rc = bridge_rstate_open(&k->rs, rname, false)))
		return rc;
	/* What the predecessor held when it died (RH_HAND_*): put already, or not. */
	hand = bridge_rstate_hdr(&k->rs, RH_HAND_SEQ);
	slot = hand ? bridge_rstate_slot(&k->rs, (uint64_t)bridge_rstate_hdr(&k->rs, RH_HAND_ID), false)
		    : -1;
	k->dead_hand_put = slot >= 0 && bridge_rstate_get(&k->rs, slot, RS_KEPT) >= hand;
	bridge_rstate_set_hdr(&k->rs, RH_HAND_SEQ, 0);
	if ((rc = shmkit_queue_open(k->far, &k->fq)) || (rc = shmkit_queue_attach_writer(k->fq)))
		return rc;
	if ((rc = shmkit_queue_open(k->stage, &k->sq)) || (rc = shmkit_queue_stats(k->sq, &st)))
		return rc;
	if (st.eof)
		return renew_stage(k);
	/* Attached to staging as a writer too, never putting: staging must not reach EOF when a
	 * bridge (its other writer) dies. */
	return shmkit_queue_attach_writer(k->sq);
}

int bridge_keeper_main(const char *far, const char *stage, const char *lockname,
		       const char *rname)
{
	struct keeper k = { .far = far, .stage = stage };
	shmkit_lock *lock = NULL;
	int fd = REPORT_FD, rc;

	signal(SIGINT, SIG_IGN); /* the terminal's signals are for the bridge */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = open_lock(lockname, &lock))) {
		report(fd, rc, lockname);
		return 1;
	}
	rc = shmkit_lock_acquire_try(lock);
	if (rc == -EAGAIN) { /* another keeper won the race: it serves */
		report(fd, 0, "");
		return 0;
	}
	if (rc < 0) {
		report(fd, rc, lockname);
		return 1;
	}
	if ((rc = keeper_start(&k, rname))) {
		report(fd, rc, rc == -EPIPE || rc == -EDQUOT ? far : stage);
		return 1;
	}
	bridge_rstate_set_hdr(&k.rs, RH_KEEPER, getpid());
	report(fd, 0, "");
	close(fd);
	rc = move_all(&k);
	if (rc != 1) {
		fprintf(stderr, "shmkit: bridge keeper: %s: %s\n", stage, shmkit_strerror(rc));
		return 1;
	}
	reconcile(&k);
	bridge_rstate_set_hdr(&k.rs, RH_KEEPER, 0);
	shmkit_queue_close(k.fq); /* detaches: the far queue sees its writer leave */
	bridge_killpoint("keeper-left");
	/* After the detach: a receiver restarted in its end phase finds the end done. */
	bridge_rstate_set_hdr(&k.rs, RH_END, RE_LEFT);
	bridge_rstate_close(&k.rs);
	shmkit_queue_close(k.sq);
	shmkit_lock_release(lock);
	shmkit_lock_close(lock);
	return 0;
}

int bridge_keeper_ensure(const char *cmd, const char *far, const char *stage, const char *lock,
			 const char *rstate)
{
	char *argv[] = { "shmkit-bridge", "keeper", (char *)far, (char *)stage, (char *)lock,
			 (char *)rstate, NULL };
	extern char **environ;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char msg[400];
	int fds[2], e;
	struct pollfd pfd;
	sigset_t none, dfl;
	ssize_t n = -1;
	pid_t pid;

	if (bridge_keeper_alive(lock))
		return 0;
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	/* posix_spawn, not fork: the receiver has ZeroMQ's threads by now, and a fork copies
	 * none of them (nor runs safely past a lock one of them held). The keeper runs this very
	 * program, in a session of its own (the terminal's signals for the bridge miss it), with
	 * no file of ours but the report pipe (everything else is close-on-exec). */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGCHLD);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], REPORT_FD);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	e = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(fds[1]);
	if (e) {
		close(fds[0]);
		fprintf(stderr, "shmkit: %s: the keeper of %s: %s\n", cmd, far, strerror(e));
		return -e;
	}
	/* Moving a closed staging's messages first may take as long as the far consumers take:
	 * wait for the report however long (a keeper that dies closes the pipe). */
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (!bridge_stop) {
		int p = poll(&pfd, 1, 500);

		if (p < 0 && errno != EINTR)
			break;
		if (p > 0) {
			n = read(fds[0], msg, sizeof(msg) - 1);
			break;
		}
	}
	close(fds[0]);
	waitpid(pid, NULL, WNOHANG); /* reaps one that failed at once; a live one: SIGCHLD */
	{
		/* A fault injected into a keeper (tests) is injected once: successors run clean. */
		const char *kill_at = getenv("SHMKIT_BRIDGE_KILL_AT");

		if (kill_at && !strncmp(kill_at, "keeper-", 7))
			unsetenv("SHMKIT_BRIDGE_KILL_AT");
	}
	if (n <= 0) {
		fprintf(stderr, "shmkit: %s: the keeper of %s did not start\n", cmd, far);
		return -ECHILD;
	}
	msg[n] = 0;
	if (msg[0] == 'R')
		return 0;
	e = atoi(msg + 1);
	fprintf(stderr, "shmkit: %s: the keeper: %s: %s\n", cmd,
		strchr(msg, ' ') ? strchr(msg, ' ') + 1 : far, shmkit_strerror(-e));
	return -e;
}
