// The bytes on the wire: the line splitter on every chunking, and the client
// against a scripted loopback listener, for what mqd itself never sends.

import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';

import {
  Client, CommandError, ConnectionClosed, LineSplitter, ProtocolError, connect,
} from 'mqd-client';

import { rejection, within } from '../test-helpers/server.js';

function split(chunks) {
  const lines = [];
  const splitter = new LineSplitter((line) => lines.push(line));
  for (const chunk of chunks) splitter.push(chunk);
  return { lines, partial: splitter.partial };
}

describe('LineSplitter', () => {
  const stream = Buffer.from('{"success": true}\r\n{"topic":"é😀","msg":"a\\r\\nb","index":0}\r\n\r\n{"x":"日本"}\r\n{"cut');
  const expected = ['{"success": true}', '{"topic":"é😀","msg":"a\\r\\nb","index":0}', '', '{"x":"日本"}'];

  it('gives the same lines however the bytes are chunked', () => {
    assert.deepEqual(split([stream]), { lines: expected, partial: 5 });
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(split([stream.subarray(0, cut), stream.subarray(cut)]), { lines: expected, partial: 5 },
        `cut at byte ${cut}`);
      for (let second = cut; second <= stream.length; second += 7) {
        const chunks = [stream.subarray(0, cut), stream.subarray(cut, second), stream.subarray(second)];
        assert.deepEqual(split(chunks).lines, expected, `cut at bytes ${cut} and ${second}`);
      }
    }
    const bytes = [...stream].map((byte) => Buffer.from([byte]));
    assert.deepEqual(split(bytes), { lines: expected, partial: 5 });
  });

  it('takes a bare "\\n" as a line end too', () => {
    assert.deepEqual(split([Buffer.from('a\nb\r\n\rc\n')]).lines, ['a', 'b', '\rc']);
  });

  it('refuses bytes that are not UTF-8', () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      const splitter = new LineSplitter(() => {});
      assert.throws(() => splitter.push(Buffer.from([0x22, ...bad, 0x22, 0x0d, 0x0a])), ProtocolError);
    }
  });

  it('keeps a byte-order mark inside a line', () => {
    assert.deepEqual(split([Buffer.from('\ufeff{}\r\n')]).lines, ['\ufeff{}']);
  });

  it('ignores what comes after stop()', () => {
    const lines = [];
    const splitter = new LineSplitter((line) => {
      lines.push(line);
      splitter.stop();
    });
    splitter.push(Buffer.from('a\r\nb\r\nc'));
    assert.deepEqual(lines, ['a']);
    assert.equal(splitter.partial, 0);
  });
});

let opened = [];

afterEach(async () => {
  // what a failed test left open would keep this process alive
  for (const thing of opened) thing.destroy?.();
  await Promise.all(opened.map((thing) => thing.close?.()));
  opened = [];
});

/** A client of `port`, closed after the test. */
async function open(port, options = {}) {
  const client = await within(connect({ port, ...options }), 'connect');
  opened.push(client);
  return client;
}

/**
 * A loopback listener for one connection: it writes `greeting` once the
 * client is connected, then answers each line it reads with the next of
 * `replies` (a string, or an array of chunks written apart); with `close`,
 * it ends the connection once they are used up. `received` resolves to all
 * it read, once the client has closed.
 */
