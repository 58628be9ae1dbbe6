/*
 * placement: where a client is — the rack (and so the region) kstretch acts
 * for when it injects a Fetch RackId, steers a consumer to a local replica,
 * or lists local brokers first.
 *
 * A client's rack, first match wins:
 *
 *   1. client.id hint        the client names its own rack in its client.id:
 *                            kstretch_rack=eu-a, or another system's
 *                            convention (ws_az=, warpstream_az=, automq_az=,
 *                            zone=, diskless_az=; kstretch_rack= wins over them)
 *   2. certificate           an attribute of the client's TLS certificate
 *                            (tls.client.rack.from, e.g. OU=rack-eu-a with
 *                            tls.client.rack.prefix=rack-): kx_cert_rack
 *                            reads it, kr_rack_from_cert_value judges it
 *   3. listener.rack.<port>  the kstretch port the client connected to
 *   4. rack.cidr             the first CIDR=RACK rule holding the client's
 *                            source address (IPv4, IPv6; ::ffff:a.b.c.d is IPv4)
 *   5. rack                  kstretch's own rack (a sidecar's: its clients
 *                            run where it runs)
 *   6. unknown ("")          no rack: kstretch behaves for this client exactly
 *                            like plain mapped mode (no injection, no steering,
 *                            broker order untouched)
 *
 * Why this order: the most specific fact wins. A client that names its zone
 * knows where it runs (and a client.id is per application, so one kstretch
 * can serve clients of several zones); a listener port or a source network is
 * a per-connection fact the operator wrote down; kstretch's own rack is a
 * default for everything that connects to it.
 *
 * The region of a rack comes from region.map (region.h).
 *
 * Everything here is a pure function of its arguments: no sockets, no
 * globals, no allocation.
 */
#ifndef KR_PLACEMENT_H
#define KR_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "region.h"

/* listener.rack.<port>=<rack>: clients that connect to port are in rack. */
struct kr_listener_rack {
	uint16_t port;
	char rack[KR_NAME_MAX];
};

/* The placement rules, as configured (pointers into the configuration). */
struct kr_placement {
	const char *rack; /* kstretch's own; NULL or "": none */
	const struct kr_listener_rack *listeners;
	size_t listener_cnt;
	const struct kr_cidr_rule *cidrs;
	size_t cidr_cnt;
	const struct kr_region_rule *regions; /* region.map */
	size_t region_cnt;
};

/* Which rule placed a client (for logs and --print-topology). */
enum kr_rack_source {
	KR_RACK_UNKNOWN = 0,
	KR_RACK_CLIENT_ID,
	KR_RACK_CERT,
	KR_RACK_LISTENER,
	KR_RACK_CIDR,
	KR_RACK_PROXY,
};

/* Where a client is. */
struct kr_client_place {
	char rack[KR_NAME_MAX];   /* "" = unknown */
	char region[KR_NAME_MAX]; /* region of rack; "" = unknown */
	enum kr_rack_source source;
};

/*
 * The rack of a client, by the rules above, into out (always written; ""
 * when unknown). local_port: the kstretch port the client connected to (0:
 * not known). client_id/len: the client.id of its requests (need not be
 * NUL-terminated; NULL or len 0: none). peer: its source address (NULL: not
 * known). Returns the rule that matched.
 */
enum kr_rack_source kr_client_rack(const struct kr_placement *p, uint16_t local_port, const char *client_id,
                                   size_t client_id_len, const char *cert_rack, const struct sockaddr *peer,
                                   char *out, size_t outlen);

/* kr_client_rack(), and the region of the rack (region.map, else the default rule). */
void kr_client_place(const struct kr_placement *p, uint16_t local_port, const char *client_id, size_t client_id_len,
                     const char *cert_rack, const struct sockaddr *peer, struct kr_client_place *out);

/*
 * Whether one value of a client certificate's attribute names a rack: it
 * starts with prefix ("" matches every value) and the rest is a rack name
 * (1..KR_NAME_MAX-1 characters of [A-Za-z0-9._-]); that rest goes to out.
 */
bool kr_rack_from_cert_value(const char *prefix, const char *value, size_t len, char *out, size_t outlen);

/* "client.id", "certificate", "listener.rack", "rack.cidr", "rack" or "unknown". */
const char *kr_rack_source_name(enum kr_rack_source s);

#endif
