/*
 * kstretch-consumer-perf: Apache Kafka's kafka-consumer-perf-test on librdkafka.
 *
 *   kstretch-consumer-perf --bootstrap-server 127.0.0.1:9092 --topic perf --messages 200000 --group g1
 *
 * Subscribes with the group (auto.offset.reset=earliest unless --from-latest),
 * or with --assign takes every partition by hand without a group (what the
 * Java tool cannot do, and what regional mode's benchmark needs until it has
 * groups), consumes N messages and prints, like the Java tool:
 *
 *   start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
 *   fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
 *   2025-01-01 12:00:00:000, 2025-01-01 12:00:02:500, 195.3125, 78.1250, 200000, 80000.0000, 1500, 1000,
 *   195.3125, 200000.0000
 *
 * (one header line, one summary line). MB counts key and value bytes in 2^20
 * units; rebalance.time.ms is the time from subscribing (or from a revocation)
 * to each assignment, fetch.time.ms the rest of the run. --timeout is, as in
 * the Java tool, the longest wait for the next message; running out of it
 * before N messages prints the summary and exits 1 (Java only warns).
 * Closing the consumer is bounded by a watchdog.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "perf_common.h"

#define CP_DEFAULT_TIMEOUT 60000
#define CP_POLL_MS         100
#define CP_CLOSE_SECONDS   30

struct cp_options {
	const char *topic;
	const char *group;
	int64_t messages;
	int64_t timeout_ms;
	bool hide_header;
	bool json;
	bool assign;      /* every partition by hand, no group */
	bool from_latest;
};

struct cp_state {
	int64_t join_start_ns; /* subscribe, or the last revocation */
	int64_t join_ns;       /* summed time to each assignment */
	int assignments;
	bool fatal;
};

static void cp_usage(FILE *out)
{
	fputs("usage: kstretch-consumer-perf --bootstrap-server HOST:PORT --topic TOPIC --messages N\n"
	      "           [--group GROUP] [--consumer.config FILE] [--timeout MS] [--from-latest]\n"
	      "           [--fetch-size BYTES] [--assign] [--hide-header] [--json] [--print-metrics]\n"
	      "Apache Kafka's kafka-consumer-perf-test on librdkafka: consumes N messages of TOPIC as a member\n"
	      "of GROUP and prints the header and summary line of the Java tool.\n"
	      "  --group GROUP          consumer group (default perf-consumer-NNNNN)\n"
	      "  --consumer.config FILE librdkafka consumer properties as a .properties file\n"
	      "  --timeout MS           longest wait for the next message; default 60000\n"
	      "  --from-latest          start at the end of the log when the group has no offset\n"
	      "                         (default: auto.offset.reset=earliest)\n"
	      "  --fetch-size BYTES     max.partition.fetch.bytes\n"
	      "  --assign               no group: every partition of TOPIC assigned by hand from its\n"
	      "                         beginning (its end with --from-latest); rebalance.time.ms is\n"
	      "                         then the time to learn the partitions and assign them\n"
	      "  --hide-header          no header line\n"
	      "  --json                 the summary as one JSON line instead\n"
	      "  --print-metrics        accepted and ignored\n"
	      "Exit status: 0 N messages consumed, 1 timed out or failed, 2 bad arguments.\n",
	      out);
}

