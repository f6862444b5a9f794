#include "mqd/auth.h"

#include "mqd/alloc.h"
#include "mqd/ratelimit.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* a check, from auth_check to auth_collect. The loop's fields are only
 * touched on the loop; the thread reads the hash and password and writes
 * `result`, under the lock when it hands the job back. */
struct auth_job {
    struct auth_job *next;
    void *ctx;               /* NULL: cancelled (loop only) */
    bool cancelled;          /* the same, for the thread (atomic): not begun, it is skipped */
    bool ran;                /* the thread checked it, rather than skipped it */
    struct auth_job **owner; /* the caller's pointer to the job, cleared at the end */
    struct users *users;     /* a reference, for the user and hash below */
    const struct user *user; /* NULL: no such user, checked against the stand-in */
    const struct passwd *hash;
    char *password;
    size_t password_len;
    unsigned char peer[NET_PEER_KEY_LEN];
    size_t peer_len;
    enum auth_result result;
};

struct job_list {
    struct auth_job *head;
    struct auth_job **tail;
};

struct auth {
    const char *path;
    const struct log *log;
    struct users *users;
    struct ratelimit *limit;
    auth_done_fn done;
    int event_fd;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards the two lists and `stop` */
    pthread_cond_t wake;
    struct job_list todo, finished;
    bool stop;
    struct auth_stats stats;
};

static void list_init(struct job_list *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void list_push(struct job_list *l, struct auth_job *j)
{
    j->next = NULL;
    *l->tail = j;
    l->tail = &j->next;
}

static struct auth_job *list_take_all(struct job_list *l)
{
    struct auth_job *all = l->head;
    list_init(l);
    return all;
}

static void job_free(struct auth_job *j)
{
    if (j->owner)
        *j->owner = NULL;
    OPENSSL_cleanse(j->password, j->password_len);
    mqd_free(j->password);
    users_unref(j->users);
    mqd_free(j);
}

/* run_check: the slow part, on the thread */
static enum auth_result run_check(const struct auth_job *j)
{
    int right = passwd_check(j->hash, j->password, j->password_len);
    if (right < 0)
        return AUTH_NO_MEMORY;
    return right && j->user ? AUTH_ACCEPTED : AUTH_REJECTED;
}

/* checker: the thread: one check at a time until told to stop */
static void *checker(void *arg)
{
    struct auth *a = arg;
    alloc_thread_is_helper();
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->stop && !a->todo.head)
            pthread_cond_wait(&a->wake, &a->lock);
        if (a->stop)
            break;
        struct auth_job *j = a->todo.head;
        if (!(a->todo.head = j->next))
            a->todo.tail = &a->todo.head;
        pthread_mutex_unlock(&a->lock);
        bool skip = __atomic_load_n(&j->cancelled, __ATOMIC_RELAXED);
        enum auth_result result = skip ? AUTH_REJECTED : run_check(j);
        pthread_mutex_lock(&a->lock);
        j->result = result;
        j->ran = !skip;
        list_push(&a->finished, j);
        uint64_t one = 1;
        ssize_t n = write(a->event_fd, &one, sizeof(one));
        (void)n; /* an eventfd write fails only when its count is full: it is readable then */
    }
    pthread_mutex_unlock(&a->lock);
    OPENSSL_thread_stop();
    return NULL;
}

/* load: the users file, with a warning when its lines' costs differ */
static struct users *load(const struct auth *a, char *err, size_t err_len)
{
    struct users *us = users_load(a->path, err, err_len);
    if (us && users_costs_differ(us))
        log_warn(a->log,
                 "users file %s: the hash costs differ between its lines, so a client can "
                 "tell by timing which names are users: hash them all alike "
                 "(mqd --hash-password)",
                 a->path);
    return us;
}

/* warm_up: each hash once, cheaply, on the loop's thread: what the library
 * sets up and keeps for them the first time is then the loop's, and the
 * checker thread only allocates what it frees itself (alloc.h) */
static void warm_up(void)
{
    static const char pbkdf2[] = "$pbkdf2-sha256$i=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA";
    static const char scrypt[] = "$scrypt$ln=1,r=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA";
    struct passwd h;
    if (passwd_parse(pbkdf2, strlen(pbkdf2), &h) == 0)
        (void)passwd_check(&h, "", 0);
    if (passwd_parse(scrypt, strlen(scrypt), &h) == 0)
        (void)passwd_check(&h, "", 0);
}

