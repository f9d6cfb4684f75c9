/*
 * Event (multiprocessing.Event): a flag that processes wait for.
 *
 * Everything lives in one 32-bit futex word:
 *   bit 0       the flag
 *   bit 1       "someone may be sleeping": set by a waiter before it sleeps, cleared by set()
 *   bits 2..31  how many times the flag went from clear to set (the pulse number)
 *
 * Why this cannot lose a wake-up: the flag and the sleepers' mark are the same word and change
 * only through atomic read-modify-writes on it. A waiter marks the word and sleeps on exactly
 * the value it marked, which the kernel compares under its own lock. set() swaps in a new value
 * and wakes only if the value it replaced carried the mark. Either set's swap comes after the
 * mark (set sees it and wakes; a waiter not yet asleep finds the word changed and does not
 * sleep) or before it (the waiter's compare-and-swap fails on the changed word and it sees the
 * flag). Because there is no separate waiter counter, no fence is needed between publishing the
 * flag and deciding whether to wake.
 *
 * A waiter killed while asleep leaves at most the mark behind, which costs the next set() one
 * wake syscall; the kernel drops dead sleepers itself, so set() never waits for anyone.
 *
 * The pulse number lets a waiter that slept through a set() followed at once by a clear()
 * return 0 anyway, as threading.Event's waiters do: it was set while they waited.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "kinds.h"
#include "lease.h"
#include "notify.h"
#include "proc.h"
#include "region.h"
#include "wait.h"

#define EV_SET 1u
#define EV_SLEEPERS 2u
#define EV_PULSE 4u
#define EV_PULSE_MASK (~(EV_SET | EV_SLEEPERS))

/* Seats: only handles that ask for a pollable descriptor take one (its bit in fd_armed and its
 * socket's path are the seat's). */
#define EVENT_SEATS 64u

struct event_region {
	struct shmkit__hdr hdr;
	_Alignas(SHMKIT__CACHELINE) _Atomic uint32_t word; /* futex word, see above */
	/* Seats whose pollable descriptor waits for the next set() (bit k: seat k). Set by the
	 * waiter before it looks at word (seq_cst), read by set() after its exchange (seq_cst):
	 * either set() sees the bit, or the waiter sees the flag. */
	_Atomic uint64_t fd_armed;
};

struct shmkit_event {
	struct shmkit__region r;
	_Atomic uint32_t *word;
	_Atomic uint64_t *fd_armed;
	/* Event handles may be shared by threads: fd_mu orders the making and dropping of the
	 * descriptor; once made, its fields only are read. */
	pthread_mutex_t fd_mu;
	_Atomic bool has_fd; /* shmkit_event_fd made `note` (in fork generation note.gen) */
	struct shmkit__notify note;
};

static void bind(struct shmkit_event *e)
{
	e->word = &((struct event_region *)e->r.hdr)->word;
	e->fd_armed = &((struct event_region *)e->r.hdr)->fd_armed;
	pthread_mutex_init(&e->fd_mu, NULL);
}

SHMKIT__API int shmkit_event_create(const char *name, unsigned mode, shmkit_event **out)
{
	struct shmkit_event *e;
	int err;

	if (!out)
		return -EINVAL;
	if (!(e = shmkit__handle_new(sizeof(*e))))
		return -ENOMEM;
	err = shmkit__region_create(name, SHMKIT_KIND_EVENT, 0, sizeof(struct event_region),
				    EVENT_SEATS, mode, &e->r);
	if (err) {
		free(e);
		return err;
	}
	bind(e);
	atomic_store_explicit(e->word, 0, memory_order_relaxed);
	atomic_store_explicit(e->fd_armed, 0, memory_order_relaxed);
	shmkit__region_ready(&e->r);
	*out = e;
	return 0;
}

/* An Event region has no parameters: only its size and flags can be wrong. */
static int event_region_ok(const struct shmkit__region *r)
{
	return r->hdr && r->hdr->kind == SHMKIT_KIND_EVENT &&
	       shmkit__obj_size_is(r, sizeof(struct event_region)) && r->hdr->flags == 0 && !r->lk;
}

static int check_region(const struct shmkit__region *r)
{
	return event_region_ok(r) ? 0 : -EBADMSG;
}

SHMKIT__API int shmkit_event_open(const char *name, shmkit_event **out)
{
	int err = shmkit__handle_open(name, SHMKIT_KIND_EVENT, sizeof(**out), check_region, out);

	if (!err)
		bind(*out);
	return err;
}

static bool fd_ours(const shmkit_event *e)
{
	return e->has_fd && e->note.gen == shmkit__fork_generation() && e->note.seat < EVENT_SEATS;
}

static void fd_drop(shmkit_event *e)
{
	if (!e->has_fd)
		return;
	if (fd_ours(e))
		shmkit__sc_fetch_and(e->fd_armed, ~(1ULL << e->note.seat));
	shmkit__notify_close(&e->note);
	e->has_fd = false;
}

static int event_fd(shmkit_event *e)
{
	int seat, rc;

	if (fd_ours(e))
		return e->note.epfd;
	fd_drop(e); /* a fork child's copy of its parent's */
	if ((seat = shmkit__seat_take(&e->r)) < 0)
		return seat; /* -ENOLCK also for an event made without seats */
	if (seat >= (int)EVENT_SEATS)
		return -EUSERS;
	if ((rc = shmkit__notify_open(&e->r, (uint32_t)seat, false, &e->note)))
		return rc;
	e->has_fd = true;
	/* Readable to begin with: the first is_set() that finds it clear arms it. */
	shmkit__notify_self(&e->note);
	return e->note.epfd;
}

