/*
 * Queue: a shmkit queue of pickles (put/get) or raw bytes (put_bytes/get_bytes).
 *
 * A shmkit handle is used by one thread at a time (it owns a participant entry whose claim
 * words say what that thread is doing), while a Python Queue is shared by all the threads of a
 * process; so each thread gets its own handle, opened by name on its first call. The thread
 * that made the object uses the first one without a lookup.
 */
#include "common.h"

#include <pythread.h>
#include <stdlib.h>
#include <string.h>

/* put() of a bytes object whose pickle fits builds that pickle here, on the stack. */
#define PUT_STACK_BYTES 1024

struct qh {
	shmkit_queue *h;
	char *buf; /* max_size bytes: where get copies a message out */
};

typedef struct {
	PyObject_HEAD
	char *name;
	struct qh main;
	unsigned long main_ident;
	PyObject *others; /* thread ident -> capsule of struct qh */
	uint32_t max_size, capacity;
	int closed;
} QueueObject;

static void qh_free(struct qh *q)
{
	shmkit_queue_close(q->h);
	PyMem_RawFree(q->buf);
	q->h = NULL;
	q->buf = NULL;
}

static void capsule_free(PyObject *cap)
{
	struct qh *q = PyCapsule_GetPointer(cap, "shmkit.qh");

	if (q) {
		qh_free(q);
		PyMem_RawFree(q);
	}
}

static int qh_open(QueueObject *self, struct qh *q, int create_args_unused)
{
	int rc = shmkit_queue_open(self->name, &q->h);

	if (rc < 0)
		return sk_raise(rc, self->name), -1;
	if (!(q->buf = PyMem_RawMalloc(self->max_size ? self->max_size : 1))) {
		shmkit_queue_close(q->h);
		return PyErr_NoMemory(), -1;
	}
	return 0;
}

/* This thread's handle, opened on first use; NULL with an exception set. */
static struct qh *handle(QueueObject *self)
{
	unsigned long id = PyThread_get_thread_ident();
	PyObject *key, *cap;
	struct qh *q;

	if (self->closed)
		return PyErr_Format(PyExc_ValueError, "Queue %s is closed", self->name), NULL;
	if (id == self->main_ident)
		return &self->main;
	if (!(key = PyLong_FromUnsignedLong(id)))
		return NULL;
	if (!self->others && !(self->others = PyDict_New()))
		goto fail;
	if ((cap = PyDict_GetItemWithError(self->others, key))) {
		Py_DECREF(key);
		return PyCapsule_GetPointer(cap, "shmkit.qh");
	}
	if (PyErr_Occurred())
		goto fail;
	if (!(q = PyMem_RawCalloc(1, sizeof(*q))))
		goto fail;
	if (qh_open(self, q, 0) < 0) {
		PyMem_RawFree(q);
		goto fail;
	}
	if (!(cap = PyCapsule_New(q, "shmkit.qh", capsule_free))) {
		qh_free(q);
		PyMem_RawFree(q);
		goto fail;
	}
	if (PyDict_SetItem(self->others, key, cap) < 0) {
		Py_DECREF(cap);
		goto fail;
	}
	Py_DECREF(cap);
	Py_DECREF(key);
	return q;
fail:
	Py_DECREF(key);
	return NULL;
}

