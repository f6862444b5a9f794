/*
 * pub: sends a message, or each line of stdin as a message.
 *
 * Sends are pipelined: up to PUB_IN_FLIGHT commands wait for their replies
 * at a time, and replies are counted in order, so none is lost and each
 * refusal is matched to its line. A stdin line is every byte before its '\n'
 * (a '\r' included); a last line without '\n' is sent too. stdin and the
 * connection are watched together, so a server that goes away is noticed at
 * once, even while stdin is quiet (`tail -f log | mqd-cli pub logs`).
 */
#ifndef MQD_CLI_PUB_H
#define MQD_CLI_PUB_H

#include "args.h"
#include "dial.h"

#define PUB_IN_FLIGHT 512

/* pub_run: the exit status: CLI_OK once every message was accepted;
 * CLI_REFUSED at the first refusal, with the server's reason (and the stdin
 * line it refused); CLI_FAILED when the connection could not be made or was
 * lost, or stdin failed or held a NUL byte, which cJSON cannot send. Lines
 * after a refused one may have been sent, and delivered, before the refusal
 * came back. */
int pub_run(const struct endpoint *at, const struct pub_options *o);

#endif