SHMKIT__API int shmkit_event_fd(shmkit_event *e)
{
	int rc;

	if (!e)
		return -EINVAL;
	pthread_mutex_lock(&e->fd_mu);
	rc = event_fd(e);
	pthread_mutex_unlock(&e->fd_mu);
	return rc;
}

/* Wake every armed descriptor (after a set). */
static void wake_fds(shmkit_event *e)
{
	uint64_t bits;
	int b;

	if (!atomic_load_explicit(e->fd_armed, memory_order_seq_cst))
		return;
	bits = shmkit__sc_exchange(e->fd_armed, 0);
	while (bits) {
		b = __builtin_ctzll(bits);
		bits &= bits - 1;
		shmkit__notify_send(e->r.dev, e->r.ino, (uint32_t)b);
	}
}

SHMKIT__API int shmkit_event_close(shmkit_event *e)
{
	if (!e)
		return 0;
	shmkit__region_quiesce(&e->r, e->word);
	fd_drop(e);
	pthread_mutex_destroy(&e->fd_mu);
	shmkit__region_close(&e->r);
	free(e);
	return 0;
}

SHMKIT__API int shmkit_event_unlink(const char *name)
{
	shmkit__notify_reap_name(name); /* socket files of descriptors whose waiters died */
	return shmkit__region_unlink(name);
}

SHMKIT__API int shmkit_event_set(shmkit_event *e)
{
	uint32_t old = atomic_load_explicit(e->word, memory_order_relaxed), new;

	do {
		/* Sleepers only sleep on a clear word, and the set that made it set woke them. */
		if (old & EV_SET)
			return 0;
		new = ((old & EV_PULSE_MASK) + EV_PULSE) | EV_SET;
	} while (!atomic_compare_exchange_weak_explicit(e->word, &old, new, memory_order_seq_cst,
							 memory_order_relaxed));
	if (old & EV_SLEEPERS)
		shmkit__futex_wake(e->word, INT_MAX);
	wake_fds(e);
	return 0;
}

SHMKIT__API int shmkit_event_clear(shmkit_event *e)
{
	atomic_fetch_and_explicit(e->word, ~EV_SET, memory_order_seq_cst);
	return 0;
}

SHMKIT__API int shmkit_event_is_set(shmkit_event *e)
{
	if (atomic_load_explicit(e->word, memory_order_seq_cst) & EV_SET)
		return 1;
	if (shmkit__likely(!fd_ours(e)))
		return 0;
	/* Clear, and this handle polls a descriptor: empty it, arm it, look once more. */
	shmkit__notify_drain(&e->note);
	shmkit__sc_fetch_or(e->fd_armed, 1ULL << e->note.seat);
	return atomic_load_explicit(e->word, memory_order_seq_cst) & EV_SET ? 1 : 0;
}

static int event_wait_in(shmkit_event *e, int64_t deadline)
{
	uint32_t v = atomic_load_explicit(e->word, memory_order_acquire), pulse = v & EV_PULSE_MASK;
	int r = 0;

	for (;;) {
		if ((v & EV_SET) || (v & EV_PULSE_MASK) != pulse)
			return 0;
		if (r == -ETIMEDOUT)
			return -ETIMEDOUT;
		if (r < 0)
			return r;
		if (!(v & EV_SLEEPERS)) {
			/* A failed exchange reloads v: check it again before sleeping. */
			if (!atomic_compare_exchange_weak_explicit(e->word, &v, v | EV_SLEEPERS,
								   memory_order_seq_cst,
								   memory_order_acquire))
				continue;
			v |= EV_SLEEPERS;
		}
		/* Returns 0 on a wake, a changed word or a signal: the loop rechecks with the
		 * same deadline. */
		r = shmkit__futex_wait(e->word, v, deadline);
		if (shmkit__closing(&e->r))
			return -EBADF; /* the handle is being closed under us */
		v = atomic_load_explicit(e->word, memory_order_acquire);
	}
}

static int event_wait(shmkit_event *e, int64_t deadline)
{
	int rc;

	if (!shmkit__sleep_begin(&e->r))
		return -EBADF;
	rc = event_wait_in(e, deadline);
	shmkit__sleep_end(&e->r);
	return rc;
}

SHMKIT__API int shmkit_event_wait(shmkit_event *e)
{
	return event_wait(e, SHMKIT__FOREVER);
}

SHMKIT__API int shmkit_event_wait_try(shmkit_event *e)
{
	return shmkit_event_is_set(e) ? 0 : -EAGAIN;
}

SHMKIT__API int shmkit_event_wait_timeout(shmkit_event *e, int64_t timeout_ns)
{
	int64_t deadline;
	int rc = shmkit__timeout_deadline(timeout_ns, &deadline);

	if (rc)
		return rc;
	/* A zero timeout only looks: no need to mark the word for a sleep that will not happen. */
	return shmkit__timed(deadline ? event_wait(e, deadline) : shmkit_event_wait_try(e));
}

int shmkit__event_info(const struct shmkit__region *r, struct shmkit_info *info)
{
	const struct event_region *er;

	if (!r || !info || !event_region_ok(r))
		return -EBADMSG;
	er = (const struct event_region *)r->hdr;
	info->value = atomic_load_explicit(&er->word, memory_order_relaxed) & EV_SET ? 1 : 0;
	return 0;
}