static void cp_parse_args(int argc, char **argv, struct cp_options *o, rd_kafka_conf_t *conf)
{
	const char *v, *bootstrap = NULL, *config_file = NULL, *fetch_size = NULL;
	static char default_group[32];

	o->timeout_ms = CP_DEFAULT_TIMEOUT;
	for (int i = 1; i < argc; i++) {
		if (perf_flag(argv, i, "--help") || perf_flag(argv, i, "-h")) {
			cp_usage(stdout);
			exit(PERF_EXIT_OK);
		} else if (perf_opt(argc, argv, &i, "--bootstrap-server", &v) ||
		           perf_opt(argc, argv, &i, "--broker-list", &v)) {
			bootstrap = v;
		} else if (perf_opt(argc, argv, &i, "--topic", &v)) {
			o->topic = v;
		} else if (perf_opt(argc, argv, &i, "--messages", &v)) {
			o->messages = perf_parse_int("--messages", v, 1, INT64_MAX);
		} else if (perf_opt(argc, argv, &i, "--group", &v)) {
			if (!*v)
				perf_usage_error("--group must not be empty");
			o->group = v;
		} else if (perf_opt(argc, argv, &i, "--consumer.config", &v)) {
			config_file = v;
		} else if (perf_opt(argc, argv, &i, "--timeout", &v)) {
			o->timeout_ms = perf_parse_int("--timeout", v, 1, INT64_MAX / PERF_NS_PER_MS);
		} else if (perf_opt(argc, argv, &i, "--fetch-size", &v)) {
			perf_parse_int("--fetch-size", v, 1, INT32_MAX);
			fetch_size = v;
		} else if (perf_flag(argv, i, "--from-latest")) {
			o->from_latest = true;
		} else if (perf_flag(argv, i, "--assign")) {
			o->assign = true;
		} else if (perf_flag(argv, i, "--hide-header")) {
			o->hide_header = true;
		} else if (perf_flag(argv, i, "--json")) {
			o->json = true;
		} else if (perf_flag(argv, i, "--print-metrics")) {
			/* accepted for compatibility */
		} else if (argv[i][0] == '-') {
			perf_usage_error("unknown option %s", argv[i]);
		} else {
			perf_usage_error("unexpected argument '%s'", argv[i]);
		}
	}

	if (!o->topic || !*o->topic)
		perf_usage_error("--topic is required");
	if (o->messages == 0)
		perf_usage_error("--messages is required");
	if (o->assign && o->group)
		perf_usage_error("--assign consumes without a group: --group does not go with it");
	if (!o->group && !o->assign) {
		snprintf(default_group, sizeof(default_group), "perf-consumer-%d", (int)(perf_random() % 100000));
		o->group = default_group;
	}

	/* The Java tool's defaults, then the file, then the options that override both. */
	perf_conf_set(conf, "default", "client.id", "perf-consumer-client");
	perf_conf_set(conf, "default", "auto.offset.reset", "earliest");
	if (config_file)
		perf_conf_load_file(conf, config_file);
	if (bootstrap)
		perf_conf_set(conf, "--bootstrap-server", "bootstrap.servers", bootstrap);
	if (!perf_conf_has(conf, "bootstrap.servers"))
		perf_usage_error("--bootstrap-server is required");
	if (o->assign) {
		/* librdkafka's consumer wants a group.id even to assign by hand; nothing joins it or commits to it. */
		snprintf(default_group, sizeof(default_group), "perf-assign-%d", (int)(perf_random() % 100000));
		perf_conf_set(conf, "--assign", "group.id", default_group);
		perf_conf_set(conf, "--assign", "enable.auto.commit", "false");
	} else {
		perf_conf_set(conf, "--group", "group.id", o->group);
	}
	if (o->from_latest)
		perf_conf_set(conf, "--from-latest", "auto.offset.reset", "latest");
	if (fetch_size)
		perf_conf_set(conf, "--fetch-size", "max.partition.fetch.bytes", fetch_size);
}

static void cp_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                            void *opaque)
{
	struct cp_state *st = opaque;
	bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		st->join_ns += perf_now_ns() - st->join_start_ns;
		st->assignments++;
		if (cooperative)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, parts);
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		st->join_start_ns = perf_now_ns();
		if (cooperative)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, NULL);
		break;
	default:
		perf_log("rebalance failed: %s", rd_kafka_err2str(err));
		aerr = rd_kafka_assign(rk, NULL);
		break;
	}
	if (error) {
		perf_log("(un)assigning partitions failed: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	} else if (aerr) {
		perf_log("(un)assigning partitions failed: %s", rd_kafka_err2str(aerr));
	}
}

