/*
 * Mapped mode's response rewrites, as a client behind kstretch sees them:
 * every broker address points at a kstretch listener, node ids stay real,
 * everything else is byte for byte what the broker sent.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "api.h"
#include "codec_util.h"
#include "config.h"
#include "message.h"
#include "messages.h"
#include "rewrite.h"
#include "skip.h"

static struct kx_config cfg;
static struct kx_rewriter rw;

static void setup(void)
{
	struct kx_config_error err;
	kx_config_defaults(&cfg);
	cr_assert(kx_config_set(&cfg, "bootstrap.servers", "10.0.0.1:9092", "test", &err));
	cr_assert(kx_config_set(&cfg, "advertised.host", "proxy.local", "test", &err));
	cr_assert(kx_config_set(&cfg, "broker.port.base", "19000", "test", &err));
	cr_assert(kx_config_set(&cfg, "broker.port.map", "7=29007", "test", &err));
	kx_rewriter_init(&rw);
}

static void teardown(void)
{
	kx_rewriter_free(&rw);
}

TestSuite(rewrite, .init = setup, .fini = teardown);

static struct kp_span str(const char *s)
{
	return (struct kp_span){(const uint8_t *)s, (int32_t)strlen(s)};
}

static void list(struct kp_arena *a, struct kp_value *v, int32_t n)
{
	v->a.cnt = n;
	v->a.items = kp_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(struct kp_value));
}

/* Encodes a response (header + body) as a broker would send it. */
static uint8_t *encode_response(int16_t api, int16_t ver, struct kp_struct *body, size_t *len)
{
	struct kp_writer w;
	struct kp_response_header h = {.correlation_id = 42, .header_version = kp_response_header_version(api, ver)};
	kp_writer_init(&w);
	kp_response_header_write(&w, &h);
	kp_encode(&w, body, ver, kp_api_flexible(kp_api_get(api), ver), -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	return out;
}

/* Runs the rewrite and decodes what the client would get. */
static struct kp_message rewritten(struct kp_arena *a, int16_t api, int16_t ver, const uint8_t *in, size_t len,
                                   uint8_t **out)
{
	cr_assert(kx_rewrite_response(&rw, &cfg, api, ver, in, len), "%s at %zu reading %s", kp_error_name(rw.cur.err),
	          rw.cur.err_pos, rw.cur.err_field ? rw.cur.err_field : "?");
	size_t n;
	*out = kp_writer_flatten(&rw.out, &n);
	struct kp_cursor c;
	struct kp_message m;
	kp_cursor_init(&c, *out, n);
	cr_assert(kp_message_decode(a, &c, false, api, ver, &m), "output does not decode: %s at %zu",
	          kp_error_name(c.err), c.err_pos);
	cr_assert_eq(m.resp.correlation_id, 42);
	return m;
}

static struct kp_struct *metadata_v12(struct kp_arena *a, int brokers, int partitions)
{
	const struct kp_schema *resp = &kp_metadata_response;
	const struct kp_schema *broker = resp->fields[KP_METADATA_RESPONSE_BROKERS].sub;
	const struct kp_schema *topic = resp->fields[KP_METADATA_RESPONSE_TOPICS].sub;
	const struct kp_schema *part = topic->fields[KP_METADATA_TOPIC_PARTITIONS].sub;
	struct kp_struct *st = kp_struct_new(a, resp, 12);
	list(a, &st->v[KP_METADATA_RESPONSE_BROKERS], brokers);
	for (int b = 0; b < brokers; b++) {
		struct kp_struct *bs = kp_struct_new(a, broker, 12);
		bs->v[KP_METADATA_BROKER_NODE_ID].i = b + 1;
		bs->v[KP_METADATA_BROKER_HOST].s = str(b % 2 ? "kafka-b.internal" : "kafka-a.internal");
		bs->v[KP_METADATA_BROKER_PORT].i = 9092 + b;
		bs->v[KP_METADATA_BROKER_RACK].s = str(b % 2 ? "us-a" : "eu-a");
		st->v[KP_METADATA_RESPONSE_BROKERS].a.items[b].st = bs;
	}
	list(a, &st->v[KP_METADATA_RESPONSE_TOPICS], 1);
	struct kp_struct *ts = kp_struct_new(a, topic, 12);
	ts->v[KP_METADATA_TOPIC_NAME].s = str("orders");
	ts->v[KP_METADATA_TOPIC_TOPIC_ID].s = str("0123456789abcdef");
	list(a, &ts->v[KP_METADATA_TOPIC_PARTITIONS], partitions);
	for (int p = 0; p < partitions; p++) {
		struct kp_struct *ps = kp_struct_new(a, part, 12);
		ps->v[KP_METADATA_PARTITION_PARTITION_INDEX].i = p;
		ps->v[KP_METADATA_PARTITION_LEADER_ID].i = 1 + p % brokers;
		ts->v[KP_METADATA_TOPIC_PARTITIONS].a.items[p].st = ps;
	}
	st->v[KP_METADATA_RESPONSE_TOPICS].a.items[0].st = ts;
	return st;
}

Test(rewrite, metadata_brokers_point_at_kstretch_and_the_topics_are_untouched)
{
	struct kp_arena a;
	size_t len;
	uint8_t *out;
	kp_arena_init(&a, 0);
	uint8_t *in = encode_response(KP_API_METADATA, 12, metadata_v12(&a, 7, 100), &len);
	struct kp_message m = rewritten(&a, KP_API_METADATA, 12, in, len, &out);
	const struct kp_list *bl = &m.body->v[KP_METADATA_RESPONSE_BROKERS].a;
	cr_assert_eq(bl->cnt, 7);
	for (int32_t i = 0; i < bl->cnt; i++) {
		const struct kp_struct *b = bl->items[i].st;
		cr_assert_eq(b->v[KP_METADATA_BROKER_NODE_ID].i, i + 1, "node ids stay real");
		cr_assert(span_is(b->v[KP_METADATA_BROKER_HOST].s, "proxy.local"));
		cr_assert_eq(b->v[KP_METADATA_BROKER_PORT].i, i + 1 == 7 ? 29007 : 19000 + i + 1,
		             "broker.port.map wins over the base");
		cr_assert(span_is(b->v[KP_METADATA_BROKER_RACK].s, i % 2 ? "us-a" : "eu-a"), "racks stay");
	}
	cr_assert_eq(rw.seen_cnt, 7);
	cr_assert_str_eq(rw.seen[1].host, "kafka-b.internal");
	cr_assert_eq(rw.seen[1].port, 9093);
	cr_assert_str_eq(rw.seen[1].rack, "us-a");
	cr_assert_eq(rw.addresses, 7);
	/* The topics section is referenced from the input, not re-encoded. */
	kp_writer_finish(&rw.out);
	const struct kp_segment *last = &rw.out.segs[rw.out.nsegs - 1];
	cr_assert_not_null(last->ref);
	cr_assert_eq(last->ref + last->len, in + len);
	cr_assert_gt(last->len, 100 * 15, "the partitions are in the referenced tail");
	free(out);
	free(in);
	kp_arena_free(&a);
}

Test(rewrite, find_coordinator_single_and_batched)
{
	struct kp_arena a;
	size_t len;
	uint8_t *out;
	kp_arena_init(&a, 0);
	const struct kp_schema *resp = &kp_find_coordinator_response;

	struct kp_struct *v3 = kp_struct_new(&a, resp, 3);
	v3->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID].i = 2;
	v3->v[KP_FIND_COORDINATOR_RESPONSE_HOST].s = str("kafka-2.internal");
	v3->v[KP_FIND_COORDINATOR_RESPONSE_PORT].i = 9092;
	uint8_t *in = encode_response(KP_API_FIND_COORDINATOR, 3, v3, &len);
	struct kp_message m = rewritten(&a, KP_API_FIND_COORDINATOR, 3, in, len, &out);
	cr_assert(span_is(m.body->v[KP_FIND_COORDINATOR_RESPONSE_HOST].s, "proxy.local"));
	cr_assert_eq(m.body->v[KP_FIND_COORDINATOR_RESPONSE_PORT].i, 19002);
	free(in);
	free(out);

	const struct kp_schema *coord = resp->fields[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS].sub;
	struct kp_struct *v4 = kp_struct_new(&a, resp, 4);
	list(&a, &v4->v[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS], 2);
	for (int i = 0; i < 2; i++) {
		struct kp_struct *c = kp_struct_new(&a, coord, 4);
		c->v[kp_field_index(coord, "Key")].s = str(i ? "group-b" : "group-a");
		/* the second group's coordinator is not available: node -1, no address */
		c->v[KP_FIND_COORDINATOR_COORDINATOR_NODE_ID].i = i ? -1 : 3;
		c->v[KP_FIND_COORDINATOR_COORDINATOR_HOST].s = str(i ? "" : "kafka-3.internal");
		c->v[KP_FIND_COORDINATOR_COORDINATOR_PORT].i = i ? -1 : 9092;
		v4->v[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS].a.items[i].st = c;
	}
	in = encode_response(KP_API_FIND_COORDINATOR, 4, v4, &len);
	m = rewritten(&a, KP_API_FIND_COORDINATOR, 4, in, len, &out);
	const struct kp_list *cl = &m.body->v[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS].a;
	cr_assert(span_is(cl->items[0].st->v[KP_FIND_COORDINATOR_COORDINATOR_HOST].s, "proxy.local"));
	cr_assert_eq(cl->items[0].st->v[KP_FIND_COORDINATOR_COORDINATOR_PORT].i, 19003);
	cr_assert_eq(cl->items[1].st->v[KP_FIND_COORDINATOR_COORDINATOR_NODE_ID].i, -1);
	cr_assert_eq(cl->items[1].st->v[KP_FIND_COORDINATOR_COORDINATOR_PORT].i, -1, "no node: left as it was");
	free(in);
	free(out);
	kp_arena_free(&a);
}

