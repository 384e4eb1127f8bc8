/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_ERR_H
#define PODFENCE_ERR_H

/* The one way a function explains a failure in words. A function that can
 * say more than its -errno takes `struct pf_err *err` as its LAST parameter
 * (after the ret_* out-parameters), may be passed NULL, and writes it only
 * when it fails. The caller owns the struct (usually on its stack); nothing
 * in it is allocated. */
struct pf_err {
	int code;          /* the -errno returned; in the CNI plugin, the CNI error code */
	char msg[1024];    /* one line, no trailing newline */
	char details[1024]; /* optional longer text (the CNI error's "details") */
};

/* Sets code and msg (details cleared) unless e is NULL; returns code, so a
 * failing function can `return pf_err_set(err, -EINVAL, "...", ...);`. */
int pf_err_set(struct pf_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets details unless e is NULL; returns e's code (0 for NULL). */
int pf_err_details(struct pf_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
