// SPDX-License-Identifier: Apache-2.0
/* pf_forwarding_* against a sysctl tree laid out in a temporary directory:
 * no root, and the host's own sysctls are never written. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "podfence/forwarding.h"

struct tree {
	char root[64];
};

static void put(const struct tree *t, const char *rel, const char *value)
{
	char path[512], cmd[600];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s/%s')\"", t->root, rel);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", value);
	fclose(f);
}

static int get(const struct tree *t, const char *rel)
{
	char path[512];
	int v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &v), 1);
	fclose(f);
	return v;
}

/* Dates a file back so that any later write shows in its mtime. */
static void age(const struct tree *t, const char *rel)
{
	struct timespec times[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

static bool untouched(const struct tree *t, const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mtim.tv_sec == 1000000;
}

/* A node as a fresh network namespace has it: everything off, accept_ra 1. */
static void tree_new(struct tree *t)
{
	static const char *const ifs[] = {"all", "default", "lo", "eth0", "wlan0", "pf0123456789ab"};
	char rel[128];

	snprintf(t->root, sizeof(t->root), "/tmp/pf-fwd-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->root));
	put(t, "ipv4/ip_forward", "0");
	for (size_t i = 0; i < sizeof(ifs) / sizeof(ifs[0]); i++) {
		snprintf(rel, sizeof(rel), "ipv6/conf/%s/forwarding", ifs[i]);
		put(t, rel, "0");
		snprintf(rel, sizeof(rel), "ipv6/conf/%s/accept_ra", ifs[i]);
		put(t, rel, strcmp(ifs[i], "wlan0") == 0 ? "0" : "1");
	}
}

static void tree_free(struct tree *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	ck_assert_int_eq(system(cmd), 0);
}

static bool is_pod_link(const char *ifname)
{
	return strncmp(ifname, "pf", 2) == 0;
}

START_TEST(test_get)
{
	struct tree t;
	char cmd[128];

	tree_new(&t);
	ck_assert_int_eq(pf_forwarding_get(t.root, 4), 0);
	ck_assert_int_eq(pf_forwarding_get(t.root, 6), 0);
	put(&t, "ipv4/ip_forward", "1");
	ck_assert_int_eq(pf_forwarding_get(t.root, 4), 1);
	ck_assert_int_eq(pf_forwarding_get(t.root, 5), -EAFNOSUPPORT);
	put(&t, "ipv4/ip_forward", "garbage");
	ck_assert_int_eq(pf_forwarding_get(t.root, 4), -EBADMSG);
	/* A kernel booted with ipv6.disable=1 has no ipv6 directory. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/ipv6'", t.root);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(pf_forwarding_get(t.root, 6), -EAFNOSUPPORT);
	tree_free(&t);
	/* The real one is readable (and only read). */
	ck_assert_int_ge(pf_forwarding_get(PF_SYSCTL_NET, 4), 0);
}
END_TEST

START_TEST(test_enable_v4)
{
	struct tree t;

	tree_new(&t);
	age(&t, "ipv6/conf/all/forwarding");
	age(&t, "ipv6/conf/eth0/accept_ra");
	ck_assert_int_eq(pf_forwarding_enable(t.root, 4, is_pod_link), 1);
	ck_assert_int_eq(get(&t, "ipv4/ip_forward"), 1);
	/* IPv4 leaves IPv6 alone. */
	ck_assert(untouched(&t, "ipv6/conf/all/forwarding"));
	ck_assert(untouched(&t, "ipv6/conf/eth0/accept_ra"));
	/* On already: read, not written (the ADD path stays cheap). */
	age(&t, "ipv4/ip_forward");
	ck_assert_int_eq(pf_forwarding_enable(t.root, 4, is_pod_link), 0);
	ck_assert(untouched(&t, "ipv4/ip_forward"));
	tree_free(&t);
}
END_TEST

START_TEST(test_enable_v6)
{
	struct tree t;

	tree_new(&t);
	age(&t, "ipv4/ip_forward");
	ck_assert_int_eq(pf_forwarding_enable(t.root, 6, is_pod_link), 1);
	ck_assert_int_eq(get(&t, "ipv6/conf/all/forwarding"), 1);
	/* The node's interface that took advertisements still does... */
	ck_assert_int_eq(get(&t, "ipv6/conf/eth0/accept_ra"), 2);
	/* ...one that did not still does not; lo, default, all and a pod's
	 * host end are not the node's uplinks. */
	ck_assert_int_eq(get(&t, "ipv6/conf/wlan0/accept_ra"), 0);
	ck_assert_int_eq(get(&t, "ipv6/conf/lo/accept_ra"), 1);
	ck_assert_int_eq(get(&t, "ipv6/conf/default/accept_ra"), 1);
	ck_assert_int_eq(get(&t, "ipv6/conf/all/accept_ra"), 1);
	ck_assert_int_eq(get(&t, "ipv6/conf/pf0123456789ab/accept_ra"), 1);
	ck_assert(untouched(&t, "ipv4/ip_forward"));

	/* Forwarding already on (an administrator's choice): nothing changes. */
	put(&t, "ipv6/conf/eth1/accept_ra", "1");
	age(&t, "ipv6/conf/eth1/accept_ra");
	age(&t, "ipv6/conf/all/forwarding");
	ck_assert_int_eq(pf_forwarding_enable(t.root, 6, is_pod_link), 0);
	ck_assert(untouched(&t, "ipv6/conf/eth1/accept_ra"));
	ck_assert(untouched(&t, "ipv6/conf/all/forwarding"));
	tree_free(&t);
}
END_TEST

START_TEST(test_enable_fails)
{
	struct tree t;
	char path[512];

	tree_new(&t);
	/* A forwarding entry that cannot be opened for writing (a directory
	 * stands in for a read-only sysctl; root ignores file modes). */
	snprintf(path, sizeof(path), "%s/ipv4/ip_forward", t.root);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_lt(pf_forwarding_enable(t.root, 4, NULL), 0);
	tree_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("forwarding");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	/* Check's 4 s default is short on a loaded 2-core machine (system("rm -rf")). */
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_enable_v4);
	tcase_add_test(tc, test_enable_v6);
	tcase_add_test(tc, test_enable_fails);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