/* An error answer with a null Host (librdkafka's mock writes one; Kafka's
 * definition says not nullable) reaches the client as it came. */
Test(rewrite, find_coordinator_error_with_a_null_host_passes_unchanged)
{
	static const uint8_t in[] = {
	    0,    0,    0,    42,        /* correlation id */
	    0,    0,    0,    0,         /* ThrottleTimeMs */
	    0,    15,                    /* ErrorCode COORDINATOR_NOT_AVAILABLE */
	    0,    3,    'n',  'o',  'p', /* ErrorMessage */
	    0xff, 0xff, 0xff, 0xff,      /* NodeId -1 */
	    0xff, 0xff,                  /* Host: null */
	    0xff, 0xff, 0xff, 0xff,      /* Port -1 */
	};
	struct kp_arena a;
	uint8_t *out;
	kp_arena_init(&a, 0);
	for (int16_t ver = 1; ver <= 2; ver++) {
		struct kp_message m = rewritten(&a, KP_API_FIND_COORDINATOR, ver, in, sizeof(in), &out);
		cr_assert_eq(m.body->v[KP_FIND_COORDINATOR_RESPONSE_HOST].s.len, -1, "Host stays null");
		cr_assert_eq(m.body->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID].i, -1);
		cr_assert_eq(memcmp(out, in, sizeof(in)), 0, "v%d: not byte for byte", ver);
		free(out);
	}
	kp_arena_free(&a);
}

