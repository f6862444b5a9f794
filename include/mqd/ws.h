/*
 * ws: WebSocket (RFC 6455) for client connections: a transport (transport.h)
 * over another one, plain TCP or TLS, so that ws:// and wss:// are the same
 * code above the bytes.
 *
 * A connection begins as HTTP/1.1. The request head is read by http.h's
 * strict parser, within HTTP_MAX_HEAD bytes. A GET asking to upgrade
 * (Upgrade: websocket, Connection: upgrade, Sec-WebSocket-Version: 13, a
 * Sec-WebSocket-Key of 16 bytes, an allowed Origin) is answered 101 and the
 * connection speaks WebSocket from then on; a GET or HEAD of a page of the
 * web console (web.h) is answered with it, and any other request with its
 * status; both then close. Until the upgrade the transport is handshaking
 * (transport_handshaking), for the caller's deadline.
 *
 * Once open, the frames the client sends are read by wslay (Debian's
 * libwslay, its event API with buffering off): it checks masking, opcodes,
 * fragments and control frames, answers pings and closes. What a read
 * returns is the text of each message followed by "\n", so the line
 * framing, its limits (--max-line) and the commands above see what a TCP
 * client would have sent; a message is read as the lines it holds. A
 * binary message closes the connection with 1003, text that is not UTF-8
 * with 1007, as the RFC says; what wslay refuses (an unmasked frame, a
 * control frame too long) with 1002.
 *
 * Each line written (a reply or a delivery, ended by "\r\n") goes out as
 * one text frame without its "\r\n". The frames are written here, not by
 * wslay: a header of 2 to 10 bytes gathered with the line itself, as the
 * TCP transport writes it, where wslay would copy every delivery into a
 * queue of its own. Control frames wslay queued go out between data frames.
 *
 * Origins: a browser says which page opened the socket (Origin). With a
 * list (--websocket-origin) it must be on it ("*": any); without one, it
 * must name the host it asked (the console served by the same mqd). So a
 * page of another site cannot use a browser to reach an mqd on its user's
 * machine. A client that sends no Origin is not a browser, and is let in.
 *
 * Costs: per connection, the transport (a few KiB of buffers, counted by
 * alloc.h) and wslay's context (its own malloc, about 8 KiB); per frame
 * written, a header built on the stack.
 */
#ifndef MQD_WS_H
#define MQD_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "mqd/log.h"
#include "mqd/transport.h"

struct ws_config {
    const char *origins; /* comma-separated; NULL: the same origin only; "*": any */
    const struct log *log;
};

/* ws_transport_new: a WebSocket transport over `inner`, which it owns from
 * then on (and frees with itself), for the client at `addr` (for logs).
 * NULL when out of memory (the caller still owns `inner`). `config` must
 * outlive the transport. */
struct transport *ws_transport_new(struct transport *inner, const struct ws_config *config,
                                   const char *addr);

/* ws_origin_allowed: whether an upgrade with this Origin (NULL: none
 * sent) to this Host may go on, by the rules above. Exposed for tests. */
bool ws_origin_allowed(const struct ws_config *config, const char *origin, size_t origin_len,
                       const char *host, size_t host_len);

/* ws_accept_key: the Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC
 * 6455 4.2.2), NUL-terminated in `out` (29 bytes). Exposed for tests. */
void ws_accept_key(const char *key, size_t len, char out[29]);

#endif
