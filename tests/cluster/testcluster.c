/*
 * kstretch-testcluster: a stretched (multi-region) Kafka cluster simulator on
 * librdkafka's mock cluster (rdkafka_mock.h, modern 2.12 build).
 *
 *   --regions eu:2,us:2,ap:2   brokers per region; node ids interleave the
 *                              regions (1=eu-a 2=us-a 3=ap-a 4=eu-b ...)
 *   --rtt-ms us=40,ap=120      response delay of every broker of a region
 *   --topic NAME:PARTS:RF      create a topic (repeatable); leaders rotate over
 *                              each partition's replicas, so they spread over
 *                              the regions
 *   --follower-region R        every partition led outside R gets its replica
 *                              in R as the mock's follower
 *
 * Once listening it prints one JSON line (bootstrap list, brokers, topics) on
 * stdout, then reads one control command per line on stdin and answers each
 * with one JSON line ({"ok":true,...} or {"ok":false,"error":"..."}):
 *
 *   down ID | up ID | rtt ID MS | leader TOPIC PART ID | follower TOPIC PART ID
 *   error APIKEY CODE COUNT | advertise ID HOST PORT | state | quit
 *
 * It exits cleanly on SIGTERM, SIGINT, EOF on stdin or `quit`.
 *
 * Replica placement mirrors the mock's own (rdkafka_mock.c): partition p's
 * replicas are RF consecutive brokers in id order starting at index
 * (p * RF) % brokers. With regions interleaved by id, RF=3 over three regions
 * puts one replica in each region.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define TC_MAX_REGIONS     16
#define TC_MAX_BROKERS     64
#define TC_MAX_TOPICS      64
#define TC_MAX_PARTITIONS  4096
#define TC_NAME_MAX        64
#define TC_LINE_MAX        1024
#define TC_MAX_ERROR_COUNT 100000

struct tc_region {
	char name[TC_NAME_MAX];
	int brokers;
	int rtt_ms;
};

struct tc_broker {
	int32_t id;
	int region; /* index into tc_cluster.regions */
	char rack[TC_NAME_MAX + 4];
	char host[256]; /* listener address */
	int port;
	char adv_host[256]; /* advertised in metadata */
	int adv_port;
	int rtt_ms;
	bool up;
};

struct tc_partition {
	int32_t leader;
	int32_t follower; /* -1: none */
};

struct tc_topic {
	char name[TC_NAME_MAX * 4];
	int partitions;
	int rf;
	struct tc_partition *parts;
};

struct tc_cluster {
	struct tc_region regions[TC_MAX_REGIONS];
	int region_cnt;
	struct tc_broker brokers[TC_MAX_BROKERS];
	int broker_cnt;
	struct tc_topic topics[TC_MAX_TOPICS];
	int topic_cnt;
	char follower_region[TC_NAME_MAX];
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mock;
};

static volatile sig_atomic_t tc_stop;

static void tc_on_signal(int sig)
{
	(void)sig;
	tc_stop = 1;
}

