#include "rewrite.h"

#include <string.h>

#include "api.h"
#include "header.h"
#include "log.h"
#include "messages.h"

bool kx_rewrite_needed(int16_t api, int16_t version)
{
	switch (api) {
	case KP_API_METADATA:
	case KP_API_FIND_COORDINATOR:
	case KP_API_DESCRIBE_CLUSTER:
	case KP_API_API_VERSIONS: return true;
	case KP_API_PRODUCE: return version >= 10;
	case KP_API_FETCH: return version >= 16;
	default: return false;
	}
}

void kx_rewriter_init(struct kx_rewriter *rw)
{
	kp_writer_init(&rw->out);
	kp_arena_init(&rw->arena, 0);
	rw->seen_cnt = 0;
}

void kx_rewriter_free(struct kx_rewriter *rw)
{
	kp_writer_free(&rw->out);
	kp_arena_free(&rw->arena);
}

static void kx_span_copy(char *dst, size_t cap, struct kp_span s)
{
	size_t n = s.len > 0 ? (size_t)s.len : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

/*
 * Records a broker the response named and points (host, port) at kstretch's
 * listener for it. Returns false when the node has no listener port.
 */
static bool kx_rewrite_address(struct kx_rewriter *rw, const struct kx_config *cfg, int64_t node_id,
                               struct kp_value *host, struct kp_value *port, const struct kp_value *rack)
{
	if (node_id < 0 || node_id > INT32_MAX)
		return true; /* "no node" (e.g. a coordinator not available): nothing to point at */
	if (rw->seen_cnt < KX_SEEN_MAX) {
		struct kx_broker *b = &rw->seen[rw->seen_cnt++];
		memset(b, 0, sizeof(*b));
		b->node_id = (int32_t)node_id;
		kx_span_copy(b->host, sizeof(b->host), host->s);
		b->port = port->i > 0 && port->i <= 65535 ? (uint16_t)port->i : 0;
		if (rack)
			kx_span_copy(b->rack, sizeof(b->rack), rack->s);
	}
	uint16_t lp = kx_listen_port(cfg, (int32_t)node_id);
	if (lp == 0) {
		kx_error("rewrite: node %lld has no listener port (broker.port.base + id > 65535); its real address "
		         "stays in the response",
		         (long long)node_id);
		return false;
	}
	const char *adv = kx_config_advertised_host(cfg);
	host->s = (struct kp_span){(const uint8_t *)adv, (int32_t)strlen(adv)};
	port->i = lp;
	rw->addresses++;
	return true;
}

/* Rewrites every {NodeId, Host, Port, Rack} struct of an array field. */
static void kx_rewrite_endpoints(struct kx_rewriter *rw, const struct kx_config *cfg, struct kp_value *list, int id,
                                 int host, int port, int rack)
{
	for (int32_t i = 0; i < list->a.cnt; i++) {
		struct kp_struct *e = list->a.items[i].st;
		kx_rewrite_address(rw, cfg, e->v[id].i, &e->v[host], &e->v[port], rack >= 0 ? &e->v[rack] : NULL);
	}
}

/* Clamps an ApiVersions response to what kstretch can rewrite. */
static void kx_clamp_api_versions(struct kp_struct *body)
{
	struct kp_value *keys = &body->v[kp_field_index(body->schema, "ApiKeys")];
	int32_t kept = 0;
	for (int32_t i = 0; i < keys->a.cnt; i++) {
		struct kp_struct *e = keys->a.items[i].st;
		int16_t key = (int16_t)e->v[0].i, max = (int16_t)e->v[2].i;
		const struct kp_api *api = kp_api_get(key);
		if (key == KP_API_SHARE_FETCH || key == KP_API_SHARE_ACKNOWLEDGE)
			continue; /* their NodeEndpoints cannot be rewritten: hide share groups */
		if (api && kx_rewrite_needed(key, max) && api->response && max > api->decode_max) {
			if (e->v[1].i > api->decode_max)
				continue; /* nothing left that kstretch decodes */
			e->v[2].i = api->decode_max;
		}
		keys->a.items[kept++] = keys->a.items[i];
	}
	keys->a.cnt = kept;
}

/* Anything after a message's last field is kept as it came (librdkafka's mock
 * repeats the final tagged-field byte of some responses). */
static void kx_keep_trailing(struct kx_rewriter *rw)
{
	size_t left = kp_cursor_left(&rw->cur);
	if (left)
		kp_write_ref(&rw->out, rw->cur.buf + rw->cur.pos, left);
}

bool kx_rewrite_response(struct kx_rewriter *rw, const struct kx_config *cfg, int16_t api, int16_t version,
                         const uint8_t *body, size_t len)
{
	const struct kp_api *info = kp_api_get(api);
	bool flexible = kp_api_flexible(info, version);
	struct kp_response_header h;
	struct kp_struct *st;

	kp_writer_reset(&rw->out);
	kp_arena_free(&rw->arena);
	kp_arena_init(&rw->arena, 64 * len + (1 << 20));
	rw->seen_cnt = 0;
	rw->addresses = 0;
	rw->changed = false;
	kp_cursor_init(&rw->cur, body, len);
	if (!kp_response_header_parse(&rw->cur, kp_response_header_version(api, version), &h))
		return false;
	kp_response_header_write(&rw->out, &h);
	if (!kp_api_decodes(info, version, false))
		return kp_cursor_fail(&rw->cur, KP_ERR_UNSUPPORTED, info ? info->name : "api");

	if (api == KP_API_METADATA) {
		/* Only ThrottleTimeMs and Brokers: the topics are referenced unchanged. */
		st = kp_decode(&rw->arena, &rw->cur, info->response, version, flexible, KP_METADATA_RESPONSE_PREFIX);
		if (!st)
			return false;
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_METADATA_RESPONSE_BROKERS], KP_METADATA_BROKER_NODE_ID,
		                     KP_METADATA_BROKER_HOST, KP_METADATA_BROKER_PORT, KP_METADATA_BROKER_RACK);
		kp_encode(&rw->out, st, version, flexible, KP_METADATA_RESPONSE_PREFIX);
		kx_keep_trailing(rw);
		rw->changed = true;
		return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
	}

	size_t body_start = rw->cur.pos;
	st = kp_decode(&rw->arena, &rw->cur, info->response, version, flexible, -1);
	if (!st && api == KP_API_API_VERSIONS && version > 0) {
		/* A broker answers a too-new ApiVersions request in v0: pass it on. */
		struct kp_cursor v0;
		kp_cursor_init(&v0, body + body_start, len - body_start);
		if (kp_decode(&rw->arena, &v0, info->response, 0, false, -1)) {
			kp_writer_reset(&rw->out);
			kp_write_ref(&rw->out, body, len);
			rw->cur.err = KP_OK;
			return true;
		}
	}
	if (!st)
		return false;

	switch (api) {
	case KP_API_API_VERSIONS: kx_clamp_api_versions(st); break;
	case KP_API_FIND_COORDINATOR:
		if (version < 4)
			kx_rewrite_address(rw, cfg, st->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID].i,
			                   &st->v[KP_FIND_COORDINATOR_RESPONSE_HOST],
			                   &st->v[KP_FIND_COORDINATOR_RESPONSE_PORT], NULL);
		else
			kx_rewrite_endpoints(rw, cfg, &st->v[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS],
			                     KP_FIND_COORDINATOR_COORDINATOR_NODE_ID,
			                     KP_FIND_COORDINATOR_COORDINATOR_HOST, KP_FIND_COORDINATOR_COORDINATOR_PORT,
			                     -1);
		break;
	case KP_API_DESCRIBE_CLUSTER:
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS],
		                     KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID, KP_DESCRIBE_CLUSTER_BROKER_HOST,
		                     KP_DESCRIBE_CLUSTER_BROKER_PORT, KP_DESCRIBE_CLUSTER_BROKER_RACK);
		break;
	case KP_API_PRODUCE:
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_PRODUCE_RESP_NODE_ENDPOINTS], KP_PRODUCE_ENDPOINT_NODE_ID,
		                     KP_PRODUCE_ENDPOINT_HOST, KP_PRODUCE_ENDPOINT_PORT, KP_PRODUCE_ENDPOINT_RACK);
		break;
	case KP_API_FETCH:
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_FETCH_RESP_NODE_ENDPOINTS], KP_FETCH_ENDPOINT_NODE_ID,
		                     KP_FETCH_ENDPOINT_HOST, KP_FETCH_ENDPOINT_PORT, KP_FETCH_ENDPOINT_RACK);
		break;
	}
	kp_encode(&rw->out, st, version, flexible, -1);
	kx_keep_trailing(rw);
	rw->changed = true;
	return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
}
