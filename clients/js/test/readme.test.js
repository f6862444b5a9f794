// The README's example, run against a real mqd: it must print what the README shows.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Server, TIMEOUT } from '../test-helpers/server.js';

const CLIENT_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const README = readFileSync(path.join(CLIENT_DIR, 'README.md'), 'utf8');
const blocks = (language) => [...README.matchAll(new RegExp(`\`\`\`${language}\\n(.*?)\`\`\``, 'gs'))]
  .map((match) => match[1]);

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  assert.deepEqual(await server.stop(), { code: 0, signal: null });
});

it('runs the README example and prints what the README shows', async () => {
  const example = blocks('js').find((block) => block.startsWith('import '));
  const [shown] = blocks('text');
  // run from the client's folder, so that 'mqd-client' is this package
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', example], {
    cwd: CLIENT_DIR,
    env: { ...process.env, MQD_PORT: String(server.port) },
    timeout: TIMEOUT,
  });
  assert.equal(stdout, shown);
});

it('shows the three-line example in the repository README too', () => {
  const top = readFileSync(path.join(CLIENT_DIR, '..', '..', 'README.md'), 'utf8');
  const [short] = blocks('js');
  assert.equal(short.trim().split('\n').length, 3);
  assert.ok(top.includes(short), 'the repository README lost the example');
});
