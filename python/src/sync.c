/* Lock/RLock, Semaphore, Event, Condition, Barrier and the C-made int64 Value. */
#include "common.h"

#include <structmember.h>
#include <pthread.h>
#include <pythread.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------- */
/* Lock                                                                                        */

typedef struct {
	PyObject_HEAD
	shmkit_lock *l;
	PyObject *owner; /* a borrowed lock's owner (Block, Condition, CValue), else NULL */
	int recursive;
	int owner_died; /* the last successful acquire recovered a dead holder */
	/* Acquisitions through this object not yet released through it, and by which thread:
	 * a hint for sk_lock_held_here, never trusted alone. */
	unsigned long held_ident, held_count;
	unsigned long held_epoch; /* release_epoch when this thread last took it through us */
} LockObject;

/* Bumped by every release of any lock through this module, every Condition wait (it releases
 * its lock meanwhile), every close of an object owning a lock (closing a handle whose thread
 * holds the lock lets it go) and in a fork child: a lock object whose thread took it through
 * it since the last bump still holds it, with nothing shared to read (sk_lock_held_here). */
unsigned long sk_release_epoch;
#define release_epoch sk_release_epoch

static int lock_init(LockObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "recursive", "mode", NULL };
	const char *name;
	int create = 0, recursive = 0, rc;
	unsigned mode = 0;
	shmkit_lock *l;

	if (self->l)
		return PyErr_SetString(PyExc_RuntimeError, "Lock already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|ppI", kwlist, &name, &create, &recursive,
					 &mode))
		return -1;
	rc = create ? shmkit_lock_create(name, recursive ? SHMKIT_RECURSIVE : 0, mode, &l)
		    : shmkit_lock_open(name, &l);
	if (rc < 0)
		return sk_raise(rc, name), -1;
	if (!create) {
		struct shmkit_info in;
		if (shmkit_info(name, &in) == 0)
			recursive = (in.flags & SHMKIT_RECURSIVE) != 0;
	}
	self->l = l;
	self->recursive = recursive;
	return 0;
}

/* A borrowed lock refers to its owner, and a Python owner often refers back to the lock: the
 * collector must see that edge to free such cycles. */
static int lock_traverse(LockObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->owner);
	return 0;
}

static int lock_clear(LockObject *self)
{
	if (self->owner) {
		self->l = NULL; /* it lived in the owner's mapping */
		Py_CLEAR(self->owner);
	}
	return 0;
}

static void lock_dealloc(LockObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->l && !self->owner) {
		release_epoch++; /* closing a handle this thread holds the lock through lets it go */
		shmkit_lock_close(self->l);
	}
	Py_XDECREF(self->owner);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The class of borrowed locks: a Python subclass that pickles through its owner, set by the
 * package at import (sk_LockType until then). */
static PyTypeObject *owned_lock_type = &sk_LockType;

PyObject *sk_set_owned_lock_type(PyObject *mod, PyObject *cls);
PyObject *sk_set_owned_lock_type(PyObject *mod, PyObject *cls)
{
	if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &sk_LockType))
		return PyErr_SetString(PyExc_TypeError, "need a subclass of Lock"), NULL;
	Py_INCREF(cls);
	owned_lock_type = (PyTypeObject *)cls;
	Py_RETURN_NONE;
}

PyObject *sk_lock_borrowed(shmkit_lock *l, PyObject *owner, int recursive)
{
	LockObject *o = (LockObject *)owned_lock_type->tp_alloc(owned_lock_type, 0);

	if (!o)
		return NULL;
	o->l = l;
	Py_INCREF(owner);
	o->owner = owner;
	o->recursive = recursive;
	o->owner_died = 0;
	return (PyObject *)o;
}

static int lock_call(void *ctx, int64_t t)
{
	return shmkit_lock_acquire_timeout(ctx, t);
}