static int queue_init(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name",	"create", "capacity", "max_size", "writers",
				  "joinable", "mode",	"hold",	    NULL };
	struct shmkit_queue_attr attr = { 0 };
	struct shmkit_queue_stats st;
	const char *name;
	int create = 0, joinable = 0, hold = 0, rc;

	if (self->name)
		return PyErr_SetString(PyExc_RuntimeError, "already initialised"), -1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pIIIpIp", kwlist, &name, &create,
					 &attr.capacity, &attr.max_size, &attr.writers, &joinable,
					 &attr.mode, &hold))
		return -1;
	attr.flags = joinable ? SHMKIT_JOINABLE : 0;
	if (create) {
		Py_BEGIN_ALLOW_THREADS
		rc = shmkit_queue_create(name, &attr, &self->main.h);
		Py_END_ALLOW_THREADS
		if (rc < 0)
			return sk_raise(rc, name), -1;
		shmkit_queue_close(self->main.h);
		self->main.h = NULL;
	}
	if (!(self->name = PyMem_RawMalloc(strlen(name) + 1)))
		return PyErr_NoMemory(), -1;
	strcpy(self->name, name);
	/* Sizes first: qh_open allocates max_size. */
	if ((rc = shmkit_queue_open(name, &self->main.h)) < 0)
		return sk_raise(rc, name), -1;
	self->max_size = shmkit_queue_max_size(self->main.h);
	if (shmkit_queue_stats(self->main.h, &st) == 0)
		self->capacity = st.capacity;
	shmkit_queue_close(self->main.h);
	self->main.h = NULL;
	if (qh_open(self, &self->main, 0) < 0)
		return -1;
	self->main_ident = PyThread_get_thread_ident();
	/* The maker stays a writer until close(): EOF must not come before it says so. */
	if (hold && (rc = shmkit_queue_attach_writer(self->main.h)) < 0)
		return sk_raise(rc, name), -1;
	return 0;
}

static void queue_dealloc(QueueObject *self)
{
	Py_CLEAR(self->others);
	qh_free(&self->main);
	PyMem_RawFree(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

struct xfer {
	shmkit_queue *h;
	const char *msg;
	char *buf;
	size_t len;
};

static int put_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return shmkit_queue_put_timeout(x->h, x->msg, x->len, t);
}

static int get_call(void *ctx, int64_t t)
{
	struct xfer *x = ctx;

	return shmkit_queue_get_timeout(x->h, x->buf, x->len, t);
}

/* Put msg[0..len); data (bytes, the same message) is for a message too big for a slot:
 * non-NULL lets it travel in a block (spill). */
static PyObject *put_msg(QueueObject *self, const char *msg, size_t len, PyObject *data,
			 int block, PyObject *timeout)
{
	PyObject *marker = NULL;
	struct xfer x;
	struct qh *q;
	int64_t t;
	int rc;

	if ((t = sk_block_timeout(block, timeout)) == -2 || !(q = handle(self)))
		return NULL;
	x.h = q->h;
	x.msg = msg;
	x.len = len;
	if (x.len > self->max_size) {
		int spill = data != NULL;

		if (!spill)
			return PyErr_Format(PyExc_ValueError,
					    "message of %zu bytes is larger than queue %s's "
					    "largest message, %u bytes: nothing was queued",
					    x.len, self->name, self->max_size),
			       NULL;
		if (!(marker = PyObject_CallMethod((PyObject *)self, "_spill", "O", data)))
			return NULL;
		x.msg = PyBytes_AS_STRING(marker);
		x.len = (size_t)PyBytes_GET_SIZE(marker);
	}
	rc = sk_block(put_call, &x, t);
	if (rc < 0 && marker) {
		/* Not queued: the block it would have referred to goes too. */
		PyObject *exc_t, *exc_v, *exc_tb, *r;
		PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
		r = PyObject_CallMethod((PyObject *)self, "_unspill_drop", "O", marker);
		Py_XDECREF(r);
		PyErr_Clear();
		PyErr_Restore(exc_t, exc_v, exc_tb);
	}
	Py_XDECREF(marker);
	if (rc == -ETIMEDOUT)
		return PyErr_SetNone(sk_Full), NULL;
	if (rc < 0)
		return sk_raise(rc, self->name);
	Py_RETURN_NONE;
}

/* Put `data` (bytes); spill=1 lets a pickle too big for a slot travel in a block. */
static PyObject *put_data(QueueObject *self, PyObject *data, int block, PyObject *timeout,
			  int spill)
{
	return put_msg(self, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data),
		       spill ? data : NULL, block, timeout);
}

/* block=True, timeout=None from fast arguments; -1 on error. */
static int block_arg(PyObject *b, int *block)
{
	*block = b ? PyObject_IsTrue(b) : 1;
	return *block < 0 ? -1 : 0;
}

