/*
 * An eventcount on one futex word: how the ring's waiters sleep and its wakers decide whether
 * a system call is owed (after Concurrency Kit's ck_ec). Private to the library.
 *
 * The word holds three fields:
 *
 *   bits 0..14   W: waiters armed on the word (they may be asleep in the kernel)
 *   bits 15..29  P: wake-ups handed out that no waiter has taken in yet
 *   bit  30      EC_FD: an owner-defined flag (the ring: some handle armed its pollable
 *                descriptor); the eventcount only carries it
 *
 * Invariant: P <= W. A waiter adds itself to W (shmkit__ec_arm) before its last look at what
 * it waits for, then sleeps on the value it made. A waker that changed that state gives out
 * wake-ups only while W > P (shmkit__ec_wake_n): one per message (or per slot freed), each an
 * increment of P and a FUTEX_WAKE of one. So with 16 consumers asleep a message wakes one of
 * them, and a burst of puts towards a consumer that was woken but has not run yet costs one
 * wake-up: P already covers it and the other puts see W == P and make no system call. Every
 * waiter that comes back from the kernel (woken, timed out, interrupted, or because the word
 * changed) takes one wake-up in (shmkit__ec_absorb: P - 1, not below 0) before it looks again;
 * one that leaves takes itself out of W and keeps P <= W (shmkit__ec_leave). Taking in a
 * wake-up meant for another only makes P too small, which costs a spurious wake-up, never a
 * lost one: any change to the word also sends back every waiter about to sleep on the old
 * value. A waiter that dies armed is taken out of W by whoever reaps it (shmkit__ec_leave
 * without absorbing); until then it costs at most one futile FUTEX_WAKE.
 *
 * Ordering: every update is a seq_cst RMW of the word. The waker's check
 * (shmkit__ec_wake_sleepers) is a light fence then a relaxed load (E1); the waiter, after
 * arming, runs the heavy fence (membarrier, wait.h) before its last look (E2). E1 establishes
 * a synchronizing edge with E2: either the waker sees the waiter in W, or the waiter's last
 * look sees what the waker published before E1.
 */
#ifndef SHMKIT_EC_H
#define SHMKIT_EC_H

#include "common.h"
#include "wait.h"

#define EC_FD (1u << 30)
#define EC_W_ONE 1u
#define EC_P_ONE (1u << 15)
#define EC_FIELD 0x7fffu

static inline uint32_t shmkit__ec_w(uint32_t v)
{
	return v & EC_FIELD;
}

static inline uint32_t shmkit__ec_p(uint32_t v)
{
	return (v >> 15) & EC_FIELD;
}

/* Arm: W + 1. Returns the value to sleep on. */
uint32_t shmkit__ec_arm(_Atomic uint32_t *word);
/* Back from the kernel and still armed: take one wake-up in. Returns the value to sleep on. */
uint32_t shmkit__ec_absorb(_Atomic uint32_t *word);
/* Disarm: W - 1, taking a wake-up in first when back from the kernel (absorb), P <= W after. */
void shmkit__ec_leave(_Atomic uint32_t *word, bool absorb);
/* Hand out up to n wake-ups (EC_FIELD: one to every armed waiter); returns how many. */
uint32_t shmkit__ec_wake_n(_Atomic uint32_t *word, uint32_t n);

/* Called when the word carries EC_FD (the owner clears it and does what it means). */
typedef void (*shmkit__ec_flag_fn)(void *arg, _Atomic uint32_t *word);

/* The waker's side after it changed the state waiters wait for: a system call only when an
 * armed waiter has no wake-up owed to it yet, or when EC_FD asks for `flag`. Up to n wake-ups,
 * or one to every armed waiter while *all_if is non-zero (the one that must run may be any). */
static inline void shmkit__ec_wake_sleepers(_Atomic uint32_t *word, uint32_t n,
					    _Atomic uint32_t *all_if, shmkit__ec_flag_fn flag,
					    void *arg)
{
	uint32_t v;

	/* E1: establishes a synchronizing edge with E2 (the waiter's heavy fence after arming). */
	shmkit__light_fence();
	v = atomic_load_explicit(word, memory_order_relaxed);
	if (shmkit__unlikely(shmkit__ec_w(v) > shmkit__ec_p(v) || (v & EC_FD))) {
		if (v & EC_FD)
			flag(arg, word);
		if (atomic_load_explicit(all_if, memory_order_relaxed))
			n = EC_FIELD;
		shmkit__ec_wake_n(word, n);
	}
}

#endif /* SHMKIT_EC_H */
