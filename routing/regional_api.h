/*
 * regional_api: what regional mode (mode=regional) does with each API key,
 * and which real broker a virtual node stands for when a client names a
 * node as a broker (config resources of type BROKER / BROKER_LOGGER).
 *
 * The virtual cluster's brokers are the region's kstretch nodes. An API is
 * offered only when kstretch can answer it as that cluster would:
 *
 *   kind          the request                          the answer
 *   split         cut by each partition's real leader  merged in client order
 *   metadata      any broker                           the virtual cluster (virtual_metadata.h)
 *   cluster       any broker                           the virtual cluster's brokers and controller
 *   versions      any broker                           trimmed (kr_regional_api_offered)
 *   coordinator   the real coordinator of its key      as it came
 *   keys          cut by key (group or transactional   merged in client order (keysplit.h)
 *                 id), each part to its coordinator
 *   listing       every broker                         gathered: the keys this node is named for
 *   find          any broker                           the regional node the key hashes to
 *   configs       broker resources: the real broker    broker names back to the node
 *                 their node stands for; else any
 *   any           whole, to any broker                 as it came (names no broker)
 *   sasl          (regional SASL: its own section)
 *   trimmed       not offered: left out of ApiVersions; a request for it is
 *                 logged and the client closed, as a broker does with an
 *                 API it does not offer
 *
 * An API key this build does not know is trimmed: kstretch cannot tell
 * whether it names a broker.
 */
#ifndef KR_REGIONAL_API_H
#define KR_REGIONAL_API_H

#include <stdbool.h>
#include <stdint.h>

#include "topology.h"

enum kr_rapi {
	KR_RAPI_TRIMMED = 0,
	KR_RAPI_SPLIT,
	KR_RAPI_METADATA,
	KR_RAPI_CLUSTER,
	KR_RAPI_VERSIONS,
	KR_RAPI_COORDINATOR,
	KR_RAPI_FIND,
	KR_RAPI_CONFIGS,
	KR_RAPI_ANY,
	KR_RAPI_SASL,
	KR_RAPI_KEYS,
	KR_RAPI_LISTING,
};

/* What regional mode does with api key (any key: unknown ones are trimmed). */
enum kr_rapi kr_regional_api(int16_t key);

/* The kind's one-word name, as in the README's table ("split", "any", "trimmed", ...). */
const char *kr_regional_api_kind(enum kr_rapi kind);

/* Whether regional mode offers key in its ApiVersions answer. */
bool kr_regional_api_offered(int16_t key);

/*
 * The real broker virtual node `node` stands for: of the brokers in region
 * (all of them when none is, or region is NULL/""), ascending by id, the one
 * a jump consistent hash of the node id picks, so every kstretch node of the
 * region maps a node to the same broker and a broker joining or leaving moves
 * few nodes. -1 when the topology has no broker.
 */
int32_t kr_regional_stand_in(const struct kx_topology *t, const char *region, int32_t node);

#endif
