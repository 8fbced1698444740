"""Read Landfall's landed Parquet back the way users do, with pyarrow and duckdb.

Usage: check_readback.py MARKERS_DIR SINK EXPECTED_ROWS

Only files listed in commit records are read (the Airflow contract). Asserts types, values and
counts; exits non-zero with the reason on any mismatch.
"""
import datetime as dt
import decimal
import glob
import json
import os
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

markers, sink, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])

manifests = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(markers, "_commits", sink, "*", "*", "*.json"))) if not p.endswith("genesis.json")]
assert manifests, "no commit records"
files = [f["url"].removeprefix("file://") for m in manifests for f in m["files"]]
for m in manifests:
    for f in m["files"]:
        path = f["url"].removeprefix("file://")
        assert os.path.getsize(path) == f["size_bytes"], path

# --- pyarrow ------------------------------------------------------------------------------
table = pa.concat_tables([pq.read_table(f) for f in files])
assert table.num_rows == expected, (table.num_rows, expected)
assert sum(m["rows"] for m in manifests) == expected
schema = table.schema
want = {
    "seq": pa.int64(),
    "name": pa.string(),
    "amount": pa.decimal128(12, 2),
    "ts": pa.timestamp("us", tz="UTC"),
    "tags": pa.list_(pa.field("item", pa.string())),
    "addr": pa.struct([pa.field("city", pa.string()), pa.field("zip", pa.int32())]),
    "_topic": pa.string(),
    "_partition": pa.int32(),
    "_offset": pa.int64(),
    "_timestamp": pa.timestamp("us", tz="UTC"),
}
for name, typ in want.items():
    got = schema.field(name).type
    assert got.equals(typ) or str(got) == str(typ), f"{name}: {got} != {typ}"
assert not schema.field("seq").nullable
rows = {r["seq"]: r for r in table.to_pylist()}
assert sorted(rows) == list(range(expected)), "seq values"
r = rows[7]
assert r["name"] == "record-7", r
assert r["amount"] == decimal.Decimal("7.25"), r["amount"]
assert r["ts"] == dt.datetime(2026, 11, 21, 10, 7, 0, 500000, tzinfo=dt.timezone.utc), r["ts"]
assert r["tags"] == ["a", "t7"], r["tags"]
assert r["addr"] == {"city": "Oslo", "zip": 7}, r["addr"]
assert rows[4]["addr"] is None and rows[4]["tags"] is None, rows[4]

# --- duckdb -------------------------------------------------------------------------------
con = duckdb.connect()
q = f"SELECT count(*), sum(amount), min(ts), max(ts), count(DISTINCT (_partition, _offset)), typeof(any_value(amount)), typeof(any_value(ts)) FROM read_parquet({files!r})"
count, total, lo, hi, offsets, amount_type, ts_type = con.execute(q).fetchone()
assert count == expected, count
assert total == sum(decimal.Decimal(f"{i % 1000}.25") for i in range(expected)), total
assert amount_type == "DECIMAL(12,2)", amount_type
assert ts_type == "TIMESTAMP WITH TIME ZONE", ts_type
assert offsets == expected, offsets
print(f"readback ok: {count} rows in {len(files)} files; pyarrow and duckdb agree")
