/*
 * log: leveled, line-at-a-time logging to stderr.
 *
 * One call writes one line with a UTC timestamp and the level, in a single
 * write(2), so lines from different worker threads never interleave.
 */
#ifndef KX_LOG_H
#define KX_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

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

void kx_log(enum kx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * True at most once per interval_ms for one `last` (a static the caller
 * owns, 0 at first): for a line that a peer could otherwise make kstretch
 * write for every message it sends.
 */
bool kx_log_due(atomic_llong *last, long long interval_ms);

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