static void tc_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void tc_die(const char *fmt, ...)
{
	va_list ap;
	fputs("kstretch-testcluster: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Names used as regions and topics: no JSON escaping needed for these. */
static bool tc_valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool tc_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int tc_region_index(const struct tc_cluster *c, const char *name)
{
	for (int i = 0; i < c->region_cnt; i++)
		if (strcmp(c->regions[i].name, name) == 0)
			return i;
	return -1;
}

static struct tc_broker *tc_broker_by_id(struct tc_cluster *c, long id)
{
	for (int i = 0; i < c->broker_cnt; i++)
		if (c->brokers[i].id == id)
			return &c->brokers[i];
	return NULL;
}

static struct tc_topic *tc_topic_by_name(struct tc_cluster *c, const char *name)
{
	for (int i = 0; i < c->topic_cnt; i++)
		if (strcmp(c->topics[i].name, name) == 0)
			return &c->topics[i];
	return NULL;
}

/* Replica k of partition p, as the mock assigns it. */
static int32_t tc_replica(const struct tc_cluster *c, const struct tc_topic *t, int p, int k)
{
	int first = (int)(((long)p * t->rf) % c->broker_cnt);
	return c->brokers[(first + k) % c->broker_cnt].id;
}

static void tc_parse_regions(struct tc_cluster *c, const char *arg)
{
	char buf[TC_LINE_MAX];
	if (strlen(arg) >= sizeof(buf))
		tc_die("--regions: value too long");
	strcpy(buf, arg);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		long n;
		if (!colon)
			tc_die("--regions: '%s' is not REGION:BROKERS", tok);
		*colon = '\0';
		if (!tc_valid_name(tok, TC_NAME_MAX))
			tc_die("--regions: bad region name '%s'", tok);
		if (!tc_parse_int(colon + 1, 1, 26, &n))
			tc_die("--regions: broker count for '%s' must be 1..26", tok);
		if (tc_region_index(c, tok) >= 0)
			tc_die("--regions: region '%s' given twice", tok);
		if (c->region_cnt == TC_MAX_REGIONS)
			tc_die("--regions: at most %d regions", TC_MAX_REGIONS);
		struct tc_region *r = &c->regions[c->region_cnt++];
		snprintf(r->name, sizeof(r->name), "%s", tok);
		r->brokers = (int)n;
	}
	if (c->region_cnt == 0)
		tc_die("--regions: no region given");
}

static void tc_parse_rtts(struct tc_cluster *c, const char *arg)
{
	char buf[TC_LINE_MAX];
	if (strlen(arg) >= sizeof(buf))
		tc_die("--rtt-ms: value too long");
	strcpy(buf, arg);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		long ms;
		int ri;
		if (!eq)
			tc_die("--rtt-ms: '%s' is not REGION=MS", tok);
		*eq = '\0';
		if ((ri = tc_region_index(c, tok)) < 0)
			tc_die("--rtt-ms: unknown region '%s' (give --regions first)", tok);
		if (!tc_parse_int(eq + 1, 0, 60000, &ms))
			tc_die("--rtt-ms: delay for '%s' must be 0..60000", tok);
		c->regions[ri].rtt_ms = (int)ms;
	}
}

static void tc_parse_topic(struct tc_cluster *c, const char *arg)
{
	char buf[TC_LINE_MAX];
	char *p1, *p2;
	long parts, rf;
	if (strlen(arg) >= sizeof(buf))
		tc_die("--topic: value too long");
	strcpy(buf, arg);
	if (!(p1 = strchr(buf, ':')) || !(p2 = strchr(p1 + 1, ':')))
		tc_die("--topic: '%s' is not NAME:PARTITIONS:RF", arg);
	*p1++ = '\0';
	*p2++ = '\0';
	if (!tc_valid_name(buf, sizeof(c->topics[0].name)))
		tc_die("--topic: bad topic name '%s'", buf);
	if (!tc_parse_int(p1, 1, TC_MAX_PARTITIONS, &parts))
		tc_die("--topic %s: partitions must be 1..%d", buf, TC_MAX_PARTITIONS);
	if (!tc_parse_int(p2, 1, TC_MAX_BROKERS, &rf))
		tc_die("--topic %s: replication factor must be 1..%d", buf, TC_MAX_BROKERS);
	if (tc_topic_by_name(c, buf))
		tc_die("--topic: topic '%s' given twice", buf);
	if (c->topic_cnt == TC_MAX_TOPICS)
		tc_die("--topic: at most %d topics", TC_MAX_TOPICS);
	struct tc_topic *t = &c->topics[c->topic_cnt++];
	snprintf(t->name, sizeof(t->name), "%s", buf);
	t->partitions = (int)parts;
	t->rf = (int)rf;
}

static void tc_usage(FILE *out)
{
	fputs("usage: kstretch-testcluster --regions R:N[,R:N...] [--rtt-ms R=MS[,R=MS...]]\n"
	      "                            [--topic NAME:PARTITIONS:RF]... [--follower-region R]\n"
	      "Simulates a stretched Kafka cluster on librdkafka's mock cluster.\n"
	      "Prints one JSON line once listening, then reads control commands on stdin:\n"
	      "  down ID | up ID | rtt ID MS | leader TOPIC PART ID | follower TOPIC PART ID\n"
	      "  error APIKEY CODE COUNT | advertise ID HOST PORT | state | quit\n",
	      out);
}

