/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_TEST_DAEMON_UTIL_H
#define PODFENCE_TEST_DAEMON_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh temporary directory; the caller removes it with rm_rf. */
static inline char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/pf-daemon-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	return d ? strdup(d) : NULL;
}

static inline void rm_rf(char *dir)
{
	char cmd[512];

	if (!dir)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
	free(dir);
}

static inline void write_file(const char *dir, const char *name, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

#endif
