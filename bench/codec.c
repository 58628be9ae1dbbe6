/*
 * kstretch-bench-codec: what the codec costs on the paths a proxy takes.
 *
 *  1. Metadata v12 response address rewrite, 30 brokers, 10 / 1,000 / 10,000
 *     partitions: decode the prefix up to Brokers, change every broker's host
 *     and port, re-encode the prefix and reference the rest. Reported in ns
 *     per rewrite; the goal is that 10,000 partitions cost within 2x of 10.
 *     For contrast, the same rewrite done by a full decode + encode.
 *  2. Produce v9 request walk: decode the whole structure (record batches as
 *     references) and re-emit it, in GB/s of request bytes.
 *
 * Each figure is the median of --runs timed runs (default 7). The machine is
 * shared and noisy: read ratios, not absolutes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "message.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const struct kp_api *decoded_api(int16_t key, bool request)
{
	const struct kp_api *api = kp_api_get(key);
	if (!api || !(request ? api->request : api->response)) {
		fprintf(stderr, "bench-codec: API %d is not decoded by this build\n", key);
		exit(1);
	}
	return api;
}

static int field(const struct kp_schema *s, const char *name)
{
	int i = kp_field_index(s, name);
	if (i < 0) {
		fprintf(stderr, "bench-codec: %s has no field %s\n", s->name, name);
		exit(1);
	}
	return i;
}

static const struct kp_field *field_def(const struct kp_schema *s, const char *name)
{
	return &s->fields[field(s, name)];
}

/* prefix followed by n, e.g. "broker-12.kafka.internal" from ("broker-", 12, ".kafka.internal"). */
static struct kp_span text(struct kp_arena *a, const char *prefix, int n, const char *suffix)
{
	char *p = kp_arena_alloc(a, 96);
	int len = snprintf(p, 96, "%s%d%s", prefix, n, suffix);
	return (struct kp_span){(const uint8_t *)p, len};
}

static void list(struct kp_arena *a, struct kp_value *v, int32_t n)
{
	v->a.cnt = n;
	v->a.items = kp_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(struct kp_value));
}

