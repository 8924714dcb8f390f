#!/usr/bin/env python3
"""Soak client for `bertq serve` (scripts/soak.sh starts the server and calls this).

N clients send valid and malformed traffic over a Unix socket (or TCP on 127.0.0.1 only) for a
given time, one message at a time per connection (replies come back in order), and check that
every message got exactly one reply and every id came back exactly once. Prints a JSON summary.
Standard library only.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import zlib

TEXTS = [
    "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.",
    "John Smith lives at 221B Baker Street, London.",
    "The quick brown fox jumps over the lazy dog.",
    "Zoë Ångström lives in Zürich, near the river.",
    "Payment to account 1234567890 is due on 2024-03-01.",
]

# Malformed messages and the error_type each must get (one reply each, id null unless given).
MALFORMED = [
    (b"hello there\n", "bad_frame"),
    (b"\x01junk starting with the frame byte\n", "bad_frame"),
    (b'{"id": 5, "text": "unterminated}\n', "bad_frame"),
    (b'{"id": 6, "text": 5}\n', "bad_request"),
    (b'{"id": 7, "type": "reboot"}\n', "unknown_message"),
    (b'{"id": 8, "text": "\xff\xfe"}\n', "invalid_utf8"),
    (b'{"id": 9, "text": "x", "aggregation_strategy": "mean"}\n', "bad_request"),
    (b'{"id": 10}\n', "bad_request"),
]


def cobs(data):
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block = bytearray()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def health_frame(rid, corrupt=False):
    """A binary Health request (postcard: id varint, variant 2)."""
    payload = bytes([0, 1]) + varint(rid) + bytes([2])
    crc = zlib.crc32(payload)
    if corrupt:
        crc ^= 0x5555
    return b"\x00" + cobs(payload + struct.pack("<I", crc)) + b"\x00"


def read_varint(b, i):
    n, shift = 0, 0
    while True:
        x = b[i]
        n |= (x & 0x7F) << shift
        i += 1
        if x < 0x80:
            return n, i
        shift += 7


def uncobs(data):
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        out += data[i + 1 : i + code]
        i += code
        if code < 255 and i < len(data):
            out.append(0)
    return bytes(out)


class Conn:
    def __init__(self, args):
        if args.unix:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(args.unix)
        else:
            host, port = args.tcp.rsplit(":", 1)
            assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
            self.s = socket.create_connection((host, int(port)))
        self.s.settimeout(60)
        self.buf = b""
        self.binary = False

    def send(self, b):
        self.s.sendall(b)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def frame(self):
        while True:
            self.buf = self.buf.lstrip(b"\x00")
            if b"\x00" in self.buf:
                f, self.buf = self.buf.split(b"\x00", 1)
                return uncobs(f)
            self._fill()

    def close(self):
        self.s.close()


def client(k, args, deadline, stats, lock):
    rnd = random.Random(args.seed * 1000 + k)
    seen = {}
    lat, errors, busy, requests, malformed = [], {}, 0, 0, 0
    next_id = k * 10_000_000 + 1
    conn, on_conn = Conn(args), 0
    failure = None
    try:
        while time.monotonic() < deadline:
            if on_conn >= args.per_connection:
                conn.close()
                conn, on_conn = Conn(args), 0
            on_conn += 1
            r = rnd.random()
            if r < args.malformed:
                msg, want = rnd.choice(MALFORMED)
                conn.send(msg)
                malformed += 1
                if not msg.startswith(b"{") and conn.binary:
                    # Garbage is answered in the connection's last format: a frame, id 0.
                    m = conn.frame()
                    rid0, _ = read_varint(m, 2)
                    if rid0 != 0:
                        raise AssertionError(f"{msg!r}: answered with id {rid0}")
                    continue
                conn.binary = False
                v = conn.line()
                got = v.get("error_type")
                if got != want:
                    raise AssertionError(f"{msg!r}: expected {want}, got {v}")
                continue
            rid = next_id
            next_id += 1
            t0 = time.monotonic()
            if r < args.malformed + 0.05:
                # Binary: a corrupted frame (answered with id 0), then a health request.
                conn.send(health_frame(rid, corrupt=True))
                m = conn.frame()
                rid0, _ = read_varint(m, 2)
                if rid0 != 0:
                    raise AssertionError(f"a corrupted frame answered with id {rid0}")
                malformed += 1
                conn.send(health_frame(rid))
                m = conn.frame()
                got, _ = read_varint(m, 2)
                seen[got] = seen.get(got, 0) + 1
                requests += 1
                conn.binary = True
                continue
            text = rnd.choice(TEXTS) * rnd.randint(1, 4)
            conn.send(json.dumps({"id": rid, "text": text}).encode() + b"\n")
            conn.binary = False
            v = conn.line()
            requests += 1
            seen[v["id"]] = seen.get(v["id"], 0) + 1
            if "result" in v:
                lat.append(time.monotonic() - t0)
            else:
                et = v.get("error_type")
                errors[et] = errors.get(et, 0) + 1
                if et == "busy":
                    busy += 1
        conn.close()
    except Exception as e:  # noqa: BLE001 - reported in the summary
        failure = f"client {k}: {e!r}"
    expected = set(range(k * 10_000_000 + 1, next_id))
    missing = len(expected - set(seen))
    dup = sum(1 for n in seen.values() if n > 1)
    stray = len(set(seen) - expected)
    with lock:
        stats["latency"] += lat
        stats["requests"] += requests
        stats["malformed"] += malformed
        stats["busy"] += busy
        for e, n in errors.items():
            stats["errors"][e] = stats["errors"].get(e, 0) + n
        stats["missing"] += missing
        stats["duplicated"] += dup
        stats["stray"] += stray
        if failure:
            stats["failures"].append(failure)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--unix")
    p.add_argument("--tcp")
    p.add_argument("--pid", type=int)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--malformed", type=float, default=0.15)
    p.add_argument("--per-connection", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    stats = {"latency": [], "requests": 0, "malformed": 0, "busy": 0, "errors": {},
             "missing": 0, "duplicated": 0, "stray": 0, "failures": []}
    lock = threading.Lock()
    rss_start = rss_kib(args.pid) if args.pid else None
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=client, args=(k, args, deadline, stats, lock))
               for k in range(args.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    lat = sorted(stats["latency"])
    q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))] * 1000, 2) if lat else None
    summary = {
        "clients": args.clients,
        "seconds": round(took, 1),
        "requests": stats["requests"],
        "answered": len(lat),
        "malformed_sent": stats["malformed"],
        "errors": stats["errors"],
        "busy": stats["busy"],
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_kib(args.pid) if args.pid else None,
        "ids_missing": stats["missing"],
        "ids_duplicated": stats["duplicated"],
        "ids_stray": stats["stray"],
        "failures": stats["failures"],
    }
    print(json.dumps(summary))
    ok = not stats["failures"] and not stats["missing"] and not stats["duplicated"] \
        and not stats["stray"] and stats["requests"] > 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
