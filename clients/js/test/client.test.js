// The client against a real mqd (test-helpers/server.js starts it on a free
// loopback port and stops it, checking that it exits cleanly).

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { CommandError, Subscription, connect } from 'mqd-client';

import { Server, within } from '../test-helpers/server.js';

let server;
let opened = [];
let topics = 0;

before(async () => {
  server = await Server.start();
});

after(async () => {
  assert.deepEqual(await server.stop(), { code: 0, signal: null });
});

afterEach(async () => {
  await Promise.all(opened.map((client) => within(client.close(), 'close')));
  opened = [];
});

/** A client of `port` (the shared server's by default), closed after the test. */
async function open(port = server.port, options = {}) {
  const client = await within(connect({ port, ...options }), 'connect');
  opened.push(client);
  return client;
}

/** A topic no other test uses (they share one server). */
function fresh(name = 't') {
  topics += 1;
  return `${name}-${topics}`;
}

/** The next `n` messages of `subscription`, waiting for them. */
async function take(subscription, n) {
  const got = [];
  while (got.length < n) {
    const { value, done } = await within(subscription.next(), `message ${got.length + 1} of ${n}`);
    assert.equal(done, false, `the subscription ended after ${got.length} of ${n} messages`);
    got.push(value);
  }
  return got;
}

/**
 * Every message delivered to `subscription` so far, and proof there is no
 * other: the reply to a no-op command comes after every line queued before it.
 */
async function drain(client, subscription) {
  await within(client.unsubscribe('\u0001sync'), 'sync');
  return take(subscription, subscription.queued);
}

const indexes = (messages) => messages.map((m) => m.index);
const message = (topic, msg, index, delivery = 'all') => ({ topic, msg, index, delivery });

