#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int kx_log_level_current = KX_LOG_INFO;

static const char *const kx_log_names[] = {
    [KX_LOG_ERROR] = "ERROR",
    [KX_LOG_WARN] = "WARN",
    [KX_LOG_INFO] = "INFO",
    [KX_LOG_DEBUG] = "DEBUG",
};

void kx_log_set_level(enum kx_log_level level)
{
	atomic_store(&kx_log_level_current, (int)level);
}

enum kx_log_level kx_log_get_level(void)
{
	return (enum kx_log_level)atomic_load(&kx_log_level_current);
}

bool kx_log_enabled(enum kx_log_level level)
{
	return (int)level <= atomic_load(&kx_log_level_current);
}

const char *kx_log_level_name(enum kx_log_level level)
{
	if ((unsigned)level >= sizeof(kx_log_names) / sizeof(kx_log_names[0]))
		return "?";
	return kx_log_names[level];
}

bool kx_log_due(atomic_llong *last, long long interval_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + interval_ms; /* never 0 */
	long long prev = atomic_load_explicit(last, memory_order_relaxed);
	return (prev == 0 || now - prev >= interval_ms) &&
	       atomic_compare_exchange_strong_explicit(last, &prev, now, memory_order_relaxed, memory_order_relaxed);
}

void kx_log(enum kx_log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (!kx_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
	                      kx_log_level_name(level));
	va_start(ap, fmt);
	int r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	/* One write per line; a short write to stderr is not worth retrying. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void kx_bug(const char *file, int line, const char *what)
{
	kx_log(KX_LOG_ERROR, "BUG at %s:%d: %s; aborting", file, line, what);
	abort();
}
