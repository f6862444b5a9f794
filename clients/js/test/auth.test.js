// Logging in (mqd --users): connect({user, password}) and client.auth(),
// against a real mqd with a users file made here.

import assert from 'node:assert/strict';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CommandError, connect } from 'mqd-client';

import { Server, rejection, within } from '../test-helpers/server.js';

const b64 = (bytes) => bytes.toString('base64').replace(/=+$/, '');

function userLine(name, password, rights) {
  const salt = randomBytes(16);
  const hash = pbkdf2Sync(password, salt, 1000, 32, 'sha256');
  return `${name} $pbkdf2-sha256$i=1000$${b64(salt)}$${b64(hash)} ${rights}\n`;
}

describe('logging in', () => {
  let dir;
  let server;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mqd-js-users-'));
    writeFileSync(path.join(dir, 'users'), userLine('ann', 'pw', 'publish=t subscribe=t'));
    server = await Server.start('--users', path.join(dir, 'users'));
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true });
  });

  it('logs in with connect and may then do what its line allows', async () => {
    const client = await connect({ port: server.port, user: 'ann', password: 'pw' });
    const t = await client.subscribe('t');
    await client.send('t', 'hello');
    const { value } = await within(t[Symbol.asyncIterator]().next(), 'the message');
    assert.equal(value.msg, 'hello');
    const denied = await rejection(client.send('other', 'x'));
    assert.ok(denied instanceof CommandError);
    assert.equal(denied.reason, 'Permission denied');
    await client.close();
  });

  it('rejects a wrong password with the server\'s reason', async () => {
    const error = await rejection(connect({ port: server.port, user: 'ann', password: 'nope' }));
    assert.ok(error instanceof CommandError);
    assert.equal(error.reason, 'Authentication failed');
  });

  it('refuses commands before auth, then takes auth()', async () => {
    const client = await connect({ port: server.port });
    const error = await rejection(client.subscribe('t'));
    assert.equal(error.reason, 'Authentication required');
    await client.auth('ann', 'pw');
    await client.subscribe('t');
    await client.close();
  });
});
