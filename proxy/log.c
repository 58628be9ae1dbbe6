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

static atomic_int kx_log_format_current = KX_LOG_TEXT;

void kx_log_set_format(enum kx_log_format format)
{
	atomic_store(&kx_log_format_current, (int)format);
}

static long long kx_log_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool kx_log_limit_pass(struct kx_log_limit *l, uint64_t key, long long interval_ms, long long *suppressed)
{
	long long now = kx_log_now_ms();
	struct kx_log_limit_kind *k = NULL, *reuse = NULL;
	bool pass = false;
	key |= 1; /* never 0, the free mark */
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < KX_LOG_LIMIT_KINDS && !k; i++) {
		struct kx_log_limit_kind *c = &l->kinds[i];
		if (c->key == key)
			k = c;
		else if (!reuse && (c->key == 0 || (now - c->last_ms >= interval_ms && c->suppressed == 0)))
			reuse = c; /* free, or quiet for an interval with nothing left to report */
	}
	if (!k && reuse) {
		*reuse = (struct kx_log_limit_kind){.key = key, .last_ms = now - interval_ms};
		k = reuse;
	}
	if (k && now - k->last_ms >= interval_ms) {
		*suppressed = k->suppressed;
		k->suppressed = 0;
		k->last_ms = now;
		pass = true;
	} else if (k) {
		k->suppressed++;
	} else {
		/* Every slot holds a kind seen within the interval: count it with
		 * the busiest, whose next line reports it. */
		struct kx_log_limit_kind *busiest = &l->kinds[0];
		for (int i = 1; i < KX_LOG_LIMIT_KINDS; i++)
			if (l->kinds[i].suppressed > busiest->suppressed)
				busiest = &l->kinds[i];
		busiest->suppressed++;
	}
	pthread_mutex_unlock(&l->lock);
	return pass;
}

uint64_t kx_log_kind(const char *msg, const char *client)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	size_t clen = client ? strlen(client) : 0;
	for (const char *p = msg; *p;) {
		if (clen && strncmp(p, client, clen) == 0) {
			p += clen;
			continue;
		}
		if (!(*p >= '0' && *p <= '9')) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ULL;
		}
		p++;
	}
	return h;
}

/* A line being built: it never overflows, a long message is cut. */
struct kx_line {
	char buf[4096];
	size_t n;
};

static void kx_line_add(struct kx_line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kx_line_add(struct kx_line *l, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(l->buf) - 1 - l->n; /* one byte kept for the newline */
	va_start(ap, fmt);
	int r = vsnprintf(l->buf + l->n, room + 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		l->n += (size_t)r < room ? (size_t)r : room;
}

/* The length of the well-formed UTF-8 sequence at s (2..4), or 0. */
static size_t kx_utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
	    (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* s as the inside of a JSON string: quotes, backslashes and control bytes
 * escaped; a byte that is not well-formed UTF-8 (a peer's name) becomes U+FFFD. */
static void kx_line_json_string(struct kx_line *l, const char *s)
{
	for (; *s && l->n < sizeof(l->buf) - 8; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80) {
			size_t n = kx_utf8_len((const unsigned char *)s);
			if (n == 0) {
				kx_line_add(l, "\\ufffd");
				continue;
			}
			memcpy(l->buf + l->n, s, n);
			l->n += n;
			s += n - 1;
		} else if (c == '"' || c == '\\')
			kx_line_add(l, "\\%c", c);
		else if (c == '\n')
			kx_line_add(l, "\\n");
		else if (c == '\t')
			kx_line_add(l, "\\t");
		else if (c < 0x20 || c == 0x7f)
			kx_line_add(l, "\\u%04x", c);
		else
			l->buf[l->n++] = (char)c;
	}
}

static void kx_log_write(enum kx_log_level level, const struct kx_log_id *id, long long suppressed, const char *msg)
{
	struct kx_line l = {.n = 0};
	struct timespec ts;
	struct tm tm;
	char when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
	bool json = atomic_load(&kx_log_format_current) == KX_LOG_JSON;
	bool has_client = id && id->client && id->client[0];
	if (json) {
		kx_line_add(&l, "{\"time\":\"%s\",\"level\":\"", when);
		for (const char *p = kx_log_level_name(level); *p; p++)
			l.buf[l.n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		kx_line_add(&l, "\"");
		if (has_client) {
			kx_line_add(&l, ",\"client\":\"");
			kx_line_json_string(&l, id->client);
			kx_line_add(&l, "\"");
		}
		if (id && id->listener > 0)
			kx_line_add(&l, ",\"listener\":%d", id->listener);
		if (id && id->broker >= 0)
			kx_line_add(&l, ",\"broker\":%d", id->broker);
		if (suppressed > 0)
			kx_line_add(&l, ",\"suppressed\":%lld", suppressed);
		kx_line_add(&l, ",\"message\":\"");
		kx_line_json_string(&l, msg);
		kx_line_add(&l, "\"}");
	} else {
		kx_line_add(&l, "%s %-5s ", when, kx_log_level_name(level));
		if (id && (id->listener > 0 || id->broker >= 0)) {
			kx_line_add(&l, "[");
			if (id->listener > 0)
				kx_line_add(&l, "listener=%d%s", id->listener, id->broker >= 0 ? " " : "");
			if (id->broker >= 0)
				kx_line_add(&l, "broker=%d", id->broker);
			kx_line_add(&l, "] ");
		}
		kx_line_add(&l, "%s", msg);
		if (suppressed > 0)
			kx_line_add(&l, " (%lld more like this suppressed since the last)", suppressed);
	}
	l.buf[l.n++] = '\n'; /* kx_line_add keeps a byte for it */
	/* One write per line; a short write to stderr is not worth retrying. */
	ssize_t r = write(STDERR_FILENO, l.buf, l.n);
	(void)r;
}

void kx_log(enum kx_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!kx_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kx_log_write(level, NULL, 0, msg);
}

void kx_log_at(enum kx_log_level level, const struct kx_log_id *id, long long suppressed, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!kx_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kx_log_write(level, id, suppressed, msg);
}

void kx_bug(const char *file, int line, const char *what)
{
	kx_log(KX_LOG_ERROR, "BUG at %s:%d: %s; aborting", file, line, what);
	abort();
}

void kx_log_limited_at(struct kx_log_limit *l, enum kx_log_level level, const struct kx_log_id *id, const char *fmt,
                       ...)
{
	char msg[2048];
	va_list ap;
	long long suppressed = 0;

	if (!kx_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One kind per broker: two brokers down are two lines a second. */
	uint64_t key = kx_log_kind(msg, id ? id->client : NULL) ^ ((uint64_t)(id ? id->broker + 2 : 0) << 56);
	if (kx_log_limit_pass(l, key, KX_LOG_REPEAT_MS, &suppressed))
		kx_log_write(level, id, suppressed, msg);
}