Test(rewrite, api_versions_are_clamped_to_what_kstretch_decodes)
{
	struct kp_arena a;
	size_t len;
	uint8_t *out;
	kp_arena_init(&a, 0);
	const struct kp_schema *resp = &kp_api_versions_response;
	const struct kp_schema *entry = resp->fields[kp_field_index(resp, "ApiKeys")].sub;
	struct kp_struct *st = kp_struct_new(&a, resp, 3);
	const int16_t offered[][3] = {
	    {KP_API_METADATA, 0, 14},         {KP_API_FETCH, 4, 19},
	    {KP_API_PRODUCE, 3, 12},          {KP_API_SHARE_FETCH, 0, 1},
	    {KP_API_SHARE_ACKNOWLEDGE, 0, 1}, {8 /* OffsetCommit */, 0, 99},
	};
	struct kp_value *keys = &st->v[kp_field_index(resp, "ApiKeys")];
	list(&a, keys, 6);
	for (int i = 0; i < 6; i++) {
		struct kp_struct *e = kp_struct_new(&a, entry, 3);
		e->v[0].i = offered[i][0];
		e->v[1].i = offered[i][1];
		e->v[2].i = offered[i][2];
		keys->a.items[i].st = e;
	}
	uint8_t *in = encode_response(KP_API_API_VERSIONS, 3, st, &len);
	struct kp_message m = rewritten(&a, KP_API_API_VERSIONS, 3, in, len, &out);
	const struct kp_list *got = &m.body->v[kp_field_index(resp, "ApiKeys")].a;
	cr_assert_eq(got->cnt, 4, "ShareFetch and ShareAcknowledge are hidden");
	cr_assert_eq(got->items[0].st->v[2].i, 13, "Metadata v14 clamped to the codec's 13");
	cr_assert_eq(got->items[1].st->v[2].i, 18, "Fetch clamped to 18");
	cr_assert_eq(got->items[2].st->v[2].i, 12, "Produce 12 is decoded: unchanged");
	cr_assert_eq(got->items[3].st->v[2].i, 99, "APIs kstretch does not rewrite pass as advertised");
	free(in);
	free(out);
	kp_arena_free(&a);
}

