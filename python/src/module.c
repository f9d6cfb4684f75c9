/*
 * _shmkit: the C half of the Python binding. Every object is a thin handle over libshmkit;
 * the Python package (shmkit/) adds multiprocessing's signatures, pickling by name and
 * cleanup. Blocking calls release the GIL and wake every SK_SLICE_NS to let Ctrl-C in.
 */
#include "common.h"

#include <string.h>
#include <time.h>

PyObject *sk_DeadlockError, *sk_WrongKindError, *sk_OwnerDiedWarning;
PyObject *sk_Empty, *sk_Full, *sk_BrokenBarrierError;
PyObject *sk_dumps, *sk_loads;
static PyObject *protocol5;

PyObject *sk_raise(int rc, const char *what)
{
	const char *msg = shmkit_strerror(rc);

	if (rc == SK_PYERR)
		return NULL;
	switch (-rc) {
	case ENOMEM:
		return PyErr_NoMemory();
	case EINVAL:
		PyErr_Format(PyExc_ValueError, "%s: %s", what ? what : "shmkit", msg);
		return NULL;
	case EDEADLK:
		PyErr_Format(sk_DeadlockError, "%s: %s", what ? what : "lock", msg);
		return NULL;
	case EPROTOTYPE:
		PyErr_Format(sk_WrongKindError, "%s: %s", what ? what : "shmkit", msg);
		return NULL;
	}
	if (what)
		PyErr_SetObject(PyExc_OSError, Py_BuildValue("(iss)", -rc, msg, what));
	else
		PyErr_SetObject(PyExc_OSError, Py_BuildValue("(is)", -rc, msg));
	return NULL;
}

int64_t sk_timeout_ns(PyObject *timeout)
{
	double t;

	if (!timeout || timeout == Py_None)
		return -1;
	t = PyFloat_AsDouble(timeout);
	if (t == -1.0 && PyErr_Occurred())
		return -2;
	if (!(t > 0)) /* negatives and NaN: do not wait */
		return 0;
	if (t > 9.0e9) /* centuries: forever */
		return -1;
	return (int64_t)(t * 1e9);
}

int64_t sk_block_timeout(int block, PyObject *timeout)
{
	return block ? sk_timeout_ns(timeout) : 0;
}

int64_t sk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int sk_block(int (*call)(void *ctx, int64_t t), void *ctx, int64_t timeout_ns)
{
	int64_t deadline, slice, left;
	int rc = call(ctx, 0);

	if (rc != -ETIMEDOUT || timeout_ns == 0)
		return rc;
	deadline = timeout_ns < 0 ? INT64_MAX : sk_now_ns() + timeout_ns;
	for (;;) {
		slice = SK_SLICE_NS;
		if (deadline != INT64_MAX) {
			left = deadline - sk_now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			if (left < slice)
				slice = left;
		}
		Py_BEGIN_ALLOW_THREADS
		rc = call(ctx, slice);
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT)
			return rc;
		if (PyErr_CheckSignals() < 0)
			return SK_PYERR;
	}
}

PyObject *sk_pickle(PyObject *obj)
{
	PyObject *args[2] = { obj, protocol5 };

	return PyObject_Vectorcall(sk_dumps, args, 2, NULL);
}

int sk_fast_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		 const char *const *names, int n, int required, PyObject **out)
{
	Py_ssize_t k, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	int i;

	for (i = 0; i < n; i++)
		out[i] = NULL;
	if (nargs > n)
		return PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)",
				    fn, n, nargs),
		       -1;
	for (i = 0; i < nargs; i++)
		out[i] = args[i];
	for (k = 0; k < nkw; k++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, k);
		for (i = 0; i < n; i++)
			if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0)
				break;
		if (i == n || out[i])
			return PyErr_Format(PyExc_TypeError,
					    i == n ? "%s() got an unexpected keyword argument '%U'"
						   : "%s() got multiple values for argument '%U'",
					    fn, key),
			       -1;
		out[i] = args[nargs + k];
	}
	for (i = 0; i < required; i++)
		if (!out[i])
			return PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", fn,
					    names[i]),
			       -1;
	return 0;
}

PyObject *sk_unpickle(const char *buf, Py_ssize_t n)
{
	PyObject *mv = PyMemoryView_FromMemory((char *)buf, n, PyBUF_READ), *r;

	if (!mv)
		return NULL;
	r = PyObject_CallOneArg(sk_loads, mv);
	Py_DECREF(mv);
	return r;
}

/* info(name) -> dict: what `shmkit stat` shows. */
static PyObject *sk_info(PyObject *self, PyObject *arg)
{
	struct shmkit_info in;
	const char *name = PyUnicode_AsUTF8(arg);
	int rc;

	if (!name)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = shmkit_info(name, &in);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return sk_raise(rc, name);
	return Py_BuildValue("{s:s,s:K,s:I,s:I,s:i,s:I,s:L,s:K,s:i,s:K}", "kind",
			     shmkit_kind_name(in.kind), "size", (unsigned long long)in.size,
			     "mode", in.mode, "uid", (unsigned)in.uid, "creator", (int)in.creator,
			     "flags", in.flags, "value", (long long)in.value, "len",
			     (unsigned long long)in.len, "holder", (int)in.holder, "owner_deaths",
			     (unsigned long long)in.owner_deaths);
}

