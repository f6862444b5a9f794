#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* the long-only options: values past any character */
enum {
    OPT_LAST_SEEN = 256,
    OPT_NO_CACHE,
    OPT_COUNT,
    OPT_FORMAT,
    OPT_ONE,
    OPT_TLS,
    OPT_TLS_CA,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_USER,
    OPT_PASSWORD_FILE,
};

static const struct option LONG_OPTIONS[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"last-seen", required_argument, NULL, OPT_LAST_SEEN},
    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"one", no_argument, NULL, OPT_ONE},
    {"tls", no_argument, NULL, OPT_TLS},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"user", required_argument, NULL, OPT_USER},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {NULL, 0, NULL, 0},
};

/* the options of one command, and which commands take them */
struct command_option {
    int id;
    const char *name;
    unsigned commands; /* bit per enum cli_command */
};

#define ON(command) (1u << (command))

static const struct command_option COMMAND_OPTIONS[] = {
    {OPT_LAST_SEEN, "--last-seen", ON(CLI_SUB)},
    {OPT_NO_CACHE, "--no-cache", ON(CLI_SUB) | ON(CLI_PUB)},
    {OPT_COUNT, "--count", ON(CLI_SUB)},
    {OPT_FORMAT, "--format", ON(CLI_SUB)},
    {OPT_ONE, "--one", ON(CLI_PUB)},
};

#define NCOMMAND_OPTIONS (sizeof(COMMAND_OPTIONS) / sizeof(COMMAND_OPTIONS[0]))

static const char *const COMMAND_NAMES[] = {"sub", "pub", "raw"};

/* the state of one parse, for the helpers below */
struct parse {
    struct cli_args *a;
    char *err;
    size_t err_size;
    bool help, version;
    unsigned given; /* bit i: COMMAND_OPTIONS[i] was given */
};

static enum args_status fail(struct parse *p, const char *what, const char *arg)
{
    snprintf(p->err, p->err_size, "%s '%s'", what, arg);
    return ARGS_ERROR;
}

static bool parse_port(const char *text)
{
    char *end;
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    return !errno && !*end && v >= 1 && v <= 65535;
}

static bool parse_int64(const char *text, int64_t *out)
{
    char *end;
    if (!*text || (*text != '-' && (*text < '0' || *text > '9')))
        return false;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    *out = v;
    return !errno && !*end && end != text;
}

static bool parse_count(const char *text, unsigned long long *out)
{
    char *end;
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    *out = strtoull(text, &end, 10);
    return !errno && !*end && *out > 0;
}

static bool parse_format(const char *text, enum sub_format *out)
{
    static const char *const names[] = {"msg", "json", "index"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (enum sub_format)i;
            return true;
        }
    }
    return false;
}

/* mark_given: notes that a command's option was given, for check_options */
static void mark_given(struct parse *p, int id)
{
    for (size_t i = 0; i < NCOMMAND_OPTIONS; i++)
        if (COMMAND_OPTIONS[i].id == id)
            p->given |= 1u << i;
}

/* the argument getopt_long last looked at: the option it complains about */
static const char *last_arg(int argc, char *argv[])
{
    return optind > 0 && optind <= argc ? argv[optind - 1] : "";
}

/* bad_option: the error for what getopt_long could not take: an unknown
 * option (`missing` false) or one without its value */
static enum args_status bad_option(struct parse *p, int argc, char *argv[], bool missing)
{
    const char *arg = last_arg(argc, argv);
    char short_form[3] = {'-', (char)optopt, '\0'};
    if (optopt > 0 && optopt < 256 && strncmp(arg, "--", 2) != 0)
        arg = short_form;
    return fail(p, missing ? "missing value for option" : "unknown option", arg);
}