/*
 * ApiVersions answers that carry an error, in each form brokers send: the
 * client gets them byte for byte (nothing to clamp in an error), and the
 * connection stays usable (the rewrite does not fail).
 */
Test(rewrite, api_versions_errors_pass_byte_for_byte_in_any_form)
{
	static const struct {
		int16_t version; /* of the request answered */
		const char *body;
	} forms[] = {
	    /* UNSUPPORTED_VERSION in the v0 layout with the broker's ranges, answering v3 and v4 */
	    {3, "0023 00000003 0003 0000 000e 004e 0000 0001 0012 0000 0002"},
	    {4, "0023 00000003 0003 0000 000e 004e 0000 0001 0012 0000 0002"},
	    /* the error code and an empty array (v0 layout), answering v4 */
	    {4, "0023 00000000"},
	    /* the requested (flexible) layout with an error, ranges that a success would have clamped */
	    {4, "0023 04 0003 0000 000e 00 004e 0000 0001 00 0012 0000 0004 00 00000000 00"},
	    {3, "0023 01 00000000 00"},
	    /* flexible, cut short after an empty array */
	    {3, "0023 01"},
	    /* the error code alone */
	    {4, "0023"},
	    {1, "0023"},
	    /* v0 layout, ranges cut short */
	    {4, "0023 00000003 0003 0000 000e"},
	    /* v1 layout (ThrottleTimeMs) with another error, answering v2 */
	    {2, "ffff 00000001 0003 0000 000e 00000000"},
	    /* a client newer than the codec (v9), an older broker's v0 answer */
	    {9, "0023 00000001 0012 0000 0004"},
	};
	uint8_t in[256];
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t len = unhex("0000002a", in, sizeof(in)); /* response header v0: correlation id 42 */
		len += unhex(forms[i].body, in + len, sizeof(in) - len);
		cr_assert(kx_rewrite_response(&rw, &cfg, KP_API_API_VERSIONS, forms[i].version, in, len),
		          "form %zu (v%d): %s at %zu reading %s", i, forms[i].version, kp_error_name(rw.cur.err),
		          rw.cur.err_pos, rw.cur.err_field ? rw.cur.err_field : "?");
		size_t n;
		uint8_t *out = kp_writer_flatten(&rw.out, &n);
		cr_assert(n == len && memcmp(out, in, len) == 0, "form %zu (v%d): the client got other bytes", i,
		          forms[i].version);
		cr_assert_not(rw.changed, "form %zu", i);
		free(out);
	}
}