static void tc_parse_args(struct tc_cluster *c, int argc, char **argv)
{
	const char *rtts = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			tc_usage(stdout);
			exit(0);
		}
		if (i + 1 >= argc)
			tc_die("%s: needs a value (see --help)", a);
		const char *v = argv[++i];
		if (strcmp(a, "--regions") == 0)
			tc_parse_regions(c, v);
		else if (strcmp(a, "--rtt-ms") == 0)
			rtts = v;
		else if (strcmp(a, "--topic") == 0)
			tc_parse_topic(c, v);
		else if (strcmp(a, "--follower-region") == 0)
			snprintf(c->follower_region, sizeof(c->follower_region), "%s", v);
		else
			tc_die("unknown option '%s' (see --help)", a);
	}
	if (c->region_cnt == 0)
		tc_die("--regions is required (see --help)");
	if (rtts)
		tc_parse_rtts(c, rtts);
	if (c->follower_region[0] && tc_region_index(c, c->follower_region) < 0)
		tc_die("--follower-region: unknown region '%s'", c->follower_region);
}

/* Node ids interleave the regions: 1=eu-a 2=us-a 3=ap-a 4=eu-b ... */
static void tc_layout_brokers(struct tc_cluster *c)
{
	int total = 0;
	for (int r = 0; r < c->region_cnt; r++)
		total += c->regions[r].brokers;
	if (total > TC_MAX_BROKERS)
		tc_die("--regions: at most %d brokers in all", TC_MAX_BROKERS);
	for (int letter = 0; c->broker_cnt < total; letter++) {
		for (int r = 0; r < c->region_cnt; r++) {
			if (letter >= c->regions[r].brokers)
				continue;
			struct tc_broker *b = &c->brokers[c->broker_cnt];
			b->id = ++c->broker_cnt;
			b->region = r;
			b->rtt_ms = c->regions[r].rtt_ms;
			b->up = true;
			snprintf(b->rack, sizeof(b->rack), "%s-%c", c->regions[r].name, 'a' + letter);
		}
	}
}

/*
 * librdkafka 2.12's mock thread serves its op queue before it drains its
 * wake-up pipe: an op queued in between has its wake-up byte drained unseen
 * and waits for the thread's next 1 s tick. Start-up issues one op per
 * partition back to back, which hits that window often (a 2,000-partition
 * topic took minutes); a short pause after each op lets the thread finish
 * draining first.
 */
static void tc_op_pause(void)
{
	usleep(300);
}

static void tc_set_follower(struct tc_cluster *c, struct tc_topic *t, int p)
{
	int fr = tc_region_index(c, c->follower_region);
	struct tc_broker *leader = tc_broker_by_id(c, t->parts[p].leader);
	if (leader->region == fr)
		return;
	for (int k = 0; k < t->rf && k < c->broker_cnt; k++) {
		struct tc_broker *b = tc_broker_by_id(c, tc_replica(c, t, p, k));
		if (b->region == fr) {
			rd_kafka_resp_err_t err = rd_kafka_mock_partition_set_follower(c->mock, t->name, p, b->id);
			if (err)
				tc_die("%s[%d]: set follower %d: %s", t->name, p, b->id, rd_kafka_err2str(err));
			tc_op_pause();
			t->parts[p].follower = b->id;
			return;
		}
	}
}

static void tc_create_topics(struct tc_cluster *c)
{
	for (int i = 0; i < c->topic_cnt; i++) {
		struct tc_topic *t = &c->topics[i];
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(c->mock, t->name, t->partitions, t->rf);
		if (err)
			tc_die("topic %s: %s", t->name, rd_kafka_err2str(err));
		t->parts = calloc((size_t)t->partitions, sizeof(*t->parts));
		if (!t->parts)
			tc_die("out of memory");
		int replicas = t->rf < c->broker_cnt ? t->rf : c->broker_cnt;
		for (int p = 0; p < t->partitions; p++) {
			/* The mock picks a random replica as leader: rotate instead, so
			 * that leadership spreads over the regions deterministically. */
			t->parts[p].leader = tc_replica(c, t, p, p % replicas);
			t->parts[p].follower = -1;
			err = rd_kafka_mock_partition_set_leader(c->mock, t->name, p, t->parts[p].leader);
			if (err)
				tc_die("%s[%d]: set leader: %s", t->name, p, rd_kafka_err2str(err));
			tc_op_pause();
			if (c->follower_region[0])
				tc_set_follower(c, t, p);
		}
	}
}

