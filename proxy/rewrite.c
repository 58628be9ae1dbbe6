/*
 * rewrite: the responses (and, for rack injection, the requests) mapped mode
 * changes. See rewrite.h for what and when.
 */
#include "rewrite.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "apiplan.h"
#include "regional_api.h"
#include "header.h"
#include "log.h"
#include "messages.h"
#include "metrics.h"
#include "skip.h"
#include "sni.h"
#include "text.h"
#include "walk.h"

#define KX_ERR_UNKNOWN_TOPIC_OR_PARTITION 3
#define KX_ISR_MAX                        64 /* in-sync replicas considered per partition */

void kx_rewriter_init(struct kx_rewriter *rw)
{
	kp_writer_init(&rw->out);
	kp_arena_init(&rw->arena, 0);
	rw->seen_cnt = 0;
	rw->topics = NULL;
	rw->topic_cnt = rw->topic_cap = 0;
	rw->redirects = rw->fallbacks = 0;
	rw->self = NULL;
}

/* Drops topics learned but not merged. */
static void kx_rewriter_drop_topics(struct kx_rewriter *rw)
{
	for (size_t i = 0; i < rw->topic_cnt; i++)
		kx_topic_put(rw->topics[i]);
	rw->topic_cnt = 0;
}

void kx_rewriter_free(struct kx_rewriter *rw)
{
	kx_rewriter_drop_topics(rw);
	free(rw->topics);
	rw->topics = NULL;
	rw->topic_cap = 0;
	kp_writer_free(&rw->out);
	kp_arena_free(&rw->arena);
}

/*
 * listener.mode=sni: every broker is at kstretch's one port under its own
 * name (sni.host.pattern; its rack from the response, else from the
 * topology, for $(rack) and $(region)).
 */
static bool kx_rewrite_sni(struct kx_rewriter *rw, const struct kx_config *cfg, int32_t node_id, struct kp_value *host,
                           struct kp_value *port, const struct kp_value *rack)
{
	static atomic_llong long_logged;
	char rk[KX_NAME_MAX] = "", region[KX_NAME_MAX] = "", name[KX_HOST_MAX];
	if (!rack || !kx_name_copy(rk, sizeof(rk), rack->s.ptr, rack->s.len) || !rk[0]) {
		struct kx_topology *t = kx_topology_get();
		const struct kx_broker *b = kx_topology_broker(t, node_id);
		if (b)
			snprintf(rk, sizeof(rk), "%s", b->rack);
		kx_topology_put(t);
	}
	kr_region_of(cfg->region_rules, cfg->region_rule_cnt, rk, region, sizeof(region));
	char *copy = NULL;
	if (kr_sni_name(cfg->sni_host_pattern, node_id, rk, region, name, sizeof(name)))
		copy = kp_arena_alloc(&rw->arena, strlen(name) + 1);
	if (!copy) {
		if (kx_log_due(&long_logged, 60000))
			kx_error("rewrite: no name for node %d from sni.host.pattern (too long, or out of memory); its real "
			         "address stays in the response (logged once a minute)", (int)node_id);
		return false;
	}
	memcpy(copy, name, strlen(name) + 1);
	host->s = (struct kp_span){(const uint8_t *)copy, (int32_t)strlen(copy)};
	port->i = cfg->listen.port;
	rw->addresses++;
	return true;
}

/*
 * Records a broker the response named and points (host, port) at kstretch's
 * listener for it. Returns false when the node has no listener port. What the
 * topology learns is checked first: a host that is empty, too long or not
 * clean UTF-8, or a port out of range, teaches it nothing; such a rack counts
 * as none (it would make a region of its own).
 */
