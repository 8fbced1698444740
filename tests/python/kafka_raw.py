"""Produce and consume Kafka records byte for byte, header keys included, via librdkafka's C API.

Why: header keys are bytes on the wire, but no client at hand sends arbitrary bytes as a key —
rust-rdkafka's `OwnedHeaders` takes `&str`, the workspace forbids `unsafe`, and confluent-kafka's
Python `produce()` turns a `bytes` key into the text of its `repr` (`b'\\xff'`). So this script
calls the librdkafka that ships inside the confluent-kafka wheel through ctypes:
`rd_kafka_header_add` takes the key as (pointer, length).

    kafka_raw.py produce BOOTSTRAP < records.jsonl
        one record per line: {"topic", "partition", "key": b64, "value": b64 | null,
        "headers": [[key b64, value b64], ...]}; one idempotent producer, so each
        partition's offsets follow the input order. Exit 0 once every record is acknowledged.
    kafka_raw.py consume BOOTSTRAP TOPIC PARTITIONS COUNT
        reads COUNT records from the start of every partition; prints one line per record:
        {"partition", "offset", "key": b64, "value": b64 | null, "header_keys": [b64, ...]}
"""

from __future__ import annotations

import base64
import ctypes as C  # noqa: N812 (reads like the C API it wraps)
import glob
import json
import os
import sys
import time
from typing import Any

import confluent_kafka

_LIBS = os.path.dirname(confluent_kafka.__file__) + ".libs"
LIB = C.CDLL(glob.glob(os.path.join(_LIBS, "librdkafka*.so*"))[0])


class _Mem(C.Structure):
    _fields_ = [("ptr", C.c_void_p), ("size", C.c_size_t)]


class _U(C.Union):
    _fields_ = [
        ("cstr", C.c_char_p),
        ("i", C.c_int),
        ("i32", C.c_int32),
        ("mem", _Mem),
        ("headers", C.c_void_p),
        ("_pad", C.c_char * 64),
    ]


class _VU(C.Structure):
    _fields_ = [("vtype", C.c_int), ("u", _U)]


class _Message(C.Structure):
    _fields_ = [
        ("err", C.c_int),
        ("rkt", C.c_void_p),
        ("partition", C.c_int32),
        ("payload", C.c_void_p),
        ("len", C.c_size_t),
        ("key", C.c_void_p),
        ("key_len", C.c_size_t),
        ("offset", C.c_int64),
        ("_private", C.c_void_p),
    ]


# rd_kafka_vtype_t
VTYPE_TOPIC, VTYPE_PARTITION, VTYPE_VALUE, VTYPE_KEY = 1, 3, 4, 5
VTYPE_MSGFLAGS, VTYPE_HEADERS = 7, 10
MSG_F_COPY = 0x2
DR_CB = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(_Message), C.c_void_p)

