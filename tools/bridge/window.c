/*
 * The sending bridge's window: the messages it took from the local queue that the receiver has
 * not acknowledged yet, in sequence order, at most `cap` of them. Sequence number s lives in
 * slot s % cap. Buffers grow to the largest message a slot has held and are kept, so a steady
 * stream allocates nothing.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "bridge/bridge.h"

int bridge_window_init(struct bridge_window *w, unsigned cap, uint64_t base)
{
	w->slot = calloc(cap, sizeof(*w->slot));
	if (!w->slot)
		return -ENOMEM;
	w->cap = cap;
	w->acked = w->last = w->sent = base;
	return 0;
}

void bridge_window_free(struct bridge_window *w)
{
	unsigned i;

	for (i = 0; w->slot && i < w->cap; i++)
		free(w->slot[i].data);
	free(w->slot);
	w->slot = NULL;
}

unsigned char *bridge_window_reserve(struct bridge_window *w, uint32_t len)
{
	struct bridge_slot *s = &w->slot[(w->last + 1) % w->cap];
	unsigned char *p;

	if (s->size < len || !s->data) {
		if (!(p = realloc(s->data, len ? len : 1)))
			return NULL;
		s->data = p;
		s->size = len;
	}
	return s->data;
}

void bridge_window_push(struct bridge_window *w, uint32_t len)
{
	w->slot[(w->last + 1) % w->cap].len = len;
	w->last++;
}

const struct bridge_slot *bridge_window_at(const struct bridge_window *w, uint64_t seq)
{
	return &w->slot[seq % w->cap];
}

bool bridge_window_ack(struct bridge_window *w, uint64_t upto)
{
	if (upto > w->last)
		return false;
	if (upto > w->acked)
		w->acked = upto;
	if (w->sent < w->acked)
		w->sent = w->acked;
	return true;
}
