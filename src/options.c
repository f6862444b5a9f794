#include "mqd/options.h"

#include "mqd/alloc.h"
#include "mqd/broker.h"
#include "mqd/config_file.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CACHE_SIZE 1000000
#define MAX_LINE_LIMIT (1024UL * 1024 * 1024)
#define MAX_CLIENTS_LIMIT 1000000
#define MIN_MEMORY (1024 * 1024)    /* less would not hold mqd's own structures */
#define MAX_SECONDS (7 * 24 * 3600) /* keepalive and idle times: up to a week */

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

struct option_spec;

/* option_setter: stores `value` (NULL for a flag) in `field`, the member of
 * struct options that `spec` names; -1 when it is not a valid value. A setter
 * may keep `value` itself: it lives as long as the options. */
typedef int (*option_setter)(const struct option_spec *spec, void *field, const char *value);

struct option_spec {
    const char *name;
    option_setter set;
    size_t field;                /* offset of the member of struct options it sets */
    unsigned long long min, max; /* bounds of numbers and sizes */
    bool command_line_only;      /* refused in the configuration file */
};

static int set_flag(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    (void)value;
    *(bool *)field = true;
    return 0;
}

/* set_switch: a bool: on the command line a flag, in the file yes or no */
static int set_switch(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    if (!value || strcmp(value, "yes") == 0)
        *(bool *)field = true;
    else if (strcmp(value, "no") == 0)
        *(bool *)field = false;
    else
        return -1;
    return 0;
}

/* set_text: a const char *, not empty */
static int set_text(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    if (*value == '\0')
        return -1;
    *(const char **)field = value;
    return 0;
}

/* set_hash_function: pbkdf2-sha256 (false) or scrypt (true) */
static int set_hash_function(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    if (strcmp(value, "scrypt") != 0 && strcmp(value, "pbkdf2-sha256") != 0)
        return -1;
    *(bool *)field = strcmp(value, "scrypt") == 0;
    return 0;
}

static int set_log_level(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    return log_level_parse(value, field);
}

static int set_fsync(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    return store_fsync_parse(value, field);
}

static int in_bounds(const struct option_spec *spec, unsigned long long n)
{
    return n >= spec->min && n <= spec->max;
}

/* set_unsigned: an unsigned, a decimal number within the bounds: a port, or
 * seconds */
static int set_unsigned(const struct option_spec *spec, void *field, const char *value)
{
    unsigned long long n;
    if (parse_count(value, &n) < 0 || !in_bounds(spec, n))
        return -1;
    *(unsigned *)field = (unsigned)n;
    return 0;
}

/* set_tls_port: --tls-port, which also turns TLS on */
static int set_tls_port(const struct option_spec *spec, void *field, const char *value)
{
    unsigned long long n;
    if (parse_count(value, &n) < 0 || !in_bounds(spec, n))
        return -1;
    *(unsigned *)field = (unsigned)n;
    *(bool *)((char *)field - offsetof(struct options, tls_port) +
              offsetof(struct options, tls_on)) = true;
    return 0;
}

/* set_count: a size_t, a decimal number within the bounds */
static int set_count(const struct option_spec *spec, void *field, const char *value)
{
    unsigned long long n;
    if (parse_count(value, &n) < 0 || !in_bounds(spec, n))
        return -1;
    *(size_t *)field = (size_t)n;
    return 0;
}

/* set_size: a size_t, a byte size within the bounds */
static int set_size(const struct option_spec *spec, void *field, const char *value)
{
    size_t n;
    if (options_parse_size(value, &n) < 0 || !in_bounds(spec, n))
        return -1;
    *(size_t *)field = n;
    return 0;
}

/* set_memory: a byte size, 0 (no limit) or at least MIN_MEMORY */
static int set_memory(const struct option_spec *spec, void *field, const char *value)
{
    size_t n;
    if (options_parse_size(value, &n) < 0 || (n != 0 && (n < MIN_MEMORY || n > spec->max)))
        return -1;
    *(size_t *)field = n;
    return 0;
}

/* set_endpoint: an options_endpoint, turned on: "ADDR:PORT", "[ADDR]:PORT",
 * or "PORT" on the default address (see net_parse_endpoint) */
