#include "placement.h"

#include <stdio.h>
#include <string.h>

static void kr_set(char *out, size_t outlen, const char *rack)
{
	if (outlen)
		snprintf(out, outlen, "%s", rack);
}

enum kr_rack_source kr_client_rack(const struct kr_placement *p, uint16_t local_port, const char *client_id,
                                   size_t client_id_len, const char *cert_rack, const struct sockaddr *peer,
                                   char *out, size_t outlen)
{
	kr_set(out, outlen, "");
	if (client_id && client_id_len && kr_rack_from_client_id(client_id, client_id_len, out, outlen))
		return KR_RACK_CLIENT_ID;
	if (cert_rack && cert_rack[0]) {
		kr_set(out, outlen, cert_rack);
		return KR_RACK_CERT;
	}
	for (size_t i = 0; local_port && i < p->listener_cnt; i++) {
		if (p->listeners[i].port == local_port && p->listeners[i].rack[0]) {
			kr_set(out, outlen, p->listeners[i].rack);
			return KR_RACK_LISTENER;
		}
	}
	const char *rack = peer ? kr_cidr_match(p->cidrs, p->cidr_cnt, peer) : NULL;
	if (rack && rack[0]) {
		kr_set(out, outlen, rack);
		return KR_RACK_CIDR;
	}
	if (p->rack && p->rack[0]) {
		kr_set(out, outlen, p->rack);
		return KR_RACK_PROXY;
	}
	return KR_RACK_UNKNOWN;
}

void kr_client_place(const struct kr_placement *p, uint16_t local_port, const char *client_id, size_t client_id_len,
                     const char *cert_rack, const struct sockaddr *peer, struct kr_client_place *out)
{
	out->source =
	    kr_client_rack(p, local_port, client_id, client_id_len, cert_rack, peer, out->rack, sizeof(out->rack));
	kr_region_of(p->regions, p->region_cnt, out->rack, out->region, sizeof(out->region));
}

const char *kr_rack_source_name(enum kr_rack_source s)
{
	switch (s) {
	case KR_RACK_CLIENT_ID: return "client.id";
	case KR_RACK_CERT: return "certificate";
	case KR_RACK_LISTENER: return "listener.rack";
	case KR_RACK_CIDR: return "rack.cidr";
	case KR_RACK_PROXY: return "rack";
	case KR_RACK_UNKNOWN: break;
	}
	return "unknown";
}

bool kr_rack_from_cert_value(const char *prefix, const char *value, size_t len, char *out, size_t outlen)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	if (len <= plen || (plen && memcmp(value, prefix, plen) != 0))
		return false;
	const char *rack = value + plen;
	size_t n = len - plen;
	if (n >= KR_NAME_MAX || n >= outlen)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = rack[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	memcpy(out, rack, n);
	out[n] = '\0';
	return true;
}
