/*
 * `shmkit torture`: SIGKILL random participants of a Queue, a Lock, a Value and a Pipe at
 * random moments, restart them, and check that nothing was lost, duplicated, torn or wedged.
 *
 * The supervisor (this file) forks producers and consumers over one named queue, lock workers
 * over a Lock-protected Array invariant and a Value's own Lock, and a pipe pair; then it kills
 * one of them every few tens of milliseconds, restarting each at once (a restarted producer is
 * a new producer, with a fresh id). Now and then it pauses one (SIGSTOP) instead: a paused
 * process is not dead and nothing of it may be reclaimed. At the end the producers are killed,
 * the supervisor lets go of the queue, and the consumers must drain it to EOF.
 *
 * What participants record on the board (torture.h) before each step a kill could cut in two
 * lets the supervisor bound what the library may have done, and every bound is checked:
 *  - every message a consumer took is whole, stamped by a real producer, in that producer's
 *    order, and taken once;
 *  - every message whose put returned was delivered, except at most the messages the queue
 *    counts as lost with a dead consumer (lost_dead_consumer); no message appears whose put
 *    neither returned nor was cut short by a kill;
 *  - the Lock's owner deaths, as the library counts them, match the holders killed; every
 *    acquisition after one returned SHMKIT_OWNER_DIED, and the invariant was never seen broken
 *    except as the half-done update of a dead holder, which was repaired;
 *  - the Value counted every locked add that returned, and at most the ones cut short;
 *  - a pipe end whose peer was killed saw EOF within the stall limit;
 *  - no wait anywhere lasted longer than the stall limit, and the queue reached EOF with every
 *    dead participant reaped.
 */
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

#include "torture.h"
#include "util.h"

#define NS 1000000000LL
#define MS 1000000LL

#define N_PRODUCERS 3
#define N_CONSUMERS 3
#define N_LOCKERS 3

#define QUICK_SECONDS 20
#define LONG_SECONDS 300
#define QUICK_RATE 15 /* kills per second by default */
#define LONG_RATE 20
#define STALL_SECONDS 15

static const char *const role_name[T_NROLES] = { "producer", "consumer", "lock worker",
						 "pipe end 0", "pipe end 1" };
static const char *const role_key[T_NROLES] = { "producers", "consumers", "lock_workers",
						"pipe_end0", "pipe_end1" };

struct part {
	enum t_role role;
	int slot;
	pid_t pid;      /* 0: not running */
	uint32_t id;    /* incarnation */
	bool killed;    /* we sent SIGKILL */
	int64_t paused_until; /* 0: running freely */
};

struct figures {
	uint64_t kills, kills_by_role[T_NROLES], restarts, pauses;
	/* queue */
	uint64_t prod_kills_attempting, cons_kills_getting, salvaged;
	uint64_t gids, acked, delivered, delivered_unacked, maybe_undelivered, never_put;
	uint64_t missing, phantom;
	struct shmkit_queue_stats st;
	/* Lock and Value */
	uint64_t lk_definite, lk_maybe, lk_maybe_acq, lk_owner_deaths, lk_od_seen, lk_repaired;
	int64_t cells;
	uint64_t lk_confirmed, val_maybe, val_owner_deaths, val_od_seen, val_confirmed;
	int64_t value;
	/* Pipe */
	uint64_t pipe_gens, pipe_eofs, pipe_trips;
	int64_t pipe_eof_max_ns;
	double elapsed;
};

struct sup {
	struct t_ctx ctx;
	struct t_board *b;
	struct part part[T_SLOTS];
	int nparts;
	shmkit_queue *q;
	shmkit_lock *l;
	shmkit_array *a;
	shmkit_value *v;
	char pname[64];
	unsigned pipe_gen;
	bool pipe_closing;
	int64_t pipe_closing_since;
	bool ending;
	pid_t self;
	uint32_t next_id;
	uint64_t rng;
	struct figures f;
	int failures;
};

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void failure(struct sup *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failure(struct sup *S, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shmkit: torture: FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	S->failures++;
}

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

static int spawn(struct sup *S, struct part *p)
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
static int pipe_start(struct sup *S)
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
			if (spawn(S, &S->part[i]))
				return -1;
	return 0;
}

