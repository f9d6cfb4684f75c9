/* `shmkit torture`: the figures of a run, as text or JSON. */
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
/* Report                                                                                     */

void torture_report_text(const struct sup *S, const struct opts *o)
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

void torture_report_json(const struct sup *S, const struct opts *o)
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

