/*
 * The keeper: the far queue's writer, in a process of its own that outlives receiving bridges.
 *
 * Why: a queue reaches EOF when its last writer goes, and a dead process's writer attachment
 * goes with it; a queue made with --writers 1 even refuses a second writer. So if the
 * receiving bridge itself put into the far queue, killing and restarting it would end the far
 * consumers' stream. Instead the bridge puts into a staging queue (FAR.bridge-q) and the keeper,
 * forked (detached, in its own session) by the first bridge, moves messages from there to the
 * far queue as its one writer. A restarted bridge finds the keeper alive (it holds the lock
 * FAR.bridge-l for its whole life) and carries on; the keeper leaves, and the far queue sees its
 * writer go, only when every send bridge has forwarded EOF.
 *
 * The keeper also drops the second copy of a message a killed bridge put into staging without
 * recording it (see bridge.h): a sender's sequence numbers reach staging in order, with at most
 * such repeats, so "seq <= the last one put" is a duplicate.
 *
 * Killing the keeper itself is a writer leaving (EOF on a queue that expected that), and the one
 * message it was moving may then arrive twice if a new keeper replays it: documented.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge/bridge.h"

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

static int keeper_main(int fd, const char *far, const char *stage, const char *lockname,
		       const char *rname)
{
	shmkit_queue *fq = NULL, *sq = NULL;
	struct bridge_rstate rs = { 0 };
	shmkit_lock *lock = NULL;
	unsigned char *buf = NULL;
	uint32_t size;
	int rc;

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
	if ((rc = shmkit_queue_open(far, &fq)) || (rc = shmkit_queue_attach_writer(fq))) {
		report(fd, rc, far);
		return 1;
	}
	if ((rc = shmkit_queue_open(stage, &sq)) || (rc = shmkit_queue_attach_writer(sq))) {
		/* Attached to staging as a writer too, never putting: staging must not reach EOF
		 * when a bridge (its other writer) dies. */
		report(fd, rc, stage);
		return 1;
	}
	if ((rc = bridge_rstate_open(&rs, rname, false))) {
		report(fd, rc, rname);
		return 1;
	}
	shmkit_array_store(rs.a, 1, getpid());
	size = shmkit_queue_max_size(sq);
	if (!(buf = malloc(size ? size : 1))) {
		report(fd, -ENOMEM, "staging buffer");
		return 1;
	}
	report(fd, 0, "");
	close(fd);
	for (;;) {
		uint64_t id, seq;
		int slot;

		rc = shmkit_queue_get(sq, buf, size);
		if (rc < 0) {
			fprintf(stderr, "shmkit: bridge keeper: %s: %s\n", stage, shmkit_strerror(rc));
			return 1;
		}
		if ((size_t)rc < BRIDGE_STAGE_HDR)
			continue; /* only bridges put here; nothing shorter is ever meant */
		id = bridge_get64(buf);
		seq = bridge_get64(buf + 8);
		if (id == 0)
			break; /* every sender forwarded EOF: the bridge asks us to leave */
		if ((slot = bridge_rstate_slot(&rs, id, false)) < 0)
			continue;
		if ((int64_t)seq <= bridge_rstate_get(&rs, slot, RS_KEPT))
			continue; /* a second copy from a bridge killed after its put */
		rc = shmkit_queue_put(fq, buf + BRIDGE_STAGE_HDR, (size_t)rc - BRIDGE_STAGE_HDR);
		if (rc < 0) {
			fprintf(stderr, "shmkit: bridge keeper: %s: %s\n", far, shmkit_strerror(rc));
			return 1;
		}
		bridge_rstate_set(&rs, slot, RS_KEPT, (int64_t)seq);
	}
	free(buf);
	shmkit_array_store(rs.a, 1, 0);
	bridge_rstate_close(&rs);
	shmkit_queue_close(fq); /* detaches: the far queue sees its writer leave */
	shmkit_queue_close(sq);
	shmkit_lock_release(lock);
	shmkit_lock_close(lock);
	return 0;
}

int bridge_keeper_ensure(const char *cmd, const char *far, const char *stage, const char *lock,
			 const char *rstate)
{
	char msg[400];
	int fds[2], status, e;
	struct pollfd pfd;
	pid_t pid;
	ssize_t n;

	if (bridge_keeper_alive(lock))
		return 0;
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		e = -errno;
		close(fds[0]);
		close(fds[1]);
		return e;
	}
	if (pid == 0) {
		/* Twice: the keeper is nobody's child, so it is never a zombie nobody reaps, and in
		 * a session of its own, so the terminal's signals for the bridge miss it. */
		close(fds[0]);
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGTERM, SIG_DFL); /* the bridge's own handler came with the fork */
		if ((pid = fork()) != 0)
			_exit(pid < 0 ? 1 : 0);
		e = open("/dev/null", O_RDWR);
		if (e >= 0) {
			dup2(e, 0);
			dup2(e, 1);
			if (e > 2)
				close(e);
		}
		_exit(keeper_main(fds[1], far, stage, lock, rstate));
	}
	close(fds[1]);
	waitpid(pid, &status, 0);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	n = poll(&pfd, 1, 30000) == 1 ? read(fds[0], msg, sizeof(msg) - 1) : -1;
	close(fds[0]);
	if (n <= 0) {
		fprintf(stderr, "shmkit: %s: the keeper of %s did not start\n", cmd, far);
		return -ECHILD;
	}
	msg[n] = 0;
	if (msg[0] == 'R')
		return 0;
	e = atoi(msg + 1);
	fprintf(stderr, "shmkit: %s: %s: %s\n", cmd, strchr(msg, ' ') ? strchr(msg, ' ') + 1 : far,
		shmkit_strerror(-e));
	return -e;
}