/* --assign: every partition of the topic from its beginning (or end), no group. */
static rd_kafka_resp_err_t cp_assign_all(rd_kafka_t *rk, const struct cp_options *o)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : rd_kafka_last_error();
	if (!err && !md)
		err = RD_KAFKA_RESP_ERR__FAIL;
	if (!err && (md->topic_cnt != 1 || md->topics[0].err))
		err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
	if (!err && md->topics[0].partition_cnt == 0)
		err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
	if (!err) {
		const struct rd_kafka_metadata_topic *t = &md->topics[0];
		rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partition_cnt);
		for (int i = 0; i < t->partition_cnt; i++)
			rd_kafka_topic_partition_list_add(parts, o->topic, t->partitions[i].id)->offset =
				o->from_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
		err = rd_kafka_assign(rk, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	return err;
}

static void cp_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct cp_state *st = opaque;
	if (perf_client_error(rk, err, reason))
		st->fatal = true;
}

/* The Java tool's default date format, yyyy-MM-dd HH:mm:ss:SSS, in local time. */
static void cp_format_time(const struct timeval *tv, char *buf, size_t size)
{
	struct tm tm;
	char day[32];
	time_t sec = tv->tv_sec;
	localtime_r(&sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, size, "%s:%03d", day, (int)(tv->tv_usec / 1000));
}

enum cp_stop {
	CP_COMPLETE,
	CP_TIMED_OUT,
	CP_INTERRUPTED,
	CP_FATAL,
};

struct cp_counts {
	int64_t messages;
	int64_t bytes;
};

static enum cp_stop cp_consume(rd_kafka_t *rk, const struct cp_options *o, const struct cp_state *st,
                               struct cp_counts *c)
{
	rd_kafka_resp_err_t last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
	int64_t last_message_ns = perf_now_ns();

	while (c->messages < o->messages) {
		if (perf_interrupted)
			return CP_INTERRUPTED;
		if (st->fatal)
			return CP_FATAL;
		if (perf_now_ns() - last_message_ns > o->timeout_ms * PERF_NS_PER_MS)
			return CP_TIMED_OUT;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, CP_POLL_MS);
		if (!m)
			continue;
		if (!m->err) {
			c->messages++;
			c->bytes += (int64_t)m->len + (int64_t)m->key_len;
			last_message_ns = perf_now_ns();
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && m->err != last_err) {
			/* Once per kind of error in a row: the consumer retries on its own. */
			perf_log("consumer error: %s%s%s", m->rkt ? rd_kafka_topic_name(m->rkt) : "",
			         m->rkt ? ": " : "", rd_kafka_message_errstr(m));
			last_err = m->err;
		}
		rd_kafka_message_destroy(m);
	}
	return CP_COMPLETE;
}

static double cp_rate(double amount, double ms)
{
	return ms > 0 ? amount * 1000.0 / ms : 0.0;
}

