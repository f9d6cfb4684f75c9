#!/usr/bin/python3
"""Test helper for the bridge's edges, on loopback only.

  bridge_peer.py proxy LISTEN TARGET [RATE]
      a TCP proxy 127.0.0.1:LISTEN -> 127.0.0.1:TARGET, each direction at most RATE bytes/s
      (0: unlimited). SIGUSR1 cuts: every connection is closed and new ones are closed at
      once (an outage); SIGUSR2 ends the outage. Prints "ready" when listening.
  bridge_peer.py bigframe PORT SIZE SEND
      speaks ZeroMQ (ZMTP 3.0, NULL mechanism) as a DEALER, announces one frame of SIZE
      bytes and sends SEND of them; prints how many the peer took before it hung up.
  bridge_peer.py frames PORT N
      speaks ZeroMQ as a DEALER and sends N malformed bridge frames, then N frames of
      something else.
"""
import signal
import socket
import struct
import sys
import threading
import time


def proxy(listen, target, rate):
    cut = threading.Event()
    conns = []
    lock = threading.Lock()

    def close_all():
        with lock:
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            conns.clear()

    def on_cut(sig, frame):
        cut.set()
        close_all()

    def on_restore(sig, frame):
        cut.clear()

    signal.signal(signal.SIGUSR1, on_cut)
    signal.signal(signal.SIGUSR2, on_restore)

    def pump(src, dst):
        chunk = 65536 if not rate else max(64, min(4096, rate // 20))
        try:
            while True:
                data = src.recv(chunk)
                if not data:
                    break
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        try:
            c, _ = srv.accept()
        except InterruptedError:
            continue
        if cut.is_set():
            c.close()
            continue
        try:
            t = socket.create_connection(("127.0.0.1", target))
        except OSError:
            c.close()
            continue
        with lock:
            conns.extend((c, t))
        for a, b in ((c, t), (t, c)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


def zmtp_dealer(port):
    s = socket.create_connection(("127.0.0.1", port))
    greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32
    s.sendall(greeting)
    got = b""
    while len(got) < 64:
        d = s.recv(64 - len(got))
        if not d:
            raise SystemExit("peer hung up during the greeting")
        got += d
    body = b"\x05READY" + bytes([11]) + b"Socket-Type" + struct.pack(">I", 6) + b"DEALER"
    s.sendall(bytes([0x04, len(body)]) + body)
    return s


def frame(payload):
    if len(payload) < 256:
        return bytes([0, len(payload)]) + payload
    return bytes([2]) + struct.pack(">Q", len(payload)) + payload


def bigframe(port, size, send):
    s = zmtp_dealer(port)
    s.sendall(bytes([2]) + struct.pack(">Q", size))
    sent = 0
    block = b"\0" * 65536
    try:
        while sent < send:
            n = s.send(block[: min(len(block), send - sent)])
            sent += n
    except OSError:
        pass
    print(sent, flush=True)


def frames(port, n):
    s = zmtp_dealer(port)
    hdr = b"SKB2" + bytes([99, 0, 0, 0]) + struct.pack("<Q", 12345)  # an unknown frame type
    for i in range(n):
        s.sendall(frame(hdr))
    for i in range(n):
        s.sendall(frame(b"GET / HTTP/1.0\r\n\r\n"))
    time.sleep(1)
    s.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "proxy":
        proxy(int(a[1]), int(a[2]), int(a[3]) if len(a) > 3 else 0)
    elif a and a[0] == "bigframe":
        bigframe(int(a[1]), int(a[2]), int(a[3]))
    elif a and a[0] == "frames":
        frames(int(a[1]), int(a[2]))
    else:
        sys.exit(__doc__)