/* A timed acquire keeps multiprocessing's contract: it returns False once the timeout has
 * passed, whatever happened meanwhile. So a deadlock the library detects (-EDEADLK: this
 * thread holds the Lock, or sleeping would close a cycle of holders) is not raised here: the
 * call naps and tries again until its deadline, since the cycle may yet break (another party
 * times out, or raises DeadlockError from an untimed acquire, and lets go). Only an untimed
 * acquire, which could never return, raises DeadlockError. */
static int acquire_timed(shmkit_lock *l, int64_t timeout_ns)
{
	int64_t deadline = sk_now_ns() + timeout_ns, left;
	struct timespec nap;
	int rc;

	for (;;) {
		if ((left = deadline - sk_now_ns()) <= 0)
			return -ETIMEDOUT;
		Py_BEGIN_ALLOW_THREADS
		rc = shmkit_lock_acquire_timeout(l, left < SK_SLICE_NS ? left : SK_SLICE_NS);
		if (rc == -EDEADLK) {
			left = deadline - sk_now_ns();
			nap.tv_sec = 0;
			nap.tv_nsec = left < 20000000 ? (left > 0 ? left : 0) : 20000000;
			nanosleep(&nap, NULL);
		}
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT && rc != -EDEADLK)
			return rc;
		if (PyErr_CheckSignals() < 0)
			return SK_PYERR;
	}
}

/* Acquire as multiprocessing does; 1 got it, 0 timed out, -1 exception set. */
static int acquire_impl(shmkit_lock *l, int64_t timeout_ns, int *owner_died)
{
	int rc;

	if (!l)
		return PyErr_SetString(PyExc_ValueError, "lock is closed"), -1;
	rc = shmkit_lock_acquire_try(l); /* no syscall when free */
	/* A try on a Lock this thread holds is EDEADLK from the robust mutex: multiprocessing
	 * answers False there; a blocking acquire keeps the error (it would never succeed). */
	if (rc == -EDEADLK && timeout_ns == 0)
		return 0;
	/* Blocking: straight to sleeping (with the GIL released), where the library spins a
	 * little first. A second try would ask the kernel again whether the holder lives. */
	if (rc == -EAGAIN || rc == -EDEADLK)
		rc = timeout_ns == 0  ? -ETIMEDOUT
		     : timeout_ns > 0 ? acquire_timed(l, timeout_ns)
				      : sk_block_asleep(lock_call, l, timeout_ns);
	if (rc == -ETIMEDOUT)
		return 0;
	if (rc < 0)
		return sk_raise(rc, "acquire"), -1;
	*owner_died = rc == SHMKIT_OWNER_DIED;
	if (*owner_died &&
	    PyErr_WarnEx(sk_OwnerDiedWarning,
			 "lock acquired after its previous holder died holding it: the data it "
			 "protects may be half-updated",
			 1) < 0) {
		/* The warning became an exception: nobody would know to release the lock. */
		shmkit_lock_release(l);
		return -1;
	}
	return 1;
}

static int lock_acquire_impl(LockObject *self, int64_t timeout_ns)
{
	int rc = acquire_impl(self->l, timeout_ns, &self->owner_died);
	unsigned long me;

	if (rc == 1) {
		me = PyThread_get_thread_ident();
		if (self->held_count && self->held_ident == me) {
			self->held_count++;
		} else {
			self->held_ident = me;
			self->held_count = 1;
		}
		self->held_epoch = release_epoch;
	}
	return rc;
}

/* This process's pid, kept across fork (getpid is a system call). */
static pid_t my_pid;

static void pid_after_fork(void)
{
	my_pid = getpid();
	release_epoch++; /* the parent's holds are not the child's */
}

int sk_sync_init(void)
{
	my_pid = getpid();
	return pthread_atfork(NULL, NULL, pid_after_fork) == 0 ? 0 : -1;
}

