/*
 * The config APIs' message tables, written from Kafka's definitions, and
 * regional mode's broker-id rewrite of them (configs.h).
 *
 * DescribeConfigs (32) v0-4, flexible 4+:
 *   Request:  Resources [ResourceType int8, ResourceName string,
 *             ConfigurationKeys [string] (nullable)], IncludeSynonyms bool (1+),
 *             IncludeDocumentation bool (3+).
 *   Response: ThrottleTimeMs int32, Results [ErrorCode int16,
 *             ErrorMessage string (nullable), ResourceType int8,
 *             ResourceName string, Configs [Name string, Value string
 *             (nullable), ReadOnly bool, IsDefault bool (0 only),
 *             ConfigSource int8 (1+, default -1), IsSensitive bool,
 *             Synonyms [Name, Value (nullable), Source int8] (1+),
 *             ConfigType int8 (3+), Documentation string (3+, nullable)]].
 * AlterConfigs (33) v0-2, flexible 2+:
 *   Request:  Resources [ResourceType int8, ResourceName string,
 *             Configs [Name string, Value string (nullable)]], ValidateOnly bool.
 * IncrementalAlterConfigs (44) v0-1, flexible 1+:
 *   Request:  Resources [ResourceType int8, ResourceName string,
 *             Configs [Name string, ConfigOperation int8, Value string
 *             (nullable)]], ValidateOnly bool.
 * Both alters answer: ThrottleTimeMs int32, Responses [ErrorCode int16,
 *             ErrorMessage string (nullable), ResourceType int8, ResourceName string].
 */
#include "configs.h"

#include <stdio.h>
#include <string.h>

#include "api.h"

/* ---- DescribeConfigs -------------------------------------------------------- */

static const struct kp_field dc_resource_fields[] = {
    KP_FIELD("ResourceType", KP_INT8, 0, KP_VMAX),
    KP_FIELD("ResourceName", KP_STRING, 0, KP_VMAX),
    KP_NULL_ARRAY_OF("ConfigurationKeys", KP_STRING, 0, 0), /* null: every config */
};
static const struct kp_schema dc_resource = KP_SCHEMA("DescribeConfigsResource", dc_resource_fields);

static const struct kp_field dc_request_fields[] = {
    KP_STRUCTS("Resources", &dc_resource, 0, KP_VMAX),
    KP_FIELD("IncludeSynonyms", KP_BOOL, 1, KP_VMAX),
    KP_FIELD("IncludeDocumentation", KP_BOOL, 3, KP_VMAX),
};
const struct kp_schema kp_describe_configs_request = KP_SCHEMA("DescribeConfigsRequest", dc_request_fields);

static const struct kp_field dc_synonym_fields[] = {
    KP_FIELD("Name", KP_STRING, 1, KP_VMAX),
    KP_NFIELD("Value", KP_STRING, 1, KP_VMAX, 0),
    KP_FIELD("Source", KP_INT8, 1, KP_VMAX),
};
static const struct kp_schema dc_synonym = KP_SCHEMA("DescribeConfigsSynonym", dc_synonym_fields);

static const struct kp_field dc_config_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_NFIELD("Value", KP_STRING, 0, KP_VMAX, 0),
    KP_FIELD("ReadOnly", KP_BOOL, 0, KP_VMAX),
    KP_FIELD("IsDefault", KP_BOOL, 0, 0),
    KP_FIELD_D("ConfigSource", KP_INT8, 1, KP_VMAX, -1),
    KP_FIELD("IsSensitive", KP_BOOL, 0, KP_VMAX),
    KP_STRUCTS("Synonyms", &dc_synonym, 1, KP_VMAX),
    KP_FIELD("ConfigType", KP_INT8, 3, KP_VMAX),
    KP_NULL_STRING("Documentation", 3, 0),
};
static const struct kp_schema dc_config = KP_SCHEMA("DescribeConfigsResourceResult", dc_config_fields);