static void pipe_finish(struct sup *S)
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
			if (spawn(S, p) == 0)
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
		pipe_finish(S);
		if (!S->ending && !S->failures && pipe_start(S) == 0)
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

static void kill_all(struct sup *S)
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

struct opts {
	int64_t seconds_ns;
	uint64_t kills;
	uint64_t seed;
	int64_t stall_ns;
	bool json, lng;
	bool progress; /* a status line on stderr, which is a terminal */
};

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

static void run(struct sup *S, const struct opts *o)
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
static void finish(struct sup *S, const struct opts *o)
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
	kill_all(S);
	if (S->ctx.pipe)
		pipe_finish(S);
}

/* ------------------------------------------------------------------------------------------ */
/* Checks after the run                                                                       */

static void check_queue(struct sup *S)
{
	struct figures *f = &S->f;
	struct t_board *b = S->b;
	unsigned char buf[T_MAX_MSG];
	uint64_t g, n;
	bool r, a, m;
	int rc;

	rc = shmkit_queue_get_try(S->q, buf, sizeof(buf));
	if (rc != -EPIPE)
		failure(S, "queue after the drain: get returned %d (%s), not EOF", rc,
			rc < 0 ? shmkit_strerror(rc) : "a message");
	if ((rc = shmkit_queue_stats(S->q, &f->st)))
		failure(S, "queue stats: %s", shmkit_strerror(rc));
	if (!f->st.eof || f->st.depth)
		failure(S, "queue after the drain: eof %d, depth %u", f->st.eof, f->st.depth);
	if (f->st.participants != 1)
		failure(S, "queue after the drain: %u participants registered, expected 1 (dead "
			   "ones not reaped?)",
			f->st.participants);
	n = atomic_load(&b->next_gid);
	f->gids = n < T_MAX_GIDS ? n : T_MAX_GIDS;
	for (g = 0; g < f->gids; g++) {
		r = t_bit(b->received, g);
		a = t_bit(b->acked, g);
		m = t_bit(b->maybe, g);
		f->acked += a;
		if (r) {
			f->delivered++;
			if (!a && m)
				f->delivered_unacked++;
			else if (!a)
				f->phantom++;
		} else if (a) {
			f->missing++;
		} else if (m) {
			f->maybe_undelivered++;
		} else {
			f->never_put++;
		}
	}
	if (f->phantom)
		failure(S, "%llu messages delivered whose put never returned and was not cut "
			   "short by a kill",
			(unsigned long long)f->phantom);
	if (f->missing > f->st.lost_dead_consumer)
		failure(S, "%llu acknowledged messages were never delivered, but only %llu are "
			   "counted as lost with dead consumers",
			(unsigned long long)f->missing,
			(unsigned long long)f->st.lost_dead_consumer);
	if (f->st.lost_dead_consumer > f->cons_kills_getting)
		failure(S, "%llu messages counted lost with dead consumers, but only %llu "
			   "consumers were killed inside get",
			(unsigned long long)f->st.lost_dead_consumer,
			(unsigned long long)f->cons_kills_getting);
	if (f->st.slots_reclaimed > f->prod_kills_attempting)
		failure(S, "%llu slots reclaimed, but only %llu producers were killed inside put",
			(unsigned long long)f->st.slots_reclaimed,
			(unsigned long long)f->prod_kills_attempting);
	if (f->st.participants_reaped >
	    f->kills_by_role[T_PRODUCER] + f->kills_by_role[T_CONSUMER])
		failure(S, "%llu participants reaped, more than the %llu producers and consumers "
			   "killed",
			(unsigned long long)f->st.participants_reaped,
			(unsigned long long)(f->kills_by_role[T_PRODUCER] +
					     f->kills_by_role[T_CONSUMER]));
}

