/*
 * sub: subscribes to topics and prints their messages as they arrive.
 *
 * Every subscribe goes out at once; their replies come in order, each before
 * the cached messages it replays. A refused subscribe ends the command with
 * the server's reason. Each message is printed as one line (see enum
 * sub_format) and flushed.
 */
#ifndef MQD_CLI_SUB_H
#define MQD_CLI_SUB_H

#include "args.h"
#include "dial.h"

/* sub_run: the exit status: CLI_OK after o->count messages or on SIGINT or
 * SIGTERM, CLI_FAILED when the connection could not be made or was lost (or
 * stdout failed), CLI_REFUSED when a subscribe was refused. */
int sub_run(const struct endpoint *at, const struct sub_options *o);

#endif
