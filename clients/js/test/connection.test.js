// Errors, closing and losing the connection, against a real mqd: each test
// starts its own server (some stop or kill it) and checks how it ended.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import {
  CommandError, ConnectionClosed, MqdError, TimeoutError, connect,
} from 'mqd-client';

import { Server, rejection, unusedPort, within } from '../test-helpers/server.js';

const CLEAN = { code: 0, signal: null };
let servers = [];
let clients = [];

afterEach(async () => {
  await Promise.all(clients.map((client) => within(client.close(), 'close')));
  clients = [];
  // a server a failed test left running
  await Promise.all(servers.map((server) => server.stop()));
  servers = [];
});

async function start(...args) {
  const server = await Server.start(...args);
  servers.push(server);
  return server;
}

async function open(server, options = {}) {
  const client = await within(connect({ port: server.port, ...options }), 'connect');
  clients.push(client);
  return client;
}

describe('refusals', () => {
  const cases = [
    [{ command: 'publish', topic: 't' }, 'Malformed json message'],
    [{ command: 'subscribe', topic: 't', last_seen: 1.5 }, 'Malformed json message'],
    [{ command: 'send', topic: 't', msg: 'm' }, 'Malformed json message'],
    [{ command: 'subscribe', topic: 't', extra: null }, 'Malformed json message'],
    [{ command: 'subscribe', topic: '\ud800' }, 'Could not parse json'],
  ];
  for (const [command, reason] of cases) {
    it(`${JSON.stringify(command)} rejects with CommandError "${reason}"`, async () => {
      const server = await start();
      const client = await open(server);
      const error = await rejection(client.request(command));
      assert.ok(error instanceof CommandError && error instanceof MqdError);
      assert.equal(error.reason, reason);
      assert.deepEqual(error.command, command);
      assert.match(error.message, new RegExp(reason));
      // the connection goes on
      const subscription = await client.subscribe('t', { cache: false });
      await client.send('t', 'still here');
      assert.equal((await within(subscription.next())).value.msg, 'still here');
      assert.deepEqual(await server.stop(), CLEAN);
    });
  }

  it('a line too long rejects with "Line too long" and the next command works', async () => {
    const server = await start('--max-line', '1k');
    const client = await open(server);
    const subscription = await client.subscribe('t');
    const error = await rejection(client.send('t', 'x'.repeat(2000)));
    assert.ok(error instanceof CommandError);
    assert.equal(error.reason, 'Line too long');
    assert.equal(error.command.command, 'send');
    await client.send('t', 'short');
    assert.deepEqual((await within(subscription.next())).value,
      { topic: 't', msg: 'short', index: 0, delivery: 'all' });
    assert.equal(subscription.queued, 0);
    assert.deepEqual(await server.stop(), CLEAN);
  });

  it('a refused connection closes the client with the reason', async () => {
    const server = await start('--max-clients', '1');
    const kept = await open(server);
    await kept.subscribe('t');
    const extra = await open(server);
    const error = await rejection(extra.subscribe('t'));
    assert.ok(error instanceof ConnectionClosed);
    assert.equal(error.reason, 'Too many connections');
    assert.equal(extra.closed, true);
    await kept.send('t', 'kept works');
    assert.deepEqual(await server.stop(), CLEAN);
  });
});

