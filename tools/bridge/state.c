/*
 * What a bridge keeps across its own death, in shmkit Arrays (shared memory outlives the
 * process; each cell store is one atomic store, so a SIGKILL never leaves half a number).
 *
 * Sender (default name: the source queue's + ".bridge-s"):
 *   cell 0 magic, 1 identity, 2 messages taken (the last sequence number given), 3 acked,
 *   4 losses counted in the source queue's stats.
 * Receiver (the far queue's + ".bridge-r"):
 *   the header cells (RH_*: magic, the keeper's pid, the end phase, what the keeper accounted
 *   for), then per sender its fields (RS_*, bridge.h).
 *
 * The running bridge holds the Array's own Lock for its whole life: a second bridge on the same
 * state is refused (-EBUSY) while the first lives, and takes over when it has died (the lock
 * comes back with SHMKIT_OWNER_DIED).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "bridge/bridge.h"

#define SSTATE_MAGIC 0x32424b53 /* "SKB2" */
#define RSTATE_MAGIC 0x32524b53 /* "SKR2" */
enum { SS_MAGIC, SS_ID, SS_GOT, SS_ACKED, SS_COUNTED, SS_CELLS };

int bridge_name(char *out, size_t n, const char *queue, const char *suffix)
{
	int len = snprintf(out, n, "%s%s", queue, suffix);

	if (len < 0 || (size_t)len >= n || (size_t)len > SHMKIT_NAME_MAX + 1)
		return -ENAMETOOLONG;
	return shmkit_name_check(out);
}

static int64_t cell(shmkit_array *a, size_t i)
{
	int64_t v = 0;

	shmkit_array_load(a, i, &v);
	return v;
}

/* Open or create an Array of `len` cells and take its lock. */
static int open_held(const char *name, size_t len, bool hold, shmkit_array **out, bool *created)
{
	shmkit_array *a = NULL;
	int rc, tries;

	*created = false;
	for (tries = 0; tries < 10; tries++) {
		rc = shmkit_array_create(name, len, 0600, &a);
		if (rc == 0) {
			*created = true;
			break;
		}
		if (rc != -EEXIST)
			return rc;
		rc = shmkit_array_open(name, &a);
		if (rc == 0)
			break;
		if (rc != -ENOENT) /* removed between the two: try again */
			return rc;
	}
	if (rc)
		return rc;
	if (shmkit_array_len(a) != len) {
		shmkit_array_close(a);
		return -EBADMSG;
	}
	if (hold) {
		rc = shmkit_lock_acquire_try(shmkit_array_lock(a));
		if (rc < 0) {
			shmkit_array_close(a);
			return rc == -EAGAIN ? -EBUSY : rc;
		}
	}
	*out = a;
	return 0;
}

static uint64_t new_id(void)
{
	uint64_t id = 0;

	while (id == 0 || (int64_t)id < 0) /* positive: it is stored in an int64 cell */
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			id = 0;
	return id;
}

int bridge_sstate_open(struct bridge_sstate *s, const char *name)
{
	bool created;
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	if ((rc = open_held(name, SS_CELLS, true, &s->a, &created)))
		return rc;
	if (cell(s->a, SS_MAGIC) == SSTATE_MAGIC && cell(s->a, SS_ID) > 0) {
		s->resumed = true;
		s->id = (uint64_t)cell(s->a, SS_ID);
		s->got = (uint64_t)cell(s->a, SS_GOT);
		s->acked = (uint64_t)cell(s->a, SS_ACKED);
		s->counted = (uint64_t)cell(s->a, SS_COUNTED);
		if (s->acked > s->got || cell(s->a, SS_GOT) < 0) {
			bridge_sstate_close(s);
			return -EBADMSG;
		}
		return 0;
	}
	/* New (or its creator died before the magic): a fresh identity, the magic last. */
	s->id = new_id();
	shmkit_array_store(s->a, SS_ID, (int64_t)s->id);
	shmkit_array_store(s->a, SS_GOT, 0);
	shmkit_array_store(s->a, SS_ACKED, 0);
	shmkit_array_store(s->a, SS_COUNTED, 0);
	shmkit_array_store(s->a, SS_MAGIC, SSTATE_MAGIC);
	return 0;
}

void bridge_sstate_got(struct bridge_sstate *s, uint64_t got)
{
	s->got = got;
	shmkit_array_store(s->a, SS_GOT, (int64_t)got);
}

void bridge_sstate_acked(struct bridge_sstate *s, uint64_t acked)
{
	s->acked = acked;
	shmkit_array_store(s->a, SS_ACKED, (int64_t)acked);
}

void bridge_sstate_counted(struct bridge_sstate *s, uint64_t counted)
{
	s->counted = counted;
	shmkit_array_store(s->a, SS_COUNTED, (int64_t)counted);
}

void bridge_sstate_remove(struct bridge_sstate *s)
{
	shmkit_array_unlink(s->name);
}

void bridge_sstate_close(struct bridge_sstate *s)
{
	if (s->a)
		shmkit_array_close(s->a); /* gives the lock up with the handle */
	s->a = NULL;
}

