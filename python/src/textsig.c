/*
 * __text_signature__ for every C function and method, so that inspect.signature() (help(),
 * IDEs, typing tools) works on them. CPython reads a signature from a docstring that starts
 * "name($self, params)\n--\n\n". Our docstrings start with the call as a user writes it,
 * "name(params) -> what: text", written once next to each method; rather than write every
 * signature a second time in that form (and keep the two in step), the module turns the first
 * form into the second when it is imported, from the docstring and the method's calling
 * convention:
 *   METH_NOARGS                   name($self, /)
 *   METH_O                        name($self, param, /)          (param from the docstring)
 *   ... | METH_KEYWORDS           name($self, params)            (keywords accepted)
 *   METH_VARARGS, METH_FASTCALL   name($self, params, /)         (positional only)
 * A method documented without its parameters gets (*args) or (*args, **kwargs). The table is
 * rewritten in place once (a docstring that already has a signature is left alone), before the
 * type is readied, so every descriptor made from it shows the signature.
 * tests: python/tests/test_package.py checks every C method has a signature, and mypy's stubtest
 * compares them with shmkit/_shmkit.pyi.
 */
#include "common.h"

#include <string.h>

static int has_signature(const char *doc)
{
	return doc && strstr(doc, ")\n--\n\n") != NULL;
}

static char *text_signature(const PyMethodDef *def, const char *self)
{
	const char *doc = def->ml_doc ? def->ml_doc : "", *params = NULL, *rest = doc, *close;
	size_t name_len = strlen(def->ml_name), params_len = 0, size;
	int flags = def->ml_flags, keywords = flags & METH_KEYWORDS;
	char *out, args[256];

	if (!strncmp(doc, def->ml_name, name_len) && doc[name_len] == '(' &&
	    (close = strchr(doc + name_len, ')'))) {
		params = doc + name_len + 1;
		params_len = (size_t)(close - params);
		rest = close + 1;
		while (*rest == ':' || *rest == ' ')
			rest++;
	}
	if (params_len >= sizeof(args) - 32)
		return NULL;
	if (flags & METH_NOARGS)
		snprintf(args, sizeof(args), ", /");
	else if (flags & METH_O)
		snprintf(args, sizeof(args), ", %.*s, /", params_len ? (int)params_len : 3,
			 params_len ? params : "arg");
	else if (!params)
		snprintf(args, sizeof(args), keywords ? ", *args, **kwargs" : ", *args");
	else if (!params_len)
		snprintf(args, sizeof(args), keywords ? "" : ", /");
	else
		snprintf(args, sizeof(args), ", %.*s%s", (int)params_len, params,
			 keywords ? "" : ", /");
	size = name_len + strlen(self) + strlen(args) + strlen(rest) + 16;
	if (!(out = PyMem_RawMalloc(size)))
		return NULL;
	snprintf(out, size, "%s(%s%s)\n--\n\n%s", def->ml_name, self, args, rest);
	return out;
}

void sk_text_signatures(PyMethodDef *defs, const char *self)
{
	char *doc;

	for (; defs && defs->ml_name; defs++) {
		if (has_signature(defs->ml_doc) || !(doc = text_signature(defs, self)))
			continue;
		defs->ml_doc = doc; /* kept for the life of the process, like the table */
	}
}
