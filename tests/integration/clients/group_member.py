"""One member of a consumer group, for the group tests of tests/kafka
(test_kafka_regional.py): kafka-python or confluent-kafka-python (librdkafka).

    group_member.py CLIENT BOOTSTRAP TOPIC GROUP TIMEOUT_S

CLIENT is kafka-python or confluent-kafka. The member subscribes to TOPIC in
GROUP from the earliest offset, auto-commit off, and writes to stdout, in
order and flushed as it goes:

    PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE   a record read
    #assigned P,P,...                      partitions given to it (a list, maybe empty)
    #revoked P,P,...                       partitions taken from it
    #closed                                committed and left the group

After each batch it commits, synchronously (a commit that fails is logged
and tried again with the next), the offset after the last record
it read of each partition; when partitions are taken from it, it commits
theirs first (so their next owner starts after what it read). A line on
standard input (or its end) tells it to stop: it commits, closes (leaving the
group), writes "#closed" and exits 0. Still running after TIMEOUT_S: exit 4.
The library's version goes to stderr as "client-version: ...".
"""
import os
import sys
import threading
import time

POLL_S = 0.2
BATCH = 500


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(lines):
    if lines:
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


def partitions_line(tag, partitions):
    return f"#{tag} {','.join(str(p) for p in sorted(partitions))}\n"


def field(b):
    return "" if b is None else b.decode("utf-8", "replace")


def watch_stdin(stop):
    sys.stdin.readline()
    stop.set()


def kafka_python(bootstrap, topic, group, stop, deadline):
    import kafka
    import kafka.errors
    from kafka import ConsumerRebalanceListener, TopicPartition
    from kafka.structs import OffsetAndMetadata
    log(f"client-version: kafka-python {kafka.__version__}")
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=group,
                                   enable_auto_commit=False, auto_offset_reset="earliest",
                                   client_id=f"kstretch-member-{os.getpid()}")
    done = {}  # partition -> offset after the last record read, not yet committed

    def commit(partitions):
        offsets = {TopicPartition(topic, p): OffsetAndMetadata(done[p], "", -1) for p in partitions if p in done}
        if offsets:
            try:
                consumer.commit(offsets)
            except kafka.errors.KafkaError as e:  # kept: committed again before the partitions go
                log(f"commit failed: {e!r}")
                return
        for p in partitions:
            done.pop(p, None)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            parts = [tp.partition for tp in revoked]
            commit(parts)
            emit([partitions_line("revoked", parts)])

        def on_partitions_assigned(self, assigned):
            emit([partitions_line("assigned", [tp.partition for tp in assigned])])

    consumer.subscribe([topic], listener=Listener())
    while not stop.is_set() and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=int(POLL_S * 1000), max_records=BATCH)
        lines = []
        for tp, recs in batch.items():
            for r in recs:
                lines.append(f"{tp.partition}\t{r.offset}\t{field(r.key)}\t{field(r.value)}\n")
                done[tp.partition] = r.offset + 1
        emit(lines)
        commit(list(done))
    if not stop.is_set():
        return 4
    commit(list(done))
    consumer.close(autocommit=False)
    emit(["#closed\n"])
    return 0


def confluent_kafka(bootstrap, topic, group, stop, deadline):
    import confluent_kafka as ck
    log(f"client-version: confluent-kafka {ck.version()[0]} librdkafka {ck.libversion()[0]}")
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                            "auto.offset.reset": "earliest", "client.id": f"kstretch-member-{os.getpid()}"})
    done = {}

    def commit(partitions):
        offsets = [ck.TopicPartition(topic, p, done[p]) for p in partitions if p in done]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except ck.KafkaException as e:  # kept: committed again before the partitions go
                log(f"commit failed: {e}")
                return
        for p in partitions:
            done.pop(p, None)

    def on_assign(_, parts):
        emit([partitions_line("assigned", [tp.partition for tp in parts])])

    def on_revoke(_, parts):
        ps = [tp.partition for tp in parts]
        commit(ps)
        emit([partitions_line("revoked", ps)])

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop.is_set() and time.monotonic() < deadline:
        lines = []
        for m in consumer.consume(num_messages=BATCH, timeout=POLL_S):
            if m.error():
                log(f"consume error: {m.error()}")
                continue
            lines.append(f"{m.partition()}\t{m.offset()}\t{field(m.key())}\t{field(m.value())}\n")
            done[m.partition()] = m.offset() + 1
        emit(lines)
        commit(list(done))
    if not stop.is_set():
        return 4
    commit(list(done))
    consumer.close()
    emit(["#closed\n"])
    return 0


CLIENTS = {"kafka-python": kafka_python, "confluent-kafka": confluent_kafka}


def main(argv):
    if len(argv) != 5 or argv[0] not in CLIENTS:
        log(__doc__)
        return 2
    client, bootstrap, topic, group, timeout_s = argv
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    rc = CLIENTS[client](bootstrap, topic, group, stop, time.monotonic() + float(timeout_s))
    if rc == 4:
        log(f"group_member: not told to stop within {timeout_s}s")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
