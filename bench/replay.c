/*
 * kstretch-replay: a raw Kafka load generator aimed at ONE address.
 *
 *   kstretch-replay --target 127.0.0.1:9092 --topic perf [--partition 0] [--connections 1] [--inflight 8]
 *       [--record-size 1024] [--batch-records 100] [--acks 1] [--duration-s 5 | --requests N] [--fetch] [--json]
 *
 * It isolates a proxy: no metadata, no client library, no batching decisions.
 * The same pre-encoded request is sent again and again on N fixed TCP
 * connections, each keeping P requests in flight, to a broker, to kstretch's
 * listener for that broker, or to an L4 proxy in front of it. The target is
 * assumed to lead the partition (with one simulator broker, it does).
 *
 *   Produce (default): one Produce request (v7..v12, the highest the target
 *     offers, or --api-version) carrying one RecordBatch v2 of --batch-records
 *     records of --record-size random bytes (no key, no headers, correct
 *     CRC-32C). Every answer must name the partition with error code 0.
 *     --acks 0 sends without waiting for answers (no latency then); bytes the
 *     peer sends anyway are read and dropped, and the run ends when the peer
 *     closes the connection after our half-close (it has read everything).
 *   Fetch (--fetch): first one such Produce on connection 1, then Fetch
 *     requests (v4..v12) for that batch's offset, again and again: the broker
 *     answers each with the same batch, which is checked by length and CRC.
 *
 * What goes out is one template in memory; a request on the wire is
 * {template[0..8), the slot's correlation id, template[12..)} gathered with
 * sendmsg, so nothing is allocated or copied per request. Answers are read
 * into one buffer per connection and parsed in place (protocol/cursor.h).
 * Kafka answers in order on a connection: the answer's correlation id must
 * be the oldest in flight, else the run fails.
 *
 *   connection:  [ in flight: written, awaiting answer ][ queued: being written ]
 *                  ^ head (oldest)                        issue() appends here
 *
 * Latency of a request: from the moment it was queued (the previous answer
 * freed its slot) to its answer being parsed; kept in a log-linear histogram
 * (under 1% error), reported in microseconds. Throughput and latency cover
 * the requests queued after --warmup-s; elapsed time runs from then to the
 * last answer. bytes_sent/bytes_received count the whole run (for CPU per GB).
 *
 * Bounded: --duration-s (stop queueing, then drain) or --requests N (in
 * total), and --timeout-s over everything, setup included. Exit status: 0 the run completed,
 * 1 it failed (an error code, connection loss, a wrong answer, the timeout,
 * an interruption: a line on stderr names what and where), 2 bad arguments.
 *
 * One file of ~1,500 lines on purpose: a single program whose parts (options,
 * CRC-32C, request encoding, answer decoding, histogram, connections, the
 * run, the report; marked by "----" headings) have no other user.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cursor.h"

#define RP_PROG         "kstretch-replay"
#define RP_EXIT_OK      0
#define RP_EXIT_FAIL    1
#define RP_EXIT_USAGE   2
#define RP_NS_PER_US    INT64_C(1000)
#define RP_NS_PER_S     INT64_C(1000000000)
#define RP_MB           (1024.0 * 1024.0) /* the Java perf tools' MB */
#define RP_CLIENT_ID    "kstretch-replay"
#define RP_MAX_REQUEST  (64u << 20) /* the largest request we build */
#define RP_MAX_CONNS    20000
#define RP_MAX_INFLIGHT 4096
#define RP_SETUP_MS     10000 /* connect and the setup calls (ApiVersions, the Fetch seed) */
#define RP_GATHER       64    /* requests gathered into one sendmsg */
#define RP_TICK_MS      50    /* longest epoll_wait: time limits are checked at least this often */

#define API_PRODUCE      0
#define API_FETCH        1
#define API_API_VERSIONS 18

/* Versions whose encodings this file writes and reads (v13+ name topics by id). */
#define PRODUCE_MIN      7
#define PRODUCE_MAX      12
#define FETCH_MIN        4
#define FETCH_MAX        12
#define FLEXIBLE_PRODUCE 9
#define FLEXIBLE_FETCH   12

/* ---- options ------------------------------------------------------------ */

struct rp_options {
	const char *target;
	char host[256], port[8];
	const char *topic;
	int32_t partition;
	int connections, inflight;
	int64_t record_size, batch_records;
	int acks;
	double duration_s, warmup_s, timeout_s;
	int64_t requests; /* 0: run for duration_s */
	int api_version;  /* -1: the highest both sides know */
	bool fetch, json;
};

static void rp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void rp_log(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, RP_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void rp_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void rp_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, RP_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" RP_PROG " --help'.\n");
	exit(RP_EXIT_USAGE);
}

static void rp_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void rp_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, RP_PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(RP_EXIT_FAIL);
}

static void *rp_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		rp_fail("out of memory (%zu bytes)", n);
	return p;
}

static void rp_usage(FILE *out)
{
	fputs("usage: kstretch-replay --target HOST:PORT --topic TOPIC [--partition N]\n"
	      "           [--connections N] [--inflight P] [--record-size BYTES] [--batch-records N]\n"
	      "           [--acks 1|all|-1|0] [--duration-s S | --requests N] [--warmup-s S] [--timeout-s S]\n"
	      "           [--api-version V] [--fetch] [--json]\n"
	      "Sends one pre-encoded Produce request (a RecordBatch v2) again and again to ONE address, on N\n"
	      "connections with P requests in flight on each, and reports requests/s, MB/s and per-request\n"
	      "latency (p50/p99/p99.9 in microseconds). The target must lead TOPIC's partition.\n"
	      "  --target HOST:PORT   a broker, kstretch's listener for it, or an L4 proxy ([::1]:9092 for IPv6)\n"
	      "  --connections N      TCP connections (default 1)\n"
	      "  --inflight P         requests in flight per connection (default 8)\n"
	      "  --record-size BYTES  bytes of each record's value (default 1024)\n"
	      "  --batch-records N    records per request, in one batch (default 100)\n"
	      "  --acks A             1 (default), all (-1) or 0 (no answers: no latency)\n"
	      "  --duration-s S       queue requests for S seconds, then wait for the answers (default 5)\n"
	      "  --requests N         send N requests in all instead\n"
	      "  --warmup-s S         leave the first S seconds out of the figures (default 0)\n"
	      "  --timeout-s S        fail when the run takes longer (default: duration + warmup + 30, or 60)\n"
	      "  --api-version V      Produce v7..v12 (Fetch v4..v12); default the highest the target offers\n"
	      "  --fetch              Fetch load: produce one batch, then fetch it again and again\n"
	      "  --json               the result as one JSON line on stdout (the human line goes to stderr)\n"
	      "Exit status: 0 completed, 1 failed (error code, connection lost, timeout), 2 bad arguments.\n",
	      out);
}

static bool rp_opt(int argc, char **argv, int *i, const char *name, const char **value)
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
		rp_usage_error("option %s needs a value", name);
	*value = argv[++*i];
	return true;
}

static int64_t rp_parse_int(const char *opt, const char *s, int64_t min, int64_t max)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		rp_usage_error("%s: '%s' is not an integer in %lld..%lld", opt, s, (long long)min, (long long)max);
	return v;
}

static double rp_parse_seconds(const char *opt, const char *s, double min)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > 86400)
		rp_usage_error("%s: '%s' is not a number of seconds in %g..86400", opt, s, min);
	return v;
}