static PyObject *queue_put(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	static const char *const names[] = { "obj", "block", "timeout" };
	PyObject *a[3], *data, *r;
	int block;

	if (sk_fast_args("put", args, nargs, kwnames, names, 3, 1, a) < 0 ||
	    block_arg(a[1], &block) < 0)
		return NULL;
	/* A small bytes object's pickle is built on the stack (no pickler, no bytes object):
	 * the common case of talking bytes between Python processes. */
	if (PyBytes_CheckExact(a[0])) {
		char pk[PUT_STACK_BYTES];
		Py_ssize_t n = sk_pickle_bytes_size(PyBytes_GET_SIZE(a[0]));

		if (n >= 0 && n <= (Py_ssize_t)sizeof(pk) && (size_t)n <= self->max_size) {
			sk_pickle_bytes(pk, PyBytes_AS_STRING(a[0]), PyBytes_GET_SIZE(a[0]));
			return put_msg(self, pk, (size_t)n, NULL, block, a[2] ? a[2] : Py_None);
		}
	}
	if (!(data = sk_pickle(a[0])))
		return NULL;
	r = put_data(self, data, block, a[2] ? a[2] : Py_None, 1);
	Py_DECREF(data);
	return r;
}

static PyObject *queue_put_bytes(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "data", "block", "timeout" };
	PyObject *a[3], *b, *r;
	int block;

	if (sk_fast_args("put_bytes", args, nargs, kwnames, names, 3, 1, a) < 0 ||
	    block_arg(a[1], &block) < 0)
		return NULL;
	if (!(b = PyBytes_Check(a[0]) ? (Py_INCREF(a[0]), a[0]) : PyBytes_FromObject(a[0])))
		return NULL;
	r = put_data(self, b, block, a[2] ? a[2] : Py_None, 0);
	Py_DECREF(b);
	return r;
}

/* Get one message: 0 with *buf and *n pointing into this thread's buffer, or -1 (exception). */
static int get_raw(QueueObject *self, int block, PyObject *timeout, const char **buf,
		   Py_ssize_t *n)
{
	struct xfer x;
	struct qh *q;
	int64_t t;
	int rc;

	if ((t = sk_block_timeout(block, timeout)) == -2 || !(q = handle(self)))
		return -1;
	x.h = q->h;
	x.buf = q->buf;
	x.len = self->max_size;
	rc = sk_block(get_call, &x, t);
	if (rc == -ETIMEDOUT)
		return PyErr_SetNone(sk_Empty), -1;
	if (rc == -EPIPE)
		return PyErr_Format(PyExc_EOFError,
				    "queue %s is at EOF: its writers are gone and it is drained",
				    self->name),
		       -1;
	if (rc < 0)
		return sk_raise(rc, self->name), -1;
	*buf = q->buf;
	*n = rc;
	return 0;
}

/* Bytes of a message: a spilled one is fetched from its block. */
static PyObject *message_bytes(PyObject *self, const char *buf, Py_ssize_t n)
{
	PyObject *marker, *r;

	if (!sk_is_spill(buf, n))
		return PyBytes_FromStringAndSize(buf, n);
	if (!(marker = PyBytes_FromStringAndSize(buf, n)))
		return NULL;
	r = PyObject_CallMethod(self, "_unspill", "O", marker);
	Py_DECREF(marker);
	return r;
}

