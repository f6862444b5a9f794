"""A WebSocket client for the tests (RFC 6455), on the standard library
only: the handshake, masked frames of any opcode and fragmentation, and
the frames the server sends, read one by one, so tests can say exactly
what goes over the wire."""

import base64
import hashlib
import json
import os
import socket
import struct

import mqd_harness as harness

TIMEOUT = 10.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def encode_frame(opcode, payload, fin=True, mask=True, rsv=0):
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WsClient:
    """One WebSocket connection: `request()` sends a command as a text
    message and returns the next message as JSON, as mqd_harness.Client
    does over TCP."""

    def __init__(self, port, host="127.0.0.1", path="/", origin=None, headers=None,
                 sock=None, server_hostname=None, ctx=None):
        raw = sock or socket.create_connection((host, port), timeout=TIMEOUT)
        if ctx is not None:
            raw = ctx.wrap_socket(raw, server_hostname=server_hostname or host)
        self.sock = raw
        self.sock.settimeout(TIMEOUT)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if origin:
            lines.append(f"Origin: {origin}")
        lines += headers or []
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.status, self.headers = self.read_head()
        if self.status == 101:
            assert self.headers["sec-websocket-accept"] == accept_key(key)

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed in the response head: {self.buf!r}"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def body(self):
        """The rest of a response (the server closes after it)."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return self.buf
            self.buf += chunk

    def _take(self, n):
        if len(self.buf) < n:   # a bytearray: a large frame is not copied per chunk
            buf = bytearray(self.buf)
            while len(buf) < n:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError(f"closed with {len(buf)} of {n} bytes")
                buf += chunk
            self.buf = bytes(buf)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def frame(self, timeout=TIMEOUT):
        """The next frame from the server: (fin, opcode, payload). Server
        frames are never masked."""
        self.sock.settimeout(timeout)
        b0, b1 = self._take(2)
        assert b1 & 0x80 == 0, "a masked frame from the server"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._take(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def send_frame(self, opcode, payload, fin=True, mask=True, rsv=0):
        self.sock.sendall(encode_frame(opcode, payload, fin, mask, rsv))

    def send(self, text):
        self.send_frame(TEXT, text.encode() if isinstance(text, str) else text)

    def cmd(self, **fields):
        self.send(json.dumps(fields))

    def message(self, timeout=TIMEOUT):
        """The next text message, whole (answering no ping)."""
        fin, opcode, payload = self.frame(timeout)
        assert opcode == TEXT, (opcode, payload)
        assert fin
        return payload.decode()

    def line(self, timeout=TIMEOUT):
        return json.loads(self.message(timeout))

    def request(self, **fields):
        self.cmd(**fields)
        return self.line()

    def close_code(self, timeout=TIMEOUT):
        """Reads frames until a close: its status code (None when empty)."""
        while True:
            fin, opcode, payload = self.frame(timeout)
            if opcode == CLOSE:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None

    def at_eof(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


class WsLineClient(WsClient):
    """mqd_harness.Client's interface over WebSocket, for the core suites:
    each line sent goes as one text message, and each message comes back
    as a line ended by "\r\n", as TCP would have it."""

    def __init__(self, port):
        super().__init__(port)
        assert self.status == 101, self.status

    def send(self, data):
        text = data.decode() if isinstance(data, bytes) else data
        for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
            super().send(line)

    def raw_line(self, timeout=TIMEOUT):
        try:
            fin, opcode, payload = self.frame(timeout)
        except EOFError:
            return b""
        if opcode == CLOSE:
            return b""
        assert opcode == TEXT and fin, (opcode, payload)
        return payload + b"\r\n"

    # the rest as the TCP client has it, on top of raw_line
    line = harness.Client.line
    lines = harness.Client.lines
    request = harness.Client.request
    sync = harness.Client.sync
