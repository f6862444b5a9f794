// The protocol side of the client: commands, reply matching, delivery routing
// and errors. It knows nothing of sockets: it talks to a transport, so the same
// Client serves over TCP (tcp.js, Node) and WebSocket (websocket.js, browsers).
//
// A transport carries whole lines, one protocol line each way, without their
// terminators:
//   transport.send(line)     queue one command line (a string) to the server
//   transport.end()          no more lines: let the server finish and close
//   transport.destroy()      close now
// and calls, once the client has set them (synchronously, when it is made):
//   transport.onLine(text)   for each line from the server, in order
//   transport.onClose(error) once, when the connection is gone; `error` is
//                            null for an orderly close, else what broke it
//                            (an MqdError is passed on as it is)

import { CommandError, ConnectionClosed, MqdError, ProtocolError, TimeoutError } from './errors.js';

/** Milliseconds to wait for a connection, for a reply, and for close(). */
export const DEFAULT_TIMEOUT = 10_000;

/** The values of send's `delivery`: every subscriber, or one chosen at random. */
export const DELIVERIES = Object.freeze(['all', 'one']);

// The one reply mqd sends before any command; it closes the connection after it.
const TOO_MANY_CONNECTIONS = 'Too many connections';

// Internal entry points of Subscription, kept off its public surface.
const PUSH = Symbol('push');
const END = Symbol('end');

/**
 * One connection to mqd. Made by connect(); every command returns a Promise
 * that settles with the server's reply to it. Commands may be issued without
 * waiting for earlier ones: replies come, and are matched, in order.
 */
export class Client {
  /** Milliseconds a command waits for its reply (null or Infinity: no limit). */
  timeout;

  #transport;
  #pending = [];               // commands sent, in order, waiting for a reply
  #subscriptions = new Map();  // topic -> the active Subscription
  #ending = false;             // close() has said quit
  #closedBy = null;            // once gone: the error later commands reject with
  #whenClosed;
  #markClosed;

  /**
   * @param transport a connected transport (see the top of this file)
   * @param options.timeout as the `timeout` property
   */
  constructor(transport, { timeout = DEFAULT_TIMEOUT } = {}) {
    this.timeout = checkTimeout(timeout);
    this.#transport = transport;
    this.#whenClosed = new Promise((resolve) => { this.#markClosed = resolve; });
    transport.onLine = (text) => this.#receive(text);
    transport.onClose = (error) => this.#transportClosed(error);
  }

  /** True once no command can be sent any more: after close(), or the connection is gone. */
  get closed() {
    return this.#ending || this.#closedBy !== null;
  }

  /**
   * Joins `topic`. Resolves, once the server said success, to the topic's
   * Subscription, which receives the topic's messages from then on: first
   * the cached ones the server replays (those with an index above `lastSeen`,
   * all when it is not given; none with `cache: false`), in index order.
   * Subscribing again to a topic resolves to the same Subscription, into
   * which the server replays the cache again.
   *
   * @param topic a string (without U+0000 and unpaired surrogates)
   * @param options.lastSeen an integer (a Number or a BigInt)
   * @param options.cache a boolean
   */
  async subscribe(topic, { lastSeen, cache } = {}) {
    const command = { command: 'subscribe', topic: checkTopic(topic) };
    if (lastSeen !== undefined && lastSeen !== null) command.last_seen = checkInteger('lastSeen', lastSeen);
    if (cache !== undefined && cache !== null) command.cache = checkBoolean('cache', cache);
    return this.#call(command);
  }

  /**
   * Leaves `topic` (leaving a topic never joined is fine too). Its
   * Subscription still hands out the messages that arrived before the
   * server's reply, then ends.
   */
  async unsubscribe(topic) {
    await this.#call({ command: 'unsubscribe', topic: checkTopic(topic) });
  }

