/* mqd-cli: a command-line client of mqd (see docs/mqd-cli.1). */
#include "args.h"
#include "pub.h"
#include "raw.h"
#include "console.h"
#include "sub.h"

#include <stdio.h>

int main(int argc, char *argv[])
{
    struct cli_args a;
    char err[512];
    switch (args_parse(argc, argv, &a, err, sizeof(err))) {
    case ARGS_OK: break;
    case ARGS_HELP: args_usage(stdout); return CLI_OK;
    case ARGS_VERSION: printf("mqd-cli %s\n", MQD_VERSION); return CLI_OK;
    case ARGS_ERROR:
        report("%s", err);
        args_usage(stderr);
        return CLI_USAGE;
    }
    switch (a.command) {
    case CLI_SUB: return sub_run(&a.at, &a.sub);
    case CLI_PUB: return pub_run(&a.at, &a.pub);
    case CLI_RAW: return raw_run(&a.at);
    }
    return CLI_FAILED;
}
