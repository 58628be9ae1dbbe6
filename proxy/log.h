/*
 * log: leveled, line-at-a-time logging to stderr.
 *
 * One call writes one line with a UTC timestamp and the level, in a single
 * write(2), so lines from different worker threads never interleave.
 *
 * Two formats (log.format): text
 *
 *   2026-01-02T03:04:05.678Z WARN  [listener=19001 broker=2] session 10.0.0.7:51234: cannot connect to ...
 *
 * and json, one object per line, the same facts as fields:
 *
 *   {"time":"2026-01-02T03:04:05.678Z","level":"warn","client":"10.0.0.7:51234",
 *    "listener":19001,"broker":2,"message":"session 10.0.0.7:51234: cannot connect to ..."}
 *
 * A line about a connection carries its identity (struct kx_log_id): the
 * client's address, the kstretch port it connected to and the broker it is
 * forwarded to, each where known. A line a peer could make kstretch repeat
 * for every request or connection goes through a struct kx_log_limit: one
 * line per interval, the next one saying how many were suppressed.
 */
#ifndef KX_LOG_H
#define KX_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum kx_log_level {
	KX_LOG_ERROR,
	KX_LOG_WARN,
	KX_LOG_INFO,
	KX_LOG_DEBUG,
};

void kx_log_set_level(enum kx_log_level level);
enum kx_log_level kx_log_get_level(void);
bool kx_log_enabled(enum kx_log_level level);
const char *kx_log_level_name(enum kx_log_level level);

/* log.format: how each line is written. */
enum kx_log_format {
	KX_LOG_TEXT,
	KX_LOG_JSON,
};

void kx_log_set_format(enum kx_log_format format);

void kx_log(enum kx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Who a line is about: NULL/0/-1 for what is not known. */
struct kx_log_id {
	const char *client; /* the client's address, "HOST:PORT" */
	int listener;       /* the kstretch port it connected to; 0: none */
	int broker;         /* the broker node id it is forwarded to; -1: none or not yet */
};

/*
 * One line with the connection's identity; suppressed > 0 adds how many like
 * lines a kx_log_limit held back before it.
 */
void kx_log_at(enum kx_log_level level, const struct kx_log_id *id, long long suppressed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * True at most once per interval_ms for one `last` (a static the caller
 * owns, 0 at first): for a line that a peer could otherwise make kstretch
 * write for every message it sends.
 */
bool kx_log_due(atomic_llong *last, long long interval_ms);

/*
 * A repeat limit for one log call site (a static at the call site): a line
 * passes at most once per interval_ms for each kind of message, the kind
 * being the message without its digits and without the client's address,
 * and its broker (so "cannot connect to node 2" repeats are one kind whatever
 * the client, node 3's another, and "peer did not return a certificate" and
 * "certificate verify failed" are two). The next line of a kind that passes says how many were held
 * back. At most KX_LOG_LIMIT_KINDS kinds a site are tracked at once; past
 * that, lines are held back and counted as well.
 */
#define KX_LOG_LIMIT_KINDS 8

struct kx_log_limit_kind {
	uint64_t key; /* 0: free */
	long long last_ms;
	long long suppressed;
};

struct kx_log_limit {
	pthread_mutex_t lock;
	struct kx_log_limit_kind kinds[KX_LOG_LIMIT_KINDS];
};

#define KX_LOG_LIMIT_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}

/*
 * Whether a line of kind key passes l now (interval_ms since the last of its
 * kind); when it does, *suppressed is how many of its kind were held back
 * since (and is cleared).
 */
bool kx_log_limit_pass(struct kx_log_limit *l, uint64_t key, long long interval_ms, long long *suppressed);

/* The kind of msg for kx_log_limit_pass(): its text without digits or client. */
uint64_t kx_log_kind(const char *msg, const char *client);

/* How often a line of one kind may repeat. */
#define KX_LOG_REPEAT_MS 1000

/* kx_log_at() behind l, with the interval KX_LOG_REPEAT_MS. */
void kx_log_limited_at(struct kx_log_limit *l, enum kx_log_level level, const struct kx_log_id *id, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

/*
 * A line that a broker outage or a flood of bad clients would otherwise write
 * once per request or connection: behind a kx_log_limit of its call site.
 */
#define kx_log_limited(level, id, ...)                                                                                 \
	do {                                                                                                           \
		static struct kx_log_limit kx_limit_ = KX_LOG_LIMIT_INIT;                                              \
		if (kx_log_enabled(level))                                                                             \
			kx_log_limited_at(&kx_limit_, level, id, __VA_ARGS__);                                         \
	} while (0)

/*
 * An invariant of kstretch's own state (never of its input: hostile bytes
 * get an error and a closed connection, not this). Broken, it logs what and
 * where and aborts: going on would corrupt sessions or lose data silently.
 */
#define KX_BUG_ON(cond)                                                                                                \
	do {                                                                                                           \
		if (__builtin_expect(!!(cond), 0))                                                                     \
			kx_bug(__FILE__, __LINE__, #cond);                                                             \
	} while (0)
__attribute__((noreturn)) void kx_bug(const char *file, int line, const char *what);

/* On a function whose false (or true) result means "closed, do not touch
 * it again": the caller must look. */
#define KX_MUST_CHECK __attribute__((warn_unused_result))

#define kx_error(...) kx_log(KX_LOG_ERROR, __VA_ARGS__)
#define kx_warn(...)  kx_log(KX_LOG_WARN, __VA_ARGS__)
#define kx_info(...)  kx_log(KX_LOG_INFO, __VA_ARGS__)
#define kx_debug(...)                                                                                                  \
	do {                                                                                                           \
		if (kx_log_enabled(KX_LOG_DEBUG))                                                                      \
			kx_log(KX_LOG_DEBUG, __VA_ARGS__);                                                             \
	} while (0)

#endif
