"""Messages bigger than a slot: they travel in a block of their own.

put() writes the pickle into a new block (named after an anonymous queue or pipe,
"<its name>-spill-<pid>-<n>-<random>", else "/shmkit-py-spill-<pid>-<n>-<random>") and
queues a small message instead: SPILL_MAGIC followed by the block's name. get() reads the
block, unlinks it and unpickles, so the object arrives whole and once. If the put fails
(full, closed), the block is removed before the exception propagates.

What a crash leaves: a producer killed between making the block and queueing the reference,
or a consumer killed between taking the reference and unlinking the block, leaves that block
behind. A spill of an anonymous queue or pipe goes with it (the tracker, _tracker.py, removes
it once the owner's name is gone); any other is an ordinary shmkit object: `shmkit ls` lists it
(kind block, its name says which pid made it) and `shmkit rm` removes it. Nothing is ever delivered in part.
"""
import pickle

from . import _registry, _shmkit

MAGIC = _shmkit.SPILL_MAGIC


class NotAPickleError(pickle.UnpicklingError):
    """get()/recv() took a message that is not a pickle (it is consumed; the next message is
    delivered normally). Raw messages are for get_bytes()/recv_bytes()."""


class Spill:
    _NotAPickle = NotAPickleError

    def _spill(self, data):
        name = _registry.spill_name(getattr(self, "_name", None) or self.name)
        block = _shmkit.Block(name, True, len(data))
        try:
            with memoryview(block) as m:
                m[:] = data
        except BaseException:
            block.close()
            _shmkit.remove(name)
            raise
        block.close()
        return MAGIC + name.encode("ascii")

    def _spilled_name(self, marker):
        name = bytes(marker[len(MAGIC):]).decode("ascii", "replace")
        if not name.startswith(_registry.PREFIX) or not _shmkit.name_ok(name):
            raise ValueError("a message refers to %r, which is not a spilled message" % name)
        return name

    def _unspill(self, marker):
        name = self._spilled_name(marker)
        block = _shmkit.Block(name, False)
        try:
            with memoryview(block) as m:
                data = bytes(m)
        finally:
            block.close()
            _shmkit.remove(name)
        return data

    def _unspill_drop(self, marker):
        try:
            _shmkit.remove(self._spilled_name(marker))
        except (OSError, ValueError):
            pass
