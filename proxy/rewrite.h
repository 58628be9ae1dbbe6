/*
 * rewrite: the responses mapped mode must change, and how.
 *
 *   Metadata (all)            brokers -> kstretch listeners (prefix only; topics referenced)
 *   FindCoordinator (all)     the coordinator's (v0-3) / each coordinator's (v4+) address
 *   DescribeCluster (all)     brokers
 *   Produce v10+, Fetch v16+  NodeEndpoints (KIP-951), a top-level tagged field
 *   ApiVersions (all)         versions of the APIs above clamped to what the codec
 *                             decodes; ShareFetch/ShareAcknowledge (addresses the
 *                             codec cannot rewrite) removed, so clients never use them
 *
 * Node ids stay real: node N is advertised at advertised.host and N's listener
 * port. Every broker address seen on the way is reported, so the topology
 * learns new brokers (and they get listeners).
 */
#ifndef KX_REWRITE_H
#define KX_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "cursor.h"
#include "topology.h"
#include "writer.h"

#define KX_SEEN_MAX 1024

struct kx_rewriter {
	struct kp_writer out; /* the new frame body (without its size) */
	struct kp_arena arena;
	struct kp_cursor cur;               /* on failure: where and what */
	struct kx_broker seen[KX_SEEN_MAX]; /* brokers the response named */
	size_t seen_cnt;
	int addresses; /* addresses rewritten */
	bool changed;  /* out differs from the input */
};

/* Whether the response to (api, version) goes through kx_rewrite_response(). */
bool kx_rewrite_needed(int16_t api, int16_t version);

void kx_rewriter_init(struct kx_rewriter *rw);
void kx_rewriter_free(struct kx_rewriter *rw);

/*
 * Rewrites one response frame body (header + body, contiguous). On success
 * rw->out holds the new body; its reference segments point into `body`. On
 * failure rw->cur says where the input was malformed.
 */
bool kx_rewrite_response(struct kx_rewriter *rw, const struct kx_config *cfg, int16_t api, int16_t version,
                         const uint8_t *body, size_t len);

#endif