int bridge_rstate_open(struct bridge_rstate *s, const char *name, bool hold)
{
	bool created;
	int rc;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	if ((rc = open_held(name, RS_CELLS, hold, &s->a, &created)))
		return rc;
	if (cell(s->a, RH_MAGIC) != RSTATE_MAGIC) {
		/* Ours to fill only if we made it (or a maker died before finishing: all zero). */
		if (!created && cell(s->a, RH_MAGIC) != 0) {
			bridge_rstate_close(s);
			return -EBADMSG;
		}
		shmkit_array_store(s->a, RH_MAGIC, RSTATE_MAGIC);
	}
	return 0;
}

int bridge_rstate_slot(struct bridge_rstate *s, uint64_t id, bool add)
{
	int i, free_slot = -1;

	for (i = 0; i < BRIDGE_MAX_SENDERS; i++) {
		int64_t v = cell(s->a, RS_HDR + (size_t)i * RS_FIELDS + RS_ID);

		if ((uint64_t)v == id)
			return i;
		if (v == 0 && free_slot < 0)
			free_slot = i;
	}
	if (!add)
		return -ENOENT;
	if (free_slot < 0)
		return -ENOSPC;
	/* Fields first, identity last: a slot is in use once it names someone. */
	bridge_rstate_set(s, free_slot, RS_LAST, 0);
	bridge_rstate_set(s, free_slot, RS_EOF, 0);
	bridge_rstate_set(s, free_slot, RS_KEPT, 0);
	bridge_rstate_set(s, free_slot, RS_LOST, 0);
	bridge_rstate_set(s, free_slot, RS_SKIP_TO, 0);
	bridge_rstate_set(s, free_slot, RS_SKIP_LOST, 0);
	bridge_rstate_set(s, free_slot, RS_ID, (int64_t)id);
	return free_slot;
}

int64_t bridge_rstate_get(struct bridge_rstate *s, int slot, int field)
{
	return cell(s->a, RS_HDR + (size_t)slot * RS_FIELDS + (size_t)field);
}

void bridge_rstate_set(struct bridge_rstate *s, int slot, int field, int64_t v)
{
	shmkit_array_store(s->a, RS_HDR + (size_t)slot * RS_FIELDS + (size_t)field, v);
}

int64_t bridge_rstate_hdr(struct bridge_rstate *s, int c)
{
	return cell(s->a, (size_t)c);
}

void bridge_rstate_set_hdr(struct bridge_rstate *s, int c, int64_t v)
{
	shmkit_array_store(s->a, (size_t)c, v);
}

/*
 * A skip is three stores: SKIP_LOST (the new total), SKIP_TO (the intent, stored after the
 * value it refers to), LAST, LOST. Killed before LAST moved (SKIP_TO > LAST), nothing happened
 * yet: the next skip starts afresh from LAST and LOST as they are. Killed after LAST moved
 * and before LOST (SKIP_TO == LAST, LOST != SKIP_LOST): settle finishes it. So a loss is
 * added once, whatever the moment of the kill, and asking again for the same `to` adds nothing.
 */
void bridge_rstate_settle(struct bridge_rstate *s, int slot)
{
	int64_t to = bridge_rstate_get(s, slot, RS_SKIP_TO);

	if (to && to == bridge_rstate_get(s, slot, RS_LAST) &&
	    bridge_rstate_get(s, slot, RS_LOST) != bridge_rstate_get(s, slot, RS_SKIP_LOST))
		bridge_rstate_set(s, slot, RS_LOST, bridge_rstate_get(s, slot, RS_SKIP_LOST));
}

uint64_t bridge_rstate_skip(struct bridge_rstate *s, int slot, uint64_t to)
{
	uint64_t last, lost;

	bridge_rstate_settle(s, slot);
	last = (uint64_t)bridge_rstate_get(s, slot, RS_LAST);
	lost = (uint64_t)bridge_rstate_get(s, slot, RS_LOST);
	if (to <= last)
		return lost;
	bridge_rstate_set(s, slot, RS_SKIP_LOST, (int64_t)(lost + (to - last)));
	bridge_rstate_set(s, slot, RS_SKIP_TO, (int64_t)to);
	bridge_killpoint("skip-intent");
	bridge_rstate_set(s, slot, RS_LAST, (int64_t)to);
	bridge_killpoint("skip-moved");
	bridge_rstate_set(s, slot, RS_LOST, (int64_t)(lost + (to - last)));
	return lost + (to - last);
}

int bridge_rstate_all_eof(struct bridge_rstate *s)
{
	int i, known = 0;

	for (i = 0; i < BRIDGE_MAX_SENDERS; i++) {
		if (!bridge_rstate_get(s, i, RS_ID))
			continue;
		known++;
		if (!bridge_rstate_get(s, i, RS_EOF))
			return 0;
	}
	return known > 0;
}

void bridge_rstate_close(struct bridge_rstate *s)
{
	if (s->a)
		shmkit_array_close(s->a);
	s->a = NULL;
}
