/*
 * raw: an interactive session, like netcat with JSON pretty-printing.
 *
 * Each line of stdin goes to the server as it is, with its '\n'; each line
 * from the server is printed as cJSON_Print shows it (a line that is not
 * JSON as it came). At the end of stdin the sending side is shut: mqd then
 * runs what it has, writes every reply and closes, so that all replies are
 * printed before raw exits. After a `quit` line nothing more is sent: the
 * server closes.
 */
#ifndef MQD_CLI_RAW_H
#define MQD_CLI_RAW_H

#include "dial.h"

/* raw_run: the exit status: CLI_OK when the server closed after the end of
 * stdin or a quit; CLI_FAILED when the connection could not be made, was
 * lost or closed before, or stdin or stdout failed. */
int raw_run(const struct endpoint *at);

#endif
