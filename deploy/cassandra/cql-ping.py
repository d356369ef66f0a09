#!/usr/bin/env python3
"""Stdlib-only CQL native protocol (v4) probe.

Sends OPTIONS (expects SUPPORTED), STARTUP {CQL_VERSION: 3.0.0} (expects READY) and
QUERY "SELECT release_version FROM system.local" (expects a Rows RESULT), then prints the
release version. Exit 0 when all three succeed, 1 otherwise (message on stderr).

Usage: cql-ping.py [HOST] [PORT] [--quiet] [--timeout SECONDS]
"""
import socket
import struct
import sys

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = (
    0x00, 0x01, 0x02, 0x05, 0x06, 0x07, 0x08)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        if len(out) != n:
            raise ValueError("truncated frame body")
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode("utf-8")

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def string_list(self):
        return [self.string() for _ in range(self.short())]

    def string_multimap(self):
        return {self.string(): self.string_list() for _ in range(self.short())}

    def option(self):
        type_id = self.short()
        if type_id == 0x0000:  # custom
            self.string()
        elif type_id in (0x0020, 0x0022):  # list, set
            self.option()
        elif type_id == 0x0021:  # map
            self.option()
            self.option()
        elif type_id in (0x0030, 0x0031):  # UDT / tuple: not expected here
            raise ValueError("unsupported column type %#x" % type_id)
        return type_id


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def request(sock, stream, opcode, body=b""):
    sock.sendall(struct.pack(">BBhBi", VERSION, 0, stream, opcode, len(body)) + body)
    version, flags, rstream, ropcode, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
    body = recv_exact(sock, length)
    if version != (0x80 | VERSION):
        raise ValueError("unexpected response version byte %#x" % version)
    if rstream != stream:
        raise ValueError("unexpected stream id %d (sent %d)" % (rstream, stream))
    reader = Reader(body)
    if flags & 0x08:  # warning flag: skip [string list] of warnings
        reader.string_list()
    if ropcode == OP_ERROR:
        code = reader.int()
        raise RuntimeError("server error %#x: %s" % (code, reader.string()))
    return ropcode, reader


def encode_string(s):
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def ping(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        op, r = request(sock, 1, OP_OPTIONS)
        if op != OP_SUPPORTED:
            raise ValueError("OPTIONS: expected SUPPORTED (0x06), got %#x" % op)
        supported = r.string_multimap()

        body = struct.pack(">H", 1) + encode_string("CQL_VERSION") + encode_string("3.0.0")
        op, _ = request(sock, 2, OP_STARTUP, body)
        if op != OP_READY:
            raise ValueError("STARTUP: expected READY (0x02), got %#x" % op)

        query = "SELECT release_version FROM system.local".encode("utf-8")
        body = struct.pack(">i", len(query)) + query + struct.pack(">HB", 0x0001, 0x00)
        op, r = request(sock, 3, OP_QUERY, body)
        if op != OP_RESULT:
            raise ValueError("QUERY: expected RESULT (0x08), got %#x" % op)
        kind = r.int()
        if kind != 0x0002:
            raise ValueError("QUERY: expected Rows result (2), got kind %d" % kind)
        flags, columns = r.int(), r.int()
        if flags & 0x0002:
            r.bytes()  # paging state
        if not flags & 0x0004:
            if flags & 0x0001:
                r.string(), r.string()  # global keyspace, table
            for _ in range(columns):
                if not flags & 0x0001:
                    r.string(), r.string()
                r.string()  # column name
                r.option()
        rows = r.int()
        if rows < 1:
            raise ValueError("system.local returned no rows")
        value = r.bytes()
        return (value or b"").decode("utf-8"), supported


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    quiet = "--quiet" in argv
    timeout = 5.0
    if "--timeout" in argv:
        i = argv.index("--timeout")
        timeout = float(argv[i + 1])
        args.remove(argv[i + 1])
    host = args[0] if len(args) > 0 else "127.0.0.1"
    port = int(args[1]) if len(args) > 1 else 9042
    try:
        version, supported = ping(host, port, timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        if not quiet:
            print("cql-ping %s:%d: %s" % (host, port, exc), file=sys.stderr)
        return 1
    if not quiet:
        print("release_version=%s protocol_versions=%s cql_version=%s" % (
            version,
            ",".join(supported.get("PROTOCOL_VERSIONS", [])),
            ",".join(supported.get("CQL_VERSION", []))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