describe('bad arguments', () => {
  const cases = [
    ['subscribe(5)', (c) => c.subscribe(5), TypeError],
    ['subscribe(null)', (c) => c.subscribe(null), TypeError],
    ['subscribe("t\\0")', (c) => c.subscribe('t\0'), RangeError],
    ['subscribe("\\ud800")', (c) => c.subscribe('\ud800'), RangeError],
    ['subscribe("a\\udc00")', (c) => c.subscribe('a\udc00'), RangeError],
    ['subscribe lastSeen 1.5', (c) => c.subscribe('t', { lastSeen: 1.5 }), TypeError],
    ['subscribe lastSeen "1"', (c) => c.subscribe('t', { lastSeen: '1' }), TypeError],
    ['subscribe lastSeen true', (c) => c.subscribe('t', { lastSeen: true }), TypeError],
    ['subscribe lastSeen NaN', (c) => c.subscribe('t', { lastSeen: NaN }), TypeError],
    ['subscribe cache 1', (c) => c.subscribe('t', { cache: 1 }), TypeError],
    ['unsubscribe(["t"])', (c) => c.unsubscribe(['t']), TypeError],
    ['send msg 5', (c) => c.send('t', 5), TypeError],
    ['send msg Buffer', (c) => c.send('t', Buffer.from('m')), TypeError],
    ['send msg unpaired', (c) => c.send('t', 'x\ude00\ud83dy'), RangeError],
    ['send delivery "some"', (c) => c.send('t', 'm', { delivery: 'some' }), RangeError],
    ['send delivery "ALL"', (c) => c.send('t', 'm', { delivery: 'ALL' }), RangeError],
    ['send delivery null', (c) => c.send('t', 'm', { delivery: null }), TypeError],
    ['send cache "false"', (c) => c.send('t', 'm', { cache: 'false' }), TypeError],
    ['request([])', (c) => c.request([]), TypeError],
    ['request(null)', (c) => c.request(null), TypeError],
    ['request NaN', (c) => c.request({ command: 'send', x: NaN }), RangeError],
    ['request nested BigInt', (c) => c.request({ command: 'send', x: [1n] }), TypeError],
    ['request function', (c) => c.request({ command: () => 1 }), TypeError],
  ];
  it('reject before anything is sent', async () => {
    const server = await start();
    const client = await open(server);
    const subscription = await client.subscribe('probe');
    for (const [name, call, type] of cases) {
      const error = await rejection(call(client), name);
      assert.ok(error instanceof type, `${name}: ${error}`);
    }
    // had any of them reached the server, its reply would be taken for this one
    assert.deepEqual(await client.request({ command: 'send', topic: 'probe', msg: 'm', delivery: 'all' }),
      { success: true });
    assert.equal((await within(subscription.next())).value.msg, 'm');
    assert.equal(client.closed, false);
    assert.deepEqual(await server.stop(), CLEAN);
  });

  it('what the server accepts is not refused', async () => {
    const server = await start();
    const client = await open(server);
    const subscription = await client.subscribe('', { lastSeen: 7n, cache: true });
    await client.send('', '', { delivery: 'one', cache: false });
    await client.subscribe('t', { lastSeen: -(2n ** 100n) });
    await client.subscribe('t', { lastSeen: Number.MAX_VALUE });
    assert.deepEqual((await within(subscription.next())).value, { topic: '', msg: '', index: 0, delivery: 'one' });
    assert.deepEqual(await server.stop(), CLEAN);
  });

  it('connect refuses a bad timeout', async () => {
    for (const timeout of [0, -1, NaN]) await assert.rejects(connect({ timeout }), RangeError);
    await assert.rejects(connect({ timeout: '5' }), TypeError);
  });
});