/* HOST:PORT or [V6HOST]:PORT. */
static void rp_parse_target(struct rp_options *o, const char *s)
{
	const char *host = s, *colon;
	size_t hlen;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			rp_usage_error("--target: '%s' is not [HOST]:PORT", s);
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			rp_usage_error("--target: '%s' is not HOST:PORT", s);
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(o->host))
		rp_usage_error("--target: '%s' has no host, or one too long", s);
	memcpy(o->host, host, hlen);
	o->host[hlen] = '\0';
	snprintf(o->port, sizeof(o->port), "%d", (int)rp_parse_int("--target port", colon + 1, 1, 65535));
	o->target = s;
}

/* Kafka's rule for topic names: 1..249 of [a-zA-Z0-9._-]. */
static bool rp_topic_name_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 249)
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') || *t == '.' ||
		      *t == '_' || *t == '-'))
			return false;
	return true;
}

static void rp_parse_args(int argc, char **argv, struct rp_options *o)
{
	const char *v;
	bool have_duration = false;
	*o = (struct rp_options){.connections = 1,
	                         .inflight = 8,
	                         .record_size = 1024,
	                         .batch_records = 100,
	                         .acks = 1,
	                         .duration_s = 5,
	                         .timeout_s = -1,
	                         .api_version = -1};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			rp_usage(stdout);
			exit(RP_EXIT_OK);
		} else if (rp_opt(argc, argv, &i, "--target", &v)) {
			rp_parse_target(o, v);
		} else if (rp_opt(argc, argv, &i, "--topic", &v)) {
			o->topic = v;
		} else if (rp_opt(argc, argv, &i, "--partition", &v)) {
			o->partition = (int32_t)rp_parse_int("--partition", v, 0, INT32_MAX);
		} else if (rp_opt(argc, argv, &i, "--connections", &v)) {
			o->connections = (int)rp_parse_int("--connections", v, 1, RP_MAX_CONNS);
		} else if (rp_opt(argc, argv, &i, "--inflight", &v)) {
			o->inflight = (int)rp_parse_int("--inflight", v, 1, RP_MAX_INFLIGHT);
		} else if (rp_opt(argc, argv, &i, "--record-size", &v)) {
			o->record_size = rp_parse_int("--record-size", v, 0, RP_MAX_REQUEST);
		} else if (rp_opt(argc, argv, &i, "--batch-records", &v)) {
			o->batch_records = rp_parse_int("--batch-records", v, 1, 1000000);
		} else if (rp_opt(argc, argv, &i, "--acks", &v)) {
			if (strcmp(v, "all") == 0 || strcmp(v, "-1") == 0)
				o->acks = -1;
			else if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)
				o->acks = *v - '0';
			else
				rp_usage_error("--acks: '%s' is not 0, 1, all or -1", v);
		} else if (rp_opt(argc, argv, &i, "--duration-s", &v)) {
			o->duration_s = rp_parse_seconds("--duration-s", v, 0.001);
			have_duration = true;
		} else if (rp_opt(argc, argv, &i, "--requests", &v)) {
			o->requests = rp_parse_int("--requests", v, 1, INT64_MAX / 2);
		} else if (rp_opt(argc, argv, &i, "--warmup-s", &v)) {
			o->warmup_s = rp_parse_seconds("--warmup-s", v, 0);
		} else if (rp_opt(argc, argv, &i, "--timeout-s", &v)) {
			o->timeout_s = rp_parse_seconds("--timeout-s", v, 0.001);
		} else if (rp_opt(argc, argv, &i, "--api-version", &v)) {
			o->api_version = (int)rp_parse_int("--api-version", v, 0, 32767);
		} else if (strcmp(argv[i], "--fetch") == 0) {
			o->fetch = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else if (argv[i][0] == '-') {
			rp_usage_error("unknown option %s", argv[i]);
		} else {
			rp_usage_error("unexpected argument '%s'", argv[i]);
		}
	}

	if (!o->target)
		rp_usage_error("--target HOST:PORT is required");
	if (!o->topic)
		rp_usage_error("--topic is required");
	if (!rp_topic_name_ok(o->topic))
		rp_usage_error("--topic: '%s' is not a Kafka topic name (1..249 of a-z A-Z 0-9 . _ -)", o->topic);
	if (have_duration && o->requests)
		rp_usage_error("give --duration-s or --requests, not both");
	if (o->fetch && o->acks == 0)
		rp_usage_error("--fetch reads back a batch it produced first, which needs an answer: --acks 1 or all");
	int lo = o->fetch ? FETCH_MIN : PRODUCE_MIN, hi = o->fetch ? FETCH_MAX : PRODUCE_MAX;
	if (o->api_version >= 0 && (o->api_version < lo || o->api_version > hi))
		rp_usage_error("--api-version: %s v%d is not one this tool speaks (v%d..v%d)",
		               o->fetch ? "Fetch" : "Produce", o->api_version, lo, hi);
	/* A record is at most ~16 bytes of framing beside its value. */
	if ((uint64_t)o->batch_records * ((uint64_t)o->record_size + 16) + 4096 > RP_MAX_REQUEST)
		rp_usage_error("--batch-records %" PRId64 " x --record-size %" PRId64 " makes a request over %u bytes",
		               o->batch_records, o->record_size, RP_MAX_REQUEST);
	if (o->timeout_s < 0)
		o->timeout_s = o->requests ? 60 : o->duration_s + o->warmup_s + 30;
	if (!o->requests && o->warmup_s >= o->duration_s)
		rp_usage_error("--warmup-s %g leaves nothing of --duration-s %g to measure", o->warmup_s,
		               o->duration_s);

	/* Each connection is one descriptor: say so now rather than fail half-way through connecting. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)o->connections + 16 > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || (rlim_t)o->connections + 16 <= rl.rlim_max
		                  ? (rlim_t)o->connections + 16
		                  : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)o->connections + 16 > rl.rlim_cur)
			rp_usage_error("--connections %d: RLIMIT_NOFILE allows only %llu descriptors", o->connections,
			               (unsigned long long)rl.rlim_cur);
	}
}

/* ---- clock, signals ----------------------------------------------------- */

static volatile sig_atomic_t rp_interrupted;

static void rp_on_signal(int sig)
{
	rp_interrupted = 1;
	signal(sig, SIG_DFL); /* a second one ends the process */
}

static int64_t rp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * RP_NS_PER_S + ts.tv_nsec;
}

/* ---- CRC-32C (Castagnoli), for the RecordBatch ---------------------------- */

static uint32_t rp_crc_table[256];

static void rp_crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* the reflected polynomial 0x1EDC6F41 */
		rp_crc_table[i] = c;
	}
}

static uint32_t rp_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = rp_crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* ---- encoding ------------------------------------------------------------ */

/* Appends to a buffer sized in advance; overflowing it is a bug in the size estimate. */
struct rp_out {
	uint8_t *p;
	size_t len, cap;
};

static uint8_t *rp_put(struct rp_out *o, size_t n)
{
	if (o->cap - o->len < n) {
		rp_log("internal error: request buffer of %zu bytes too small", o->cap);
		abort();
	}
	uint8_t *at = o->p + o->len;
	o->len += n;
	return at;
}

static void rp_i8(struct rp_out *o, int8_t v)
{
	*rp_put(o, 1) = (uint8_t)v;
}