/* take_option: stores one option getopt_long returned */
static enum args_status take_option(struct parse *p, int id, int argc, char *argv[])
{
    struct cli_args *a = p->a;
    mark_given(p, id);
    switch (id) {
    case 'H': a->at.host = optarg; return *optarg ? ARGS_OK : fail(p, "invalid host", optarg);
    case 'p':
        a->at.port = optarg;
        return parse_port(optarg) ? ARGS_OK : fail(p, "invalid port (1 to 65535)", optarg);
    case 'h': p->help = true; return ARGS_OK;
    case 'V': p->version = true; return ARGS_OK;
    case OPT_LAST_SEEN:
        a->sub.has_last_seen = true;
        return parse_int64(optarg, &a->sub.last_seen)
                   ? ARGS_OK
                   : fail(p, "invalid --last-seen (a 64-bit integer)", optarg);
    case OPT_NO_CACHE: a->sub.cache = a->pub.cache = false; return ARGS_OK;
    case OPT_COUNT:
        return parse_count(optarg, &a->sub.count)
                   ? ARGS_OK
                   : fail(p, "invalid --count (a positive integer)", optarg);
    case OPT_FORMAT:
        return parse_format(optarg, &a->sub.format)
                   ? ARGS_OK
                   : fail(p, "invalid --format (msg, json or index)", optarg);
    case OPT_ONE: a->pub.one = true; return ARGS_OK;
    case OPT_TLS: a->at.tls = true; return ARGS_OK;
    case OPT_TLS_CA: a->at.tls_ca = optarg; return ARGS_OK;
    case OPT_TLS_CERT: a->at.tls_cert = optarg; return ARGS_OK;
    case OPT_TLS_KEY: a->at.tls_key = optarg; return ARGS_OK;
    case OPT_USER: a->at.user = optarg; return *optarg ? ARGS_OK : fail(p, "invalid user", optarg);
    case OPT_PASSWORD_FILE: a->at.password_file = optarg; return ARGS_OK;
    case ':': return bad_option(p, argc, argv, true);
    default: return bad_option(p, argc, argv, false);
    }
}

/* check_options: every command option given belongs to the command */
static enum args_status check_options(struct parse *p)
{
    for (size_t i = 0; i < NCOMMAND_OPTIONS; i++) {
        if ((p->given & (1u << i)) && !(COMMAND_OPTIONS[i].commands & ON(p->a->command))) {
            snprintf(p->err, p->err_size, "%s is not an option of %s", COMMAND_OPTIONS[i].name,
                     COMMAND_NAMES[p->a->command]);
            return ARGS_ERROR;
        }
    }
    return ARGS_OK;
}

/* check_endpoint: the TLS and login options that need one another */
static enum args_status check_endpoint(struct parse *p)
{
    const struct endpoint *at = &p->a->at;
    const char *why = NULL;
    if ((at->tls_ca || at->tls_cert || at->tls_key) && !at->tls)
        why = "--tls-ca, --tls-cert and --tls-key need --tls";
    else if (!at->tls_cert != !at->tls_key)
        why = "--tls-cert and --tls-key go together";
    else if (!at->user != !at->password_file)
        why = "--user and --password-file go together";
    if (!why)
        return ARGS_OK;
    snprintf(p->err, p->err_size, "%s", why);
    return ARGS_ERROR;
}

/* take_operands: the command's own arguments, `n` of them at `v` */
static enum args_status take_operands(struct parse *p, char *const *v, int n)
{
    struct cli_args *a = p->a;
    switch (a->command) {
    case CLI_SUB:
        if (n < 1) {
            snprintf(p->err, p->err_size, "sub needs at least one TOPIC");
            return ARGS_ERROR;
        }
        a->sub.topics = v;
        a->sub.ntopics = (size_t)n;
        return ARGS_OK;
    case CLI_PUB:
        if (n < 1) {
            snprintf(p->err, p->err_size, "pub needs a TOPIC");
            return ARGS_ERROR;
        }
        if (n > 2)
            return fail(p, "too many arguments for pub: unexpected", v[2]);
        a->pub.topic = v[0];
        a->pub.msg = n == 2 ? v[1] : NULL;
        return ARGS_OK;
    case CLI_RAW: return n == 0 ? ARGS_OK : fail(p, "raw takes no arguments: unexpected", v[0]);
    }
    return ARGS_ERROR;
}

