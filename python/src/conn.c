/*
 * Connection: one end of a shmkit pipe, as multiprocessing.connection.Connection.
 *
 * The end is attached on first use, in the process that uses it (so a Connection inherited or
 * unpickled by a child attaches there, and the parent's untouched copy never claims it). poll()
 * has no peek in the library, so it receives the message and keeps it for the next recv.
 * Like multiprocessing's, a Connection is for one thread at a time: a second thread using it
 * concurrently gets RuntimeError instead of corrupting it.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

PyObject *sk_message_bytes(PyObject *self, const char *buf, Py_ssize_t n);
PyObject *sk_message_object(PyObject *self, const char *buf, Py_ssize_t n);

typedef struct {
	PyObject_HEAD
	shmkit_pipe *p;
	char *name;
	int end, readable, writable;
	int busy;
	int eof_seen;
	uint32_t max_size;
	char *buf;
	PyObject *pending; /* bytes received by poll(), not yet returned */
} ConnObject;

static int conn_init(ConnObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "end", "readable", "writable", NULL };
	struct shmkit_info in;
	const char *name;
	int end, readable = 1, writable = 1, rc;

	if (self->p)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "si|pp", kwlist, &name, &end, &readable,
					 &writable))
		return -1;
	if (end != 0 && end != 1)
		return PyErr_SetString(PyExc_ValueError, "end must be 0 or 1"), -1;
	if ((rc = shmkit_info(name, &in)) < 0)
		return sk_raise(rc, name), -1;
	if (in.kind != SHMKIT_KIND_PIPE)
		return PyErr_Format(sk_WrongKindError, "%s is a %s, not a pipe", name,
				    shmkit_kind_name(in.kind)),
		       -1;
	if ((rc = shmkit_pipe_open(name, &self->p)) < 0)
		return sk_raise(rc, name), -1;
	self->max_size = in.queue.max_size;
	if (!(self->buf = PyMem_RawMalloc(self->max_size ? self->max_size : 1)) ||
	    !(self->name = PyMem_RawMalloc(strlen(name) + 1)))
		return PyErr_NoMemory(), -1;
	strcpy(self->name, name);
	self->end = end;
	self->readable = readable;
	self->writable = writable;
	return 0;
}

static void conn_dealloc(ConnObject *self)
{
	shmkit_pipe_close(self->p);
	PyMem_RawFree(self->buf);
	PyMem_RawFree(self->name);
	Py_XDECREF(self->pending);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Checks common to every operation; takes the busy flag. */
static int enter(ConnObject *self, int want_read)
{
	int rc;

	if (!self->p)
		return PyErr_SetString(PyExc_OSError, "handle is closed"), -1;
	if (want_read && !self->readable)
		return PyErr_SetString(PyExc_OSError, "connection is write-only"), -1;
	if (!want_read && !self->writable)
		return PyErr_SetString(PyExc_OSError, "connection is read-only"), -1;
	if (self->busy)
		return PyErr_SetString(PyExc_RuntimeError,
				       "Connection used by two threads at once"),
		       -1;
	/* Cheap when attached in this process already; re-attaches in a fork child. */
	if ((rc = shmkit_pipe_attach(self->p, self->end)) < 0) {
		if (rc == -EBUSY)
			PyErr_Format(PyExc_OSError,
				     "end %d of pipe %s is held by another live process", self->end,
				     self->name);
		else if (rc == -EPIPE)
			PyErr_Format(PyExc_OSError, "end %d of pipe %s was closed", self->end,
				     self->name);
		else
			sk_raise(rc, self->name);
		return -1;
	}
	self->busy = 1;
	return 0;
}

struct xfer {
	shmkit_pipe *p;
	const char *msg;
	char *buf;
	size_t len;
};

static int send_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return shmkit_pipe_send_timeout(x->p, x->msg, x->len, t);
}

static int recv_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return shmkit_pipe_recv_timeout(x->p, x->buf, x->len, t);
}

static PyObject *send_data(ConnObject *self, const char *p, size_t n, PyObject *data_obj)
{
	PyObject *marker = NULL, *data = NULL;
	struct xfer x;
	int rc;

	if (enter(self, 0) < 0)
		return NULL;
	x.p = self->p;
	x.msg = p;
	x.len = n;
	if (n > self->max_size) {
		data = data_obj ? (Py_INCREF(data_obj), data_obj)
				: PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
		if (data)
			marker = PyObject_CallMethod((PyObject *)self, "_spill", "O", data);
		Py_XDECREF(data);
		if (!marker) {
			self->busy = 0;
			return NULL;
		}
		x.msg = PyBytes_AS_STRING(marker);
		x.len = (size_t)PyBytes_GET_SIZE(marker);
	}
	rc = sk_block(send_call, &x, -1);
	self->busy = 0;
	if (rc < 0 && marker) {
		PyObject *et, *ev, *etb, *r;
		PyErr_Fetch(&et, &ev, &etb);
		r = PyObject_CallMethod((PyObject *)self, "_unspill_drop", "O", marker);
		Py_XDECREF(r);
		PyErr_Clear();
		PyErr_Restore(et, ev, etb);
	}
	Py_XDECREF(marker);
	if (rc < 0)
		return sk_raise(rc, self->name);
	Py_RETURN_NONE;
}

