/* Shared by the files of the _shmkit extension: error mapping, timeouts, blocking in slices. */
#ifndef SHMKIT_PY_COMMON_H
#define SHMKIT_PY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>

#include "shmkit.h"

/* Python 3.8 has these under their provisional names (3.9 made them public). */
#if PY_VERSION_HEX < 0x03090000
#define PyObject_Vectorcall _PyObject_Vectorcall
static inline PyObject *PyObject_CallOneArg(PyObject *f, PyObject *arg)
{
	return _PyObject_Vectorcall(f, &arg, 1, NULL);
}
#endif

/* A Python exception is already set (a signal handler raised, a callback failed). */
#define SK_PYERR (-1000000)
/* How long one blocking call sleeps with the GIL released before it looks at signals: the
 * bound on how late Ctrl-C is noticed (no wake-up is ever missed). Longer than the library's
 * own 100 ms look for dead peers, which a waiter makes only once a slice of its has passed:
 * shorter slices would never let it look, and a dead peer's EOF would wait. */
#define SK_SLICE_NS (250 * 1000000LL)

extern PyObject *sk_DeadlockError, *sk_WrongKindError, *sk_OwnerDiedWarning;
extern PyObject *sk_Empty, *sk_Full, *sk_BrokenBarrierError;
extern PyObject *sk_dumps, *sk_loads; /* pickle.dumps / pickle.loads */

extern PyTypeObject sk_LockType, sk_SemType, sk_EventType, sk_CondType, sk_BarrierType;
extern PyTypeObject sk_BlockType, sk_QueueType, sk_ConnType, sk_CValueType, sk_SyncValueType;

/* Raise the exception for shmkit result rc about `what` (an object name or an action; may be
 * NULL). Returns NULL so callers can `return sk_raise(...)`. */
PyObject *sk_raise(int rc, const char *what);
/* timeout: None -> -1 (forever); a number of seconds -> ns, negatives as 0. -2 on error. */
int64_t sk_timeout_ns(PyObject *timeout);
/* block=False means one try. */
int64_t sk_block_timeout(int block, PyObject *timeout);
/* Run call(ctx, t), a shmkit _timeout form. First once with t = 0 and the GIL held (the fast
 * path), then, unless timeout_ns is 0, in slices of at most SK_SLICE_NS with the GIL
 * released, checking signals between slices, until it returns anything but -ETIMEDOUT or
 * timeout_ns (-1: forever) has passed. SK_PYERR when a signal handler raised. */
int sk_block(int (*call)(void *ctx, int64_t t), void *ctx, int64_t timeout_ns);
/* The same without the first call: for a caller that has just tried (timeout_ns != 0). */
int sk_block_asleep(int (*call)(void *ctx, int64_t t), void *ctx, int64_t timeout_ns);
int64_t sk_now_ns(void);
/* `with lock:` for a Lock object (sk_LockType or a subclass) without Python calls: 0, or -1
 * with an exception set (as its __enter__/__exit__ would raise). */
int sk_lock_enter(PyObject *lock);
int sk_lock_exit(PyObject *lock);
/* 1 when the calling thread certainly holds `lock` (a Lock object) already, else 0. */
int sk_lock_held_here(PyObject *lock);
/* Bumped wherever a lock may be let go (release, Condition wait, closing an owner, fork). */
extern unsigned long sk_release_epoch;
int sk_sync_init(void);
/* Lock object around a borrowed shmkit_lock kept alive by `owner`. */
PyObject *sk_lock_borrowed(shmkit_lock *l, PyObject *owner, int recursive);
/* Arguments of a METH_FASTCALL | METH_KEYWORDS method into out[0..n) by position or by
 * names[i] (NULL when absent); the first `required` must be there. 0, or -1 with TypeError. */
int sk_fast_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		 const char *const *names, int n, int required, PyObject **out);
/* Give the methods of `defs` docstrings that carry their signature (textsig.c); self is
 * "$self" for a type's methods, "$module" for the module's functions. */
void sk_text_signatures(PyMethodDef *defs, const char *self);
/* Pickle and unpickle with the fast C pickler. */
PyObject *sk_pickle(PyObject *obj);
PyObject *sk_unpickle(const char *buf, Py_ssize_t n);
/* The pickle of a bytes object of n bytes without the pickler: its size (-1: too big, use
 * sk_pickle), the bytes into out[0..size), and back: the payload of such a pickle and its
 * length, or NULL when buf is anything else. */
Py_ssize_t sk_pickle_bytes_size(Py_ssize_t n);
void sk_pickle_bytes(char *out, const char *data, Py_ssize_t n);
const char *sk_bytes_pickled(const char *buf, Py_ssize_t n, Py_ssize_t *len);

/* Spill format: a message too big for a slot travels in a block; the slot carries this magic
 * and the block's name. */
#define SK_SPILL_MAGIC "\0SHMKIT-SPILL\0"
#define SK_SPILL_MAGIC_LEN 14
static inline int sk_is_spill(const char *buf, Py_ssize_t n)
{
	return n > SK_SPILL_MAGIC_LEN && n <= SK_SPILL_MAGIC_LEN + SHMKIT_NAME_MAX + 1 &&
	       memcmp(buf, SK_SPILL_MAGIC, SK_SPILL_MAGIC_LEN) == 0;
}

#endif