static void check_lock(struct sup *S, int64_t stall_ns)
{
	struct figures *f = &S->f;
	struct shmkit_info info;
	shmkit_lock *vl = shmkit_value_lock(S->v);
	int64_t x0 = 0, x1 = 0;
	int rc;

	/* The last holder may have died too: acquire once more, as any process would. */
	rc = shmkit_lock_acquire_timeout(S->l, stall_ns);
	if (rc < 0) {
		failure(S, "final Lock acquire: %s", shmkit_strerror(rc));
		return;
	}
	shmkit_array_load(S->a, 0, &x0);
	shmkit_array_load(S->a, 1, &x1);
	if (rc == SHMKIT_OWNER_DIED) {
		atomic_fetch_add(&S->b->lk_od_seen, 1);
		if (x0 == x1 + 1) {
			shmkit_array_store(S->a, 1, x0);
			atomic_fetch_add(&S->b->lk_repaired, 1);
			x1 = x0;
		}
	}
	if (x0 != x1)
		failure(S, "Lock invariant broken at the end: cells %lld and %lld (acquire "
			   "returned %d)",
			(long long)x0, (long long)x1, rc);
	shmkit_lock_release(S->l);
	f->cells = x0;
	f->lk_od_seen = atomic_load(&S->b->lk_od_seen);
	f->lk_repaired = atomic_load(&S->b->lk_repaired);
	f->lk_confirmed = atomic_load(&S->b->lk_confirmed);
	if ((rc = shmkit_info(S->ctx.lname, &info)))
		failure(S, "info %s: %s", S->ctx.lname, shmkit_strerror(rc));
	f->lk_owner_deaths = info.owner_deaths;
	if (f->lk_owner_deaths < f->lk_definite ||
	    f->lk_owner_deaths > f->lk_definite + f->lk_maybe)
		failure(S, "the Lock counts %llu owner deaths, but %llu holders were killed "
			   "(and %llu more may have held it)",
			(unsigned long long)f->lk_owner_deaths, (unsigned long long)f->lk_definite,
			(unsigned long long)f->lk_maybe);
	if (f->lk_od_seen > f->lk_owner_deaths ||
	    f->lk_owner_deaths - f->lk_od_seen > f->lk_maybe_acq)
		failure(S, "SHMKIT_OWNER_DIED was returned %llu times for %llu owner deaths",
			(unsigned long long)f->lk_od_seen, (unsigned long long)f->lk_owner_deaths);
	if ((uint64_t)x0 < f->lk_confirmed ||
	    (uint64_t)x0 > f->lk_confirmed + f->kills_by_role[T_LOCKER])
		failure(S, "the Lock's cells count %lld updates, %llu were confirmed",
			(long long)x0, (unsigned long long)f->lk_confirmed);

	/* The Value, through its own Lock. */
	rc = shmkit_lock_acquire_timeout(vl, stall_ns);
	if (rc < 0) {
		failure(S, "final Value lock acquire: %s", shmkit_strerror(rc));
		return;
	}
	if (rc == SHMKIT_OWNER_DIED)
		atomic_fetch_add(&S->b->val_od_seen, 1);
	f->value = shmkit_value_load(S->v);
	shmkit_lock_release(vl);
	f->val_od_seen = atomic_load(&S->b->val_od_seen);
	f->val_confirmed = atomic_load(&S->b->val_confirmed);
	if ((rc = shmkit_info(S->ctx.vname, &info)))
		failure(S, "info %s: %s", S->ctx.vname, shmkit_strerror(rc));
	f->val_owner_deaths = info.owner_deaths;
	if ((uint64_t)f->value < f->val_confirmed ||
	    (uint64_t)f->value > f->val_confirmed + f->val_maybe)
		failure(S, "the Value is %lld after %llu locked adds returned and %llu were cut "
			   "short",
			(long long)f->value, (unsigned long long)f->val_confirmed,
			(unsigned long long)f->val_maybe);
	if (f->val_od_seen > f->val_owner_deaths || f->val_owner_deaths > f->val_maybe)
		failure(S, "the Value's Lock counts %llu owner deaths, %llu seen, %llu adds cut "
			   "short",
			(unsigned long long)f->val_owner_deaths, (unsigned long long)f->val_od_seen,
			(unsigned long long)f->val_maybe);
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                     */

static void report_text(const struct sup *S, const struct opts *o)
{
	const struct figures *f = &S->f;
	int r;

	printf("torture: %.1f s, seed %llu, %s\n", f->elapsed, (unsigned long long)o->seed,
	       S->failures ? "FAILED" : "all checks passed");
	printf("  kills survived          %llu (", (unsigned long long)f->kills);
	for (r = 0; r < T_NROLES; r++)
		printf("%s%s %llu", r ? ", " : "", role_name[r],
		       (unsigned long long)f->kills_by_role[r]);
	printf(")\n");
	printf("  restarts                %llu\n", (unsigned long long)f->restarts);
	printf("  pauses (SIGSTOP)        %llu\n", (unsigned long long)f->pauses);
	printf("  messages checked        %llu delivered whole, once, in order (%llu salvaged "
	       "from killed consumers)\n",
	       (unsigned long long)f->delivered, (unsigned long long)f->salvaged);
	printf("  puts acknowledged       %llu; %llu cut short by a kill (%llu of them "
	       "delivered)\n",
	       (unsigned long long)f->acked, (unsigned long long)f->prod_kills_attempting,
	       (unsigned long long)f->delivered_unacked);
	printf("  acknowledged, missing   %llu (allowed: lost with dead consumers)\n",
	       (unsigned long long)f->missing);
	printf("  slots reclaimed         %llu\n", (unsigned long long)f->st.slots_reclaimed);
	printf("  lost, dead consumers    %llu (%llu consumers killed inside get)\n",
	       (unsigned long long)f->st.lost_dead_consumer,
	       (unsigned long long)f->cons_kills_getting);
	printf("  participants reaped     %llu\n", (unsigned long long)f->st.participants_reaped);
	printf("  Lock owner deaths       %llu recovered (%llu holders killed for sure, "
	       "%llu half-done updates repaired)\n",
	       (unsigned long long)f->lk_owner_deaths, (unsigned long long)f->lk_definite,
	       (unsigned long long)f->lk_repaired);
	printf("  Lock updates            %lld\n", (long long)f->cells);
	printf("  Value owner deaths      %llu recovered; value %lld\n",
	       (unsigned long long)f->val_owner_deaths, (long long)f->value);
	printf("  pipe generations        %llu, %llu round trips, %llu EOFs after a peer's "
	       "death (slowest %.0f ms)\n",
	       (unsigned long long)f->pipe_gens, (unsigned long long)f->pipe_trips,
	       (unsigned long long)f->pipe_eofs, (double)f->pipe_eof_max_ns / MS);
}

static void report_json(const struct sup *S, const struct opts *o)
{
	const struct figures *f = &S->f;
	int r;

	printf("{\"ok\": %s, \"seconds\": %.3f, \"seed\": %llu, \"failures\": %d, "
	       "\"kills\": %llu, \"kills_by_role\": {",
	       S->failures ? "false" : "true", f->elapsed, (unsigned long long)o->seed,
	       S->failures, (unsigned long long)f->kills);
	for (r = 0; r < T_NROLES; r++)
		printf("%s\"%s\": %llu", r ? ", " : "", role_key[r],
		       (unsigned long long)f->kills_by_role[r]);
	printf("}, \"restarts\": %llu, \"pauses\": %llu, \"messages_checked\": %llu, "
	       "\"salvaged\": %llu, \"puts_acknowledged\": %llu, \"puts_cut_short\": %llu, "
	       "\"delivered_unacknowledged\": %llu, \"acknowledged_missing\": %llu, "
	       "\"slots_reclaimed\": %llu, \"lost_dead_consumer\": %llu, "
	       "\"consumers_killed_in_get\": %llu, \"participants_reaped\": %llu, "
	       "\"lock_owner_deaths\": %llu, \"lock_owner_died_seen\": %llu, "
	       "\"lock_holders_killed\": %llu, \"half_updates_repaired\": %llu, "
	       "\"lock_updates\": %lld, \"value_owner_deaths\": %llu, \"value\": %lld, "
	       "\"pipe_generations\": %llu, \"pipe_round_trips\": %llu, \"pipe_eofs\": %llu, "
	       "\"pipe_eof_max_ms\": %.1f}\n",
	       (unsigned long long)f->restarts, (unsigned long long)f->pauses,
	       (unsigned long long)f->delivered, (unsigned long long)f->salvaged,
	       (unsigned long long)f->acked, (unsigned long long)f->prod_kills_attempting,
	       (unsigned long long)f->delivered_unacked, (unsigned long long)f->missing,
	       (unsigned long long)f->st.slots_reclaimed,
	       (unsigned long long)f->st.lost_dead_consumer,
	       (unsigned long long)f->cons_kills_getting,
	       (unsigned long long)f->st.participants_reaped,
	       (unsigned long long)f->lk_owner_deaths, (unsigned long long)f->lk_od_seen,
	       (unsigned long long)f->lk_definite, (unsigned long long)f->lk_repaired,
	       (long long)f->cells, (unsigned long long)f->val_owner_deaths, (long long)f->value,
	       (unsigned long long)f->pipe_gens, (unsigned long long)f->pipe_trips,
	       (unsigned long long)f->pipe_eofs, (double)f->pipe_eof_max_ns / MS);
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up and command line                                                                    */

static int setup(struct sup *S)
{
	struct shmkit_queue_attr qa = { .capacity = T_QUEUE_CAP, .max_size = T_MAX_MSG,
					.mode = 0600 };
	int rc;

	S->b = mmap(NULL, sizeof(*S->b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		    0);
	if (S->b == MAP_FAILED) {
		S->b = NULL;
		return runtime_error("board", -errno);
	}
	S->ctx.b = S->b;
	snprintf(S->ctx.qname, sizeof(S->ctx.qname), "/shmkit-torture-%d-queue", (int)S->self);
	snprintf(S->ctx.lname, sizeof(S->ctx.lname), "/shmkit-torture-%d-lock", (int)S->self);
	snprintf(S->ctx.aname, sizeof(S->ctx.aname), "/shmkit-torture-%d-cells", (int)S->self);
	snprintf(S->ctx.vname, sizeof(S->ctx.vname), "/shmkit-torture-%d-value", (int)S->self);
	if ((rc = shmkit_queue_create(S->ctx.qname, &qa, &S->q)))
		return runtime_error(S->ctx.qname, rc);
	if ((rc = shmkit_lock_create(S->ctx.lname, 0, 0600, &S->l)))
		return runtime_error(S->ctx.lname, rc);
	if ((rc = shmkit_array_create(S->ctx.aname, 2, 0600, &S->a)))
		return runtime_error(S->ctx.aname, rc);
	if ((rc = shmkit_value_create(S->ctx.vname, 0, 0600, &S->v)))
		return runtime_error(S->ctx.vname, rc);
	/* The supervisor stays a writer until the end, so the queue reaches EOF only when it
	 * lets go, however many producers are dead at a given moment. */
	if ((rc = shmkit_queue_attach_writer(S->q)))
		return runtime_error("attach writer", rc);
	return 0;
}

static void teardown(struct sup *S)
{
	kill_all(S);
	if (S->ctx.pipe)
		pipe_finish(S);
	shmkit_queue_close(S->q);
	shmkit_lock_close(S->l);
	shmkit_array_close(S->a);
	shmkit_value_close(S->v);
	if (S->ctx.qname[0]) {
		shmkit_queue_unlink(S->ctx.qname);
		shmkit_lock_unlink(S->ctx.lname);
		shmkit_array_unlink(S->ctx.aname);
		shmkit_value_unlink(S->ctx.vname);
	}
	if (S->b)
		munmap(S->b, sizeof(*S->b));
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shmkit torture [--seconds S] [--kills N] [--long] [--seed N] [--json]\n"
		"SIGKILL random producers, consumers, lock holders and pipe ends at random "
		"moments,\nrestart them, and check that nothing was lost, duplicated, torn or "
		"wedged.\n\n"
		"  -s, --seconds S   run for S seconds (default %d; %d with --long)\n"
		"  -k, --kills N     kill N participants (default %d a second of the run, %d "
		"with --long)\n"
		"  -l, --long        the long run: %d s, thousands of kills\n"
		"      --seed N      seed the choice of victims and moments (default: from the "
		"clock)\n"
		"      --stall S     any wait longer than S seconds fails the run (default %d)\n"
		"  -j, --json        print the figures as one JSON object\n"
		"  -h, --help        this text\n\n"
		"Exit status: 0 when every check passed, 1 when one failed, 2 on a usage error.\n",
		QUICK_SECONDS, LONG_SECONDS, QUICK_RATE, LONG_RATE, LONG_SECONDS, STALL_SECONDS);
}

int cmd_torture(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "kills", required_argument, NULL, 'k' },
		{ "long", no_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 'S' },
		{ "stall", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct opts o = { .seconds_ns = -1, .stall_ns = STALL_SECONDS * NS };
	bool have_kills = false, have_seed = false;
	static struct sup sup;
	struct sup *S = &sup;
	struct sigaction sa;
	int opt, i, status;
	int64_t stall;

	optind = 1;
	while ((opt = getopt_long(argc, argv, ":s:k:ljh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (!parse_seconds(optarg, &o.seconds_ns) || o.seconds_ns < MS ||
			    o.seconds_ns > 100000 * NS)
				return usage_error("torture", "bad --seconds '%s'", optarg);
			break;
		case 'k':
			if (!parse_u64(optarg, 0, 500000, &o.kills))
				return usage_error("torture", "bad --kills '%s' (0..500000)",
						   optarg);
			have_kills = true;
			break;
		case 'l':
			o.lng = true;
			break;
		case 'S':
			if (!parse_u64(optarg, 0, UINT64_MAX, &o.seed))
				return usage_error("torture", "bad --seed '%s'", optarg);
			have_seed = true;
			break;
		case 'T':
			if (!parse_seconds(optarg, &stall) || stall < NS / 10)
				return usage_error("torture", "bad --stall '%s'", optarg);
			o.stall_ns = stall;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option("torture", opt, argv);
		}
	}
	if (optind < argc)
		return usage_error("torture", "unexpected argument '%s'", argv[optind]);
	if (o.seconds_ns < 0)
		o.seconds_ns = (int64_t)(o.lng ? LONG_SECONDS : QUICK_SECONDS) * NS;
	if (!have_kills)
		o.kills = (uint64_t)((double)o.seconds_ns / NS * (o.lng ? LONG_RATE : QUICK_RATE));
	if (!have_seed)
		o.seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);

	memset(S, 0, sizeof(*S));
	S->self = getpid();
	S->rng = o.seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
	if (!S->rng)
		S->rng = 1;
	S->ctx.stall_ns = o.stall_ns;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, NULL);

	if (setup(S)) {
		teardown(S);
		return 1;
	}
	for (i = 0; i < N_PRODUCERS; i++)
		S->part[S->nparts++] = (struct part){ .role = T_PRODUCER };
	for (i = 0; i < N_CONSUMERS; i++)
		S->part[S->nparts++] = (struct part){ .role = T_CONSUMER };
	for (i = 0; i < N_LOCKERS; i++)
		S->part[S->nparts++] = (struct part){ .role = T_LOCKER };
	S->part[S->nparts++] = (struct part){ .role = T_PINGER };
	S->part[S->nparts++] = (struct part){ .role = T_ECHOER };
	for (i = 0; i < S->nparts; i++) {
		struct part *p = &S->part[i];
		p->slot = i;
		if (p->role != T_PINGER && p->role != T_ECHOER && spawn(S, p))
			break;
	}
	if (!S->failures)
		pipe_start(S);

	o.progress = isatty(STDERR_FILENO);
	if (!S->failures)
		run(S, &o);
	finish(S, &o);
	S->f.pipe_trips = atomic_load(&S->b->pipe_trips);
	if (!caught) {
		check_queue(S);
		check_lock(S, o.stall_ns);
	}
	teardown(S);
	if (caught) {
		fprintf(stderr, "shmkit: torture: interrupted by signal %d\n", (int)caught);
		signal(caught, SIG_DFL);
		raise(caught);
		return 128 + caught;
	}
	while (waitpid(-1, &status, WNOHANG) > 0)
		;
	if (o.json)
		report_json(S, &o);
	else
		report_text(S, &o);
	return S->failures ? 1 : 0;
}