/* 1 when the calling thread certainly holds `lock`, an RLock object, so that taking it again
 * around a Value's access would only add a level of recursion: this thread acquired it
 * through this very object and has not released it through it, and either nothing was
 * released through this module since (nor waited on, nor forked), or the library says a
 * thread of this process holds it and this interpreter has no other thread that could be
 * that one. (Released through another handle and taken by another thread fails both.) 0 when
 * unsure; the caller then acquires as usual. Reads only: no shared cache line is written.
 * Not covered: a release by C code of this process that bypasses the module. */
int sk_lock_held_here(PyObject *lock)
{
	LockObject *o = (LockObject *)lock;
	PyThreadState *ts;

	if (!o->recursive || !o->l || !o->held_count ||
	    o->held_ident != PyThread_get_thread_ident())
		return 0;
	if (o->held_epoch == release_epoch)
		return 1;
	if (shmkit_lock_holder(o->l) != my_pid)
		return 0;
#if PY_VERSION_HEX >= 0x03090000
	ts = PyInterpreterState_ThreadHead(PyInterpreterState_Get());
#else
	ts = PyInterpreterState_ThreadHead(PyThreadState_Get()->interp);
#endif
	if (!ts || PyThreadState_Next(ts))
		return 0;
	o->held_epoch = release_epoch; /* this thread holds it: the next look is free */
	return 1;
}

static PyObject *release_impl(shmkit_lock *l, int recursive)
{
	int rc;

	if (!l)
		return PyErr_SetString(PyExc_ValueError, "lock is closed"), NULL;
	release_epoch++;
	if ((rc = shmkit_lock_release(l)) == -EPERM) {
		/* multiprocessing's own wording for each */
		if (recursive)
			PyErr_SetString(PyExc_AssertionError,
					"attempt to release recursive lock not owned by thread");
		else
			PyErr_SetString(PyExc_ValueError,
					"lock is not held by this thread (a shmkit lock is "
					"released by the thread that holds it)");
		return NULL;
	}
	if (rc < 0)
		return sk_raise(rc, "release");
	Py_RETURN_NONE;
}

/* METH_FASTCALL: argument parsing was half the time of an uncontended acquire(). */
static PyObject *lock_acquire(LockObject *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	static const char *const names[] = { "block", "timeout" };
	PyObject *a[2];
	int block = 1, rc;
	int64_t t;

	if (sk_fast_args("acquire", args, nargs, kwnames, names, 2, 0, a) < 0 ||
	    (a[0] && (block = PyObject_IsTrue(a[0])) < 0))
		return NULL;
	if ((t = sk_block_timeout(block, a[1] ? a[1] : Py_None)) == -2)
		return NULL;
	if ((rc = lock_acquire_impl(self, t)) < 0)
		return NULL;
	return PyBool_FromLong(rc);
}

static PyObject *lock_release(LockObject *self, PyObject *unused)
{
	PyObject *r = release_impl(self->l, self->recursive);

	if (r && self->held_count && self->held_ident == PyThread_get_thread_ident())
		self->held_count--;
	return r;
}

static PyObject *lock_enter(LockObject *self, PyObject *unused)
{
	int rc = lock_acquire_impl(self, -1);

	if (rc < 0)
		return NULL;
	return PyBool_FromLong(rc);
}

/* METH_FASTCALL: `with` passes three arguments, and a tuple for them is wasted time. */
static PyObject *lock_exit(LockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	return lock_release(self, NULL);
}

int sk_lock_enter(PyObject *lock)
{
	return lock_acquire_impl((LockObject *)lock, -1) < 0 ? -1 : 0;
}

int sk_lock_exit(PyObject *lock)
{
	PyObject *r = lock_release((LockObject *)lock, NULL);

	Py_XDECREF(r);
	return r ? 0 : -1;
}

static PyObject *lock_holder(LockObject *self, void *c)
{
	return PyLong_FromLong(self->l ? (long)shmkit_lock_holder(self->l) : 0);
}

static PyObject *lock_owner_died(LockObject *self, void *c)
{
	return PyBool_FromLong(self->owner_died);
}