Test(rewrite, api_versions_success_in_the_v0_layout_is_still_clamped)
{
	/* A successful answer to a v3 request, in the v0 layout (clients accept it). */
	uint8_t in[128];
	size_t len = unhex("0000002a 0000 00000003 0003 0000 000e 004e 0000 0001 0012 0000 0004", in, sizeof(in));
	cr_assert(kx_rewrite_response(&rw, &cfg, KP_API_API_VERSIONS, 3, in, len), "%s at %zu",
	          kp_error_name(rw.cur.err), rw.cur.err_pos);
	size_t n;
	uint8_t *out = kp_writer_flatten(&rw.out, &n);
	uint8_t want[64];
	size_t wn = unhex("0000002a 0000 00000002 0003 0000 000d 0012 0000 0004", want, sizeof(want));
	cr_assert(n == wn && memcmp(out, want, wn) == 0, "Metadata clamped to 13, ShareFetch hidden, still v0");
	cr_assert(rw.changed);
	free(out);
}

Test(rewrite, api_versions_success_that_does_not_decode_is_refused)
{
	static const char *bad[] = {
	    "0000002a",                         /* no ErrorCode */
	    "0000002a 00",                      /* half of it */
	    "0000002a 0000",                    /* success, nothing after */
	    "0000002a 0000 00000003 0003 0000", /* success, ranges cut short */
	};
	uint8_t in[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = unhex(bad[i], in, sizeof(in));
		cr_assert_not(kx_rewrite_response(&rw, &cfg, KP_API_API_VERSIONS, 3, in, len), "case %zu", i);
		cr_assert_neq(rw.cur.err, KP_OK, "case %zu says why", i);
		cr_assert_geq(rw.cur.err_pos, 4, "case %zu: where, after the header", i);
	}
	/* A success to a version the codec does not decode cannot be clamped. */
	size_t len = unhex("0000002a 0000 02 0012 0000 0009 00 00000000 00", in, sizeof(in));
	cr_assert_not(kx_rewrite_response(&rw, &cfg, KP_API_API_VERSIONS, 9, in, len));
	cr_assert_eq(rw.cur.err, KP_ERR_UNSUPPORTED);
}

/* A Fetch v16 response with one partition of records and NodeEndpoints. */
static uint8_t *fetch_v16(struct kp_arena *a, bool endpoints, const uint8_t *records, int32_t rlen, size_t *len)
{
	const struct kp_schema *resp = &kp_fetch_response;
	const struct kp_schema *topic = resp->fields[KP_FETCH_RESP_RESPONSES].sub;
	const struct kp_schema *part = topic->fields[KP_FETCH_RESP_TOPIC_PARTITIONS].sub;
	const struct kp_schema *ep = resp->fields[KP_FETCH_RESP_NODE_ENDPOINTS].sub;
	struct kp_struct *st = kp_struct_new(a, resp, 16);
	list(a, &st->v[KP_FETCH_RESP_RESPONSES], 1);
	struct kp_struct *ts = kp_struct_new(a, topic, 16);
	ts->v[kp_field_index(topic, "TopicId")].s = str("0123456789abcdef");
	list(a, &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 1);
	struct kp_struct *ps = kp_struct_new(a, part, 16);
	ps->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){records, rlen};
	ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.items[0].st = ps;
	st->v[KP_FETCH_RESP_RESPONSES].a.items[0].st = ts;
	if (endpoints) {
		struct kp_value *nv = &st->v[KP_FETCH_RESP_NODE_ENDPOINTS];
		nv->present = true;
		list(a, nv, 1);
		struct kp_struct *e = kp_struct_new(a, ep, 16);
		e->v[KP_FETCH_ENDPOINT_NODE_ID].i = 5;
		e->v[KP_FETCH_ENDPOINT_HOST].s = str("kafka-5.internal");
		e->v[KP_FETCH_ENDPOINT_PORT].i = 9092;
		nv->a.items[0].st = e;
	}
	return encode_response(KP_API_FETCH, 16, st, len);
}

