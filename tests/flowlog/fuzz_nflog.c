// SPDX-License-Identifier: Apache-2.0
/* Fuzz harness for the NFLOG message parser (controller/flowlog/packet.c):
 * the input is one netlink message as the kernel would deliver it; the
 * payload's IPv4/IPv6 and transport headers are parsed too, and the prefix
 * through the attribution key parser. Built as a libFuzzer target with
 * -DPODFENCE_FUZZ=ON (clang), otherwise as a replay of the seed corpus. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flowlog/flowlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_flow_pkt p = { 0 };
	/* netlink messages are 4-byte aligned in the receive buffer */
	uint8_t *copy = malloc(size ? size : 1);
	enum pf_flow_verdict v;
	uint32_t ch, rh;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (pf_flow_parse_nflog(copy, size, &p) == 0) {
		if (strlen(p.prefix) >= sizeof(p.prefix))
			abort();
		(void)pf_flow_prefix_parse(p.prefix, &v, &ch, &rh);
	}
	(void)pf_flow_parse_l3(copy, size, &p);
	free(copy);
	return 0;
}
#ifndef PF_FUZZ_LIBFUZZER
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *b = realloc(buf, cap = cap ? cap * 2 : 4096);

			if (!b) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = b;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *de;

		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0)
				return 1;
			files++;
			continue;
		}
		d = opendir(argv[i]);
		if (!d)
			return 1;
		while ((de = readdir(d))) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (run_file(path) < 0) {
				closedir(d);
				return 1;
			}
			files++;
		}
		closedir(d);
	}
	printf("ran %d inputs\n", files);
	/* An empty corpus would make this test pass vacuously. */
	return files > 0 ? 0 : 1;
}
#endif