static void rp_u16_at(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void rp_u32_at(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t rp_u32_from(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void rp_i16(struct rp_out *o, int16_t v)
{
	rp_u16_at(rp_put(o, 2), (uint16_t)v);
}

static void rp_i32(struct rp_out *o, int32_t v)
{
	rp_u32_at(rp_put(o, 4), (uint32_t)v);
}

static void rp_i64(struct rp_out *o, int64_t v)
{
	uint8_t *p = rp_put(o, 8);
	rp_u32_at(p, (uint32_t)((uint64_t)v >> 32));
	rp_u32_at(p + 4, (uint32_t)v);
}

static void rp_uvarint(struct rp_out *o, uint64_t v)
{
	while (v >= 0x80) {
		*rp_put(o, 1) = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*rp_put(o, 1) = (uint8_t)v;
}

static void rp_varint(struct rp_out *o, int64_t v) /* zigzag */
{
	rp_uvarint(o, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void rp_raw(struct rp_out *o, const void *p, size_t n)
{
	if (n)
		memcpy(rp_put(o, n), p, n);
}

/* STRING / COMPACT_STRING (never null here). */
static void rp_string(struct rp_out *o, bool compact, const char *s)
{
	size_t n = strlen(s);
	if (compact)
		rp_uvarint(o, n + 1);
	else
		rp_i16(o, (int16_t)n);
	rp_raw(o, s, n);
}

static void rp_null_string(struct rp_out *o, bool compact)
{
	if (compact)
		rp_uvarint(o, 0);
	else
		rp_i16(o, -1);
}

static void rp_array_len(struct rp_out *o, bool compact, int32_t n)
{
	if (compact)
		rp_uvarint(o, (uint64_t)n + 1);
	else
		rp_i32(o, n);
}

static void rp_no_tags(struct rp_out *o, bool flexible)
{
	if (flexible)
		rp_uvarint(o, 0);
}

/* Size placeholder, request header v1 (v2 when flexible: + tagged fields). Returns the frame start. */
static size_t rp_request_header(struct rp_out *o, int16_t api, int16_t version, int32_t corr, bool flexible)
{
	size_t start = o->len;
	rp_i32(o, 0);
	rp_i16(o, api);
	rp_i16(o, version);
	rp_i32(o, corr);
	rp_string(o, false, RP_CLIENT_ID); /* client_id stays a plain STRING in header v2 */
	rp_no_tags(o, flexible);
	return start;
}

static void rp_frame_done(struct rp_out *o, size_t start)
{
	rp_u32_at(o->p + start, (uint32_t)(o->len - start - 4));
}

static uint64_t rp_rng = 0x9e3779b97f4a7c15u;

static uint64_t rp_random(void) /* xorshift64*: payload bytes, not cryptography */
{
	rp_rng ^= rp_rng >> 12;
	rp_rng ^= rp_rng << 25;
	rp_rng ^= rp_rng >> 27;
	return rp_rng * 0x2545f4914f6cdd1du;
}

/* Offsets inside a RecordBatch v2 (Kafka's DefaultRecordBatch). */
#define RB_LENGTH_OF     8  /* batchLength: bytes after this field */
#define RB_CRC_OF        17 /* crc covers attributes .. the end */
#define RB_ATTRIBUTES_OF 21
#define RB_HEADER_SIZE   61

/*
 * One uncompressed RecordBatch v2 of n records, each of `size` random bytes
 * (no key, no headers), timestamps now. Returns its CRC.
 */
static uint32_t rp_record_batch(struct rp_out *o, int64_t n, int64_t size)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	size_t start = o->len;

	rp_i64(o, 0);              /* baseOffset: the broker assigns it */
	rp_i32(o, 0);              /* batchLength, below */
	rp_i32(o, -1);             /* partitionLeaderEpoch */
	rp_i8(o, 2);               /* magic */
	rp_i32(o, 0);              /* crc, below */
	rp_i16(o, 0);              /* attributes: no compression, CreateTime, not transactional */
	rp_i32(o, (int32_t)n - 1); /* lastOffsetDelta */
	rp_i64(o, now_ms);         /* baseTimestamp */
	rp_i64(o, now_ms);         /* maxTimestamp */
	rp_i64(o, -1);             /* producerId: not idempotent */
	rp_i16(o, -1);             /* producerEpoch */
	rp_i32(o, -1);             /* baseSequence */
	rp_i32(o, (int32_t)n);     /* records count */

	uint8_t lenbuf[10];
	for (int64_t i = 0; i < n; i++) {
		/* The record's length comes first: encode the fixed part once to count it. */
		struct rp_out head = {lenbuf, 0, sizeof(lenbuf)};
		rp_varint(&head, i);    /* offsetDelta */
		rp_varint(&head, -1);   /* keyLength: null */
		rp_varint(&head, size); /* valueLength */
		int64_t body =
		    1 + 1 + (int64_t)head.len + size + 1; /* attributes, timestampDelta, ..., value, headers */
		rp_varint(o, body);
		rp_i8(o, 0);     /* attributes */
		rp_varint(o, 0); /* timestampDelta */
		rp_raw(o, lenbuf, head.len);
		uint8_t *value = rp_put(o, (size_t)size);
		for (int64_t k = 0; k < size; k += 8) {
			uint64_t r = rp_random();
			memcpy(value + k, &r, (size_t)(size - k < 8 ? size - k : 8));
		}
		rp_varint(o, 0); /* headers count */
	}

	uint8_t *b = o->p + start;
	size_t len = o->len - start;
	rp_u32_at(b + RB_LENGTH_OF, (uint32_t)(len - 12));
	uint32_t crc = rp_crc32c(b + RB_ATTRIBUTES_OF, len - RB_ATTRIBUTES_OF);
	rp_u32_at(b + RB_CRC_OF, crc);
	return crc;
}

/* Produce v7..v12: one topic, one partition, one batch. Returns the frame length. */
static size_t rp_produce_request(struct rp_out *o, const struct rp_options *opt, int16_t version, int32_t corr,
                                 uint32_t *crc, size_t *batch_len)
{
	bool flex = version >= FLEXIBLE_PRODUCE;
	size_t start = rp_request_header(o, API_PRODUCE, version, corr, flex);
	rp_null_string(o, flex); /* transactional_id */
	rp_i16(o, (int16_t)opt->acks);
	rp_i32(o, 30000); /* timeout_ms */
	rp_array_len(o, flex, 1);
	rp_string(o, flex, opt->topic);
	rp_array_len(o, flex, 1);
	rp_i32(o, opt->partition);

	/* records: a length (int32, or uvarint length+1) before the batch; both are known only after it. */
	size_t at = o->len;
	size_t lenfield = flex ? 5 : 4; /* a padded uvarint is still a valid uvarint */
	rp_put(o, lenfield);
	size_t batch_start = o->len;
	*crc = rp_record_batch(o, opt->batch_records, opt->record_size);
	*batch_len = o->len - batch_start;
	if (flex) {
		uint64_t v = *batch_len + 1;
		for (size_t k = 0; k < 5; k++, v >>= 7)
			o->p[at + k] = (uint8_t)((v & 0x7f) | (k < 4 ? 0x80 : 0));
	} else {
		rp_u32_at(o->p + at, (uint32_t)*batch_len);
	}
	rp_no_tags(o, flex); /* partition */
	rp_no_tags(o, flex); /* topic */
	rp_no_tags(o, flex); /* request */
	rp_frame_done(o, start);
	return o->len - start;
}

/* Fetch v4..v12 of one partition at `offset`, sessionless (session 0, epoch -1). */
static size_t rp_fetch_request(struct rp_out *o, const struct rp_options *opt, int16_t version, int32_t corr,
                               int64_t offset, int32_t max_bytes)
{
	bool flex = version >= FLEXIBLE_FETCH;
	size_t start = rp_request_header(o, API_FETCH, version, corr, flex);
	rp_i32(o, -1);  /* replica_id: a consumer */
	rp_i32(o, 500); /* max_wait_ms: the batch is there, so it answers at once */
	rp_i32(o, 1);   /* min_bytes */
	rp_i32(o, max_bytes);
	rp_i8(o, 0); /* isolation_level: read uncommitted */
	if (version >= 7) {
		rp_i32(o, 0);  /* session_id */
		rp_i32(o, -1); /* session_epoch: a full fetch, no session */
	}
	rp_array_len(o, flex, 1);
	rp_string(o, flex, opt->topic);
	rp_array_len(o, flex, 1);
	rp_i32(o, opt->partition);
	if (version >= 9)
		rp_i32(o, -1); /* current_leader_epoch: unknown */
	rp_i64(o, offset);
	if (version >= 12)
		rp_i32(o, -1); /* last_fetched_epoch */
	if (version >= 5)
		rp_i64(o, -1); /* log_start_offset: a consumer's */
	rp_i32(o, max_bytes);
	rp_no_tags(o, flex); /* partition */
	rp_no_tags(o, flex); /* topic */
	if (version >= 7)
		rp_array_len(o, flex, 0); /* forgotten_topics_data */
	if (version >= 11)
		rp_string(o, flex, ""); /* rack_id */
	rp_no_tags(o, flex);
	rp_frame_done(o, start);
	return o->len - start;
}

/* ---- decoding answers ------------------------------------------------------ */

static const char *rp_error_name(int code)
{
	switch (code) {
	case -1: return "UNKNOWN_SERVER_ERROR";
	case 0: return "NONE";
	case 1: return "OFFSET_OUT_OF_RANGE";
	case 2: return "CORRUPT_MESSAGE";
	case 3: return "UNKNOWN_TOPIC_OR_PARTITION";
	case 4: return "INVALID_FETCH_SIZE";
	case 5: return "LEADER_NOT_AVAILABLE";
	case 6: return "NOT_LEADER_OR_FOLLOWER";
	case 7: return "REQUEST_TIMED_OUT";
	case 10: return "MESSAGE_TOO_LARGE";
	case 19: return "NOT_ENOUGH_REPLICAS";
	case 20: return "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
	case 21: return "INVALID_REQUIRED_ACKS";
	case 29: return "TOPIC_AUTHORIZATION_FAILED";
	case 35: return "UNSUPPORTED_VERSION";
	case 42: return "INVALID_REQUEST";
	case 43: return "UNSUPPORTED_FOR_MESSAGE_FORMAT";
	case 74: return "FENCED_LEADER_EPOCH";
	case 75: return "UNKNOWN_LEADER_EPOCH";
	case 87: return "INVALID_RECORD";
	case 100: return "UNKNOWN_TOPIC_ID";
	}
	return "see Kafka's error codes";
}

static void rp_skip_tags(struct kp_cursor *c, bool flexible)
{
	if (!flexible)
		return;
	uint32_t n = kp_read_uvarint(c, "tagged fields");
	for (uint32_t i = 0; i < n && kp_cursor_ok(c); i++) {
		kp_read_uvarint(c, "tag");
		uint32_t size = kp_read_uvarint(c, "tag size");
		kp_read_raw(c, size, "tag data");
	}
}

/* What one answer said; `what` explains a failure. */
struct rp_answer {
	int16_t error_code;
	int64_t base_offset;    /* Produce */
	int64_t high_watermark; /* Fetch */
	int32_t records_len;    /* Fetch: bytes of records, -1 null */
	uint32_t records_crc;   /* Fetch: the first batch's CRC */
	char what[160];
};

/* The one topic and partition we asked about, checked. */
static bool rp_expect_topic(struct kp_cursor *c, bool flex, const struct rp_options *o, struct rp_answer *a)
{
	int32_t topics = kp_read_array_len(c, flex, false, 4, "responses");
	if (!kp_cursor_ok(c))
		return false;
	if (topics != 1) {
		snprintf(a->what, sizeof(a->what), "%d topics in the answer, not 1", topics);
		return false;
	}
	struct kp_span name = kp_read_string(c, flex, false, "topic name");
	int32_t parts = kp_read_array_len(c, flex, false, 4, "partitions");
	if (!kp_cursor_ok(c))
		return false;
	if ((size_t)name.len != strlen(o->topic) || memcmp(name.ptr, o->topic, (size_t)name.len) != 0 || parts != 1) {
		snprintf(a->what, sizeof(a->what), "answer about topic '%.*s' with %d partitions, not %s-%d alone",
		         name.len > 60 ? 60 : (int)name.len, (const char *)name.ptr, parts, o->topic, o->partition);
		return false;
	}
	int32_t index = kp_read_i32(c, "partition_index");
	if (kp_cursor_ok(c) && index != o->partition) {
		snprintf(a->what, sizeof(a->what), "answer about partition %d, not %d", index, o->partition);
		return false;
	}
	return kp_cursor_ok(c);
}

static bool rp_cursor_failed(const struct kp_cursor *c, struct rp_answer *a)
{
	if (!kp_cursor_ok(c) && !a->what[0])
		snprintf(a->what, sizeof(a->what), "malformed answer: %s at byte %zu (%s)", kp_error_name(c->err),
		         c->err_pos, c->err_field ? c->err_field : "?");
	return !a->what[0];
}

/* A Produce response body (after the correlation id). False with a->what on a malformed answer. */
static bool rp_parse_produce(const uint8_t *p, size_t n, int16_t v, const struct rp_options *o, struct rp_answer *a)
{
	bool flex = v >= FLEXIBLE_PRODUCE;
	struct kp_cursor c;
	kp_cursor_init(&c, p, n);
	a->what[0] = '\0';
	rp_skip_tags(&c, flex); /* response header v1 */
	if (!rp_expect_topic(&c, flex, o, a)) {
		rp_cursor_failed(&c, a);
		return false;
	}
	a->error_code = kp_read_i16(&c, "error_code");
	a->base_offset = kp_read_i64(&c, "base_offset");
	kp_read_i64(&c, "log_append_time_ms");
	kp_read_i64(&c, "log_start_offset");
	/* v8+: record_errors, error_message; the rest (tags, throttle) is not needed. */
	return rp_cursor_failed(&c, a);
}

static bool rp_parse_fetch(const uint8_t *p, size_t n, int16_t v, const struct rp_options *o, struct rp_answer *a)
{
	bool flex = v >= FLEXIBLE_FETCH;
	struct kp_cursor c;
	kp_cursor_init(&c, p, n);
	a->what[0] = '\0';
	rp_skip_tags(&c, flex);
	kp_read_i32(&c, "throttle_time_ms");
	if (v >= 7) {
		int16_t top = kp_read_i16(&c, "error_code");
		kp_read_i32(&c, "session_id");
		if (kp_cursor_ok(&c) && top != 0) {
			a->error_code = top;
			return true;
		}
	}
	if (!rp_expect_topic(&c, flex, o, a)) {
		rp_cursor_failed(&c, a);
		return false;
	}
	a->error_code = kp_read_i16(&c, "error_code");
	a->high_watermark = kp_read_i64(&c, "high_watermark");
	kp_read_i64(&c, "last_stable_offset");
	if (v >= 5)
		kp_read_i64(&c, "log_start_offset");
	int32_t aborted = kp_read_array_len(&c, flex, true, 16, "aborted_transactions");
	for (int32_t i = 0; i < aborted && kp_cursor_ok(&c); i++) {
		kp_read_i64(&c, "producer_id");
		kp_read_i64(&c, "first_offset");
		rp_skip_tags(&c, flex);
	}
	if (v >= 11)
		kp_read_i32(&c, "preferred_read_replica");
	struct kp_span records = kp_read_bytes(&c, flex, true, "records");
	a->records_len = records.len;
	a->records_crc = records.len >= RB_HEADER_SIZE ? rp_u32_from(records.ptr + RB_CRC_OF) : 0;
	return rp_cursor_failed(&c, a);
}

/* ---- latency histogram (log-linear, no allocation per sample) ------------- */

/*
 * Values in ns. Below 256 one bucket per ns; above, 128 buckets per power of
 * two, so a bucket is under 1% wide. 2^40 ns (18 minutes) is the top.
 */
#define H_SUB      128
#define H_LINEAR   256
#define H_MAX_BITS 40
#define H_BUCKETS  (H_LINEAR + (H_MAX_BITS - 8) * H_SUB)

struct rp_hist {
	uint64_t n, buckets[H_BUCKETS];
	int64_t min, max;
	double sum;
};

static int rp_hist_index(int64_t v)
{
	if (v < H_LINEAR)
		return v < 0 ? 0 : (int)v;
	int msb = 63 - __builtin_clzll((uint64_t)v);
	if (msb >= H_MAX_BITS)
		return H_BUCKETS - 1;
	int shift = msb - 7;
	return H_LINEAR + (msb - 8) * H_SUB + (int)((v >> shift) - H_SUB);
}

/* The middle of bucket i. */
static double rp_hist_value(int i)
{
	if (i < H_LINEAR)
		return i;
	int group = (i - H_LINEAR) / H_SUB, sub = (i - H_LINEAR) % H_SUB;
	int shift = group + 1; /* msb - 7 */
	double lo = (double)((int64_t)(H_SUB + sub) << shift);
	return lo + (double)((int64_t)1 << shift) / 2;
}

static void rp_hist_add(struct rp_hist *h, int64_t v)
{
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (h->n == 0 || v > h->max)
		h->max = v;
	h->n++;
	h->sum += (double)v;
	h->buckets[rp_hist_index(v)]++;
}

/* The q-quantile (0..1) in ns, clamped to the exact min and max. */
static double rp_hist_quantile(const struct rp_hist *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (int i = 0; i < H_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			double v = rp_hist_value(i);
			return v < (double)h->min ? (double)h->min : v > (double)h->max ? (double)h->max : v;
		}
	}
	return (double)h->max;
}

/* ---- connections ---------------------------------------------------------- */

struct rp_conn {
	int fd, id; /* id: 1..N, for messages */
	bool want_out;
	/* The in-flight ring of P slots: [head, head + count) in order sent; the
	 * last `queued` of them are still (partly) unwritten, the first of those
	 * has `written` bytes out already. */
	unsigned head, count, queued;
	size_t written;
	int32_t next_corr;
	int32_t *corr;         /* per slot */
	uint8_t (*corr_be)[4]; /* per slot, as the wire has it: what sendmsg gathers */
	int64_t *queued_ns;    /* per slot */
	/* Answers: rbuf[rpos, rlen) not parsed yet. */
	uint8_t *rbuf;
	size_t rpos, rlen;
	uint64_t answered;
};

struct rp_run {
	struct rp_options o;
	struct addrinfo *addr;
	int ep;
	struct rp_conn *conns;
	/* The request template: bytes [8, 12) are each request's correlation id. */
	uint8_t *req;
	size_t req_len;
	int16_t api, version;
	bool expect_answers;
	size_t rcap, max_frame;
	/* Fetch: the batch it must get back. */
	int32_t seed_len;
	uint32_t seed_crc;
	int64_t seed_offset;

	int64_t start_ns, measure_ns, stop_issue_ns, deadline_ns, last_answer_ns;
	bool issuing;
	int64_t issued, completed; /* all requests */
	int64_t measured;          /* requests queued after the warm-up that completed */
	uint64_t bytes_sent, bytes_received;
	int64_t max_base_offset, high_watermark;
	struct rp_hist hist;
};

/* How long a setup step may take: RP_SETUP_MS, or less when --timeout-s ends sooner. */
static int rp_setup_ms(const struct rp_run *r, bool *overall)
{
	int64_t left = (r->deadline_ns - rp_now_ns()) / 1000000;
	if (overall)
		*overall = left < RP_SETUP_MS;
	return left < 0 ? 0 : left < RP_SETUP_MS ? (int)left : RP_SETUP_MS;
}

static int rp_connect(const struct rp_run *r, int id)
{
	const struct rp_options *o = &r->o;
	char why[128] = "no address";
	for (const struct addrinfo *a = r->addr; a; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(why, sizeof(why), "socket: %s", strerror(errno));
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* as Kafka clients do */
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			close(fd);
			continue;
		}
		struct pollfd pfd = {fd, POLLOUT, 0};
		int err = 0;
		socklen_t len = sizeof(err);
		int ready = poll(&pfd, 1, rp_setup_ms(r, NULL));
		if (ready == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
			return fd;
		snprintf(why, sizeof(why), "%s", ready == 0 ? "connect timed out" : strerror(err ? err : errno));
		close(fd);
	}
	rp_fail("connection %d: cannot connect to %s: %s", id, o->target, why);
}

/* Setup calls: writes one request and reads its answer, blocking, bounded by RP_SETUP_MS. */
static size_t rp_call(const struct rp_run *r, int fd, const uint8_t *req, size_t len, uint8_t *buf, size_t cap,
                      const char *what)
{
	bool overall;
	int limit_ms = rp_setup_ms(r, &overall);
	int64_t deadline = rp_now_ns() + (int64_t)limit_ms * 1000000;
	size_t off = 0, have = 0;
	while (off < len || have < 4 || have < 4 + (size_t)rp_u32_from(buf)) {
		int64_t left_ms = (deadline - rp_now_ns()) / 1000000;
		if (left_ms <= 0)
			rp_fail("%s: %s: no answer within %d ms%s", r->o.target, what, limit_ms,
			        overall ? " (--timeout-s)" : "");
		struct pollfd pfd = {fd, off < len ? POLLOUT : POLLIN, 0};
		if (poll(&pfd, 1, (int)left_ms) < 0 && errno != EINTR)
			rp_fail("%s: %s: poll: %s", r->o.target, what, strerror(errno));
		if (off < len) {
			ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				rp_fail("%s: %s: %s", r->o.target, what, strerror(errno));
			off += n > 0 ? (size_t)n : 0;
			continue;
		}
		if (have >= 4 && 4 + (size_t)rp_u32_from(buf) > cap)
			rp_fail("%s: %s: answer of %u bytes, more than the %zu expected", r->o.target, what,
			        rp_u32_from(buf), cap - 4);
		ssize_t n = recv(fd, buf + have, cap - have, 0);
		if (n == 0)
			rp_fail("%s: %s: the peer closed the connection", r->o.target, what);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			rp_fail("%s: %s: %s", r->o.target, what, strerror(errno));
		have += n > 0 ? (size_t)n : 0;
	}
	return 4 + rp_u32_from(buf);
}

/* ApiVersions v0: the version to speak, the highest both know, or --api-version if the target has it. */
static void rp_negotiate(struct rp_run *r, int fd)
{
	uint8_t req[64], *buf = rp_alloc(1 << 20);
	struct rp_out o = {req, 0, sizeof(req)};
	size_t start = rp_request_header(&o, API_API_VERSIONS, 0, 0, false);
	rp_frame_done(&o, start);
	size_t n = rp_call(r, fd, req, o.len, buf, 1 << 20, "ApiVersions");

	struct kp_cursor c;
	kp_cursor_init(&c, buf + 4, n - 4);
	kp_read_i32(&c, "correlation_id");
	int16_t err = kp_read_i16(&c, "error_code");
	int32_t cnt = kp_read_array_len(&c, false, false, 6, "api_keys");
	int lo = -1, hi = -1;
	for (int32_t i = 0; i < cnt && kp_cursor_ok(&c); i++) {
		int16_t key = kp_read_i16(&c, "api_key"), min = kp_read_i16(&c, "min_version"),
		        max = kp_read_i16(&c, "max_version");
		if (key == r->api)
			lo = min, hi = max;
	}
	if (!kp_cursor_ok(&c))
		rp_fail("%s: malformed ApiVersions answer: %s at byte %zu (%s)", r->o.target, kp_error_name(c.err),
		        c.err_pos, c.err_field);
	if (err != 0)
		rp_fail("%s: ApiVersions: error %d %s", r->o.target, err, rp_error_name(err));
	free(buf);

	const char *name = r->api == API_PRODUCE ? "Produce" : "Fetch";
	int mine_lo = r->api == API_PRODUCE ? PRODUCE_MIN : FETCH_MIN,
	    mine_hi = r->api == API_PRODUCE ? PRODUCE_MAX : FETCH_MAX;
	if (lo < 0)
		rp_fail("%s does not offer %s at all", r->o.target, name);
	if (r->o.api_version >= 0) {
		if (r->o.api_version < lo || r->o.api_version > hi)
			rp_fail("%s offers %s v%d..v%d, not --api-version %d", r->o.target, name, lo, hi,
			        r->o.api_version);
		r->version = (int16_t)r->o.api_version;
	} else {
		if (hi < mine_lo || lo > mine_hi)
			rp_fail("%s offers %s v%d..v%d; this tool speaks v%d..v%d", r->o.target, name, lo, hi, mine_lo,
			        mine_hi);
		r->version = (int16_t)(hi < mine_hi ? hi : mine_hi);
	}
}

/* Fetch mode: produce the batch every Fetch will read back, on connection 1 before the run. */
static void rp_seed(struct rp_run *r, int fd)
{
	int16_t pv = PRODUCE_MIN; /* every broker this tool speaks to has Produce v7 */
	size_t cap = 4096 + (size_t)r->o.batch_records * ((size_t)r->o.record_size + 16);
	struct rp_out o = {rp_alloc(cap), 0, cap};
	size_t batch_len;
	size_t len = rp_produce_request(&o, &r->o, pv, 1, &r->seed_crc, &batch_len);
	r->seed_len = (int32_t)batch_len;
	uint8_t buf[4096];
	size_t n = rp_call(r, fd, o.p, len, buf, sizeof(buf), "the Produce of the batch to fetch");
	struct rp_answer a;
	if (!rp_parse_produce(buf + 8, n - 8, pv, &r->o, &a))
		rp_fail("%s: the Produce of the batch to fetch: %s", r->o.target, a.what);
	if (a.error_code != 0)
		rp_fail("%s: the Produce of the batch to fetch: partition %s-%d: error %d %s", r->o.target, r->o.topic,
		        r->o.partition, a.error_code, rp_error_name(a.error_code));
	r->seed_offset = a.base_offset;
	r->bytes_sent += len;
	r->bytes_received += n;
	free(o.p);
}

static void rp_build_template(struct rp_run *r)
{
	size_t cap = 4096 + (size_t)r->o.batch_records * ((size_t)r->o.record_size + 16);
	struct rp_out o = {rp_alloc(cap), 0, cap};
	if (r->api == API_PRODUCE) {
		uint32_t crc;
		size_t batch_len;
		r->req_len = rp_produce_request(&o, &r->o, r->version, 0, &crc, &batch_len);
		r->max_frame = 64 * 1024;
	} else {
		/* Exactly the batch: a broker answers whole batches, at least the first, up to max_bytes. */
		r->req_len = rp_fetch_request(&o, &r->o, r->version, 0, r->seed_offset, r->seed_len);
		r->max_frame = 64 * 1024 + (size_t)r->seed_len;
	}
	r->req = o.p;
	r->rcap = 2 * r->max_frame + 128 * 1024;
}

static void rp_watch(struct rp_run *r, struct rp_conn *c, bool out)
{
	if (c->want_out == out)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		rp_fail("epoll_ctl: %s", strerror(errno));
	c->want_out = out;
}

/* Queues requests into free slots while the run may still send. */
static void rp_issue(struct rp_run *r, struct rp_conn *c, int64_t now)
{
	unsigned p = (unsigned)r->o.inflight;
	while (r->issuing && c->count < p) {
		if (r->o.requests && r->issued >= r->o.requests) {
			r->issuing = false;
			break;
		}
		unsigned slot = (c->head + c->count) % p;
		int32_t corr = c->next_corr;
		c->next_corr = corr == INT32_MAX ? 0 : corr + 1;
		c->corr[slot] = corr;
		rp_u32_at(c->corr_be[slot], (uint32_t)corr);
		c->queued_ns[slot] = now;
		c->count++;
		c->queued++;
		r->issued++;
	}
}

static void rp_completed(struct rp_run *r, struct rp_conn *c, int64_t now)
{
	unsigned slot = c->head;
	if (c->queued_ns[slot] >= r->measure_ns) {
		r->measured++;
		if (r->expect_answers)
			rp_hist_add(&r->hist, now - c->queued_ns[slot]);
		r->last_answer_ns = now;
	}
	c->head = (c->head + 1) % (unsigned)r->o.inflight;
	c->count--;
	r->completed++;
}

/* Writes what is queued, gathering up to RP_GATHER requests per sendmsg. */
static void rp_flush(struct rp_run *r, struct rp_conn *c)
{
	struct iovec iov[3 * RP_GATHER];
	unsigned p = (unsigned)r->o.inflight;
	while (c->queued) {
		unsigned first = (c->head + c->count - c->queued) % p;
		unsigned k = c->queued < RP_GATHER ? c->queued : RP_GATHER;
		int n = 0;
		for (unsigned i = 0; i < k; i++) {
			unsigned slot = (first + i) % p;
			iov[n++] = (struct iovec){r->req, 8};
			iov[n++] = (struct iovec){c->corr_be[slot], 4};
			iov[n++] = (struct iovec){r->req + 12, r->req_len - 12};
		}
		/* Skip what of the first request went out already. */
		size_t skip = c->written;
		int at = 0;
		while (skip >= iov[at].iov_len)
			skip -= iov[at++].iov_len;
		iov[at].iov_base = (uint8_t *)iov[at].iov_base + skip;
		iov[at].iov_len -= skip;
		struct msghdr msg = {.msg_iov = iov + at, .msg_iovlen = (size_t)(n - at)};
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
				rp_watch(r, c, true);
				return;
			}
			if (errno == EINTR)
				continue;
			rp_fail("connection %d to %s: write failed with %u requests in flight (after %" PRIu64
			        " answers): %s",
			        c->id, r->o.target, c->count, c->answered, strerror(errno));
		}
		r->bytes_sent += (uint64_t)w;
		size_t left = (size_t)w + c->written;
		while (c->queued && left >= r->req_len) {
			left -= r->req_len;
			c->queued--;
			if (!r->expect_answers) /* acks=0: done once written */
				rp_completed(r, c, rp_now_ns());
		}
		c->written = left;
	}
	rp_watch(r, c, false);
}

/* One whole answer frame: the oldest request's, checked. */
static void rp_answer(struct rp_run *r, struct rp_conn *c, const uint8_t *body, size_t n, int64_t now)
{
	const char *name = r->api == API_PRODUCE ? "Produce" : "Fetch";
	if (!r->expect_answers)
		return; /* acks=0: the librdkafka mock answers anyway; real brokers do not */
	if (c->count == c->queued)
		rp_fail("connection %d to %s: an answer arrived with no request in flight", c->id, r->o.target);
	if (n < 4)
		rp_fail("connection %d to %s: an answer of %zu bytes has no correlation id", c->id, r->o.target, n);
	int32_t corr = (int32_t)rp_u32_from(body), want = c->corr[c->head];
	if (corr != want)
		rp_fail("connection %d to %s: answer with correlation id %d, but the oldest %s in flight is %d", c->id,
		        r->o.target, corr, name, want);

	struct rp_answer a;
	bool ok = r->api == API_PRODUCE ? rp_parse_produce(body + 4, n - 4, r->version, &r->o, &a)
	                                : rp_parse_fetch(body + 4, n - 4, r->version, &r->o, &a);
	if (!ok)
		rp_fail("connection %d to %s: %s v%d (correlation id %d): %s", c->id, r->o.target, name, r->version,
		        corr, a.what);
	if (a.error_code != 0)
		rp_fail("connection %d to %s: %s v%d (correlation id %d): partition %s-%d: error %d %s", c->id,
		        r->o.target, name, r->version, corr, r->o.topic, r->o.partition, a.error_code,
		        rp_error_name(a.error_code));
	if (r->api == API_PRODUCE) {
		if (a.base_offset > r->max_base_offset)
			r->max_base_offset = a.base_offset;
	} else {
		if (a.records_len != r->seed_len || a.records_crc != r->seed_crc)
			rp_fail(
			    "connection %d to %s: Fetch v%d (correlation id %d): got %d bytes of records (CRC %08x) "
			    "at offset %" PRId64 ", not the %d-byte batch produced there (CRC %08x)",
			    c->id, r->o.target, r->version, corr, a.records_len, a.records_crc, r->seed_offset,
			    r->seed_len, r->seed_crc);
		r->high_watermark = a.high_watermark;
	}
	c->answered++;
	rp_completed(r, c, now);
}

static void rp_read(struct rp_run *r, struct rp_conn *c)
{
	for (int reads = 0; reads < 8; reads++) {
		if (c->rpos == c->rlen) {
			c->rpos = c->rlen = 0;
		} else if (r->rcap - c->rlen < r->max_frame + 4) {
			/* Room for a whole frame at the end, by moving the part of one that is here. */
			memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rlen -= c->rpos;
			c->rpos = 0;
		}
		size_t room = r->rcap - c->rlen;
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, MSG_DONTWAIT);
		if (n == 0)
			rp_fail("connection %d to %s closed by the peer with %u requests in flight (after %" PRIu64
			        " answers)",
			        c->id, r->o.target, c->count, c->answered);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			rp_fail("connection %d to %s: read failed with %u requests in flight (after %" PRIu64
			        " answers): %s",
			        c->id, r->o.target, c->count, c->answered, strerror(errno));
		}
		r->bytes_received += (uint64_t)n;
		c->rlen += (size_t)n;
		int64_t now = rp_now_ns();
		while (c->rlen - c->rpos >= 4) {
			size_t size = rp_u32_from(c->rbuf + c->rpos);
			if (size > r->max_frame)
				rp_fail("connection %d to %s: an answer of %zu bytes, more than any expected (%zu)",
				        c->id, r->o.target, size, r->max_frame);
			if (c->rlen - c->rpos < 4 + size)
				break;
			rp_answer(r, c, c->rbuf + c->rpos + 4, size, now);
			c->rpos += 4 + size;
		}
		rp_issue(r, c, now);
		rp_flush(r, c);
		if ((size_t)n < room) /* a short read: the socket is empty */
			return;
	}
}