  /**
   * Sends `msg` to `topic`; resolves once the server has queued it.
   * `delivery: 'all'` (the default) delivers it to every subscriber, this
   * client too if subscribed, and caches it; `'one'` to one subscriber chosen
   * at random, or caches it for the next subscriber when there is none.
   * `cache: false` keeps it out of the cache.
   */
  async send(topic, msg, { delivery = 'all', cache } = {}) {
    const command = {
      command: 'send',
      topic: checkTopic(topic),
      msg: checkText('msg', msg),
      delivery: checkDelivery(delivery),
    };
    if (cache !== undefined && cache !== null) command.cache = checkBoolean('cache', cache);
    await this.#call(command);
  }

  /**
   * Logs in as `user` on a server run with --users. Rejects with a
   * CommandError whose reason is "Authentication failed" (the same for an
   * unknown user and a wrong password; the server closes the connection
   * after the third) or "Authentication not enabled".
   */
  async auth(user, password) {
    await this.#call({ command: 'auth', user: checkText('user', user), password: checkText('password', password) });
  }

  /**
   * Sends any command object as it is (nothing is checked beyond what JSON
   * can encode) and resolves to the server's reply, e.g. {success: true}. A
   * `subscribe` or `unsubscribe` sent this way updates the client's
   * subscriptions as the methods do.
   */
  async request(command) {
    if (command === null || typeof command !== 'object' || Array.isArray(command)) {
      throw new TypeError('command must be an object');
    }
    return this.#call({ ...command }, { raw: true });
  }