static bool kx_rewrite_address(struct kx_rewriter *rw, const struct kx_config *cfg, struct kp_value *node,
                               struct kp_value *host, struct kp_value *port, const struct kp_value *rack)
{
	static atomic_llong bad_logged, no_port_logged;
	int64_t node_id = node->i;
	if (node_id < 0 || node_id > INT32_MAX)
		return true; /* "no node" (e.g. a coordinator not available): nothing to point at */
	if (rw->seen_cnt < KX_SEEN_MAX) {
		struct kx_broker *b = &rw->seen[rw->seen_cnt];
		memset(b, 0, sizeof(*b));
		b->node_id = (int32_t)node_id;
		bool addr_ok = kx_name_copy(b->host, sizeof(b->host), host->s.ptr, host->s.len) && b->host[0] &&
		               port->i > 0 && port->i <= 65535;
		bool rack_ok = !rack || kx_name_copy(b->rack, sizeof(b->rack), rack->s.ptr, rack->s.len);
		if (addr_ok) {
			b->port = (uint16_t)port->i;
			rw->seen_cnt++;
		}
		if (!addr_ok && kx_log_due(&bad_logged, 60000))
			kx_warn(
			    "rewrite: a response names node %lld at an address kstretch does not accept (host empty, "
			    "too long or not UTF-8, or port %lld); the topology does not learn it (logged once a "
			    "minute)",
			    (long long)node_id, (long long)port->i);
		else if (!rack_ok && kx_log_due(&bad_logged, 60000))
			kx_warn(
			    "rewrite: a response names node %lld with a rack that is too long or not UTF-8; the broker "
			    "is learned with no rack (logged once a minute)",
			    (long long)node_id);
	}
	if (rw->self) { /* regional: every broker a client learns of is this kstretch node */
		node->i = rw->self->id;
		host->s = (struct kp_span){(const uint8_t *)rw->self->host, (int32_t)strlen(rw->self->host)};
		port->i = rw->self->port;
		rw->addresses++;
		return true;
	}
	if (cfg->listener_mode == KX_LISTENER_SNI)
		return kx_rewrite_sni(rw, cfg, (int32_t)node_id, host, port, rack);
	struct kr_topology_rules rules;
	kx_config_topology(cfg, &rules);
	uint16_t lp = kx_listen_port(&rules, (int32_t)node_id);
	if (lp == 0) {
		if (kx_log_due(&no_port_logged, 60000))
			kx_error("rewrite: node %lld has no listener port (broker.port.base + id > 65535); its real "
			         "address stays in the response (logged once a minute)",
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
		kx_rewrite_address(rw, cfg, &e->v[id], &e->v[host], &e->v[port], rack >= 0 ? &e->v[rack] : NULL);
		if (rw->self && rack >= 0 && e->v[rack].present)
			e->v[rack].s = (struct kp_span){(const uint8_t *)rw->self->rack, (int32_t)strlen(rw->self->rack)};
	}
}

/* APIs regional mode decodes (splits by partition or by group or transactional
 * id, answers as the virtual cluster, renames brokers in: regional_api.h):
 * clamped to what it decodes. */
static bool kx_regional_decodes(int16_t key)
{
	switch (kr_regional_api(key)) {
	case KR_RAPI_SPLIT:
	case KR_RAPI_METADATA:
	case KR_RAPI_CLUSTER:
	case KR_RAPI_FIND:
	case KR_RAPI_CONFIGS:
	case KR_RAPI_KEYS:
	case KR_RAPI_LISTING: return true;
	default: return false;
	}
}

/* Regional mode routes a transaction request to the coordinator of the one
 * key it names (coordinator.h): AddPartitionsToTxn 4+ (a broker's batch of
 * transactions) is not offered; the SASL APIs, which the node answers itself,
 * only in the versions it answers. -1: no limit. */
static int kx_regional_max(int16_t key)
{
	switch (key) {
	case 24: return 3; /* AddPartitionsToTxn */
	case 17: return 1; /* SaslHandshake: the node answers it itself (regional_auth.h) */
	case 36: return 2; /* SaslAuthenticate: the same */
	default: return -1;
	}
}

/* Clamps an ApiVersions response to what kstretch can rewrite. */
static void kx_clamp_api_versions(struct kp_struct *body, bool regional)
{
	struct kp_value *keys = &body->v[kp_field_index(body->schema, "ApiKeys")];
	int32_t kept = 0;
	for (int32_t i = 0; i < keys->a.cnt; i++) {
		struct kp_struct *e = keys->a.items[i].st;
		int16_t key = (int16_t)e->v[0].i, max = (int16_t)e->v[2].i;
		const struct kp_api *api = kp_api_get(key);
		if (key == KP_API_SHARE_FETCH || key == KP_API_SHARE_ACKNOWLEDGE)
			continue; /* their NodeEndpoints cannot be rewritten: hide share groups */
		if (regional && !kr_regional_api_offered(key))
			continue; /* not faithful in the virtual cluster (regional_api.h): unsupported */
		int rmax = regional ? kx_regional_max(key) : -1;
		if (rmax >= 0 && max > rmax) {
			if (e->v[1].i > rmax)
				continue;
			max = (int16_t)rmax;
			e->v[2].i = max;
		}
		bool decoded = kr_response_plan(key, max, false) != KR_RESPONSE_PASS || (regional && kx_regional_decodes(key));
		if (api && decoded && api->response && max > api->decode_max) {
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

/* ---- client view ------------------------------------------------------- */

static bool kx_known(const char *s)
{
	return s && s[0];
}

/* The broker this connection goes to, when steering is possible at all. */
static const struct kx_broker *kx_view_broker(const struct kx_client_view *v)
{
	if (!v || !kx_known(v->region) || !v->topology || !v->steer || v->broker_id < 0)
		return NULL;
	return kx_topology_broker(v->topology, v->broker_id);
}

bool kx_steer_wanted(const struct kx_config *cfg, const struct kx_client_view *v, int16_t version)
{
	if (!cfg->fetch_prefer_local || !kr_api_steers(KP_API_FETCH, version) ||
	    !kp_api_decodes(kp_api_get(KP_API_FETCH), version, false))
		return false;
	const struct kx_broker *b = kx_view_broker(v);
	return b && b->region[0] && strcmp(b->region, v->region) != 0;
}

bool kx_rewrite_needed_for(const struct kx_config *cfg, const struct kx_client_view *v, int16_t api, int16_t version)
{
	bool steer = kr_api_steers(api, version) && kx_steer_wanted(cfg, v, version);
	return kr_response_plan(api, version, steer) != KR_RESPONSE_PASS;
}

bool kx_inject_wanted(const struct kx_config *cfg, const struct kx_client_view *v, int16_t api, int16_t version)
{
	return kr_request_plan(api, version, cfg->fetch_rack_inject && v && kx_known(v->rack)) == KR_REQUEST_SET_RACK;
}

/* ---- Fetch request: RackId --------------------------------------------- */

enum kx_inject_result kx_fetch_inject_rack(struct kx_rewriter *rw, const uint8_t *body, size_t len, const char *rack)
{
	struct kp_request_header h;
	const struct kp_api *api = kp_api_get(KP_API_FETCH);

	kp_writer_reset(&rw->out);
	rw->changed = false;
	kp_cursor_init(&rw->cur, body, len);
	if (!kx_known(rack))
		return KX_INJECT_UNCHANGED;
	if (!kp_request_header_parse(&rw->cur, &h))
		return KX_INJECT_FAILED;
	if (h.api_key != KP_API_FETCH || h.api_version < 11 || !kp_api_decodes(api, h.api_version, true))
		return KX_INJECT_UNCHANGED; /* no RackId, or a version kstretch does not know the layout of */
	int16_t ver = h.api_version;
	bool flexible = kp_api_flexible(api, ver);

	/* Walk (no allocation, nothing copied) to RackId: the request's last regular field. */
	struct kp_schema before_rack = kp_fetch_request;
	before_rack.nfields = KP_FETCH_REQ_RACK_ID;
	struct iovec iov = {(void *)(body + h.size), len - h.size};
	struct kp_pieces p;
	uint32_t tags;
	kp_pieces_init(&p, &iov, 1, len - h.size);
	if (!kp_skip_to_tags(&p, &before_rack, ver, flexible, &tags)) {
		rw->cur.pos = h.size + p.pos;
		kp_cursor_fail(&rw->cur, p.err, p.err_field);
		return KX_INJECT_FAILED;
	}
	size_t at = h.size + p.pos;
	rw->cur.pos = at;
	struct kp_span old = kp_read_string(&rw->cur, flexible, false, "RackId");
	if (!kp_cursor_ok(&rw->cur))
		return KX_INJECT_FAILED;
	if (old.len != 0)
		return KX_INJECT_UNCHANGED; /* the client's own rack: never changed */
	if (flexible) {
		/* The top-level tagged fields follow: check they are whole before pointing at them. */
		struct iovec tail = {(void *)(body + rw->cur.pos), len - rw->cur.pos};
		kp_pieces_init(&p, &tail, 1, len - rw->cur.pos);
		if (!kp_pieces_skip_tags(&p)) {
			size_t end = rw->cur.pos;
			rw->cur.pos += p.pos;
			kp_cursor_fail(&rw->cur, p.err, p.err_field);
			rw->cur.pos = end;
			return KX_INJECT_FAILED;
		}
	}

	kp_write_ref(&rw->out, body, at);
	kp_write_string(&rw->out, flexible, (struct kp_span){(const uint8_t *)rack, (int32_t)strlen(rack)});
	kp_write_ref(&rw->out, body + rw->cur.pos, len - rw->cur.pos);
	if (!kp_writer_ok(&rw->out)) {
		kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "RackId");
		return KX_INJECT_FAILED;
	}
	rw->changed = true;
	KX_METRIC_ADD(fetch_rack_injected, 1);
	return KX_INJECT_DONE;
}

/* ---- Fetch response: PreferredReadReplica ------------------------------ */

/*
 * The node a partition of this response should be read from instead, or -1.
 * topic/topic_len: its name (v11-12) or id (v13+), tp: what the topology
 * knows of it (NULL: nothing). With commit, a redirect is remembered and
 * counted. Fallbacks are noted (and counted) whether or not commit is set.
 */
static int32_t kx_steer_decide(const struct kx_config *cfg, struct kx_client_view *v, const struct kx_topic *tp,
                               const void *topic, size_t topic_len, int32_t index, int64_t error, int64_t preferred,
                               bool commit, int *fallbacks)
{
	uint64_t key = kr_steer_key(topic, topic_len, index);
	switch (kr_steer_check(v->steer, key, v->now_ms, cfg->fetch_prefer_local_backoff_ms)) {
	case KR_STEER_FELL_BACK:
		(*fallbacks)++;
		KX_METRIC_ADD(fetch_redirect_fallbacks, 1);
		kx_debug("fetch steering: node %d: partition %d came back to its leader; not redirected for %d ms",
		         v->broker_id, index, cfg->fetch_prefer_local_backoff_ms);
		return -1;
	case KR_STEER_HOLD: return -1;
	case KR_STEER_MAY: break;
	}
	if (error != 0 || preferred >= 0 || !tp)
		return -1; /* an error, or the broker chose a replica itself */
	const struct kx_partition *p = kx_topic_partition(tp, index);
	if (!p || p->leader != v->broker_id)
		return -1; /* stale topology, or this broker is a follower serving it */
	struct kr_replica isr[KX_ISR_MAX];
	size_t n = p->isr_cnt < KX_ISR_MAX ? p->isr_cnt : KX_ISR_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct kx_broker *b = kx_topology_broker(v->topology, p->isr[i]);
		isr[i] = (struct kr_replica){p->isr[i], b ? b->rack : "", b ? b->region : "", b && b->listen_port};
	}
	int32_t to = kr_pick_local_replica(isr, n, p->leader, v->rack, v->region, key);
	if (to < 0 || !commit)
		return to;
	if (!kr_steer_note_redirect(v->steer, key, v->now_ms, cfg->fetch_prefer_local_backoff_ms)) {
		/* Not remembered, so not redirected: a fallback must never go unnoticed. */
		if (v->steer->refused == 1)
			kx_warn("fetch steering: node %d: more than %u partitions redirected on one connection "
			        "(or no memory): the others stay with their leader",
			        v->broker_id, KR_STEER_MAX);
		return -1;
	}
	KX_METRIC_ADD(fetch_redirects, 1);
	return to;
}

/* The steer scan's state over one response's walk (walk.h). */
struct kx_scan {
	const struct kx_config *cfg;
	struct kx_client_view *v;
	uint32_t topic; /* ordinal + 1 of the topic tp was looked up for; 0: none yet */
	const struct kx_topic *tp;
	bool redirect;
	int fallbacks;
};

/* One PartitionData (v11+): would it be redirected? */
static bool kx_scan_partition(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct kx_scan *sc = arg;
	if (sc->topic != t->ordinal + 1) {
		sc->topic = t->ordinal + 1;
		sc->tp = t->by_id ? kx_topology_topic_by_id(sc->v->topology, t->key)
		                  : kx_topology_topic(sc->v->topology, (const char *)t->key, t->key_len);
	}
	if (kx_steer_decide(sc->cfg, sc->v, sc->tp, t->key, t->key_len, part->index, part->error_code,
	                    part->preferred_read_replica, false, &sc->fallbacks) >= 0)
		sc->redirect = true;
	return true;
}

enum kx_fetch_scan kx_fetch_response_scan(const struct kx_config *cfg, struct kx_client_view *v, int16_t version,
                                          const struct iovec *iov, int iovcnt, size_t len)
{
	const struct kp_api *api = kp_api_get(KP_API_FETCH);
	bool flexible = kp_api_flexible(api, version), steer = kx_steer_wanted(cfg, v, version);
	uint32_t tags = 0;
	struct kp_pieces p;

	if (!kp_api_decodes(api, version, false))
		return KX_FETCH_REWRITE; /* kx_rewrite_response_for says what is wrong */
	kp_pieces_init(&p, iov, iovcnt, len);
	if (!kp_pieces_skip(&p, 4, "correlation_id") || (flexible && !kp_pieces_skip_tags(&p)))
		return KX_FETCH_MALFORMED;
	if (!steer) {
		/* Only the top-level tagged fields matter: walk past the records by length. */
		if (version < 16)
			return KX_FETCH_PASS;
		if (!kp_skip_to_tags(&p, api->response, version, true, &tags))
			return KX_FETCH_MALFORMED;
		return tags ? KX_FETCH_REWRITE : KX_FETCH_PASS;
	}
	struct kx_scan sc = {.cfg = cfg, .v = v};
	if (!kp_walk_partitions(&p, &kp_walk_fetch_response, version, flexible, kx_scan_partition, &sc, &tags))
		return KX_FETCH_MALFORMED;
	return sc.redirect || tags ? KX_FETCH_REWRITE : KX_FETCH_PASS;
}

enum kx_fetch_scan kx_response_scan(const struct kx_config *cfg, struct kx_client_view *v, int16_t api_key,
                                    int16_t version, const struct iovec *iov, int iovcnt, size_t len)
{
	if (api_key == KP_API_FETCH)
		return kx_fetch_response_scan(cfg, v, version, iov, iovcnt, len);
	const struct kp_api *api = kp_api_get(api_key);
	if (!api || !kp_api_decodes(api, version, false))
		return KX_FETCH_REWRITE; /* kx_rewrite_response_for says what is wrong */
	struct kp_pieces p;
	uint32_t tags = 0;
	uint8_t header_tags = 0;
	kp_pieces_init(&p, iov, iovcnt, len);
	if (!kp_pieces_skip(&p, 4, "correlation_id"))
		return KX_FETCH_MALFORMED;
	if (kp_response_header_version(api_key, version) >= 1 &&
	    (!kp_pieces_read(&p, &header_tags, 1, "header tags") || header_tags != 0))
		return KX_FETCH_REWRITE; /* header tags: rare, the rewrite deals with them */
	if (!kp_skip_to_tags(&p, api->response, version, kp_api_flexible(api, version), &tags))
		return KX_FETCH_MALFORMED;
	return tags ? KX_FETCH_REWRITE : KX_FETCH_PASS;
}

/* Sets PreferredReadReplica (and empties Records) of the partitions to redirect. */
static void kx_steer_fetch(struct kx_rewriter *rw, const struct kx_config *cfg, struct kx_client_view *v,
                           struct kp_struct *st, int16_t version)
{
	const struct kp_value *topics = &st->v[KP_FETCH_RESP_RESPONSES];
	for (int32_t t = 0; t < topics->a.cnt; t++) {
		struct kp_struct *ts = topics->a.items[t].st;
		struct kp_span topic = ts->v[version >= 13 ? KP_FETCH_TOPIC_TOPIC_ID : KP_FETCH_TOPIC_TOPIC].s;
		size_t topic_len = topic.len > 0 ? (size_t)topic.len : 0;
		const struct kx_topic *tp =
		    version >= 13 ? (topic_len == 16 ? kx_topology_topic_by_id(v->topology, topic.ptr) : NULL)
		                  : kx_topology_topic(v->topology, (const char *)topic.ptr, topic_len);
		const struct kp_value *parts = &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS];
		for (int32_t i = 0; i < parts->a.cnt; i++) {
			struct kp_struct *ps = parts->a.items[i].st;
			int32_t to = kx_steer_decide(
			    cfg, v, tp, topic.ptr, topic_len, (int32_t)ps->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i,
			    ps->v[KP_FETCH_RESP_PART_ERROR_CODE].i, ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i,
			    true, &rw->fallbacks);
			if (to < 0)
				continue;
			/* As a leader with the rack-aware selector answers: the replica, no records. */
			ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = to;
			ps->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){NULL, 0};
			rw->redirects++;
		}
	}
}