/* ---- the run -------------------------------------------------------------- */

static void rp_setup(struct rp_run *r)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int gai = getaddrinfo(r->o.host, r->o.port, &hints, &r->addr);
	if (gai != 0)
		rp_fail("cannot resolve %s: %s", r->o.target, gai_strerror(gai));
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->ep < 0)
		rp_fail("epoll_create1: %s", strerror(errno));

	r->conns = rp_alloc(sizeof(*r->conns) * (size_t)r->o.connections);
	for (int i = 0; i < r->o.connections; i++) {
		struct rp_conn *c = &r->conns[i];
		c->id = i + 1;
		c->fd = rp_connect(r, c->id);
		if (i == 0) {
			rp_negotiate(r, c->fd);
			if (r->o.fetch)
				rp_seed(r, c->fd);
			rp_build_template(r);
		}
		c->corr = rp_alloc(sizeof(*c->corr) * (size_t)r->o.inflight);
		c->corr_be = rp_alloc(sizeof(*c->corr_be) * (size_t)r->o.inflight);
		c->queued_ns = rp_alloc(sizeof(*c->queued_ns) * (size_t)r->o.inflight);
		c->rbuf = rp_alloc(r->rcap);
		c->next_corr = 100; /* the setup calls used lower ids on connection 1 */
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			rp_fail("epoll_ctl: %s", strerror(errno));
	}
}