async function fakeServer({ greeting = '', replies = [], close = false } = {}) {
  const listener = net.createServer();
  let resolveReceived;
  const received = new Promise((resolve) => { resolveReceived = resolve; });
  listener.on('connection', (socket) => {
    listener.close();
    opened.push({ destroy: () => socket.destroy() });
    let data = Buffer.alloc(0);
    let answered = 0;
    const queue = [...replies];
    socket.write(greeting);
    socket.on('data', async (chunk) => {
      data = Buffer.concat([data, chunk]);
      const lines = data.toString('latin1').split('\n').length - 1;
      for (; answered < lines; answered++) {
        const reply = queue.shift();
        if (reply !== undefined) {
          for (const part of [reply].flat()) {
            socket.write(part);
            await new Promise((resolve) => setTimeout(resolve, 5)); // apart, not coalesced
          }
        }
        if (close && queue.length === 0) socket.end();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => resolveReceived(data.toString('utf8')));
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  opened.push({ destroy: () => listener.close() });
  return { port: listener.address().port, received };
}

describe('on the wire', () => {
  it('sends each command as one compact JSON line, as UTF-8', async () => {
    const fake = await fakeServer({ replies: Array(4).fill('{"success": true}\r\n') });
    const client = await open(fake.port);
    await client.send('t\u00e9', '\u{1F600}\ud83d\ude00 \0\n"\\\u2028\x7f', { cache: false });
    await client.subscribe('t', { lastSeen: -3, cache: false });
    await client.subscribe('u', { lastSeen: 2n ** 70n });
    await client.request({ command: 'unsubscribe', topic: 'u', extra: [1, null] });
    await client.close();
    assert.equal(await within(fake.received), [
      '{"command":"send","topic":"té","msg":"😀😀 \\u0000\\n\\"\\\\\u2028\x7f","delivery":"all","cache":false}',
      '{"command":"subscribe","topic":"t","last_seen":-3,"cache":false}',
      '{"command":"subscribe","topic":"u","last_seen":1180591620717411303424}',
      '{"command":"unsubscribe","topic":"u","extra":[1,null]}',
      'quit',
      '',
    ].join('\n'));
  });

  it('reads replies and messages split anywhere across packets', async () => {
    const delivery = '{"command": "send", "topic": "t", "msg": "😀é", "delivery": "all", "index": 0}\r\n';
    const bytes = Buffer.from(`${delivery}{"success": true}\r\n`);
    // cut inside the emoji, inside "\r\n" and between lines
    const emoji = bytes.indexOf(Buffer.from('😀'));
    const cuts = [emoji + 1, emoji + 3, delivery.length + 2, bytes.length - 1];
    const chunks = [0, ...cuts].map((at, i) => bytes.subarray(at, [...cuts, bytes.length][i]));
    const fake = await fakeServer({ replies: ['{"success": true}\r\n', chunks] });
    const client = await open(fake.port);
    const subscription = await client.subscribe('t');
    await client.send('t', 'x');
    assert.deepEqual(await within(subscription.next()),
      { value: { topic: 't', msg: '😀é', index: 0, delivery: 'all' }, done: false });
    await client.close();
  });

  it('reads lines ended by a bare newline too', async () => {
    const fake = await fakeServer({
      replies: ['{"success": true}\n{"topic": "t", "msg": "m", "index": 0, "delivery": "all"}\n'],
    });
    const client = await open(fake.port);
    const subscription = await client.subscribe('t');
    assert.equal((await within(subscription.next())).value.msg, 'm');
    await client.close();
  });

  it('tells replies from messages by their keys, extra keys or not', async () => {
    const fake = await fakeServer({
      replies: [
        '{"success": true, "topic": "t", "msg": "not a message", "later": 1}\r\n',
        '{"topic": "t", "msg": "m", "index": 7, "delivery": "one", "success": "no"}\r\n{"success": true}\r\n',
      ],
    });
    const client = await open(fake.port);
    const subscription = await client.subscribe('t');
    await client.send('t', 'x');
    assert.equal(subscription.queued, 1);
    assert.deepEqual((await subscription.next()).value, { topic: 't', msg: 'm', index: 7, delivery: 'one' });
    await client.close();
  });

  const outOfProtocol = [
    'not json\r\n',
    Buffer.from([0xff, 0xfe, 0x0d, 0x0a]),
    '[1, 2]\r\n',
    '"success"\r\n',
    'null\r\n',
    '{"hello": "world"}\r\n',
    '{"success": "yes"}\r\n',
    '{"success": false}\r\n',
    '{"success": false, "reason": 3}\r\n',
    '{"topic": "t", "msg": 5, "index": 0}\r\n',
    '{"topic": "t", "msg": "m", "index": true}\r\n',
    '{"topic": "t", "msg": "m", "index": 1.5}\r\n',
    '{"topic": null, "msg": "m", "index": 1}\r\n',
    '{"topic": "elsewhere", "msg": "m", "index": 1}\r\n',
  ];
  for (const reply of outOfProtocol) {
    it(`closes with ProtocolError on ${JSON.stringify(String(reply))}`, async () => {
      const fake = await fakeServer({ replies: [reply] });
      const client = await open(fake.port);
      const error = await rejection(client.unsubscribe('t'));
      assert.ok(error instanceof ProtocolError, String(error));
      assert.equal(client.closed, true);
      assert.ok(await rejection(client.unsubscribe('t')) instanceof ConnectionClosed);
      await within(client.close());
    });
  }

  it('takes a reply no command waits for as a ProtocolError, ending subscriptions', async () => {
    const fake = await fakeServer({ replies: ['{"success": true}\r\n{"success": true}\r\n'] });
    const client = await open(fake.port);
    const subscription = await client.subscribe('t');
    assert.ok(await rejection(subscription.next()) instanceof ProtocolError);
    await within(client.close());
  });

  it('takes a connection ending inside a line as a close, not a ProtocolError', async () => {
    const fake = await fakeServer({ replies: ['{"success": tr'], close: true });
    const client = await open(fake.port);
    const error = await rejection(client.subscribe('t'));
    assert.ok(error instanceof ConnectionClosed && !(error instanceof ProtocolError));
    assert.match(error.message, /cut line dropped/);
    assert.equal(client.closed, true);
  });

  it('"Too many connections" before any command closes with that reason', async () => {
    const fake = await fakeServer({ greeting: '{"success": false, "reason": "Too many connections"}\r\n' });
    const client = await open(fake.port);
    const error = await rejection(client.send('t', 'm'));
    assert.ok(error instanceof ConnectionClosed);
    assert.equal(error.reason, 'Too many connections');
  });

  it('a refusal carries the reason exactly as the server wrote it', async () => {
    const reason = 'Out of memory: \u00e9 "quoted" \\ \u{1F600}';
    const fake = await fakeServer({ replies: [`${JSON.stringify({ success: false, reason })}\r\n`] });
    const client = await open(fake.port);
    const error = await rejection(client.send('t', 'm'));
    assert.ok(error instanceof CommandError);
    assert.equal(error.reason, reason);
    assert.deepEqual(error.command, { command: 'send', topic: 't', msg: 'm', delivery: 'all' });
    await within(client.close());
  });

  it('close() gives up waiting for the server after the timeout', async () => {
    const listener = net.createServer((socket) => socket.on('data', () => {})); // never closes
    await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const client = await connect({ port: listener.address().port, timeout: 100 });
      await within(client.close(), 'close', 5000);
      assert.equal(client.closed, true);
    } finally {
      listener.close();
    }
  });

  it('is a Client over any transport that carries lines', async () => {
    const sent = [];
    const transport = {
      send: (line) => {
        sent.push(line);
        if (line === 'quit') return;
        const command = JSON.parse(line);
        transport.onLine('{"success": true}');
        if (command.command === 'subscribe') {
          transport.onLine(JSON.stringify({ ...command, msg: 'replayed', index: 4, delivery: 'all' }));
        }
      },
      end: () => transport.onClose(null),
      destroy: () => transport.onClose(new Error('destroyed')),
    };
    const client = new Client(transport);
    const subscription = await client.subscribe('t', { lastSeen: 3 });
    assert.deepEqual((await subscription.next()).value, { topic: 't', msg: 'replayed', index: 4, delivery: 'all' });
    await client.close();
    assert.deepEqual(await subscription.next(), { value: undefined, done: true });
    assert.deepEqual(sent, ['{"command":"subscribe","topic":"t","last_seen":3}', 'quit']);
  });
});
