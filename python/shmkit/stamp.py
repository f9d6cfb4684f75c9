"""Stamped messages, as `shmkit produce --count` makes them and `shmkit consume --verify`
checks them (tools/stamp.c).

A stamped message of `length` bytes (length >= 24) starts with a 24-byte header in the
machine's byte order (little-endian on x86-64 and arm64):

    offset 0   uint32  magic     0x54534b53 ("SKST" read as little-endian bytes)
    offset 4   uint32  producer  the sender's id
    offset 8   uint64  seq       0, 1, 2, ... per producer
    offset 16  uint32  len       the whole message's length
    offset 20  uint32  sum       FNV-1a (32-bit) over producer, seq, len (their bytes as
                                 stored) and then the payload

and byte i of the message, for i from 24 to length - 1, is (seq + i) mod 256.
"""
import struct

MAGIC = 0x54534B53
HEADER = struct.Struct("=IIQII")
SIZE = HEADER.size  # 24


def _fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def _sum(producer, seq, length, payload):
    h = _fnv1a(2166136261, struct.pack("=IQI", producer, seq, length))
    return _fnv1a(h, payload)


def make(producer, seq, length=64):
    """A stamped message of `length` bytes from `producer` with sequence number `seq`."""
    if length < SIZE:
        raise ValueError("a stamped message has at least %d bytes" % SIZE)
    payload = bytes((seq + i) & 0xFF for i in range(SIZE, length))
    return HEADER.pack(MAGIC, producer, seq, length, _sum(producer, seq, length, payload)) + \
        payload


def check(msg):
    """(producer, seq) of a well-formed stamped message; ValueError otherwise."""
    msg = bytes(msg)
    if len(msg) < SIZE:
        raise ValueError("%d bytes: shorter than a stamp" % len(msg))
    magic, producer, seq, length, total = HEADER.unpack_from(msg)
    if magic != MAGIC or length != len(msg):
        raise ValueError("not a stamped message (magic %#x, len %d of %d)"
                         % (magic, length, len(msg)))
    if _sum(producer, seq, length, msg[SIZE:]) != total:
        raise ValueError("stamped message from %d seq %d: checksum mismatch" % (producer, seq))
    return producer, seq
