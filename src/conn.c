#include "mqd/conn.h"

#include "mqd/alloc.h"
#include "mqd/budget.h"
#include "mqd/proto.h"
#include "mqd/users.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct conn *conn_new(struct conn_env *env, int fd, const char *addr)
{
    struct conn *c = mqd_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->client = broker_client_new(env->broker, c);
    if (!c->client) {
        mqd_free(c);
        return NULL;
    }
    c->fd = fd;
    transport_tcp_init(&c->tcp, fd);
    c->tr = &c->tcp;
    c->env = env;
    c->last_active = env->now;
    framer_init(&c->framer, env->max_line, env->budget);
    outq_init(&c->out, &env->queue_bytes);
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->next = env->conns;
    if (env->conns)
        env->conns->prev = c;
    env->conns = c;
    env->nconns++;
    return c;
}

/* leave_broker: the client takes no more lines; its topics are left in
 * steps between loop passes (broker_depart) */
static void leave_broker(struct conn *c)
{
    broker_client_detach(c->client);
    c->client = NULL;
}

static void drop_input(struct conn *c)
{
    sched_unhold(&c->env->sched, c);
    mqd_free(c->input);
    c->input = NULL;
    c->input_off = c->input_len = 0;
}

/* return_once: a delivery "one" line the client was never written goes back
 * to the broker, to be re-routed */
static void return_once(void *ctx, struct buf *line)
{
    struct conn *c = ctx;
    if (line->once)
        broker_return(c->env->broker, buf_ref(line));
}

/* lose_once: the same line, released to make room for memory: kept, it
 * would free nothing, and room would be made again from the next client */
static void lose_once(void *ctx, struct buf *line)
{
    struct conn *c = ctx;
    if (line->once)
        broker_lose_one(c->env->broker);
}

/* release: gives back what the conn holds for its client; it keeps only
 * itself and its socket. Only the lines already handed to the kernel (or
 * in part) are lost with it, unless it goes `for_memory`: then its unwritten
 * "one" lines are lost too (counted), as cached ones evicted are. */
static void release(struct conn *c, bool for_memory)
{
    leave_broker(c);
    framer_reset(&c->framer);
    drop_input(c);
    outq_each_unwritten(&c->out, for_memory ? lose_once : return_once, c);
    outq_clear(&c->out);
}

void conn_release_closed(struct conn_env *env, const void *requester)
{
    for (struct conn *c = env->close_list; c; c = c->next_close) {
        if (c != requester)
            release(c, true);
    }
}

bool conn_keeping_up(void *conn)
{
    const struct conn *c = conn;
    return !c->closing && outq_empty(&c->out);
}

size_t conn_queue_growth(void *conn, size_t lines)
{
    struct conn *c = conn;
    return c->closing ? 0 : outq_growth(&c->out, lines);
}

void conn_free(struct conn *c)
{
    release(c, false);
    if (c->auth_job)
        auth_cancel(c->auth_job);
    users_unref(c->users);
    sched_unflush(&c->env->sched, c);
    if (c->ready_by)
        c->env->handshakes--;
    transport_free(c->tr);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->env->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->env->nconns--;
    mqd_free(c);
}

size_t conn_memory(const struct conn *c)
{
    size_t subs = c->client ? broker_client_subscriptions(c->client) : 0;
    return sizeof(*c) + c->out.bytes + c->out.cap * sizeof(*c->out.items) + c->framer.tail_cap +
           c->input_len + subs * CONN_SUBSCRIPTION_COST;
}

enum conn_eviction conn_evict_biggest(struct conn_env *env, const void *requester, size_t limit)
{
    struct conn *biggest = NULL;
    size_t most = 0;
    for (struct conn *c = env->conns; c; c = c->next) {
        size_t held;
        if (!c->closing && (held = conn_memory(c)) > most) {
            biggest = c;
            most = held;
        }
    }
    if (!biggest)
        return CONN_EVICTED_NONE;
    env->stats.evicted_for_memory++;
    uint64_t held_back;
    if (log_limit_allow(&env->memory_warnings, &held_back))
        log_warn(env->log,
                 "client %s disconnected: it held the most memory, %zu bytes of output, %zu of "
                 "input and %zu subscriptions, when --max-memory %zu was reached (%llu similar "
                 "not logged)",
                 biggest->addr, biggest->out.bytes, biggest->framer.tail_cap,
                 biggest->client ? broker_client_subscriptions(biggest->client) : 0, limit,
                 (unsigned long long)held_back);
    conn_close(biggest, "memory budget");
    if (biggest == requester)
        return CONN_EVICTED_REQUESTER;
    release(biggest, true);
    return CONN_EVICTED_OTHER;
}