/* A Metadata v12 response frame body (response header v1 + body). */
static uint8_t *metadata_response(int brokers, int partitions, size_t *len)
{
	const int16_t ver = 12;
	const struct kp_schema *resp = decoded_api(KP_API_METADATA, false)->response;
	const struct kp_schema *broker = field_def(resp, "Brokers")->sub;
	const struct kp_schema *topic = field_def(resp, "Topics")->sub;
	const struct kp_schema *part = field_def(topic, "Partitions")->sub;
	struct kp_arena a;
	struct kp_writer w;
	kp_arena_init(&a, 0);
	kp_writer_init(&w);

	struct kp_struct *st = kp_struct_new(&a, resp, ver);
	struct kp_value *bv = &st->v[field(resp, "Brokers")];
	list(&a, bv, brokers);
	for (int b = 0; b < brokers; b++) {
		struct kp_struct *bs = kp_struct_new(&a, broker, ver);
		bs->v[field(broker, "NodeId")].i = b + 1;
		bs->v[field(broker, "Host")].s = text(&a, "broker-", b + 1, ".kafka.eu-west-1.internal");
		bs->v[field(broker, "Port")].i = 9092;
		bs->v[field(broker, "Rack")].s = text(&a, "eu-west-1-", b % 3, "");
		bv->a.items[b].st = bs;
	}
	st->v[field(resp, "ClusterId")].s = text(&a, "cluster-", 1, "");
	int topics = partitions >= 100 ? partitions / 100 : 1;
	struct kp_value *tv = &st->v[field(resp, "Topics")];
	list(&a, tv, topics);
	for (int t = 0; t < topics; t++) {
		struct kp_struct *ts = kp_struct_new(&a, topic, ver);
		int per = partitions / topics;
		ts->v[field(topic, "Name")].s = text(&a, "orders-", t, "");
		uint8_t *id = kp_arena_alloc(&a, 16);
		id[0] = (uint8_t)t;
		ts->v[field(topic, "TopicId")].s = (struct kp_span){id, 16};
		struct kp_value *pv = &ts->v[field(topic, "Partitions")];
		list(&a, pv, per);
		for (int p = 0; p < per; p++) {
			struct kp_struct *ps = kp_struct_new(&a, part, ver);
			ps->v[field(part, "PartitionIndex")].i = p;
			ps->v[field(part, "LeaderId")].i = 1 + p % brokers;
			const char *sets[] = {"ReplicaNodes", "IsrNodes"};
			for (int k = 0; k < 2; k++) {
				struct kp_value *rv = &ps->v[field(part, sets[k])];
				list(&a, rv, 3);
				for (int r = 0; r < 3; r++)
					rv->a.items[r].i = 1 + (p + r) % brokers;
			}
			pv->a.items[p].st = ps;
		}
		tv->a.items[t].st = ts;
	}
	kp_write_i32(&w, 1); /* correlation id */
	kp_write_uvarint(&w, 0);
	kp_encode(&w, st, ver, true, -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	kp_arena_free(&a);
	return out;
}

/* The proxy's rewrite: prefix up to Brokers re-encoded, the rest referenced. */
static size_t rewrite_prefix(const uint8_t *body, size_t len, struct kp_writer *w)
{
	const struct kp_schema *resp = kp_api_get(KP_API_METADATA)->response;
	const int brokers = field(resp, "Brokers");
	const struct kp_schema *broker = resp->fields[brokers].sub;
	const int host = field(broker, "Host"), port = field(broker, "Port");
	static const char proxy[] = "127.0.0.1";
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_response_header h;
	kp_arena_init(&a, 0);
	kp_cursor_init(&c, body, len);
	kp_response_header_parse(&c, 1, &h);
	struct kp_struct *st = kp_decode(&a, &c, resp, 12, true, brokers + 1);
	if (!st) {
		fprintf(stderr, "bench-codec: decode failed: %s at %zu\n", kp_error_name(c.err), c.err_pos);
		exit(1);
	}
	struct kp_list *bl = &st->v[brokers].a;
	for (int32_t i = 0; i < bl->cnt; i++) {
		struct kp_struct *b = bl->items[i].st;
		b->v[host].s = (struct kp_span){(const uint8_t *)proxy, (int32_t)sizeof(proxy) - 1};
		b->v[port].i = 19000 + b->v[0].i;
	}
	kp_writer_reset(w);
	kp_response_header_write(w, &h);
	kp_encode(w, st, 12, true, brokers + 1);
	kp_write_ref(w, body + c.pos, len - c.pos);
	kp_writer_finish(w);
	kp_arena_free(&a);
	return kp_writer_size(w);
}

/* The naive rewrite: everything decoded and encoded. */
static size_t rewrite_full(const uint8_t *body, size_t len, struct kp_writer *w)
{
	const struct kp_schema *resp = kp_api_get(KP_API_METADATA)->response;
	const int brokers = field(resp, "Brokers");
	const int host = field(resp->fields[brokers].sub, "Host");
	static const char proxy[] = "127.0.0.1";
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	kp_cursor_init(&c, body, len);
	if (!kp_message_decode(&a, &c, false, KP_API_METADATA, 12, &m))
		exit(1);
	struct kp_list *bl = &m.body->v[brokers].a;
	for (int32_t i = 0; i < bl->cnt; i++)
		bl->items[i].st->v[host].s = (struct kp_span){(const uint8_t *)proxy, (int32_t)sizeof(proxy) - 1};
	kp_writer_reset(w);
	kp_message_encode(w, &m);
	kp_writer_finish(w);
	kp_arena_free(&a);
	return kp_writer_size(w);
}

static double time_ns_per_op(size_t (*fn)(const uint8_t *, size_t, struct kp_writer *), const uint8_t *body,
			     size_t len, int iters, int runs)
{
	double samples[64];
	struct kp_writer w;
	volatile size_t sink = 0;
	kp_writer_init(&w);
	for (int r = 0; r < runs; r++) {
		double t0 = now_ns();
		for (int i = 0; i < iters; i++)
			sink += fn(body, len, &w);
		samples[r] = (now_ns() - t0) / iters;
	}
	(void)sink;
	kp_writer_free(&w);
	return median(samples, runs);
}

/* A Produce v9 request: topics x partitions, each with one batch of batch_bytes. */
static uint8_t *produce_request(int topics, int partitions, size_t batch_bytes, size_t *len)
{
	const int16_t ver = 9;
	const struct kp_schema *req = decoded_api(KP_API_PRODUCE, true)->request;
	const struct kp_schema *topic = field_def(req, "TopicData")->sub;
	const struct kp_schema *part = field_def(topic, "PartitionData")->sub;
	struct kp_arena a;
	struct kp_writer w;
	kp_arena_init(&a, 0);
	kp_writer_init(&w);
	uint8_t *batch = kp_arena_alloc(&a, batch_bytes);
	for (size_t i = 0; i < batch_bytes; i++)
		batch[i] = (uint8_t)(i * 131);

	struct kp_struct *st = kp_struct_new(&a, req, ver);
	st->v[field(req, "TransactionalId")].s = (struct kp_span){NULL, -1};
	st->v[field(req, "Acks")].i = -1;
	st->v[field(req, "TimeoutMs")].i = 30000;
	struct kp_value *tv = &st->v[field(req, "TopicData")];
	list(&a, tv, topics);
	for (int t = 0; t < topics; t++) {
		struct kp_struct *ts = kp_struct_new(&a, topic, ver);
		ts->v[field(topic, "Name")].s = text(&a, "events-", t, "");
		struct kp_value *pv = &ts->v[field(topic, "PartitionData")];
		list(&a, pv, partitions);
		for (int p = 0; p < partitions; p++) {
			struct kp_struct *ps = kp_struct_new(&a, part, ver);
			ps->v[field(part, "Index")].i = p;
			ps->v[field(part, "Records")].s = (struct kp_span){batch, (int32_t)batch_bytes};
			pv->a.items[p].st = ps;
		}
		tv->a.items[t].st = ts;
	}
	struct kp_request_header h = {.api_key = KP_API_PRODUCE,
				      .api_version = ver,
				      .correlation_id = 1,
				      .client_id = {(const uint8_t *)"bench", 5},
				      .header_version = 2};
	kp_request_header_write(&w, &h);
	kp_encode(&w, st, ver, true, -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	kp_arena_free(&a);
	return out;
}

static size_t produce_walk(const uint8_t *body, size_t len, struct kp_writer *w)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	kp_cursor_init(&c, body, len);
	if (!kp_message_decode(&a, &c, true, -1, -1, &m) || !m.body) {
		fprintf(stderr, "bench-codec: produce decode failed: %s\n", kp_error_name(c.err));
		exit(1);
	}
	kp_writer_reset(w);
	kp_message_encode(w, &m);
	kp_writer_finish(w);
	kp_arena_free(&a);
	return kp_writer_size(w);
}

int main(int argc, char **argv)
{
	int runs = 7;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: kstretch-bench-codec [--runs N]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 64)
		runs = 7;

	printf("## Metadata v12 response rewrite, 30 brokers (median of %d runs)\n\n", runs);
	printf("| partitions | response bytes | prefix rewrite ns | full decode+encode ns | prefix vs 10 partitions |\n");
	printf("|---:|---:|---:|---:|---:|\n");
	const int parts[] = {10, 1000, 10000};
	double base = 0;
	for (int i = 0; i < 3; i++) {
		size_t len;
		uint8_t *body = metadata_response(30, parts[i], &len);
		int iters = parts[i] >= 10000 ? 2000 : 20000;
		double pre = time_ns_per_op(rewrite_prefix, body, len, iters, runs);
		double full = time_ns_per_op(rewrite_full, body, len, parts[i] >= 10000 ? 20 : 200, runs);
		if (i == 0)
			base = pre;
		printf("| %d | %zu | %.0f | %.0f | %.2fx |\n", parts[i], len, pre, full, pre / base);
		free(body);
	}

	printf("\n## Produce v9 request walk and re-emit (records referenced; median of %d runs)\n\n", runs);
	printf("| shape | request bytes | ns per request | GB/s of request bytes |\n");
	printf("|---|---:|---:|---:|\n");
	const struct {
		int topics, partitions;
		size_t batch;
	} shapes[] = {{1, 1, 16384}, {1, 8, 65536}, {4, 16, 16384}, {1, 1, 1048576}};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		size_t len;
		uint8_t *body = produce_request(shapes[i].topics, shapes[i].partitions, shapes[i].batch, &len);
		double ns = time_ns_per_op(produce_walk, body, len, 20000, runs);
		printf("| %d topic(s) x %d partitions x %zu B | %zu | %.0f | %.1f |\n", shapes[i].topics,
		       shapes[i].partitions, shapes[i].batch, len, ns, (double)len / ns);
		free(body);
	}
	return 0;
}
