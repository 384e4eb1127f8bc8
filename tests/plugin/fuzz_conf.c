// SPDX-License-Identifier: Apache-2.0
/* libFuzzer harness for the network config / prevResult parser. Built with
 * -DPODFENCE_FUZZ=ON it is a fuzzer; otherwise a small main() replays the
 * corpus so every ctest run exercises it. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "plugin/cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int cmd = 0; cmd < PF_CNI_VERSION; cmd++) {
		struct pf_err err = {0};
		struct pf_cni_conf *c = NULL;

		if (pf_cni_conf_parse((const char *)data, size, (enum pf_cni_cmd)cmd, &c, &err) < 0) {
			/* A failure always carries a code and a message. */
			if (!err.code || !err.msg[0])
				abort();
			continue;
		}
		if (c->prev_result) {
			for (int v = 0; v < PF_CNI_VER_MAX; v++)
				json_decref(pf_cni_result_convert(c->prev_result, (enum pf_cni_ver)v));
		}
		pf_cni_conf_free(c);
	}
	return 0;
}

#ifndef PODFENCE_FUZZ_ENGINE
int main(int argc, char **argv)
{
	int n = 0;

	for (int a = 1; a < argc; a++) {
		DIR *d = opendir(argv[a]);
		struct dirent *e;

		if (!d) {
			perror(argv[a]);
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096], *buf;
			FILE *f;
			long len;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[a], e->d_name);
			f = fopen(path, "rb");
			if (!f)
				continue;
			fseek(f, 0, SEEK_END);
			len = ftell(f);
			rewind(f);
			buf = malloc((size_t)len + 1);
			if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len)
				LLVMFuzzerTestOneInput((const uint8_t *)buf, (size_t)len);
			free(buf);
			fclose(f);
			n++;
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", n);
	return n > 0 ? 0 : 1;
}
#endif
