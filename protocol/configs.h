/*
 * configs: the three config APIs (DescribeConfigs 32 v0-4, AlterConfigs 33
 * v0-2, IncrementalAlterConfigs 44 v0-1) and the rewrite regional mode needs
 * of them: a resource of type BROKER (4) or BROKER_LOGGER (8) names a broker
 * by its id, as a decimal string ("" is the cluster-wide default). A client
 * of the virtual cluster names a virtual node; the real broker that node
 * stands for (routing/regional.h: kr_regional_stand_in) must see its own id.
 *
 *   client request     Resources [TOPIC t, BROKER "2", BROKER "7"]      (nodes: 1, 2)
 *   kp_configs_route   BROKER "7" names no node: taken out, answered INVALID_REQUEST
 *                      node 2 named: the request goes to its real broker, say 103
 *   kp_configs_rename  Resources [TOPIC t, BROKER "103"]  ──► broker 103
 *   answer             Results [TOPIC t, BROKER "103"]
 *   kp_configs_restore Results [TOPIC t, BROKER "2", BROKER "7" INVALID_REQUEST]
 *                      (client order; "103" back to "2"; DescribeConfigs of a
 *                      broker: the values that would name the real broker
 *                      rewritten, kp_configs_virtualize)
 *
 * A real broker accepts only its own id in a broker resource (INVALID_REQUEST
 * for another), so one request names at most one node: resources naming a
 * second node are refused as a broker refuses a foreign id. Everything here
 * works on decoded trees (schema.h) allocated from the caller's arena.
 */
#ifndef KP_CONFIGS_H
#define KP_CONFIGS_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "schema.h"

#define KP_RESOURCE_TOPIC 2
#define KP_RESOURCE_BROKER 4
#define KP_RESOURCE_BROKER_LOGGER 8

#define KP_CONFIGS_INVALID_REQUEST 42 /* Kafka's INVALID_REQUEST error code */

extern const struct kp_schema kp_describe_configs_request;
extern const struct kp_schema kp_describe_configs_response;
extern const struct kp_schema kp_alter_configs_request;
extern const struct kp_schema kp_alter_configs_response;
extern const struct kp_schema kp_incremental_alter_configs_request;
extern const struct kp_schema kp_incremental_alter_configs_response;

/* Field indexes (checked against the tables in test_configs.c). Requests:
 * Resources is field 0 of every request; a resource starts with
 * ResourceType, ResourceName. Responses: ThrottleTimeMs, then Results
 * (DescribeConfigs) or Responses (the alters); a result starts with
 * ErrorCode, ErrorMessage, ResourceType, ResourceName. */
enum kp_configs_field {
	KP_CONFIGS_REQ_RESOURCES = 0,
	KP_CONFIGS_RES_TYPE = 0,
	KP_CONFIGS_RES_NAME = 1,
	KP_CONFIGS_RESP_THROTTLE_TIME_MS = 0,
	KP_CONFIGS_RESP_RESULTS = 1,
	KP_CONFIGS_RESULT_ERROR_CODE = 0,
	KP_CONFIGS_RESULT_ERROR_MESSAGE = 1,
	KP_CONFIGS_RESULT_TYPE = 2,
	KP_CONFIGS_RESULT_NAME = 3,
	KP_DESCRIBE_CONFIGS_RESULT_CONFIGS = 4,
	KP_DESCRIBE_CONFIGS_CONFIG_NAME = 0,
	KP_DESCRIBE_CONFIGS_CONFIG_VALUE = 1,
	KP_DESCRIBE_CONFIGS_CONFIG_SYNONYMS = 6, /* v1+ */
	KP_DESCRIBE_CONFIGS_SYNONYM_NAME = 0,
	KP_DESCRIBE_CONFIGS_SYNONYM_VALUE = 1,
};

/* Whether api is one of the three; their request and response tables (NULL: another api). */
bool kp_configs_api(int16_t api);
const struct kp_schema *kp_configs_request_schema(int16_t api);
const struct kp_schema *kp_configs_response_schema(int16_t api);

/* Whether a resource type names a broker by id (BROKER, BROKER_LOGGER). */
bool kp_configs_names_broker(int64_t resource_type);

/* A broker id as Kafka writes it: decimal digits, optionally '-', within int32; nothing else. */
bool kp_configs_parse_id(struct kp_span name, int32_t *id);

/* What kp_configs_route decided for a request. */
struct kp_configs_route {
	int32_t node;          /* the node its broker resources name; -1: none (any broker serves it) */
	int32_t cnt;           /* the client's resources, in its order */
	int16_t *types;         /* each resource's ResourceType (an int8 on the wire) */
	struct kp_span *names;  /* each resource's name as the client sent it (the request's may be renamed) */
	int16_t *refused;      /* per resource: 0 forwarded, else answered locally with this error */
	int32_t forwarded;     /* resources left in the request */
};

/*
 * Decides where req (a decoded request of api) goes: each broker resource
 * with a non-empty name must name one of nodes[0 .. nnodes) (a virtual node
 * id), the first such node wins, and a resource naming anything else (not an
 * id, not a node, another node) is refused with INVALID_REQUEST and taken
 * out of req. False on no memory or a request of another message.
 */
bool kp_configs_route(struct kp_arena *a, int16_t api, struct kp_struct *req, const int32_t *nodes, size_t nnodes,
                      struct kp_configs_route *r);

/* Writes id (decimal, in the arena) as the name of every broker resource of req with a non-empty name. */
bool kp_configs_rename(struct kp_arena *a, struct kp_struct *req, int32_t id);

/*
 * The client's answer: resp (the broker's decoded answer to the request as
 * routed, or NULL when nothing was forwarded) with broker results naming
 * real_id named node again (r->node), the refused resources answered with
 * their error, and everything in the client's resource order (a broker
 * result no client resource matches goes last). Allocated from a; NULL on
 * no memory.
 */
struct kp_struct *kp_configs_restore(struct kp_arena *a, int16_t api, int16_t ver, struct kp_struct *resp,
                                     const struct kp_configs_route *r, int32_t real_id);

/*
 * DescribeConfigs of a broker seen as node `node` of the virtual cluster:
 * the configs that name the real broker (node.id and broker.id: the node's
 * id; broker.rack: rack, or null; the listener and quorum address lists:
 * null, as Kafka shows a sensitive value) rewritten in every broker result
 * of resp, synonyms included. Returns how many values changed; -1 on no memory.
 */
int kp_configs_virtualize(struct kp_arena *a, struct kp_struct *resp, int32_t node, const char *rack);

#endif
