/*
 * kstretch-producer-perf: Apache Kafka's kafka-producer-perf-test on librdkafka.
 *
 *   kstretch-producer-perf --topic perf --num-records 200000 --record-size 1024 \
 *       --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9092 acks=1
 *
 * Same options, same output. Every 5 s, for the records delivered in that window:
 *
 *   N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency.
 *
 * and at the end, for the whole run:
 *
 *   N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency,
 *   P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.
 *
 * As in the Java tool, "sent" counts records whose delivery succeeded, MB is
 * 2^20 bytes of record values, the percentiles are whole milliseconds (--json
 * gives them to the microsecond) over at most 500,000 sampled latencies, and a
 * record's latency runs from the produce() call (including any wait for queue
 * space) to its delivery report. The send time travels in the message's opaque.
 * With --record-size, records are random bytes (each a different window of one
 * random buffer), so unlike the Java tool's A-Z letters they do not compress.
 *
 * Main loop, one thread: produce, serve delivery reports with rd_kafka_poll(),
 * sleep (still serving reports) whenever ahead of --throughput. Then flush.
 * The run is bounded: waiting for queue space or for the final flush gives up
 * after --timeout ms without any delivery report, purging what is left (those
 * records count as failed). Failed records are counted; any makes the exit
 * status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perf_common.h"

#define PP_WINDOW_NS        (5 * PERF_NS_PER_S)
#define PP_MAX_SAMPLES      500000               /* latencies kept for the percentiles, as in the Java tool */
#define PP_MIN_SLEEP_NS     (2 * PERF_NS_PER_MS) /* throttle sleeps shorter than this wait for the next record */
#define PP_RANDOM_SPAN      4096 /* random records are windows into a buffer this much longer than one record */
#define PP_MAX_RECORD_SIZE  (INT64_C(1) << 30)
#define PP_MAX_PAYLOAD_FILE (INT64_C(1) << 30)
#define PP_SHOWN_ERRORS     5 /* delivery errors printed one by one; the rest are only counted */
#define PP_DEFAULT_TIMEOUT  60000
#define PP_CLOSE_SECONDS    30

/* The send time (CLOCK_MONOTONIC ns) is the message opaque itself. */
_Static_assert(sizeof(void *) >= sizeof(int64_t), "the message opaque must hold a 64-bit timestamp");

struct pp_options {
	const char *topic;
	int64_t num_records;
	int64_t record_size; /* -1: records come from payload_file */
	const char *payload_file;
	const char *payload_delimiter;
	double throughput; /* records/s; negative: unthrottled */
	int64_t timeout_ms;
	bool json;
};

/* What records carry: windows of one random buffer, or the payload file's records. */
struct pp_payloads {
	char *buf;
	size_t record_size;
	struct pp_record {
		const char *p;
		size_t len;
	} * records; /* payload file only */
	size_t record_cnt;
};

struct pp_stats {
	FILE *out; /* the 5 s window lines: stdout, or stderr under --json */
	int64_t start_ns;
	int64_t last_report_ns; /* last delivery report, success or failure */

	int64_t count; /* records delivered */
	int64_t bytes;
	double total_ms, max_ms;

	int64_t window_start_ns, window_count, window_bytes;
	double window_total_ms, window_max_ms;

	int64_t sampling; /* keep every sampling'th latency */
	float *samples;
	size_t sample_cnt, sample_cap;

	int64_t errors; /* records that failed delivery */
	char first_error[512];
};

