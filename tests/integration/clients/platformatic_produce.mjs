// @platformatic/kafka: produce records with acks=all (the test reads them back
// with another client).
//
//   KSTRETCH_NODE_MODULES=<node_modules> node platformatic_produce.mjs BOOTSTRAP TOPIC INPUT TIMEOUT_S
//
// INPUT: KEY<TAB>VALUE lines, produced in order, CHUNK records per send().
// For every partition answer to a send it prints SEND<TAB>PARTITION<TAB>BASE_OFFSET
// (SEND counts from 0). Exit codes: 0 ok, 3 produce failed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

// Node 20 lacks Promise.withResolvers (Node 22+), which the library uses.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

const [bootstrap, topic, input, timeoutArg] = process.argv.slice(2);
const modules = process.env.KSTRETCH_NODE_MODULES;
if (!timeoutArg || !modules) {
  process.stderr.write('usage: KSTRETCH_NODE_MODULES=DIR platformatic_produce.mjs BOOTSTRAP TOPIC INPUT TIMEOUT_S\n');
  process.exit(2);
}
setTimeout(() => {
  process.stderr.write(`platformatic_produce: no result within ${timeoutArg}s\n`);
  process.exit(3);
}, Number(timeoutArg) * 1000).unref();

// An ES module: NODE_PATH does not apply to import, so load it by path.
const pkgDir = join(modules, '@platformatic', 'kafka');
const { Producer, ProduceAcks, stringSerializers } = await import(pathToFileURL(join(pkgDir, 'dist', 'index.js')).href);
const version = createRequire(import.meta.url)(join(pkgDir, 'package.json')).version;
process.stderr.write(`client-version: @platformatic/kafka ${version}\n`);

const messages = readFileSync(input, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => {
  const tab = l.indexOf('\t');
  return { topic, key: l.slice(0, tab), value: l.slice(tab + 1) };
});

const producer = new Producer({
  clientId: 'kstretch-tests-platformatic',
  bootstrapBrokers: bootstrap.split(','),
  serializers: stringSerializers,
});
const CHUNK = 1000;
const acked = [];
let code = 0;
try {
  for (let i = 0; i < messages.length; i += CHUNK) {
    const res = await producer.send({ messages: messages.slice(i, i + CHUNK), acks: ProduceAcks.ALL });
    for (const o of res.offsets ?? []) {
      acked.push(`${i / CHUNK}\t${o.partition}\t${o.offset}\n`);
    }
  }
} catch (e) {
  process.stderr.write(`produce failed: ${e.stack || e}\n${JSON.stringify(e.errors ?? [], null, 1)}\n`);
  code = 3;
}
await producer.close();
process.stdout.write(acked.join(''), () => process.exit(code));