void conn_close(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    log_debug(c->env->log, "client %s closed: %s", c->addr, why);
    c->closing = true;
    c->next_close = c->env->close_list;
    c->env->close_list = c;
}

bool conn_deliver(void *conn, struct buf *line)
{
    struct conn *c = conn;
    if (c->closing)
        return false;
    /* checked before queuing: a line it refuses is not in its queue, so
     * it cannot come back to the broker when the conn goes (broker_return) */
    if (c->out.bytes + line->len > c->env->max_output) {
        c->env->stats.slow_consumers++;
        uint64_t held;
        if (log_limit_allow(&c->env->output_warnings, &held))
            log_warn(c->env->log,
                     "client %s disconnected: slow consumer, %zu bytes queued, over --max-output "
                     "%zu (%llu similar not logged)",
                     c->addr, c->out.bytes + line->len, c->env->max_output,
                     (unsigned long long)held);
        conn_close(c, "slow consumer");
        return false;
    }
    if (outq_push(&c->out, line) < 0) {
        uint64_t held;
        if (log_limit_allow(&c->env->output_warnings, &held))
            log_warn(c->env->log,
                     "client %s disconnected: out of memory for its output, %zu bytes queued "
                     "(%llu similar not logged)",
                     c->addr, c->out.bytes, (unsigned long long)held);
        conn_close(c, "out of memory");
        return false;
    }
    sched_charge(&c->env->sched, SCHED_DELIVERY_WORK);
    sched_want_flush(&c->env->sched, c);
    return true;
}

static void reply(struct conn *c, enum proto_reply r)
{
    if (r != PROTO_REPLY_SUCCESS)
        c->env->stats.error_replies[r]++;
    (void)conn_deliver(c, proto_reply(r)); /* when it cannot, the conn is closed */
}

/* written_out: nothing is left to write, in its queue or in its transport
 * (which may gather what it took: TLS records) */
static bool written_out(const struct conn *c)
{
    return outq_empty(&c->out) && !(transport_events(c->tr) & EPOLLOUT);
}

/* start_draining: no more input; the conn leaves its topics at once and goes
 * when what it was already sent has been written. */
static void start_draining(struct conn *c)
{
    c->draining = true;
    leave_broker(c);
    framer_reset(&c->framer);
    if (written_out(c))
        conn_close(c, "done");
    else
        sched_want_flush(&c->env->sched, c);
}

static enum proto_reply broker_reply(enum broker_status status)
{
    switch (status) {
    case BROKER_OK: return PROTO_REPLY_SUCCESS;
    case BROKER_NO_MEMORY: break;
    case BROKER_TOO_MANY_TOPICS: return PROTO_REPLY_TOO_MANY_TOPICS;
    case BROKER_TOO_MANY_SUBSCRIPTIONS: return PROTO_REPLY_TOO_MANY_SUBSCRIPTIONS;
    case BROKER_NOT_KEPT: return PROTO_REPLY_NOT_PERSISTED;
    case BROKER_OUT_OF_ORDER: break; /* restores only */
    }
    return PROTO_REPLY_NO_MEMORY;
}

/* make_room_exactly: the slow path of make_room, out of line so that the
 * fast one stays a few instructions */
static __attribute__((noinline)) bool
make_room_exactly(struct conn *c, const struct proto_request *req, size_t line_len)
{
    size_t need =
        broker_room_needed(c->env->broker, c->client, req->topic, req->topic_len, line_len);
    return budget_make_room(c->env->budget, need, c);
}