static int set_endpoint(const struct option_spec *spec, void *field, const char *value)
{
    (void)spec;
    struct options_endpoint *endpoint = field;
    struct net_endpoint at;
    if (net_parse_endpoint(value, OPTIONS_DEFAULT_BIND, &at) < 0)
        return -1;
    endpoint->at = at;
    endpoint->on = true;
    return 0;
}

#define FIELD(member) offsetof(struct options, member)

/* specs: every long option, for the command line and the file alike */
static const struct option_spec specs[] = {
    {.name = "help", .set = set_flag, .field = FIELD(help), .command_line_only = true},
    {.name = "version", .set = set_flag, .field = FIELD(version), .command_line_only = true},
    {.name = "config", .set = set_text, .field = FIELD(config), .command_line_only = true},
    {.name = "port", .set = set_unsigned, .field = FIELD(port), .max = 65535},
    {.name = "bind", .set = set_text, .field = FIELD(bind)},
    {.name = "cache-size", .set = set_count, .field = FIELD(cache_size), .max = MAX_CACHE_SIZE},
    {.name = "max-line",
     .set = set_size,
     .field = FIELD(max_line),
     .min = 1,
     .max = MAX_LINE_LIMIT},
    {.name = "max-output",
     .set = set_size,
     .field = FIELD(max_output),
     .min = 1,
     .max = SIZE_MAX / 2},
    {.name = "max-clients",
     .set = set_count,
     .field = FIELD(max_clients),
     .min = 1,
     .max = MAX_CLIENTS_LIMIT},
    {.name = "max-memory", .set = set_memory, .field = FIELD(max_memory), .max = SIZE_MAX / 2},
    {.name = "max-topic-length",
     .set = set_size,
     .field = FIELD(max_topic_length),
     .min = 1,
     .max = MAX_LINE_LIMIT},
    {.name = "max-topics",
     .set = set_count,
     .field = FIELD(max_topics),
     .min = 1,
     .max = SIZE_MAX / 2},
    {.name = "max-subscriptions",
     .set = set_count,
     .field = FIELD(max_subscriptions),
     .min = 1,
     .max = SIZE_MAX / 2},
    {.name = "max-clients-per-address",
     .set = set_count,
     .field = FIELD(max_clients_per_address),
     .max = MAX_CLIENTS_LIMIT},
    {.name = "tcp-keepalive",
     .set = set_unsigned,
     .field = FIELD(tcp_keepalive),
     .max = MAX_SECONDS},
    {.name = "idle-timeout", .set = set_unsigned, .field = FIELD(idle_timeout), .max = MAX_SECONDS},
    {.name = "data-dir", .set = set_text, .field = FIELD(data_dir)},
    {.name = "fsync", .set = set_fsync, .field = FIELD(fsync)},
    {.name = "compact-min",
     .set = set_size,
     .field = FIELD(compact_min),
     .min = 4096,
     .max = SIZE_MAX / 2},
    {.name = "check-data", .set = set_text, .field = FIELD(check_data), .command_line_only = true},
    {.name = "log-level", .set = set_log_level, .field = FIELD(log_level)},
    {.name = "log-file", .set = set_text, .field = FIELD(log_file)},
    {.name = "metrics", .set = set_endpoint, .field = FIELD(metrics)},
    {.name = "tls-port", .set = set_tls_port, .field = FIELD(tls_port), .max = 65535},
    {.name = "tls-cert", .set = set_text, .field = FIELD(tls_cert)},
    {.name = "tls-key", .set = set_text, .field = FIELD(tls_key)},
    {.name = "tls-ca", .set = set_text, .field = FIELD(tls_ca)},
    {.name = "tls-verify-clients", .set = set_switch, .field = FIELD(tls_verify_clients)},
    {.name = "tls-handshake-timeout",
     .set = set_unsigned,
     .field = FIELD(tls_handshake_timeout),
     .min = 1,
     .max = MAX_SECONDS},
    {.name = "no-plain", .set = set_switch, .field = FIELD(no_plain)},
    {.name = "users", .set = set_text, .field = FIELD(users)},
    {.name = "websocket", .set = set_endpoint, .field = FIELD(websocket)},
    {.name = "websocket-tls", .set = set_switch, .field = FIELD(websocket_tls)},
    {.name = "websocket-origin", .set = set_text, .field = FIELD(websocket_origins)},
    {.name = "insecure", .set = set_switch, .field = FIELD(insecure)},
    {.name = "hash-password",
     .set = set_text,
     .field = FIELD(hash_password),
     .command_line_only = true},
    {.name = "hash-function",
     .set = set_hash_function,
     .field = FIELD(hash_scrypt),
     .command_line_only = true},
};