describe('commands and deliveries', () => {
  it('delivers what is sent to a subscriber', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh('news');
    const news = await reader.subscribe(topic);
    assert.ok(news instanceof Subscription);
    assert.equal(news.topic, topic);
    assert.equal(await writer.send(topic, 'hello'), undefined);
    assert.deepEqual(await take(news, 1), [message(topic, 'hello', 0)]);
    assert.deepEqual(await drain(reader, news), []);
  });

  it('iterates with for await, and leaving the loop unsubscribes', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh();
    const subscription = await reader.subscribe(topic);
    for (const msg of ['a', 'b', 'c']) await writer.send(topic, msg);
    const got = [];
    for await (const m of subscription) {
      got.push(m.msg);
      if (got.length === 2) break;
    }
    assert.deepEqual(got, ['a', 'b']);
    assert.equal(subscription.active, false);
    await writer.send(topic, 'after');
    // "c" came before the unsubscribe's reply: kept; "after" never comes
    assert.deepEqual(await drain(reader, subscription), [message(topic, 'c', 2)]);
    assert.deepEqual(await within(subscription.next()), { value: undefined, done: true });
  });

  it('keeps messages that arrive before anyone iterates, in order', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh();
    const subscription = await reader.subscribe(topic);
    for (let i = 0; i < 200; i++) await writer.send(topic, String(i));
    await reader.subscribe(fresh('other')); // its reply comes after the 200 messages
    assert.equal(subscription.queued, 200);
    const got = await take(subscription, 200);
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => message(topic, String(i), i)));
  });

  it('queues a message to oneself that arrives before the reply to its send', async () => {
    const client = await open();
    const topic = fresh();
    const subscription = await client.subscribe(topic);
    await client.send(topic, 'mine');
    assert.equal(subscription.queued, 1); // already here when send resolved
    assert.deepEqual(await take(subscription, 1), [message(topic, 'mine', 0)]);
  });

  it('hands messages to next() calls made before they arrive', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh();
    const subscription = await reader.subscribe(topic);
    const waiting = [subscription.next(), subscription.next()];
    await writer.send(topic, 'x');
    await writer.send(topic, 'y');
    const got = await within(Promise.all(waiting));
    assert.deepEqual(got.map((r) => r.value.msg), ['x', 'y']);
  });

  it('routes the messages of several topics to their own subscriptions', async () => {
    const [reader, writer] = [await open(), await open()];
    const names = [fresh('a'), fresh('b'), fresh('c')];
    const subscriptions = await Promise.all(names.map((name) => reader.subscribe(name)));
    for (let i = 0; i < 30; i++) await writer.send(names[i % 3], `${names[i % 3]}:${i}`);
    for (const [k, subscription] of subscriptions.entries()) {
      const got = await take(subscription, 10);
      assert.deepEqual(got.map((m) => m.topic), Array(10).fill(names[k]));
      assert.deepEqual(got.map((m) => m.msg), Array.from({ length: 10 }, (_, j) => `${names[k]}:${3 * j + k}`));
      assert.deepEqual(indexes(got), [...Array(10).keys()]);
    }
    for (const subscription of subscriptions) assert.deepEqual(await drain(reader, subscription), []);
  });

  it('delivers 1,000 pipelined messages in order', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh();
    const subscription = await reader.subscribe(topic);
    const sends = [];
    for (let i = 0; i < 1000; i++) sends.push(writer.send(topic, `message ${i}`));
    await within(Promise.all(sends), 'the 1,000 replies');
    const got = await take(subscription, 1000);
    assert.deepEqual(got.map((m) => m.msg), Array.from({ length: 1000 }, (_, i) => `message ${i}`));
    assert.deepEqual(indexes(got), [...Array(1000).keys()]);
  });

  it('keeps thousands of messages queued and hands them out in order', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh();
    const subscription = await reader.subscribe(topic);
    const sends = [];
    for (let i = 0; i < 3000; i++) sends.push(writer.send(topic, String(i)));
    await within(Promise.all(sends), 'the 3,000 replies');
    await reader.unsubscribe('\u0001sync');
    assert.equal(subscription.queued, 3000);
    const first = await take(subscription, 2000);
    await writer.send(topic, 'one more');
    const rest = await take(subscription, 1001);
    assert.deepEqual([...first, ...rest].map((m) => m.msg),
      [...Array.from({ length: 3000 }, (_, i) => String(i)), 'one more']);
  });

  it('matches pipelined replies to their commands, deliveries interleaved', async () => {
    const client = await open();
    const topic = fresh();
    const results = await within(Promise.all([
      client.subscribe(topic),
      client.send(topic, 'one'),
      client.request({ command: 'bogus' }).catch((error) => error),
      client.send(topic, 'two'),
      client.request({ command: 'unsubscribe', topic: fresh() }),
    ]));
    const [subscription, sent1, refused, sent2, reply] = results;
    assert.ok(subscription instanceof Subscription);
    assert.equal(sent1, undefined);
    assert.ok(refused instanceof CommandError);
    assert.equal(refused.reason, 'Malformed json message');
    assert.equal(sent2, undefined);
    assert.deepEqual(reply, { success: true });
    assert.deepEqual(await drain(client, subscription), [message(topic, 'one', 0), message(topic, 'two', 1)]);
  });

  it('unsubscribe stops delivery, keeps what came before and ends the iterator', async () => {
    const [reader, writer] = [await open(), await open()];
    const topic = fresh();
    const subscription = await reader.subscribe(topic);
    await writer.send(topic, 'before');
    await reader.unsubscribe(topic);
    assert.equal(subscription.active, false);
    await writer.send(topic, 'after');
    await reader.unsubscribe('\u0001sync');
    assert.deepEqual(await take(subscription, 1), [message(topic, 'before', 0)]);
    assert.deepEqual(await within(subscription.next()), { value: undefined, done: true });
    await subscription.unsubscribe(); // harmless once ended
  });

  it('ends a waiting iterator when its subscription is left', async () => {
    const client = await open();
    const subscription = await client.subscribe(fresh());
    const waiting = subscription.next();
    await subscription.unsubscribe();
    assert.deepEqual(await within(waiting), { value: undefined, done: true });
  });

  it('unsubscribes from a topic never joined without complaint', async () => {
    const client = await open();
    assert.equal(await client.unsubscribe(fresh('never')), undefined);
  });

  it('gives a new subscription after an unsubscribe, the same one while subscribed', async () => {
    const client = await open();
    const topic = fresh();
    const first = await client.subscribe(topic);
    assert.equal(await client.subscribe(topic), first);
    await client.unsubscribe(topic);
    const second = await client.subscribe(topic);
    assert.notEqual(second, first);
    await client.send(topic, 'm');
    assert.deepEqual(indexes(await drain(client, second)), [0]);
    assert.equal(first.queued, 0);
  });

  it('request() sends any command and resolves to the reply', async () => {
    const client = await open();
    const topic = fresh();
    assert.deepEqual(await client.request({ command: 'subscribe', topic }), { success: true });
    await client.request({ command: 'send', topic, msg: 'raw', delivery: 'all' });
    const subscription = await client.subscribe(topic, { cache: false }); // the one request() made
    assert.deepEqual(await drain(client, subscription), [message(topic, 'raw', 0)]);
  });
});