/* ---- Metadata: local brokers first, topics learned --------------------- */

/* Stable: the brokers whose rack is in region first, the others after, each in their order. */
static void kx_brokers_local_first(struct kx_rewriter *rw, const struct kx_config *cfg, struct kp_value *list,
                                   const char *region)
{
	int32_t n = list->a.cnt;
	if (n < 2)
		return;
	struct kp_value *sorted = kp_arena_alloc(&rw->arena, (size_t)n * sizeof(*sorted));
	bool *local = kp_arena_alloc(&rw->arena, (size_t)n * sizeof(*local));
	if (!sorted || !local)
		return; /* out of arena: the order stays, nothing breaks */
	for (int32_t i = 0; i < n; i++) {
		char rack[KX_NAME_MAX], r[KX_NAME_MAX];
		struct kp_span rs = list->a.items[i].st->v[KP_METADATA_BROKER_RACK].s;
		kx_name_copy(rack, sizeof(rack), rs.ptr, rs.len);
		kr_region_of(cfg->region_rules, cfg->region_rule_cnt, rack, r, sizeof(r));
		local[i] = r[0] && strcmp(r, region) == 0;
	}
	int32_t k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int32_t i = 0; i < n; i++)
			if (local[i] == (pass == 0))
				sorted[k++] = list->a.items[i];
	memcpy(list->a.items, sorted, (size_t)n * sizeof(*sorted));
}