Test(rewrite, fetch_node_endpoints_are_rewritten_and_records_referenced)
{
	struct kp_arena a;
	size_t len;
	uint8_t *out;
	static uint8_t records[3000];
	memset(records, 0x5a, sizeof(records));
	kp_arena_init(&a, 0);
	uint8_t *in = fetch_v16(&a, true, records, sizeof(records), &len);
	struct kp_message m = rewritten(&a, KP_API_FETCH, 16, in, len, &out);
	const struct kp_list *nl = &m.body->v[KP_FETCH_RESP_NODE_ENDPOINTS].a;
	cr_assert_eq(nl->cnt, 1);
	cr_assert(span_is(nl->items[0].st->v[KP_FETCH_ENDPOINT_HOST].s, "proxy.local"));
	cr_assert_eq(nl->items[0].st->v[KP_FETCH_ENDPOINT_PORT].i, 19005);
	bool referenced = false;
	for (size_t i = 0; i < rw.out.nsegs; i++)
		referenced = referenced || (rw.out.segs[i].ref && rw.out.segs[i].len == sizeof(records));
	cr_assert(referenced, "the record batch is referenced, not copied");
	free(in);
	free(out);
	kp_arena_free(&a);
}

/* The in-place walk that lets most Fetch responses pass untouched. */
Test(rewrite, a_walk_over_one_byte_pieces_finds_the_top_level_tags)
{
	struct kp_arena a;
	size_t len;
	static uint8_t records[500];
	kp_arena_init(&a, 0);
	for (int with = 0; with < 2; with++) {
		uint8_t *in = fetch_v16(&a, with, records, sizeof(records), &len);
		struct iovec *iov = calloc(len, sizeof(*iov));
		for (size_t i = 0; i < len; i++)
			iov[i] = (struct iovec){in + i, 1};
		struct kp_pieces p;
		uint32_t tags = 99;
		kp_pieces_init(&p, iov, (int)len, len);
		cr_assert(kp_pieces_skip(&p, 4, "correlation_id"));
		uint8_t hdr_tags;
		cr_assert(kp_pieces_read(&p, &hdr_tags, 1, "header tags"));
		cr_assert(kp_skip_to_tags(&p, &kp_fetch_response, 16, true, &tags), "%s", kp_error_name(p.err));
		cr_assert_eq(tags, with ? 1u : 0u);
		/* cut inside the records: the walk fails instead of reading past the end */
		kp_pieces_init(&p, iov, (int)(len / 2), len / 2);
		cr_assert(kp_pieces_skip(&p, 5, "header"));
		cr_assert_not(kp_skip_to_tags(&p, &kp_fetch_response, 16, true, &tags));
		cr_assert_eq(p.err, KP_ERR_TRUNCATED);
		free(iov);
		free(in);
	}
	kp_arena_free(&a);
}

Test(rewrite, a_malformed_response_is_refused_with_where_and_what)
{
	const uint8_t bad[] = {0, 0, 0, 42, 0x7f, 0xff, 0xff, 0xff, 0, 0}; /* v1: 2^31-1 brokers in 2 bytes */
	cr_assert_not(kx_rewrite_response(&rw, &cfg, KP_API_METADATA, 1, bad, sizeof(bad)));
	cr_assert_neq(rw.cur.err, KP_OK);
	cr_assert_str_eq(rw.cur.err_field, "Brokers");
}