static void rp_run(struct rp_run *r)
{
	struct epoll_event evs[256];
	r->start_ns = rp_now_ns();
	r->measure_ns = r->start_ns + (int64_t)(r->o.warmup_s * (double)RP_NS_PER_S);
	r->stop_issue_ns = r->o.requests ? INT64_MAX : r->start_ns + (int64_t)(r->o.duration_s * (double)RP_NS_PER_S);
	r->last_answer_ns = r->measure_ns;
	r->issuing = true;
	for (int i = 0; i < r->o.connections; i++) {
		rp_issue(r, &r->conns[i], r->start_ns);
		rp_flush(r, &r->conns[i]);
	}
	for (;;) {
		int64_t now = rp_now_ns();
		if (r->issuing && (now >= r->stop_issue_ns || rp_interrupted))
			r->issuing = false;
		if (rp_interrupted)
			rp_fail("interrupted after %" PRId64 " of %" PRId64 " requests answered", r->completed,
			        r->issued);
		/* acks=0: a request is done once written, so refill here, and poll
		 * without sleeping while a connection can take more. */
		bool busy = false, more = false;
		for (int i = 0; i < r->o.connections; i++) {
			struct rp_conn *c = &r->conns[i];
			if (!r->expect_answers && r->issuing && c->count < (unsigned)r->o.inflight) {
				rp_issue(r, c, now);
				rp_flush(r, c);
				more |= !c->want_out;
			}
			busy |= c->count > 0;
		}
		if (!r->issuing && !busy)
			return;
		if (now >= r->deadline_ns)
			rp_fail("timed out (--timeout-s %g): %" PRId64 " of %" PRId64
			        " requests answered; the rest are still in flight",
			        r->o.timeout_s, r->completed, r->issued);
		int64_t wait_ms = (r->deadline_ns - now) / 1000000 + 1;
		if (r->issuing && (r->stop_issue_ns - now) / 1000000 + 1 < wait_ms)
			wait_ms = (r->stop_issue_ns - now) / 1000000 + 1;
		if (wait_ms > RP_TICK_MS)
			wait_ms = RP_TICK_MS;
		if (more)
			wait_ms = 0;
		int n = epoll_wait(r->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), (int)wait_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rp_fail("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct rp_conn *c = evs[i].data.ptr;
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				rp_read(r, c);
			if (evs[i].events & EPOLLOUT)
				rp_flush(r, c);
		}
	}
}