describe('the connection', () => {
  it('close() says quit, lets earlier commands finish and ends subscriptions', async () => {
    const server = await start();
    const [client, writer] = [await open(server), await open(server)];
    const subscription = await client.subscribe('t');
    await writer.send('t', 'm');
    const sent = client.send('t', 'last before quit');
    const waiting = (async () => {
      const got = [];
      for await (const message of subscription) got.push(message.msg);
      return got;
    })();
    await within(client.close(), 'close');
    assert.equal(await sent, undefined);
    assert.deepEqual(await within(waiting), ['m', 'last before quit']);
    assert.equal(client.closed, true);
    assert.equal(subscription.active, false);
    const error = await rejection(client.send('t', 'too late'));
    assert.ok(error instanceof ConnectionClosed);
    await within(client.close(), 'closing twice'); // harmless
    assert.deepEqual(await server.stop(), CLEAN);
  });

  it('the server stopping ends subscriptions with ConnectionClosed after what arrived', async () => {
    const server = await start();
    const [client, writer] = [await open(server), await open(server)];
    const subscription = await client.subscribe('t');
    for (let i = 0; i < 3; i++) await writer.send('t', String(i));
    assert.deepEqual(await server.stop(), CLEAN);
    for (let i = 0; i < 3; i++) assert.equal((await within(subscription.next())).value.index, i);
    assert.ok(await rejection(subscription.next()) instanceof ConnectionClosed);
    assert.ok(await rejection(subscription.next()) instanceof ConnectionClosed);
    assert.equal(client.closed, true);
    assert.ok(await rejection(writer.send('t', 'late')) instanceof ConnectionClosed);
    assert.equal(writer.closed, true);
  });

  it('the server killed rejects pending commands and ends iterators with ConnectionClosed', async () => {
    const server = await start();
    const [client, writer] = [await open(server), await open(server)];
    const subscription = await client.subscribe('t');
    const other = await client.subscribe('u');
    await writer.send('t', 'before');
    await client.unsubscribe('\u0001sync'); // "before" is here, not in the server's queue
    assert.equal(subscription.queued, 1);
    const loop = rejection((async () => {
      for await (const message of other) assert.fail(`a message: ${message.msg}`);
    })(), 'the for await loop');
    process.kill(server.pid, 'SIGSTOP');
    const pending = [client.send('t', 'pending'), client.unsubscribe('u')]
      .map((command) => rejection(command, 'a pending command'));
    assert.deepEqual(await server.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
    for (const error of await Promise.all(pending)) {
      assert.ok(error instanceof ConnectionClosed, String(error));
      assert.equal(error.reason, null);
    }
    assert.ok(await loop instanceof ConnectionClosed);
    assert.equal((await within(subscription.next())).value.msg, 'before');
    assert.ok(await rejection(subscription.next()) instanceof ConnectionClosed);
    assert.ok(await rejection(client.subscribe('v')) instanceof ConnectionClosed);
    assert.equal(client.closed, true);
    await within(client.close(), 'close after the loss'); // resolves at once
  });

  it('connect rejects where nobody listens', async () => {
    const port = await unusedPort();
    const error = await rejection(connect({ port }), 'connect');
    assert.equal(error.code, 'ECONNREFUSED');
  });
});

describe('timeouts', () => {
  it('a reply late for its command is dropped, not taken for the next', async () => {
    const server = await start();
    const [client, writer] = [await open(server, { timeout: 200 }), await open(server)];
    process.kill(server.pid, 'SIGSTOP');
    let error;
    try {
      error = await rejection(client.request({ command: 'bogus' }));
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }
    assert.ok(error instanceof TimeoutError && error instanceof MqdError);
    client.timeout = 10_000;
    // the late "Malformed json message" must not be read as this reply
    const subscription = await client.subscribe('t');
    await writer.send('t', 'm');
    assert.equal((await within(subscription.next())).value.msg, 'm');
    assert.equal(client.closed, false);
    assert.deepEqual(await server.stop(), CLEAN);
  });

  it('a subscribe that timed out still routes its messages once the server replies', async () => {
    const server = await start();
    const [client, writer] = [await open(server, { timeout: 200 }), await open(server)];
    await writer.send('t', 'cached');
    process.kill(server.pid, 'SIGSTOP');
    let error;
    try {
      error = await rejection(client.subscribe('t'));
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }
    assert.ok(error instanceof TimeoutError);
    client.timeout = null;
    await client.unsubscribe('\u0001sync'); // the late reply and the replay are in
    const subscription = await client.subscribe('t', { cache: false });
    assert.equal(subscription.queued, 1);
    assert.equal((await within(subscription.next())).value.msg, 'cached');
    assert.deepEqual(await server.stop(), CLEAN);
  });
});