static PyObject *sk_remove(PyObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	int rc;

	if (!name)
		return NULL;
	if ((rc = shmkit_remove(name)) < 0)
		return sk_raise(rc, name);
	Py_RETURN_NONE;
}

static PyObject *sk_name_check(PyObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);

	if (!name)
		return NULL;
	return PyBool_FromLong(shmkit_name_check(name) == 0);
}

static PyObject *sk_strerror(PyObject *self, PyObject *arg)
{
	long rc = PyLong_AsLong(arg);

	if (rc == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(shmkit_strerror((int)rc));
}

static PyObject *sk_create_pipe(PyObject *self, PyObject *args)
{
	const char *name;
	unsigned capacity, max_size, mode;
	int simplex, rc;
	shmkit_pipe *p;

	if (!PyArg_ParseTuple(args, "sIIpI", &name, &capacity, &max_size, &simplex, &mode))
		return NULL;
	rc = shmkit_pipe_create(name, capacity, max_size, simplex ? SHMKIT_SIMPLEX : 0, mode, &p);
	if (rc < 0)
		return sk_raise(rc, name);
	shmkit_pipe_close(p);
	Py_RETURN_NONE;
}

PyObject *sk_set_owned_lock_type(PyObject *mod, PyObject *cls);

static PyMethodDef methods[] = {
	{ "_set_owned_lock_type", sk_set_owned_lock_type, METH_O,
	  "_set_owned_lock_type(cls): class of the locks get_lock() returns" },
	{ "info", sk_info, METH_O, "info(name) -> dict: kind and state of a named object" },
	{ "remove", sk_remove, METH_O, "remove(name): unlink a named object of any kind" },
	{ "name_ok", sk_name_check, METH_O, "name_ok(name) -> bool" },
	{ "strerror", sk_strerror, METH_O, "strerror(rc) -> str" },
	{ "create_pipe", sk_create_pipe, METH_VARARGS,
	  "create_pipe(name, capacity, max_size, simplex, mode)" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "_shmkit", "C half of the shmkit Python binding", -1, methods,
	NULL, NULL, NULL, NULL,
};

static PyObject *import_attr(const char *mod, const char *attr)
{
	PyObject *m = PyImport_ImportModule(mod), *a;

	if (!m)
		return NULL;
	a = PyObject_GetAttrString(m, attr);
	Py_DECREF(m);
	return a;
}

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	return PyModule_AddObject(m, name, (PyObject *)t);
}

PyMODINIT_FUNC PyInit__shmkit(void)
{
	PyObject *m = PyModule_Create(&moddef);

	if (!m)
		return NULL;
	if (!(sk_Empty = import_attr("queue", "Empty")) || !(sk_Full = import_attr("queue", "Full")) ||
	    !(sk_BrokenBarrierError = import_attr("threading", "BrokenBarrierError")) ||
	    !(sk_dumps = import_attr("pickle", "dumps")) ||
	    !(sk_loads = import_attr("pickle", "loads")) || !(protocol5 = PyLong_FromLong(5)))
		goto fail;
	sk_DeadlockError = PyErr_NewExceptionWithDoc(
		"shmkit.DeadlockError",
		"A lock acquisition that can never succeed: the thread holds the lock already "
		"(non-recursive) or waits in a cycle of lock holders.",
		PyExc_RuntimeError, NULL);
	sk_WrongKindError = PyErr_NewExceptionWithDoc(
		"shmkit.WrongKindError", "The name holds another kind of shmkit object.",
		PyExc_TypeError, NULL);
	sk_OwnerDiedWarning = PyErr_NewExceptionWithDoc(
		"shmkit.OwnerDiedWarning",
		"A lock was acquired after its previous holder died holding it: the data it "
		"protects may be half-updated.",
		PyExc_RuntimeWarning, NULL);
	if (!sk_DeadlockError || !sk_WrongKindError || !sk_OwnerDiedWarning)
		goto fail;
	Py_INCREF(sk_DeadlockError);
	Py_INCREF(sk_WrongKindError);
	Py_INCREF(sk_OwnerDiedWarning);
	if (PyModule_AddObject(m, "DeadlockError", sk_DeadlockError) ||
	    PyModule_AddObject(m, "WrongKindError", sk_WrongKindError) ||
	    PyModule_AddObject(m, "OwnerDiedWarning", sk_OwnerDiedWarning) ||
	    PyModule_AddStringConstant(m, "VERSION", SHMKIT_VERSION) ||
	    PyModule_AddObject(m, "SPILL_MAGIC",
			       PyBytes_FromStringAndSize(SK_SPILL_MAGIC, SK_SPILL_MAGIC_LEN)) ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SHMKIT_NAME_MAX))
		goto fail;
	if (add_type(m, &sk_LockType, "Lock") || add_type(m, &sk_SemType, "Semaphore") ||
	    add_type(m, &sk_EventType, "Event") || add_type(m, &sk_CondType, "Condition") ||
	    add_type(m, &sk_BarrierType, "Barrier") || add_type(m, &sk_BlockType, "Block") ||
	    add_type(m, &sk_QueueType, "Queue") || add_type(m, &sk_ConnType, "Connection") ||
	    add_type(m, &sk_CValueType, "CValue"))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
