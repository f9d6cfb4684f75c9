/* Block: a shared block of bytes exposed through the buffer protocol, so memoryview, ctypes
 * from_buffer and numpy.frombuffer see the shared bytes themselves, never a copy. */
#include "block.h"

#include <string.h>

static int block_init(BlockObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "create", "size", "mode", NULL };
	const char *name;
	int create = 0, rc;
	Py_ssize_t size = 0;
	unsigned mode = 0;

	if (self->b)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pnI", kwlist, &name, &create, &size, &mode))
		return -1;
	if (size < 0)
		return PyErr_SetString(PyExc_ValueError, "size must be >= 0"), -1;
	Py_BEGIN_ALLOW_THREADS /* reserving a big block takes a while */
	rc = create ? shmkit_block_create(name, (size_t)size, mode, &self->b)
		    : shmkit_block_open(name, &self->b);
	Py_END_ALLOW_THREADS
	return rc < 0 ? (sk_raise(rc, name), -1) : 0;
}

static void block_dealloc(BlockObject *self)
{
	sk_release_epoch++; /* its lock goes if this thread held it */
	shmkit_block_close(self->b);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int block_getbuffer(BlockObject *self, Py_buffer *view, int flags)
{
	if (!self->b) {
		PyErr_SetString(PyExc_ValueError, "block is closed");
		view->obj = NULL;
		return -1;
	}
	if (!self->itemsize) {
		strcpy(self->fmt, "B");
		self->itemsize = 1;
	}
	self->shape = (Py_ssize_t)shmkit_block_size(self->b) / self->itemsize;
	view->obj = (PyObject *)self;
	Py_INCREF(self);
	view->buf = shmkit_block_data(self->b);
	view->len = self->shape * self->itemsize;
	view->readonly = 0;
	view->itemsize = self->itemsize;
	view->format = (flags & PyBUF_FORMAT) ? self->fmt : NULL;
	view->ndim = 1;
	view->shape = (flags & PyBUF_ND) ? &self->shape : NULL;
	view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &self->itemsize : NULL;
	view->suboffsets = NULL;
	view->internal = NULL;
	self->exports++;
	return 0;
}

static void block_releasebuffer(BlockObject *self, Py_buffer *view)
{
	self->exports--;
}

static PyBufferProcs block_as_buffer = {
	(getbufferproc)block_getbuffer,
	(releasebufferproc)block_releasebuffer,
};

static PyObject *block_close(BlockObject *self, PyObject *unused)
{
	if (self->exports > 0)
		return PyErr_SetString(PyExc_BufferError, "cannot close exported pointers exist"),
		       NULL;
	sk_release_epoch++; /* its lock goes if this thread held it */
	shmkit_block_close(self->b);
	self->b = NULL;
	Py_RETURN_NONE;
}

/* _set_format(fmt, itemsize): what memoryview(block) shows, e.g. ("i", 4) for an Array of
 * C ints; the bytes stay what they are. */
static PyObject *block_set_format(BlockObject *self, PyObject *args)
{
	const char *fmt;
	Py_ssize_t itemsize;

	if (!PyArg_ParseTuple(args, "sn", &fmt, &itemsize))
		return NULL;
	if (strlen(fmt) >= sizeof(self->fmt) || itemsize < 1)
		return PyErr_SetString(PyExc_ValueError, "bad format"), NULL;
	if (self->exports)
		return PyErr_SetString(PyExc_BufferError, "buffers of the block exist"), NULL;
	strcpy(self->fmt, fmt);
	self->itemsize = itemsize;
	Py_RETURN_NONE;
}

static PyObject *block_get_lock(BlockObject *self, PyObject *unused)
{
	if (!self->b)
		return PyErr_SetString(PyExc_ValueError, "block is closed"), NULL;
	return sk_lock_borrowed(shmkit_block_lock(self->b), (PyObject *)self, 1);
}

static PyObject *block_size(BlockObject *self, void *c)
{
	return PyLong_FromSize_t(self->b ? shmkit_block_size(self->b) : 0);
}

static PyObject *block_closed(BlockObject *self, void *c)
{
	return PyBool_FromLong(self->b == NULL);
}

static PyMethodDef block_methods[] = {
	{ "close", (PyCFunction)block_close, METH_NOARGS,
	  "close(): unmap (BufferError while memoryviews of it exist)" },
	{ "get_lock", (PyCFunction)block_get_lock, METH_NOARGS, "the block's RLock" },
	{ "_set_format", (PyCFunction)block_set_format, METH_VARARGS,
	  "_set_format(fmt, itemsize)" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef block_getset[] = {
	{ "size", (getter)block_size, NULL, "data bytes", NULL },
	{ "closed", (getter)block_closed, NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_BlockType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Block",
	.tp_basicsize = sizeof(BlockObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)block_init,
	.tp_dealloc = (destructor)block_dealloc,
	.tp_methods = block_methods,
	.tp_getset = block_getset,
	.tp_as_buffer = &block_as_buffer,
};
