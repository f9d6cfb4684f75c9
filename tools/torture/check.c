/* `shmkit torture`: the bounds on what the library may have done, each one checked (see the
 * list in torture.c). */
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
/* Checks after the run                                                                       */

void torture_check_queue(struct sup *S)
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

void torture_check_lock(struct sup *S, int64_t stall_ns)
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

