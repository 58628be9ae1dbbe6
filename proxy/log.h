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

#define kx_error(...) kx_log(KX_LOG_ERROR, __VA_ARGS__)
#define kx_warn(...)  kx_log(KX_LOG_WARN, __VA_ARGS__)
#define kx_info(...)  kx_log(KX_LOG_INFO, __VA_ARGS__)
#define kx_debug(...)                                                                                                  \
	do {                                                                                                           \
		if (kx_log_enabled(KX_LOG_DEBUG))                                                                      \
			kx_log(KX_LOG_DEBUG, __VA_ARGS__);                                                             \
	} while (0)

#endif
