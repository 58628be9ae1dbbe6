"""The producer and the group consumer of the fault suite (confluent-kafka-python;
LD_LIBRARY_PATH picks the librdkafka build: the suite runs it on 2.12).

    fault_client.py produce BOOTSTRAP TOPIC TAG COUNT RATE TXN_SIZE OUT_DIR DEADLINE_S [--linger-ms N]
    fault_client.py consume BOOTSTRAP TOPIC GROUP OUT_DIR DEADLINE_S [--rate N]

produce: COUNT records at RATE records/s with acks=all, enable.idempotence and
a transactional.id (committing every TXN_SIZE records); linger.ms is 5
unless --linger-ms says otherwise. librdkafka's mock
broker checks producer sequence numbers only for transactional producers, so
only they are exactly-once against it: a retried batch it already wrote is
acknowledged and not written again. A transaction that fails with an
abortable error is aborted and its records sent again in a new one; a fatal
error makes a new producer (same transactional.id, fenced epoch).

Each record's value is TAG/SEQUENCE/aATTEMPT/FILLER: SEQUENCE numbers the
records of this producer (production order), ATTEMPT the transaction attempt
that carried it, so a record the mock shows from an aborted transaction (it
does not filter aborted transactions out of read_committed fetches) cannot
be mistaken for a duplicate of the committed copy. Files written in OUT_DIR,
each line flushed when it is known:

    acked.tsv     PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE of every record of a
                  committed transaction
    aborted.tsv   KEY<TAB>VALUE of every record of an aborted transaction
    producer.json {"produced": ..., "acked": ..., "aborted_txns": ..., ...} at the end

consume: a group consumer (auto.offset.reset=earliest, offsets committed
after each batch, asynchronously, and synchronously at the end) that writes what it reads to
OUT_DIR/consumed-GROUP.tsv as PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines,
flushed per batch, until OUT_DIR/stop-GROUP exists and nothing came for 2 s
(or DEADLINE_S passed). --rate N reads at most N records per second (a slow
consumer, so that a fault can hit it mid-read). Writes consumer-GROUP.json
(assignments, commit failures) at the end.

Exit codes: 0 ok, 2 usage, 3 producer gave up, 4 deadline passed.
"""
import hashlib
import json
import os
import sys
import time

KEYS = 500


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def value_of(tag, seq, attempt):
    filler = hashlib.sha256(f"{tag}/{seq}".encode()).hexdigest()
    return f"{tag}/{seq:06d}/a{attempt}/{filler[:8 + seq % 48]}"


def produce(ck, bootstrap, topic, tag, count, rate, txn_size, out_dir, deadline, linger_ms=5):
    acked_f = open(os.path.join(out_dir, "acked.tsv"), "w", encoding="utf-8")
    aborted_f = open(os.path.join(out_dir, "aborted.tsv"), "w", encoding="utf-8")
    stats = {"produced": count, "acked": 0, "aborted_txns": 0, "aborted_records": 0, "producers": 0,
             "commit_retries": 0, "errors": []}
    pending = []  # delivery reports of the current transaction

    def on_delivery(err, msg):
        if err is None:
            offset = -1 if msg.offset() is None else msg.offset()
            pending.append((msg.partition(), offset, msg.key().decode(), msg.value().decode()))

    def left():
        return max(1.0, deadline - time.monotonic())

    def new_producer():
        stats["producers"] += 1
        p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "transactional.id": f"{topic}-{tag}-txn", "linger.ms": linger_ms,
                         "transaction.timeout.ms": 60000, "message.timeout.ms": 55000,
                         "socket.connection.setup.timeout.ms": 5000, "reconnect.backoff.max.ms": 1000})
        while True:
            try:
                p.init_transactions(left())
                return p
            except ck.KafkaException as e:
                err = e.args[0]
                log(f"init_transactions: {err}")
                if time.monotonic() > deadline or not err.retriable():
                    raise

    producer = new_producer()
    start = time.monotonic()
    seq = 0
    attempt = 0
    while seq < count:
        if time.monotonic() > deadline:
            log(f"deadline passed with {seq} of {count} records committed")
            break
        attempt += 1
        batch = range(seq, min(seq + txn_size, count))
        pending.clear()
        sent = []
        try:
            producer.begin_transaction()
            for i in batch:
                ahead = start + i / rate - time.monotonic() if rate else 0
                if ahead > 0:
                    time.sleep(ahead)
                k, v = f"key-{i % KEYS:03d}", value_of(tag, i, attempt)
                while True:
                    try:
                        producer.produce(topic, key=k.encode(), value=v.encode(), on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.05)
                sent.append((k, v))
                producer.poll(0)
            while True:
                try:
                    producer.commit_transaction(left())
                    break
                except ck.KafkaException as e:
                    err = e.args[0]
                    if err.retriable() and not err.txn_requires_abort() and time.monotonic() < deadline:
                        stats["commit_retries"] += 1
                        continue
                    raise
        except ck.KafkaException as e:
            err = e.args[0]
            stats["errors"].append(str(err))
            log(f"transaction {attempt} (records {batch.start}..{batch.stop - 1}): {err}")
            stats["aborted_txns"] += 1
            stats["aborted_records"] += len(sent)
            for k, v in sent:
                aborted_f.write(f"{k}\t{v}\n")
            aborted_f.flush()
            if err.fatal() or not err.txn_requires_abort():
                try:
                    producer.abort_transaction(10)
                except ck.KafkaException:
                    pass
                producer.flush(5)
                producer = new_producer()
            else:
                try:
                    producer.abort_transaction(left())
                except ck.KafkaException as e2:
                    log(f"abort_transaction: {e2}; new producer")
                    producer = new_producer()
            continue
        producer.poll(0)
        if len(pending) != len(sent):
            log(f"transaction {attempt} committed with {len(pending)} delivery reports for {len(sent)} records")
        for p, o, k, v in pending:
            acked_f.write(f"{p}\t{o}\t{k}\t{v}\n")
        acked_f.flush()
        stats["acked"] += len(pending)
        seq = batch.stop
    producer.flush(5)
    acked_f.close()
    aborted_f.close()
    stats["seconds"] = round(time.monotonic() - start, 2)
    with open(os.path.join(out_dir, "producer.json"), "w") as f:
        json.dump(stats, f)
    log(f"producer done: {stats}")
    return 0 if seq >= count else 3