/*
 * acks=0: every request is written, but not necessarily read by the peer.
 * Closing now could lose the tail (a close with unread bytes here sends RST,
 * which also drops what waits in the peer's buffer). So half-close, read and
 * drop whatever the peer still sends, and wait for its close: it then has
 * read every request. The elapsed time runs to that moment.
 */
static void rp_drain(struct rp_run *r)
{
	struct epoll_event evs[256];
	int open = r->o.connections;
	for (int i = 0; i < r->o.connections; i++) {
		if (shutdown(r->conns[i].fd, SHUT_WR) < 0)
			rp_fail("connection %d to %s: shutdown: %s", r->conns[i].id, r->o.target, strerror(errno));
		rp_watch(r, &r->conns[i], false);
	}
	while (open > 0) {
		int64_t now = rp_now_ns();
		if (rp_interrupted)
			rp_fail("interrupted while waiting for the peer to read the last requests");
		if (now >= r->deadline_ns)
			rp_fail("timed out (--timeout-s %g): %d connection%s not closed by the peer after the last "
			        "request (acks=0)",
			        r->o.timeout_s, open, open == 1 ? "" : "s");
		int64_t wait_ms = (r->deadline_ns - now) / 1000000 + 1;
		int n = epoll_wait(r->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])),
		                   (int)(wait_ms < RP_TICK_MS ? wait_ms : RP_TICK_MS));
		if (n < 0 && errno != EINTR)
			rp_fail("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct rp_conn *c = evs[i].data.ptr;
			ssize_t got = recv(c->fd, c->rbuf, r->rcap, MSG_DONTWAIT);
			if (got > 0) {
				r->bytes_received += (uint64_t)got;
				continue;
			}
			if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				continue;
			if (got < 0)
				rp_fail("connection %d to %s: read failed after the last request: %s", c->id, r->o.target,
				        strerror(errno));
			epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
			open--;
		}
	}
	r->last_answer_ns = rp_now_ns();
}

