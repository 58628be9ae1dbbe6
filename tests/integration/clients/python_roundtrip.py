"""Produce records with acks=all, then read them back in a consumer group,
with kafka-python or confluent-kafka-python (librdkafka; LD_LIBRARY_PATH picks
which build).

    python_roundtrip.py CLIENT BOOTSTRAP TOPIC GROUP INPUT EXPECTED TIMEOUT_S

CLIENT is kafka-python or confluent-kafka. INPUT is a file of KEY<TAB>VALUE
lines to produce in order ("-" to produce nothing); EXPECTED is how many
records to read back. Consumed records are written to stdout as
PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines in consumption order; the
library's version goes to stderr as "client-version: ...".
Exit codes: 0 ok, 3 produce failed, 4 fewer records than expected in time.
"""
import sys
import time


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_input(path):
    if path == "-":
        return []
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]


def kafka_python(bootstrap, topic, group, records, expected, deadline):
    import kafka
    log(f"client-version: kafka-python {kafka.__version__}")
    servers = bootstrap.split(",")
    if records:
        producer = kafka.KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, retries=5,
                                       request_timeout_ms=15000, max_block_ms=15000)
        futures = [producer.send(topic, key=k.encode(), value=v.encode()) for k, v in records]
        producer.flush(timeout=max(1.0, deadline - time.monotonic()))
        failed = 0
        for f in futures:
            try:
                f.get(timeout=max(0.1, deadline - time.monotonic()))
            except Exception as e:  # noqa: BLE001 - report every kind of delivery failure
                failed += 1
                if failed <= 5:
                    log(f"delivery failed: {e!r}")
        producer.close(timeout=5)
        if failed:
            log(f"{failed} of {len(records)} deliveries failed")
            return 3
    consumer = kafka.KafkaConsumer(topic, bootstrap_servers=servers, group_id=group, auto_offset_reset="earliest",
                                   enable_auto_commit=False, consumer_timeout_ms=1000)
    got = 0
    out = sys.stdout
    try:
        while got < expected and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                for m in msgs:
                    out.write(f"{m.partition}\t{m.offset}\t{m.key.decode()}\t{m.value.decode()}\n")
                    got += 1
        consumer.commit()
    finally:
        consumer.close(autocommit=False)
    out.flush()
    if got < expected:
        log(f"read {got} of {expected} records before the deadline")
        return 4
    return 0


def confluent(bootstrap, topic, group, records, expected, deadline):
    import confluent_kafka as ck
    log(f"client-version: confluent-kafka {ck.version()[0]} librdkafka {ck.libversion()[0]}")
    if records:
        errors = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)

        producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        for k, v in records:
            while True:
                try:
                    producer.produce(topic, key=k.encode(), value=v.encode(), on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
                    if time.monotonic() > deadline:
                        log("local produce queue stayed full")
                        return 3
            producer.poll(0)
        left = producer.flush(max(1.0, deadline - time.monotonic()))
        if left or errors:
            log(f"{left} records undelivered, {len(errors)} delivery errors: {errors[:5]}")
            return 3
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                            "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    out = sys.stdout
    try:
        while got < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    log(f"consumer error: {m.error()}")
                    continue
                out.write(f"{m.partition()}\t{m.offset()}\t{m.key().decode()}\t{m.value().decode()}\n")
                got += 1
        if got:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    out.flush()
    if got < expected:
        log(f"read {got} of {expected} records before the deadline")
        return 4
    return 0


def main(argv):
    if len(argv) != 8:
        log(__doc__)
        return 2
    client, bootstrap, topic, group, path, expected, timeout = argv[1:]
    deadline = time.monotonic() + float(timeout)
    run = {"kafka-python": kafka_python, "confluent-kafka": confluent}[client]
    return run(bootstrap, topic, group, read_input(path), int(expected), deadline)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