Test(rewrite, a_node_without_a_listener_port_is_reported)
{
	struct kx_config_error err;
	struct kp_arena a;
	size_t len;
	uint8_t *out;
	cr_assert(kx_config_set(&cfg, "broker.port.base", "65530", "test", &err));
	kp_arena_init(&a, 0);
	uint8_t *in = encode_response(KP_API_METADATA, 12, metadata_v12(&a, 8, 1), &len);
	struct kp_message m = rewritten(&a, KP_API_METADATA, 12, in, len, &out);
	const struct kp_list *bl = &m.body->v[KP_METADATA_RESPONSE_BROKERS].a;
	cr_assert_eq(bl->items[4].st->v[KP_METADATA_BROKER_PORT].i, 65535, "node 5: 65530 + 5");
	cr_assert_eq(bl->items[6].st->v[KP_METADATA_BROKER_PORT].i, 29007, "node 7 is mapped");
	cr_assert_eq(bl->items[5].st->v[KP_METADATA_BROKER_PORT].i, 9097, "node 6 has no port: left as it was");
	free(in);
	free(out);
	kp_arena_free(&a);
}

/* ---- rack and region awareness: Metadata ------------------------------- */

/* metadata_v12's brokers alternate eu-a (odd node ids) and us-a (even). */
Test(rewrite, metadata_lists_the_clients_region_first_in_stable_order)
{
	struct kp_arena a;
	size_t len;
	uint8_t *out;
	kp_arena_init(&a, 0);
	uint8_t *in = encode_response(KP_API_METADATA, 12, metadata_v12(&a, 7, 10), &len);
	struct kx_client_view v = {.rack = "us-b", .region = "us"};
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_METADATA, 12, in, len));
	size_t n;
	out = kp_writer_flatten(&rw.out, &n);
	struct kp_cursor c;
	struct kp_message m;
	kp_cursor_init(&c, out, n);
	cr_assert(kp_message_decode(&a, &c, false, KP_API_METADATA, 12, &m));
	const struct kp_list *bl = &m.body->v[KP_METADATA_RESPONSE_BROKERS].a;
	const int64_t order[] = {2, 4, 6, 1, 3, 5, 7};
	for (int32_t i = 0; i < bl->cnt; i++)
		cr_assert_eq(bl->items[i].st->v[KP_METADATA_BROKER_NODE_ID].i, order[i], "position %d", i);
	cr_assert(span_is(bl->items[0].st->v[KP_METADATA_BROKER_HOST].s, "proxy.local"), "and still rewritten");
	cr_assert_eq(bl->items[0].st->v[KP_METADATA_BROKER_PORT].i, 19002);
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_TOPICS].a.items[0].st->v[KP_METADATA_TOPIC_PARTITIONS].a.cnt, 10,
	             "topics untouched");
	cr_assert_eq(rw.topic_cnt, 0, "topics are learned only when asked");
	free(out);

	/* An unknown region, or none: the broker's order. */
	v.region = "ap";
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_METADATA, 12, in, len));
	out = kp_writer_flatten(&rw.out, &n);
	kp_cursor_init(&c, out, n);
	cr_assert(kp_message_decode(&a, &c, false, KP_API_METADATA, 12, &m));
	for (int32_t i = 0; i < 7; i++)
		cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_BROKERS].a.items[i].st->v[KP_METADATA_BROKER_NODE_ID].i,
		             i + 1);
	free(out);
	free(in);
	kp_arena_free(&a);
}