static int set_value(struct options *o, const struct option_spec *spec, const char *value)
{
    return spec->set(spec, (char *)o + spec->field, value);
}

static const struct option_spec *find_spec(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0)
            return &specs[i];
    }
    return NULL;
}

/* options_text: a value read from the file, kept as long as the options */
struct options_text {
    struct options_text *next;
    char text[];
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
            "  --max-memory SIZE   memory for everything clients make mqd hold: caches,\n"
            "                      queues, input, topics; when full, the oldest cached\n"
            "                      messages go, then the biggest clients (default half\n"
            "                      of the machine's or the cgroup's memory; 0: no limit)\n"
            "  --max-topic-length SIZE  longest topic name (default 1k)\n"
            "  --max-topics N      topics with subscribers or cached messages\n"
            "                      (default %d)\n"
            "  --max-subscriptions N  topics one client may subscribe to (default %d)\n"
            "  --max-clients-per-address N  connections from one address (default 0,\n"
            "                      no limit)\n"
            "  --tcp-keepalive SEC TCP keepalive probes after SEC idle seconds; a peer\n"
            "                      that stops answering is dropped within about twice\n"
            "                      that (default %d; 0: off)\n"
            "  --idle-timeout SEC  close a client that neither sent nor was sent\n"
            "                      anything for SEC seconds (default 0, never)\n",
            OPTIONS_DEFAULT_PORT, OPTIONS_DEFAULT_BIND, OPTIONS_DEFAULT_CACHE_SIZE,
            OPTIONS_DEFAULT_MAX_CLIENTS, OPTIONS_DEFAULT_MAX_TOPICS,
            OPTIONS_DEFAULT_MAX_SUBSCRIPTIONS, OPTIONS_DEFAULT_TCP_KEEPALIVE);
    /* in two parts: C99 promises string literals of 4095 bytes only */
    fprintf(out,
            "  --data-dir DIR      keep every topic's next index and cache in DIR across\n"
            "                      restarts and crashes (default off)\n"
            "  --fsync POLICY      with --data-dir: always, everysec or no (default\n"
            "                      everysec): what a power cut may lose\n"
            "  --compact-min SIZE  with --data-dir: compact the logs into a snapshot\n"
            "                      once they pass SIZE and the last snapshot\n"
            "                      (default 64M)\n"
            "  --check-data DIR    check a data directory, print what it holds and\n"
            "                      exit: 0 clean, 1 a torn tail, 2 damaged\n"
            "  --tls-port PORT     also listen for TLS on PORT, on the same --bind\n"
            "                      (default off; 0 picks a free port, which the log\n"
            "                      says)\n"
            "  --tls-cert FILE     the server's PEM certificate chain, for --tls-port\n"
            "  --tls-key FILE      its PEM private key; SIGHUP reads both again\n"
            "  --tls-ca FILE       PEM CAs that sign client certificates\n"
            "  --tls-verify-clients\n"
            "                      require a client certificate signed by --tls-ca\n"
            "                      (in the file: yes or no)\n"
            "  --tls-handshake-timeout SEC\n"
            "                      cut a TLS client that has not finished its\n"
            "                      handshake after SEC seconds (default 10)\n"
            "  --no-plain          listen for TLS only, not on --port (in the file:\n"
            "                      yes or no)\n"
            "  --websocket ADDR:PORT\n"
            "                      also serve the protocol over WebSocket, and the web\n"
            "                      console at http://ADDR:PORT/ (default off; PORT\n"
            "                      alone means 127.0.0.1:PORT; 0 picks a free port)\n"
            "  --websocket-tls     wss:// on --websocket, with --tls-cert and --tls-key\n"
            "                      (in the file: yes or no)\n"
            "  --websocket-origin LIST\n"
            "                      the browser origins let in, comma-separated, or *\n"
            "                      (default: the console's own origin only)\n"
            "  --users FILE        clients must log in (the auth command) as a user of\n"
            "                      FILE, and may publish and subscribe only as its\n"
            "                      line allows; SIGHUP reads it again (default off)\n"
            "  --insecure          listen on an address other than loopback without\n"
            "                      --users (in the file: yes or no)\n"
            "  --hash-password NAME\n"
            "                      read a password on stdin, print a users file line\n"
            "                      for NAME with its hash, and exit\n"
            "  --hash-function F   for --hash-password: pbkdf2-sha256 (default) or\n"
            "                      scrypt\n"
            "  --log-level LEVEL   error, warn, info or debug (default info)\n"
            "  --log-file PATH     append logs to PATH instead of stderr;\n"
            "                      SIGHUP reopens it (default stderr)\n"
            "  --metrics ADDR:PORT serve Prometheus metrics at http://ADDR:PORT/metrics\n"
            "                      (default off; PORT alone means %s:PORT,\n"
            "                      an IPv6 ADDR goes in brackets: [::1]:9100)\n"
            "  --config FILE       read options from FILE, one 'name value' per line;\n"
            "                      the command line wins over it\n"
            "  -h, --help          show this help and exit\n"
            "  -V, --version       show the version and exit\n"
            "\n"
            "PORT and CACHE_SIZE may also be given as positional arguments.\n"
            "SIZE takes an optional k, m or g suffix (powers of 1024).\n",
            OPTIONS_DEFAULT_BIND);
}