static const struct kp_field dc_result_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NFIELD("ErrorMessage", KP_STRING, 0, KP_VMAX, 0),
    KP_FIELD("ResourceType", KP_INT8, 0, KP_VMAX),
    KP_FIELD("ResourceName", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Configs", &dc_config, 0, KP_VMAX),
};
static const struct kp_schema dc_result = KP_SCHEMA("DescribeConfigsResult", dc_result_fields);

static const struct kp_field dc_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("Results", &dc_result, 0, KP_VMAX),
};
const struct kp_schema kp_describe_configs_response = KP_SCHEMA("DescribeConfigsResponse", dc_response_fields);

/* ---- AlterConfigs, IncrementalAlterConfigs ---------------------------------- */

static const struct kp_field ac_config_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_NFIELD("Value", KP_STRING, 0, KP_VMAX, 0),
};
static const struct kp_schema ac_config = KP_SCHEMA("AlterableConfig", ac_config_fields);

static const struct kp_field ac_resource_fields[] = {
    KP_FIELD("ResourceType", KP_INT8, 0, KP_VMAX),
    KP_FIELD("ResourceName", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Configs", &ac_config, 0, KP_VMAX),
};
static const struct kp_schema ac_resource = KP_SCHEMA("AlterConfigsResource", ac_resource_fields);

static const struct kp_field ac_request_fields[] = {
    KP_STRUCTS("Resources", &ac_resource, 0, KP_VMAX),
    KP_FIELD("ValidateOnly", KP_BOOL, 0, KP_VMAX),
};
const struct kp_schema kp_alter_configs_request = KP_SCHEMA("AlterConfigsRequest", ac_request_fields);

static const struct kp_field iac_config_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ConfigOperation", KP_INT8, 0, KP_VMAX),
    KP_NFIELD("Value", KP_STRING, 0, KP_VMAX, 0),
};
static const struct kp_schema iac_config = KP_SCHEMA("AlterableConfig", iac_config_fields);

static const struct kp_field iac_resource_fields[] = {
    KP_FIELD("ResourceType", KP_INT8, 0, KP_VMAX),
    KP_FIELD("ResourceName", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Configs", &iac_config, 0, KP_VMAX),
};
static const struct kp_schema iac_resource = KP_SCHEMA("AlterConfigsResource", iac_resource_fields);

static const struct kp_field iac_request_fields[] = {
    KP_STRUCTS("Resources", &iac_resource, 0, KP_VMAX),
    KP_FIELD("ValidateOnly", KP_BOOL, 0, KP_VMAX),
};
const struct kp_schema kp_incremental_alter_configs_request =
    KP_SCHEMA("IncrementalAlterConfigsRequest", iac_request_fields);

static const struct kp_field ac_result_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NFIELD("ErrorMessage", KP_STRING, 0, KP_VMAX, 0),
    KP_FIELD("ResourceType", KP_INT8, 0, KP_VMAX),
    KP_FIELD("ResourceName", KP_STRING, 0, KP_VMAX),
};
static const struct kp_schema ac_result = KP_SCHEMA("AlterConfigsResourceResponse", ac_result_fields);

static const struct kp_field ac_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("Responses", &ac_result, 0, KP_VMAX),
};
const struct kp_schema kp_alter_configs_response = KP_SCHEMA("AlterConfigsResponse", ac_response_fields);
const struct kp_schema kp_incremental_alter_configs_response =
    KP_SCHEMA("IncrementalAlterConfigsResponse", ac_response_fields);


/* ---- regional mode's rewrite ------------------------------------------------ */

bool kp_configs_api(int16_t api)
{
	return kp_configs_request_schema(api) != NULL;
}

const struct kp_schema *kp_configs_request_schema(int16_t api)
{
	switch (api) {
	case 32: return &kp_describe_configs_request;
	case 33: return &kp_alter_configs_request;
	case 44: return &kp_incremental_alter_configs_request;
	default: return NULL;
	}
}

