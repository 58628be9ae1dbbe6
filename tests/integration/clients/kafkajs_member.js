// KafkaJS: one member of a consumer group, in the member contract of
// tests/kafka/groupmembers.py.
//
//   NODE_PATH=<node_modules> node kafkajs_member.js BOOTSTRAP TOPIC GROUP TIMEOUT_S
//
// Subscribes from the beginning, auto-commit off; writes each record read as
// PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE and, on each join, "#revoked" (the
// partitions it held) and "#assigned P,..." (KafkaJS's rebalances are eager:
// it gives up everything and is given its new set). Each batch is committed
// (commitOffsets) before the next is taken, and KafkaJS rejoins only between
// batches, so nothing read goes uncommitted to another member. A line on
// stdin (or its end): disconnect (which leaves the group), "#closed", exit 0.
// Not told to stop within TIMEOUT_S: exit 4.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, group, timeoutArg] = process.argv.slice(2);
if (!timeoutArg) {
  process.stderr.write('usage: kafkajs_member.js BOOTSTRAP TOPIC GROUP TIMEOUT_S\n');
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write(`kafkajs_member: not told to stop within ${timeoutArg}s\n`);
  process.exit(4);
}, Number(timeoutArg) * 1000).unref();

const stderrLogger = () => ({ namespace, label, log }) => {
  process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`);
};

function emit(text) {
  if (text) process.stdout.write(text);
}

async function main() {
  const kafka = new Kafka({
    clientId: `kstretch-member-${process.pid}`,
    brokers: bootstrap.split(','),
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
  });
  process.stderr.write(`client-version: kafkajs ${require('kafkajs/package.json').version}\n`);
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
  let held = [];
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const mine = (payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
    emit(`#revoked ${held.join(',')}\n#assigned ${mine.join(',')}\n`);
    held = mine;
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (batch.messages.length === 0) return;
      let text = '';
      for (const m of batch.messages) {
        text += `${batch.partition}\t${m.offset}\t${m.key ? m.key.toString() : ''}\t`
          + `${m.value ? m.value.toString() : ''}\n`;
      }
      emit(text);
      const next = (BigInt(batch.messages[batch.messages.length - 1].offset) + 1n).toString();
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
    },
  });
  await new Promise((resolve) => {
    process.stdin.once('data', resolve);
    process.stdin.once('end', resolve);
  });
  await consumer.disconnect();
  await new Promise((resolve) => process.stdout.write('#closed\n', resolve));
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`kafkajs_member: ${e.stack || e}\n`);
  process.exit(1);
});
