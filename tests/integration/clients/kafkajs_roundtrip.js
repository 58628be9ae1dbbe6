// KafkaJS: produce records with acks=-1, then read them back in a consumer group.
//
//   NODE_PATH=<node_modules> node kafkajs_roundtrip.js BOOTSTRAP TOPIC GROUP INPUT EXPECTED TIMEOUT_S [--idempotent]
//                                                     [--sasl MECHANISM:USER:PASSWORD] [--tls-ca FILE]
//
// INPUT: KEY<TAB>VALUE lines to produce in order ("-" for none). GROUP "-": no
// group; KafkaJS has no assign(), so every partition is read from offset 0 with
// Fetch requests sent by KafkaJS's own cluster and broker objects to each
// partition's leader (its internals, as its consumer uses them). --idempotent:
// an idempotent producer (KafkaJS then allows one request in flight). --sasl:
// SASL with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. --tls-ca: TLS, trusting the
// CAs of that PEM file. Consumed
// records go to stdout as PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE lines; KafkaJS
// logs go to stderr. Exit codes: 0 ok, 3 produce failed, 4 too few records in time.
'use strict';
const fs = require('fs');
const { Kafka, logLevel, Partitioners } = require('kafkajs');

const [bootstrap, topic, group, input, expectedArg, timeoutArg, ...options] = process.argv.slice(2);
const USAGE = 'usage: kafkajs_roundtrip.js BOOTSTRAP TOPIC GROUP INPUT EXPECTED TIMEOUT_S [--idempotent] '
  + '[--sasl MECHANISM:USER:PASSWORD] [--tls-ca FILE]\n';
let idempotent = false;
let sasl;
let ssl;
for (let i = 0; i < options.length; i += 1) {
  const m = options[i] === '--sasl' && i + 1 < options.length
    ? /^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512):([^:]+):(.*)$/.exec(options[i + 1]) : null;
  if (options[i] === '--idempotent') {
    idempotent = true;
  } else if (options[i] === '--tls-ca' && i + 1 < options.length) {
    ssl = { ca: [fs.readFileSync(options[i + 1], 'utf8')] };
    i += 1;
  } else if (m) {
    sasl = { mechanism: m[1].toLowerCase(), username: m[2], password: m[3] };
    i += 1;
  } else {
    process.stderr.write(USAGE);
    process.exit(2);
  }
}
if (!timeoutArg) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const expected = Number(expectedArg);
const deadline = Date.now() + Number(timeoutArg) * 1000;
setTimeout(() => {
  process.stderr.write(`kafkajs_roundtrip: no result within ${timeoutArg}s\n`);
  process.exit(4);
}, Number(timeoutArg) * 1000).unref();

const stderrLogger = () => ({ namespace, level, label, log }) => {
  process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`);
};

async function main() {
  const kafka = new Kafka({
    clientId: 'kstretch-tests-kafkajs',
    brokers: bootstrap.split(','),
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    retry: { retries: 5, initialRetryTime: 100 },
    ...(sasl ? { sasl } : {}),
    ...(ssl ? { ssl } : {}),
  });
  process.stderr.write(`client-version: kafkajs ${require('kafkajs/package.json').version}\n`);

  if (input !== '-') {
    const records = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => {
      const tab = l.indexOf('\t');
      return { key: l.slice(0, tab), value: l.slice(tab + 1) };
    });
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      ...(idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {}),
    });
    await producer.connect();
    try {
      for (let i = 0; i < records.length; i += 1000) {
        await producer.send({ topic, acks: -1, messages: records.slice(i, i + 1000) });
      }
    } catch (e) {
      process.stderr.write(`produce failed: ${e.stack || e}\n`);
      await producer.disconnect();
      return 3;
    }
    await producer.disconnect();
  }

  if (group === '-') return consumeAssigned(kafka);
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const out = [];
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        out.push(`${batch.partition}\t${m.offset}\t${m.key.toString()}\t${m.value.toString()}\n`);
      }
      if (out.length >= expected) resolveDone();
    },
  });
  const timer = setInterval(() => { if (Date.now() > deadline - 2000) resolveDone(); }, 100);
  await done;
  clearInterval(timer);
  await consumer.disconnect();
  process.stdout.write(out.join(''));
  if (out.length < expected) {
    process.stderr.write(`read ${out.length} of ${expected} records before the deadline\n`);
    return 4;
  }
  return 0;
}

// Every partition of the topic from offset 0, without a group: Fetch v11
// (sessionless, read_uncommitted) to each partition's leader as the metadata
// names it, metadata refreshed after an error, until EXPECTED records or the
// deadline.
async function consumeAssigned(kafka) {
  const createCluster = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false });
  await cluster.connect();
  await cluster.addTargetTopic(topic);
  const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId).sort((a, b) => a - b);
  process.stderr.write(`kafkajs_roundtrip: assigned by hand ${topic} partitions ${partitions.join(',')}\n`);
  const next = new Map(partitions.map((p) => [p, 0n]));
  const out = [];
  let errors = 0;
  const fetchFrom = async (nodeId, parts) => {
    const broker = await cluster.findBroker({ nodeId });
    const r = await broker.fetch({
      replicaId: -1,
      isolationLevel: 0,
      maxWaitTime: 100,
      minBytes: 1,
      maxBytes: 10 << 20,
      topics: [{ topic, partitions: parts.map((p) => ({ partition: p, fetchOffset: next.get(p).toString(), maxBytes: 1 << 20 })) }],
    });
    for (const t of r.responses) {
      for (const pr of t.partitions) {
        for (const m of pr.messages) {
          const offset = BigInt(m.offset);
          if (offset < next.get(pr.partition)) continue; // a batch that began before the offset asked for
          out.push(`${pr.partition}\t${m.offset}\t${m.key.toString()}\t${m.value.toString()}\n`);
          next.set(pr.partition, offset + 1n);
        }
      }
    }
  };
  while (out.length < expected && Date.now() < deadline - 2000) {
    const byLeader = cluster.findLeaderForPartitions(topic, partitions);
    try {
      await Promise.all(Object.entries(byLeader).map(([nodeId, parts]) => fetchFrom(Number(nodeId), parts)));
    } catch (e) {
      errors += 1;
      if (errors <= 5) process.stderr.write(`kafkajs_roundtrip: fetch failed: ${e}\n`);
      await cluster.refreshMetadata();
    }
  }
  await cluster.disconnect();
  process.stdout.write(out.join(''));
  if (out.length < expected) {
    process.stderr.write(`read ${out.length} of ${expected} records before the deadline\n`);
    return 4;
  }
  return 0;
}

main().then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (e) => { process.stderr.write(`kafkajs_roundtrip: ${e.stack || e}\n`); process.exit(1); },
);
