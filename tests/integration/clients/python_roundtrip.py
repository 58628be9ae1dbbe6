"""Produce records with acks=all, then read them back in a consumer group,
with kafka-python or confluent-kafka-python (librdkafka; LD_LIBRARY_PATH picks
which build). Run by Debian's python3 it uses Debian's kafka-python 2.0 and
confluent-kafka 1.7; run by the Python of $KSTRETCH_VENV (`make deps-pip`),
the PyPI releases of tests/kafka/requirements.txt, whose confluent-kafka
wheel brings its own librdkafka.

    python_roundtrip.py CLIENT BOOTSTRAP TOPIC GROUP INPUT EXPECTED TIMEOUT_S [OPTION...]

CLIENT is kafka-python or confluent-kafka. INPUT is a file of KEY<TAB>VALUE
lines to produce in order ("-" to produce nothing); EXPECTED is how many
records to read back (0: do not consume). Consumed records are written to
stdout as PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines in consumption order;
the library's version goes to stderr as "client-version: ...". GROUP "-"
(kafka-python): no group; every partition assigned by hand (assign) and read
from its beginning, nothing committed.

Options:
  --idempotent   idempotent producer (confluent-kafka: enable.idempotence=true;
                 kafka-python >= 2.1: enable_idempotence=True; kafka-python 2.0
                 has none: exit code 2). Without it the producer is not
                 idempotent, whatever the library's default
  --transactional N
                 a transactional producer (confluent-kafka; transactional.id TOPIC-txn) that
                 commits every N records; --acked then lists the records of committed
                 transactions only
  --abort-odd    with --transactional: the 2nd, 4th, ... transactions are written
                 (flush) and then aborted (abort_transaction), the others committed
  --rate N       produce at most N records per second (default: as fast as possible)
  --set KEY=VALUE
                 one more librdkafka property for confluent-kafka's producer (repeatable),
                 e.g. debug=broker,topic,msg to see retries and metadata refreshes on stderr
  --acked FILE   write every acknowledged record to FILE as
                 PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines (confluent-kafka; offset -1
                 when the ack named none)
  --sasl MECHANISM:USER:PASSWORD
                 authenticate with SASL over plaintext (security.protocol SASL_PLAINTEXT):
                 PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
  --api-version X.Y
                 kafka-python's api_version=(X, Y): speak no request version newer than
                 Kafka X.Y's, whatever the broker offers (for a broker that offers versions
                 it cannot read, as librdkafka's mock does with flexible ApiVersions)

Exit codes: 0 ok, 2 usage, 3 produce failed, 4 fewer records than expected in time.
"""
import sys
import time


class Pacer:
    """Sleeps as needed so that the i-th record is not sent before i / rate seconds."""

    def __init__(self, rate):
        self.rate = rate
        self.start = time.monotonic()

    def wait(self, i):
        if self.rate:
            ahead = self.start + i / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_input(path):
    if path == "-":
        return []
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]


def kafka_python(bootstrap, topic, group, records, expected, deadline, opts):
    import kafka
    log(f"client-version: kafka-python {kafka.__version__}")
    if opts["acked"] or opts["transactional"]:
        log("--acked and --transactional are for confluent-kafka")
        return 2
    # kafka-python 2.0 (Debian 12) has no idempotent producer; later ones have
    # one, on by default in 3.x: ask for it or not, explicitly.
    has_idempotence = "enable_idempotence" in kafka.KafkaProducer.DEFAULT_CONFIG
    if opts["idempotent"] and not has_idempotence:
        log(f"kafka-python {kafka.__version__} has no idempotent producer")
        return 2
    idempotence = {"enable_idempotence": opts["idempotent"]} if has_idempotence else {}
    versions = {"api_version": opts["api_version"]} if opts["api_version"] else {}
    if opts["sasl"]:
        mech, user, password = opts["sasl"]
        versions.update(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mech, sasl_plain_username=user,
                        sasl_plain_password=password)
    servers = bootstrap.split(",")
    if records:
        producer = kafka.KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5, retries=5,
                                       request_timeout_ms=15000, max_block_ms=15000, **idempotence, **versions)
        pacer = Pacer(opts["rate"])
        futures = []
        for i, (k, v) in enumerate(records):
            pacer.wait(i)
            futures.append(producer.send(topic, key=k.encode(), value=v.encode()))
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
    if not expected:
        return 0
    if group == "-":
        consumer = kafka.KafkaConsumer(bootstrap_servers=servers, group_id=None, auto_offset_reset="earliest",
                                       enable_auto_commit=False, consumer_timeout_ms=1000, **versions)
        assign_all(consumer, topic, deadline)
    else:
        consumer = kafka.KafkaConsumer(topic, bootstrap_servers=servers, group_id=group, auto_offset_reset="earliest",
                                       enable_auto_commit=False, consumer_timeout_ms=1000, **versions)
    got = 0
    out = sys.stdout
    try:
        while got < expected and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                for m in msgs:
                    out.write(f"{m.partition}\t{m.offset}\t{m.key.decode()}\t{m.value.decode()}\n")
                    got += 1
        if group != "-":
            consumer.commit()
    finally:
        consumer.close(autocommit=False)
    out.flush()
    if got < expected:
        log(f"read {got} of {expected} records before the deadline")
        return 4
    return 0