/* make_room: whether the budget finds room for what a subscribe or send on
 * this topic may allocate. Far from the limit an O(1) bound settles it; the
 * exact figure, which looks the topic up and asks its receivers' queues, is
 * only worked out near it. */
static inline bool make_room(struct conn *c, const struct proto_request *req, size_t line_len)
{
    /* the queues: a fan-out doubles at most every slot array (2 x what they
     * hold) and starts one for every subscription; the requester's takes a
     * reply and a whole cache, doubling step by step (3 x what it holds, and
     * 3 slots a line) */
    size_t bound = broker_room_bound(c->env->broker, c->client, req->topic_len, line_len,
                                     OUTQ_FIRST_BYTES, 3 * sizeof(struct buf *)) +
                   5 * c->env->queue_bytes;
    return budget_has_room(c->env->budget, bound) || make_room_exactly(c, req, line_len);
}

static enum proto_reply subscribe(struct conn *c, const struct proto_request *req)
{
    struct broker *b = c->env->broker;
    if (!make_room(c, req, 0))
        return PROTO_REPLY_NO_MEMORY;
    enum broker_status status = broker_subscribe(b, c->client, req->topic, req->topic_len);
    if (status != BROKER_OK)
        return broker_reply(status);
    /* PROTOCOL.md: the reply comes before the replayed messages; a conn
     * that could not take the reply is closing and gets no replay */
    if (conn_deliver(c, proto_reply(PROTO_REPLY_SUCCESS)) && req->cache)
        broker_replay(b, c->client, req->topic, req->topic_len, req->last_seen);
    return PROTO_REPLY_SUCCESS;
}

static enum proto_reply send_message(struct conn *c, const struct proto_request *req)
{
    if (!make_room(c, req, req->object_len + BROKER_INDEX_ROOM))
        return PROTO_REPLY_NO_MEMORY;
    struct broker_message m = {req->topic,      req->topic_len, req->object,
                               req->object_len, req->one,       req->cache};
    enum broker_status status = broker_send(c->env->broker, &m);
    if (status != BROKER_OK)
        return broker_reply(status);
    reply(c, PROTO_REPLY_SUCCESS);
    return PROTO_REPLY_SUCCESS;
}

static bool may_subscribe(const void *user, const char *topic, size_t len)
{
    return user_may(user, USERS_SUBSCRIBE, topic, len);
}

/* fail_auth: one more failure: the last one allowed closes the conn once
 * its reply is written */
static void fail_auth(struct conn *c)
{
    reply(c, PROTO_REPLY_AUTH_FAILED);
    if (++c->auth_failures >= CONN_MAX_AUTH_FAILURES && !c->closing && !c->draining) {
        log_info(c->env->log, "client %s: %u failed logins, disconnected", c->addr,
                 c->auth_failures);
        start_draining(c);
    }
}

/* start_auth: hands the password to auth.h; the reply comes with the
 * result (conn_authenticated), and the conn's input waits for it */
static enum proto_reply start_auth(struct conn *c, const struct proto_request *req)
{
    if (!c->env->auth)
        return PROTO_REPLY_AUTH_NOT_ENABLED;
    switch (auth_check(c->env->auth, req->user, req->user_len, req->password, req->password_len,
                       c->peer, c->peer_len, c->env->now, c, &c->auth_job)) {
    case AUTH_ACCEPTED: return PROTO_REPLY_SUCCESS; /* under way */
    case AUTH_NO_MEMORY: return PROTO_REPLY_NO_MEMORY;
    case AUTH_LIMITED:
    case AUTH_REJECTED: break;
    }
    fail_auth(c);
    return PROTO_REPLY_SUCCESS;
}

void conn_authenticated(void *conn, enum auth_result result, struct users *users,
                        const struct user *user)
{
    struct conn *c = conn;
    struct sched *s = &c->env->sched;
    sched_turn_begin(s);
    if (result == AUTH_ACCEPTED) {
        users_unref(c->users);
        c->users = users_ref(users);
        c->user = user;
        if (c->client) /* another user's topics it may not have are left */
            broker_unsubscribe_unless(c->env->broker, c->client, may_subscribe, user);
        reply(c, PROTO_REPLY_SUCCESS);
    } else if (result == AUTH_NO_MEMORY) {
        reply(c, PROTO_REPLY_NO_MEMORY);
    } else {
        fail_auth(c);
    }
    if (c->closing)
        return;
    if (c->ended && !c->draining) /* its input ended with the auth */
        start_draining(c);
    else if (conn_runnable(c))
        sched_hold(s, c); /* what it sent after the auth runs next */
    else
        sched_rearm(s, c);
}