const struct kp_schema *kp_configs_response_schema(int16_t api)
{
	switch (api) {
	case 32: return &kp_describe_configs_response;
	case 33: return &kp_alter_configs_response;
	case 44: return &kp_incremental_alter_configs_response;
	default: return NULL;
	}
}

bool kp_configs_names_broker(int64_t resource_type)
{
	return resource_type == KP_RESOURCE_BROKER || resource_type == KP_RESOURCE_BROKER_LOGGER;
}

bool kp_configs_parse_id(struct kp_span name, int32_t *id)
{
	if (name.len <= 0 || name.len > 11)
		return false;
	int32_t i = 0;
	bool neg = name.ptr[0] == '-';
	if (neg)
		i = 1;
	if (i >= name.len)
		return false;
	int64_t v = 0;
	for (; i < name.len; i++) {
		if (name.ptr[i] < '0' || name.ptr[i] > '9')
			return false;
		v = v * 10 + (name.ptr[i] - '0');
	}
	v = neg ? -v : v;
	if (v < INT32_MIN || v > INT32_MAX)
		return false;
	*id = (int32_t)v;
	return true;
}

/* A broker resource that names one broker (not the cluster default ""). */
static bool kp_names_one_broker(const struct kp_struct *res)
{
	return kp_configs_names_broker(res->v[KP_CONFIGS_RES_TYPE].i) && res->v[KP_CONFIGS_RES_NAME].s.len > 0;
}

static bool kp_is_node(int32_t id, const int32_t *nodes, size_t nnodes)
{
	for (size_t i = 0; i < nnodes; i++)
		if (nodes[i] == id)
			return true;
	return false;
}

bool kp_configs_route(struct kp_arena *a, int16_t api, struct kp_struct *req, const int32_t *nodes, size_t nnodes,
                      struct kp_configs_route *r)
{
	if (!req || req->schema != kp_configs_request_schema(api))
		return false;
	struct kp_list *list = &req->v[KP_CONFIGS_REQ_RESOURCES].a;
	int32_t n = list->cnt > 0 ? list->cnt : 0;
	*r = (struct kp_configs_route){.node = -1, .cnt = n};
	r->types = kp_arena_alloc(a, (size_t)n * sizeof(*r->types) + 1);
	r->refused = kp_arena_alloc(a, (size_t)n * sizeof(*r->refused) + 1);
	r->names = kp_arena_alloc(a, (size_t)n * sizeof(*r->names) + 1);
	if (!r->types || !r->refused || !r->names)
		return false;
	int32_t kept = 0;
	for (int32_t i = 0; i < n; i++) {
		struct kp_struct *res = list->items[i].st;
		r->types[i] = (int16_t)res->v[KP_CONFIGS_RES_TYPE].i;
		r->names[i] = res->v[KP_CONFIGS_RES_NAME].s;
		int32_t id;
		if (kp_names_one_broker(res)) {
			bool ok = kp_configs_parse_id(res->v[KP_CONFIGS_RES_NAME].s, &id) && kp_is_node(id, nodes, nnodes) &&
			          (r->node < 0 || r->node == id);
			if (!ok) {
				r->refused[i] = KP_CONFIGS_INVALID_REQUEST;
				continue;
			}
			r->node = id;
		}
		list->items[kept++] = list->items[i];
	}
	if (list->cnt > 0)
		list->cnt = kept;
	r->forwarded = kept;
	return true;
}

/* id in decimal, in the arena. */
static bool kp_id_span(struct kp_arena *a, int32_t id, struct kp_span *out)
{
	char tmp[16];
	int len = snprintf(tmp, sizeof(tmp), "%d", (int)id);
	uint8_t *p = kp_arena_alloc(a, (size_t)len);
	if (!p)
		return false;
	memcpy(p, tmp, (size_t)len);
	*out = (struct kp_span){p, len};
	return true;
}