static bool kx_push_topic(struct kx_rewriter *rw, struct kx_topic *tp)
{
	if (rw->topic_cnt == rw->topic_cap) {
		size_t cap = rw->topic_cap ? rw->topic_cap * 2 : 16;
		struct kx_topic **nt = realloc(rw->topics, cap * sizeof(*nt));
		if (!nt) {
			kx_topic_put(tp);
			return false;
		}
		rw->topics = nt;
		rw->topic_cap = cap;
	}
	rw->topics[rw->topic_cnt++] = tp;
	return true;
}

/* A Metadata topic as the topology keeps it (NULL: nothing to keep, or no memory). */
static struct kx_topic *kx_topic_from_metadata(const struct kp_struct *ts)
{
	struct kp_span name = ts->v[KP_METADATA_TOPIC_NAME].s, id = ts->v[KP_METADATA_TOPIC_TOPIC_ID].s;
	const uint8_t *idp = ts->v[KP_METADATA_TOPIC_TOPIC_ID].present && id.len == 16 ? id.ptr : NULL;
	size_t name_len = name.len > 0 ? (size_t)name.len : 0;
	int64_t error = ts->v[KP_METADATA_TOPIC_ERROR_CODE].i;
	if (error == KX_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
		struct kx_topic *gone = kx_topic_new((const char *)name.ptr, name_len, idp, 0, 0);
		if (gone)
			gone->gone = true;
		return gone;
	}
	if (error != 0)
		return NULL; /* not authorized, being created, ...: what is known stays */
	const struct kp_list *parts = &ts->v[KP_METADATA_TOPIC_PARTITIONS].a;
	size_t nodes = 0, cnt = parts->cnt > 0 ? (size_t)parts->cnt : 0;
	for (size_t i = 0; i < cnt; i++) {
		const struct kp_struct *ps = parts->items[i].st;
		nodes += (size_t)(ps->v[KP_METADATA_PARTITION_REPLICA_NODES].a.cnt > 0
		                      ? ps->v[KP_METADATA_PARTITION_REPLICA_NODES].a.cnt
		                      : 0) +
		         (size_t)(ps->v[KP_METADATA_PARTITION_ISR_NODES].a.cnt > 0
		                      ? ps->v[KP_METADATA_PARTITION_ISR_NODES].a.cnt
		                      : 0);
	}
	struct kx_topic *tp = kx_topic_new((const char *)name.ptr, name_len, idp, cnt, nodes);
	int32_t *tmp = malloc((nodes ? nodes : 1) * sizeof(*tmp));
	if (!tp || !tmp) {
		kx_topic_put(tp);
		free(tmp);
		return NULL;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct kp_struct *ps = parts->items[i].st;
		const struct kp_list *rl = &ps->v[KP_METADATA_PARTITION_REPLICA_NODES].a;
		const struct kp_list *il = &ps->v[KP_METADATA_PARTITION_ISR_NODES].a;
		size_t nr = rl->cnt > 0 ? (size_t)rl->cnt : 0, ni = il->cnt > 0 ? (size_t)il->cnt : 0;
		for (size_t k = 0; k < nr; k++)
			tmp[k] = (int32_t)rl->items[k].i;
		for (size_t k = 0; k < ni; k++)
			tmp[nr + k] = (int32_t)il->items[k].i;
		kx_topic_add_partition(tp, (int32_t)ps->v[KP_METADATA_PARTITION_PARTITION_INDEX].i,
		                       (int32_t)ps->v[KP_METADATA_PARTITION_LEADER_ID].i,
		                       (int32_t)ps->v[KP_METADATA_PARTITION_LEADER_EPOCH].i,
		                       (int16_t)ps->v[KP_METADATA_PARTITION_ERROR_CODE].i, tmp, nr, tmp + nr, ni);
	}
	free(tmp);
	kx_topic_finish(tp);
	return tp;
}

