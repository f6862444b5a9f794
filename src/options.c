#include "mqd/options.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CACHE_SIZE 1000000
#define MAX_LINE_LIMIT (1024UL * 1024 * 1024)
#define MAX_CLIENTS_LIMIT 1000000

enum option_kind { OPT_FLAG, OPT_COUNT, OPT_SIZE, OPT_TEXT };

struct option_spec {
    const char *name;
    enum option_kind kind;
    unsigned long long min, max; /* for counts and sizes */
};

static const struct option_spec specs[] = {
    {"help", OPT_FLAG, 0, 0},
    {"version", OPT_FLAG, 0, 0},
    {"port", OPT_COUNT, 0, 65535},
    {"bind", OPT_TEXT, 0, 0},
    {"cache-size", OPT_COUNT, 0, MAX_CACHE_SIZE},
    {"max-line", OPT_SIZE, 1, MAX_LINE_LIMIT},
    {"max-output", OPT_SIZE, 1, SIZE_MAX / 2},
    {"max-clients", OPT_COUNT, 1, MAX_CLIENTS_LIMIT},
    {"log-level", OPT_TEXT, 0, 0},
    {"metrics", OPT_TEXT, 0, 0},
};

void options_usage(FILE *out)
{
    fprintf(out,
            "Usage: mqd [OPTIONS] [PORT [CACHE_SIZE]]\n"
            "A publish/subscribe server speaking newline-delimited JSON over TCP.\n"
            "\n"
            "  --port N            TCP port to listen on (default %d; 0 picks a free one)\n"
            "  --bind ADDR         address to listen on, IPv4 or IPv6 (default %s)\n"
            "  --cache-size N      messages cached per topic, 0 disables (default %d)\n"
            "  --max-line SIZE     longest accepted input line (default 1m)\n"
            "  --max-output SIZE   bytes queued to one client before it is\n"
            "                      disconnected as a slow consumer (default 32m)\n"
            "  --max-clients N     simultaneous clients (default %d, lowered to\n"
            "                      what RLIMIT_NOFILE allows)\n"
            "  --log-level LEVEL   error, warn, info or debug (default info)\n"
            "  --metrics ADDR:PORT serve Prometheus metrics at http://ADDR:PORT/metrics\n"
            "                      (default off; PORT alone means %s:PORT,\n"
            "                      an IPv6 ADDR goes in brackets: [::1]:9100)\n"
            "  -h, --help          show this help and exit\n"
            "  -V, --version       show the version and exit\n"
            "\n"
            "PORT and CACHE_SIZE may also be given as positional arguments.\n"
            "SIZE takes an optional k, m or g suffix (powers of 1024).\n",
            OPTIONS_DEFAULT_PORT, OPTIONS_DEFAULT_BIND, OPTIONS_DEFAULT_CACHE_SIZE,
            OPTIONS_DEFAULT_MAX_CLIENTS, OPTIONS_DEFAULT_BIND);
}

static int parse_count(const char *text, unsigned long long *out)
{
    if (*text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    *out = strtoull(text, &end, 10);
    return errno || *end ? -1 : 0;
}

int options_parse_size(const char *text, size_t *out)
{
    if (*text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k':
    case 'K': shift = 10; break;
    case 'm':
    case 'M': shift = 20; break;
    case 'g':
    case 'G': shift = 30; break;
    default: return -1;
    }
    if (*end && end[1])
        return -1;
    if (v > (SIZE_MAX >> shift))
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

static const struct option_spec *find_spec(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0)
            return &specs[i];
    }
    return NULL;
}