def assign_all(consumer, topic, deadline):
    """kafka-python: every partition of `topic` assigned by hand, from its beginning."""
    import kafka
    parts = consumer.partitions_for_topic(topic)
    while not parts and time.monotonic() < deadline:
        time.sleep(0.2)
        parts = consumer.partitions_for_topic(topic)
    tps = [kafka.TopicPartition(topic, p) for p in sorted(parts or ())]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    log(f"assigned by hand: {topic} partitions {sorted(parts or ())}")


def write_acked(path, acked):
    with open(path, "w", encoding="utf-8") as f:
        for p, o, k, v in acked:
            f.write(f"{p}\t{o}\t{k}\t{v}\n")


def confluent_produce(ck, bootstrap, topic, records, deadline, opts):
    errors = []
    acked = []  # of the current transaction, when transactional
    committed = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            # The offset is None when the broker acknowledged a retried batch
            # as a duplicate of one it had already written (no offset given).
            offset = -1 if msg.offset() is None else msg.offset()
            acked.append((msg.partition(), offset, msg.key().decode(), msg.value().decode()))

    def left():
        return max(1.0, deadline - time.monotonic())

    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **confluent_sasl(opts), **opts["set"]}
    if opts["idempotent"]:
        conf["enable.idempotence"] = True
    txn_size = opts["transactional"] or len(records)
    if opts["transactional"]:
        conf["transactional.id"] = f"{topic}-txn"
    producer = ck.Producer(conf)
    if opts["transactional"]:
        producer.init_transactions(left())
    pacer = Pacer(opts["rate"])
    status = 0
    for first in range(0, len(records), txn_size):
        if opts["transactional"]:
            producer.begin_transaction()
        for i in range(first, min(first + txn_size, len(records))):
            k, v = records[i]
            pacer.wait(i)
            while True:
                try:
                    producer.produce(topic, key=k.encode(), value=v.encode(), on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
                    if time.monotonic() > deadline:
                        log("local produce queue stayed full")
                        return 3, committed + acked
            producer.poll(0)
        if not opts["transactional"]:
            break
        if opts["abort_odd"] and (first // txn_size) % 2 == 1:
            # Written first (abort_transaction would purge what is still queued):
            # the brokers hold the records and then the abort markers.
            if producer.flush(left()):
                log(f"records {first}.. not delivered before their abort")
                return 3, committed
            producer.abort_transaction(left())
            acked.clear()
            continue
        while True:
            try:
                producer.commit_transaction(left())
                break
            except ck.KafkaException as e:
                if e.args[0].retriable() and time.monotonic() < deadline:
                    continue
                log(f"commit of records {first}.. failed: {e}")
                return 3, committed
        committed.extend(acked)
        acked.clear()
    undelivered = producer.flush(left())
    if undelivered or errors:
        log(f"{undelivered} records undelivered, {len(errors)} delivery errors: {errors[:5]}")
        status = 3
    return status, committed + acked


def confluent_sasl(opts):
    if not opts["sasl"]:
        return {}
    mech, user, password = opts["sasl"]
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": mech, "sasl.username": user,
            "sasl.password": password}


def confluent(bootstrap, topic, group, records, expected, deadline, opts):
    import confluent_kafka as ck
    version = ck.version()  # Debian's 1.7: (text, number); PyPI's 2.16: the text alone
    version = version[0] if isinstance(version, tuple) else version
    log(f"client-version: confluent-kafka {version} librdkafka {ck.libversion()[0]}")
    if opts["api_version"]:
        log("--api-version is for kafka-python")
        return 2
    if records:
        status, acked = confluent_produce(ck, bootstrap, topic, records, deadline, opts)
        if opts["acked"]:
            write_acked(opts["acked"], acked)
        if status:
            return status
    if not expected:
        return 0
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                            "enable.auto.commit": False, **confluent_sasl(opts)})
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


def parse_options(args):
    opts = {"idempotent": False, "rate": 0.0, "acked": None, "transactional": 0, "api_version": None, "sasl": None,
            "set": {}, "abort_odd": False}
    args = list(args)
    while args:
        a = args.pop(0)
        if a == "--idempotent":
            opts["idempotent"] = True
        elif a == "--rate" and args:
            opts["rate"] = float(args.pop(0))
        elif a == "--set" and args and "=" in args[0]:
            key, _, value = args.pop(0).partition("=")
            opts["set"][key] = value
        elif a == "--acked" and args:
            opts["acked"] = args.pop(0)
        elif a == "--abort-odd":
            opts["abort_odd"] = True
        elif a == "--transactional" and args:
            opts["transactional"] = int(args.pop(0))
        elif a == "--sasl" and args:
            parts = args.pop(0).split(":", 2)
            if len(parts) != 3 or parts[0] not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
                return None
            opts["sasl"] = tuple(parts)
        elif a == "--api-version" and args:
            try:
                opts["api_version"] = tuple(int(n) for n in args.pop(0).split("."))
            except ValueError:
                return None
        else:
            return None
    return opts


def main(argv):
    opts = parse_options(argv[8:]) if len(argv) >= 8 else None
    if opts is None or argv[1] not in ("kafka-python", "confluent-kafka"):
        log(__doc__)
        return 2
    client, bootstrap, topic, group, path, expected, timeout = argv[1:8]
    deadline = time.monotonic() + float(timeout)
    run = {"kafka-python": kafka_python, "confluent-kafka": confluent}[client]
    return run(bootstrap, topic, group, read_input(path), int(expected), deadline, opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