/* keep_text: a copy of a value from the file, which lives until options_free,
 * so that a setter may keep it; NULL when out of memory. */
static const char *keep_text(struct options *o, const char *value)
{
    size_t len = strlen(value);
    struct options_text *t = mqd_malloc(sizeof(*t) + len + 1);
    if (!t)
        return NULL;
    memcpy(t->text, value, len + 1);
    t->next = o->file_texts;
    o->file_texts = t;
    return t->text;
}

/* set_from_file: one `key value` line of the configuration file. */
static int set_from_file(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct options *o = ctx;
    const struct option_spec *spec = find_spec(key, strlen(key));
    if (!spec) {
        snprintf(err, err_len, "unknown key '%s'", key);
        return -1;
    }
    if (spec->command_line_only) {
        snprintf(err, err_len, "'%s' is only allowed on the command line", key);
        return -1;
    }
    const char *kept = keep_text(o, value);
    if (!kept) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (set_value(o, spec, kept) < 0) {
        snprintf(err, err_len, "invalid value '%s' for %s", value, key);
        return -1;
    }
    return 0;
}

static int read_config(struct options *o, char *err, size_t err_len)
{
    FILE *in = fopen(o->config, "r");
    if (!in) {
        snprintf(err, err_len, "cannot read %s: %s", o->config, strerror(errno));
        return -1;
    }
    int rc = config_file_read(in, o->config, set_from_file, o, err, err_len);
    fclose(in);
    return rc;
}

static int apply_positional(struct options *o, int position, const char *value, char *err,
                            size_t err_len)
{
    static const char *const names[] = {"port", "cache-size"};
    static const char *const shown[] = {"PORT", "CACHE_SIZE"};
    if (position >= 2) {
        snprintf(err, err_len, "unexpected argument '%s'", value);
        return -1;
    }
    if (set_value(o, find_spec(names[position], strlen(names[position])), value) < 0) {
        snprintf(err, err_len, "invalid %s '%s'", shown[position], value);
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
    const char *value = eq ? eq + 1 : NULL;
    if (spec->set == set_flag || spec->set == set_switch) {
        if (eq) {
            snprintf(err, err_len, "option '--%s' takes no value", spec->name);
            return -1;
        }
    } else if (!value) {
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "option '--%s' needs a value", spec->name);
            return -1;
        }
        value = argv[++*i];
    }
    if (set_value(o, spec, value) < 0) {
        snprintf(err, err_len, "invalid value '%s' for --%s", value, spec->name);
        return -1;
    }
    return 0;
}

