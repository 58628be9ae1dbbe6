"""Test records and the checks that a client read back exactly what was produced.

Records are (key, value) strings without tabs or newlines, so every client
can take them as KEY<TAB>VALUE lines and print what it consumed as
PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines.

Keys repeat (KEYS distinct keys), so the checks can prove keyed partitioning
(one key, one partition) and per-partition order (a value's sequence number
grows with the offset, as the producer sent them).
"""
import collections
import hashlib

KEYS = 500


def make_records(tag, count):
    """`count` records; the value carries the tag, a sequence number and a
    payload of varying length (8..71 characters)."""
    out = []
    for i in range(count):
        filler = hashlib.sha256(f"{tag}/{i}".encode()).hexdigest()
        out.append((f"key-{i % KEYS:03d}", f"{tag}/{i:05d}/{filler[:8 + i % 64]}"))
    return out


def write_tsv(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for k, v in records:
            f.write(f"{k}\t{v}\n")
    return str(path)


def sequence_of(value):
    return int(value.split("/")[1])


def parse_consumed(text):
    """PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines -> [(partition, offset, key, value)]."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        parts = line.split("\t")
        assert len(parts) == 4, f"consumed line {n} is not PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE: {line!r}"
        rows.append((int(parts[0]), int(parts[1]), parts[2], parts[3]))
    return rows


def _sample(counter, limit=5):
    return sorted(counter.elements())[:limit]


def assert_same_records(sent, consumed, partitions):
    """What a consumer group read (`consumed`, in consumption order) is exactly
    what was produced (`sent`, in production order) to a fresh topic of
    `partitions` partitions: same multiset of (key, value); per partition,
    offsets 0..n-1 read in order and records in production order; every key in
    one partition; every partition used."""
    want = collections.Counter(sent)
    got = collections.Counter((k, v) for _, _, k, v in consumed)
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"sent {len(sent)} records, read {len(consumed)}: {sum(missing.values())} missing "
        f"(e.g. {_sample(missing)}), {sum(extra.values())} unexpected or duplicated (e.g. {_sample(extra)})")

    by_partition = collections.defaultdict(list)
    for p, o, k, v in consumed:
        by_partition[p].append((o, k, v))
    assert set(by_partition) == set(range(partitions)), \
        f"records landed in partitions {sorted(by_partition)}, expected all of 0..{partitions - 1}"

    key_partitions = collections.defaultdict(set)
    for p, rows in by_partition.items():
        offsets = [o for o, _, _ in rows]
        assert offsets == sorted(offsets), f"partition {p}: offsets read out of order"
        assert offsets == list(range(len(rows))), \
            f"partition {p}: offsets are not 0..{len(rows) - 1} (first {offsets[:5]}, last {offsets[-5:]})"
        seqs = [sequence_of(v) for _, _, v in rows]
        out_of_order = [(a, b) for a, b in zip(seqs, seqs[1:]) if b <= a]
        assert not out_of_order, f"partition {p}: records not in production order, e.g. {out_of_order[:5]}"
        for _, k, _ in rows:
            key_partitions[k].add(p)
    split = {k: sorted(ps) for k, ps in key_partitions.items() if len(ps) > 1}
    assert not split, f"keys spread over several partitions: {dict(list(split.items())[:5])}"
