/*
 * api: every Kafka API key, with what kstretch must know of each to parse a
 * request's header: its name, the versions Kafka defines, and its first
 * flexible version (which selects request header v2 / response header v1).
 * For the APIs this build decodes, the message tables and the versions the
 * codec handles; kstretch never lets a client negotiate a version of an API
 * it rewrites beyond that range.
 */
#ifndef KP_API_H
#define KP_API_H

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"

enum kp_api_key {
	KP_API_PRODUCE = 0,
	KP_API_FETCH = 1,
	KP_API_LIST_OFFSETS = 2,
	KP_API_METADATA = 3,
	KP_API_CONTROLLED_SHUTDOWN = 7,
	KP_API_OFFSET_FETCH = 9,
	KP_API_FIND_COORDINATOR = 10,
	KP_API_JOIN_GROUP = 11,
	KP_API_DESCRIBE_GROUPS = 15,
	KP_API_LIST_GROUPS = 16,
	KP_API_SASL_HANDSHAKE = 17,
	KP_API_API_VERSIONS = 18,
	KP_API_DELETE_RECORDS = 21,
	KP_API_OFFSET_FOR_LEADER_EPOCH = 23,
	KP_API_SASL_AUTHENTICATE = 36,
	KP_API_DELETE_GROUPS = 42,
	KP_API_DESCRIBE_CLUSTER = 60,
	KP_API_DESCRIBE_PRODUCERS = 61,
	KP_API_DESCRIBE_TRANSACTIONS = 65,
	KP_API_LIST_TRANSACTIONS = 66,
	KP_API_CONSUMER_GROUP_HEARTBEAT = 68,
	KP_API_CONSUMER_GROUP_DESCRIBE = 69,
	KP_API_SHARE_FETCH = 78,
	KP_API_SHARE_ACKNOWLEDGE = 79,
};

struct kp_api {
	int16_t key;
	const char *name;
	int16_t min_version, max_version; /* as Kafka defines them (newest known) */
	int16_t flexible_since;           /* -1: no flexible version */
	/* Decoded by this build (NULL: headers only). */
	const struct kp_schema *request, *response;
	int16_t decode_min, decode_max;
};

/* The entry for an API key, or NULL when the key is unknown. */
const struct kp_api *kp_api_get(int16_t key);

/* Highest API key in the table. */
int16_t kp_api_max_key(void);

/* Whether version v of the API uses flexible encodings (false for unknown APIs). */
bool kp_api_flexible(const struct kp_api *api, int16_t v);

/* Whether this build decodes the request/response of api at version v. */
bool kp_api_decodes(const struct kp_api *api, int16_t v, bool request);

/* Request header version for api at v: 0 (ControlledShutdown v0), 1, or 2 (flexible). */
int kp_request_header_version(int16_t key, int16_t v);

/* Response header version: 1 for flexible versions, except ApiVersions (always 0). */
int kp_response_header_version(int16_t key, int16_t v);

#endif
