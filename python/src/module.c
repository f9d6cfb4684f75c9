/*
 * _shmkit: the C half of the Python binding. Every object is a thin handle over libshmkit;
 * the Python package (shmkit/) adds multiprocessing's signatures, pickling by name and
 * cleanup. Blocking calls release the GIL and wake every SK_SLICE_NS to let Ctrl-C in.
 */
#include "common.h"

#include <string.h>

#include "hold.h"
#include <time.h>

PyObject *sk_DeadlockError, *sk_WrongKindError, *sk_OwnerDiedWarning;
PyObject *sk_Empty, *sk_Full, *sk_BrokenBarrierError;
PyObject *sk_dumps, *sk_loads;
static PyObject *protocol5;

PyObject *sk_raise(int rc, const char *what)
{
	const char *msg = shmkit_strerror(rc);
	PyObject *args, *exc = NULL;

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
	/* The instance, not OSError with arguments: OSError() picks the errno's subclass
	 * (FileNotFoundError, ...), and Python 3.8 matches `except` clauses against the type an
	 * exception was raised with, before it makes the instance. */
	args = what ? Py_BuildValue("(iss)", -rc, msg, what) : Py_BuildValue("(is)", -rc, msg);
	if (args && (exc = PyObject_Call(PyExc_OSError, args, NULL)))
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_XDECREF(exc);
	Py_XDECREF(args);
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
	int rc = call(ctx, 0);

	if (rc != -ETIMEDOUT || timeout_ns == 0)
		return rc;
	return sk_block_asleep(call, ctx, timeout_ns);
}