static void cp_print(const struct cp_options *o, const struct cp_counts *c, const struct cp_state *st,
                     const struct timeval *start, const struct timeval *end, int64_t elapsed_ns, bool complete)
{
	char start_s[64], end_s[64];
	cp_format_time(start, start_s, sizeof(start_s));
	cp_format_time(end, end_s, sizeof(end_s));
	int64_t elapsed_ms = elapsed_ns / PERF_NS_PER_MS;
	int64_t rebalance_ms = st->join_ns / PERF_NS_PER_MS;
	int64_t fetch_ms = elapsed_ms - rebalance_ms;
	double mb = (double)c->bytes / PERF_MB, msgs = (double)c->messages;

	if (o->json) {
		printf("{\"start_time\":\"%s\",\"end_time\":\"%s\",\"mb\":%.4f,\"mb_per_sec\":%.4f,\"messages\":%lld,"
		       "\"messages_per_sec\":%.4f,\"rebalance_time_ms\":%lld,\"fetch_time_ms\":%lld,"
		       "\"fetch_mb_per_sec\":%.4f,\"fetch_messages_per_sec\":%.4f,\"expected\":%lld,"
		       "\"complete\":%s}\n",
		       start_s, end_s, mb, cp_rate(mb, (double)elapsed_ms), (long long)c->messages,
		       cp_rate(msgs, (double)elapsed_ms), (long long)rebalance_ms, (long long)fetch_ms,
		       cp_rate(mb, (double)fetch_ms), cp_rate(msgs, (double)fetch_ms), (long long)o->messages,
		       complete ? "true" : "false");
	} else {
		if (!o->hide_header)
			puts("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
			     "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
		printf("%s, %s, %.4f, %.4f, %lld, %.4f, %lld, %lld, %.4f, %.4f\n", start_s, end_s, mb,
		       cp_rate(mb, (double)elapsed_ms), (long long)c->messages, cp_rate(msgs, (double)elapsed_ms),
		       (long long)rebalance_ms, (long long)fetch_ms, cp_rate(mb, (double)fetch_ms),
		       cp_rate(msgs, (double)fetch_ms));
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct cp_options o = {0};
	struct cp_state st = {0};
	struct cp_counts c = {0};
	char errstr[512];

	perf_init("kstretch-consumer-perf");
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	cp_parse_args(argc, argv, &o, conf);
	rd_kafka_conf_set_opaque(conf, &st);
	rd_kafka_conf_set_rebalance_cb(conf, cp_on_rebalance);
	rd_kafka_conf_set_error_cb(conf, cp_on_error);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk) {
		perf_log("cannot create the consumer: %s", errstr);
		return PERF_EXIT_USAGE;
	}
	rd_kafka_poll_set_consumer(rk);

	struct timeval start, end;
	gettimeofday(&start, NULL);
	int64_t start_ns = perf_now_ns();
	st.join_start_ns = start_ns;
	rd_kafka_resp_err_t err;
	if (o.assign) {
		err = cp_assign_all(rk, &o);
		st.join_ns = perf_now_ns() - start_ns;
		st.assignments = 1;
	} else {
		rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(topics, o.topic, RD_KAFKA_PARTITION_UA);
		err = rd_kafka_subscribe(rk, topics);
		rd_kafka_topic_partition_list_destroy(topics);
	}
	enum cp_stop stop = CP_FATAL;
	if (err)
		perf_log("cannot %s %s: %s", o.assign ? "assign the partitions of" : "subscribe to", o.topic,
		         rd_kafka_err2str(err));
	else
		stop = cp_consume(rk, &o, &st, &c);
	int64_t elapsed_ns = perf_now_ns() - start_ns;
	gettimeofday(&end, NULL);
	if (!err)
		cp_print(&o, &c, &st, &start, &end, elapsed_ns, stop == CP_COMPLETE);

	int rc = stop == CP_COMPLETE ? PERF_EXIT_OK : PERF_EXIT_FAIL;
	switch (stop) {
	case CP_COMPLETE: break;
	case CP_TIMED_OUT:
		perf_log("timed out: no message for %lld ms; consumed %lld of %lld messages", (long long)o.timeout_ms,
		         (long long)c.messages, (long long)o.messages);
		break;
	case CP_INTERRUPTED:
		perf_log("interrupted after %lld of %lld messages", (long long)c.messages, (long long)o.messages);
		break;
	case CP_FATAL:
		perf_log("gave up on a fatal consumer error after %lld of %lld messages", (long long)c.messages,
		         (long long)o.messages);
		break;
	}

	perf_watchdog_arm(CP_CLOSE_SECONDS, "closing the consumer");
	err = rd_kafka_consumer_close(rk);
	if (err)
		perf_log("closing the consumer: %s", rd_kafka_err2str(err));
	rd_kafka_destroy(rk);
	perf_watchdog_disarm();
	return rc;
}