static void pp_usage(FILE *out)
{
	fputs("usage: kstretch-producer-perf --topic TOPIC --num-records N --throughput RECORDS_PER_SEC\n"
	      "           (--record-size BYTES | --payload-file FILE [--payload-delimiter D])\n"
	      "           [--producer-props KEY=VALUE [KEY=VALUE ...]] [--producer.config FILE]\n"
	      "           [--bootstrap-server HOST:PORT] [--timeout MS] [--json] [--print-metrics]\n"
	      "Apache Kafka's kafka-producer-perf-test on librdkafka: produces N records to TOPIC and prints\n"
	      "throughput and produce-to-delivery latency every 5 s and for the whole run.\n"
	      "  --throughput R         at most R records/s; -1 (any negative) for no limit\n"
	      "  --record-size BYTES    random records of this size\n"
	      "  --payload-file FILE    records are FILE's lines (split on --payload-delimiter, default \\n),\n"
	      "                         each record picked at random\n"
	      "  --producer-props       librdkafka producer properties (bootstrap.servers=..., acks=1, ...)\n"
	      "  --producer.config FILE the same as a .properties file (--producer-props override it)\n"
	      "  --bootstrap-server B   short for --producer-props bootstrap.servers=B\n"
	      "  --timeout MS           give up after MS without any delivery report while records are\n"
	      "                         outstanding (queue full, final flush); default 60000\n"
	      "  --json                 the final result as one JSON line on stdout (5 s lines go to stderr)\n"
	      "  --print-metrics        accepted and ignored\n"
	      "Exit status: 0 all records delivered, 1 some failed or the run was cut short, 2 bad arguments.\n",
	      out);
}

/* --payload-delimiter with \n, \r, \t and \\ unescaped (the Java default is the two characters "\n"). */
static char *pp_unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s != '\\' || !s[1]) {
			*o++ = *s;
			continue;
		}
		s++;
		*o++ = *s == 'n' ? '\n' : *s == 'r' ? '\r' : *s == 't' ? '\t' : *s;
	}
	*o = '\0';
	return out;
}

static void pp_parse_args(int argc, char **argv, struct pp_options *o, rd_kafka_conf_t *conf)
{
	const char *v, *config_file = NULL, *bootstrap = NULL;
	bool have_throughput = false;
	/* --producer-props override --producer.config: collect them, apply after the file. */
	const char **props = calloc((size_t)argc, sizeof(*props));
	int prop_cnt = 0;
	if (!props) {
		perf_log("out of memory");
		exit(PERF_EXIT_FAIL);
	}

	o->record_size = -1;
	o->payload_delimiter = "\\n";
	o->timeout_ms = PP_DEFAULT_TIMEOUT;
	for (int i = 1; i < argc; i++) {
		if (perf_flag(argv, i, "--help") || perf_flag(argv, i, "-h")) {
			pp_usage(stdout);
			exit(PERF_EXIT_OK);
		} else if (perf_opt(argc, argv, &i, "--topic", &v)) {
			o->topic = v;
		} else if (perf_opt(argc, argv, &i, "--num-records", &v)) {
			o->num_records = perf_parse_int("--num-records", v, 1, INT64_MAX / 2);
		} else if (perf_opt(argc, argv, &i, "--record-size", &v)) {
			o->record_size = perf_parse_int("--record-size", v, 0, PP_MAX_RECORD_SIZE);
		} else if (perf_opt(argc, argv, &i, "--payload-file", &v)) {
			o->payload_file = v;
		} else if (perf_opt(argc, argv, &i, "--payload-delimiter", &v)) {
			o->payload_delimiter = v;
		} else if (perf_opt(argc, argv, &i, "--throughput", &v)) {
			o->throughput = perf_parse_double("--throughput", v);
			have_throughput = true;
		} else if (perf_opt(argc, argv, &i, "--producer-props", &v)) {
			props[prop_cnt++] = v;
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
				props[prop_cnt++] = argv[++i];
		} else if (perf_opt(argc, argv, &i, "--producer.config", &v)) {
			config_file = v;
		} else if (perf_opt(argc, argv, &i, "--bootstrap-server", &v)) {
			bootstrap = v;
		} else if (perf_opt(argc, argv, &i, "--timeout", &v)) {
			o->timeout_ms = perf_parse_int("--timeout", v, 1, INT64_MAX / PERF_NS_PER_MS);
		} else if (perf_flag(argv, i, "--json")) {
			o->json = true;
		} else if (perf_flag(argv, i, "--print-metrics")) {
			/* accepted for compatibility; librdkafka's metrics are its statistics.interval.ms JSON */
		} else if (argv[i][0] == '-') {
			perf_usage_error("unknown option %s", argv[i]);
		} else {
			perf_usage_error("unexpected argument '%s'", argv[i]);
		}
	}

	if (!o->topic || !*o->topic)
		perf_usage_error("--topic is required");
	if (o->num_records == 0)
		perf_usage_error("--num-records is required");
	if (!have_throughput)
		perf_usage_error("--throughput is required (-1 for no limit)");
	if (o->throughput == 0)
		perf_usage_error("--throughput 0 would never send: give a positive rate, or -1 for no limit");
	if ((o->record_size >= 0) == (o->payload_file != NULL))
		perf_usage_error("give exactly one of --record-size BYTES or --payload-file FILE");
	if (prop_cnt == 0 && !config_file && !bootstrap)
		perf_usage_error("give --producer-props bootstrap.servers=HOST:PORT (or --producer.config FILE)");

	if (config_file)
		perf_conf_load_file(conf, config_file);
	for (int k = 0; k < prop_cnt; k++)
		perf_conf_set_kv(conf, "--producer-props", props[k]);
	if (bootstrap)
		perf_conf_set(conf, "--bootstrap-server", "bootstrap.servers", bootstrap);
	if (!perf_conf_has(conf, "bootstrap.servers"))
		perf_usage_error("bootstrap.servers is not set: add --producer-props bootstrap.servers=HOST:PORT");
	free(props);
}

