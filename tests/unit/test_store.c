/*
 * test_store: a data directory read back at start (store_load, datadir):
 * a snapshot plus the logs after it, a torn tail cut only in the last log,
 * what a finished or unfinished compaction left removed, and every way the
 * generations can be wrong refusing the start with the file named. The
 * files are made by hand, record by record, in a fresh directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mqd/broker.h"
#include "mqd/record.h"
#include "mqd/store.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_store.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[sizeof(dir) + sizeof(e->d_name) + 1];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    return rmdir(dir);
}

/* a file's bytes, built record by record */
struct file {
    char bytes[8192];
    size_t len;
};

static void begin(struct file *f)
{
    record_write_head(f->bytes);
    f->len = RECORD_HEAD_LEN;
}

static void add(struct file *f, struct record r)
{
    size_t size = record_size(&r);
    assert_true(size > 0 && f->len + size <= sizeof(f->bytes));
    f->len += record_encode(&r, f->bytes + f->len);
}

static void add_message(struct file *f, const char *topic, uint64_t index, const char *msg)
{
    static char line[256];
    snprintf(line, sizeof(line),
             "{\"command\": \"send\", \"topic\": \"%s\", \"msg\": \"%s\", "
             "\"delivery\": \"all\", \"index\": %llu}\r\n",
             topic, msg, (unsigned long long)index);
    add(f, (struct record){.type = RECORD_MESSAGE,
                           .topic = topic,
                           .topic_len = (uint32_t)strlen(topic),
                           .index = index,
                           .line = line,
                           .line_len = (uint32_t)strlen(line)});
}

static void add_plain(struct file *f, enum record_type type, const char *topic, uint64_t index)
{
    add(f, (struct record){
               .type = type, .topic = topic, .topic_len = (uint32_t)strlen(topic), .index = index});
}

static void save(const struct file *f, const char *name, size_t cut)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(f->bytes, 1, f->len - cut, out), f->len - cut);
    fclose(out);
}

