#include "metrics.h"

struct kx_metrics kx_metrics;

void kx_metrics_write(FILE *out)
{
#define KX_METRIC_PRINT(name, help)                                                                                    \
	fprintf(out, "# HELP kstretch_%s %s\n# TYPE kstretch_%s %s\nkstretch_%s %llu\n", #name, help, #name,           \
	        __builtin_strcmp(#name, "connections_active") == 0 ? "gauge" : "counter", #name,                       \
	        (unsigned long long)atomic_load_explicit(&kx_metrics.name, memory_order_relaxed));
	KX_METRICS(KX_METRIC_PRINT)
#undef KX_METRIC_PRINT
}