static int apply_command_line(struct options *o, int argc, char *const argv[], char *err,
                              size_t err_len)
{
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
            return -1;
    }
    return 0;
}

/* check_tls: the TLS options need one another */
static enum options_status check_tls(const struct options *o, char *err, size_t err_len)
{
    const char *why = NULL;
    bool any_tls = o->tls_on || o->websocket_tls;
    if (o->tls_on && (!o->tls_cert || !o->tls_key))
        why = "--tls-port needs --tls-cert and --tls-key";
    else if (o->websocket_tls && !o->websocket.on)
        why = "--websocket-tls needs --websocket";
    else if (o->websocket_tls && (!o->tls_cert || !o->tls_key))
        why = "--websocket-tls needs --tls-cert and --tls-key";
    else if (o->websocket_origins && !o->websocket.on)
        why = "--websocket-origin needs --websocket";
    else if (!any_tls && (o->tls_cert || o->tls_key || o->tls_ca || o->tls_verify_clients))
        why = "the --tls options need --tls-port or --websocket-tls";
    else if (o->tls_verify_clients && !o->tls_ca)
        why = "--tls-verify-clients needs --tls-ca, the CAs that sign client certificates";
    else if (o->no_plain && !o->tls_on)
        why = "--no-plain needs --tls-port: without it nothing would listen";
    else if (o->hash_scrypt && !o->hash_password)
        why = "--hash-function needs --hash-password";
    if (!why)
        return OPTIONS_OK;
    snprintf(err, err_len, "%s", why);
    return OPTIONS_CONFLICT;
}

/* check_together: limits that are each valid but cannot work together */
static enum options_status check_together(const struct options *o, char *err, size_t err_len)
{
    enum options_status tls = check_tls(o, err, err_len);
    if (tls != OPTIONS_OK)
        return tls;
    if (o->max_output < o->max_line || o->max_output - o->max_line < BROKER_INDEX_ROOM) {
        snprintf(err, err_len,
                 "--max-output %zu is too small for --max-line %zu: a delivered line can be "
                 "%zu bytes (the line plus %d for its index)",
                 o->max_output, o->max_line, o->max_line + BROKER_INDEX_ROOM, BROKER_INDEX_ROOM);
        return OPTIONS_CONFLICT;
    }
    return OPTIONS_OK;
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
        .max_memory = OPTIONS_MAX_MEMORY_AUTO,
        .max_topic_length = OPTIONS_DEFAULT_MAX_TOPIC_LENGTH,
        .max_topics = OPTIONS_DEFAULT_MAX_TOPICS,
        .max_subscriptions = OPTIONS_DEFAULT_MAX_SUBSCRIPTIONS,
        .tcp_keepalive = OPTIONS_DEFAULT_TCP_KEEPALIVE,
        .fsync = STORE_FSYNC_EVERYSEC,
        .compact_min = STORE_DEFAULT_COMPACT_MIN,
        .log_level = LOG_LEVEL_INFO,
        .tls_handshake_timeout = OPTIONS_DEFAULT_TLS_HANDSHAKE_TIMEOUT,
    };
    /* read first to find --config and to report command line errors before
     * the file's; then read again over the file, so the command line wins
     * wherever --config stands in it */
    if (apply_command_line(o, argc, argv, err, err_len) < 0)
        return OPTIONS_ERROR;
    if (o->help || o->version)
        return OPTIONS_OK;
    if (o->config) {
        if (read_config(o, err, err_len) < 0)
            return OPTIONS_CONFIG_ERROR;
        if (apply_command_line(o, argc, argv, err, err_len) < 0)
            return OPTIONS_ERROR;
    }
    return check_together(o, err, err_len);
}

void options_free(struct options *o)
{
    while (o->file_texts) {
        struct options_text *t = o->file_texts;
        o->file_texts = t->next;
        mqd_free(t);
    }
}