bool kp_configs_rename(struct kp_arena *a, struct kp_struct *req, int32_t id)
{
	struct kp_span name;
	if (!kp_id_span(a, id, &name))
		return false;
	const struct kp_list *list = &req->v[KP_CONFIGS_REQ_RESOURCES].a;
	for (int32_t i = 0; i < list->cnt; i++)
		if (kp_names_one_broker(list->items[i].st))
			list->items[i].st->v[KP_CONFIGS_RES_NAME].s = name;
	return true;
}

/* Whether broker result x answers client resource c (forwarded as routed: a broker one renamed to real_id). */
static bool kp_answers(const struct kp_struct *x, int16_t type, struct kp_span cn, int32_t real_id)
{
	if (x->v[KP_CONFIGS_RESULT_TYPE].i != type)
		return false;
	struct kp_span xn = x->v[KP_CONFIGS_RESULT_NAME].s;
	int32_t id;
	if (kp_configs_names_broker(type) && cn.len > 0)
		return kp_configs_parse_id(xn, &id) && id == real_id;
	return xn.len == cn.len && (xn.len <= 0 || memcmp(xn.ptr, cn.ptr, (size_t)xn.len) == 0);
}

/* A result refusing client resource c with error. */
static struct kp_struct *kp_refusal(struct kp_arena *a, const struct kp_schema *rs, int16_t ver, int16_t type,
                                    struct kp_span name, int16_t error)
{
	static const char msg[] = "ResourceName names no broker of this cluster, or a second one in one request "
	                          "(a broker answers only for its own id)";
	struct kp_struct *x = kp_struct_new(a, rs, ver);
	if (!x)
		return NULL;
	x->v[KP_CONFIGS_RESULT_ERROR_CODE].i = error;
	x->v[KP_CONFIGS_RESULT_ERROR_MESSAGE].s = (struct kp_span){(const uint8_t *)msg, (int32_t)(sizeof(msg) - 1)};
	x->v[KP_CONFIGS_RESULT_TYPE].i = type;
	x->v[KP_CONFIGS_RESULT_NAME].s = name;
	return x;
}

struct kp_struct *kp_configs_restore(struct kp_arena *a, int16_t api, int16_t ver, struct kp_struct *resp,
                                     const struct kp_configs_route *r, int32_t real_id)
{
	const struct kp_schema *s = kp_configs_response_schema(api);
	if (!s || (resp && resp->schema != s))
		return NULL;
	if (!resp && !(resp = kp_struct_new(a, s, ver)))
		return NULL;
	const struct kp_schema *rs = s->fields[KP_CONFIGS_RESP_RESULTS].sub;
	struct kp_list *got = &resp->v[KP_CONFIGS_RESP_RESULTS].a;
	int32_t ngot = got->cnt > 0 ? got->cnt : 0;
	bool *used = kp_arena_alloc(a, (size_t)ngot + 1);
	struct kp_value *items = kp_arena_alloc(a, ((size_t)r->cnt + (size_t)ngot + 1) * sizeof(*items));
	if (!used || !items)
		return NULL;
	int32_t n = 0;
	for (int32_t i = 0; i < r->cnt; i++) {
		struct kp_struct *x = NULL;
		if (r->refused[i]) {
			x = kp_refusal(a, rs, ver, r->types[i], r->names[i], r->refused[i]);
			if (!x)
				return NULL;
		} else {
			for (int32_t j = 0; j < ngot && !x; j++)
				if (!used[j] && kp_answers(got->items[j].st, r->types[i], r->names[i], real_id)) {
					used[j] = true;
					x = got->items[j].st;
					x->v[KP_CONFIGS_RESULT_NAME].s = r->names[i]; /* the client's name */
				}
		}
		if (x)
			items[n++] = (struct kp_value){.st = x, .present = true};
	}
	for (int32_t j = 0; j < ngot; j++) /* answered but not asked for: kept, last; a real id is not shown */
		if (!used[j]) {
			struct kp_struct *x = got->items[j].st;
			int32_t id;
			if (kp_configs_names_broker(x->v[KP_CONFIGS_RESULT_TYPE].i) &&
			    kp_configs_parse_id(x->v[KP_CONFIGS_RESULT_NAME].s, &id)) {
				if (r->node < 0 || !kp_id_span(a, r->node, &x->v[KP_CONFIGS_RESULT_NAME].s))
					continue;
			}
			items[n++] = got->items[j];
		}
	resp->v[KP_CONFIGS_RESP_RESULTS].a = (struct kp_list){items, n};
	resp->v[KP_CONFIGS_RESP_RESULTS].present = true;
	return resp;
}