static PyObject *lock_recursive(LockObject *self, void *c)
{
	return PyBool_FromLong(self->recursive);
}

static PyMethodDef lock_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
	  "acquire(block=True, timeout=None) -> bool" },
	{ "release", (PyCFunction)lock_release, METH_NOARGS, "release()" },
	{ "__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyObject *lock_owner(LockObject *self, void *c)
{
	PyObject *o = self->owner ? self->owner : Py_None;

	Py_INCREF(o);
	return o;
}

static PyGetSetDef lock_getset[] = {
	{ "_owner", (getter)lock_owner, NULL, "the object a borrowed lock belongs to", NULL },
	{ "holder", (getter)lock_holder, NULL, "pid holding the lock, 0 when free", NULL },
	{ "owner_died", (getter)lock_owner_died, NULL,
	  "True when the last acquire recovered a holder that died holding it", NULL },
	{ "recursive", (getter)lock_recursive, NULL, "True for an RLock", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_LockType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Lock",
	.tp_basicsize = sizeof(LockObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)lock_traverse,
	.tp_clear = (inquiry)lock_clear,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)lock_init,
	.tp_dealloc = (destructor)lock_dealloc,
	.tp_methods = lock_methods,
	.tp_getset = lock_getset,
};

/* ------------------------------------------------------------------------------------------- */
/* Semaphore                                                                                   */

typedef struct {
	PyObject_HEAD
	shmkit_sem *s;
} SemObject;

static int sem_init(SemObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "value", "bounded", "mode", NULL };
	const char *name;
	int create = 0, bounded = 0, rc;
	unsigned value = 1, mode = 0;

	if (self->s)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pIpI", kwlist, &name, &create, &value,
					 &bounded, &mode))
		return -1;
	rc = create ? shmkit_sem_create(name, value, bounded ? SHMKIT_BOUNDED : 0, mode, &self->s)
		    : shmkit_sem_open(name, &self->s);
	return rc < 0 ? (sk_raise(rc, name), -1) : 0;
}

static void sem_dealloc(SemObject *self)
{
	shmkit_sem_close(self->s);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sem_call(void *ctx, int64_t t)
{
	return shmkit_sem_acquire_timeout(ctx, t);
}

static PyObject *sem_acquire(SemObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "block", "timeout", NULL };
	PyObject *timeout = Py_None;
	int block = 1, rc;
	int64_t t;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|pO", kwlist, &block, &timeout))
		return NULL;
	if ((t = sk_block_timeout(block, timeout)) == -2)
		return NULL;
	rc = shmkit_sem_acquire_try(self->s);
	if (rc == -EAGAIN)
		rc = t == 0 ? -ETIMEDOUT : sk_block(sem_call, self->s, t);
	if (rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc < 0)
		return sk_raise(rc, "acquire");
	Py_RETURN_TRUE;
}

static PyObject *sem_release(SemObject *self, PyObject *unused)
{
	int rc = shmkit_sem_release(self->s);

	if (rc == -EOVERFLOW)
		return PyErr_SetString(PyExc_ValueError, "semaphore or lock released too many times"),
		       NULL;
	if (rc < 0)
		return sk_raise(rc, "release");
	Py_RETURN_NONE;
}

static PyObject *sem_enter(SemObject *self, PyObject *unused)
{
	int rc = shmkit_sem_acquire_try(self->s);

	if (rc == -EAGAIN)
		rc = sk_block(sem_call, self->s, -1);
	if (rc < 0)
		return sk_raise(rc, "acquire");
	Py_RETURN_TRUE;
}

static PyObject *sem_exit(SemObject *self, PyObject *args)
{
	return sem_release(self, NULL);
}

static PyObject *sem_get_value(SemObject *self, PyObject *unused)
{
	int v = shmkit_sem_value(self->s);

	return v < 0 ? sk_raise(v, "get_value") : PyLong_FromLong(v);
}