static void pp_payloads_random(struct pp_payloads *pl, size_t record_size)
{
	size_t len = record_size + PP_RANDOM_SPAN;
	pl->record_size = record_size;
	pl->buf = malloc(len);
	if (!pl->buf) {
		perf_log("cannot allocate %zu bytes of payload", len);
		exit(PERF_EXIT_FAIL);
	}
	for (size_t i = 0; i < len; i += sizeof(uint64_t)) {
		uint64_t r = perf_random();
		memcpy(pl->buf + i, &r, len - i < sizeof(r) ? len - i : sizeof(r));
	}
}

/* The payload file split on the delimiter; like Java's String.split, trailing empty records are dropped. */
static void pp_payloads_file(struct pp_payloads *pl, const char *path, const char *delimiter, FILE *info)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		perf_usage_error("--payload-file: cannot read %s: %s", path, strerror(errno));
	fprintf(info, "Reading payloads from: %s\n", path);
	size_t cap = 1 << 16, len = 0, n;
	pl->buf = malloc(cap + 1);
	while (pl->buf && (n = fread(pl->buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			if ((int64_t)cap >= PP_MAX_PAYLOAD_FILE)
				perf_usage_error("--payload-file: %s is larger than %lld bytes", path,
				                 (long long)PP_MAX_PAYLOAD_FILE);
			char *grown = realloc(pl->buf, cap * 2 + 1);
			if (!grown)
				free(pl->buf);
			pl->buf = grown;
			cap *= 2;
		}
	}
	if (!pl->buf) {
		perf_log("out of memory reading %s", path);
		exit(PERF_EXIT_FAIL);
	}
	if (ferror(f))
		perf_usage_error("--payload-file: cannot read %s", path);
	fclose(f);
	pl->buf[len] = '\0';

	char *delim = pp_unescape(delimiter);
	size_t dlen = delim ? strlen(delim) : 0;
	if (!delim || dlen == 0)
		perf_usage_error("--payload-delimiter must not be empty");
	size_t max = len / dlen + 1;
	pl->records = calloc(max, sizeof(*pl->records));
	if (!pl->records) {
		perf_log("out of memory splitting %s", path);
		exit(PERF_EXIT_FAIL);
	}
	const char *p = pl->buf, *end = pl->buf + len;
	while (p <= end) {
		const char *d = memmem(p, (size_t)(end - p), delim, dlen);
		const char *stop = d ? d : end;
		pl->records[pl->record_cnt++] = (struct pp_record){p, (size_t)(stop - p)};
		if (!d)
			break;
		p = d + dlen;
	}
	while (pl->record_cnt > 0 && pl->records[pl->record_cnt - 1].len == 0)
		pl->record_cnt--;
	free(delim);
	if (pl->record_cnt == 0)
		perf_usage_error("--payload-file: %s holds no record", path);
	fprintf(info, "Number of messages read: %zu\n", pl->record_cnt);
}

