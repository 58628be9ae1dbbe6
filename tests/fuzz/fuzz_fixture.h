/*
 * What the proxy fuzz targets (rewrite, fetch_scan, inject) share: a fixed
 * configuration and a small cluster, as a test would set them up.
 *
 *   brokers  1 eu-a   2 us-a   3 ap-a   4 us-b      (region = rack before '-')
 *   topic    "orders", id FUZZ_TOPIC_ID, partitions 0-7, leader 1,
 *            in sync {1, 2, 4} (even) or {1, 3} (odd)
 *   client   rack us-a, region us, on the connection to node 1
 *
 * fuzz_fixture_reset() publishes it again (a rewrite may have merged what a
 * response named) and empties the steer table, so that every input runs
 * from the same state and a crash reproduces from its input alone.
 */
#ifndef FUZZ_FIXTURE_H
#define FUZZ_FIXTURE_H

#include "config.h"
#include "rewrite.h"
#include "steer.h"
#include "topology.h"

extern const uint8_t fuzz_topic_id[16];

struct fuzz_fixture {
	struct kx_config cfg;
	struct kx_rewriter rw;
	struct kr_steer_table steer;
	struct kx_topology *topology; /* referenced for the view */
	struct kx_client_view view;
};

/* Sets f up the first time, resets it after; aborts when the fixture cannot be built. */
void fuzz_fixture_reset(struct fuzz_fixture *f);

#endif
