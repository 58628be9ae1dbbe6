#include "sni.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define KR_SNI_NODE   "$(nodeId)"
#define KR_SNI_RACK   "$(rack)"
#define KR_SNI_REGION "$(region)"

enum kr_sni_part { KR_SNI_LITERAL, KR_SNI_NODE_ID, KR_SNI_LABEL };

/* The placeholder at p (and its length), or KR_SNI_LITERAL. */
static enum kr_sni_part kr_sni_at(const char *p, size_t *len)
{
	static const struct {
		const char *text;
		enum kr_sni_part part;
	} known[] = {{KR_SNI_NODE, KR_SNI_NODE_ID}, {KR_SNI_RACK, KR_SNI_LABEL}, {KR_SNI_REGION, KR_SNI_LABEL}};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t n = strlen(known[i].text);
		if (strncmp(p, known[i].text, n) == 0) {
			*len = n;
			return known[i].part;
		}
	}
	*len = 1;
	return KR_SNI_LITERAL;
}

static bool kr_dns_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.';
}

bool kr_sni_pattern_valid(const char *pattern, char *why, size_t whylen)
{
	int nodes = 0;
	if (!pattern[0]) {
		snprintf(why, whylen, "empty: it needs %s (e.g. broker-%s.kafka.example)", KR_SNI_NODE, KR_SNI_NODE);
		return false;
	}
	for (const char *p = pattern; *p;) {
		size_t n;
		enum kr_sni_part part = kr_sni_at(p, &n);
		if (part == KR_SNI_NODE_ID)
			nodes++;
		else if (part == KR_SNI_LITERAL && *p == '$') {
			snprintf(why, whylen, "unknown placeholder at '%.16s' (%s, %s and %s are known)", p, KR_SNI_NODE,
			         KR_SNI_RACK, KR_SNI_REGION);
			return false;
		} else if (part == KR_SNI_LITERAL && !kr_dns_char(*p)) {
			snprintf(why, whylen, "'%c' is not a DNS name character", *p);
			return false;
		}
		p += n;
	}
	if (nodes != 1) {
		snprintf(why, whylen, "%s must appear exactly once (it appears %d times)", KR_SNI_NODE, nodes);
		return false;
	}
	return true;
}

/* Appends s to out at *at, with characters outside [A-Za-z0-9-] as '-'. */
static bool kr_sni_put(char *out, size_t outlen, size_t *at, const char *s, bool label)
{
	for (; *s; s++) {
		if (*at + 1 >= outlen)
			return false;
		char c = *s;
		if (label && !(isalnum((unsigned char)c) || c == '-'))
			c = '-';
		out[(*at)++] = c;
	}
	out[*at] = '\0';
	return true;
}

bool kr_sni_name(const char *pattern, int32_t node_id, const char *rack, const char *region, char *out,
                 size_t outlen)
{
	size_t at = 0;
	if (!outlen)
		return false;
	out[0] = '\0';
	for (const char *p = pattern; *p;) {
		size_t n;
		enum kr_sni_part part = kr_sni_at(p, &n);
		char num[16], lit[2] = {*p, '\0'};
		bool ok;
		if (part == KR_SNI_NODE_ID) {
			snprintf(num, sizeof(num), "%d", (int)node_id);
			ok = kr_sni_put(out, outlen, &at, num, false);
		} else if (part == KR_SNI_LABEL) {
			const char *v = p[2] == 'r' && p[3] == 'a' ? rack : region;
			ok = kr_sni_put(out, outlen, &at, v && v[0] ? v : "unknown", true);
		} else {
			ok = kr_sni_put(out, outlen, &at, lit, false);
		}
		if (!ok)
			return false;
		p += n;
	}
	return true;
}

/* Matches name (from s) against the pattern (from p); a label placeholder
 * takes one or more [A-Za-z0-9-] characters (backtracking over how many). */
static bool kr_sni_match(const char *p, const char *s, int64_t *node, int depth)
{
	if (depth > 8)
		return false; /* at most a few placeholders: bounded */
	while (*p) {
		size_t n;
		enum kr_sni_part part = kr_sni_at(p, &n);
		if (part == KR_SNI_LITERAL) {
			if (tolower((unsigned char)*p) != tolower((unsigned char)*s))
				return false;
			p++, s++;
			continue;
		}
		if (part == KR_SNI_NODE_ID) {
			int64_t v = 0;
			size_t d = 0;
			while (d < 10 && isdigit((unsigned char)s[d]))
				v = v * 10 + (s[d++] - '0');
			if (!d || isdigit((unsigned char)s[d]) || v > INT32_MAX || (d > 1 && s[0] == '0'))
				return false;
			*node = v;
			p += n, s += d;
			continue;
		}
		size_t most = 0;
		while (isalnum((unsigned char)s[most]) || s[most] == '-')
			most++;
		for (size_t take = most; take >= 1; take--)
			if (kr_sni_match(p + n, s + take, node, depth + 1))
				return true;
		return false;
	}
	return *s == '\0';
}

bool kr_sni_node(const char *pattern, const char *name, int32_t *node_id)
{
	int64_t node = -1;
	if (!kr_sni_match(pattern, name, &node, 0) || node < 0)
		return false;
	*node_id = (int32_t)node;
	return true;
}