static struct pp_record pp_next_record(const struct pp_payloads *pl)
{
	uint64_t r = perf_random();
	if (pl->records)
		return pl->records[r % pl->record_cnt];
	return (struct pp_record){pl->buf + r % (PP_RANDOM_SPAN + 1), pl->record_size};
}

static void pp_stats_init(struct pp_stats *s, int64_t num_records, FILE *out)
{
	memset(s, 0, sizeof(*s));
	s->out = out;
	s->sampling = num_records / (num_records < PP_MAX_SAMPLES ? num_records : PP_MAX_SAMPLES);
	s->sample_cap = (size_t)(num_records / s->sampling) + 1;
	s->samples = malloc(s->sample_cap * sizeof(*s->samples));
	if (!s->samples) {
		perf_log("out of memory");
		exit(PERF_EXIT_FAIL);
	}
	s->start_ns = s->last_report_ns = s->window_start_ns = perf_now_ns();
}

static double pp_rate(double amount, int64_t ns)
{
	return ns > 0 ? amount * (double)PERF_NS_PER_S / (double)ns : 0.0;
}

static void pp_print_window(struct pp_stats *s, int64_t now)
{
	int64_t ns = now - s->window_start_ns;
	fprintf(s->out,
	        "%lld records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.\n",
	        (long long)s->window_count, pp_rate((double)s->window_count, ns),
	        pp_rate((double)s->window_bytes / PERF_MB, ns),
	        s->window_count ? s->window_total_ms / (double)s->window_count : 0.0, s->window_max_ms);
	fflush(s->out);
	s->window_start_ns = now;
	s->window_count = s->window_bytes = 0;
	s->window_total_ms = s->window_max_ms = 0;
}

static void pp_record_delivery(struct pp_stats *s, double latency_ms, size_t bytes, int64_t now)
{
	if (s->count % s->sampling == 0 && s->sample_cnt < s->sample_cap)
		s->samples[s->sample_cnt++] = (float)latency_ms;
	s->count++;
	s->bytes += (int64_t)bytes;
	s->total_ms += latency_ms;
	if (latency_ms > s->max_ms)
		s->max_ms = latency_ms;
	s->window_count++;
	s->window_bytes += (int64_t)bytes;
	s->window_total_ms += latency_ms;
	if (latency_ms > s->window_max_ms)
		s->window_max_ms = latency_ms;
	if (now - s->window_start_ns >= PP_WINDOW_NS)
		pp_print_window(s, now);
}

static void pp_record_error(struct pp_stats *s, const char *topic, int32_t partition, rd_kafka_resp_err_t err)
{
	char what[512];
	if (partition == RD_KAFKA_PARTITION_UA)
		snprintf(what, sizeof(what), "%s: %s (%s)", topic, rd_kafka_err2str(err), rd_kafka_err2name(err));
	else
		snprintf(what, sizeof(what), "%s [%d]: %s (%s)", topic, (int)partition, rd_kafka_err2str(err),
		         rd_kafka_err2name(err));
	if (s->errors == 0)
		snprintf(s->first_error, sizeof(s->first_error), "%s", what);
	s->errors++;
	if (s->errors <= PP_SHOWN_ERRORS)
		perf_log("record failed: %s%s", what,
		         s->errors == PP_SHOWN_ERRORS ? " (further failures are only counted)" : "");
}

/* Served by rd_kafka_poll()/rd_kafka_flush() on the main thread. */
static void pp_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct pp_stats *s = opaque;
	int64_t now = perf_now_ns();
	int64_t sent = (int64_t)(uintptr_t)m->_private;
	s->last_report_ns = now;
	if (m->err)
		pp_record_error(s, rd_kafka_topic_name(m->rkt), m->partition, m->err);
	else
		pp_record_delivery(s, (double)(now - sent) / (double)PERF_NS_PER_MS, m->len, now);
}

