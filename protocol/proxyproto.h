/*
 * proxyproto: the PROXY protocol header (HAProxy's, versions 1 and 2) that an
 * L4 load balancer sends first on a connection to say whose it is. Parsed
 * from the bytes at the front of a connection; nothing is allocated.
 *
 *   v1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" (or TCP6, or "PROXY UNKNOWN...\r\n"),
 *       at most 107 bytes
 *   v2: 12-byte signature, version/command byte (0x21 PROXY, 0x20 LOCAL),
 *       family/transport byte (0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00
 *       unspecified), big-endian length of what follows, then the addresses
 *       (IPv4: src, dst, sport, dport in 12 bytes; IPv6: 36 bytes) and TLVs
 *       (skipped)
 */
#ifndef KP_PROXYPROTO_H
#define KP_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum kp_proxy_version {
	KP_PROXY_V1 = 1,
	KP_PROXY_V2 = 2,
};

enum kp_proxy_status {
	KP_PROXY_OK,         /* a whole header: *consumed bytes, the source in *src (or none) */
	KP_PROXY_INCOMPLETE, /* a valid start: wait for more bytes */
	KP_PROXY_MALFORMED,  /* not a header of that version: *why says what */
};

/* A v2 header with its TLVs is at most this long (16 + 65535): what a
 * caller may have to buffer; v1 is at most 107 bytes. */
#define KP_PROXY_V2_MAX (16 + 65535)
#define KP_PROXY_V1_MAX 107

/*
 * Parses the header of `version` at p[0..len). On KP_PROXY_INCOMPLETE,
 * *consumed is the length the whole header needs once it is known (v2,
 * from its first 16 bytes), else 0. On KP_PROXY_OK, *has_src
 * says whether it named a source (false for v1 UNKNOWN, v2 LOCAL or an
 * unspecified family: keep the connection's own address) and *src / *srclen
 * hold it.
 */
enum kp_proxy_status kp_proxy_parse(enum kp_proxy_version version, const uint8_t *p, size_t len, size_t *consumed,
                                    bool *has_src, struct sockaddr_storage *src, socklen_t *srclen,
                                    const char **why);

#endif