  /**
   * Says `quit` and resolves once the connection is closed. Commands sent
   * before still get their replies; those issued after reject with
   * ConnectionClosed. Subscriptions hand out what they hold, then end.
   * Closing twice is harmless.
   */
  close() {
    if (!this.closed) {
      this.#ending = true;
      this.#transport.send('quit');
      this.#transport.end();
      const limit = timeoutMs(this.timeout);
      if (limit !== null) {
        const timer = setTimeout(() => this.#transport.destroy(), limit);
        this.#whenClosed.then(() => clearTimeout(timer));
      }
    }
    return this.#whenClosed;
  }

  // -- internals --------------------------------------------------------

  #call(command, { raw = false } = {}) {
    const line = encode(command);
    if (this.closed) return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => {
      const entry = { command, raw, resolve, reject, timer: null };
      const limit = timeoutMs(this.timeout);
      if (limit !== null) {
        entry.timer = setTimeout(() => {
          // The reply will still come, in its place, and is matched to this
          // entry: settling the promise again then changes nothing.
          reject(new TimeoutError(`no reply to '${command.command}' within ${limit} ms`));
        }, limit);
      }
      this.#pending.push(entry);
      this.#transport.send(line);
    });
  }

  #receive(text) {
    if (this.#closedBy !== null) return;
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      return this.#fail(`a line that is not JSON: ${preview(text)}`);
    }
    if (line === null || typeof line !== 'object' || Array.isArray(line)) {
      return this.#fail(`a line that is not a JSON object: ${preview(text)}`);
    }
    if ('index' in line) return this.#deliver(line, text);
    if ('success' in line) return this.#reply(line, text);
    return this.#fail(`a line that is neither a reply nor a message: ${preview(text)}`);
  }

  #deliver(line, text) {
    const { topic, msg, index, delivery } = line;
    if (typeof topic !== 'string' || typeof msg !== 'string' || !Number.isInteger(index)) {
      return this.#fail(`a message with mistyped fields: ${preview(text)}`);
    }
    // A topic with no Subscription: subscribed to by a command that timed
    // out gets one too (see #settle), so only a server at fault lands here.
    const subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) {
      return this.#fail(`a message for a topic not subscribed to: ${preview(text)}`);
    }
    subscription[PUSH](Object.freeze({ topic, msg, index, delivery }));
  }

  #reply(line, text) {
    const { success, reason } = line;
    if (success === false && reason === TOO_MANY_CONNECTIONS) {
      const error = new ConnectionClosed(`connection closed by the server: ${reason}`, { reason });
      this.#shutDown(error);
      this.#transport.destroy();
      return;
    }
    if (success !== true && !(success === false && typeof reason === 'string')) {
      return this.#fail(`a reply that is neither success nor failure: ${preview(text)}`);
    }
    const entry = this.#pending.shift();
    if (entry === undefined) return this.#fail(`a reply no command waits for: ${preview(text)}`);
    clearTimeout(entry.timer);
    if (success === true) this.#settle(entry, line);
    else entry.reject(new CommandError(reason, entry.command));
  }

  // Success: the server's state changed whether or not the caller still
  // waits (it may have timed out), so the subscriptions follow it at once,
  // before the next line (the replay after a subscribe's reply) is read.
  #settle(entry, reply) {
    const { command } = entry;
    let result = entry.raw ? reply : undefined;
    if (command.command === 'subscribe' && typeof command.topic === 'string') {
      let subscription = this.#subscriptions.get(command.topic);
      if (subscription === undefined) {
        subscription = new Subscription(this, command.topic);
        this.#subscriptions.set(command.topic, subscription);
      }
      if (!entry.raw) result = subscription;
    } else if (command.command === 'unsubscribe' && typeof command.topic === 'string') {
      const subscription = this.#subscriptions.get(command.topic);
      if (subscription !== undefined) {
        this.#subscriptions.delete(command.topic);
        subscription[END](null);
      }
    }
    entry.resolve(result);
  }

  #fail(what) {
    this.#shutDown(new ProtocolError(`the server sent ${what}`));
    this.#transport.destroy();
  }

  #transportClosed(error) {
    if (error instanceof MqdError) {
      this.#shutDown(error);
    } else if (this.#ending && error === null) {
      this.#shutDown(null);
    } else if (error) {
      this.#shutDown(new ConnectionClosed(`connection lost: ${error.message}`, { cause: error }));
    } else {
      this.#shutDown(new ConnectionClosed('connection closed by the server'));
    }
    this.#markClosed();
  }

  // The connection is gone (error null: closed by close(), in order).
  #shutDown(error) {
    if (this.#closedBy !== null) return;
    this.#closedBy = error ?? new ConnectionClosed('connection closed by the client');
    const pending = this.#pending;
    this.#pending = [];
    for (const entry of pending) {
      clearTimeout(entry.timer);
      entry.reject(error ?? this.#closedError());
    }
    const subscriptions = [...this.#subscriptions.values()];
    this.#subscriptions.clear();
    for (const subscription of subscriptions) subscription[END](error);
  }

  #closedError() {
    const by = this.#closedBy ?? new ConnectionClosed('connection closed by the client');
    if (by instanceof ConnectionClosed) {
      return new ConnectionClosed(by.message, { reason: by.reason, cause: by.cause });
    }
    return new ConnectionClosed(`connection closed: ${by.message}`, { cause: by });
  }
}

/**
 * The messages of one topic on one client, as they arrive, from the
 * subscribe's reply on: an async iterator of {topic, msg, index, delivery}.
 * Messages that arrive before anyone asks are kept, in order, never dropped.
 * After unsubscribe() (or close()) it hands out what it holds and ends; when
 * the connection is lost it hands out what it holds, then rejects with the
 * error (a ConnectionClosed).
 */
export class Subscription {
  #client;
  #topic;
  #messages = [];
  #head = 0;
  #waiters = [];
  #ended = false;
  #error = null;

  constructor(client, topic) {
    this.#client = client;
    this.#topic = topic;
  }

  get topic() {
    return this.#topic;
  }

  /** How many messages have arrived and wait to be taken. */
  get queued() {
    return this.#messages.length - this.#head;
  }

  /** True until unsubscribed, or the connection is closed. */
  get active() {
    return !this.#ended;
  }