/* bootstraps is "host:port,host:port,..." in broker id order. */
static void tc_read_listeners(struct tc_cluster *c)
{
	const char *bs = rd_kafka_mock_cluster_bootstraps(c->mock);
	char buf[TC_MAX_BROKERS * 300];
	int i = 0;
	if (strlen(bs) >= sizeof(buf))
		tc_die("bootstrap list too long");
	strcpy(buf, bs);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
		char *colon = strrchr(tok, ':');
		long port;
		if (i >= c->broker_cnt || !colon || !tc_parse_int(colon + 1, 1, 65535, &port))
			tc_die("unexpected bootstrap list from the mock: %s", bs);
		*colon = '\0';
		struct tc_broker *b = &c->brokers[i];
		snprintf(b->host, sizeof(b->host), "%s", tok);
		snprintf(b->adv_host, sizeof(b->adv_host), "%s", tok);
		b->port = b->adv_port = (int)port;
	}
	if (i != c->broker_cnt)
		tc_die("mock listed %d brokers, expected %d", i, c->broker_cnt);
}

static void tc_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void tc_print_state(struct tc_cluster *c, FILE *out)
{
	fputs("\"bootstrap\":\"", out);
	for (int i = 0; i < c->broker_cnt; i++)
		fprintf(out, "%s%s:%d", i ? "," : "", c->brokers[i].host, c->brokers[i].port);
	fputs("\",\"brokers\":[", out);
	for (int i = 0; i < c->broker_cnt; i++) {
		struct tc_broker *b = &c->brokers[i];
		fprintf(out, "%s{\"id\":%" PRId32 ",\"host\":", i ? "," : "", b->id);
		tc_json_str(out, b->host);
		fprintf(out,
		        ",\"port\":%d,\"rack\":\"%s\",\"region\":\"%s\",\"rtt_ms\":%d,\"up\":%s,"
		        "\"advertised_host\":",
		        b->port, b->rack, c->regions[b->region].name, b->rtt_ms, b->up ? "true" : "false");
		tc_json_str(out, b->adv_host);
		fprintf(out, ",\"advertised_port\":%d}", b->adv_port);
	}
	fputs("],\"topics\":[", out);
	for (int i = 0; i < c->topic_cnt; i++) {
		struct tc_topic *t = &c->topics[i];
		fprintf(out, "%s{\"name\":\"%s\",\"rf\":%d,\"partitions\":[", i ? "," : "", t->name, t->rf);
		int replicas = t->rf < c->broker_cnt ? t->rf : c->broker_cnt;
		for (int p = 0; p < t->partitions; p++) {
			fprintf(out,
			        "%s{\"partition\":%d,\"leader\":%" PRId32 ",\"follower\":%" PRId32 ",\"replicas\":[",
			        p ? "," : "", p, t->parts[p].leader, t->parts[p].follower);
			for (int k = 0; k < replicas; k++)
				fprintf(out, "%s%" PRId32, k ? "," : "", tc_replica(c, t, p, k));
			fputs("]}", out);
		}
		fputs("]}", out);
	}
	fputc(']', out);
}

static void tc_reply_ok(struct tc_cluster *c, const char *cmd, bool with_state)
{
	printf("{\"ok\":true,\"cmd\":");
	tc_json_str(stdout, cmd);
	if (with_state) {
		putchar(',');
		tc_print_state(c, stdout);
	}
	puts("}");
	fflush(stdout);
}

static void tc_reply_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tc_reply_err(const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"ok\":false,\"cmd\":");
	tc_json_str(stdout, cmd);
	printf(",\"error\":");
	tc_json_str(stdout, msg);
	puts("}");
	fflush(stdout);
}