LIB.rd_kafka_conf_new.restype = C.c_void_p
LIB.rd_kafka_conf_set.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p, C.c_char_p, C.c_size_t]
LIB.rd_kafka_conf_set_dr_msg_cb.argtypes = [C.c_void_p, DR_CB]
LIB.rd_kafka_new.restype = C.c_void_p
LIB.rd_kafka_new.argtypes = [C.c_int, C.c_void_p, C.c_char_p, C.c_size_t]
LIB.rd_kafka_headers_new.restype = C.c_void_p
LIB.rd_kafka_headers_new.argtypes = [C.c_size_t]
LIB.rd_kafka_headers_destroy.argtypes = [C.c_void_p]
LIB.rd_kafka_header_add.argtypes = [C.c_void_p, C.c_char_p, C.c_ssize_t, C.c_char_p, C.c_ssize_t]
LIB.rd_kafka_produceva.restype = C.c_void_p
LIB.rd_kafka_produceva.argtypes = [C.c_void_p, C.POINTER(_VU), C.c_size_t]
LIB.rd_kafka_error_string.restype = C.c_char_p
LIB.rd_kafka_error_string.argtypes = [C.c_void_p]
LIB.rd_kafka_poll.argtypes = [C.c_void_p, C.c_int]
LIB.rd_kafka_flush.argtypes = [C.c_void_p, C.c_int]
LIB.rd_kafka_destroy.argtypes = [C.c_void_p]
LIB.rd_kafka_err2str.restype = C.c_char_p
LIB.rd_kafka_poll_set_consumer.argtypes = [C.c_void_p]
LIB.rd_kafka_topic_partition_list_new.restype = C.c_void_p
LIB.rd_kafka_topic_partition_list_add.restype = C.c_void_p
LIB.rd_kafka_topic_partition_list_add.argtypes = [C.c_void_p, C.c_char_p, C.c_int32]
LIB.rd_kafka_topic_partition_list_set_offset.argtypes = [
    C.c_void_p,
    C.c_char_p,
    C.c_int32,
    C.c_int64,
]
LIB.rd_kafka_assign.argtypes = [C.c_void_p, C.c_void_p]
LIB.rd_kafka_consumer_poll.restype = C.POINTER(_Message)
LIB.rd_kafka_consumer_poll.argtypes = [C.c_void_p, C.c_int]
LIB.rd_kafka_message_destroy.argtypes = [C.POINTER(_Message)]
LIB.rd_kafka_message_headers.argtypes = [C.POINTER(_Message), C.POINTER(C.c_void_p)]
LIB.rd_kafka_header_get_all.argtypes = [
    C.c_void_p,
    C.c_size_t,
    C.POINTER(C.c_char_p),
    C.POINTER(C.c_void_p),
    C.POINTER(C.c_size_t),
]
LIB.rd_kafka_consumer_close.argtypes = [C.c_void_p]


def _client(kind: int, conf_items: dict[str, str], dr_cb: object = None) -> int:
    conf = LIB.rd_kafka_conf_new()
    err = C.create_string_buffer(512)
    for k, v in conf_items.items():
        if LIB.rd_kafka_conf_set(conf, k.encode(), v.encode(), err, 512) != 0:
            sys.exit(f"config {k}: {err.value.decode()}")
    if dr_cb is not None:
        LIB.rd_kafka_conf_set_dr_msg_cb(conf, dr_cb)
    rk: int | None = LIB.rd_kafka_new(kind, conf, err, 512)
    if not rk:
        sys.exit(f"rd_kafka_new: {err.value.decode()}")
    return rk