/* JSON string (the target is the only free text we print). */
static void rp_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void rp_report(const struct rp_run *r)
{
	const struct rp_options *o = &r->o;
	double secs = (double)(r->last_answer_ns - r->measure_ns) / (double)RP_NS_PER_S;
	if (secs <= 0)
		secs = 1e-9;
	double rps = (double)r->measured / secs;
	double records = (double)r->measured * (double)o->batch_records;
	double mbps = records * (double)o->record_size / RP_MB / secs;
	double wire = (double)r->measured * (double)(r->api == API_PRODUCE ? r->req_len : (size_t)r->seed_len);
	const struct rp_hist *h = &r->hist;
	double us = (double)RP_NS_PER_US;
	double p50 = rp_hist_quantile(h, 0.50) / us, p99 = rp_hist_quantile(h, 0.99) / us,
	       p999 = rp_hist_quantile(h, 0.999) / us, avg = h->n ? h->sum / (double)h->n / us : 0,
	       max = (double)h->max / us;
	const char *name = r->api == API_PRODUCE ? "produce" : "fetch";

	char latency[160] = "no latency (acks=0: no answers)";
	if (h->n)
		snprintf(latency, sizeof(latency), "latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us", p50,
		         p99, p999, max);
	FILE *human = o->json ? stderr : stdout;
	fprintf(human,
	        "%" PRId64 " %s requests (%.0f records) in %.2f s: %.1f requests/s, %.1f records/s, %.2f MB/s; %s "
	        "(%s v%d to %s, %d connection%s x %d in flight, acks=%s, %" PRId64 " x %" PRId64 " B records)\n",
	        r->measured, name, records, secs, rps, records / secs, mbps, latency,
	        r->api == API_PRODUCE ? "Produce" : "Fetch", r->version, o->target, o->connections,
	        o->connections == 1 ? "" : "s", o->inflight,
	        o->acks == -1 ? "all"
	        : o->acks     ? "1"
	                      : "0",
	        o->batch_records, o->record_size);
	if (!o->json)
		return;
	printf("{\"target\":");
	rp_json_str(stdout, o->target);
	printf(",\"api\":\"%s\",\"api_version\":%d,\"connections\":%d,\"inflight\":%d,\"acks\":%d,"
	       "\"record_size\":%" PRId64 ",\"batch_records\":%" PRId64 ",\"request_bytes\":%zu,"
	       "\"requests\":%" PRId64 ",\"records\":%.0f,\"elapsed_s\":%.6f,\"requests_per_sec\":%.1f,"
	       "\"records_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"wire_mb_per_sec\":%.3f,"
	       "\"latency_samples\":%" PRIu64,
	       name, r->version, o->connections, o->inflight, o->acks, o->record_size, o->batch_records, r->req_len,
	       r->measured, records, secs, rps, records / secs, mbps, wire / RP_MB / secs, h->n);
	if (h->n)
		printf(",\"avg_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f", avg, p50,
		       p99, p999, max);
	else /* acks=0: nothing was timed */
		printf(",\"avg_us\":null,\"p50_us\":null,\"p99_us\":null,\"p999_us\":null,\"max_us\":null");
	printf(",\"requests_total\":%" PRId64 ",\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64, r->completed,
	       r->bytes_sent, r->bytes_received);
	if (r->api == API_PRODUCE)
		printf(",\"max_base_offset\":%" PRId64, r->max_base_offset);
	else
		printf(",\"fetch_offset\":%" PRId64 ",\"high_watermark\":%" PRId64, r->seed_offset, r->high_watermark);
	printf(",\"errors\":0}\n");
}

int main(int argc, char **argv)
{
	static struct rp_run run; /* the histogram is large: not on the stack */
	struct rp_run *r = &run;
	rp_parse_args(argc, argv, &r->o);
	signal(SIGINT, rp_on_signal);
	signal(SIGTERM, rp_on_signal);
	signal(SIGPIPE, SIG_IGN);
	rp_crc32c_init();
	rp_rng ^= (uint64_t)getpid() << 32 | (uint64_t)time(NULL);

	r->api = r->o.fetch ? API_FETCH : API_PRODUCE;
	r->expect_answers = r->o.fetch || r->o.acks != 0;
	r->max_base_offset = -1;
	r->deadline_ns = rp_now_ns() + (int64_t)(r->o.timeout_s * (double)RP_NS_PER_S); /* setup included */
	rp_setup(r);
	rp_run(r);
	if (!r->expect_answers)
		rp_drain(r);
	rp_report(r);
	fflush(stdout);
	return RP_EXIT_OK;
}
