// Starting a real mqd for the tests, and waiting with deadlines.
//
// The binary is MQD_BINARY, or ../../build/mqd from the client's folder. Each
// server listens on 127.0.0.1 with --port 0 (the kernel picks a free port) and
// the port is read from its log line "listening on 127.0.0.1:PORT".
// (Not under test/: node --test would run this file as a test of its own.)

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLIENT_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const BINARY = process.env.MQD_BINARY || path.join(CLIENT_DIR, '..', '..', 'build', 'mqd');

/** Milliseconds any one wait in the tests may take before it fails. */
export const TIMEOUT = 10_000;

/** `promise`, or a rejection naming `what` once `ms` have passed. */
export function within(promise, what = 'the operation', ms = TIMEOUT) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves to what `promise` rejects with; fails if it resolves. */
export async function rejection(promise, what = 'the rejection') {
  promise.catch(() => {}); // handled now, though looked at later
  try {
    const value = await within(promise, what);
    assert.fail(`${what}: resolved to ${JSON.stringify(value)} instead of rejecting`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return error;
  }
}

/** One mqd process on a free loopback port. */
export class Server {
  port = null;
  #child;
  #log = '';
  #exit;

  /** Starts mqd with these extra arguments; resolves once it listens. */
  static async start(...args) {
    const server = new Server();
    await server.#start(args);
    return server;
  }

  async #start(args) {
    if (!existsSync(BINARY)) throw new Error(`mqd binary not found at ${BINARY}: build it first`);
    this.#child = spawn(BINARY, ['--bind', '127.0.0.1', '--port', '0', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#exit = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const listening = new Promise((resolve, reject) => {
      this.#child.on('error', reject);
      this.#child.stderr.setEncoding('utf8');
      this.#child.stderr.on('data', (text) => {
        this.#log += text;
        const found = /listening on 127\.0\.0\.1:(\d+)/.exec(this.#log);
        if (found) resolve(Number(found[1]));
      });
      this.#exit.then(({ code, signal }) =>
        reject(new Error(`mqd exited (${code ?? signal}) before listening:\n${this.#log}`)));
    });
    this.port = await within(listening, 'mqd to start');
  }

  get pid() {
    return this.#child.pid;
  }

  /** What the server logged so far. */
  get log() {
    return this.#log;
  }

  /** Sends `signal` (SIGTERM by default); resolves to {code, signal} once it has exited. */
  async stop(signal = 'SIGTERM') {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
    return within(this.#exit, 'mqd to exit');
  }
}

/** A port nobody listens on (bound, read and released). */
export async function unusedPort() {
  const listener = net.createServer();
  await new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', resolve);
  });
  const { port } = listener.address();
  await new Promise((resolve) => listener.close(resolve));
  return port;
}
