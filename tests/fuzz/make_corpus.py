"""Writes the seed corpora under tests/fuzz/corpus/ from the protocol suite's
own inputs (run it again when those lists change)."""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "protocol"))
import test_line_handling  # noqa: E402
import test_metrics  # noqa: E402
import test_schemas  # noqa: E402

VALID = [
    b'{"command":"subscribe","topic":"news"}',
    b'{"command":"subscribe","topic":"news","last_seen":3,"cache":false}',
    b'{"command":"unsubscribe","topic":"news"}',
    b'{"command":"send","topic":"news","msg":"hello","delivery":"all"}',
    b'{"command":"send","topic":"n\\u00e9","msg":"a\\u0000\\ud83d\\ude00","delivery":"one","cache":true}',
    b' {"command" : "send" ,\r"topic":"","msg":"","delivery":"all"} ',
]


GOOD_HEADS = [
    b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Prometheus/2.45.0\r\n"
    b"Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
    b"Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
    b"HEAD /metrics?x=1 HTTP/1.0\n\n",
    b"\r\nPOST http://h/metrics HTTP/1.1\r\nhost: a\r\nContent-Length: 3\r\n\r\nabc",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\nA:\tb \xc3\xa9\r\n\r\n",
]


def lines():
    yield from VALID
    yield from test_line_handling.BAD_UTF8_LINES
    yield from test_line_handling.BAD_JSON_LINES
    yield from (line.encode() for line in test_schemas.MALFORMED_LINES)


def write(kind, data):
    folder = os.path.join(HERE, "corpus", kind)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


all_lines = list(lines())
for line in all_lines:
    write("proto", line)
# cjson seeds (the cross-check of proto_parse with cJSON): the parser's, and
# accepted lines hard for one JSON parser or the other
TRICKY = [
    b'{"command":"send","topic":"\\"\\\\\\/\\b\\f\\n\\r\\t","msg":"\\u0041\\u00e9\\u20AC\\uFFFF","delivery":"all"}',
    b'{"command":"send","topic":"\\ud83d\\ude00","msg":"\\uDBFF\\uDFFF \xf4\x8f\xbf\xbf \xf0\x9f\x98\x80","delivery":"one"}',
    b'{"comm\\u0061nd":"s\\u0065nd","\\u0074opic":"t","msg":"\\\\u0000","deliver\\u0079":"\\u006fne"}',
    b'{"command":"subscribe","topic":"t","last_seen":-9223372036854775809,"cache":true}',
    b'{"command":"subscribe","topic":"t","last_seen":9007199254740993}',
    b'{"command":"subscribe","topic":"t","last_seen":' + b"9" * 100 + b"}",
]
for line in all_lines + TRICKY:
    write("cjson", line)

# framer seeds: limit byte, cut count, cut sizes, then a stream of lines
stream = b"\n".join(all_lines[:12]) + b"\r\n\n  quit\n"
write("framer", bytes([40, 3, 1, 5, 9]) + stream)
write("framer", bytes([63, 0]) + stream)
write("framer", bytes([7, 2, 2, 3]) + b"short\nthis line is too long\nok\npartial")

# broker seeds: a byte of cache size and quotas (see fuzz_broker.c), then
# (op, slot, topic, argument) steps; ops 0 send (arg bit 0 "one", bit 1 no
# cache), 2 subscribe (bit 0 no replay, bits 1-3 cut during the replay, high
# nibble picks last_seen), 4 unsubscribe (with bit 6: evict), 5 connect
# (with bit 3, of a connected client: it is going away), 7 disconnect, bit 7
# of op fails an allocation.
CONNECT, SEND, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT = 5, 0, 2, 4, 7
example = [(CONNECT, 0, 1, 0), (CONNECT, 1, 1, 0), (SUBSCRIBE, 0, 1, 0),
           (SEND, 1, 1, 0), (SEND, 1, 1, 1), (SEND, 1, 2, 1), (SEND, 1, 2, 0),
           (SUBSCRIBE, 1, 2, 0), (SUBSCRIBE, 1, 1, 0x30), (UNSUBSCRIBE, 0, 1, 0),
           (SEND, 1, 1, 2), (DISCONNECT, 1, 0, 0), (SEND, 0, 1, 1)]
write("broker", bytes([3]) + bytes(b for s in example for b in s))
write("broker", bytes([2]) + bytes(b for s in example for b in (s[0] | 0x80, *s[1:])))
# a subscriber closed but not yet freed (connect again with bit 3) while
# "one" messages are sent: they go to the other subscriber
GOING_AWAY = CONNECT | 8
closing = [(CONNECT, 0, 1, 0), (CONNECT, 1, 1, 0), (CONNECT, 2, 1, 0), (SUBSCRIBE, 0, 1, 1),
           (SUBSCRIBE, 1, 1, 1), (GOING_AWAY, 0, 1, 0), (SEND, 2, 1, 1), (SEND, 2, 1, 1),
           (GOING_AWAY, 1, 1, 0), (SEND, 2, 1, 1), (DISCONNECT, 0, 1, 0), (SUBSCRIBE, 2, 1, 0)]
