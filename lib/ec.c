/*
 * The eventcount's updates; see ec.h for the fields, the invariant P <= W and the ordering.
 * Every update is one seq_cst CAS loop on the word, so the fields change together.
 */
#include "config.h"

#include <limits.h>

#include "ec.h"

static inline uint32_t ec_make(uint32_t v, uint32_t w, uint32_t p)
{
	return (v & ~(EC_FIELD | EC_FIELD << 15)) | w | p << 15;
}

static inline bool ec_cas(_Atomic uint32_t *word, uint32_t *v, uint32_t nv)
{
	return atomic_compare_exchange_weak_explicit(word, v, nv, memory_order_seq_cst,
						     memory_order_relaxed);
}

uint32_t shmkit__ec_wake_n(_Atomic uint32_t *word, uint32_t n)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), give, nv;

	do {
		give = shmkit__ec_w(v) > shmkit__ec_p(v) ? shmkit__ec_w(v) - shmkit__ec_p(v) : 0;
		if (give > n)
			give = n;
		if (!give)
			return 0;
		nv = ec_make(v, shmkit__ec_w(v), shmkit__ec_p(v) + give);
	} while (!ec_cas(word, &v, nv));
	shmkit__futex_wake(word, give >= EC_FIELD ? INT_MAX : (int)give);
	return give;
}

uint32_t shmkit__ec_arm(_Atomic uint32_t *word)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), nv;

	do {
		if (shmkit__ec_w(v) == EC_FIELD)
			return v; /* 32767 waiters on one word: sleep unarmed, slices catch up */
		nv = v + EC_W_ONE;
	} while (!ec_cas(word, &v, nv));
	return nv;
}

uint32_t shmkit__ec_absorb(_Atomic uint32_t *word)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), nv;

	do {
		nv = shmkit__ec_p(v) ? v - EC_P_ONE : v;
	} while (!ec_cas(word, &v, nv));
	return nv;
}

void shmkit__ec_leave(_Atomic uint32_t *word, bool absorb)
{
	uint32_t v = atomic_load_explicit(word, memory_order_relaxed), nv, w, p;

	do {
		w = shmkit__ec_w(v);
		p = shmkit__ec_p(v);
		if (absorb && p)
			p--;
		if (w)
			w--;
		if (p > w)
			p = w;
		nv = ec_make(v, w, p);
	} while (!ec_cas(word, &v, nv));
}
