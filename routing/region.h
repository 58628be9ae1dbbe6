/*
 * region: which region a rack is in, and which rack a client is in.
 *
 * Regions come from racks: `region.map` rules (ordered RACK_GLOB=REGION,
 * first match wins), else the default rule, which strips the zone from the
 * rack name:
 *
 *   us-east-1a -> us-east-1     (AWS-style: a zone letter after a digit)
 *   eu-a       -> eu            (a "-<letter>" suffix)
 *   europe-west4-b -> europe-west4
 *   dc1        -> dc1           (nothing to strip: the rack is its own region)
 *
 * A client's rack (client.id hint, listener.rack.<port>, rack.cidr, rack,
 * first match wins) is decided in placement.h, from the pieces below.
 */
#ifndef KR_REGION_H
#define KR_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KR_NAME_MAX 64

struct kr_region_rule {
	char pattern[KR_NAME_MAX]; /* glob over rack names; `*` matches any run */
	char region[KR_NAME_MAX];
};

struct kr_cidr_rule {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;
	char rack[KR_NAME_MAX];
};

/* Whether s matches the glob pattern (only `*` is special). */
bool kr_glob(const char *pattern, const char *s);

/* Region of a rack into out ("" when rack is ""). */
void kr_region_of(const struct kr_region_rule *rules, size_t n, const char *rack, char *out, size_t len);

/*
 * The rack a client.id names (kstretch_rack=... and the other conventions),
 * into out. client_id need not be NUL-terminated. False when none.
 */
bool kr_rack_from_client_id(const char *client_id, size_t len, char *out, size_t outlen);

/* Parses "10.1.0.0/16" or "fd00::/8"; false on a bad address or prefix. */
bool kr_cidr_parse(const char *text, size_t len, struct kr_cidr_rule *rule);

/* The rack of the first rule whose network holds sa, or NULL. */
const char *kr_cidr_match(const struct kr_cidr_rule *rules, size_t n, const struct sockaddr *sa);

#endif
