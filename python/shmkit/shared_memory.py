"""SharedMemory(name=None, create=False, size=0), as multiprocessing.shared_memory's.

Names may be given with or without the leading "/". Unlike the standard library's, nothing
here unlinks a block behind its users' backs: a block is removed by unlink(), or, for one made
without a name, once the program that made it has ended (however it ended: see _tracker.py) and
nobody holds it any more. The block also carries a recursive Lock
(get_lock()) that C programs see as shmkit_block_lock().
"""
from . import _registry, _shmkit


class SharedMemory:
    def __init__(self, name=None, create=False, size=0):
        if create:
            if size <= 0:
                raise ValueError("'size' must be a positive number different from zero")
            if name is None:
                path = _registry.new_name("shm")
                _registry.pin(path)  # kept until unlink() or the program's end
            else:
                path = _registry.check_name(name if name.startswith("/") else "/" + name)
            self._block = _shmkit.Block(path, True, size)
        else:
            if name is None:
                raise ValueError("'name' can only be None if create=True")
            path = _registry.check_name(name if name.startswith("/") else "/" + name)
            kind = _shmkit.info(path)["kind"]
            if kind != "block":
                raise _shmkit.WrongKindError("%s is a %s, not a block" % (path, kind))
            self._block = _shmkit.Block(path, False)
        self._path = path
        self._name = name if name is not None else path[1:]
        self._buf = memoryview(self._block)

    @property
    def name(self):
        return self._name

    @property
    def size(self):
        return self._block.size

    @property
    def buf(self):
        return self._buf

    def get_lock(self):
        return self._block.get_lock()

    def close(self):
        if self._buf is not None:
            self._buf.release()
            self._buf = None
        self._block.close()

    def unlink(self):
        _registry.disown(self._path)
        _shmkit.remove(self._path)

    def __reduce__(self):
        return (self.__class__, (_registry.sent(self._name), False))

    def __repr__(self):
        return "%s(%r, size=%d)" % (type(self).__name__, self._name, self.size)