static bool pp_fatal;

static void pp_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)opaque;
	if (perf_client_error(rk, err, reason))
		pp_fatal = true;
}

static bool pp_stalled(const struct pp_stats *s, const struct pp_options *o)
{
	return perf_now_ns() - s->last_report_ns > o->timeout_ms * PERF_NS_PER_MS;
}

/* Waits until `due` (monotonic ns), serving delivery reports meanwhile. */
static void pp_sleep_until(rd_kafka_t *rk, int64_t due)
{
	for (int64_t now = perf_now_ns(); now < due && !perf_interrupted; now = perf_now_ns()) {
		int64_t left = due - now;
		if (left >= PERF_NS_PER_MS) {
			rd_kafka_poll(rk, (int)(left / PERF_NS_PER_MS));
		} else {
			struct timespec ts = {0, (long)left};
			nanosleep(&ts, NULL);
		}
	}
}

enum pp_stop {
	PP_COMPLETE,
	PP_INTERRUPTED,
	PP_STALLED,
	PP_FATAL,
};

static enum pp_stop pp_produce_all(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct pp_options *o,
                                   const struct pp_payloads *pl, struct pp_stats *s, int64_t *produced)
{
	for (int64_t i = 0; i < o->num_records; i++) {
		struct pp_record r = pp_next_record(pl);
		int64_t sent = perf_now_ns();
		while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, (void *)r.p, r.len, NULL, 0,
		                        (void *)(uintptr_t)sent) != 0) {
			rd_kafka_resp_err_t err = rd_kafka_last_error();
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				pp_record_error(s, o->topic, RD_KAFKA_PARTITION_UA, err);
				break;
			}
			rd_kafka_poll(rk, 10); /* wait for queue space */
			if (perf_interrupted)
				return PP_INTERRUPTED;
			if (pp_fatal)
				return PP_FATAL;
			if (pp_stalled(s, o))
				return PP_STALLED;
		}
		*produced = i + 1;
		rd_kafka_poll(rk, 0);
		if (perf_interrupted)
			return PP_INTERRUPTED;
		if (pp_fatal)
			return PP_FATAL;
		if (o->throughput > 0) {
			int64_t due = s->start_ns + (int64_t)((double)(i + 1) * (double)PERF_NS_PER_S / o->throughput);
			if (due - perf_now_ns() >= PP_MIN_SLEEP_NS)
				pp_sleep_until(rk, due);
		}
	}
	return PP_COMPLETE;
}

/* Waits for every delivery report, giving up after --timeout without one. */
static enum pp_stop pp_flush(rd_kafka_t *rk, const struct pp_options *o, struct pp_stats *s, bool interruptible)
{
	while (rd_kafka_flush(rk, 100) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
		if (interruptible && perf_interrupted)
			return PP_INTERRUPTED;
		if (pp_fatal)
			return PP_FATAL;
		if (pp_stalled(s, o))
			return PP_STALLED;
	}
	return PP_COMPLETE;
}

static int pp_cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

static double pp_percentile(const struct pp_stats *s, double p)
{
	if (s->sample_cnt == 0)
		return 0;
	size_t i = (size_t)(p * (double)s->sample_cnt);
	return s->samples[i < s->sample_cnt ? i : s->sample_cnt - 1];
}