/*
 * Decodes the whole Metadata body (after the header, at body_start) a second
 * time and keeps its topics. Its cost grows with partitions, so only clients
 * that need it ask (learn_topics). A failure here is not the client's
 * problem: the rewritten response goes out all the same.
 */
static void kx_learn_topics(struct kx_rewriter *rw, int16_t version, bool flexible, const uint8_t *body,
                            size_t body_start, size_t len)
{
	struct kp_cursor c;
	kp_cursor_init(&c, body + body_start, len - body_start);
	struct kp_struct *st = kp_decode(&rw->arena, &c, &kp_metadata_response, version, flexible, -1);
	if (!st) {
		kx_debug("rewrite: Metadata v%d topics not learned: %s at byte %zu reading %s", version,
		         kp_error_name(c.err), c.err_pos, c.err_field ? c.err_field : "?");
		return;
	}
	const struct kp_list *topics = &st->v[KP_METADATA_RESPONSE_TOPICS].a;
	for (int32_t i = 0; i < topics->cnt; i++) {
		struct kx_topic *tp = kx_topic_from_metadata(topics->items[i].st);
		if (tp && !kx_push_topic(rw, tp))
			return;
	}
}

bool kx_rewrite_merge_topology(struct kx_rewriter *rw, const struct kx_config *cfg)
{
	if (rw->seen_cnt == 0 && rw->topic_cnt == 0)
		return false;
	struct kr_topology_rules rules;
	kx_config_topology(cfg, &rules);
	bool changed = kx_topology_merge_topics(&rules, rw->seen, rw->seen_cnt, rw->topics, rw->topic_cnt);
	rw->topic_cnt = 0; /* the references went to the merge */
	return changed;
}