  /** The next message: {value, done: false}, or {done: true} once ended. */
  next() {
    if (this.queued > 0) return Promise.resolve({ value: this.#take(), done: false });
    if (this.#ended) return this.#error ? Promise.reject(this.#error) : Promise.resolve(DONE);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Leaves the topic (what arrived before the server's reply can still be taken). */
  async unsubscribe() {
    if (!this.#ended) await this.#client.unsubscribe(this.#topic);
  }

  /** Called when a `for await` loop is left: unsubscribes. */
  async return() {
    try {
      await this.unsubscribe();
    } catch (error) {
      if (!(error instanceof ConnectionClosed)) throw error;
    }
    return DONE;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  [PUSH](message) {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve({ value: message, done: false });
    else this.#messages.push(message);
  }

  [END](error) {
    this.#ended = true;
    this.#error = error;
    // waiters exist only while nothing is queued
    for (const waiter of this.#waiters.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve(DONE);
    }
  }

  #take() {
    const message = this.#messages[this.#head];
    this.#messages[this.#head++] = undefined;
    if (this.#head === this.#messages.length) {
      this.#messages = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#messages.length) {
      this.#messages = this.#messages.slice(this.#head);
      this.#head = 0;
    }
    return message;
  }
}

const DONE = Object.freeze({ value: undefined, done: true });

/**
 * A command object as one JSON line. JSON.stringify escapes every control
 * character (so no line break gets into the line) and unpaired surrogates;
 * other characters go out as they are, as UTF-8. A BigInt at the top level
 * (last_seen) is written as its digits.
 */
export function encode(command) {
  const fields = [];
  for (const [key, value] of Object.entries(command)) {
    if (value === undefined) continue;
    const json = typeof value === 'bigint' ? value.toString() : JSON.stringify(value, finiteOnly);
    if (json === undefined) throw new TypeError(`${key} cannot be sent as JSON`);
    fields.push(`${JSON.stringify(key)}:${json}`);
  }
  return `{${fields.join(',')}}`;
}

function finiteOnly(key, value) {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new RangeError(`${key || 'a value'} is ${value}, which JSON cannot hold`);
  }
  return value;
}

// A string has a UTF-8 form unless it holds an unpaired surrogate.
const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkText(name, value) {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, not ${typeof value}`);
  if (UNPAIRED_SURROGATE.test(value)) {
    throw new RangeError(`${name} holds an unpaired surrogate, which mqd refuses`);
  }
  return value;
}

function checkTopic(topic) {
  checkText('topic', topic);
  if (topic.includes('\0')) throw new RangeError('topic holds U+0000, which mqd refuses in a topic');
  return topic;
}

function checkInteger(name, value) {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  throw new TypeError(`${name} must be an integer (a Number or a BigInt)`);
}

function checkBoolean(name, value) {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, not ${typeof value}`);
  return value;
}

function checkDelivery(delivery) {
  if (typeof delivery !== 'string') throw new TypeError(`delivery must be a string, not ${typeof delivery}`);
  if (!DELIVERIES.includes(delivery)) throw new RangeError(`delivery must be 'all' or 'one', not '${delivery}'`);
  return delivery;
}

/** Checks a timeout in milliseconds: a positive number, or null/Infinity for none. */
export function checkTimeout(timeout) {
  if (timeout === null || timeout === Infinity) return timeout;
  if (typeof timeout !== 'number') throw new TypeError('timeout must be milliseconds, or null for no limit');
  if (!(timeout > 0)) throw new RangeError(`timeout must be positive: ${timeout}`);
  return timeout;
}

/** A timeout as a delay for setTimeout, or null for no limit. */
export function timeoutMs(timeout) {
  if (timeout === null || timeout === Infinity) return null;
  return Math.min(checkTimeout(timeout), MAX_DELAY);
}

// setTimeout's longest delay (about 24.8 days); it fires at once beyond it
const MAX_DELAY = 2 ** 31 - 1;

function preview(text) {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}...` : text);
}
