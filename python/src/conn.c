/*
 * Connection: one end of a shmkit pipe, as multiprocessing.connection.Connection.
 *
 * A Connection holds its end from construction on, as a descriptor does (lib/pipe.c): fork
 * children hold it too, a pickled Connection passes a copy of the holding descriptor
 * (connection.py), and the peer sees EOF once every holder closed or died, used or not. Any
 * process holding it may send and receive. poll() waits without taking the message
 * (shmkit_pipe_wait), so a process that only polls never takes a message away with it.
 * Threads: one sending and one receiving thread at a time (the handle has claim words for
 * each direction); a second thread in the same direction waits for the first, as it would
 * for a lock, rather than corrupting the claim.
 */
#include "common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pythread.h"

PyObject *sk_message_bytes(PyObject *self, const char *buf, Py_ssize_t n);
PyObject *sk_message_object(PyObject *self, const char *buf, Py_ssize_t n);

typedef struct {
	PyObject_HEAD
	shmkit_pipe *p;
	char *name;
	int end, readable, writable;
	int eof_seen;
	uint32_t max_size;
	char *buf;
	/* One thread per direction (0 send, 1 receive); made again in a fork child, where a
	 * thread of the parent may have held one. */
	PyThread_type_lock lk[2];
	unsigned long lk_epoch;
} ConnObject;

static unsigned long fork_epoch; /* bumped in every fork child */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	fork_epoch++;
}

static void fork_hook(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

static int locks_fresh(ConnObject *self)
{
	int d;

	if (self->lk[0] && self->lk_epoch == fork_epoch)
		return 0;
	/* A fork child: the parent's locks are dropped, not freed (one may be held). */
	for (d = 0; d < 2; d++)
		if (!(self->lk[d] = PyThread_allocate_lock()))
			return PyErr_NoMemory(), -1;
	self->lk_epoch = fork_epoch;
	return 0;
}

static int conn_init(ConnObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "end", "readable", "writable", "fd", NULL };
	struct shmkit_info in;
	const char *name;
	int end, readable = 1, writable = 1, fd = -1, rc;

	if (self->p)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "si|ppi", kwlist, &name, &end, &readable,
					 &writable, &fd))
		return -1;
	pthread_once(&fork_once, fork_hook);
	if (locks_fresh(self) < 0)
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
	/* Hold the end now: through a holder's descriptor when given one, else a hold of our own. */
	rc = fd >= 0 ? shmkit_pipe_attach_fd(self->p, end, fd) : shmkit_pipe_attach(self->p, end);
	if (rc < 0) {
		shmkit_pipe_close(self->p);
		self->p = NULL;
		if (rc == -EPIPE)
			PyErr_Format(PyExc_OSError, "end %d of pipe %s was closed", end, name);
		else if (rc == -EINVAL && fd >= 0)
			PyErr_Format(PyExc_OSError, "descriptor %d holds no end %d of pipe %s", fd,
				     end, name);
		else
			sk_raise(rc, name);
		return -1;
	}
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
	if (self->lk_epoch == fork_epoch) {
		if (self->lk[0])
			PyThread_free_lock(self->lk[0]);
		if (self->lk[1])
			PyThread_free_lock(self->lk[1]);
	}
	Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Checks common to every operation; takes direction d's lock (0 send, 1 receive), waiting
 * for another thread of ours in that direction up to *timeout_ns (-1: for ever; what is left
 * is written back). 0; 1 when the wait timed out; -1 with an exception. */
static int enter(ConnObject *self, int d, int64_t *timeout_ns)
{
	int64_t deadline, left;
	PyLockStatus st;

	if (!self->p)
		return PyErr_SetString(PyExc_OSError, "handle is closed"), -1;
	if (d && !self->readable)
		return PyErr_SetString(PyExc_OSError, "connection is write-only"), -1;
	if (!d && !self->writable)
		return PyErr_SetString(PyExc_OSError, "connection is read-only"), -1;
	if (locks_fresh(self) < 0)
		return -1;
	if (__builtin_expect(PyThread_acquire_lock(self->lk[d], NOWAIT_LOCK), 1))
		return 0;
	if (*timeout_ns == 0)
		return 1;
	deadline = *timeout_ns < 0 ? INT64_MAX : sk_now_ns() + *timeout_ns;
	for (;;) {
		left = SK_SLICE_NS;
		if (deadline != INT64_MAX && deadline - sk_now_ns() < left)
			left = deadline - sk_now_ns();
		if (left <= 0)
			return 1;
		Py_BEGIN_ALLOW_THREADS
		st = PyThread_acquire_lock_timed(self->lk[d], left / 1000, 0);
		Py_END_ALLOW_THREADS
		if (st == PY_LOCK_ACQUIRED)
			break;
		if (PyErr_CheckSignals() < 0)
			return -1;
	}
	if (deadline != INT64_MAX)
		*timeout_ns = deadline > sk_now_ns() ? deadline - sk_now_ns() : 0;
	if (!self->p) { /* closed by another thread meanwhile */
		PyThread_release_lock(self->lk[d]);
		return PyErr_SetString(PyExc_OSError, "handle is closed"), -1;
	}
	return 0;
}