struct auth *auth_new(const char *users_path, const struct log *log,
                      const uint8_t seed[SIPHASH_KEY_LEN], char *err, size_t err_len)
{
    struct auth *a = mqd_calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    a->path = users_path;
    a->log = log;
    a->event_fd = -1;
    list_init(&a->todo);
    list_init(&a->finished);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    if (!(a->users = load(a, err, err_len))) {
        auth_free(a);
        return NULL;
    }
    warm_up();
    a->limit = ratelimit_new(seed, AUTH_BURST, AUTH_REFILL_MS);
    a->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int e = a->limit && a->event_fd >= 0 ? pthread_create(&a->thread, NULL, checker, a) : ENOMEM;
    if (e != 0) {
        snprintf(err, err_len, "cannot start the password checks: %s", strerror(e));
        auth_free(a);
        return NULL;
    }
    a->started = true;
    return a;
}

static void drop_all(struct auth_job *j)
{
    while (j) {
        struct auth_job *next = j->next;
        job_free(j);
        j = next;
    }
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    drop_all(list_take_all(&a->todo));
    drop_all(list_take_all(&a->finished));
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    if (a->event_fd >= 0)
        close(a->event_fd);
    ratelimit_free(a->limit);
    users_unref(a->users);
    mqd_free(a);
}

int auth_fd(const struct auth *a) { return a->event_fd; }

int auth_reload(struct auth *a, char *err, size_t err_len)
{
    struct users *fresh = load(a, err, err_len);
    if (!fresh)
        return -1;
    users_unref(a->users);
    a->users = fresh;
    return 0;
}

/* limit_key: the address as the failure limit knows it: an IPv6 address
 * by its /64, which one holder has whole */
static size_t limit_key(const unsigned char *peer, size_t len)
{
    return len == NET_PEER_KEY_LEN && peer[0] == 6 ? 1 + 8 : len;
}

enum auth_result auth_check(struct auth *a, const char *name, size_t name_len, const char *password,
                            size_t password_len, const unsigned char *peer, size_t peer_len,
                            int64_t now_ms, void *ctx, struct auth_job **job)
{
    if (!ratelimit_allows(a->limit, peer, limit_key(peer, peer_len), now_ms)) {
        a->stats.limited++;
        return AUTH_LIMITED;
    }
    struct auth_job *j = mqd_calloc(1, sizeof(*j));
    char *copy = j ? mqd_malloc(password_len ? password_len : 1) : NULL;
    if (!copy) {
        mqd_free(j);
        return AUTH_NO_MEMORY;
    }
    memcpy(copy, password, password_len);
    j->ctx = ctx;
    j->owner = job;
    j->users = users_ref(a->users);
    j->user = users_find(a->users, name, name_len);
    j->hash = j->user ? user_passwd(j->user) : users_stand_in(a->users);
    j->password = copy;
    j->password_len = password_len;
    j->peer_len = limit_key(peer, peer_len < sizeof(j->peer) ? peer_len : sizeof(j->peer));
    memcpy(j->peer, peer, j->peer_len);
    /* counted as a failure now, given back if it succeeds: checks asked at
     * once from one address cannot all run before the first is counted */
    ratelimit_charge(a->limit, j->peer, j->peer_len, now_ms);
    *job = j;
    a->stats.waiting++;
    pthread_mutex_lock(&a->lock);
    list_push(&a->todo, j);
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    return AUTH_ACCEPTED;
}

void auth_cancel(struct auth_job *job)
{
    job->ctx = NULL;
    __atomic_store_n(&job->cancelled, true, __ATOMIC_RELAXED);
    *job->owner = NULL;
    job->owner = NULL;
}

/* tell: one result to the loop; the job is then freed */
static void tell(struct auth *a, struct auth_job *j, auth_done_fn done, int64_t now_ms)
{
    a->stats.waiting--;
    if (j->ran && j->result == AUTH_REJECTED)
        a->stats.rejected++; /* its charge stays */
    else
        ratelimit_refund(a->limit, j->peer, j->peer_len, now_ms);
    if (j->ran && j->result == AUTH_ACCEPTED)
        a->stats.accepted++;
    if (j->owner)
        *j->owner = NULL;
    j->owner = NULL;
    if (j->ctx)
        done(j->ctx, j->result, j->users, j->result == AUTH_ACCEPTED ? j->user : NULL);
    job_free(j);
}

void auth_collect(struct auth *a, auth_done_fn done, int64_t now_ms)
{
    uint64_t count;
    while (read(a->event_fd, &count, sizeof(count)) > 0)
        ;
    pthread_mutex_lock(&a->lock);
    struct auth_job *j = list_take_all(&a->finished);
    pthread_mutex_unlock(&a->lock);
    while (j) {
        struct auth_job *next = j->next;
        tell(a, j, done, now_ms);
        j = next;
    }
}

void auth_get_stats(const struct auth *a, struct auth_stats *out) { *out = a->stats; }
