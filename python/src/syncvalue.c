/*
 * SyncValue: the Block under a synchronized Value (sharedctypes.Synchronized), whose `value`
 * is read and written here, in C, holding the Value's lock exactly as multiprocessing's
 * Python property does (`with self._lock: return self._obj.value`). The property and its
 * `with` were most of the time of `with v.get_lock(): v.value += 1`.
 *
 * The cell is read and written as ctypes does for its simple types (native byte order, the
 * C type of the typecode, integers stored modulo 2**bits as ctypes' setters mask them). Only
 * exact ints (exact floats for 'd') are converted here; anything else, and every type without
 * a code (c_char, c_wchar, c_bool, Structures, ...), goes through the ctypes object itself,
 * still under the lock, so its conversions and errors are ctypes' own.
 */
#include "block.h"

#include <string.h>

typedef struct {
	BlockObject base;
	PyObject *lock; /* what each access holds: a Lock object, or anything with __enter__ */
	char code;	/* the cell's ctypes code, 0: let the ctypes object (self._obj) do it */
} SyncValueObject;

/* The codes read and written here, and the size of each one's C type. */
static size_t code_size(char code)
{
	switch (code) {
	case 'b':
	case 'B':
		return sizeof(char);
	case 'h':
	case 'H':
		return sizeof(short);
	case 'i':
	case 'I':
		return sizeof(int);
	case 'l':
	case 'L':
		return sizeof(long);
	case 'q':
	case 'Q':
		return sizeof(long long);
	case 'f':
		return sizeof(float);
	case 'd':
		return sizeof(double);
	default:
		return 0;
	}
}

static PyObject *load(char code, const void *p)
{
	switch (code) {
	case 'b':
		return PyLong_FromLong(*(const signed char *)p);
	case 'B':
		return PyLong_FromLong(*(const unsigned char *)p);
	case 'h':
		return PyLong_FromLong(*(const short *)p);
	case 'H':
		return PyLong_FromLong(*(const unsigned short *)p);
	case 'i':
		return PyLong_FromLong(*(const int *)p);
	case 'I':
		return PyLong_FromUnsignedLong(*(const unsigned int *)p);
	case 'l':
		return PyLong_FromLong(*(const long *)p);
	case 'L':
		return PyLong_FromUnsignedLong(*(const unsigned long *)p);
	case 'q':
		return PyLong_FromLongLong(*(const long long *)p);
	case 'Q':
		return PyLong_FromUnsignedLongLong(*(const unsigned long long *)p);
	case 'f':
		return PyFloat_FromDouble(*(const float *)p);
	default: /* 'd' */
		return PyFloat_FromDouble(*(const double *)p);
	}
}

/* The low bits of an exact int, as ctypes' integer setters take them. */
static void store_int(char code, void *p, unsigned long long x)
{
	switch (code) {
	case 'b':
		*(signed char *)p = (signed char)x;
		break;
	case 'B':
		*(unsigned char *)p = (unsigned char)x;
		break;
	case 'h':
		*(short *)p = (short)x;
		break;
	case 'H':
		*(unsigned short *)p = (unsigned short)x;
		break;
	case 'i':
		*(int *)p = (int)x;
		break;
	case 'I':
		*(unsigned int *)p = (unsigned int)x;
		break;
	case 'l':
		*(long *)p = (long)x;
		break;
	case 'L':
		*(unsigned long *)p = (unsigned long)x;
		break;
	case 'q':
		*(long long *)p = (long long)x;
		break;
	default: /* 'Q' */
		*(unsigned long long *)p = x;
		break;
	}
}

/* `with self.lock:` entry and exit; a Lock object of this module without Python calls.
 * 1: entered; 2: nothing to do, this thread holds the RLock already (`with v.get_lock():
 * v.value += 1`), and taking it once more would only write its recursion depth, in the cache
 * line every waiter is reading; -1: exception set. */
static int enter(PyObject *lock)
{
	PyObject *r;

	if (PyObject_TypeCheck(lock, &sk_LockType)) {
		if (sk_lock_held_here(lock))
			return 2;
		return sk_lock_enter(lock) < 0 ? -1 : 1;
	}
	r = PyObject_CallMethod(lock, "__enter__", NULL);
	Py_XDECREF(r);
	return r ? 1 : -1;
}

/* Leave what enter() returned `how` for, keeping an exception raised inside (unless leaving
 * raises one of its own). */
static int leave(PyObject *lock, int how)
{
	PyObject *et, *ev, *etb, *r;
	int rc;

	if (how == 2)
		return 0;
	PyErr_Fetch(&et, &ev, &etb);
	if (PyObject_TypeCheck(lock, &sk_LockType)) {
		rc = sk_lock_exit(lock);
	} else {
		r = PyObject_CallMethod(lock, "__exit__", "OOO", Py_None, Py_None, Py_None);
		rc = r ? 0 : -1;
		Py_XDECREF(r);
	}
	if (rc < 0) {
		Py_XDECREF(et);
		Py_XDECREF(ev);
		Py_XDECREF(etb);
	} else {
		PyErr_Restore(et, ev, etb);
	}
	return rc;
}