/* How a config naming the real broker is shown in the virtual cluster. */
enum kp_identity { KP_ID_NONE, KP_ID_NODE, KP_ID_RACK, KP_ID_HIDDEN };

static enum kp_identity kp_identity_of(struct kp_span name)
{
	static const struct {
		const char *name;
		enum kp_identity what;
	} ids[] = {
	    {"node.id", KP_ID_NODE},
	    {"broker.id", KP_ID_NODE},
	    {"broker.rack", KP_ID_RACK},
	    {"advertised.listeners", KP_ID_HIDDEN},
	    {"listeners", KP_ID_HIDDEN},
	    {"controller.quorum.voters", KP_ID_HIDDEN},
	    {"controller.quorum.bootstrap.servers", KP_ID_HIDDEN},
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (name.len == (int32_t)strlen(ids[i].name) && memcmp(name.ptr, ids[i].name, (size_t)name.len) == 0)
			return ids[i].what;
	return KP_ID_NONE;
}

/* Rewrites one value (a config's or a synonym's) named name; 1 when it changed, 0 not, -1 no memory. */
static int kp_virtual_value(struct kp_arena *a, struct kp_span name, struct kp_value *value, int32_t node,
                            const char *rack)
{
	enum kp_identity what = kp_identity_of(name);
	if (what == KP_ID_NONE || value->s.len < 0)
		return 0;
	if (what == KP_ID_NODE)
		return kp_id_span(a, node, &value->s) ? 1 : -1;
	if (what == KP_ID_RACK && rack && rack[0])
		value->s = (struct kp_span){(const uint8_t *)rack, (int32_t)strlen(rack)};
	else
		value->s = (struct kp_span){NULL, -1};
	return 1;
}

int kp_configs_virtualize(struct kp_arena *a, struct kp_struct *resp, int32_t node, const char *rack)
{
	if (!resp || resp->schema != &kp_describe_configs_response)
		return 0;
	int changed = 0;
	const struct kp_list *results = &resp->v[KP_CONFIGS_RESP_RESULTS].a;
	for (int32_t i = 0; i < results->cnt; i++) {
		const struct kp_struct *x = results->items[i].st;
		if (!kp_configs_names_broker(x->v[KP_CONFIGS_RESULT_TYPE].i))
			continue;
		const struct kp_list *configs = &x->v[KP_DESCRIBE_CONFIGS_RESULT_CONFIGS].a;
		for (int32_t j = 0; j < configs->cnt; j++) {
			struct kp_struct *cf = configs->items[j].st;
			int d = kp_virtual_value(a, cf->v[KP_DESCRIBE_CONFIGS_CONFIG_NAME].s,
			                         &cf->v[KP_DESCRIBE_CONFIGS_CONFIG_VALUE], node, rack);
			if (d < 0)
				return -1;
			changed += d;
			const struct kp_list *syn = &cf->v[KP_DESCRIBE_CONFIGS_CONFIG_SYNONYMS].a;
			for (int32_t k = 0; cf->v[KP_DESCRIBE_CONFIGS_CONFIG_SYNONYMS].present && k < syn->cnt; k++) {
				struct kp_struct *sy = syn->items[k].st;
				d = kp_virtual_value(a, sy->v[KP_DESCRIBE_CONFIGS_SYNONYM_NAME].s,
				                     &sy->v[KP_DESCRIBE_CONFIGS_SYNONYM_VALUE], node, rack);
				if (d < 0)
					return -1;
				changed += d;
			}
		}
	}
	return changed;
}