static PyObject *conn_send_bytes(ConnObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "buf", "offset", "size", NULL };
	Py_ssize_t offset = 0, size = -1;
	PyObject *size_obj = Py_None, *r;
	Py_buffer view;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|nO", kwlist, &view, &offset, &size_obj))
		return NULL;
	if (size_obj != Py_None && (size = PyLong_AsSsize_t(size_obj)) == -1 && PyErr_Occurred())
		goto fail;
	if (offset < 0) {
		PyErr_SetString(PyExc_ValueError, "offset is negative");
		goto fail;
	}
	if (view.len < offset) {
		PyErr_SetString(PyExc_ValueError, "buffer length < offset");
		goto fail;
	}
	if (size < 0 && size_obj != Py_None) {
		PyErr_SetString(PyExc_ValueError, "size is negative");
		goto fail;
	}
	if (size_obj == Py_None)
		size = view.len - offset;
	if (offset + size > view.len) {
		PyErr_SetString(PyExc_ValueError, "buffer length < offset + size");
		goto fail;
	}
	r = send_data(self, (const char *)view.buf + offset, (size_t)size, NULL);
	PyBuffer_Release(&view);
	return r;
fail:
	PyBuffer_Release(&view);
	return NULL;
}

static PyObject *conn_send(ConnObject *self, PyObject *obj)
{
	PyObject *data = sk_pickle(obj), *r;

	if (!data)
		return NULL;
	r = send_data(self, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), data);
	Py_DECREF(data);
	return r;
}

/* Receive one message's bytes (a spilled one fetched); NULL with EOFError etc. */
static PyObject *recv_message(ConnObject *self, int64_t timeout_ns, int *timed_out)
{
	PyObject *r;
	struct xfer x;
	int rc;

	if (self->pending) {
		r = self->pending;
		self->pending = NULL;
		return r;
	}
	if (enter(self, 1) < 0)
		return NULL;
	x.p = self->p;
	x.buf = self->buf;
	x.len = self->max_size;
	rc = sk_block(recv_call, &x, timeout_ns);
	if (rc >= 0) {
		r = sk_message_bytes((PyObject *)self, self->buf, rc);
		self->busy = 0;
		return r;
	}
	self->busy = 0;
	if (rc == -ETIMEDOUT && timed_out) {
		*timed_out = 1;
		return NULL;
	}
	if (rc == -EPIPE) {
		self->eof_seen = 1;
		return PyErr_SetNone(PyExc_EOFError), NULL;
	}
	return sk_raise(rc, self->name);
}

static PyObject *conn_recv_bytes(ConnObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "maxlength", NULL };
	PyObject *maxobj = Py_None, *r;
	Py_ssize_t maxlength = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &maxobj))
		return NULL;
	if (maxobj != Py_None) {
		if ((maxlength = PyLong_AsSsize_t(maxobj)) == -1 && PyErr_Occurred())
			return NULL;
		if (maxlength < 0)
			return PyErr_SetString(PyExc_ValueError, "negative maxlength"), NULL;
	}
	if (!(r = recv_message(self, -1, NULL)))
		return NULL;
	if (maxlength >= 0 && PyBytes_GET_SIZE(r) > maxlength) {
		/* multiprocessing closes the connection too: the stream is out of step there */
		Py_DECREF(r);
		shmkit_pipe_close(self->p);
		self->p = NULL;
		return PyErr_SetString(PyExc_OSError, "bad message length"), NULL;
	}
	return r;
}

static PyObject *conn_recv(ConnObject *self, PyObject *unused)
{
	PyObject *data = recv_message(self, -1, NULL), *r;

	if (!data)
		return NULL;
	r = sk_message_object((PyObject *)self, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
	Py_DECREF(data);
	return r;
}

static PyObject *conn_recv_bytes_into(ConnObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "buf", "offset", NULL };
	Py_ssize_t offset = 0, n;
	PyObject *data, *mod, *cls;
	Py_buffer view;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "w*|n", kwlist, &view, &offset))
		return NULL;
	if (offset < 0 || offset > view.len) {
		PyBuffer_Release(&view);
		return PyErr_SetString(PyExc_ValueError,
				       offset < 0 ? "negative offset" : "offset too large"),
		       NULL;
	}
	if (!(data = recv_message(self, -1, NULL))) {
		PyBuffer_Release(&view);
		return NULL;
	}
	n = PyBytes_GET_SIZE(data);
	if (n > view.len - offset) {
		PyBuffer_Release(&view);
		/* multiprocessing.BufferTooShort carries the whole message */
		if ((mod = PyImport_ImportModule("multiprocessing"))) {
			if ((cls = PyObject_GetAttrString(mod, "BufferTooShort"))) {
				PyErr_SetObject(cls, data);
				Py_DECREF(cls);
			}
			Py_DECREF(mod);
		}
		Py_DECREF(data);
		return NULL;
	}
	memcpy((char *)view.buf + offset, PyBytes_AS_STRING(data), (size_t)n);
	PyBuffer_Release(&view);
	Py_DECREF(data);
	return PyLong_FromSsize_t(n);
}

