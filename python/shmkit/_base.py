"""What every shmkit object shares: a name, attach by name, pickling by name, unlink; and for
an object made without a name, its part in cleanup (_registry.py, _tracker.py)."""
from . import _registry, _shmkit


def _attach(cls, name, *extra):
    return cls.attach(name, *extra)


class Named:
    """Mixin: objects living under a name in /dev/shm."""

    _tag = "obj"

    def _new_name(self, name):
        if name is None:
            name = _registry.new_name(self._tag)
            _registry.own(name, self)
        else:
            _registry.check_name(name)
        self._name = name
        return name

    @property
    def name(self):
        """The object's name. Reading it pins an anonymous object until the program ends (or
        unlink()): a name that was read may be opened by name later, by anyone."""
        _registry.pin(self._name)
        return self._name

    @classmethod
    def attach(cls, name):
        """Open the object called `name` (made by Python, C or `shmkit create`); its kind is
        checked (WrongKindError)."""
        _registry.check_name(name)
        obj = cls.__new__(cls)
        obj._name = name
        obj._open(name)
        return obj

    def _reduce_args(self):
        return ()

    def __reduce__(self):
        return (_attach, (type(self), _registry.sent(self._name)) + self._reduce_args())

    def unlink(self):
        """Remove the name (processes that have it open keep using it)."""
        _registry.disown(self._name)
        _shmkit.remove(self._name)

    def __repr__(self):
        return "<shmkit.%s %s>" % (type(self).__name__, self._name)