int sk_block_asleep(int (*call)(void *ctx, int64_t t), void *ctx, int64_t timeout_ns)
{
	int64_t deadline, slice, left;
	int rc;

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

/* Bytes objects skip the pickler both ways: sk_pickle_bytes writes, byte for byte, what
 * pickle.dumps(b, 5) writes for a bytes object (CPython's framing: a FRAME opcode unless the
 * payload is at least 64 KiB, which goes unframed; then SHORT_BINBYTES or BINBYTES, MEMOIZE,
 * STOP), so every consumer (pickle.loads, an older shmkit, a C program reading the pickle)
 * sees the same message as before; sk_bytes_pickled recognises those three shapes on the way
 * back. Anything else takes the pickler. test_queue.py's test_bytes_pickle_identical checks
 * the bytes against pickle.dumps on the running Python. */
#define SK_FRAME_SIZE_TARGET 65536

Py_ssize_t sk_pickle_bytes_size(Py_ssize_t n)
{
	if (n < 256)
		return n + 15;
	if (n < SK_FRAME_SIZE_TARGET)
		return n + 18;
	if ((uint64_t)n <= UINT32_MAX)
		return n + 9;
	return -1;
}

static void put_le(char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (char)(v & 0xff);
}

static uint64_t get_le(const char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

void sk_pickle_bytes(char *out, const char *data, Py_ssize_t n)
{
	char *p = out;

	*p++ = (char)0x80; /* PROTO 5 */
	*p++ = 5;
	if (n < SK_FRAME_SIZE_TARGET) {
		*p++ = (char)0x95; /* FRAME: what follows, up to and including STOP */
		put_le(p, (uint64_t)(n < 256 ? n + 4 : n + 7), 8);
		p += 8;
	}
	if (n < 256) {
		*p++ = 'C'; /* SHORT_BINBYTES */
		*p++ = (char)n;
	} else {
		*p++ = 'B'; /* BINBYTES */
		put_le(p, (uint64_t)n, 4);
		p += 4;
	}
	memcpy(p, data, (size_t)n);
	p += n;
	*p++ = (char)0x94; /* MEMOIZE */
	*p = '.';	   /* STOP */
}

const char *sk_bytes_pickled(const char *buf, Py_ssize_t n, Py_ssize_t *len)
{
	const char *p = buf;
	uint64_t k;

	if (n < 15 || (unsigned char)p[0] != 0x80 || p[1] != 5 || (unsigned char)p[n - 2] != 0x94 ||
	    p[n - 1] != '.')
		return NULL;
	p += 2;
	if ((unsigned char)*p == 0x95) {
		if (get_le(p + 1, 8) != (uint64_t)(n - 11))
			return NULL;
		p += 9;
	}
	if (*p == 'C') {
		k = (unsigned char)p[1];
		p += 2;
	} else if (*p == 'B' && buf + n - 2 - p >= 5) {
		k = get_le(p + 1, 4);
		p += 5;
	} else {
		return NULL;
	}
	/* the payload fills exactly what is left before MEMOIZE STOP, and the shape is one
	 * sk_pickle_bytes writes (framed below 64 KiB, unframed from there) */
	if (k != (uint64_t)(buf + n - 2 - p) || sk_pickle_bytes_size((Py_ssize_t)k) != n)
		return NULL;
	*len = (Py_ssize_t)k;
	return p;
}

PyObject *sk_pickle(PyObject *obj)
{
	PyObject *args[2] = { obj, protocol5 }, *r;
	Py_ssize_t n;

	if (PyBytes_CheckExact(obj) && (n = sk_pickle_bytes_size(PyBytes_GET_SIZE(obj))) >= 0) {
		if ((r = PyBytes_FromStringAndSize(NULL, n)))
			sk_pickle_bytes(PyBytes_AS_STRING(r), PyBytes_AS_STRING(obj),
					PyBytes_GET_SIZE(obj));
		return r;
	}
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
	PyObject *mv, *r;
	const char *b;
	Py_ssize_t len;

	if ((b = sk_bytes_pickled(buf, n, &len)))
		return PyBytes_FromStringAndSize(b, len);
	if (!(mv = PyMemoryView_FromMemory((char *)buf, n, PyBUF_READ)))
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

/* remove_unused(name): remove it only if nobody anywhere has it open (lib/hold.c). */
static PyObject *sk_remove_unused(PyObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	int rc;

	if (!name)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = shmkit__remove_unused(name);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return sk_raise(rc, name);
	Py_RETURN_NONE;
}

/* hold_fd(name) -> int: a descriptor that holds the object until closed (lib/hold.c). */
static PyObject *sk_hold_fd(PyObject *self, PyObject *arg)
{
	const char *name = PyUnicode_AsUTF8(arg);
	int fd;

	if (!name)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	fd = shmkit__hold_open(name);
	Py_END_ALLOW_THREADS
	if (fd < 0)
		return sk_raise(fd, name);
	return PyLong_FromLong(fd);
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
	{ "remove_unused", sk_remove_unused, METH_O,
	  "remove_unused(name): unlink a named object only if no process has it open" },
	{ "hold_fd", sk_hold_fd, METH_O,
	  "hold_fd(name) -> int: a descriptor holding the object open until it is closed" },
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
	sk_text_signatures(t->tp_methods, "$self");
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	return PyModule_AddObject(m, name, (PyObject *)t);
}

/* Exported whatever -fvisibility says (3.8's PyMODINIT_FUNC does not say it): the one symbol
 * the extension exports (src/_shmkit.map). */
__attribute__((visibility("default"))) PyMODINIT_FUNC PyInit__shmkit(void)
{
	PyObject *m;

	sk_text_signatures(methods, "$module");
	if (!(m = PyModule_Create(&moddef)))
		return NULL;
	if (!(sk_Empty = import_attr("queue", "Empty")) || !(sk_Full = import_attr("queue", "Full")) ||
	    !(sk_BrokenBarrierError = import_attr("threading", "BrokenBarrierError")) ||
	    !(sk_dumps = import_attr("pickle", "dumps")) ||
	    !(sk_loads = import_attr("pickle", "loads")) || !(protocol5 = PyLong_FromLong(5)) || sk_sync_init() < 0)
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
	    add_type(m, &sk_CValueType, "CValue") || add_type(m, &sk_SyncValueType, "SyncValue"))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
