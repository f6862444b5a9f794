// The TCP transport, for Node (node:net): the byte stream cut into lines.

import net from 'node:net';

import { Client, DEFAULT_TIMEOUT, checkTimeout, timeoutMs } from './client.js';
import { ProtocolError, TimeoutError } from './errors.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7000;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Cuts a byte stream into lines, however it was chunked: mqd ends each line
 * with "\r\n" (a bare "\n" is taken as an end too). The bytes of a line are
 * decoded as UTF-8 only once the line is whole, so a character split across
 * chunks arrives intact; bytes that are not UTF-8 throw a ProtocolError.
 */
export class LineSplitter {
  #onLine;
  #parts = [];   // the start of an unfinished line, chunk by chunk
  #partial = 0;  // its length in bytes
  #stopped = false;
  #decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(onLine) {
    this.#onLine = onLine;
  }

  /** Bytes of an unfinished line held. */
  get partial() {
    return this.#partial;
  }

  /** Takes one chunk (a Uint8Array); calls onLine for every line it ends. */
  push(chunk) {
    let start = 0;
    for (let end = chunk.indexOf(LF); end !== -1 && !this.#stopped; end = chunk.indexOf(LF, start)) {
      let line = chunk.subarray(start, end);
      if (this.#parts.length > 0) {
        this.#parts.push(line);
        line = Buffer.concat(this.#parts, this.#partial + line.length);
        this.#parts = [];
        this.#partial = 0;
      }
      start = end + 1;
      const length = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
      let text;
      try {
        text = this.#decoder.decode(line.subarray(0, length));
      } catch {
        throw new ProtocolError('the server sent a line that is not UTF-8');
      }
      this.#onLine(text);
    }
    if (start < chunk.length && !this.#stopped) {
      this.#parts.push(chunk.subarray(start));
      this.#partial += chunk.length - start;
    }
  }

  /** Ignores every byte from now on. */
  stop() {
    this.#stopped = true;
    this.#parts = [];
    this.#partial = 0;
  }
}

/** A transport (see client.js) over a connected net.Socket. */
export class TcpTransport {
  onLine = () => {};
  onClose = () => {};
  #socket;
  #lines;

  constructor(socket) {
    this.#socket = socket;
    // commands are short lines that wait for a reply: do not hold them back
    socket.setNoDelay(true);
    this.#lines = new LineSplitter((text) => this.onLine(text));
    let failure = null;
    socket.on('data', (chunk) => {
      try {
        this.#lines.push(chunk);
      } catch (error) {
        this.#lines.stop();
        socket.destroy(error);
      }
    });
    socket.on('error', (error) => {
      failure ??= error;
    });
    socket.on('close', () => {
      // mqd cuts a slow consumer wherever its queue stands: a line cut short
      // is part of a close, dropped
      const cut = this.#lines.partial;
      this.#lines.stop();
      if (failure === null && cut > 0) {
        failure = new Error(`closed by the server (${cut} bytes of a cut line dropped)`);
      }
      this.onClose(failure);
    });
  }

  send(line) {
    if (!this.#socket.destroyed) this.#socket.write(`${line}\n`, 'utf8');
  }

  end() {
    this.#socket.end();
  }

  destroy() {
    this.#lines.stop();
    this.#socket.destroy();
  }
}

/**
 * Connects to mqd over TCP. Resolves to a Client; rejects with the system's
 * error when nobody listens (code 'ECONNREFUSED', ...), or a TimeoutError
 * when the connection is not made within `timeout` milliseconds (also the
 * client's timeout for replies; null for no limit). With `user` and
 * `password` it logs in first (server run with --users), and rejects with
 * the server's CommandError when the login is refused.
 */
export async function connect({ host = DEFAULT_HOST, port = DEFAULT_PORT, timeout = DEFAULT_TIMEOUT, user, password } = {}) {
  checkTimeout(timeout);
  const client = await new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const limit = timeoutMs(timeout);
    const timer = limit === null ? null : setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`could not connect to ${host}:${port} within ${limit} ms`));
    }, limit);
    const refused = (error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', refused);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', refused);
      resolve(new Client(new TcpTransport(socket), { timeout }));
    });
  });
  if (user !== undefined || password !== undefined) {
    try {
      await client.auth(user, password);
    } catch (error) {
      await client.close().catch(() => {});
      throw error;
    }
  }
  return client;
}