/* Unpickle; a message that is not a pickle says so (it is consumed, the next is not). */
static PyObject *message_object(PyObject *self, const char *buf, Py_ssize_t n)
{
	PyObject *data, *r;

	if (!sk_is_spill(buf, n)) {
		r = sk_unpickle(buf, n);
	} else {
		if (!(data = message_bytes(self, buf, n)))
			return NULL;
		r = sk_unpickle(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
		Py_DECREF(data);
	}
	if (!r && !PyErr_ExceptionMatches(PyExc_MemoryError)) {
		PyObject *et, *ev, *etb, *cls, *e;
		PyErr_Fetch(&et, &ev, &etb);
		PyErr_NormalizeException(&et, &ev, &etb);
		if ((cls = PyObject_GetAttrString(self, "_NotAPickle"))) {
			e = PyObject_CallFunction(cls, "N",
						  PyUnicode_FromFormat(
							  "a message of %zd bytes is not a pickle "
							  "(it was consumed; get_bytes()/recv_bytes() "
							  "take raw messages): %S",
							  n, ev ? ev : Py_None));
			if (e) {
				if (ev) {
					Py_INCREF(ev);
					PyException_SetCause(e, ev);
				}
				PyErr_SetObject(cls, e);
				Py_DECREF(e);
			}
			Py_DECREF(cls);
		}
		Py_XDECREF(et);
		Py_XDECREF(ev);
		Py_XDECREF(etb);
	}
	return r;
}

PyObject *sk_message_bytes(PyObject *self, const char *buf, Py_ssize_t n);
PyObject *sk_message_object(PyObject *self, const char *buf, Py_ssize_t n);
PyObject *sk_message_bytes(PyObject *self, const char *buf, Py_ssize_t n)
{
	return message_bytes(self, buf, n);
}
PyObject *sk_message_object(PyObject *self, const char *buf, Py_ssize_t n)
{
	return message_object(self, buf, n);
}

static PyObject *queue_get(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	static const char *const names[] = { "block", "timeout" };
	PyObject *a[2];
	const char *buf;
	Py_ssize_t n;
	int block;

	if (sk_fast_args("get", args, nargs, kwnames, names, 2, 0, a) < 0 ||
	    block_arg(a[0], &block) < 0)
		return NULL;
	if (get_raw(self, block, a[1] ? a[1] : Py_None, &buf, &n) < 0)
		return NULL;
	return message_object((PyObject *)self, buf, n);
}

static PyObject *queue_get_bytes(QueueObject *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "block", "timeout" };
	PyObject *a[2];
	const char *buf;
	Py_ssize_t n;
	int block;

	if (sk_fast_args("get_bytes", args, nargs, kwnames, names, 2, 0, a) < 0 ||
	    block_arg(a[0], &block) < 0)
		return NULL;
	if (get_raw(self, block, a[1] ? a[1] : Py_None, &buf, &n) < 0)
		return NULL;
	return message_bytes((PyObject *)self, buf, n);
}

static PyObject *queue_task_done(QueueObject *self, PyObject *unused)
{
	struct qh *q = handle(self);
	int rc;

	if (!q)
		return NULL;
	rc = shmkit_queue_task_done(q->h);
	if (rc == -EINVAL)
		return PyErr_SetString(PyExc_ValueError, "task_done() called too many times"), NULL;
	if (rc < 0)
		return sk_raise(rc, self->name);
	Py_RETURN_NONE;
}

static int join_call(void *ctx, int64_t t)
{
	return shmkit_queue_join_timeout(ctx, t);
}

static PyObject *queue_join(QueueObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	struct qh *q;
	int64_t t;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout))
		return NULL;
	if ((t = sk_timeout_ns(timeout)) == -2 || !(q = handle(self)))
		return NULL;
	rc = sk_block(join_call, q->h, t);
	if (rc == -ETIMEDOUT)
		Py_RETURN_FALSE;
	if (rc < 0)
		return sk_raise(rc, self->name);
	Py_RETURN_TRUE;
}

static PyObject *queue_qsize(QueueObject *self, PyObject *unused)
{
	struct qh *q = handle(self);

	return q ? PyLong_FromSize_t(shmkit_queue_size(q->h)) : NULL;
}

static PyObject *queue_empty(QueueObject *self, PyObject *unused)
{
	struct qh *q = handle(self);

	return q ? PyBool_FromLong(shmkit_queue_empty(q->h) == 1) : NULL;
}

static PyObject *queue_full(QueueObject *self, PyObject *unused)
{
	struct qh *q = handle(self);

	return q ? PyBool_FromLong(shmkit_queue_full(q->h) == 1) : NULL;
}

