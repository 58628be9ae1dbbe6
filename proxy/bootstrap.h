/*
 * bootstrap: the first look at the cluster. Before any listener opens,
 * kstretch asks a bootstrap server for its API versions and then for
 * Metadata (no topics: only the brokers), retrying every server with
 * backoff and logging each failure, until it has brokers or is told to stop.
 */
#ifndef KX_BOOTSTRAP_H
#define KX_BOOTSTRAP_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "topology.h"

/* Returns a topology, or NULL when *stop became non-zero first. */
struct kx_topology *kx_bootstrap_topology(const struct kx_config *cfg, volatile sig_atomic_t *stop);

/* One Metadata request to each bootstrap server in turn until one answers
 * (no retry, no backoff: the readiness check's probe, admin.c). True with
 * the number of brokers it named; false with the last failure in err. */
bool kx_bootstrap_probe(const struct kx_config *cfg, size_t *brokers, char *err, size_t errlen);

/* The Metadata version the last successful bootstrap spoke (the newest the
 * broker and the codec share); -1 before one. Any thread may read it. */
int kx_bootstrap_metadata_version(void);

#endif