static PyMethodDef sem_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_VARARGS | METH_KEYWORDS,
	  "acquire(block=True, timeout=None) -> bool" },
	{ "release", (PyCFunction)sem_release, METH_NOARGS, "release()" },
	{ "get_value", (PyCFunction)sem_get_value, METH_NOARGS, "get_value() -> int" },
	{ "__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)sem_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject sk_SemType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Semaphore",
	.tp_basicsize = sizeof(SemObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)sem_init,
	.tp_dealloc = (destructor)sem_dealloc,
	.tp_methods = sem_methods,
};

/* ------------------------------------------------------------------------------------------- */
/* Event                                                                                       */

typedef struct {
	PyObject_HEAD
	shmkit_event *e;
} EventObject;

static int event_init(EventObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "mode", NULL };
	const char *name;
	int create = 0, rc;
	unsigned mode = 0;

	if (self->e)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pI", kwlist, &name, &create, &mode))
		return -1;
	rc = create ? shmkit_event_create(name, mode, &self->e) : shmkit_event_open(name, &self->e);
	return rc < 0 ? (sk_raise(rc, name), -1) : 0;
}

static void event_dealloc(EventObject *self)
{
	shmkit_event_close(self->e);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int event_call(void *ctx, int64_t t)
{
	return shmkit_event_wait_timeout(ctx, t);
}

static PyObject *event_wait(EventObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	if ((t = sk_timeout_ns(timeout)) == -2)
		return NULL;
	rc = sk_block(event_call, self->e, t);
	if (rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc < 0)
		return sk_raise(rc, "wait");
	Py_RETURN_TRUE;
}

static PyObject *event_set(EventObject *self, PyObject *unused)
{
	int rc = shmkit_event_set(self->e);

	return rc < 0 ? sk_raise(rc, "set") : (Py_INCREF(Py_None), Py_None);
}

static PyObject *event_clear(EventObject *self, PyObject *unused)
{
	int rc = shmkit_event_clear(self->e);

	return rc < 0 ? sk_raise(rc, "clear") : (Py_INCREF(Py_None), Py_None);
}

static PyObject *event_is_set(EventObject *self, PyObject *unused)
{
	return PyBool_FromLong(shmkit_event_is_set(self->e) == 1);
}

/* A shmkit extension (multiprocessing's Event has none): shmkit_event_fd, for select and
 * event loops. Readable while the flag is set; also spuriously at first and after a clear, so
 * confirm with is_set(), whose False empties and re-arms it. */
static PyObject *event_fileno(EventObject *self, PyObject *unused)
{
	int fd = shmkit_event_fd(self->e);

	return fd < 0 ? sk_raise(fd, "fileno") : PyLong_FromLong(fd);
}

static PyMethodDef event_methods[] = {
	{ "fileno", (PyCFunction)event_fileno, METH_NOARGS,
	  "fileno() -> a descriptor readable while the flag is set (confirm with is_set())" },
	{ "wait", (PyCFunction)(void (*)(void))event_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait(timeout=None) -> bool" },
	{ "set", (PyCFunction)event_set, METH_NOARGS, "set()" },
	{ "clear", (PyCFunction)event_clear, METH_NOARGS, "clear()" },
	{ "is_set", (PyCFunction)event_is_set, METH_NOARGS, "is_set() -> bool" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject sk_EventType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Event",
	.tp_basicsize = sizeof(EventObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)event_init,
	.tp_dealloc = (destructor)event_dealloc,
	.tp_methods = event_methods,
};

/* ------------------------------------------------------------------------------------------- */
/* Condition                                                                                   */

typedef struct {
	PyObject_HEAD
	shmkit_cond *c;
	int owner_died;
} CondObject;

static int cond_init(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "mode", NULL };
	const char *name;
	int create = 0, rc;
	unsigned mode = 0;

	if (self->c)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pI", kwlist, &name, &create, &mode))
		return -1;
	rc = create ? shmkit_cond_create(name, mode, &self->c) : shmkit_cond_open(name, &self->c);
	if (rc < 0)
		return sk_raise(rc, name), -1;
	return 0;
}

static void cond_dealloc(CondObject *self)
{
	release_epoch++;
	shmkit_cond_close(self->c);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *cond_wait(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	int64_t t, deadline, slice;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	if ((t = sk_timeout_ns(timeout)) == -2)
		return NULL;
	/* Sliced by hand: each slice that times out has the lock back, so no notify can fall
	 * between two slices (the notifier must hold the lock). */
	release_epoch++; /* the lock is let go meanwhile */
	deadline = t < 0 ? INT64_MAX : sk_now_ns() + t;
	for (;;) {
		slice = SK_SLICE_NS;
		if (deadline != INT64_MAX && deadline - sk_now_ns() < slice)
			slice = deadline - sk_now_ns();
		if (slice < 0)
			slice = 0;
		Py_BEGIN_ALLOW_THREADS
		rc = shmkit_cond_wait_timeout(self->c, slice);
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT)
			break;
		if (deadline != INT64_MAX && sk_now_ns() >= deadline)
			Py_RETURN_FALSE;
		if (PyErr_CheckSignals() < 0)
			return NULL;
	}
	if (rc == -EPERM)
		return PyErr_SetString(PyExc_AssertionError,
				       "must acquire() condition before using wait()"),
		       NULL;
	if (rc < 0)
		return sk_raise(rc, "wait");
	if (rc == SHMKIT_OWNER_DIED &&
	    PyErr_WarnEx(sk_OwnerDiedWarning,
			 "condition's lock reacquired after a holder died holding it", 1) < 0)
		return NULL;
	Py_RETURN_TRUE;
}

static PyObject *cond_notify(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "n", NULL };
	int n = 1, rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|i", kwlist, &n))
		return NULL;
	rc = shmkit_cond_notify(self->c, n);
	if (rc == -EPERM)
		return PyErr_SetString(PyExc_AssertionError, "lock is not owned"), NULL;
	return rc < 0 ? sk_raise(rc, "notify") : (Py_INCREF(Py_None), Py_None);
}

static PyObject *cond_notify_all(CondObject *self, PyObject *unused)
{
	int rc = shmkit_cond_notify_all(self->c);

	if (rc == -EPERM)
		return PyErr_SetString(PyExc_AssertionError, "lock is not owned"), NULL;
	return rc < 0 ? sk_raise(rc, "notify_all") : (Py_INCREF(Py_None), Py_None);
}

static PyObject *cond_get_lock(CondObject *self, PyObject *unused)
{
	return sk_lock_borrowed(shmkit_cond_lock(self->c), (PyObject *)self, 1);
}

/* The condition's own lock, used directly: no Lock object to keep in a reference cycle. */
static PyObject *cond_acquire(CondObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "block", "timeout", NULL };
	PyObject *timeout = Py_None;
	int block = 1, rc;
	int64_t t;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|pO", kwlist, &block, &timeout))
		return NULL;
	if ((t = sk_block_timeout(block, timeout)) == -2)
		return NULL;
	if ((rc = acquire_impl(shmkit_cond_lock(self->c), t, &self->owner_died)) < 0)
		return NULL;
	return PyBool_FromLong(rc);
}

