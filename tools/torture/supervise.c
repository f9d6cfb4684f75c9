/* `shmkit torture`: forking, killing, pausing, restarting and reaping participants, and the
 * run loop that does it at the chosen rate while watching for stalls. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "torture/supervisor.h"
#include "torture/torture.h"
#include "util.h"

/* ------------------------------------------------------------------------------------------ */
/* Participants: start, kill, look at after death                                             */

static int run_role(struct sup *S, struct t_slot *s)
{
	switch (s->role) {
	case T_PRODUCER:
		return t_producer(&S->ctx, s);
	case T_CONSUMER:
		return t_consumer(&S->ctx, s);
	case T_LOCKER:
		return t_locker(&S->ctx, s);
	case T_PINGER:
		return t_pinger(&S->ctx, s);
	default:
		return t_echoer(&S->ctx, s);
	}
}

int torture_spawn(struct sup *S, struct part *p)
{
	struct t_slot *s = &S->b->slot[p->slot];
	pid_t pid;

	memset(s, 0, sizeof(*s));
	s->id = ++S->next_id;
	s->role = p->role;
	s->seed = t_rand(&S->rng) | 1;
	atomic_store(&s->attempting, T_NONE);
	if (S->next_id >= T_MAX_IDS) {
		failure(S, "out of participant ids");
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		failure(S, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* Never outlive the supervisor, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != S->self)
			_exit(T_EXIT_FAIL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		_exit(run_role(S, s));
	}
	p->pid = pid;
	p->id = s->id;
	p->killed = false;
	p->paused_until = 0;
	return 0;
}

/* Start a new pipe generation: a fresh pipe, both ends forked. */
int torture_pipe_start(struct sup *S)
{
	int i, rc;

	snprintf(S->pname, sizeof(S->pname), "/shmkit-torture-%d-pipe%u", (int)S->self,
		 ++S->pipe_gen);
	rc = shmkit_pipe_create(S->pname, T_PIPE_CAP, T_PIPE_MSG, 0, 0600, &S->ctx.pipe);
	if (rc) {
		failure(S, "pipe create %s: %s", S->pname, shmkit_strerror(rc));
		S->pname[0] = '\0';
		return -1;
	}
	S->f.pipe_gens++;
	S->pipe_closing = false;
	for (i = 0; i < S->nparts; i++)
		if (S->part[i].role == T_PINGER || S->part[i].role == T_ECHOER)
			if (torture_spawn(S, &S->part[i]))
				return -1;
	return 0;
}

void torture_pipe_finish(struct sup *S)
{
	shmkit_pipe_close(S->ctx.pipe);
	S->ctx.pipe = NULL;
	if (S->pname[0])
		shmkit_pipe_unlink(S->pname);
	S->pname[0] = '\0';
}

/* Salvage a message a killed consumer had received into its slot but not yet recorded. */
static void salvage(struct sup *S, struct t_slot *s)
{
	const struct t_msg *m = (const struct t_msg *)s->buf;

	if (m->magic != T_MSG_MAGIC || m->len < sizeof(*m) || m->len > T_MAX_MSG ||
	    t_msg_check(m, m->len) || m->gid >= atomic_load(&S->b->next_gid))
		return; /* nothing, or a copy cut short by the kill */
	if (!t_bit_set(S->b->received, m->gid))
		S->f.salvaged++;
}

/* What a killed participant may have left half-done, read from its slot. */
static void post_mortem(struct sup *S, struct part *p)
{
	struct t_slot *s = &S->b->slot[p->slot];
	uint64_t gid;

	switch (p->role) {
	case T_PRODUCER:
		gid = atomic_load(&s->attempting);
		if (gid != T_NONE && gid < T_MAX_GIDS) {
			t_bit_set(S->b->maybe, gid);
			S->f.prod_kills_attempting++;
		}
		break;
	case T_CONSUMER:
		if (atomic_load(&s->cstate) == C_GETTING)
			S->f.cons_kills_getting++;
		salvage(S, s);
		break;
	case T_LOCKER:
		switch (atomic_load(&s->lstate)) {
		case L_HOLDING:
			S->f.lk_definite++;
			break;
		case L_ACQUIRING:
			S->f.lk_maybe_acq++;
			/* fall through */
		case L_RELEASING:
			S->f.lk_maybe++;
			break;
		}
		if (atomic_load(&s->vpending))
			S->f.val_maybe++;
		break;
	default:
		break;
	}
}

static struct part *find_part(struct sup *S, pid_t pid)
{
	int i;

	for (i = 0; i < S->nparts; i++)
		if (S->part[i].pid == pid)
			return &S->part[i];
	return NULL;
}

static bool pipe_running(struct sup *S)
{
	int i;

	for (i = 0; i < S->nparts; i++)
		if ((S->part[i].role == T_PINGER || S->part[i].role == T_ECHOER) && S->part[i].pid)
			return true;
	return false;
}

static void describe_status(char *buf, size_t n, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "stopped with status %#x", status);
}