def consume(ck, bootstrap, topic, group, out_dir, deadline, rate):
    out = open(os.path.join(out_dir, f"consumed-{group}.tsv"), "w", encoding="utf-8")
    stop_path = os.path.join(out_dir, f"stop-{group}")
    stats = {"assigned": 0, "revoked": 0, "commit_failures": 0, "errors": 0, "read": 0}

    def on_assign(c, parts):
        stats["assigned"] += 1
        log(f"assigned {sorted(p.partition for p in parts)}")

    def on_revoke(c, parts):
        stats["revoked"] += 1
        log(f"revoked {sorted(p.partition for p in parts)}")

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                            "enable.auto.commit": False, "isolation.level": "read_committed",
                            "socket.connection.setup.timeout.ms": 5000, "reconnect.backoff.max.ms": 1000})
    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    start = time.monotonic()
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = consumer.consume(num_messages=200 if rate else 2000, timeout=0.2)
            got = [m for m in msgs if not m.error()]
            for m in msgs:
                if m.error():
                    stats["errors"] += 1
                    if stats["errors"] <= 20:
                        log(f"consumer error: {m.error()}")
            if got:
                for m in got:
                    out.write(f"{m.partition()}\t{m.offset()}\t{m.key().decode()}\t{m.value().decode()}\n")
                out.flush()
                stats["read"] += len(got)
                last = time.monotonic()
                try:
                    consumer.commit(asynchronous=True)
                except ck.KafkaException as e:
                    stats["commit_failures"] += 1
                    log(f"commit: {e.args[0]}")
                if rate:
                    ahead = start + stats["read"] / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            elif os.path.exists(stop_path) and time.monotonic() - last > 2.0:
                break
        if stats["read"]:
            try:
                consumer.commit(asynchronous=False)
            except ck.KafkaException as e:
                stats["commit_failures"] += 1
                log(f"final commit: {e.args[0]}")
    finally:
        consumer.close()
        out.close()
    stats["seconds"] = round(time.monotonic() - start, 2)
    with open(os.path.join(out_dir, f"consumer-{group}.json"), "w") as f:
        json.dump(stats, f)
    log(f"consumer {group} done: {stats}")
    return 0 if time.monotonic() < deadline else 4


def main(argv):
    import confluent_kafka as ck
    log(f"client-version: confluent-kafka {ck.version()[0]} librdkafka {ck.libversion()[0]}")
    if len(argv) in (10, 12) and argv[1] == "produce":
        linger = int(argv[11]) if len(argv) == 12 and argv[10] == "--linger-ms" else 5
        _, _, bootstrap, topic, tag, count, rate, txn, out_dir, secs = argv[:10]
        return produce(ck, bootstrap, topic, tag, int(count), float(rate), int(txn), out_dir,
                       time.monotonic() + float(secs), linger)
    if len(argv) in (7, 9) and argv[1] == "consume":
        rate = float(argv[8]) if len(argv) == 9 and argv[7] == "--rate" else 0.0
        _, _, bootstrap, topic, group, out_dir, secs = argv[:7]
        return consume(ck, bootstrap, topic, group, out_dir, time.monotonic() + float(secs), rate)
    log(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