static PyObject *conn_poll(ConnObject *self, PyObject *args)
{
	PyObject *timeout = NULL;
	int timed_out = 0;
	int64_t t;

	if (!PyArg_ParseTuple(args, "|O", &timeout))
		return NULL;
	if (!self->p)
		return PyErr_SetString(PyExc_OSError, "handle is closed"), NULL;
	if (self->pending || self->eof_seen)
		Py_RETURN_TRUE;
	/* poll() is poll(0.0); poll(None) waits for ever */
	t = timeout ? sk_timeout_ns(timeout) : 0;
	if (t == -2)
		return NULL;
	self->pending = recv_message(self, t, &timed_out);
	if (self->pending)
		Py_RETURN_TRUE;
	if (timed_out)
		Py_RETURN_FALSE;
	if (PyErr_ExceptionMatches(PyExc_EOFError)) {
		PyErr_Clear();
		Py_RETURN_TRUE; /* readable: recv() will raise EOFError */
	}
	return NULL;
}

static PyObject *conn_close(ConnObject *self, PyObject *unused)
{
	if (self->busy)
		return PyErr_SetString(PyExc_RuntimeError, "Connection in use by another thread"),
		       NULL;
	shmkit_pipe_close(self->p);
	self->p = NULL;
	Py_CLEAR(self->pending);
	Py_RETURN_NONE;
}

static PyObject *conn_closed(ConnObject *self, void *c)
{
	return PyBool_FromLong(self->p == NULL);
}

static PyObject *conn_readable(ConnObject *self, void *c)
{
	return PyBool_FromLong(self->readable);
}

static PyObject *conn_writable(ConnObject *self, void *c)
{
	return PyBool_FromLong(self->writable);
}

static PyObject *conn_name(ConnObject *self, void *c)
{
	return PyUnicode_FromString(self->name ? self->name : "");
}

static PyObject *conn_end(ConnObject *self, void *c)
{
	return PyLong_FromLong(self->end);
}

static PyObject *conn_max_size(ConnObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->max_size);
}

#define KW METH_VARARGS | METH_KEYWORDS
#define F(f) (PyCFunction)(void (*)(void))(f)
/* The pipe end's pollable descriptor (shmkit_pipe_fd): what fileno() returns, for select,
 * asyncio and multiprocessing.connection.wait. */
static PyObject *conn_fd(ConnObject *self, PyObject *unused)
{
	int fd;

	if (enter(self, 1) < 0) /* attaches the end here, as a recv would */
		return NULL;
	fd = shmkit_pipe_fd(self->p);
	self->busy = 0;
	if (fd < 0) {
		errno = -fd;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	return PyLong_FromLong(fd);
}

static PyMethodDef conn_methods[] = {
	{ "_fd", F(conn_fd), METH_NOARGS, "_fd() -> the end's pollable descriptor" },
	{ "send_bytes", F(conn_send_bytes), KW, "send_bytes(buf, offset=0, size=None)" },
	{ "send", F(conn_send), METH_O, "send(obj)" },
	{ "recv_bytes", F(conn_recv_bytes), KW, "recv_bytes(maxlength=None) -> bytes" },
	{ "recv", F(conn_recv), METH_NOARGS, "recv() -> obj" },
	{ "recv_bytes_into", F(conn_recv_bytes_into), KW, "recv_bytes_into(buf, offset=0)" },
	{ "poll", F(conn_poll), METH_VARARGS, "poll(timeout=0.0) -> bool" },
	{ "close", F(conn_close), METH_NOARGS, "close(): the peer sees EOF" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef conn_getset[] = {
	{ "closed", (getter)conn_closed, NULL, NULL, NULL },
	{ "readable", (getter)conn_readable, NULL, NULL, NULL },
	{ "writable", (getter)conn_writable, NULL, NULL, NULL },
	{ "name", (getter)conn_name, NULL, "the pipe's name", NULL },
	{ "end", (getter)conn_end, NULL, "0 or 1", NULL },
	{ "max_size", (getter)conn_max_size, NULL, "largest message in a slot", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_ConnType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Connection",
	.tp_basicsize = sizeof(ConnObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)conn_init,
	.tp_dealloc = (destructor)conn_dealloc,
	.tp_methods = conn_methods,
	.tp_getset = conn_getset,
};
