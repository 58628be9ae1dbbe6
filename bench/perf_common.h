/*
 * What the two librdkafka perf tools (producer_perf.c, consumer_perf.c) share:
 * a monotonic clock, command-line parsing that exits 2 on bad input, client
 * configuration from k=v pairs and Java-style .properties files, SIGINT/SIGTERM
 * handling, and a watchdog that bounds the shutdown of a librdkafka handle.
 *
 * Exit codes of both tools: 0 the run completed, 1 the run failed (delivery
 * errors, timeout, interrupted, client error), 2 bad arguments or configuration.
 */
#ifndef KSTRETCH_BENCH_PERF_COMMON_H
#define KSTRETCH_BENCH_PERF_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#define PERF_EXIT_OK    0
#define PERF_EXIT_FAIL  1
#define PERF_EXIT_USAGE 2

#define PERF_NS_PER_MS INT64_C(1000000)
#define PERF_NS_PER_S  INT64_C(1000000000)
#define PERF_MB        (1024.0 * 1024.0) /* the Java tools' MB */

/* Program name used as the prefix of every message; set by perf_init(). */
extern const char *perf_prog;
/* Set by the first SIGINT or SIGTERM; a second one terminates the process. */
extern volatile sig_atomic_t perf_interrupted;

/* Names the program, installs the signal handlers, seeds perf_random(). */
void perf_init(const char *prog);

int64_t perf_now_ns(void);  /* CLOCK_MONOTONIC */
uint64_t perf_random(void); /* xorshift64*, not for cryptography */

/* "prog: message" on stderr. */
void perf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: message" and a pointer to --help on stderr, then exit(2). */
void perf_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * True when argv[*i] is option `name`, given as "--name VALUE" or
 * "--name=VALUE"; *value is then set and *i moved past a separate value. A
 * missing value is a usage error.
 */
bool perf_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* True when argv[i] is the value-less flag `name`. */
bool perf_flag(char **argv, int i, const char *name);
/* Decimal integer in [min, max], or a usage error naming the option. */
int64_t perf_parse_int(const char *opt, const char *s, int64_t min, int64_t max);
/* Finite decimal number, or a usage error naming the option. */
double perf_parse_double(const char *opt, const char *s);

/* One client property; a property librdkafka rejects is a usage error naming origin. */
void perf_conf_set(rd_kafka_conf_t *conf, const char *origin, const char *key, const char *value);
/* "key=value" (split at the first '='), as given to --producer-props. */
void perf_conf_set_kv(rd_kafka_conf_t *conf, const char *origin, const char *kv);
/*
 * A Java .properties file: "key=value", "key: value" or "key value" lines,
 * '#' and '!' comments, a trailing backslash continues a line. Escapes inside
 * keys and values are not interpreted.
 */
void perf_conf_load_file(rd_kafka_conf_t *conf, const char *path);
/* True when the property has a non-empty value in conf. */
bool perf_conf_has(const rd_kafka_conf_t *conf, const char *key);

/*
 * For an error_cb: logs the client error, each error code only the first time
 * (librdkafka repeats them while a broker stays down; its own log has the
 * details), a fatal error always. True when the error is fatal.
 */
bool perf_client_error(rd_kafka_t *rk, int err, const char *reason);

/*
 * Bounds what follows (closing a librdkafka handle): unless disarmed with
 * perf_watchdog_disarm() within `seconds`, prints "prog: <what> took more
 * than N s" and exits 1.
 */
void perf_watchdog_arm(unsigned seconds, const char *what);
void perf_watchdog_disarm(void);

#endif
