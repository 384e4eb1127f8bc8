/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_LOG_H
#define PODFENCE_LOG_H

/* Structured key=value logs on stderr, one line per event:
 *   ts=2026-11-28T18:00:00.123Z level=info msg="pod registered" pod=x/a
 * Library code may log; only main() decides the level and the sink. */
enum pf_log_level { PF_LOG_DEBUG, PF_LOG_INFO, PF_LOG_WARN, PF_LOG_ERROR, PF_LOG_LEVEL_MAX };

/* The process-wide threshold; set once by main(). */
void pf_log_set_level(enum pf_log_level level);
enum pf_log_level pf_log_get_level(void);
/* Parses "debug|info|warn|error". Returns 0 or -EINVAL. */
int pf_log_level_parse(const char *s, enum pf_log_level *ret);

/* fmt is the rest of the line after msg, e.g. pf_log(PF_LOG_INFO, "pod registered", "pod=%s", key).
 * msg is quoted; fields are the caller's key=value text (use pf_log_quote-safe values). */
void pf_log(enum pf_log_level level, const char *msg, const char *fields_fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pf_debug(msg, ...) pf_log(PF_LOG_DEBUG, msg, __VA_ARGS__)
#define pf_info(msg, ...) pf_log(PF_LOG_INFO, msg, __VA_ARGS__)
#define pf_warn(msg, ...) pf_log(PF_LOG_WARN, msg, __VA_ARGS__)
#define pf_error(msg, ...) pf_log(PF_LOG_ERROR, msg, __VA_ARGS__)

#endif