void kx_rewrite_learn_metadata(struct kx_rewriter *rw, const struct kp_struct *st)
{
	kx_rewriter_drop_topics(rw);
	rw->seen_cnt = 0;
	const struct kp_list *brokers = &st->v[KP_METADATA_RESPONSE_BROKERS].a;
	for (int32_t i = 0; i < brokers->cnt && rw->seen_cnt < KX_SEEN_MAX; i++) {
		const struct kp_struct *b = brokers->items[i].st;
		struct kx_broker *k = &rw->seen[rw->seen_cnt];
		memset(k, 0, sizeof(*k));
		int64_t id = b->v[KP_METADATA_BROKER_NODE_ID].i, port = b->v[KP_METADATA_BROKER_PORT].i;
		struct kp_span host = b->v[KP_METADATA_BROKER_HOST].s, rack = b->v[KP_METADATA_BROKER_RACK].s;
		if (id < 0 || id > INT32_MAX || port <= 0 || port > 65535 ||
		    !kx_name_copy(k->host, sizeof(k->host), host.ptr, host.len) || !k->host[0])
			continue; /* an address kstretch does not accept teaches nothing */
		if (!b->v[KP_METADATA_BROKER_RACK].present || !kx_name_copy(k->rack, sizeof(k->rack), rack.ptr, rack.len))
			k->rack[0] = '\0';
		k->node_id = (int32_t)id;
		k->port = (uint16_t)port;
		rw->seen_cnt++;
	}
	const struct kp_list *topics = &st->v[KP_METADATA_RESPONSE_TOPICS].a;
	for (int32_t i = 0; i < topics->cnt; i++) {
		struct kx_topic *tp = kx_topic_from_metadata(topics->items[i].st);
		if (tp && !kx_push_topic(rw, tp))
			return;
	}
}

