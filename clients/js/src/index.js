// mqd-client: a client for mqd, the publish/subscribe server, for Node 18+.
//
//   import { connect } from 'mqd-client';
//   const client = await connect({ host: '127.0.0.1', port: 7000 });
//   const news = await client.subscribe('news');
//
// The protocol logic (client.js) is independent of the transport; this entry
// point connects over TCP (tcp.js).

export { Client, Subscription, DEFAULT_TIMEOUT, DELIVERIES } from './client.js';
export { MqdError, CommandError, ConnectionClosed, TimeoutError, ProtocolError } from './errors.js';
export { connect, TcpTransport, LineSplitter, DEFAULT_HOST, DEFAULT_PORT } from './tcp.js';