/* permitted: whether the logged-in user (if --users asks for one) may do
 * the command; the reply why not */
static enum proto_reply permitted(const struct conn *c, const struct proto_request *req)
{
    if (!c->env->auth || req->command == PROTO_AUTH)
        return PROTO_REPLY_SUCCESS;
    if (!c->user)
        return PROTO_REPLY_AUTH_REQUIRED;
    if ((req->command == PROTO_SEND &&
         !user_may(c->user, USERS_PUBLISH, req->topic, req->topic_len)) ||
        (req->command == PROTO_SUBSCRIBE &&
         !user_may(c->user, USERS_SUBSCRIBE, req->topic, req->topic_len)))
        return PROTO_REPLY_PERMISSION_DENIED;
    return PROTO_REPLY_SUCCESS;
}

/* run_request: runs a valid command; the reply when it failed (a success
 * is already queued) */
static enum proto_reply run_request(struct conn *c, const struct proto_request *req)
{
    enum proto_reply allowed = permitted(c, req);
    if (allowed != PROTO_REPLY_SUCCESS)
        return allowed;
    if (req->topic_len > c->env->max_topic_length)
        return PROTO_REPLY_TOPIC_TOO_LONG;
    switch (req->command) {
    case PROTO_SUBSCRIBE: return subscribe(c, req);
    case PROTO_SEND: return send_message(c, req);
    case PROTO_AUTH: return start_auth(c, req);
    case PROTO_UNSUBSCRIBE: break;
    }
    broker_unsubscribe(c->env->broker, c->client, req->topic, req->topic_len);
    reply(c, PROTO_REPLY_SUCCESS);
    return PROTO_REPLY_SUCCESS;
}

/* refuse: replies with the reason; at debug level the operator also sees
 * the start of the line, quoted, since it comes from the client (but with
 * --users, where a refused auth line would show its password). */
