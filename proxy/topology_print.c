/*
 * topology_print: kstretch --print-topology, what the topology knows laid out
 * for a terminal. Presentation only: it reads a snapshot and the
 * configuration, and decides nothing.
 */
#include "topology_print.h"

#include <arpa/inet.h>
#include <string.h>

#include "placement.h"

/* Regions in the order their first broker appears (node id order). */
static size_t kx_regions(const struct kx_topology *t, const char **regions, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; t && i < t->broker_cnt; i++) {
		const char *r = t->brokers[i].region;
		size_t k = 0;
		while (k < n && strcmp(regions[k], r) != 0)
			k++;
		if (k == n && n < max)
			regions[n++] = r;
	}
	return n;
}

static const char *kx_node_region(const struct kx_topology *t, int32_t node)
{
	const struct kx_broker *b = kx_topology_broker(t, node);
	return b ? b->region : "";
}

static void kx_print_hostport(FILE *out, const char *host, unsigned port, int width)
{
	char buf[KX_HOST_MAX + 16];
	snprintf(buf, sizeof(buf), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	fprintf(out, "%-*s", width, buf);
}

static const char *kx_listener_rack(const struct kx_config *cfg, uint16_t port)
{
	for (size_t i = 0; i < cfg->listener_rack_cnt; i++)
		if (cfg->listener_racks[i].port == port)
			return cfg->listener_racks[i].rack;
	return NULL;
}

void kx_topology_print(const struct kx_topology *t, const struct kx_config *cfg, FILE *out)
{
	const char *adv = kx_config_advertised_host(cfg);
	const char *regions[64];
	size_t nreg = kx_regions(t, regions, 64);

	fprintf(out, "brokers: %zu\n", t ? t->broker_cnt : 0);
	if (t && t->broker_cnt)
		fprintf(out, "  %-6s %-16s %-16s %-28s %s\n", "node", "rack", "region", "broker", "kstretch listener");
	for (size_t i = 0; t && i < t->broker_cnt; i++) {
		const struct kx_broker *b = &t->brokers[i];
		fprintf(out, "  %-6d %-16s %-16s ", b->node_id, b->rack[0] ? b->rack : "-",
		        b->region[0] ? b->region : "-");
		kx_print_hostport(out, b->host, b->port, 28);
		if (b->listen_port) {
			fputc(' ', out);
			kx_print_hostport(out, adv, b->listen_port, 0);
		} else {
			fputs(" (none: broker.port.base + id > 65535)", out);
		}
		fputc('\n', out);
	}

	fputs("listeners:\n", out);
	const char *lr = kx_listener_rack(cfg, cfg->listen.port);
	fputs("  ", out);
	kx_print_hostport(out, cfg->listen.host, cfg->listen.port, 28);
	fprintf(out, " bootstrap%s%s\n", lr ? ", clients in rack " : "", lr ? lr : "");
	for (size_t i = 0; t && i < t->broker_cnt; i++) {
		const struct kx_broker *b = &t->brokers[i];
		if (!b->listen_port)
			continue;
		lr = kx_listener_rack(cfg, b->listen_port);
		fputs("  ", out);
		kx_print_hostport(out, cfg->listen.host, b->listen_port, 28);
		fprintf(out, " node %d%s%s\n", b->node_id, lr ? ", clients in rack " : "", lr ? lr : "");
	}

	fputs("client placement (first match wins):\n"
	      "  1. client.id hint: kstretch_rack=, ws_az=, warpstream_az=, automq_az=, zone=, diskless_az=\n"
	      "  2. listener.rack.<port>:",
	      out);
	for (size_t i = 0; i < cfg->listener_rack_cnt; i++)
		fprintf(out, "%s%u=%s", i ? "," : " ", cfg->listener_racks[i].port, cfg->listener_racks[i].rack);
	fputs(cfg->listener_rack_cnt ? "\n" : " (none)\n", out);
	fprintf(out, "  3. rack.cidr: %s", cfg->rack_cidr_cnt ? "" : "(none)");
	for (size_t i = 0; i < cfg->rack_cidr_cnt; i++) {
		const struct kr_cidr_rule *r = &cfg->rack_cidrs[i];
		char addr[64] = "?";
		inet_ntop(r->family, r->addr, addr, sizeof(addr));
		fprintf(out, "%s%s/%d=%s", i ? "," : "", addr, r->prefix, r->rack);
	}
	if (cfg->rack[0]) {
		char region[KX_NAME_MAX];
		kr_region_of(cfg->region_rules, cfg->region_rule_cnt, cfg->rack, region, sizeof(region));
		fprintf(out, "\n  4. rack: %s (region %s)\n", cfg->rack, region);
	} else {
		fputs("\n  4. rack: (none)\n", out);
	}
	fputs("  else unknown: plain mapped mode for that client\n", out);
	fprintf(out, "fetch.rack.inject=%s fetch.prefer.local=%s fetch.prefer.local.backoff.ms=%d\n",
	        cfg->fetch_rack_inject ? "true" : "false", cfg->fetch_prefer_local ? "true" : "false",
	        cfg->fetch_prefer_local_backoff_ms);

	fprintf(out, "regions: %zu%s\n", nreg, cfg->region_rule_cnt ? " (region.map)" : " (zone stripped from racks)");
	for (size_t r = 0; r < nreg; r++) {
		fprintf(out, "  %s: nodes", regions[r][0] ? regions[r] : "(no rack)");
		for (size_t i = 0, k = 0; i < t->broker_cnt; i++)
			if (strcmp(t->brokers[i].region, regions[r]) == 0)
				fprintf(out, "%s%d", k++ ? "," : " ", t->brokers[i].node_id);
		fputc('\n', out);
	}

	fprintf(out, "topics: %zu%s\n", t ? t->topic_cnt : 0,
	        t && t->topic_cnt ? "" : " (learned from the Metadata responses of clients that need them)");
	for (size_t i = 0; t && i < t->topic_cnt; i++) {
		const struct kx_topic *tp = t->topics[i];
		fprintf(out, "  %s: %zu partitions; leaders", tp->name[0] ? tp->name : "(unnamed)", tp->partition_cnt);
		for (size_t r = 0; r < nreg; r++) {
			size_t leaders = 0;
			for (size_t p = 0; p < tp->partition_cnt; p++)
				leaders += strcmp(kx_node_region(t, tp->partitions[p].leader), regions[r]) == 0;
			fprintf(out, " %s %zu", regions[r][0] ? regions[r] : "(no rack)", leaders);
		}
		fputs("; an in-sync replica in", out);
		for (size_t r = 0; r < nreg; r++) {
			size_t with = 0;
			for (size_t p = 0; p < tp->partition_cnt; p++) {
				const struct kx_partition *pp = &tp->partitions[p];
				bool found = false;
				for (size_t k = 0; k < pp->isr_cnt && !found; k++)
					found = strcmp(kx_node_region(t, pp->isr[k]), regions[r]) == 0;
				with += found;
			}
			fprintf(out, " %s %zu", regions[r][0] ? regions[r] : "(no rack)", with);
		}
		fputc('\n', out);
	}
}
