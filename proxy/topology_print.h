/*
 * topology_print: the topology as kstretch --print-topology shows it.
 */
#ifndef KX_TOPOLOGY_PRINT_H
#define KX_TOPOLOGY_PRINT_H

#include <stdio.h>

#include "config.h"
#include "topology.h"

/*
 * Writes what kstretch knows, for people (kstretch --print-topology): the
 * brokers with rack, region, address and kstretch listener; the listeners
 * with the rack of their clients (listener.rack.<port>); the client placement
 * rules in their order; the regions; and a line per known topic with its
 * leaders per region and how many of its partitions have an in-sync replica
 * in each region. t may be NULL (nothing known yet).
 */
void kx_topology_print(const struct kx_topology *t, const struct kx_config *cfg, FILE *out);

#endif