static PyObject *cond_release(CondObject *self, PyObject *unused)
{
	return release_impl(shmkit_cond_lock(self->c), 1);
}

static PyObject *cond_enter(CondObject *self, PyObject *unused)
{
	int rc = acquire_impl(shmkit_cond_lock(self->c), -1, &self->owner_died);

	return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *cond_exit(CondObject *self, PyObject *args)
{
	return cond_release(self, NULL);
}

static PyMethodDef cond_methods[] = {
	{ "wait", (PyCFunction)(void (*)(void))cond_wait, METH_VARARGS | METH_KEYWORDS,
	  "wait(timeout=None) -> bool" },
	{ "notify", (PyCFunction)(void (*)(void))cond_notify, METH_VARARGS | METH_KEYWORDS,
	  "notify(n=1)" },
	{ "notify_all", (PyCFunction)cond_notify_all, METH_NOARGS, "notify_all()" },
	{ "get_lock", (PyCFunction)cond_get_lock, METH_NOARGS, "the condition's RLock" },
	{ "acquire", (PyCFunction)(void (*)(void))cond_acquire, METH_VARARGS | METH_KEYWORDS,
	  "acquire(block=True, timeout=None) -> bool: the condition's lock" },
	{ "release", (PyCFunction)cond_release, METH_NOARGS, "release() the condition's lock" },
	{ "__enter__", (PyCFunction)cond_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)cond_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject sk_CondType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Condition",
	.tp_basicsize = sizeof(CondObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)cond_init,
	.tp_dealloc = (destructor)cond_dealloc,
	.tp_methods = cond_methods,
};

/* ------------------------------------------------------------------------------------------- */
/* Barrier                                                                                     */

typedef struct {
	PyObject_HEAD
	shmkit_barrier *b;
} BarrierObject;

static int barrier_init(BarrierObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "parties", "mode", NULL };
	const char *name;
	int create = 0, rc;
	unsigned parties = 1, mode = 0;

	if (self->b)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pII", kwlist, &name, &create, &parties,
					 &mode))
		return -1;
	rc = create ? shmkit_barrier_create(name, parties, mode, &self->b)
		    : shmkit_barrier_open(name, &self->b);
	return rc < 0 ? (sk_raise(rc, name), -1) : 0;
}