/* Split a command line into at most max words; returns the count or -1. */
static int tc_split(char *line, char **words, int max)
{
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		words[n++] = tok;
	}
	return n;
}

/* Returns false when the simulator should stop. */
static bool tc_command(struct tc_cluster *c, const char *line)
{
	char buf[TC_LINE_MAX];
	char *w[8];
	long a, b, n;
	int cnt;
	struct tc_broker *br;
	struct tc_topic *t;
	rd_kafka_resp_err_t err;

	snprintf(buf, sizeof(buf), "%s", line);
	cnt = tc_split(buf, w, 8);
	if (cnt == 0)
		return true;
	if (cnt < 0) {
		tc_reply_err(line, "too many words");
		return true;
	}

	if (strcmp(w[0], "quit") == 0 && cnt == 1) {
		tc_reply_ok(c, line, false);
		return false;
	}
	if (strcmp(w[0], "state") == 0 && cnt == 1) {
		tc_reply_ok(c, line, true);
		return true;
	}
	if ((strcmp(w[0], "down") == 0 || strcmp(w[0], "up") == 0) && cnt == 2) {
		bool up = w[0][0] == 'u';
		if (!tc_parse_int(w[1], INT32_MIN, INT32_MAX, &a) || !(br = tc_broker_by_id(c, a))) {
			tc_reply_err(line, "unknown broker '%s'", w[1]);
			return true;
		}
		err =
		    up ? rd_kafka_mock_broker_set_up(c->mock, br->id) : rd_kafka_mock_broker_set_down(c->mock, br->id);
		if (err) {
			tc_reply_err(line, "%s", rd_kafka_err2str(err));
			return true;
		}
		br->up = up;
		tc_reply_ok(c, line, false);
		return true;
	}
	if (strcmp(w[0], "rtt") == 0 && cnt == 3) {
		if (!tc_parse_int(w[1], INT32_MIN, INT32_MAX, &a) || !(br = tc_broker_by_id(c, a))) {
			tc_reply_err(line, "unknown broker '%s'", w[1]);
			return true;
		}
		if (!tc_parse_int(w[2], 0, 60000, &b)) {
			tc_reply_err(line, "delay must be 0..60000 ms");
			return true;
		}
		if ((err = rd_kafka_mock_broker_set_rtt(c->mock, br->id, (int)b))) {
			tc_reply_err(line, "%s", rd_kafka_err2str(err));
			return true;
		}
		br->rtt_ms = (int)b;
		tc_reply_ok(c, line, false);
		return true;
	}
	if ((strcmp(w[0], "leader") == 0 || strcmp(w[0], "follower") == 0) && cnt == 4) {
		bool leader = w[0][0] == 'l';
		if (!(t = tc_topic_by_name(c, w[1]))) {
			tc_reply_err(line, "unknown topic '%s'", w[1]);
			return true;
		}
		if (!tc_parse_int(w[2], 0, t->partitions - 1, &a)) {
			tc_reply_err(line, "partition must be 0..%d", t->partitions - 1);
			return true;
		}
		if (!tc_parse_int(w[3], -1, INT32_MAX, &b) || (b != -1 && !tc_broker_by_id(c, b)) ||
		    (leader && b == -1)) {
			tc_reply_err(line, "unknown broker '%s'", w[3]);
			return true;
		}
		err = leader ? rd_kafka_mock_partition_set_leader(c->mock, t->name, (int32_t)a, (int32_t)b)
		             : rd_kafka_mock_partition_set_follower(c->mock, t->name, (int32_t)a, (int32_t)b);
		if (err) {
			tc_reply_err(line, "%s", rd_kafka_err2str(err));
			return true;
		}
		if (leader)
			t->parts[a].leader = (int32_t)b;
		else
			t->parts[a].follower = (int32_t)b;
		tc_reply_ok(c, line, false);
		return true;
	}
	if (strcmp(w[0], "error") == 0 && cnt == 4) {
		if (!tc_parse_int(w[1], 0, INT16_MAX, &a) || !tc_parse_int(w[2], -1, INT16_MAX, &b) ||
		    !tc_parse_int(w[3], 1, TC_MAX_ERROR_COUNT, &n)) {
			tc_reply_err(line, "usage: error APIKEY(0..32767) CODE(-1..32767) COUNT(1..%d)",
			             TC_MAX_ERROR_COUNT);
			return true;
		}
		rd_kafka_resp_err_t *errs = malloc((size_t)n * sizeof(*errs));
		if (!errs) {
			tc_reply_err(line, "out of memory");
			return true;
		}
		for (long i = 0; i < n; i++)
			errs[i] = (rd_kafka_resp_err_t)b;
		rd_kafka_mock_push_request_errors_array(c->mock, (int16_t)a, (size_t)n, errs);
		free(errs);
		tc_reply_ok(c, line, false);
		return true;
	}
	if (strcmp(w[0], "advertise") == 0 && cnt == 4) {
		if (!tc_parse_int(w[1], INT32_MIN, INT32_MAX, &a) || !(br = tc_broker_by_id(c, a))) {
			tc_reply_err(line, "unknown broker '%s'", w[1]);
			return true;
		}
		if (strlen(w[2]) >= sizeof(br->adv_host) - 1 || !tc_parse_int(w[3], 1, 65535, &b)) {
			tc_reply_err(line, "usage: advertise ID HOST PORT(1..65535)");
			return true;
		}
		rd_kafka_mock_broker_set_host_port(c->mock, br->id, w[2], (int)b);
		snprintf(br->adv_host, sizeof(br->adv_host), "%s", w[2]);
		br->adv_port = (int)b;
		tc_reply_ok(c, line, false);
		return true;
	}
	tc_reply_err(line, "unknown command or wrong arguments (see --help)");
	return true;
}

