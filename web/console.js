// The web console: a page mqd serves on its WebSocket port, driving the
// JavaScript client (served beside it as /mqd/websocket.js) in the browser.
import { connect } from '/mqd/websocket.js';

const $ = (id) => document.getElementById(id);
let client = null;
const topics = new Map(); // topic -> its <ol> of messages

function log(text, kind) {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (kind) item.className = kind;
  $('log').prepend(item);
}

function setState(text, kind) {
  $('state').textContent = text;
  $('state').className = `state ${kind ?? ''}`;
  const on = kind === 'connected';
  for (const id of ['subscribe-button', 'send-button', 'disconnect-button']) $(id).disabled = !on;
  $('connect-button').disabled = on;
}

// name: a topic as the log shows it, cut when long
function name(topic) {
  const quoted = JSON.stringify(topic);
  return quoted.length > 60 ? `${quoted.slice(0, 57)}..."` : quoted;
}

function reason(error) {
  return error.reason ?? error.message ?? String(error);
}

function topicList(topic) {
  let list = topics.get(topic);
  if (list) return list;
  const box = document.createElement('div');
  box.className = 'topic';
  const title = document.createElement('h3');
  title.textContent = topic === '' ? '(empty topic)' : topic;
  const leave = document.createElement('button');
  leave.textContent = 'Unsubscribe';
  leave.addEventListener('click', async () => {
    try {
      await client.unsubscribe(topic);
      log(`unsubscribe ${name(topic)}: success`, 'ok');
    } catch (error) {
      log(`unsubscribe ${name(topic)}: ${reason(error)}`, 'error');
    }
  });
  title.append(leave);
  list = document.createElement('ol');
  list.className = 'messages';
  list.dataset.topic = topic;
  box.append(title, list);
  const empty = $('topics').querySelector('.empty');
  if (empty) empty.remove();
  $('topics').append(box);
  topics.set(topic, list);
  return list;
}

async function follow(subscription, list) {
  for await (const message of subscription) {
    const item = document.createElement('li');
    const index = document.createElement('span');
    index.className = 'index';
    index.textContent = `#${message.index}`;
    item.append(index, document.createTextNode(message.msg));
    list.prepend(item);
  }
}

$('url').value = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;

$('connect').addEventListener('submit', async (event) => {
  event.preventDefault();
  const user = $('user').value;
  const options = user ? { user, password: $('password').value } : {};
  setState('connecting');
  try {
    client = await connect($('url').value, options);
    setState('connected', 'connected');
    log(`connected to ${$('url').value}${user ? ` as ${user}` : ''}`, 'ok');
  } catch (error) {
    client = null;
    setState('not connected', 'failed');
    log(`connect: ${reason(error)}`, 'error');
  }
});

$('disconnect-button').addEventListener('click', async () => {
  const c = client;
  client = null;
  setState('not connected');
  if (c) await c.close().catch(() => {});
  log('disconnected');
});

$('subscribe').addEventListener('submit', async (event) => {
  event.preventDefault();
  const topic = $('sub-topic').value;
  const lastSeen = $('sub-last-seen').value;
  const options = { cache: $('sub-cache').checked };
  if (lastSeen !== '') options.lastSeen = BigInt(lastSeen);
  try {
    const subscription = await client.subscribe(topic, options);
    log(`subscribe ${name(topic)}: success`, 'ok');
    const list = topicList(topic);
    if (!list.dataset.following) {
      list.dataset.following = 'yes';
      follow(subscription, list).finally(() => { delete list.dataset.following; });
    }
  } catch (error) {
    log(`subscribe ${name(topic)}: ${reason(error)}`, 'error');
    if (client?.closed) setState('not connected', 'failed');
  }
});

$('send').addEventListener('submit', async (event) => {
  event.preventDefault();
  const topic = $('send-topic').value;
  try {
    await client.send(topic, $('send-msg').value, {
      delivery: $('send-delivery').value,
      cache: $('send-cache').checked,
    });
    log(`send ${name(topic)}: success`, 'ok');
  } catch (error) {
    log(`send ${name(topic)}: ${reason(error)}`, 'error');
    if (client?.closed) setState('not connected', 'failed');
  }
});

setState('not connected');