/* ---- the response rewrite ---------------------------------------------- */

/*
 * ApiVersions. An answer that carries an error goes to the client as it came,
 * whatever its form (the v0 layout answering a too-new request, a body cut
 * short after the code, the requested layout) and whatever version was asked
 * (a client newer than kstretch's codec, answered by an older broker): the
 * client reads the error (for UNSUPPORTED_VERSION, the ApiVersions range too)
 * and asks again, and that answer is clamped. A successful answer is clamped,
 * in the requested version's layout or, when it came in v0's (clients accept
 * that too), in v0's; one to a version the codec does not decode is refused.
 */
static bool kx_rewrite_api_versions(struct kx_rewriter *rw, int16_t version, const uint8_t *body, size_t body_start,
                                    size_t len)
{
	const struct kp_api *info = kp_api_get(KP_API_API_VERSIONS);
	struct kp_cursor ec;
	int16_t error;
	if (!kp_api_versions_error(body + body_start, len - body_start, &error, &ec))
		return kp_cursor_fail(&rw->cur, ec.err, ec.err_field);
	if (error != 0) {
		kp_writer_reset(&rw->out);
		kp_write_ref(&rw->out, body, len);
		return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
	}
	if (!kp_api_decodes(info, version, false)) /* a success in a layout kstretch does not know */
		return kp_cursor_fail(&rw->cur, KP_ERR_UNSUPPORTED, info->name);
	int16_t layout = version;
	bool flexible = kp_api_flexible(info, version);
	struct kp_struct *st = kp_decode(&rw->arena, &rw->cur, info->response, version, flexible, -1);
	if (!st && version > 0) {
		struct kp_cursor v0;
		kp_cursor_init(&v0, body, len);
		v0.pos = body_start;
		if ((st = kp_decode(&rw->arena, &v0, info->response, 0, false, -1))) {
			rw->cur = v0;
			layout = 0;
		}
	}
	if (!st)
		return false; /* rw->cur: where the requested version's layout failed */
	kx_clamp_api_versions(st, rw->self != NULL);
	kp_encode(&rw->out, st, layout, kp_api_flexible(info, layout), -1);
	kx_keep_trailing(rw);
	rw->changed = true;
	return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
}

bool kx_rewrite_response(struct kx_rewriter *rw, const struct kx_config *cfg, int16_t api, int16_t version,
                         const uint8_t *body, size_t len)
{
	return kx_rewrite_response_for(rw, cfg, NULL, api, version, body, len);
}