static void exited(struct sup *S, struct part *p, int status)
{
	bool pipe_end = p->role == T_PINGER || p->role == T_ECHOER;
	bool by_us = p->killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
	pid_t pid = p->pid;
	char how[96];

	p->pid = 0;
	if (by_us) {
		S->f.kills++;
		S->f.kills_by_role[p->role]++;
		post_mortem(S, p);
		if (pipe_end) {
			if (!S->pipe_closing) {
				S->pipe_closing = true;
				S->pipe_closing_since = now_ns();
			}
		} else if (!S->ending || p->role == T_CONSUMER) {
			/* At the end only consumers come back: someone must drain the queue. */
			if (torture_spawn(S, p) == 0)
				S->f.restarts++;
		}
	} else if (pipe_end && WIFEXITED(status) && WEXITSTATUS(status) == T_EXIT_PEER_GONE &&
		   (S->pipe_closing || S->ending)) {
		if (S->pipe_closing) {
			int64_t dt = now_ns() - S->pipe_closing_since;
			S->f.pipe_eofs++;
			if (dt > S->f.pipe_eof_max_ns)
				S->f.pipe_eof_max_ns = dt;
		}
	} else if (S->ending && WIFEXITED(status) && WEXITSTATUS(status) == T_EXIT_OK) {
		/* finished as asked */
	} else if (!caught) {
		describe_status(how, sizeof(how), status);
		failure(S, "%s #%u (pid %d) %s", role_name[p->role], p->id, (int)pid, how);
	}
	if (pipe_end && !pipe_running(S) && S->ctx.pipe) {
		torture_pipe_finish(S);
		if (!S->ending && !S->failures && torture_pipe_start(S) == 0)
			S->f.restarts += 2;
	}
}

static void reap(struct sup *S)
{
	struct part *p;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((p = find_part(S, pid))) {
			p->pid = pid; /* for the message */
			exited(S, p, status);
		}
	}
}

static bool killable(struct sup *S, struct part *p)
{
	int i;

	if (!p->pid || p->killed || p->paused_until)
		return false;
	if (p->role != T_PINGER && p->role != T_ECHOER)
		return true;
	if (S->pipe_closing)
		return false; /* the survivor must see EOF on its own */
	/* An end that dies before attaching was never there: its peer waits for it as for a
	 * process that has not come yet, not for a dead one. Kill ends only once both are in. */
	for (i = 0; i < S->nparts; i++)
		if ((S->part[i].role == T_PINGER || S->part[i].role == T_ECHOER) &&
		    !atomic_load(&S->b->slot[S->part[i].slot].ready))
			return false;
	return true;
}

/* Is pid on a CPU or ready for one (not asleep in a wait)? */
static bool on_cpu(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'R';
}

/* A random victim, producers and consumers most often. Most kills go to a process that is
 * running rather than asleep in a wait, so they land inside claims, copies and critical
 * sections as often as those are where the time goes. */
static struct part *pick(struct sup *S, bool pausable_only)
{
	static const unsigned weight[T_NROLES] = { 35, 30, 25, 5, 5 };
	struct part *p;
	unsigned r, role;
	int tries, i, n, k;

	for (tries = 0; tries < 64; tries++) {
		r = (unsigned)(t_rand(&S->rng) % 100);
		for (role = 0; role < T_NROLES - 1 && r >= weight[role]; role++)
			r -= weight[role];
		if (pausable_only && role != T_PRODUCER && role != T_CONSUMER)
			continue;
		for (i = 0, n = 0; i < S->nparts; i++)
			n += S->part[i].role == role;
		if (!n)
			continue;
		k = (int)(t_rand(&S->rng) % (uint64_t)n);
		for (i = 0; i < S->nparts; i++) {
			if (S->part[i].role != role || k--)
				continue;
			p = &S->part[i];
			if (killable(S, p) && (tries >= 48 || pausable_only || on_cpu(p->pid)))
				return p;
			break;
		}
	}
	return NULL;
}

static void strike(struct sup *S)
{
	struct part *p;

	/* One event in ten is a pause: long enough for waiters to look for dead peers. */
	if (t_rand(&S->rng) % 10 == 0 && (p = pick(S, true))) {
		if (kill(p->pid, SIGSTOP) == 0) {
			p->paused_until = now_ns() + (100 + (int64_t)(t_rand(&S->rng) % 200)) * MS;
			S->f.pauses++;
		}
		return;
	}
	if ((p = pick(S, false)) && kill(p->pid, SIGKILL) == 0)
		p->killed = true;
}

static void resume_paused(struct sup *S, bool all)
{
	int64_t now = now_ns();
	int i;

	for (i = 0; i < S->nparts; i++) {
		struct part *p = &S->part[i];
		if (p->paused_until && (all || now >= p->paused_until)) {
			if (p->pid)
				kill(p->pid, SIGCONT);
			p->paused_until = 0;
		}
	}
}

