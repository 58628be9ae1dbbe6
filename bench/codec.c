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
 * Regional mode's split and merge, per client request, across 3 brokers
 * (partition p led and read by broker p % 3), each timed as the codec work
 * proxy/regional_session.c does for one request (the topology look-ups,
 * the upstream request headers, the stale-leader check and sockets left
 * out):
 *
 *  3. Produce v9 request split (kx_rproduce): Acks read, kp_produce_split
 *     into one upstream body per leader with the client's order noted
 *     (kp_split_add_*), records referenced. 1 topic x 12 and x 100
 *     partitions, 4 topics x 25, 1 KiB batches. With the bytes copied
 *     (structure) and referenced (records) of the upstream bodies.
 *  4. Produce v9 answers merge (kx_ranswer_merged): the 3 brokers' answers
 *     decoded, kp_split_merge in the client's order, encoded.
 *  5. Fetch v12 request split (kx_rsplit): decoded, kp_split_request by
 *     replica, each part made sessionless and encoded. 12 and 100 partitions.
 *  6. Fetch v12 answers merge (kx_ranswer_fetch): kp_fetch_merge of the 3
 *     brokers' answers, 64 KiB of records per partition referenced, appended
 *     after the client's response header. With the bytes it copied and
 *     referenced (kp_fetch_merge's owned and referenced).
 *  7. Split + merge per request: the sums of 3 + 4 and of 5 + 6.
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
#include "messages.h"
#include "refsplit.h"
#include "split.h"

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

/* ---- regional mode: split and merge ------------------------------------- */

/* The real brokers a request is cut across; partition index p is led (and read) by broker p % BROKERS. */
#define BROKERS          3
#define NOT_LEADER       6 /* NOT_LEADER_OR_FOLLOWER: what the proxy answers a partition no broker did */
#define REGIONAL_PRODUCE 9
#define REGIONAL_FETCH   12

static void die(const char *what)
{
	fprintf(stderr, "bench-codec: %s\n", what);
	exit(1);
}

static double time_ns_per_call(size_t (*fn)(void *), void *arg, int iters, int runs)
{
	double samples[64];
	volatile size_t sink = 0;
	for (int r = 0; r < runs; r++) {
		double t0 = now_ns();
		for (int i = 0; i < iters; i++)
			sink += fn(arg);
		samples[r] = (now_ns() - t0) / iters;
	}
	(void)sink;
	return median(samples, runs);
}

/* A response frame body: response header (the version's) then st encoded. */
static uint8_t *response_frame(int16_t key, int16_t ver, const struct kp_struct *st, size_t *len)
{
	struct kp_writer w;
	struct kp_response_header h = {.correlation_id = 1, .header_version = kp_response_header_version(key, ver)};
	kp_writer_init(&w);
	kp_response_header_write(&w, &h);
	kp_encode(&w, st, ver, kp_api_flexible(kp_api_get(key), ver), -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	if (!out)
		die("no memory");
	return out;
}

/* Where the body of a response frame body starts (kx_rbody's header read). */
static size_t response_body_at(int16_t key, int16_t ver, const uint8_t *frame, size_t len)
{
	struct kp_cursor c;
	struct kp_response_header h;
	kp_cursor_init(&c, frame, len);
	if (!kp_response_header_parse(&c, kp_response_header_version(key, ver), &h))
		die("response header does not parse");
	return h.size;
}

/*
 * A client's Produce request in regional mode, and what the brokers answer
 * to its parts. The split, the answers and the client's order (kx_rreq's
 * split) are made once, outside the timing, by the same code that is timed.
 */
struct regional_produce {
	uint8_t *frame; /* request header + body */
	size_t len, body_at;
	int partitions;                /* per topic */
	struct kp_produce_split split; /* a worker's scratch, kept between requests (kx_rscratch) */
	struct kp_arena order_arena;
	struct kp_split order;    /* the client's order, as the split noted it */
	uint8_t *answer[BROKERS]; /* response header + body, per broker */
	size_t answer_len[BROKERS];
	struct kp_writer out; /* the client's answer */
};

/* kx_rproduce's route: the partition's leader, noted in the client's order for the merge. */
struct produce_route {
	struct kp_arena *a;
	struct kp_split *order;
	uint32_t topic; /* ordinal + 1 of the topic noted last */
	bool ok;
};

static int produce_route(void *arg, const struct kp_walk_topic *t, int32_t index)
{
	struct produce_route *r = arg;
	int d = index % BROKERS;
	if (r->topic != t->ordinal + 1) {
		r->topic = t->ordinal + 1;
		r->ok = r->ok &&
		        kp_split_add_topic(r->a, r->order, t->by_id, (struct kp_span){t->key, (int32_t)t->key_len});
	}
	r->ok = r->ok && kp_split_add_partition(r->a, r->order, index, d);
	return d;
}

/* kx_rproduce's codec work: Acks read, the request cut by leader, the client's order noted in a. */
static void produce_split(struct regional_produce *rp, struct kp_arena *a, struct kp_split *order)
{
	const int16_t ver = REGIONAL_PRODUCE;
	const uint8_t *body = rp->frame + rp->body_at;
	size_t len = rp->len - rp->body_at;
	struct kp_cursor c;
	kp_cursor_init(&c, body, len);
	struct kp_struct *pre = kp_decode(a, &c, &kp_produce_request, ver, true, KP_PRODUCE_REQ_ACKS + 1);
	if (!pre || pre->v[KP_PRODUCE_REQ_ACKS].i == 0)
		die("Produce: cannot read Acks");
	struct iovec iov = {(void *)body, len};
	struct kp_pieces p;
	kp_pieces_init(&p, &iov, 1, len);
	struct produce_route r = {a, order, 0, kp_split_init(order, ver, BROKERS)};
	if (!kp_produce_split(&rp->split, &p, ver, true, BROKERS, produce_route, &r) || !r.ok ||
	    !kp_split_finish(a, order)) {
		fprintf(stderr, "bench-codec: Produce split failed: %s at %s\n", kp_error_name(p.err),
		        p.err_field ? p.err_field : "?");
		exit(1);
	}
}

static size_t produce_split_op(void *arg)
{
	struct regional_produce *rp = arg;
	struct kp_arena a;
	struct kp_split order = {0}; /* kx_rreq's, calloc'd */
	kp_arena_init(&a, 0);
	produce_split(rp, &a, &order);
	kp_arena_free(&a);
	return kp_writer_size(&rp->split.dest[0].body);
}

/* Broker d's answer to its part of the split: every partition appended at a BaseOffset of its own. */
static uint8_t *produce_answer(const struct kp_produce_dest *dest, size_t *len)
{
	const int16_t ver = REGIONAL_PRODUCE;
	const struct kp_schema *resp = decoded_api(KP_API_PRODUCE, false)->response;
	const struct kp_schema *topic = field_def(resp, "Responses")->sub;
	const struct kp_schema *part = field_def(topic, "PartitionResponses")->sub;
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct kp_struct *st = kp_struct_new(&a, resp, ver);
	int topics = 0;
	for (size_t i = 0; i < dest->nparts; i++)
		topics += i == 0 || dest->parts[i].topic != dest->parts[i - 1].topic;
	struct kp_value *tv = &st->v[field(resp, "Responses")];
	list(&a, tv, topics);
	for (size_t i = 0, t = 0, run; i < dest->nparts; i += run, t++) {
		for (run = 1; i + run < dest->nparts && dest->parts[i + run].topic == dest->parts[i].topic; run++)
			;
		struct kp_struct *ts = kp_struct_new(&a, topic, ver);
		ts->v[field(topic, "Name")].s = text(&a, "events-", (int)dest->parts[i].topic, "");
		struct kp_value *pv = &ts->v[field(topic, "PartitionResponses")];
		list(&a, pv, (int32_t)run);
		for (size_t k = 0; k < run; k++) {
			struct kp_struct *ps = kp_struct_new(&a, part, ver);
			ps->v[field(part, "Index")].i = dest->parts[i + k].index;
			ps->v[field(part, "BaseOffset")].i = 1000000 + 1000 * (int64_t)dest->parts[i + k].index;
			ps->v[field(part, "LogStartOffset")].i = 0;
			ps->v[field(part, "ErrorMessage")].s = (struct kp_span){NULL, -1};
			pv->a.items[k].st = ps;
		}
		tv->a.items[t].st = ts;
	}
	uint8_t *out = response_frame(KP_API_PRODUCE, ver, st, len);
	kp_arena_free(&a);
	return out;
}

/* kx_ranswer_merged's codec work: each answer decoded, merged in the client's order, encoded. */
static size_t produce_merge_op(void *arg)
{
	const int16_t ver = REGIONAL_PRODUCE;
	struct regional_produce *rp = arg;
	struct kp_struct *resp[BROKERS];
	struct kp_arena a;
	kp_arena_init(&a, 0);
	for (int d = 0; d < BROKERS; d++) {
		size_t at = response_body_at(KP_API_PRODUCE, ver, rp->answer[d], rp->answer_len[d]);
		struct kp_cursor c;
		kp_cursor_init(&c, rp->answer[d] + at, rp->answer_len[d] - at);
		if (!(resp[d] = kp_decode(&a, &c, &kp_produce_response, ver, true, -1)))
			die("Produce answer does not decode");
	}
	struct kp_struct *m = kp_split_merge(&a, &kp_split_produce_response, &rp->order, resp, NOT_LEADER);
	if (!m)
		die("Produce merge failed");
	struct kp_response_header h = {.correlation_id = 7,
	                               .header_version = kp_response_header_version(KP_API_PRODUCE, ver)};
	kp_writer_reset(&rp->out);
	kp_response_header_write(&rp->out, &h);
	kp_encode(&rp->out, m, ver, true, -1);
	kp_writer_finish(&rp->out);
	kp_arena_free(&a);
	return kp_writer_size(&rp->out);
}

/* The client's answer holds every partition of its request, in its order, at its broker's BaseOffset. */
static void produce_merge_check(struct regional_produce *rp, int topics)
{
	const int16_t ver = REGIONAL_PRODUCE;
	size_t len;
	uint8_t *flat = kp_writer_flatten(&rp->out, &len);
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	kp_cursor_init(&c, flat, len);
	if (!flat || !kp_message_decode(&a, &c, false, KP_API_PRODUCE, ver, &m) || !m.body)
		die("merged Produce answer does not decode");
	const struct kp_list *tl = &m.body->v[KP_PRODUCE_RESP_RESPONSES].a;
	int n = 0;
	for (int32_t t = 0; t < tl->cnt; t++) {
		const struct kp_list *pl = &tl->items[t].st->v[KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES].a;
		for (int32_t p = 0; p < pl->cnt; p++, n++) {
			const struct kp_struct *ps = pl->items[p].st;
			if (ps->v[KP_PRODUCE_RESP_PART_INDEX].i != p || ps->v[KP_PRODUCE_RESP_PART_ERROR_CODE].i != 0 ||
			    ps->v[field(ps->schema, "BaseOffset")].i != 1000000 + 1000 * (int64_t)p)
				die("merged Produce answer: a partition out of order or not its broker's");
		}
	}
	if (tl->cnt != topics || n != topics * rp->partitions)
		die("merged Produce answer: partitions missing");
	kp_arena_free(&a);
	free(flat);
}

static void regional_produce_init(struct regional_produce *rp, int topics, int partitions, size_t batch)
{
	struct kp_cursor c;
	struct kp_request_header h;
	memset(rp, 0, sizeof(*rp));
	rp->partitions = partitions;
	rp->frame = produce_request(topics, partitions, batch, &rp->len);
	kp_cursor_init(&c, rp->frame, rp->len);
	if (!kp_request_header_parse(&c, &h))
		die("Produce request header does not parse");
	rp->body_at = h.size;
	kp_produce_split_init(&rp->split);
	kp_arena_init(&rp->order_arena, 0);
	kp_writer_init(&rp->out);
	produce_split(rp, &rp->order_arena, &rp->order);
	size_t carried = 0;
	for (int d = 0; d < BROKERS; d++) {
		carried += rp->split.dest[d].nparts;
		rp->answer[d] = produce_answer(&rp->split.dest[d], &rp->answer_len[d]);
	}
	if (carried != (size_t)topics * (size_t)partitions || rp->split.nkept)
		die("Produce split: partitions not carried");
}

static void regional_produce_free(struct regional_produce *rp)
{
	for (int d = 0; d < BROKERS; d++)
		free(rp->answer[d]);
	kp_writer_free(&rp->out);
	kp_arena_free(&rp->order_arena);
	kp_produce_split_free(&rp->split);
	free(rp->frame);
}

/* A client's Fetch v12 request of one topic's partitions, and what the brokers answer to its parts. */
struct regional_fetch {
	uint8_t *frame; /* request header + body */
	size_t len, body_at;
	int partitions;
	uint8_t *answer[BROKERS]; /* response header + body, per broker */
	size_t answer_len[BROKERS];
	struct kp_fetch_want *want;  /* the client's order (kx_rreq's want) */
	struct kp_fetch_merge merge; /* a worker's scratch, kept between requests */
	struct kp_writer body, out;  /* an upstream request; the client's answer */
};

static uint8_t *fetch_request(int partitions, size_t *len)
{
	const int16_t ver = REGIONAL_FETCH;
	const struct kp_schema *req = decoded_api(KP_API_FETCH, true)->request;
	const struct kp_schema *topic = field_def(req, "Topics")->sub;
	const struct kp_schema *part = field_def(topic, "Partitions")->sub;
	struct kp_arena a;
	struct kp_writer w;
	kp_arena_init(&a, 0);
	kp_writer_init(&w);
	struct kp_struct *st = kp_struct_new(&a, req, ver);
	st->v[field(req, "MaxWaitMs")].i = 500;
	st->v[field(req, "MinBytes")].i = 1;
	st->v[field(req, "MaxBytes")].i = 52428800;
	st->v[field(req, "RackId")].s = (struct kp_span){(const uint8_t *)"eu-west-1a", 10};
	struct kp_value *tv = &st->v[field(req, "Topics")];
	list(&a, tv, 1);
	struct kp_struct *ts = kp_struct_new(&a, topic, ver);
	ts->v[field(topic, "Topic")].s = text(&a, "events-", 0, "");
	struct kp_value *pv = &ts->v[field(topic, "Partitions")];
	list(&a, pv, partitions);
	for (int p = 0; p < partitions; p++) {
		struct kp_struct *ps = kp_struct_new(&a, part, ver);
		ps->v[field(part, "Partition")].i = p;
		ps->v[field(part, "CurrentLeaderEpoch")].i = 5;
		ps->v[field(part, "FetchOffset")].i = 1000000 + 1000 * (int64_t)p;
		ps->v[field(part, "PartitionMaxBytes")].i = 1048576;
		pv->a.items[p].st = ps;
	}
	tv->a.items[0].st = ts;
	struct kp_request_header h = {.api_key = KP_API_FETCH,
	                              .api_version = ver,
	                              .correlation_id = 1,
	                              .client_id = {(const uint8_t *)"bench", 5},
	                              .header_version = kp_request_header_version(KP_API_FETCH, ver)};
	kp_request_header_write(&w, &h);
	kp_encode(&w, st, ver, true, -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	kp_arena_free(&a);
	return out;
}

/* kx_rsplit's codec work for a Fetch: decoded, cut by replica, each part sessionless and encoded. */
static size_t fetch_split_op(void *arg)
{
	const int16_t ver = REGIONAL_FETCH;
	struct regional_fetch *rf = arg;
	const struct kp_split_layout *l = &kp_split_fetch_request;
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_split s;
	size_t sent = 0;
	kp_arena_init(&a, 0);
	kp_cursor_init(&c, rf->frame + rf->body_at, rf->len - rf->body_at);
	struct kp_struct *st = kp_decode(&a, &c, l->body, ver, true, -1);
	int64_t n = st ? kp_split_count(l, st) : -1;
	int32_t *dest = n > 0 ? kp_arena_alloc(&a, (size_t)n * sizeof(*dest)) : NULL;
	struct kp_fetch_want *want = n > 0 ? kp_arena_alloc(&a, (size_t)n * sizeof(*want)) : NULL; /* for the merge */
	if (!dest || !want)
		die("Fetch request does not decode");
	const struct kp_list *topics = &st->v[l->topics].a;
	int64_t k = 0;
	for (int32_t i = 0; i < topics->cnt; i++) {
		struct kp_span key = topics->items[i].st->v[l->topic_name].s;
		const struct kp_list *parts = &topics->items[i].st->v[l->partitions].a;
		for (int32_t j = 0; j < parts->cnt; j++, k++) {
			int32_t index = (int32_t)parts->items[j].st->v[l->index].i;
			dest[k] = index % BROKERS;
			want[k] = (struct kp_fetch_want){key.ptr, key.len > 0 ? (size_t)key.len : 0, index};
		}
	}
	if (!kp_split_request(&a, l, st, ver, dest, (size_t)n, BROKERS, &s))
		die("Fetch split failed");
	for (int d = 0; d < BROKERS; d++) {
		struct kp_struct *part = s.dests[d].request;
		if (!part)
			continue;
		kp_split_fetch_sessionless(part, ver);
		part->v[KP_FETCH_REQ_RACK_ID].s = (struct kp_span){(const uint8_t *)"", 0};
		kp_writer_reset(&rf->body);
		kp_encode(&rf->body, part, ver, true, -1);
		kp_writer_finish(&rf->body);
		sent += kp_writer_size(&rf->body);
	}
	kp_arena_free(&a);
	return sent;
}

/* Broker d's answer: the partitions it leads, records records bytes each. */
static uint8_t *fetch_answer(int d, int partitions, const uint8_t *records, size_t nrecords, size_t *len)
{
	const int16_t ver = REGIONAL_FETCH;
	const struct kp_schema *resp = decoded_api(KP_API_FETCH, false)->response;
	const struct kp_schema *topic = field_def(resp, "Responses")->sub;
	const struct kp_schema *part = field_def(topic, "Partitions")->sub;
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct kp_struct *st = kp_struct_new(&a, resp, ver);
	struct kp_value *tv = &st->v[field(resp, "Responses")];
	list(&a, tv, 1);
	struct kp_struct *ts = kp_struct_new(&a, topic, ver);
	ts->v[field(topic, "Topic")].s = text(&a, "events-", 0, "");
	struct kp_value *pv = &ts->v[field(topic, "Partitions")];
	list(&a, pv, (partitions - d + BROKERS - 1) / BROKERS);
	for (int p = d, k = 0; p < partitions; p += BROKERS, k++) {
		struct kp_struct *ps = kp_struct_new(&a, part, ver);
		ps->v[field(part, "PartitionIndex")].i = p;
		ps->v[field(part, "HighWatermark")].i = 2000000 + 1000 * (int64_t)p;
		ps->v[field(part, "LastStableOffset")].i = 2000000 + 1000 * (int64_t)p;
		ps->v[field(part, "LogStartOffset")].i = 0;
		ps->v[field(part, "AbortedTransactions")].a = (struct kp_list){NULL, -1};
		ps->v[field(part, "Records")].s = (struct kp_span){records, (int32_t)nrecords};
		pv->a.items[k].st = ps;
	}
	tv->a.items[0].st = ts;
	uint8_t *out = response_frame(KP_API_FETCH, ver, st, len);
	kp_arena_free(&a);
	return out;
}

/* kx_ranswer_fetch's codec work: the answers merged by reference, after the client's response header. */
static size_t fetch_merge_op(void *arg)
{
	const int16_t ver = REGIONAL_FETCH;
	struct regional_fetch *rf = arg;
	struct iovec iov[BROKERS];
	struct kp_pieces pieces[BROKERS], *parts[BROKERS];
	for (int d = 0; d < BROKERS; d++) {
		size_t at = response_body_at(KP_API_FETCH, ver, rf->answer[d], rf->answer_len[d]);
		iov[d] = (struct iovec){rf->answer[d] + at, rf->answer_len[d] - at};
		kp_pieces_init(&pieces[d], &iov[d], 1, iov[d].iov_len);
		parts[d] = &pieces[d];
	}
	if (!kp_fetch_merge(&rf->merge, ver, true, rf->want, (size_t)rf->partitions, parts, BROKERS, NOT_LEADER))
		die("Fetch merge failed");
	struct kp_response_header h = {.correlation_id = 7,
	                               .header_version = kp_response_header_version(KP_API_FETCH, ver)};
	kp_writer_reset(&rf->out);
	kp_response_header_write(&rf->out, &h);
	kp_write_writer(&rf->out, &rf->merge.body);
	kp_writer_finish(&rf->out);
	return kp_writer_size(&rf->out);
}

static void regional_fetch_init(struct regional_fetch *rf, int partitions, const uint8_t *records, size_t nrecords)
{
	struct kp_cursor c;
	struct kp_request_header h;
	static const char topic[] = "events-0";
	memset(rf, 0, sizeof(*rf));
	rf->partitions = partitions;
	rf->frame = fetch_request(partitions, &rf->len);
	kp_cursor_init(&c, rf->frame, rf->len);
	if (!kp_request_header_parse(&c, &h))
		die("Fetch request header does not parse");
	rf->body_at = h.size;
	for (int d = 0; d < BROKERS; d++)
		rf->answer[d] = fetch_answer(d, partitions, records, nrecords, &rf->answer_len[d]);
	rf->want = calloc((size_t)partitions, sizeof(*rf->want));
	if (!rf->want)
		die("no memory");
	for (int p = 0; p < partitions; p++)
		rf->want[p] = (struct kp_fetch_want){(const uint8_t *)topic, sizeof(topic) - 1, p};
	kp_fetch_merge_init(&rf->merge);
	kp_writer_init(&rf->body);
	kp_writer_init(&rf->out);
}

static void regional_fetch_free(struct regional_fetch *rf)
{
	for (int d = 0; d < BROKERS; d++)
		free(rf->answer[d]);
	free(rf->want);
	kp_fetch_merge_free(&rf->merge);
	kp_writer_free(&rf->body);
	kp_writer_free(&rf->out);
	free(rf->frame);
}

/* A request's shape, and what regional mode's split and merge of it cost. */
struct regional_shape {
	int topics, partitions;
	size_t batch; /* record bytes per partition */
};

struct regional_result {
	size_t request;            /* the client's request bytes (header and body) */
	size_t upstream;           /* bytes of the upstream request bodies, all brokers */
	size_t copied, referenced; /* of the split's (Produce) or the merge's (Fetch) output */
	size_t answers;            /* bytes of the brokers' answers (headers and bodies) */
	size_t client;             /* bytes of the client's answer (header and body) */
	double split, merge;       /* ns per request */
};

static void regional_produce_measure(const struct regional_shape *sh, int runs, struct regional_result *r)
{
	struct regional_produce rp;
	int iters = sh->topics * sh->partitions >= 100 ? 2000 : 20000;
	memset(r, 0, sizeof(*r));
	regional_produce_init(&rp, sh->topics, sh->partitions, sh->batch);
	r->split = time_ns_per_call(produce_split_op, &rp, iters, runs);
	r->merge = time_ns_per_call(produce_merge_op, &rp, iters, runs);
	produce_merge_check(&rp, sh->topics);
	r->request = rp.len;
	for (int d = 0; d < BROKERS; d++) {
		r->upstream += kp_writer_size(&rp.split.dest[d].body);
		r->referenced += kp_writer_referenced(&rp.split.dest[d].body);
		r->answers += rp.answer_len[d];
	}
	r->copied = r->upstream - r->referenced;
	r->client = kp_writer_size(&rp.out);
	regional_produce_free(&rp);
}

static void regional_fetch_measure(const struct regional_shape *sh, int runs, struct regional_result *r)
{
	struct regional_fetch rf;
	int iters = sh->partitions >= 100 ? 2000 : 20000;
	if (sh->topics != 1)
		die("regional Fetch shapes have one topic");
	uint8_t *records = malloc(sh->batch ? sh->batch : 1);
	if (!records)
		die("no memory");
	for (size_t i = 0; i < sh->batch; i++)
		records[i] = (uint8_t)(i * 131);
	memset(r, 0, sizeof(*r));
	regional_fetch_init(&rf, sh->partitions, records, sh->batch);
	r->split = time_ns_per_call(fetch_split_op, &rf, iters, runs);
	r->merge = time_ns_per_call(fetch_merge_op, &rf, iters, runs);
	if (rf.merge.found != (size_t)sh->partitions || rf.merge.missing ||
	    rf.merge.referenced != (size_t)sh->partitions * sh->batch)
		die("Fetch merge: partitions missing or records copied");
	r->request = rf.len;
	r->upstream = fetch_split_op(&rf);
	for (int d = 0; d < BROKERS; d++)
		r->answers += rf.answer_len[d];
	r->client = kp_writer_size(&rf.out);
	r->copied = rf.merge.owned;
	r->referenced = rf.merge.referenced;
	regional_fetch_free(&rf);
	free(records);
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

	/* Regional mode: each shape's split and merge timed, then a table per path. */
	const struct regional_shape prod[] = {{1, 12, 1024}, {1, 100, 1024}, {4, 25, 1024}};
	const struct regional_shape fetch[] = {{1, 12, 65536}, {1, 100, 65536}};
	const size_t nprod = sizeof(prod) / sizeof(prod[0]), nfetch = sizeof(fetch) / sizeof(fetch[0]);
	struct regional_result pr[sizeof(prod) / sizeof(prod[0])], fr[sizeof(fetch) / sizeof(fetch[0])];
	for (size_t i = 0; i < nprod; i++)
		regional_produce_measure(&prod[i], runs, &pr[i]);
	for (size_t i = 0; i < nfetch; i++)
		regional_fetch_measure(&fetch[i], runs, &fr[i]);

	printf("\n## Regional mode: Produce v%d request split by leader across %d brokers (records referenced; median "
	       "of %d runs)\n\n",
	       REGIONAL_PRODUCE, BROKERS, runs);
	printf("| shape | request bytes | ns per request | upstream bytes | bytes copied | bytes referenced |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < nprod; i++)
		printf("| %d topic(s) x %d partitions x %zu B | %zu | %.0f | %zu | %zu | %zu |\n", prod[i].topics,
		       prod[i].partitions, prod[i].batch, pr[i].request, pr[i].split, pr[i].upstream, pr[i].copied,
		       pr[i].referenced);

	printf("\n## Regional mode: %d Produce v%d answers merged into the client's (decoded; median of %d runs)\n\n",
	       BROKERS, REGIONAL_PRODUCE, runs);
	printf("| shape | answer bytes (all brokers) | client answer bytes | ns per request |\n");
	printf("|---|---:|---:|---:|\n");
	for (size_t i = 0; i < nprod; i++)
		printf("| %d topic(s) x %d partitions x %zu B | %zu | %zu | %.0f |\n", prod[i].topics,
		       prod[i].partitions, prod[i].batch, pr[i].answers, pr[i].client, pr[i].merge);

	printf("\n## Regional mode: Fetch v%d request split by replica across %d brokers (decoded; median of %d "
	       "runs)\n\n",
	       REGIONAL_FETCH, BROKERS, runs);
	printf("| shape | request bytes | ns per request | upstream bytes |\n");
	printf("|---|---:|---:|---:|\n");
	for (size_t i = 0; i < nfetch; i++)
		printf("| %d topic(s) x %d partitions | %zu | %.0f | %zu |\n", fetch[i].topics, fetch[i].partitions,
		       fr[i].request, fr[i].split, fr[i].upstream);

	printf("\n## Regional mode: %d Fetch v%d answers merged into the client's (records referenced; median of %d "
	       "runs)\n\n",
	       BROKERS, REGIONAL_FETCH, runs);
	printf("| shape | answer bytes (all brokers) | client answer bytes | ns per request | bytes copied | bytes "
	       "referenced |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < nfetch; i++)
		printf("| %d topic(s) x %d partitions x %zu B | %zu | %zu | %.0f | %zu | %zu |\n", fetch[i].topics,
		       fetch[i].partitions, fetch[i].batch, fr[i].answers, fr[i].client, fr[i].merge, fr[i].copied,
		       fr[i].referenced);

	printf("\n## Regional mode: split + merge per request (sums of the medians above)\n\n");
	printf("| request | shape | split ns | merge ns | split + merge ns |\n");
	printf("|---|---|---:|---:|---:|\n");
	for (size_t i = 0; i < nprod; i++)
		printf("| Produce v%d | %d topic(s) x %d partitions x %zu B | %.0f | %.0f | %.0f |\n", REGIONAL_PRODUCE,
		       prod[i].topics, prod[i].partitions, prod[i].batch, pr[i].split, pr[i].merge,
		       pr[i].split + pr[i].merge);
	for (size_t i = 0; i < nfetch; i++)
		printf("| Fetch v%d | %d topic(s) x %d partitions x %zu B | %.0f | %.0f | %.0f |\n", REGIONAL_FETCH,
		       fetch[i].topics, fetch[i].partitions, fetch[i].batch, fr[i].split, fr[i].merge,
		       fr[i].split + fr[i].merge);
	return 0;
}
