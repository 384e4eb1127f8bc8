// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "podfence/log.h"

/* The one piece of process-wide state in the library: the log threshold is
 * read-mostly and set once by main() before any thread or loop starts. */
static enum pf_log_level threshold = PF_LOG_INFO;

static const char *const level_names[PF_LOG_LEVEL_MAX] = {"debug", "info", "warn", "error"};

void pf_log_set_level(enum pf_log_level level)
{
	threshold = level;
}

enum pf_log_level pf_log_get_level(void)
{
	return threshold;
}

int pf_log_level_parse(const char *s, enum pf_log_level *ret)
{
	for (int i = 0; i < PF_LOG_LEVEL_MAX; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*ret = (enum pf_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void pf_log(enum pf_log_level level, const char *msg, const char *fields_fmt, ...)
{
	char line[4096], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (level < threshold || level >= PF_LOG_LEVEL_MAX)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s msg=\"%s\"", ts, now.tv_nsec / 1000000,
		     level_names[level], msg);
	if (n > 0 && (size_t)n < sizeof(line) && fields_fmt && *fields_fmt) {
		line[n++] = ' ';
		va_start(ap, fields_fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fields_fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "%s\n", line);
}