static int running(struct sup *S)
{
	int i, n = 0;

	for (i = 0; i < S->nparts; i++)
		n += S->part[i].pid != 0;
	return n;
}

void torture_kill_all(struct sup *S)
{
	int i, status;

	for (i = 0; i < S->nparts; i++) {
		struct part *p = &S->part[i];
		if (!p->pid)
			continue;
		kill(p->pid, SIGKILL);
		kill(p->pid, SIGCONT);
		while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* The run                                                                                    */


/* The status line of a run on a terminal: elapsed, kills, messages delivered (each is checked
 * at the end); NULL clears it. */
static void progress(const struct opts *o, const struct sup *S, int64_t elapsed)
{
	if (!o->progress)
		return;
	fputs("\r\033[K", stderr);
	if (S)
		fprintf(stderr, "shmkit torture: %.0f/%.0f s, %llu/%llu kills, %llu messages "
			"delivered", (double)elapsed / NS, (double)o->seconds_ns / NS,
			(unsigned long long)S->f.kills, (unsigned long long)o->kills,
			(unsigned long long)atomic_load(&S->b->got));
	fflush(stderr);
}

/* Watch for progress: a counter that stands still for the stall limit is a stall. */
struct watch {
	const char *what;
	_Atomic uint64_t *counter;
	uint64_t last;
	int64_t since;
};

void torture_run(struct sup *S, const struct opts *o)
{
	struct watch w[] = {
		{ "no message was delivered", &S->b->got, 0, 0 },
		{ "no Lock update completed", &S->b->lk_confirmed, 0, 0 },
	};
	int64_t t0 = now_ns(), now, end = t0 + o->seconds_ns, next, interval, limit, shown = 0;
	size_t i;

	interval = o->kills ? o->seconds_ns / (int64_t)o->kills : INT64_MAX / 4;
	limit = end + (o->seconds_ns > 30 * NS ? o->seconds_ns : 30 * NS);
	next = t0 + (int64_t)(t_rand(&S->rng) % (uint64_t)(2 * interval + 1));
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		w[i].since = t0;
	while (!caught && !S->failures) {
		reap(S);
		now = now_ns();
		resume_paused(S, false);
		if (now >= end && S->f.kills >= o->kills)
			break;
		if (now >= limit) {
			failure(S, "only %llu of %llu kills were made in time",
				(unsigned long long)S->f.kills, (unsigned long long)o->kills);
			break;
		}
		if (now >= next) {
			strike(S);
			next = now + (int64_t)(t_rand(&S->rng) % (uint64_t)(2 * interval + 1));
		}
		for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
			uint64_t c = atomic_load(w[i].counter);
			if (c != w[i].last || atomic_load(&S->b->gids_exhausted)) {
				w[i].last = c;
				w[i].since = now;
			} else if (now - w[i].since > o->stall_ns) {
				failure(S, "stall: %s for %.1f s", w[i].what,
					(double)(now - w[i].since) / NS);
				w[i].since = now;
			}
		}
		if (S->pipe_closing && pipe_running(S) && now - S->pipe_closing_since > o->stall_ns)
			failure(S, "stall: a pipe end did not see EOF %.1f s after its peer died",
				(double)(now - S->pipe_closing_since) / NS);
		now = now_ns();
		if (now - shown >= 500 * MS) {
			progress(o, S, now - t0);
			shown = now;
		}
		nap_ms(next - now > 2 * MS ? 2 : next > now ? (next - now) / MS + 1 : 1);
	}
	progress(o, NULL, 0);
	S->f.elapsed = (double)(now_ns() - t0) / NS;
}

/* Kill the producers, let go of the queue, and let the consumers drain it to EOF. */
void torture_finish(struct sup *S, const struct opts *o)
{
	int64_t deadline;
	int i, rc;

	S->ending = true;
	resume_paused(S, true);
	atomic_store(&S->b->stop, 1);
	for (i = 0; i < S->nparts; i++) {
		struct part *p = &S->part[i];
		if (p->role == T_PRODUCER && p->pid && !p->killed && kill(p->pid, SIGKILL) == 0)
			p->killed = true;
	}
	/* Dead producers count as detached once reaped, so this is the last writer. */
	if ((rc = shmkit_queue_detach_writer(S->q)))
		failure(S, "detach writer: %s", shmkit_strerror(rc));
	deadline = now_ns() + o->stall_ns + 5 * NS;
	while (running(S) && !caught) {
		reap(S);
		if (now_ns() > deadline) {
			failure(S, "stall: %d participants still running %.1f s after the end "
				   "(no EOF?)",
				running(S), (double)(o->stall_ns + 5 * NS) / NS);
			break;
		}
		nap_ms(2);
	}
	torture_kill_all(S);
	if (S->ctx.pipe)
		torture_pipe_finish(S);
}