bool kx_rewrite_response_for(struct kx_rewriter *rw, const struct kx_config *cfg, struct kx_client_view *v, int16_t api,
                             int16_t version, const uint8_t *body, size_t len)
{
	const struct kp_api *info = kp_api_get(api);
	bool flexible = kp_api_flexible(info, version);
	struct kp_response_header h;
	struct kp_struct *st;

	kp_writer_reset(&rw->out);
	kp_arena_free(&rw->arena);
	kp_arena_init(&rw->arena, 64 * len + (1 << 20));
	kx_rewriter_drop_topics(rw);
	rw->seen_cnt = 0;
	rw->addresses = 0;
	rw->redirects = rw->fallbacks = 0;
	rw->changed = false;
	kp_cursor_init(&rw->cur, body, len);
	if (!kp_response_header_parse(&rw->cur, kp_response_header_version(api, version), &h))
		return false;
	kp_response_header_write(&rw->out, &h);
	size_t body_start = rw->cur.pos;
	if (api == KP_API_API_VERSIONS) /* its errors pass whatever the version: before the check below */
		return kx_rewrite_api_versions(rw, version, body, body_start, len);
	if (!kp_api_decodes(info, version, false))
		return kp_cursor_fail(&rw->cur, KP_ERR_UNSUPPORTED, info ? info->name : "api");

	if (api == KP_API_METADATA) {
		/* Only ThrottleTimeMs and Brokers: the topics are referenced unchanged. */
		st = kp_decode(&rw->arena, &rw->cur, info->response, version, flexible, KP_METADATA_RESPONSE_PREFIX);
		if (!st)
			return false;
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_METADATA_RESPONSE_BROKERS], KP_METADATA_BROKER_NODE_ID,
		                     KP_METADATA_BROKER_HOST, KP_METADATA_BROKER_PORT, KP_METADATA_BROKER_RACK);
		if (v && kx_known(v->region))
			kx_brokers_local_first(rw, cfg, &st->v[KP_METADATA_RESPONSE_BROKERS], v->region);
		kp_encode(&rw->out, st, version, flexible, KP_METADATA_RESPONSE_PREFIX);
		kx_keep_trailing(rw);
		if (v && v->learn_topics)
			kx_learn_topics(rw, version, flexible, body, body_start, len);
		rw->changed = true;
		return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
	}

	st = kp_decode(&rw->arena, &rw->cur, info->response, version, flexible, -1);
	if (!st)
		return false;

	bool steered = false;
	switch (api) {
	case KP_API_FIND_COORDINATOR:
		if (version < 4)
			kx_rewrite_address(rw, cfg, &st->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID],
			                   &st->v[KP_FIND_COORDINATOR_RESPONSE_HOST],
			                   &st->v[KP_FIND_COORDINATOR_RESPONSE_PORT], NULL);
		else
			kx_rewrite_endpoints(rw, cfg, &st->v[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS],
			                     KP_FIND_COORDINATOR_COORDINATOR_NODE_ID,
			                     KP_FIND_COORDINATOR_COORDINATOR_HOST, KP_FIND_COORDINATOR_COORDINATOR_PORT,
			                     -1);
		break;
	case KP_API_DESCRIBE_CLUSTER:
		if (rw->self) { /* regional: one broker, this node, also the controller */
			struct kp_value *brokers = &st->v[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS];
			if (brokers->a.cnt > 1)
				brokers->a.cnt = 1;
			st->v[KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID].i = rw->self->id;
		}
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS],
		                     KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID, KP_DESCRIBE_CLUSTER_BROKER_HOST,
		                     KP_DESCRIBE_CLUSTER_BROKER_PORT, KP_DESCRIBE_CLUSTER_BROKER_RACK);
		break;
	case KP_API_PRODUCE:
		kx_rewrite_endpoints(rw, cfg, &st->v[KP_PRODUCE_RESP_NODE_ENDPOINTS], KP_PRODUCE_ENDPOINT_NODE_ID,
		                     KP_PRODUCE_ENDPOINT_HOST, KP_PRODUCE_ENDPOINT_PORT, KP_PRODUCE_ENDPOINT_RACK);
		break;
	case KP_API_FETCH:
		if (kx_steer_wanted(cfg, v, version)) {
			steered = true;
			kx_steer_fetch(rw, cfg, v, st, version);
		}
		if (version >= 16)
			kx_rewrite_endpoints(rw, cfg, &st->v[KP_FETCH_RESP_NODE_ENDPOINTS], KP_FETCH_ENDPOINT_NODE_ID,
			                     KP_FETCH_ENDPOINT_HOST, KP_FETCH_ENDPOINT_PORT, KP_FETCH_ENDPOINT_RACK);
		break;
	}
	if (steered && rw->redirects == 0 && rw->addresses == 0 && rw->seen_cnt == 0) {
		/* Nothing to change after all: the response as it came. */
		kp_writer_reset(&rw->out);
		kp_write_ref(&rw->out, body, len);
		return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
	}
	kp_encode(&rw->out, st, version, flexible, -1);
	kx_keep_trailing(rw);
	rw->changed = true;
	return kp_writer_ok(&rw->out) || kp_cursor_fail(&rw->cur, KP_ERR_NOMEM, "rewrite");
}
