/*
 * The operator's view of a receiver's senders: `senders NAME` lists them, `forget NAME ID`
 * makes the receiver stop waiting for one. A receiver ends once every sender it knows has
 * forwarded EOF; a sender that said hello and vanished (its host gone, its state removed)
 * would hold that end back forever, and fill the table (64 senders) if it kept happening.
 *
 * Forgetting sender ID: what the receiver staged of it is still delivered (the keeper is not
 * told); from then on its frames are refused ("forgotten"), so a sender still running exits 1,
 * and the messages it held unacknowledged (at most its window) stay undelivered and are NOT
 * counted in any queue's stats (its queue's stats count them only if it is restarted, which
 * the receiver refuses). It counts as ended for the end of the stream, and its table slot is
 * reused once everything it staged has been moved on.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"
#include "util.h"

static int open_state(const char *cmd, const char *queue, const char *state,
		      struct bridge_rstate *rs)
{
	char name[SHMKIT_NAME_MAX + 2];
	int rc;

	if (bridge_name(name, sizeof(name), state ? state : queue, state ? "" : ".bridge-r"))
		return usage_error(cmd, "'%s': name too long to add '.bridge-r'", queue);
	/* Opened, never created: an absent state is an error, not a new receiver. */
	if ((rc = shmkit_array_open(name, &rs->a)))
		return runtime_error(name, rc);
	snprintf(rs->name, sizeof(rs->name), "%s", name);
	if (shmkit_array_len(rs->a) != RS_CELLS || bridge_rstate_hdr(rs, RH_MAGIC) == 0) {
		shmkit_array_close(rs->a);
		return runtime_error(name, -EBADMSG);
	}
	return 0;
}

static const char *eof_word(int64_t v)
{
	return v == 2 ? "forgotten" : v == 1 ? "eof" : "open";
}

int bridge_senders(const char *queue, const char *state, bool json)
{
	struct bridge_rstate rs;
	int i, rc, n = 0;

	if ((rc = open_state("bridge senders", queue, state, &rs)))
		return rc;
	if (json)
		printf("[");
	else
		printf("%-20s %12s %12s %10s %s\n", "SENDER", "STAGED", "DELIVERED", "LOST", "STATE");
	for (i = 0; i < BRIDGE_MAX_SENDERS; i++) {
		int64_t id = bridge_rstate_get(&rs, i, RS_ID);

		if (!id)
			continue;
		if (json)
			printf("%s{\"sender\": \"%" PRIx64 "\", \"staged\": %" PRId64 ", \"delivered\": %" PRId64
			       ", \"lost\": %" PRId64 ", \"state\": \"%s\"}",
			       n ? ", " : "", (uint64_t)id, bridge_rstate_get(&rs, i, RS_LAST),
			       bridge_rstate_get(&rs, i, RS_KEPT), bridge_rstate_get(&rs, i, RS_LOST),
			       eof_word(bridge_rstate_get(&rs, i, RS_EOF)));
		else
			printf("%-20" PRIx64 " %12" PRId64 " %12" PRId64 " %10" PRId64 " %s\n",
			       (uint64_t)id, bridge_rstate_get(&rs, i, RS_LAST),
			       bridge_rstate_get(&rs, i, RS_KEPT), bridge_rstate_get(&rs, i, RS_LOST),
			       eof_word(bridge_rstate_get(&rs, i, RS_EOF)));
		n++;
	}
	if (json)
		printf("]\n");
	shmkit_array_close(rs.a);
	return 0;
}

int bridge_forget(const char *queue, const char *state, const char *idstr)
{
	const char *cmd = "bridge forget";
	struct bridge_rstate rs;
	uint64_t id;
	char *end;
	int slot, rc;

	errno = 0;
	id = strtoull(idstr, &end, 16);
	if (errno || *end || end == idstr || id == 0 || (int64_t)id < 0)
		return usage_error(cmd, "bad sender '%s' (its id as 'shmkit bridge senders' shows it)",
				   idstr);
	if ((rc = open_state(cmd, queue, state, &rs)))
		return rc;
	if ((slot = bridge_rstate_slot(&rs, id, false)) < 0) {
		shmkit_array_close(rs.a);
		fprintf(stderr, "shmkit: %s: %s: no sender %s\n", cmd, rs.name, idstr);
		return 1;
	}
	bridge_rstate_set(&rs, slot, RS_EOF, 2);
	printf("sender %" PRIx64 " forgotten: %" PRId64 " of its messages staged are delivered; it is "
	       "refused from now on, and what it still holds is not delivered\n",
	       id, bridge_rstate_get(&rs, slot, RS_LAST));
	shmkit_array_close(rs.a);
	return 0;
}
