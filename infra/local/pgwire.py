"""A minimal PostgreSQL wire-protocol client: connect (trust auth), run simple queries, read text rows.

Why not psycopg or psql: readiness must be a real connection answering a query, the stack's
bootstrap SQL must run before any Python driver is installed, and psql's location differs per
Debian version. The protocol subset needed is small (protocol 3.0: StartupMessage, Query,
RowDescription/DataRow/CommandComplete/ErrorResponse/ReadyForQuery), so it lives here.
"""

from __future__ import annotations

import socket
import struct

PROTOCOL_3 = 196608  # 3.0


class PgError(RuntimeError):
    """An ErrorResponse from the server (`code` is the SQLSTATE, e.g. 57P03 while starting up)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.code = fields.get("C", "")
        self.severity = fields.get("S", "ERROR")
        super().__init__(f"{self.severity} {self.code}: {fields.get('M', '?')}")


def _error_fields(body: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


class PgConnection:
    """One connection; use as a context manager. Only trust authentication is supported (what the
    stack's own cluster uses on 127.0.0.1); anything else raises with the method the server asked for."""

    def __init__(self, host: str, port: int, user: str, database: str, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in
                              (("user", user), ("database", database), ("application_name", "movieaugur-stack")))
            payload = struct.pack("!i", PROTOCOL_3) + params + b"\0"
            self.sock.sendall(struct.pack("!i", len(payload) + 4) + payload)
            while True:
                kind, body = self._read()
                if kind == b"R":
                    (method,) = struct.unpack("!i", body[:4])
                    if method != 0:
                        raise PgError({"C": "28000", "M": f"server asks for authentication method {method}; "
                                                          "only trust is supported here"})
                elif kind == b"E":
                    raise PgError(_error_fields(body))
                elif kind == b"Z":
                    return
                # S (ParameterStatus), K (BackendKeyData), N (NoticeResponse): nothing to do
        except BaseException:
            self.sock.close()
            raise

    def _recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError("server closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read(self) -> tuple[bytes, bytes]:
        header = self._recv_exact(5)
        (length,) = struct.unpack("!i", header[1:])
        return header[:1], self._recv_exact(length - 4)

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run `sql` (may hold several statements: one implicit transaction) and return the rows of the
        last statement that returned rows, as text. Raises PgError on the first error."""
        payload = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!i", len(payload) + 4) + payload)
        rows: list[tuple[str | None, ...]] = []
        error: PgError | None = None
        while True:
            kind, body = self._read()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                (count,) = struct.unpack("!h", body[:2])
                pos = 2
                row: list[str | None] = []
                for _ in range(count):
                    (size,) = struct.unpack("!i", body[pos:pos + 4])
                    pos += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(body[pos:pos + size].decode("utf-8", "replace"))
                        pos += size
                rows.append(tuple(row))
            elif kind == b"E":
                error = PgError(_error_fields(body))
            elif kind == b"Z":
                if error is not None:
                    raise error
                return rows

    def close(self) -> None:
        try:
            self.sock.sendall(b"X" + struct.pack("!i", 4))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pg_query(host: str, port: int, user: str, database: str, sql: str, timeout: float = 10.0) -> list[tuple[str | None, ...]]:
    """Connect, run `sql`, disconnect."""
    with PgConnection(host, port, user, database, timeout=timeout) as conn:
        return conn.query(sql)
