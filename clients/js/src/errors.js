// The errors the client raises. All of them are MqdError, so one
// `catch (e) { if (e instanceof MqdError) ... }` covers the client.

/** Base class of every error this library raises. */
export class MqdError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The server refused a command: its reply was {"success": false, "reason": ...}.
 * `reason` is the server's text, exactly ("Malformed json message", "Line too
 * long", ...); `command` is the command object that was sent. The connection
 * stays open and usable.
 */
export class CommandError extends MqdError {
  constructor(reason, command) {
    const name = command && typeof command.command === 'string' ? `'${command.command}'` : 'command';
    super(`${name} refused: ${reason}`);
    this.reason = reason;
    this.command = command;
  }
}

/**
 * The connection is closed: by close(), by the server, or lost. Commands still
 * waiting for a reply reject with it, and so do subscriptions once they have
 * handed out every message that arrived before. `reason` is the server's own
 * reason when it gave one (mqd says "Too many connections" when it refuses a
 * client), else null.
 */
export class ConnectionClosed extends MqdError {
  constructor(message, { reason = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.reason = reason;
  }
}

/**
 * No reply came in time. The connection stays usable: the reply that comes
 * late is matched to its command by position and dropped.
 */
export class TimeoutError extends MqdError {}

/**
 * The server sent a line that is neither a reply nor a message (or a reply no
 * command waits for). Replies can no longer be matched to commands, so the
 * client closes the connection; pending commands and subscriptions reject
 * with this error.
 */
export class ProtocolError extends MqdError {}