static void barrier_dealloc(BarrierObject *self)
{
	shmkit_barrier_close(self->b);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* lib/barrier.c (compiled into the extension; see lib/kinds.h). */
int shmkit__barrier_wait_intr(shmkit_barrier *b, int64_t timeout_ns, int (*intr)(void *),
			      void *arg);

/* Asked by the barrier wait, GIL released, after a signal and at each slice's end: take the
 * GIL back and run the signal handlers; a handler that raised (Ctrl-C) stops the wait. */
static int barrier_intr(void *arg)
{
	PyThreadState **save = arg;
	int stop;

	PyEval_RestoreThread(*save);
	stop = PyErr_CheckSignals() < 0;
	*save = PyEval_SaveThread();
	return stop;
}

/* _wait(timeout=None) -> index. Not sliced (a timed-out slice would break the barrier): the
 * library asks barrier_intr instead, and Ctrl-C breaks the barrier and raises
 * KeyboardInterrupt, as multiprocessing's (threading's) Barrier does for any exception. */
static PyObject *barrier_wait(BarrierObject *self, PyObject *args)
{
	PyObject *timeout = Py_None;
	PyThreadState *save;
	int64_t t;
	int rc;

	if (!PyArg_ParseTuple(args, "|O", &timeout))
		return NULL;
	if ((t = sk_timeout_ns(timeout)) == -2)
		return NULL;
	save = PyEval_SaveThread();
	rc = shmkit__barrier_wait_intr(self->b, t, barrier_intr, &save);
	PyEval_RestoreThread(save);
	if (PyErr_Occurred()) /* a handler raised (the wait may have ended meanwhile) */
		return NULL;
	if (rc == -ECANCELED || rc == -ETIMEDOUT)
		return PyErr_SetNone(sk_BrokenBarrierError), NULL;
	if (rc < 0)
		return sk_raise(rc, "wait");
	return PyLong_FromLong(rc);
}

static PyObject *barrier_reset(BarrierObject *self, PyObject *unused)
{
	int rc = shmkit_barrier_reset(self->b);

	return rc < 0 ? sk_raise(rc, "reset") : (Py_INCREF(Py_None), Py_None);
}

static PyObject *barrier_abort(BarrierObject *self, PyObject *unused)
{
	int rc = shmkit_barrier_abort(self->b);

	return rc < 0 ? sk_raise(rc, "abort") : (Py_INCREF(Py_None), Py_None);
}

static PyObject *barrier_parties(BarrierObject *self, void *c)
{
	return PyLong_FromLong(shmkit_barrier_parties(self->b));
}

static PyObject *barrier_n_waiting(BarrierObject *self, void *c)
{
	return PyLong_FromLong(shmkit_barrier_n_waiting(self->b));
}

static PyObject *barrier_broken(BarrierObject *self, void *c)
{
	return PyBool_FromLong(shmkit_barrier_broken(self->b) == 1);
}

static PyMethodDef barrier_methods[] = {
	{ "_wait", (PyCFunction)barrier_wait, METH_VARARGS, "_wait(timeout=None) -> index" },
	{ "reset", (PyCFunction)barrier_reset, METH_NOARGS, "reset()" },
	{ "abort", (PyCFunction)barrier_abort, METH_NOARGS, "abort()" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef barrier_getset[] = {
	{ "parties", (getter)barrier_parties, NULL, NULL, NULL },
	{ "n_waiting", (getter)barrier_n_waiting, NULL, NULL, NULL },
	{ "broken", (getter)barrier_broken, NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_BarrierType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Barrier",
	.tp_basicsize = sizeof(BarrierObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)barrier_init,
	.tp_dealloc = (destructor)barrier_dealloc,
	.tp_methods = barrier_methods,
	.tp_getset = barrier_getset,
};

/* ------------------------------------------------------------------------------------------- */
/* CValue: a Value made by C or `shmkit create value` (one int64 cell plus its Lock).          */

typedef struct {
	PyObject_HEAD
	shmkit_value *v;
} CValueObject;

static int cvalue_init(CValueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "initial", "mode", NULL };
	const char *name;
	int create = 0, rc;
	long long initial = 0;
	unsigned mode = 0;

	if (self->v)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pLI", kwlist, &name, &create, &initial,
					 &mode))
		return -1;
	rc = create ? shmkit_value_create(name, initial, mode, &self->v)
		    : shmkit_value_open(name, &self->v);
	return rc < 0 ? (sk_raise(rc, name), -1) : 0;
}

static void cvalue_dealloc(CValueObject *self)
{
	release_epoch++;
	shmkit_value_close(self->v);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *cvalue_get(CValueObject *self, void *c)
{
	return PyLong_FromLongLong(shmkit_value_load(self->v));
}

static int cvalue_set(CValueObject *self, PyObject *val, void *c)
{
	long long x;

	if (!val)
		return PyErr_SetString(PyExc_TypeError, "cannot delete value"), -1;
	x = PyLong_AsLongLong(val);
	if (x == -1 && PyErr_Occurred())
		return -1;
	shmkit_value_store(self->v, x);
	return 0;
}

static PyObject *cvalue_add(CValueObject *self, PyObject *arg)
{
	long long d = PyLong_AsLongLong(arg);
	int64_t r;

	if (d == -1 && PyErr_Occurred())
		return NULL;
	shmkit_value_add(self->v, d, SHMKIT_ADD_ATOMIC, &r);
	return PyLong_FromLongLong(r);
}

static PyObject *cvalue_get_lock(CValueObject *self, PyObject *unused)
{
	return sk_lock_borrowed(shmkit_value_lock(self->v), (PyObject *)self, 0);
}

static PyMethodDef cvalue_methods[] = {
	{ "get_lock", (PyCFunction)cvalue_get_lock, METH_NOARGS, "the Value's Lock" },
	{ "atomic_add", (PyCFunction)cvalue_add, METH_O, "atomic_add(d) -> new value" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef cvalue_getset[] = {
	{ "value", (getter)cvalue_get, (setter)cvalue_set, "the int64 (atomic load/store)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_CValueType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.CValue",
	.tp_basicsize = sizeof(CValueObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)cvalue_init,
	.tp_dealloc = (destructor)cvalue_dealloc,
	.tp_methods = cvalue_methods,
	.tp_getset = cvalue_getset,
};