/* take_command: the command named by `name` */
static enum args_status take_command(struct parse *p, const char *name)
{
    for (int c = CLI_SUB; c <= CLI_RAW; c++) {
        if (strcmp(name, COMMAND_NAMES[c]) == 0) {
            p->a->command = (enum cli_command)c;
            return ARGS_OK;
        }
    }
    return fail(p, "unknown command", name);
}

enum args_status args_parse(int argc, char *argv[], struct cli_args *a, char *err, size_t err_size)
{
    memset(a, 0, sizeof(*a));
    a->at = (struct endpoint){.host = DIAL_DEFAULT_HOST, .port = DIAL_DEFAULT_PORT};
    a->sub.cache = a->pub.cache = true;
    struct parse p = {.a = a, .err = err, .err_size = err_size};
    opterr = 0; /* its messages are not ours: one line, then the usage */
    int id;
    while ((id = getopt_long(argc, argv, ":H:p:hV", LONG_OPTIONS, NULL)) != -1)
        if (take_option(&p, id, argc, argv) != ARGS_OK)
            return ARGS_ERROR;
    if (p.help)
        return ARGS_HELP;
    if (p.version)
        return ARGS_VERSION;
    if (optind >= argc) {
        snprintf(err, err_size, "no command given");
        return ARGS_ERROR;
    }
    if (take_command(&p, argv[optind]) != ARGS_OK || check_options(&p) != ARGS_OK ||
        check_endpoint(&p) != ARGS_OK)
        return ARGS_ERROR;
    return take_operands(&p, argv + optind + 1, argc - optind - 1);
}

void args_usage(FILE *f)
{
    fputs("Usage: mqd-cli [CONNECTION] sub TOPIC... [--last-seen N] [--no-cache]\n"
          "                            [--count N] [--format msg|json|index]\n"
          "       mqd-cli [CONNECTION] pub TOPIC [MSG] [--one] [--no-cache]\n"
          "       mqd-cli [CONNECTION] raw\n"
          "CONNECTION: [-H HOST] [-p PORT] [--tls [--tls-ca FILE]\n"
          "            [--tls-cert FILE --tls-key FILE]] [--user U --password-file F]\n"
          "A command-line client of mqd, the publish/subscribe server.\n"
          "\n"
          "Commands:\n"
          "  sub TOPIC...        subscribe to each TOPIC and print each message as it\n"
          "                      arrives, until --count messages, SIGINT or SIGTERM\n"
          "  pub TOPIC [MSG]     send MSG to TOPIC; without MSG, send each line of\n"
          "                      stdin as a message\n"
          "  raw                 send the lines typed as they are, pretty-print each\n"
          "                      line the server sends\n"
          "\n"
          "Options:\n"
          "  -H, --host HOST     server name or address (default 127.0.0.1)\n"
          "  -p, --port PORT     server port (default 7000)\n"
          "  --tls               speak TLS (to mqd's --tls-port), checking the\n"
          "                      server's certificate and name\n"
          "  --tls-ca FILE       the CAs to check it with (default: the system's)\n"
          "  --tls-cert FILE, --tls-key FILE\n"
          "                      a client certificate and its key\n"
          "  --user U            log in as U (a server run with --users)\n"
          "  --password-file F   with --user: the password is F's first line\n"
          "  --last-seen N       sub: replay only cached messages with an index above N\n"
          "                      (default: replay them all)\n"
          "  --no-cache          sub: replay no cached message;\n"
          "                      pub: keep the messages out of the cache\n"
          "  --count N           sub: exit 0 after printing N messages\n"
          "  --format FORMAT     sub: msg (the message alone), json (the delivered\n"
          "                      object) or index (TOPIC, INDEX and MSG separated\n"
          "                      by tabs) (default msg)\n"
          "  --one               pub: deliver each message to one subscriber chosen\n"
          "                      at random (default: to every subscriber)\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show the version and exit\n"
          "\n"
          "Exit status: 0 done, 1 no connection or connection lost,\n"
          "2 bad usage, 3 the server refused a command (its reason is printed).\n",
          f);
}
