/*
 * cost: cost.per.gb, the price of bytes that cross regions.
 *
 *   cost.per.gb=eu>us:0.02,us>eu:0.02,*>*:0.01
 *
 * A rule FROM>TO:PRICE prices bytes moving from region FROM to region TO
 * at PRICE per GB (10^9 bytes, in whatever currency the operator thinks
 * in); either side may be "*" (any region). The first rule that matches a
 * (from, to) pair prices it; a pair no rule matches costs nothing. Bytes
 * that stay in one region, or whose client or broker region is unknown,
 * are never priced. /metrics turns kstretch_region_bytes into
 * kstretch_cross_region_cost_total (requests: client region -> broker
 * region; answers: broker region -> client region) and the Fetch bytes
 * kstretch kept in the client's region into
 * kstretch_cross_region_cost_avoided_total (priced leader region -> client
 * region: what they would have cost from the leader).
 */
#ifndef KX_COST_H
#define KX_COST_H

#include <stdbool.h>
#include <stddef.h>

#define KX_COST_RULES_MAX  32
#define KX_COST_REGION_MAX 64

struct kx_cost_rule {
	char from[KX_COST_REGION_MAX], to[KX_COST_REGION_MAX]; /* a region, or "*" */
	double per_gb;
};

struct kx_cost_rules {
	struct kx_cost_rule rule[KX_COST_RULES_MAX];
	int cnt;
};

/* Parses "FROM>TO:PRICE[,...]" ("" = no rules) into r; false with why filled (r then unchanged). */
bool kx_cost_parse(struct kx_cost_rules *r, const char *text, char *why, size_t whylen);

/* The price per GB of bytes moving from region `from` to region `to`: 0 within one region or with no match. */
double kx_cost_price(const struct kx_cost_rules *r, const char *from, const char *to);

#endif