static void refuse(struct conn *c, enum proto_reply r, const char *line, size_t len)
{
    if (log_enabled(c->env->log, LOG_LEVEL_DEBUG) && c->env->auth) /* it may hold a password */
        log_debug(c->env->log, "client %s: %s (%zu bytes)", c->addr, proto_reply_reason(r), len);
    else if (log_enabled(c->env->log, LOG_LEVEL_DEBUG)) {
        char quoted[LOG_QUOTE_SIZE];
        log_debug(c->env->log, "client %s: %s: %s (%zu bytes)", c->addr, proto_reply_reason(r),
                  log_quote(quoted, line, len), len);
    }
    reply(c, r);
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* run_line: one framed line: "\r" and blanks stripped as PROTOCOL.md says,
 * then ignored, quit, or parsed and run. */
static void run_line(struct conn *c, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    while (len > 0 && is_blank(line[len - 1]))
        len--;
    while (len > 0 && is_blank(*line)) {
        line++;
        len--;
    }
    if (len == 0)
        return;
    if (len == 4 && memcmp(line, "quit", 4) == 0) {
        start_draining(c);
        return;
    }
    struct proto_request req;
    enum proto_status status = proto_parse(line, len, &req);
    if (status != PROTO_OK) {
        refuse(c, proto_status_reply(status), line, len);
        return;
    }
    enum proto_reply r = run_request(c, &req);
    proto_request_release(&req);
    if (r != PROTO_REPLY_SUCCESS)
        reply(c, r);
}

static void warn_line_too_long(struct conn *c)
{
    uint64_t held;
    if (log_limit_allow(&c->env->line_warnings, &held))
        log_warn(c->env->log,
                 "client %s: line over --max-line %zu bytes discarded (%llu similar not logged)",
                 c->addr, c->env->max_line, (unsigned long long)held);
}

/* on_frame: runs a line, or puts it back when the turn's budget is spent */
static enum framer_next on_frame(void *ctx, enum framer_event event, const char *line, size_t len)
{
    struct conn *c = ctx;
    struct sched *s = &c->env->sched;
    switch (event) {
    case FRAMER_LINE:
        if (c->auth_job || (!c->unpaced && !sched_may_run(s, len)))
            return FRAMER_PUT_BACK; /* a password check waits first */
        run_line(c, line, len);
        sched_charge(s, len * SCHED_LINE_BYTE_WORK);
        break;
    case FRAMER_TOO_LONG:
        warn_line_too_long(c);
        reply(c, PROTO_REPLY_LINE_TOO_LONG);
        break;
    case FRAMER_NO_MEMORY: reply(c, PROTO_REPLY_NO_MEMORY); break;
    }
    return c->closing || c->draining ? FRAMER_STOP : FRAMER_GO_ON;
}

/* hold_input: keeps what the turn left for a later one; without memory for
 * it, it runs now */
static void hold_input(struct conn *c, const char *data, size_t len)
{
    char *copy = NULL;
    if (budget_make_room(c->env->budget, len, c) && !c->closing && (copy = mqd_malloc(len))) {
        memcpy(copy, data, len);
        c->input = copy;
        c->input_off = 0;
        c->input_len = len;
        if (!c->auth_job) /* else its check's end resumes it */
            sched_hold(&c->env->sched, c);
        return;
    }
    if (c->closing)
        return;
    if (c->auth_job) { /* the lines cannot run before the check ends */
        conn_close(c, "out of memory");
        return;
    }
    c->unpaced = true;
    framer_feed(&c->framer, data, len, on_frame, c);
    c->unpaced = false;
}

void conn_receive(struct conn *c, const char *data, size_t len)
{
    c->env->stats.bytes_in += len;
    c->last_active = c->env->now;
    if (c->closing || c->draining)
        return;
    sched_charge(&c->env->sched, len); /* the pass's, not the turn's */
    sched_turn_begin(&c->env->sched);
    size_t taken = framer_feed(&c->framer, data, len, on_frame, c);
    if (taken < len && !c->closing && !c->draining)
        hold_input(c, data + taken, len - taken);
}

void conn_resume(struct conn *c)
{
    if (c->closing || c->draining || !c->input) {
        drop_input(c);
        return;
    }
    sched_turn_begin(&c->env->sched);
    c->input_off +=
        framer_feed(&c->framer, c->input + c->input_off, c->input_len - c->input_off, on_frame, c);
    if (c->input_off == c->input_len || c->closing || c->draining)
        drop_input(c);
}

void conn_end_of_input(struct conn *c)
{
    if (c->closing || c->draining)
        return;
    c->unpaced = true; /* the last line cannot wait: nothing comes after it */
    bool go_on = framer_finish(&c->framer, on_frame, c);
    c->unpaced = false;
    c->ended = true;
    if (go_on && !c->auth_job) /* else the check's end drains it */
        start_draining(c);
}

enum outq_status conn_flush(struct conn *c)
{
    size_t before = c->out.bytes;
    enum outq_status status = outq_flush(&c->out, c->tr, SCHED_FLUSH_BYTES);
    if (c->out.bytes < before) {
        c->env->stats.bytes_out += before - c->out.bytes;
        c->last_active = c->env->now;
    }
    if (status == OUTQ_ERROR)
        conn_failed(c, errno);
    else if (status == OUTQ_EMPTY && c->draining && written_out(c))
        conn_close(c, "done");
    return status;
}

void conn_failed(struct conn *c, int err)
{
    if (err == ETIMEDOUT && !c->closing)
        c->env->stats.timed_out++;
    const char *why = transport_why(c->tr);
    conn_close(c, why ? why : strerror(err));
}

void conn_close_idle(struct conn_env *env, unsigned timeout)
{
    for (struct conn *c = env->conns; c; c = c->next) {
        if (!c->closing && env->now - c->last_active >= (int64_t)timeout * 1000) {
            env->stats.idle_closes++;
            conn_close(c, "idle timeout");
        }
    }
}