/* Reads stdin lines until quit, EOF or a signal. */
static void tc_control_loop(struct tc_cluster *c)
{
	char buf[TC_LINE_MAX];
	size_t len = 0;
	bool discarding = false; /* inside an over-long line */

	while (!tc_stop) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		int r = poll(&pfd, 1, 200);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			tc_die("poll stdin: %s", strerror(errno));
		if (r == 0)
			continue;
		ssize_t got = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return; /* EOF or error: stop */
		len += (size_t)got;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
			*nl = '\0';
			if (nl > start && nl[-1] == '\r')
				nl[-1] = '\0';
			if (!discarding && !tc_command(c, start))
				return;
			if (discarding)
				tc_reply_err("", "command longer than %d bytes", TC_LINE_MAX - 2);
			discarding = false;
			start = nl + 1;
		}
		len -= (size_t)(start - buf);
		memmove(buf, start, len);
		if (len == sizeof(buf) - 1) {
			discarding = true;
			len = 0;
		}
	}
}

int main(int argc, char **argv)
{
	static struct tc_cluster c;
	char errstr[512];
	struct sigaction sa = {.sa_handler = tc_on_signal};

	tc_parse_args(&c, argc, argv);
	tc_layout_brokers(&c);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		tc_die("%s", errstr);
	c.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!c.rk)
		tc_die("rd_kafka_new: %s", errstr);
	c.mock = rd_kafka_mock_cluster_new(c.rk, c.broker_cnt);
	if (!c.mock)
		tc_die("could not create the mock cluster");

	for (int i = 0; i < c.broker_cnt; i++) {
		struct tc_broker *b = &c.brokers[i];
		rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rack(c.mock, b->id, b->rack);
		if (!err && b->rtt_ms)
			err = rd_kafka_mock_broker_set_rtt(c.mock, b->id, b->rtt_ms);
		if (err)
			tc_die("broker %d: %s", b->id, rd_kafka_err2str(err));
	}
	tc_read_listeners(&c);
	tc_create_topics(&c);

	putchar('{');
	tc_print_state(&c, stdout);
	puts("}");
	fflush(stdout);

	tc_control_loop(&c);

	rd_kafka_mock_cluster_destroy(c.mock);
	rd_kafka_destroy(c.rk);
	for (int i = 0; i < c.topic_cnt; i++)
		free(c.topics[i].parts);
	fprintf(stderr, "kstretch-testcluster: stopped\n");
	return 0;
}
