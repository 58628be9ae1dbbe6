/*
 * apiplan: what kstretch does with each Kafka API, by version. One table,
 * read by the session for every frame; the wire work each entry calls for
 * (the walks, the rewrites) is protocol/'s and rewrite.c's.
 *
 *   API                request                        response
 *   ApiVersions        pass                           take whole, rewrite (versions clamped)
 *   Metadata           pass                           take whole, rewrite (broker addresses)
 *   FindCoordinator    pass                           take whole, rewrite
 *   DescribeCluster    pass                           take whole, rewrite
 *   Produce v10+       pass (acks read by peek)       scan in place: rewritten only when it has
 *                                                     top-level tagged fields (NodeEndpoints)
 *   Fetch v11+         take whole to set an empty     scan in place (*): partitions to steer
 *                      RackId (fetch.rack.inject,     (fetch.prefer.local, v11+) or tagged
 *                      the client's rack known)       fields (v16+); rewritten only then
 *   any other          pass                           pass
 *
 *   (*) Fetch v11-15 only when the connection may steer; v16+ always, unless
 *       fetch.cut.through sends v16-18 as v15 (below), which passes.
 *
 * Fetch v16-18 requests may go to the broker as v15 (fetch.cut.through): the
 * same request (v17-18 only add tagged fields a consumer does not set), and
 * an answer that is v16's but for the NodeEndpoints tag (KIP-951), so it
 * moves as it arrives instead of waiting whole to have those rewritten.
 *
 * "Pass" moves frames as they arrive (cut through, spliced when large);
 * "take whole" waits for the last byte; "scan in place" walks the buffered
 * frame without copying it and takes it whole only when it must change.
 */
#ifndef KR_APIPLAN_H
#define KR_APIPLAN_H

#include <stdbool.h>
#include <stdint.h>

struct kr_api_plan {
	int16_t api_key;
	int16_t rewrite_from;  /* responses name brokers from this version: rewritten (-1: never) */
	bool scan;             /* ... in top-level tagged fields only: scanned in place first */
	int16_t steer_from;    /* fetch.prefer.local may steer its responses from this version (-1: never) */
	int16_t set_rack_from; /* fetch.rack.inject sets its requests' RackId from this version (-1: never) */
	/* Versions (forward_as, forward_up_to] may go to the broker as forward_as
	 * (-1: never): their requests read the same at it (they only add tagged
	 * fields) and their responses differ from it only in what kstretch
	 * would have to hold whole to rewrite (Fetch v16+: NodeEndpoints). */
	int16_t forward_as, forward_up_to;
};

enum kr_request_plan {
	KR_REQUEST_PASS,     /* forwarded as it arrives */
	KR_REQUEST_SET_RACK, /* taken whole; an empty RackId gets the client's rack */
};

enum kr_response_plan {
	KR_RESPONSE_PASS,    /* forwarded as it arrives */
	KR_RESPONSE_REWRITE, /* taken whole and rewritten */
	KR_RESPONSE_SCAN,    /* walked in place; taken whole and rewritten only when it must change */
};

/* The table's entry for api_key; NULL: an API kstretch passes both ways. */
const struct kr_api_plan *kr_api_plan(int16_t api_key);

/* Whether what kstretch does with api_key depends on the client's place
 * (rack, region): the session then looks at its client view. */
bool kr_api_plan_per_client(int16_t api_key);

/* A request; may_set_rack: fetch.rack.inject is on and the client's rack known. */
enum kr_request_plan kr_request_plan(int16_t api_key, int16_t version, bool may_set_rack);

/* A response to (api_key, version); may_steer: this connection's Fetch
 * responses may be steered (fetch.prefer.local, see kx_steer_wanted). */
enum kr_response_plan kr_response_plan(int16_t api_key, int16_t version, bool may_steer);

/* The version a request of (api_key, version) goes to the broker as:
 * version itself, or a lower one that reads the same (kr_api_plan's
 * forward_as) when cut_through (fetch.cut.through) allows. */
int16_t kr_request_forward_version(int16_t api_key, int16_t version, bool cut_through);

/* Whether responses of (api_key, version) may be steered at all. */
bool kr_api_steers(int16_t api_key, int16_t version);

#endif