/* apply: stores one option's value; -1 (with `err` set) when it is invalid. */
static int apply(struct options *o, const struct option_spec *spec, const char *value, char *err,
                 size_t err_len)
{
    unsigned long long n = 0;
    size_t size = 0;
    int bad = 0;
    if (spec->kind == OPT_COUNT)
        bad = parse_count(value, &n) < 0 || n < spec->min || n > spec->max;
    else if (spec->kind == OPT_SIZE)
        bad = options_parse_size(value, &size) < 0 || size < spec->min || size > spec->max;
    if (strcmp(spec->name, "log-level") == 0)
        bad = log_level_parse(value, &o->log_level) < 0;
    else if (strcmp(spec->name, "bind") == 0)
        bad = *value == '\0';
    else if (strcmp(spec->name, "metrics") == 0)
        bad = net_parse_endpoint(value, OPTIONS_DEFAULT_BIND, &o->metrics_at) < 0;
    if (bad) {
        snprintf(err, err_len, "invalid value '%s' for --%s", value, spec->name);
        return -1;
    }
    if (strcmp(spec->name, "port") == 0)
        o->port = (unsigned)n;
    else if (strcmp(spec->name, "bind") == 0)
        o->bind = value;
    else if (strcmp(spec->name, "cache-size") == 0)
        o->cache_size = (size_t)n;
    else if (strcmp(spec->name, "max-line") == 0)
        o->max_line = size;
    else if (strcmp(spec->name, "max-output") == 0)
        o->max_output = size;
    else if (strcmp(spec->name, "max-clients") == 0)
        o->max_clients = (size_t)n;
    else if (strcmp(spec->name, "metrics") == 0)
        o->metrics = true;
    return 0;
}

static int apply_positional(struct options *o, int position, const char *value, char *err,
                            size_t err_len)
{
    static const char *const names[] = {"port", "cache-size"};
    if (position >= 2) {
        snprintf(err, err_len, "unexpected argument '%s'", value);
        return -1;
    }
    const struct option_spec *spec = find_spec(names[position], strlen(names[position]));
    if (apply(o, spec, value, err, err_len) < 0) {
        snprintf(err, err_len, "invalid %s '%s'", position == 0 ? "PORT" : "CACHE_SIZE", value);
        return -1;
    }
    return 0;
}

/* apply_long: "--name", "--name=value" or "--name value" (consuming argv[*i + 1]). */
static int apply_long(struct options *o, int argc, char *const argv[], int *i, char *err,
                      size_t err_len)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct option_spec *spec = find_spec(name, len);
    if (!spec) {
        snprintf(err, err_len, "unknown option '--%.*s'", (int)len, name);
        return -1;
    }
    if (spec->kind == OPT_FLAG) {
        if (eq) {
            snprintf(err, err_len, "option '--%s' takes no value", spec->name);
            return -1;
        }
        if (strcmp(spec->name, "help") == 0)
            o->help = true;
        else
            o->version = true;
        return 0;
    }
    const char *value = eq ? eq + 1 : NULL;
    if (!value) {
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "option '--%s' needs a value", spec->name);
            return -1;
        }
        value = argv[++*i];
    }
    return apply(o, spec, value, err, err_len);
}

enum options_status options_parse(int argc, char *const argv[], struct options *o, char *err,
                                  size_t err_len)
{
    *o = (struct options){
        .bind = OPTIONS_DEFAULT_BIND,
        .port = OPTIONS_DEFAULT_PORT,
        .cache_size = OPTIONS_DEFAULT_CACHE_SIZE,
        .max_line = OPTIONS_DEFAULT_MAX_LINE,
        .max_output = OPTIONS_DEFAULT_MAX_OUTPUT,
        .max_clients = OPTIONS_DEFAULT_MAX_CLIENTS,
        .log_level = LOG_LEVEL_INFO,
    };
    int positional = 0;
    bool only_positionals = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc = 0;
        if (only_positionals || arg[0] != '-' || arg[1] == '\0')
            rc = apply_positional(o, positional++, arg, err, err_len);
        else if (strcmp(arg, "--") == 0)
            only_positionals = true;
        else if (strcmp(arg, "-h") == 0)
            o->help = true;
        else if (strcmp(arg, "-V") == 0)
            o->version = true;
        else if (arg[1] == '-')
            rc = apply_long(o, argc, argv, &i, err, err_len);
        else {
            snprintf(err, err_len, "unknown option '%s'", arg);
            rc = -1;
        }
        if (rc < 0)
            return OPTIONS_ERROR;
    }
    return OPTIONS_OK;
}
