/*
 * sni: broker names on one TLS port (listener.mode=sni).
 *
 * Every broker is advertised on kstretch's one port under a name of its own,
 * made from sni.host.pattern: $(nodeId) becomes the node id, $(rack) its rack
 * and $(region) its region ("unknown" when it has none; characters outside
 * [A-Za-z0-9-] become '-'). A client connecting for broker 3 sends that name
 * in its TLS ClientHello (SNI), and the name says where the connection goes:
 *
 *   pattern  broker-$(nodeId).$(region).kafka.example
 *   name     broker-3.us.kafka.example   ->  node 3
 *   any other name (kstretch's own)      ->  the bootstrap
 *
 * Names compare without regard to case (DNS). Pure functions: no sockets, no
 * globals, no allocation.
 */
#ifndef KR_SNI_H
#define KR_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether pattern is usable: $(nodeId) exactly once, other placeholders
 * known, the rest DNS name characters. why: one line when not. */
bool kr_sni_pattern_valid(const char *pattern, char *why, size_t whylen);

/* The name of node_id (rack, region: NULL or "" when unknown). False when it does not fit out. */
bool kr_sni_name(const char *pattern, int32_t node_id, const char *rack, const char *region, char *out,
                 size_t outlen);

/* Whether name is one the pattern makes, and for which node. */
bool kr_sni_node(const char *pattern, const char *name, int32_t *node_id);

#endif