static void leave(ConnObject *self, int d)
{
	PyThread_release_lock(self->lk[d]);
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
	int64_t forever = -1;
	struct xfer x;
	int rc;

	if (enter(self, 0, &forever) < 0)
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
			leave(self, 0);
			return NULL;
		}
		x.msg = PyBytes_AS_STRING(marker);
		x.len = (size_t)PyBytes_GET_SIZE(marker);
	}
	rc = sk_block(send_call, &x, -1);
	leave(self, 0);
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
static PyObject *recv_message(ConnObject *self)
{
	int64_t forever = -1;
	PyObject *r;
	struct xfer x;
	int rc;

	if (enter(self, 1, &forever) < 0)
		return NULL;
	x.p = self->p;
	x.buf = self->buf;
	x.len = self->max_size;
	rc = sk_block(recv_call, &x, -1);
	if (rc >= 0) {
		r = sk_message_bytes((PyObject *)self, self->buf, rc);
		leave(self, 1);
		return r;
	}
	leave(self, 1);
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
	if (!(r = recv_message(self)))
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
	PyObject *data = recv_message(self), *r;

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
	if (!(data = recv_message(self))) {
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

static int wait_call(void *ctx, int64_t t)
{
	return shmkit_pipe_wait_timeout(ctx, t);
}

static PyObject *conn_poll(ConnObject *self, PyObject *args)
{
	PyObject *timeout = NULL;
	int64_t t;
	int rc;

	if (!PyArg_ParseTuple(args, "|O", &timeout))
		return NULL;
	if (!self->p)
		return PyErr_SetString(PyExc_OSError, "handle is closed"), NULL;
	if (!self->readable)
		return PyErr_SetString(PyExc_OSError, "connection is write-only"), NULL;
	if (self->eof_seen)
		Py_RETURN_TRUE;
	/* poll() is poll(0.0); poll(None) waits for ever. It takes nothing: the message stays in
	 * the pipe for whichever holder receives first. */
	t = timeout ? sk_timeout_ns(timeout) : 0;
	if (t == -2)
		return NULL;
	if ((rc = enter(self, 1, &t)) < 0)
		return NULL;
	if (rc == 1)
		Py_RETURN_FALSE;
	rc = sk_block(wait_call, self->p, t);
	leave(self, 1);
	if (rc == 0 || rc == -EPIPE)
		Py_RETURN_TRUE; /* a message, or EOF for recv() to raise */
	if (rc == -ETIMEDOUT || rc == -EAGAIN)
		Py_RETURN_FALSE;
	return sk_raise(rc, self->name);
}

static PyObject *conn_close(ConnObject *self, PyObject *unused)
{
	int d;

	if (!self->p)
		Py_RETURN_NONE;
	if (locks_fresh(self) < 0)
		return NULL;
	for (d = 0; d < 2; d++) {
		if (!PyThread_acquire_lock(self->lk[d], NOWAIT_LOCK)) {
			if (d)
				leave(self, 0);
			return PyErr_SetString(PyExc_RuntimeError,
					       "Connection in use by another thread"),
			       NULL;
		}
	}
	shmkit_pipe_close(self->p);
	self->p = NULL;
	leave(self, 0);
	leave(self, 1);
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
	int64_t now = 0;
	int fd, rc;

	if ((rc = enter(self, 1, &now)) < 0)
		return NULL;
	fd = rc ? -EBUSY : shmkit_pipe_fd(self->p);
	if (!rc)
		leave(self, 1);
	if (fd < 0) {
		errno = -fd;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	return PyLong_FromLong(fd);
}

/* The descriptor holding the end (shmkit_pipe_hold_fd), for passing the end to a process. */
static PyObject *conn_hold_fd(ConnObject *self, PyObject *unused)
{
	int fd;

	if (!self->p)
		return PyErr_SetString(PyExc_OSError, "handle is closed"), NULL;
	if ((fd = shmkit_pipe_hold_fd(self->p)) < 0)
		return sk_raise(fd, self->name);
	return PyLong_FromLong(fd);
}

static PyMethodDef conn_methods[] = {
	{ "_hold_fd", F(conn_hold_fd), METH_NOARGS, "_hold_fd() -> the descriptor holding the end" },
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
