/*
 * Helpers shared by the librdkafka perf tools; see perf_common.h.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf_common.h"

const char *perf_prog = "kstretch-perf";
volatile sig_atomic_t perf_interrupted;

static uint64_t perf_rng_state;
static char perf_watchdog_msg[256];
static size_t perf_watchdog_len;

static void perf_on_signal(int sig)
{
	perf_interrupted = 1;
	signal(sig, SIG_DFL); /* a second signal ends the process */
}

static void perf_on_alarm(int sig)
{
	(void)sig;
	/* Only async-signal-safe calls here. */
	if (write(STDERR_FILENO, perf_watchdog_msg, perf_watchdog_len) < 0) {
		/* nothing more to do */
	}
	_exit(PERF_EXIT_FAIL);
}

void perf_init(const char *prog)
{
	perf_prog = prog;
	signal(SIGINT, perf_on_signal);
	signal(SIGTERM, perf_on_signal);
	signal(SIGPIPE, SIG_IGN);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	perf_rng_state = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	if (perf_rng_state == 0)
		perf_rng_state = 0x9e3779b97f4a7c15u;
}

int64_t perf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * PERF_NS_PER_S + ts.tv_nsec;
}

uint64_t perf_random(void)
{
	uint64_t x = perf_rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	perf_rng_state = x;
	return x * 0x2545f4914f6cdd1du;
}

void perf_log(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", perf_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void perf_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", perf_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", perf_prog);
	exit(PERF_EXIT_USAGE);
}

bool perf_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0)
		return false;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return true;
	}
	if (arg[n] != '\0')
		return false;
	if (*i + 1 >= argc)
		perf_usage_error("option %s needs a value", name);
	*value = argv[++*i];
	return true;
}

bool perf_flag(char **argv, int i, const char *name)
{
	return strcmp(argv[i], name) == 0;
}

int64_t perf_parse_int(const char *opt, const char *s, int64_t min, int64_t max)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		perf_usage_error("%s: '%s' is not an integer in %lld..%lld", opt, s, (long long)min, (long long)max);
	return v;
}

double perf_parse_double(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v))
		perf_usage_error("%s: '%s' is not a number", opt, s);
	return v;
}

void perf_conf_set(rd_kafka_conf_t *conf, const char *origin, const char *key, const char *value)
{
	char errstr[512];
	if (*key == '\0')
		perf_usage_error("%s: empty property name", origin);
	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		perf_usage_error("%s: %s=%s: %s", origin, key, value, errstr);
}

void perf_conf_set_kv(rd_kafka_conf_t *conf, const char *origin, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		perf_usage_error("%s: '%s' is not key=value", origin, kv);
	char *key = strndup(kv, (size_t)(eq - kv));
	if (!key) {
		perf_log("out of memory");
		exit(PERF_EXIT_FAIL);
	}
	perf_conf_set(conf, origin, key, eq + 1);
	free(key);
}

static char *perf_skip_space(char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\f')
		s++;
	return s;
}

static void perf_trim_end(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* True when s ends in an odd number of backslashes (a continued line). */
static bool perf_continues(const char *s)
{
	size_t n = strlen(s), k = 0;
	while (k < n && s[n - 1 - k] == '\\')
		k++;
	return k % 2 == 1;
}

/* One logical line of a .properties file (continuations already joined). */
static void perf_conf_line(rd_kafka_conf_t *conf, const char *path, int lineno, char *line)
{
	char *key = perf_skip_space(line);
	if (*key == '\0' || *key == '#' || *key == '!')
		return;
	char *end = key + strcspn(key, "=: \t\f");
	char *value = perf_skip_space(end);
	if (*value == '=' || *value == ':')
		value = perf_skip_space(value + 1);
	*end = '\0';
	perf_trim_end(value);
	char origin[512];
	snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
	perf_conf_set(conf, origin, key, value);
}

void perf_conf_load_file(rd_kafka_conf_t *conf, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		perf_usage_error("cannot read %s: %s", path, strerror(errno));
	char *line = NULL, *logical = NULL;
	size_t cap = 0, len = 0;
	int lineno = 0, first = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		char *part = logical ? perf_skip_space(line) : line;
		if (!logical)
			first = lineno;
		size_t n = strlen(part);
		char *grown = realloc(logical, len + n + 1);
		if (!grown) {
			perf_log("out of memory");
			exit(PERF_EXIT_FAIL);
		}
		logical = grown;
		memcpy(logical + len, part, n + 1);
		len += n;
		if (perf_continues(logical)) {
			logical[--len] = '\0';
			continue;
		}
		perf_conf_line(conf, path, first, logical);
		free(logical);
		logical = NULL;
		len = 0;
	}
	if (logical) /* the file ended inside a continued line */
		perf_conf_line(conf, path, first, logical);
	bool failed = ferror(f);
	fclose(f);
	free(line);
	free(logical);
	if (failed)
		perf_usage_error("cannot read %s", path);
}

bool perf_conf_has(const rd_kafka_conf_t *conf, const char *key)
{
	char buf[4096];
	size_t size = sizeof(buf);
	return rd_kafka_conf_get(conf, key, buf, &size) == RD_KAFKA_CONF_OK && size > 1;
}

bool perf_client_error(rd_kafka_t *rk, int err, const char *reason)
{
	static int seen[64];
	static size_t seen_cnt;
	char fatal[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		perf_log("kafka fatal error: %s (%s)", fatal, rd_kafka_err2name((rd_kafka_resp_err_t)err));
		return true;
	}
	for (size_t i = 0; i < seen_cnt; i++)
		if (seen[i] == err)
			return false;
	if (seen_cnt < sizeof(seen) / sizeof(seen[0]))
		seen[seen_cnt++] = err;
	perf_log("kafka error: %s (%s; repeats not shown)", reason, rd_kafka_err2name((rd_kafka_resp_err_t)err));
	return false;
}

void perf_watchdog_arm(unsigned seconds, const char *what)
{
	int n = snprintf(perf_watchdog_msg, sizeof(perf_watchdog_msg), "%s: %s took more than %u s: giving up\n",
	                 perf_prog, what, seconds);
	perf_watchdog_len = n < 0                                   ? 0
	                    : (size_t)n < sizeof(perf_watchdog_msg) ? (size_t)n
	                                                            : sizeof(perf_watchdog_msg) - 1;
	signal(SIGALRM, perf_on_alarm);
	alarm(seconds);
}

void perf_watchdog_disarm(void)
{
	alarm(0);
}
