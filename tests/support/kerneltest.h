/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_TESTS_KERNELTEST_H
#define PODFENCE_TESTS_KERNELTEST_H

/* What every test against the kernel needs: throwaway network namespaces and
 * scratch directories named after the test binary, shell commands, and the
 * rule for a machine without namespaces (skip, but fail under CI=true).
 *
 * Every namespace is named "pf-<tag>-<main pid>-<pid>-<n>-<what>" and every
 * scratch directory "/tmp/pf-<tag>-<main pid>-...": the pid of the process
 * that made it (Check forks one per test) keeps names unique, the main pid
 * lets kt_sweep() find whatever a failed test left behind. Test code: an
 * allocation failure aborts. */

#include <stdbool.h>
#include <stddef.h>

/* Call first in main(), before any test is forked. */
void kt_init(const char *tag);
/* Removes every namespace (killing the processes left inside) and scratch
 * directory this test binary made, in any of its processes. */
void kt_sweep(void);

/* True when the environment says CI=true: missing privileges are a failure there. */
bool kt_ci(void);
/* 0 when namespaces can be made here; otherwise says so on stderr and
 * returns the exit status for main(): 77 (skip), or 1 under CI=true. */
int kt_require_netns(const char *suite);

/* Runs a shell command; returns its exit status, or -1. */
int kt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A command's stdout (malloc'd), or NULL when it cannot run or exits non-zero. */
char *kt_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A command's stdout (malloc'd) whatever its exit status: "" at worst, never NULL. */
char *kt_sh_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t kt_count_lines(const char *s);

/* A new namespace with this binary's prefix, its name into name. 0 or -1. */
int kt_ns_new(const char *what, char *name, size_t len);
/* Kills the processes inside, then deletes the namespace; quiet if it is gone. */
void kt_ns_del(const char *name);
/* An O_RDONLY descriptor on /run/netns/<name> for setns(), or -1. */
int kt_ns_fd(const char *name);
/* A new directory /tmp/<prefix>...-<what>, its path into path. 0 or -1. */
int kt_tmpdir_new(const char *what, char *path, size_t len);

#endif
