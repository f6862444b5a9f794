/* mqd: the command line and logging around one server. */
#include "mqd/log.h"
#include "mqd/options.h"
#include "mqd/server.h"

#include <stdio.h>

int main(int argc, char *argv[])
{
    struct options o;
    char err[256];
    if (options_parse(argc, argv, &o, err, sizeof(err)) != OPTIONS_OK) {
        fprintf(stderr, "mqd: %s\n", err);
        options_usage(stderr);
        return 2;
    }
    if (o.help) {
        options_usage(stdout);
        return 0;
    }
    if (o.version) {
        printf("mqd %s\n", MQD_VERSION);
        return 0;
    }
    struct log log = {o.log_level, stderr};
    struct server_config config = {
        .bind = o.bind,
        .port = o.port,
        .cache_size = o.cache_size,
        .max_line = o.max_line,
        .max_output = o.max_output,
        .max_clients = o.max_clients,
        .metrics = o.metrics ? &o.metrics_at : NULL,
        .log = &log,
    };
    struct server *s = server_new(&config, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "mqd: %s\n", err);
        return 1;
    }
    int rc = server_run(s);
    server_free(s);
    return rc == 0 ? 0 : 1;
}