describe('the cache', () => {
  async function fiveCached() {
    const writer = await open();
    const topic = fresh();
    for (let i = 0; i < 5; i++) await writer.send(topic, String(i));
    return topic;
  }

  const cases = [
    [{}, [0, 1, 2, 3, 4]],
    [{ lastSeen: 2 }, [3, 4]],
    [{ lastSeen: -1 }, [0, 1, 2, 3, 4]],
    [{ lastSeen: 4 }, []],
    [{ lastSeen: 2n ** 80n }, []],
    [{ lastSeen: -(2 ** 80) }, [0, 1, 2, 3, 4]],
    [{ lastSeen: 1e21 }, []],
    [{ cache: false }, []],
    [{ cache: true, lastSeen: 3 }, [4]],
    [{ cache: false, lastSeen: 0 }, []],
  ];
  for (const [options, replayed] of cases) {
    const shown = JSON.stringify(options, (k, v) => (typeof v === 'bigint' ? `${v}n` : v));
    it(`subscribe ${shown} replays ${JSON.stringify(replayed)} in index order`, async () => {
      const topic = await fiveCached();
      const client = await open();
      const subscription = await client.subscribe(topic, options);
      const got = await drain(client, subscription);
      assert.deepEqual(indexes(got), replayed);
      assert.deepEqual(got.map((m) => m.msg), replayed.map(String));
    });
  }

  it('replays the cache again when subscribing again', async () => {
    const topic = await fiveCached();
    const client = await open();
    const subscription = await client.subscribe(topic, { lastSeen: 3 });
    await client.subscribe(topic, { lastSeen: 3 });
    assert.deepEqual(indexes(await drain(client, subscription)), [4, 4]);
  });

  it('does not replay a message sent with cache false', async () => {
    const writer = await open();
    const topic = fresh();
    await writer.send(topic, 'kept');
    await writer.send(topic, 'not kept', { cache: false });
    await writer.send(topic, 'kept too', { cache: true });
    const client = await open();
    const subscription = await client.subscribe(topic);
    assert.deepEqual((await drain(client, subscription)).map((m) => [m.index, m.msg]),
      [[0, 'kept'], [2, 'kept too']]);
  });
});

describe('delivery one', () => {
  it('reaches exactly one subscriber', async () => {
    const [a, b, writer] = [await open(), await open(), await open()];
    const topic = fresh();
    const [sa, sb] = [await a.subscribe(topic), await b.subscribe(topic)];
    for (let i = 0; i < 40; i++) await writer.send(topic, String(i), { delivery: 'one' });
    const got = [...await drain(a, sa), ...await drain(b, sb)];
    assert.deepEqual(indexes(got).sort((x, y) => x - y), [...Array(40).keys()]);
    assert.ok(got.every((m) => m.delivery === 'one' && m.msg === String(m.index)));
  });

  it('waits in the cache for the next subscriber when there is none', async () => {
    const [writer, first, second] = [await open(), await open(), await open()];
    const topic = fresh();
    await writer.send(topic, 'for one', { delivery: 'one' });
    await writer.send(topic, 'for one, not cached', { delivery: 'one', cache: false });
    const s1 = await first.subscribe(topic);
    assert.deepEqual(await drain(first, s1), [message(topic, 'for one', 0, 'one')]);
    const s2 = await second.subscribe(topic);
    assert.deepEqual(await drain(second, s2), []);
  });
});

describe('text', () => {
  const controls = Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('');
  const texts = [
    '', 'plain', 'é', '日本語', '😀', '\u{10FFFF}\u{1F600}\u{10000}', 'a\nb\r\nc\td',
    '\b\f\n\r\t\v', controls, '\u007f\u0080\u009f', '\u2028\u2029', '\ufeff', 'e\u0301',
    '"quoted" \\ back/slash \\\\ \\" \\u0041 \\n', '{"command":"send"}\n{"x":1}', '\uffff\ufffe',
  ];
  for (const text of texts) {
    // the test's name in ASCII
    const shown = JSON.stringify(text).replace(/[^ -~]/gu, (c) => `U+${c.codePointAt(0).toString(16)}`);
    it(`arrives as sent: ${shown}`, async () => {
      const client = await open();
      const topic = `${fresh()}${text}`;
      const subscription = await client.subscribe(topic);
      await client.send(topic, text);
      await client.send(topic, `nul \0 inside${text}`);
      assert.deepEqual(await drain(client, subscription),
        [message(topic, text, 0), message(topic, `nul \0 inside${text}`, 1)]);
    });
  }

  it('arrives intact in a message larger than the socket buffers', async () => {
    // about 2 MB as a JSON line, more than mqd's default --max-line
    const msg = '0123456789abcdé😀\u0000"\\\n'.repeat(1 << 16);
    const big = await Server.start('--max-line', '16m');
    try {
      const [reader, writer] = [await open(big.port), await open(big.port)];
      const topic = fresh();
      const subscription = await reader.subscribe(topic);
      const own = await writer.subscribe(topic);
      await within(writer.send(topic, msg), 'the big send');
      assert.equal(own.queued, 1); // its own copy came while it waited for the reply
      // (compared apart: a failing deepEqual would spend minutes on a diff of megabytes)
      for (const [got] of [await take(own, 1), await take(subscription, 1)]) {
        assert.ok(got.msg === msg, 'the big message changed on the way');
        assert.deepEqual({ ...got, msg: null }, message(topic, null, 0));
      }
      await Promise.all([reader.close(), writer.close()]);
    } finally {
      assert.deepEqual(await big.stop(), { code: 0, signal: null });
    }
  });
});