Test(rewrite, metadata_topics_are_learned_for_the_topology_when_asked)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 0);
	struct kp_struct *md = metadata_v12(&a, 3, 6);
	/* partitions: replicas and ISR over the three brokers; a second topic that is gone */
	const struct kp_schema *topic = kp_metadata_response.fields[KP_METADATA_RESPONSE_TOPICS].sub;
	struct kp_struct *ts = md->v[KP_METADATA_RESPONSE_TOPICS].a.items[0].st;
	for (int p = 0; p < 6; p++) {
		struct kp_struct *ps = ts->v[KP_METADATA_TOPIC_PARTITIONS].a.items[p].st;
		list(&a, &ps->v[KP_METADATA_PARTITION_REPLICA_NODES], 3);
		list(&a, &ps->v[KP_METADATA_PARTITION_ISR_NODES], p == 5 ? 1 : 3);
		for (int k = 0; k < 3; k++) {
			ps->v[KP_METADATA_PARTITION_REPLICA_NODES].a.items[k].i = 1 + (p + k) % 3;
			if (p != 5 || k == 0)
				ps->v[KP_METADATA_PARTITION_ISR_NODES].a.items[k].i = 1 + (p + k) % 3;
		}
	}
	struct kp_value *tv = &md->v[KP_METADATA_RESPONSE_TOPICS];
	struct kp_value *two = kp_arena_alloc(&a, 2 * sizeof(*two));
	two[0] = tv->a.items[0];
	struct kp_struct *gone = kp_struct_new(&a, topic, 12);
	gone->v[KP_METADATA_TOPIC_ERROR_CODE].i = 3; /* UNKNOWN_TOPIC_OR_PARTITION */
	gone->v[KP_METADATA_TOPIC_NAME].s = str("deleted");
	two[1].st = gone;
	tv->a.items = two;
	tv->a.cnt = 2;

	uint8_t *in = encode_response(KP_API_METADATA, 12, md, &len);
	struct kx_client_view v = {.rack = "us-a", .region = "us", .learn_topics = true};
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_METADATA, 12, in, len));
	cr_assert_eq(rw.topic_cnt, 2);
	cr_assert_str_eq(rw.topics[0]->name, "orders");
	cr_assert(rw.topics[0]->has_id);
	cr_assert_eq(rw.topics[0]->partition_cnt, 6);
	cr_assert(rw.topics[1]->gone);

	cr_assert(kx_rewrite_merge_topology(&rw, &cfg));
	cr_assert_eq(rw.topic_cnt, 0);
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t->broker_cnt, 3, "the brokers the response named");
	cr_assert_str_eq(kx_topology_broker(t, 2)->region, "us");
	const struct kx_topic *tp = kx_topology_topic(t, "orders", 6);
	cr_assert_not_null(tp);
	cr_assert_eq(kx_topology_topic_by_id(t, (const uint8_t *)"0123456789abcdef"), tp);
	const struct kx_partition *p = kx_topic_partition(tp, 4);
	cr_assert_eq(p->leader, 2);
	cr_assert_eq(p->replica_cnt, 3);
	cr_assert_eq(p->isr[0], 2);
	cr_assert_eq(p->isr[2], 1);
	cr_assert_eq(kx_topic_partition(tp, 5)->isr_cnt, 1);
	cr_assert_null(kx_topology_topic(t, "deleted", 7));
	kx_topology_put(t);
	cr_assert_not(kx_rewrite_merge_topology(&rw, &cfg), "nothing left to merge");

	/* The same response again changes nothing. */
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &v, KP_API_METADATA, 12, in, len));
	cr_assert_not(kx_rewrite_merge_topology(&rw, &cfg));
	kx_topology_clear();
	free(in);
	kp_arena_free(&a);
}

Test(rewrite, without_a_client_view_nothing_changes)
{
	struct kp_arena a;
	size_t len, n1, n2;
	kp_arena_init(&a, 0);
	uint8_t *in = encode_response(KP_API_METADATA, 12, metadata_v12(&a, 7, 10), &len);
	cr_assert(kx_rewrite_response(&rw, &cfg, KP_API_METADATA, 12, in, len));
	uint8_t *plain = kp_writer_flatten(&rw.out, &n1);
	struct kx_client_view unknown = {0};
	cr_assert(kx_rewrite_response_for(&rw, &cfg, &unknown, KP_API_METADATA, 12, in, len));
	uint8_t *viewed = kp_writer_flatten(&rw.out, &n2);
	cr_assert_eq(n1, n2);
	cr_assert(memcmp(plain, viewed, n1) == 0, "a client of unknown place: plain mapped mode");
	free(plain);
	free(viewed);
	free(in);
	kp_arena_free(&a);
}