/* The cell, or NULL with ValueError once the block is closed. */
static void *cell(SyncValueObject *self)
{
	if (!self->base.b)
		return PyErr_SetString(PyExc_ValueError, "block is closed"), NULL;
	return shmkit_block_data(self->base.b);
}

static int ready(SyncValueObject *self)
{
	if (!self->lock)
		return PyErr_SetString(PyExc_RuntimeError, "the Value is not set up"), -1;
	return 0;
}

static PyObject *sv_get(SyncValueObject *self, void *c)
{
	PyObject *lock = self->lock, *obj, *r = NULL;
	int how;
	void *p;

	if (ready(self) < 0)
		return NULL;
	Py_INCREF(lock); /* a thread switch while we wait must not free it */
	if ((how = enter(lock)) < 0) {
		Py_DECREF(lock);
		return NULL;
	}
	if (!self->code) {
		if ((obj = PyObject_GetAttrString((PyObject *)self, "_obj"))) {
			r = PyObject_GetAttrString(obj, "value");
			Py_DECREF(obj);
		}
	} else if ((p = cell(self))) {
		r = load(self->code, p);
	}
	if (leave(lock, how) < 0)
		Py_CLEAR(r);
	Py_DECREF(lock);
	return r;
}

static int sv_set(SyncValueObject *self, PyObject *val, void *c)
{
	PyObject *lock = self->lock, *obj;
	unsigned long long x = 0;
	double d = 0;
	int fast = 0, rc = -1, how;
	void *p;

	if (!val)
		return PyErr_SetString(PyExc_AttributeError, "can't delete attribute 'value'"), -1;
	if (ready(self) < 0)
		return -1;
	/* Converted before the lock is taken: the holder's time is what the others wait for. */
	if (self->code && self->code != 'f' && self->code != 'd' && PyLong_CheckExact(val)) {
		x = PyLong_AsUnsignedLongLongMask(val);
		if (x == (unsigned long long)-1 && PyErr_Occurred())
			return -1;
		fast = 1;
	} else if (self->code == 'd' && PyFloat_CheckExact(val)) {
		d = PyFloat_AS_DOUBLE(val);
		fast = 2;
	}
	Py_INCREF(lock);
	if ((how = enter(lock)) < 0) {
		Py_DECREF(lock);
		return -1;
	}
	if (!fast) {
		if ((obj = PyObject_GetAttrString((PyObject *)self, "_obj"))) {
			rc = PyObject_SetAttrString(obj, "value", val);
			Py_DECREF(obj);
		}
	} else if ((p = cell(self))) {
		if (fast == 1)
			store_int(self->code, p, x);
		else
			*(double *)p = d;
		rc = 0;
	}
	if (leave(lock, how) < 0)
		rc = -1;
	Py_DECREF(lock);
	return rc;
}

/* _set_value(code, lock): the cell's ctypes code ('' for none this file handles) and the
 * lock each access of `value` holds. */
static PyObject *sv_set_value(SyncValueObject *self, PyObject *args)
{
	const char *code;
	Py_ssize_t n;
	PyObject *lock;
	size_t size = 0;

	if (!PyArg_ParseTuple(args, "s#O", &code, &n, &lock))
		return NULL;
	if (n > 1 || (n == 1 && !(size = code_size(code[0]))))
		return PyErr_Format(PyExc_ValueError, "no C type for code %R", PyTuple_GET_ITEM(args, 0));
	if (!self->base.b)
		return PyErr_SetString(PyExc_ValueError, "block is closed"), NULL;
	if (n == 1 && shmkit_block_size(self->base.b) < size)
		return PyErr_Format(PyExc_ValueError, "block of %zu bytes is too small for %s",
				    shmkit_block_size(self->base.b), code),
		       NULL;
	Py_INCREF(lock);
	Py_XSETREF(self->lock, lock);
	self->code = n ? code[0] : 0;
	Py_RETURN_NONE;
}

static int sv_traverse(SyncValueObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->lock);
	return 0;
}

static int sv_clear(SyncValueObject *self)
{
	Py_CLEAR(self->lock);
	return 0;
}

static void sv_dealloc(SyncValueObject *self)
{
	PyObject_GC_UnTrack(self);
	Py_CLEAR(self->lock);
	sk_BlockType.tp_dealloc((PyObject *)self);
}

static PyMethodDef sv_methods[] = {
	{ "_set_value", (PyCFunction)sv_set_value, METH_VARARGS,
	  "_set_value(code, lock): how `value` reads the cell and what it holds meanwhile" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef sv_getset[] = {
	{ "value", (getter)sv_get, (setter)sv_set, "the shared value, read and written under the lock",
	  NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_SyncValueType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.SyncValue",
	.tp_basicsize = sizeof(SyncValueObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_base = &sk_BlockType,
	.tp_traverse = (traverseproc)sv_traverse,
	.tp_clear = (inquiry)sv_clear,
	.tp_new = PyType_GenericNew,
	.tp_free = PyObject_GC_Del,
	.tp_dealloc = (destructor)sv_dealloc,
	.tp_methods = sv_methods,
	.tp_getset = sv_getset,
};