static void pp_print_total(struct pp_stats *s, const struct pp_options *o, int64_t end_ns)
{
	int64_t ns = end_ns - s->start_ns;
	double rps = pp_rate((double)s->count, ns), mbps = pp_rate((double)s->bytes / PERF_MB, ns);
	double avg = s->count ? s->total_ms / (double)s->count : 0.0;
	qsort(s->samples, s->sample_cnt, sizeof(*s->samples), pp_cmp_float);
	double p50 = pp_percentile(s, 0.5), p95 = pp_percentile(s, 0.95), p99 = pp_percentile(s, 0.99),
	       p999 = pp_percentile(s, 0.999);
	if (o->json)
		printf("{\"records\":%lld,\"records_per_sec\":%.3f,\"mb_per_sec\":%.3f,\"avg_ms\":%.3f,\"max_ms\":%.3f,"
		       "\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"errors\":%lld,\"elapsed_ms\":%.3f}\n",
		       (long long)s->count, rps, mbps, avg, s->max_ms, p50, p95, p99, p999, (long long)s->errors,
		       (double)ns / (double)PERF_NS_PER_MS);
	else /* Java prints whole-millisecond latencies for the percentiles */
		printf("%lld records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "
		       "%lld ms 50th, %lld ms 95th, %lld ms 99th, %lld ms 99.9th.\n",
		       (long long)s->count, rps, mbps, avg, s->max_ms, (long long)p50, (long long)p95, (long long)p99,
		       (long long)p999);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct pp_options o = {0};
	struct pp_payloads pl = {0};
	struct pp_stats s;
	char errstr[512];

	perf_init("kstretch-producer-perf");
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	pp_parse_args(argc, argv, &o, conf);
	FILE *info = o.json ? stderr : stdout;
	if (o.payload_file)
		pp_payloads_file(&pl, o.payload_file, o.payload_delimiter, info);
	else
		pp_payloads_random(&pl, (size_t)o.record_size);

	rd_kafka_conf_set_opaque(conf, &s); /* s is initialised below, before the first record */
	rd_kafka_conf_set_dr_msg_cb(conf, pp_on_delivery);
	rd_kafka_conf_set_error_cb(conf, pp_on_error);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		perf_log("cannot create the producer: %s", errstr);
		return PERF_EXIT_USAGE;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
	if (!rkt) {
		perf_log("topic %s: %s", o.topic, rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_destroy(rk);
		return PERF_EXIT_USAGE;
	}

	pp_stats_init(&s, o.num_records, info); /* the clock starts now, as the Java tool's */
	int64_t produced = 0;
	enum pp_stop stop = pp_produce_all(rk, rkt, &o, &pl, &s, &produced);
	if (stop == PP_COMPLETE) {
		stop = pp_flush(rk, &o, &s, true);
	} else if (stop == PP_INTERRUPTED) {
		pp_flush(rk, &o, &s, false); /* what was produced still counts; a second signal ends it */
	}
	int64_t end_ns = perf_now_ns();
	int outstanding = rd_kafka_outq_len(rk);
	if (outstanding > 0) { /* failed records are delivery reports too: purge, then serve those */
		rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_flush(rk, 1000);
	}
	pp_print_total(&s, &o, end_ns);

	int rc = PERF_EXIT_OK;
	switch (stop) {
	case PP_COMPLETE: break;
	case PP_INTERRUPTED:
		perf_log("interrupted after producing %lld of %lld records", (long long)produced,
		         (long long)o.num_records);
		rc = PERF_EXIT_FAIL;
		break;
	case PP_STALLED:
		perf_log("gave up: no delivery report for %lld ms with %d records outstanding (%lld of %lld produced)",
		         (long long)o.timeout_ms, outstanding, (long long)produced, (long long)o.num_records);
		rc = PERF_EXIT_FAIL;
		break;
	case PP_FATAL:
		perf_log("gave up on a fatal producer error (%lld of %lld produced)", (long long)produced,
		         (long long)o.num_records);
		rc = PERF_EXIT_FAIL;
		break;
	}
	if (s.errors > 0) {
		perf_log("%lld of %lld records failed delivery; first: %s", (long long)s.errors,
		         (long long)o.num_records, s.first_error);
		rc = PERF_EXIT_FAIL;
	}

	perf_watchdog_arm(PP_CLOSE_SECONDS, "closing the producer");
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	perf_watchdog_disarm();
	free(s.samples);
	free(pl.records);
	free(pl.buf);
	return rc;
}
