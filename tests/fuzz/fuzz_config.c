/*
 * libFuzzer target: the .properties reader and every value parser behind it.
 * Whatever the bytes, loading must end in success or one error line, never a
 * crash, a hang or a read out of bounds; a loaded configuration must print.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kx_config cfg;
	struct kx_config_error err;

	kx_config_defaults(&cfg);
	if (kx_config_load_buffer(&cfg, "fuzz", (const char *)data, size, &err)) {
		FILE *out = fopen("/dev/null", "w");
		(void)kx_config_validate(&cfg, &err);
		if (out) {
			kx_config_print(&cfg, out);
			fclose(out);
		}
	} else if (strchr(err.msg, '\n')) {
		__builtin_trap(); /* an error must stay on one line */
	}
	return 0;
}
