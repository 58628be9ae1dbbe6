#include "cost.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One side of a rule: a region name (no separator, no space, no control byte) or "*". */
static bool kx_cost_side(const char *s, size_t len, char *out, const char *which, const char *rule, char *why,
                         size_t whylen)
{
	if (len == 0 || len >= KX_COST_REGION_MAX) {
		snprintf(why, whylen, "rule '%s': the %s region is empty or longer than %d bytes", rule, which,
		         KX_COST_REGION_MAX - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f || c == '"' || c == '\\' || (c == '*' && len != 1)) {
			snprintf(why, whylen, "rule '%s': the %s region has a character a region name cannot have",
			         rule, which);
			return false;
		}
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

static bool kx_cost_rule_parse(struct kx_cost_rule *r, const char *rule, char *why, size_t whylen)
{
	const char *gt = strchr(rule, '>'), *colon = strrchr(rule, ':');
	if (!gt || !colon || colon < gt) {
		snprintf(why, whylen, "rule '%s' is not FROM>TO:PRICE (e.g. eu>us:0.02)", rule);
		return false;
	}
	if (!kx_cost_side(rule, (size_t)(gt - rule), r->from, "FROM", rule, why, whylen) ||
	    !kx_cost_side(gt + 1, (size_t)(colon - gt - 1), r->to, "TO", rule, why, whylen))
		return false;
	char *end = NULL;
	errno = 0;
	double v = strtod(colon + 1, &end);
	if (!colon[1] || *end || errno || !isfinite(v) || v < 0 || v > 1e6) {
		snprintf(why, whylen, "rule '%s': the price '%s' is not a number from 0 to 1000000 (per GB)", rule,
		         colon + 1);
		return false;
	}
	r->per_gb = v;
	return true;
}

bool kx_cost_parse(struct kx_cost_rules *r, const char *text, char *why, size_t whylen)
{
	struct kx_cost_rules tmp = {.cnt = 0};
	const char *p = text;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char rule[2 * KX_COST_REGION_MAX + 32];
		if (len == 0 || len >= sizeof(rule)) {
			snprintf(why, whylen, "an empty rule, or one longer than %zu bytes", sizeof(rule) - 1);
			return false;
		}
		if (tmp.cnt == KX_COST_RULES_MAX) {
			snprintf(why, whylen, "more than %d rules", KX_COST_RULES_MAX);
			return false;
		}
		memcpy(rule, p, len);
		rule[len] = '\0';
		if (!kx_cost_rule_parse(&tmp.rule[tmp.cnt], rule, why, whylen))
			return false;
		tmp.cnt++;
		p += len;
		if (*p == ',' && !*++p) {
			snprintf(why, whylen, "a trailing comma");
			return false;
		}
	}
	*r = tmp;
	return true;
}

static bool kx_cost_match(const char *side, const char *region)
{
	return strcmp(side, "*") == 0 || strcmp(side, region) == 0;
}

double kx_cost_price(const struct kx_cost_rules *r, const char *from, const char *to)
{
	if (!r || !from || !to || !from[0] || !to[0] || strcmp(from, to) == 0)
		return 0;
	for (int i = 0; i < r->cnt; i++)
		if (kx_cost_match(r->rule[i].from, from) && kx_cost_match(r->rule[i].to, to))
			return r->rule[i].per_gb;
	return 0;
}