static bool exists(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static long size_of(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* the lines a broker delivers, kept for the tests to read */
static char delivered[8][256];
static size_t ndelivered;

static bool deliver(void *ctx, struct buf *line)
{
    (void)ctx;
    assert_true(ndelivered < 8 && line->len < 256);
    memcpy(delivered[ndelivered], line->data, line->len);
    delivered[ndelivered++][line->len] = '\0';
    return true;
}

static int restore(void *broker, const struct broker_change *c)
{
    return broker_restore(broker, c) == BROKER_OK ? 0 : -1;
}

static FILE *warnings;

/* load: the directory into a new broker with a cache of 10; the store's
 * status, its error in `err` */
static size_t cache_size = 10;

static void walk(void *broker, broker_change_fn fn, void *ctx)
{
    broker_each_kept(broker, fn, ctx);
}

static int load(struct broker **b, struct store **s, char *err, size_t err_len)
{
    static struct log log;
    log = (struct log){LOG_LEVEL_WARN, warnings, NULL};
    struct broker_config bc = {.cache_size = cache_size, .max_retired = 100, .deliver = deliver};
    *b = broker_new(&bc);
    assert_non_null(*b);
    struct store_config sc = {.dir = dir,
                              .fsync = STORE_FSYNC_NO,
                              .log = &log,
                              .walk = walk,
                              .walk_state = *b,
                              .compact_min = (size_t)1 << 40};
    *s = store_open(&sc, err, err_len);
    assert_non_null(*s);
    broker_tell_changes(*b, store_tell, store_room, *s);
    return store_load(*s, restore, *b, err, err_len);
}

/* replay: the msg texts of the topic's cache, oldest first, joined by ' ' */
static const char *replay(struct broker *b, const char *topic)
{
    static char joined[256];
    ndelivered = 0;
    struct broker_client *c = broker_client_new(b, delivered);
    assert_non_null(c);
    assert_int_equal(broker_subscribe(b, c, topic, strlen(topic)), BROKER_OK);
    broker_replay(b, c, topic, strlen(topic), -1);
    broker_client_free(c);
    joined[0] = '\0';
    for (size_t i = 0; i < ndelivered; i++) {
        const char *msg = strstr(delivered[i], "\"msg\": \"") + 8;
        size_t n = (size_t)(strchr(msg, '"') - msg);
        strncat(joined, msg, n);
        strcat(joined, i + 1 < ndelivered ? " " : "");
    }
    return joined;
}

static void a_snapshot_then_its_logs_and_a_torn_tail(void **state)
{
    (void)state;
    struct file f;
    begin(&f); /* compacted long ago: must be ignored and removed */
    add_message(&f, "a", 0, "stale");
    save(&f, "log.2", 0);
    save(&f, "snapshot.3.tmp", 0);
    begin(&f); /* the state when log.3 began */
    add_plain(&f, RECORD_INDEX, "a", 5);
    add_message(&f, "a", 3, "m3");
    add_message(&f, "a", 4, "m4");
    save(&f, "snapshot.3", 0);
    begin(&f);
    add_plain(&f, RECORD_REMOVED, "a", 3);
    add_message(&f, "a", 5, "m5");
    save(&f, "log.3", 0);
    begin(&f);
    add_message(&f, "a", 6, "m6");
    size_t whole = f.len;
    add_message(&f, "a", 7, "torn");
    save(&f, "log.4", 5); /* cut 5 bytes short of its last record */

    struct broker *b;
    struct store *s;
    char err[256];
    assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
    assert_string_equal(replay(b, "a"), "m4 m5 m6");
    assert_int_equal(size_of("log.4"), whole); /* the torn tail is cut */
    assert_false(exists("log.2"));
    assert_false(exists("snapshot.3.tmp"));
    assert_true(exists("snapshot.3") && exists("log.3"));
    /* the next send gets index 7, written to the last log */
    static const char object[] = "{\"msg\": \"m7\"}";
    struct broker_message m = {"a", 1, object, sizeof(object) - 1, false, true};
    assert_int_equal(broker_send(b, &m), BROKER_OK);
    assert_int_equal(store_commit(s), 0);
    assert_true(size_of("log.4") > (long)whole);
    store_free(s);
    broker_free(b);
    assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
    assert_string_equal(replay(b, "a"), "m4 m5 m6 m7");
    store_free(s);
    broker_free(b);
}

/* refused: the directory as made refuses the start, naming `what` */
static void refused(const char *what)
{
    struct broker *b;
    struct store *s;
    char err[256];
    assert_int_equal(load(&b, &s, err, sizeof(err)), -1);
    if (!strstr(err, what))
        fail_msg("\"%s\" is not in \"%s\"", what, err);
    store_free(s);
    broker_free(b);
    remove_dir(NULL);
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/test_store.XXXXXX")));
}

static void wrong_generations_refuse_the_start(void **state)
{
    (void)state;
    struct file f;
    begin(&f);
    add_plain(&f, RECORD_INDEX, "a", 1);

    save(&f, "snapshot.3", 0); /* a snapshot without its log */
    save(&f, "log.4", 0);
    refused("snapshot.3 has no log.3");

    save(&f, "log.3", 0); /* logs after a snapshot that is missing */
    save(&f, "log.4", 0);
    refused("log.3 has no snapshot.3 before it");

    save(&f, "log.1", 0); /* a log missing between two */
    save(&f, "log.3", 0);
    refused("log.2 is missing");

    save(&f, "log.1", 2); /* a torn log with a later one */
    save(&f, "log.2", 0);
    refused("log.1 is cut short at offset 12");

    save(&f, "snapshot.2", 2); /* a torn snapshot */
    save(&f, "log.2", 0);
    refused("snapshot.2 is cut short");

    f.bytes[RECORD_HEAD_LEN + RECORD_FRAME_LEN] ^= 1; /* damage in the last log */
    add_plain(&f, RECORD_INDEX, "b", 1);
    save(&f, "log.1", 0);
    refused("log.1 is damaged at offset 12");
}

static void list_cached(void *ctx, const struct broker_change *c)
{
    char *out = ctx;
    if (c->kind == BROKER_CACHED)
        snprintf(out + strlen(out), 64, "%.*s:%llu ", (int)c->topic_len, c->topic,
                 (unsigned long long)c->index);
}

/* cached: what the broker caches, "topic:index " each, without taking it */
static const char *cached(const struct broker *b)
{
    static char out[512];
    out[0] = '\0';
    broker_each_kept(b, list_cached, out);
    return out;
}

static void add_one(struct file *f, uint64_t index)
{
    static char line[128];
    snprintf(line, sizeof(line),
             "{\"command\": \"send\", \"topic\": \"j\", \"msg\": \"m%llu\", "
             "\"delivery\": \"one\", \"index\": %llu}\r\n",
             (unsigned long long)index, (unsigned long long)index);
    add(f, (struct record){.type = RECORD_MESSAGE,
                           .topic = "j",
                           .topic_len = 1,
                           .index = index,
                           .flags = RECORD_ONE,
                           .line = line,
                           .line_len = (uint32_t)strlen(line)});
}

/* a smaller cache drops messages while the log is read; one of them comes
 * back later in the same log (a "one" line put back when its taker left):
 * what the load kept is what every later load keeps, which removals
 * appended after the whole log could not say */
static void what_a_smaller_cache_keeps_at_load_is_kept(void **state)
{
    (void)state;
    struct file f;
    begin(&f); /* as a cache of 2 wrote it */
    add_one(&f, 0);
    add_message(&f, "j", 1, "m1");
    add_plain(&f, RECORD_REMOVED, "j", 0);
    add_message(&f, "j", 2, "m2");
    add_plain(&f, RECORD_REMOVED, "j", 1);
    add_message(&f, "j", 3, "m3");
    add_plain(&f, RECORD_REMOVED, "j", 2);
    add_plain(&f, RECORD_REMOVED, "j", 3);
    add_one(&f, 0); /* put back */
    save(&f, "log.1", 0);
    cache_size = 1;
    struct broker *b;
    struct store *s;
    char err[256];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
        assert_string_equal(cached(b), "j:0 ");
        store_free(s);
        broker_free(b);
    }
    assert_true(exists("snapshot.2") && !exists("log.1"));
    cache_size = 10;
    assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
    assert_string_equal(cached(b), "j:0 "); /* and a bigger cache brings back none */
    store_free(s);
    broker_free(b);
}

static long blocks_of(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_blocks * 512;
}

/* a send's record written past RLIMIT_FSIZE fails (EFBIG) and is cut back,
 * which gives back the disk allocated ahead: the store looks for room on
 * disk again after, instead of counting on what is gone */
static void a_failed_write_gives_back_the_room_and_it_is_sought_again(void **state)
{
    (void)state;
    struct broker *b;
    struct store *s;
    char err[256];
    assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
    char *bytes;
    struct buf *line = buf_new(2000, &bytes);
    assert_non_null(line);
    memset(bytes, 'x', 2000);
    assert_true(store_room(s, 1, line->len));
    assert_true(blocks_of("log.1") >= 8 << 20); /* allocated ahead */
    struct broker_change c = {.kind = BROKER_CACHED, .topic = "t", .topic_len = 1, .line = line};
    store_tell(s, &c);
    buf_unref(line);
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    struct rlimit low = {RECORD_HEAD_LEN + 100, was.rlim_max};
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    assert_int_equal(store_commit(s), -1);
    assert_true(store_failing(s));
    assert_true(blocks_of("log.1") < 8 << 20); /* the cut gave it back */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    assert_int_equal(store_commit(s), 0); /* written again */
    assert_true(store_room(s, 1, 2000));
    assert_true(blocks_of("log.1") >= 8 << 20); /* sought again */
    store_free(s);
    broker_free(b);
}

static void an_empty_directory_begins_log_1(void **state)
{
    (void)state;
    struct broker *b;
    struct store *s;
    char err[256];
    assert_int_equal(load(&b, &s, err, sizeof(err)), 0);
    assert_int_equal(size_of("log.1"), RECORD_HEAD_LEN);
    store_free(s);
    broker_free(b);
}

int main(void)
{
    warnings = tmpfile();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_snapshot_then_its_logs_and_a_torn_tail, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(wrong_generations_refuse_the_start, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(an_empty_directory_begins_log_1, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(a_failed_write_gives_back_the_room_and_it_is_sought_again,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(what_a_smaller_cache_keeps_at_load_is_kept, make_dir,
                                        remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