def _b(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


def produce(bootstrap: str) -> None:
    failures: list[str] = []
    acked = [0]

    def on_delivery(_rk: int | None, msg: C._Pointer[_Message], _opaque: int | None) -> None:
        if msg.contents.err:
            failures.append(LIB.rd_kafka_err2str(msg.contents.err).decode())
        else:
            acked[0] += 1

    cb = DR_CB(on_delivery)
    rk = _client(
        0,
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": "true",
            "acks": "all",
            "linger.ms": "5",
            "message.max.bytes": "2000000",
        },
        cb,
    )
    sent = 0
    keep: list[Any] = []  # buffers outlive the call (librdkafka copies them: MSG_F_COPY)
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        topic = r["topic"].encode()
        key, value = _b(r["key"]), _b(r["value"])
        vus = (_VU * 6)()
        vus[0].vtype, vus[0].u.cstr = VTYPE_TOPIC, topic
        vus[1].vtype, vus[1].u.i32 = VTYPE_PARTITION, r["partition"]
        vus[2].vtype, vus[2].u.i = VTYPE_MSGFLAGS, MSG_F_COPY
        kbuf = C.create_string_buffer(key or b"", len(key or b""))
        vus[3].vtype, vus[3].u.mem = VTYPE_KEY, _Mem(C.cast(kbuf, C.c_void_p), len(key or b""))
        if value is None:  # a null value: a tombstone
            vus[4].vtype, vus[4].u.mem = VTYPE_VALUE, _Mem(None, 0)
        else:
            vbuf = C.create_string_buffer(value, len(value))
            keep.append(vbuf)
            vus[4].vtype, vus[4].u.mem = VTYPE_VALUE, _Mem(C.cast(vbuf, C.c_void_p), len(value))
        hdrs = LIB.rd_kafka_headers_new(len(r.get("headers", [])))
        for hk, hv in r.get("headers", []):
            name, val = base64.b64decode(hk), base64.b64decode(hv)
            # The key as (pointer, length): its bytes go on the wire unchanged.
            LIB.rd_kafka_header_add(hdrs, name, len(name), val, len(val))
        vus[5].vtype, vus[5].u.headers = VTYPE_HEADERS, hdrs
        e = LIB.rd_kafka_produceva(rk, vus, 6)
        if e:
            LIB.rd_kafka_headers_destroy(hdrs)  # not taken on failure
            sys.exit(f"produce: {LIB.rd_kafka_error_string(e).decode()}")
        keep.append((topic, kbuf))
        sent += 1
        LIB.rd_kafka_poll(rk, 0)
    deadline = time.monotonic() + 60
    while acked[0] + len(failures) < sent and time.monotonic() < deadline:
        LIB.rd_kafka_flush(rk, 1000)
    LIB.rd_kafka_destroy(rk)
    if failures or acked[0] != sent:
        sys.exit(f"{acked[0]} of {sent} acknowledged; failures: {failures[:5]}")
    print(f"produced {sent}")


def consume(bootstrap: str, topic: str, partitions: int, count: int) -> None:
    rk = _client(
        1,
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"kafka-raw-{os.getpid()}",
            "enable.auto.commit": "false",
            "receive.message.max.bytes": "100000000",
        },
    )
    LIB.rd_kafka_poll_set_consumer(rk)
    tpl = LIB.rd_kafka_topic_partition_list_new(partitions)
    for p in range(partitions):
        LIB.rd_kafka_topic_partition_list_add(tpl, topic.encode(), p)
        LIB.rd_kafka_topic_partition_list_set_offset(tpl, topic.encode(), p, -2)  # beginning
    if LIB.rd_kafka_assign(rk, tpl) != 0:
        sys.exit("assign failed")
    seen = 0
    deadline = time.monotonic() + 60
    while seen < count:
        if time.monotonic() > deadline:
            sys.exit(f"consumed {seen} of {count}")
        m = LIB.rd_kafka_consumer_poll(rk, 200)
        if not m:
            continue
        msg = m.contents
        if msg.err:
            LIB.rd_kafka_message_destroy(m)
            continue
        hdrs = C.c_void_p()
        keys = []
        if LIB.rd_kafka_message_headers(m, C.byref(hdrs)) == 0:
            i = 0
            while True:
                name, val, size = C.c_char_p(), C.c_void_p(), C.c_size_t()
                found = LIB.rd_kafka_header_get_all(
                    hdrs, i, C.byref(name), C.byref(val), C.byref(size)
                )
                if found != 0:
                    break
                keys.append(base64.b64encode(name.value or b"").decode())
                i += 1
        key = C.string_at(msg.key, msg.key_len) if msg.key else None
        value = C.string_at(msg.payload, msg.len) if msg.payload else None
        print(
            json.dumps(
                {
                    "partition": msg.partition,
                    "offset": msg.offset,
                    "key": None if key is None else base64.b64encode(key).decode(),
                    "value": None if value is None else base64.b64encode(value).decode(),
                    "header_keys": keys,
                }
            )
        )
        seen += 1
        LIB.rd_kafka_message_destroy(m)
    LIB.rd_kafka_consumer_close(rk)
    LIB.rd_kafka_destroy(rk)


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2])
    elif sys.argv[1] == "consume":
        consume(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)
