// The client over WebSocket, for browsers: mqd --websocket ADDR:PORT serves
// the same protocol there, one command per text message and one reply or
// delivery per message back (docs/PROTOCOL.md, "WebSocket").
//
//   import { connect } from './websocket.js';
//   const client = await connect('ws://127.0.0.1:7001/', { user, password });

import { Client, DEFAULT_TIMEOUT, checkTimeout, timeoutMs } from './client.js';
import { TimeoutError } from './errors.js';

/** A transport (see client.js) over an open WebSocket. */
export class WebSocketTransport {
  onLine = () => {};
  onClose = () => {};
  #socket;
  #closed = false;

  constructor(socket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') this.onLine(event.data);
    };
    socket.onclose = (event) => {
      if (this.#closed) return;
      this.#closed = true;
      // 1000: mqd closed after quit; 1005/1006: the connection went away
      const orderly = event.code === 1000 || (event.code === 1005 && event.wasClean);
      this.onClose(orderly ? null : new Error(`closed: ${event.code}${event.reason ? ` ${event.reason}` : ''}`));
    };
  }

  send(line) {
    if (this.#socket.readyState === 1) this.#socket.send(line);
  }

  end() {
    // mqd closes once it has answered `quit`
  }

  destroy() {
    this.#socket.close();
  }
}

/**
 * Connects to mqd's WebSocket port at `url` (ws:// or wss://). Resolves to a
 * Client, logged in when `user` and `password` are given; rejects when the
 * connection cannot be made, with a TimeoutError past `timeout` ms, or with
 * the server's CommandError when the login is refused.
 */
export async function connect(url, { timeout = DEFAULT_TIMEOUT, user, password } = {}) {
  checkTimeout(timeout);
  const socket = await new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const limit = timeoutMs(timeout);
    const timer = limit === null ? null : setTimeout(() => {
      ws.close();
      reject(new TimeoutError(`could not connect to ${url} within ${limit} ms`));
    }, limit);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onclose = (event) => {
      clearTimeout(timer);
      reject(new Error(`could not connect to ${url} (${event.code})`));
    };
  });
  const client = new Client(new WebSocketTransport(socket), { timeout });
  if (user !== undefined || password !== undefined) {
    try {
      await client.auth(user, password);
    } catch (error) {
      socket.close();
      throw error;
    }
  }
  return client;
}