write("broker", bytes([3]) + bytes(b for s in closing for b in s))
# "one" messages cached, a subscriber cut after one line of its replay (bits
# 1-3 of the argument: 2 takes one line), the next one gets the rest; then
# eviction (an unsubscribe with bit 6) and the quotas (byte 0: cache 3, at
# most 2 topics alive, 1 subscription a client)
EVICT = UNSUBSCRIBE | 0x40
replays = [(SEND, 0, 1, 1), (SEND, 0, 1, 1), (SEND, 0, 1, 1), (SEND, 0, 2, 0),
           (CONNECT, 0, 1, 0), (CONNECT, 1, 1, 0), (SUBSCRIBE, 0, 1, 2 << 1),
           (SUBSCRIBE, 1, 1, 0), (EVICT, 0, 0, 0), (SEND, 1, 3, 0), (SUBSCRIBE, 1, 3, 0),
           (EVICT, 0, 0, 0), (EVICT, 0, 0, 0), (SEND, 1, 2, 0), (DISCONNECT, 1, 0, 0)]
write("broker", bytes([3]) + bytes(b for s in replays for b in s))
write("broker", bytes([3 | 2 << 3 | 1 << 5]) + bytes(b for s in replays for b in s))
# a subscriber of three topics detached (a disconnect with bit 3), leaving
# them one a step, while "one" and "all" messages are sent to them
DETACH = DISCONNECT | 8
departing = [(CONNECT, 0, 1, 0), (CONNECT, 1, 1, 0), (SUBSCRIBE, 0, 1, 1), (SUBSCRIBE, 0, 2, 1),
             (SUBSCRIBE, 0, 3, 1), (SUBSCRIBE, 1, 2, 1), (DETACH, 0, 0, 0), (SEND, 1, 1, 1),
             (SEND, 1, 2, 1), (SEND, 1, 3, 0), (CONNECT, 0, 1, 0), (SUBSCRIBE, 0, 3, 0),
             (SEND, 1, 3, 0), (SEND, 1, 2, 0)]
write("broker", bytes([3]) + bytes(b for s in departing for b in s))

# http seeds: a first byte below 16 sets a small head limit (see fuzz_http.c)
for head in GOOD_HEADS + [head for head, _ in test_metrics.BAD_HEADS]:
    write("http", head)
write("http", bytes([1]) + GOOD_HEADS[0])

# record seeds (the data directory's log, include/mqd/record.h): the first
# byte's low bit asks fuzz_record for a head, which the seeds then leave out,
# and its next three the cache size of the broker the log is loaded into (4)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def record(kind, topic, index, line=None, one=False):
    body = bytes([kind]) + struct.pack("<I", len(topic)) + topic + struct.pack("<Q", index)
    if line is not None:
        body += bytes([1 if one else 0]) + line
    return struct.pack("<II", len(body), crc32c(body)) + body


MESSAGE, INDEX, REMOVED = 1, 2, 3
log = (record(MESSAGE, b"jobs", 0, b'{"msg": "a", "index": 0}\r\n', one=True)
       + record(MESSAGE, b"news", 41, b'{"msg": "\\u0000", "index": 41}\r\n')
       + record(INDEX, b"quiet", 7) + record(REMOVED, b"jobs", 0) + record(INDEX, b"", 2**64 - 1))
write("record", b"\x09" + log)
write("record", b"\x09" + log[:-5])            # a torn tail
write("record", b"\x09" + log[:20] + b"\xff" + log[21:])   # damage in the middle
write("record", b"\x08mqd-log\n\x01\x00\x00\x00" + log)   # its own head

# users seeds (the --users file, include/mqd/users.h): good lines of both
# hashes, escapes, and each mistake the parser names
PBKDF2 = "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8Srwk4M"
SCRYPT = "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M"
USERS = [
    f"# the users\n\nalice {PBKDF2} publish=orders.*,logs subscribe=*\n"
    f"  bob\t{SCRYPT}\tsubscribe=orders.eu.*,news   \r\ncarol {PBKDF2}\n",
    f"u {PBKDF2} publish=a\\ b,c\\,d,e\\*,f\\\\,g\\*h*\n",
    "alice\n", f"a {PBKDF2}\na {PBKDF2}\n", f"a {PBKDF2} publish=x publish=y\n",
    f"a {PBKDF2} read=x\n", f"a {PBKDF2} publish=,\n", f"a {PBKDF2} publish=a*b\n",
    f"a {PBKDF2} publish=x\\",
    "x $pbkdf2-sha256$i=1$MDEyMzQ1Njc4OWFiY2RlZg==$NarchT9Gxm7doC6L+7JZjg6bIUeAPweQcS0jQaB77zV13"
    "WtfJY4EUeimnlE+e87qsUoxrTtzY5fb4ndsjrA0RQ==\n",
    f"y {SCRYPT.replace('ln=10,r=8,p=1', 'ln=20,r=8,p=16')} subscribe=*\n",
]
for text in USERS:
    write("users", text.encode())

# ws seeds (what a client sends after its upgrade, fuzz_ws.c): the first
# byte picks the piece and write sizes; then masked frames: text, a
# fragmented message with a ping inside, a close, and each kind refused


def frame(opcode, payload, fin=True, mask=b"\x01\x02\x03\x04"):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


TEXT = frame(1, b'{"command":"subscribe","topic":"t"}')
WS = [
    TEXT + frame(1, "h\u00e9 \U0001f600".encode()),
    frame(1, b'{"command":"sub', fin=False) + frame(9, b"ping") + frame(0, b'scribe"}'),
    TEXT + frame(8, b"\x03\xe8bye"),
    frame(2, b"\x00\x01") + TEXT,
    frame(1, b"\xff\xfe"),
    frame(1, b"ab", fin=False) + frame(0, b"\xed\xa0\x80"),
    frame(0, b"x"),
    frame(9, b"p" * 126),
    frame(1, b"x" * 300),
]
for i, frames in enumerate(WS):
    write("ws", bytes([i * 37 % 256]) + frames)