static PyObject *queue_stats(QueueObject *self, PyObject *unused)
{
	struct shmkit_queue_stats st;
	struct qh *q = handle(self);
	int rc;

	if (!q)
		return NULL;
	if ((rc = shmkit_queue_stats(q->h, &st)) < 0)
		return sk_raise(rc, self->name);
	return Py_BuildValue(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:O,s:K,s:K,s:K,s:K,s:K,s:K}",
		"capacity", st.capacity, "max_size", st.max_size, "depth", st.depth,
		"writers_expected", st.writers_expected, "writers_attached", st.writers_attached,
		"writers_total", st.writers_total, "producers_waiting", st.producers_waiting,
		"consumers_waiting", st.consumers_waiting, "participants", st.participants, "eof",
		st.eof ? Py_True : Py_False, "joinable", st.joinable ? Py_True : Py_False,
		"put_total", (unsigned long long)st.put_total, "get_total",
		(unsigned long long)st.get_total, "unfinished", (unsigned long long)st.unfinished,
		"slots_reclaimed", (unsigned long long)st.slots_reclaimed, "lost_dead_consumer",
		(unsigned long long)st.lost_dead_consumer, "participants_reaped",
		(unsigned long long)st.participants_reaped);
}

/* Detach every handle of this process as a writer (EOF may follow), then refuse use. */
static PyObject *queue_close(QueueObject *self, PyObject *unused)
{
	Py_ssize_t pos = 0;
	PyObject *k, *cap;

	if (self->closed)
		Py_RETURN_NONE;
	if (self->main.h)
		shmkit_queue_detach_writer(self->main.h);
	while (self->others && PyDict_Next(self->others, &pos, &k, &cap)) {
		struct qh *q = PyCapsule_GetPointer(cap, "shmkit.qh");
		if (q && q->h)
			shmkit_queue_detach_writer(q->h);
	}
	PyErr_Clear();
	self->closed = 1;
	Py_RETURN_NONE;
}

static PyObject *queue_shutdown(QueueObject *self, PyObject *unused)
{
	struct qh *q = handle(self);

	if (!q)
		return NULL;
	shmkit_queue_shutdown(q->h);
	Py_RETURN_NONE;
}

static PyObject *queue_name(QueueObject *self, void *c)
{
	return PyUnicode_FromString(self->name ? self->name : "");
}

static PyObject *queue_max_size(QueueObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->max_size);
}

static PyObject *queue_capacity(QueueObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->capacity);
}

static PyObject *queue_closed(QueueObject *self, void *c)
{
	return PyBool_FromLong(self->closed);
}

#define KW METH_VARARGS | METH_KEYWORDS
#define FAST METH_FASTCALL | METH_KEYWORDS
#define F(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef queue_methods[] = {
	{ "put", F(queue_put), FAST, "put(obj, block=True, timeout=None)" },
	{ "get", F(queue_get), FAST, "get(block=True, timeout=None) -> obj" },
	{ "put_bytes", F(queue_put_bytes), FAST, "put_bytes(data, block=True, timeout=None)" },
	{ "get_bytes", F(queue_get_bytes), FAST, "get_bytes(block=True, timeout=None) -> bytes" },
	{ "task_done", F(queue_task_done), METH_NOARGS, "task_done()" },
	{ "_join", F(queue_join), KW, "_join(timeout=None) -> bool" },
	{ "qsize", F(queue_qsize), METH_NOARGS, "qsize() -> int" },
	{ "empty", F(queue_empty), METH_NOARGS, "empty() -> bool" },
	{ "full", F(queue_full), METH_NOARGS, "full() -> bool" },
	{ "stats", F(queue_stats), METH_NOARGS, "stats() -> dict" },
	{ "close", F(queue_close), METH_NOARGS, "close(): this process puts no more" },
	{ "shutdown", F(queue_shutdown), METH_NOARGS, "shutdown(): EOF for everyone now" },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef queue_getset[] = {
	{ "name", (getter)queue_name, NULL, NULL, NULL },
	{ "max_size", (getter)queue_max_size, NULL, "largest message in a slot (bytes)", NULL },
	{ "capacity", (getter)queue_capacity, NULL, "messages it holds", NULL },
	{ "_closed", (getter)queue_closed, NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sk_QueueType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.Queue",
	.tp_basicsize = sizeof(QueueObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)queue_init,
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_methods = queue_methods,
	.tp_getset = queue_getset,
};
