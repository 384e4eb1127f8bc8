// SPDX-License-Identifier: Apache-2.0
/* The dataplane against a real kernel, each test in its own throwaway
 * network namespace: golden plans compared with the kernel's own view
 * (`nft -j list table`, parsed) and with pf_nft_read; a second sync sends
 * nothing; adoption, incremental apply, chunked cold start; kernel errors in
 * the middle of a batch leave the previous state and name the object. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <linux/netfilter/nf_tables.h>

#include "nft/nft.h"
#include "nft/nft-internal.h"
#include "tests/nft/nfttest.h"

#define TABLE "pftest"

static const char *golden_dir;

/* G1 moved on: elements in and out, an interval reshaped, a rule changed,
 * b no longer isolated, c isolated, a set and a chain gone, a set new. */
static struct pf_ir_plan *plan_g2(void)
{
	static const char *const web[] = { "10.0.0.5", "10.0.0.7", "10.0.0.8" };
	static const char *const v6[] = { "fd00::2" };
	static const char *const net[] = { "10.0.0.0-10.0.127.255", "10.2.0.0-10.255.255.255" };
	static const char *const http[] = { "10.0.0.3 tcp 8080", "10.0.0.4 tcp 8081" };
	static const char *const db[] = { "10.0.0.9" };
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_chain *c;

	nt_set(p, "p_web", PF_IR_SET_ADDR4, "ns{team=a} pod{app=web}", web, 3);
	nt_set(p, "p_v6", PF_IR_SET_ADDR6, "pod{app=web} v6", v6, 1);
	nt_set(p, "b_net", PF_IR_SET_NET4, "ipBlock 10.0.0.0/8 except 10.1.0.0/16", net, 2);
	nt_set(p, "np_http", PF_IR_SET_ADDR4_PORT, "port http", http, 2);
	nt_set(p, "p_db", PF_IR_SET_ADDR4, "pod{app=db}", db, 1);
	c = nt_chain(p, "in_a", PF_IR_INGRESS, "ns/a");
	nt_rule(c, 4, "p_web", false, 6, 80, 81, "ns/allow-web", 0);
	nt_rule(c, 6, "p_v6", false, 0, 0, 0, "ns/allow-web", 1);
	nt_rule(c, 4, "b_net", false, 0, 0, 0, "ns/ipblock", 0);
	c = nt_chain(p, "out_a", PF_IR_EGRESS, "ns/a");
	nt_rule(c, 4, "np_http", true, 0, 0, 0, "ns/named", 0);
	nt_rule(c, 0, NULL, false, 17, 53, 53, "ns/dns", 0);
	c = nt_chain(p, "in_c", PF_IR_INGRESS, "ns/c");
	nt_rule(c, 4, "p_db", false, 6, 5432, 5432, "ns/db", 0);
	nt_pod(p, "ns/a", "va", "10.0.0.2", "in_a", "out_a");
	nt_pod(p, "ns/b", "vb", "10.0.0.3", NULL, NULL);
	nt_pod(p, "ns/c", "vc", "10.0.0.4", "in_c", NULL);
	nt_plan_finish(p);
	return p;
}

struct env {
	char ns[96];
	char path[160];
	struct pf_nft *n;
};

static void env_up(struct env *e, const char *tag, size_t max_txn)
{
	struct pf_nft_opts o = { .table = TABLE, .max_txn_msgs = max_txn };

	ck_assert_int_eq(kt_ns_new(tag, e->ns, sizeof(e->ns)), 0);
	snprintf(e->path, sizeof(e->path), "/run/netns/%s", e->ns);
	ck_assert_int_eq(pf_nft_new_in_netns(e->path, &o, &e->n), 0);
}

static void env_down(struct env *e)
{
	pf_nft_free(e->n);
	kt_ns_del(e->ns);
}

static void assert_kernel_is(struct pf_nft *n, const struct pf_ir_plan *want)
{
	struct pf_ir_plan *got = NULL;
	char *a, *b = NULL;
	int attempt;

	a = nt_plan_kernel_text(want);
	/* Right after a large insert the kernel grows hash sets in the
	 * background, and a dump taken meanwhile can miss elements (its
	 * rhashtable walk restarts); sync only re-adds them, harmlessly. A
	 * verifying read waits for the table to settle. */
	for (attempt = 0; attempt < 10; attempt++) {
		free(b);
		ck_assert_int_eq(pf_nft_read(n, &got), 0);
		b = nt_plan_kernel_text(got);
		pf_ir_plan_free(got);
		got = NULL;
		if (strcmp(a, b) == 0)
			break;
		usleep(200 * 1000);
	}
	if (strcmp(a, b) != 0) {
		size_t i = 0, line = 1;

		/* the plans can be huge: report the first difference only */
		while (a[i] && a[i] == b[i])
			line += a[i++] == '\n';
		ck_abort_msg("kernel differs from plan at line %zu (%zu vs %zu bytes):\nwant: %.60s\ngot:  %.60s", line, strlen(a), strlen(b), a + i, b + i);
	}
	free(a);
	free(b);
	pf_ir_plan_free(got);
}

static uint64_t sync_msgs(struct pf_nft *n, const struct pf_ir_plan *p)
{
	struct pf_nft_stats st;
	int rc;

	pf_nft_reset_stats(n);
	rc = pf_nft_sync(n, p);
	ck_assert_msg(rc == 0, "sync: %d %s", rc, pf_nft_error(n));
	pf_nft_get_stats(n, &st);
	return st.mutating_msgs;
}

static void assert_nothing_to_do(struct pf_nft *n, const struct pf_ir_plan *p)
{
	struct pf_nft_stats st;

	ck_assert_uint_eq(sync_msgs(n, p), 0);
	pf_nft_get_stats(n, &st);
	ck_assert_uint_eq(st.transactions, 0);
}

static json_t *load_golden(const char *name)
{
	char path[512];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	j = json_load_file(path, 0, &err);
	ck_assert_msg(j != NULL, "golden %s: %s", path, err.text);
	return j;
}

/* The rule of chain `chain` whose comment is `comment`, from nft -j. */
static json_t *find_rule(json_t *list, const char *chain, const char *comment)
{
	size_t i;
	json_t *v, *r;

	json_array_foreach(list, i, v) {
		r = json_object_get(v, "rule");
		if (r && strcmp(json_string_value(json_object_get(r, "chain")), chain) == 0 &&
		    json_object_get(r, "comment") &&
		    strcmp(json_string_value(json_object_get(r, "comment")), comment) == 0)
			return r;
	}
	return NULL;
}

static bool expr_has(json_t *rule, const char *needle)
{
	char *s = json_dumps(json_object_get(rule, "expr"), JSON_COMPACT);
	bool ok = s && strstr(s, needle);

	free(s);
	return ok;
}

START_TEST(test_golden_sync)
{
	struct pf_ir_plan *p = nt_plan_g1();
	struct env e;
	json_t *got, *want, *r;

	env_up(&e, "golden", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	got = nt_nft_json(e.ns, TABLE);
	ck_assert_ptr_nonnull(got);
	if (getenv("PF_NFT_WRITE_GOLDEN"))
		json_dump_file(got, getenv("PF_NFT_WRITE_GOLDEN"), JSON_INDENT(1));
	want = load_golden("g1.json");
	if (!json_equal(got, want)) {
		char *s = json_dumps(got, JSON_COMPACT);

		ck_abort_msg("kernel view differs from golden g1.json:\n%.2000s", s);
	}
	/* and, independently of the golden file, the points that matter */
	r = find_rule(got, "in_a", "ns/allow-web#0");
	ck_assert_ptr_nonnull(r);
	ck_assert(expr_has(r, "\"right\":\"@p_web\""));
	ck_assert(expr_has(r, "{\"accept\":null}"));
	r = find_rule(got, "out_a", "ns/named#0");
	ck_assert_ptr_nonnull(r);
	ck_assert(expr_has(r, "\"concat\""));
	ck_assert(expr_has(r, "{\"return\":null}"));
	ck_assert_ptr_nonnull(find_rule(got, "in_b", NFT_DROP_COMMENT));
	json_decref(got);
	json_decref(want);
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

static int table_handle(const char *ns)
{
	char *out = kt_sh_out("ip netns exec %s nft -j list tables", ns);
	json_t *j = out ? json_loads(out, 0, NULL) : NULL, *v;
	size_t i;
	int h = -1;

	json_array_foreach(json_object_get(j, "nftables"), i, v) {
		json_t *t = json_object_get(v, "table");

		if (t && strcmp(json_string_value(json_object_get(t, "name")), TABLE) == 0)
			h = (int)json_integer_value(json_object_get(t, "handle"));
	}
	json_decref(j);
	free(out);
	return h;
}

START_TEST(test_adopt_and_converge)
{
	struct pf_ir_plan *p1 = nt_plan_g1(), *p2 = plan_g2();
	struct pf_nft_opts o = { .table = TABLE };
	struct pf_nft *second = NULL;
	struct env e;
	int h;

	env_up(&e, "adopt", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p1), 0);
	h = table_handle(e.ns);
	ck_assert_int_ge(h, 0);
	/* a new controller process adopts the table and converges it */
	ck_assert_int_eq(pf_nft_new_in_netns(e.path, &o, &second), 0);
	assert_nothing_to_do(second, p1);
	ck_assert_uint_gt(sync_msgs(second, p2), 0);
	assert_kernel_is(second, p2);
	assert_nothing_to_do(second, p2);
	/* never deleted and re-added */
	ck_assert_int_eq(table_handle(e.ns), h);
	/* and back */
	ck_assert_uint_gt(sync_msgs(second, p1), 0);
	assert_kernel_is(second, p1);
	ck_assert_int_eq(table_handle(e.ns), h);
	pf_nft_free(second);
	env_down(&e);
	pf_ir_plan_free(p1);
	pf_ir_plan_free(p2);
}
END_TEST

START_TEST(test_apply_diff)
{
	struct pf_ir_plan *p1 = nt_plan_g1(), *p2 = plan_g2();
	struct pf_ir_diff *d = NULL;
	struct pf_nft_stats st;
	struct env e;
	int rc;

	env_up(&e, "apply", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p1), 0);
	ck_assert_int_eq(pf_ir_diff(p1, p2, &d), 0);
	pf_nft_reset_stats(e.n);
	rc = pf_nft_apply(e.n, d);
	ck_assert_msg(rc == 0, "apply: %d %s", rc, pf_nft_error(e.n));
	pf_nft_get_stats(e.n, &st);
	ck_assert_uint_eq(st.transactions, 1);
	ck_assert_uint_eq(st.reads, 0); /* the hot path reads nothing back */
	assert_kernel_is(e.n, p2);
	assert_nothing_to_do(e.n, p2);
	pf_ir_diff_free(d);
	/* and back, incrementally */
	ck_assert_int_eq(pf_ir_diff(p2, p1, &d), 0);
	rc = pf_nft_apply(e.n, d);
	ck_assert_msg(rc == 0, "apply back: %d %s", rc, pf_nft_error(e.n));
	assert_kernel_is(e.n, p1);
	assert_nothing_to_do(e.n, p1);
	pf_ir_diff_free(d);
	env_down(&e);
	pf_ir_plan_free(p1);
	pf_ir_plan_free(p2);
}
END_TEST

/* The daemon concatenates consecutive diffs into one apply. */
static struct pf_ir_diff *concat(struct pf_ir_diff *a, struct pf_ir_diff *b)
{
	struct pf_ir_diff *d = calloc(1, sizeof(*d));

	d->ops = calloc(a->n_ops + b->n_ops + 1, sizeof(*d->ops));
	if (a->n_ops)
		memcpy(d->ops, a->ops, a->n_ops * sizeof(*d->ops));
	if (b->n_ops)
		memcpy(d->ops + a->n_ops, b->ops, b->n_ops * sizeof(*d->ops));
	d->n_ops = a->n_ops + b->n_ops;
	return d;
}

START_TEST(test_apply_concatenated_diffs)
{
	struct pf_ir_plan *p1 = nt_plan_g1(), *p2 = plan_g2(), *p1b = nt_plan_g1();
	struct pf_ir_diff *d1 = NULL, *d2 = NULL, *d;
	struct pf_addr x;
	struct pf_nft_stats st;
	struct env e;
	int rc;

	env_up(&e, "concat", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p1), 0);
	/* there and back in one apply: chains and sets deleted and re-added */
	ck_assert_int_eq(pf_ir_diff(p1, p2, &d1), 0);
	ck_assert_int_eq(pf_ir_diff(p2, p1, &d2), 0);
	d = concat(d1, d2);
	rc = pf_nft_apply(e.n, d);
	ck_assert_msg(rc == 0, "apply: %d %s", rc, pf_nft_error(e.n));
	assert_kernel_is(e.n, p1);
	free(d->ops);
	free(d);
	pf_ir_diff_free(d1);
	pf_ir_diff_free(d2);
	/* an element added then removed: nothing to send at all */
	pf_addr_parse("10.0.0.9", &x);
	nt_set_add_addr(&p1b->sets[(size_t)(pf_ir_plan_set(p1b, "p_web") - p1b->sets)], &x);
	nt_plan_finish(p1b);
	ck_assert_int_eq(pf_ir_diff(p1, p1b, &d1), 0);
	ck_assert_int_eq(pf_ir_diff(p1b, p1, &d2), 0);
	d = concat(d1, d2);
	pf_nft_reset_stats(e.n);
	ck_assert_int_eq(pf_nft_apply(e.n, d), 0);
	pf_nft_get_stats(e.n, &st);
	ck_assert_uint_eq(st.mutating_msgs, 0);
	assert_kernel_is(e.n, p1);
	free(d->ops);
	free(d);
	pf_ir_diff_free(d1);
	pf_ir_diff_free(d2);
	env_down(&e);
	pf_ir_plan_free(p1);
	pf_ir_plan_free(p2);
	pf_ir_plan_free(p1b);
}
END_TEST

START_TEST(test_chunked_cold_start)
{
	struct pf_ir_plan *p = nt_synth_plan(3000, 300, 30, "cs");
	struct pf_nft_stats st;
	struct env e;
	json_t *j;

	env_up(&e, "chunk", 50);
	pf_nft_reset_stats(e.n);
	ck_assert_msg(pf_nft_sync(e.n, p) == 0, "%s", pf_nft_error(e.n));
	pf_nft_get_stats(e.n, &st);
	ck_assert_uint_gt(st.transactions, 5);
	/* only the one step that must be atomic (changes to objects in use,
	 * none at cold start) may exceed the chunk size; chains are not split */
	ck_assert_uint_le(st.longest_txn_msgs, 50 + 8);
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	j = nt_nft_json(e.ns, TABLE);
	ck_assert_ptr_nonnull(j);
	json_decref(j);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

static struct pf_ir_op elem_op(const struct pf_ir_set *s, const struct pf_ir_elem **v, size_t n)
{
	struct pf_ir_op op = { .type = PF_IR_OP_ELEM_ADD, .set = s, .elems = v, .n_elems = n };

	return op;
}

START_TEST(test_error_conflicting_element)
{
	struct pf_ir_plan *p = nt_plan_g1(), *extra = nt_plan();
	static const char *const add_web[] = { "10.0.0.9" };
	static const char *const overlap[] = { "10.0.200.0-10.2.0.5" };
	struct pf_ir_set *w, *b;
	const struct pf_ir_elem *wv[1], *bv[1];
	struct pf_ir_op ops[2];
	struct pf_ir_diff d = { .n_ops = 2, .ops = ops };
	struct env e;
	int rc;

	env_up(&e, "conflict", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	nt_set(extra, "p_web", PF_IR_SET_ADDR4, NULL, add_web, 1);
	nt_set(extra, "b_net", PF_IR_SET_NET4, NULL, overlap, 1);
	w = &extra->sets[0];
	b = &extra->sets[1];
	wv[0] = &w->elems[0];
	bv[0] = &b->elems[0];
	/* a good element first, then one overlapping an existing interval */
	ops[0] = elem_op(w, wv, 1);
	ops[1] = elem_op(b, bv, 1);
	rc = pf_nft_apply(e.n, &d);
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(pf_nft_error(e.n), "set b_net") != NULL, "error does not name the set: %s",
		      pf_nft_error(e.n));
	ck_assert_msg(strstr(pf_nft_error(e.n), "10.0.200.0") != NULL, "error does not name the element: %s",
		      pf_nft_error(e.n));
	/* nothing of the transaction stayed, not even the good element */
	assert_kernel_is(e.n, p);
	env_down(&e);
	pf_ir_plan_free(extra);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_error_missing_set)
{
	struct pf_ir_plan *p = nt_plan_g1(), *bad = nt_plan_g1();
	struct pf_ir_chain *c;
	struct env e;
	int rc;

	env_up(&e, "missing", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	/* a plan whose new chain's fourth rule refers to a set that does not
	 * exist, after valid changes to sets and chains */
	nt_set(bad, "p_new", PF_IR_SET_ADDR4, "new", NULL, 0);
	c = nt_chain(bad, "in_x", PF_IR_INGRESS, "ns/x");
	nt_rule(c, 4, "p_web", false, 0, 0, 0, "ns/ok", 0);
	nt_rule(c, 4, "p_web", false, 6, 1, 1, "ns/ok", 1);
	nt_rule(c, 4, "p_new", false, 0, 0, 0, "ns/ok", 2);
	nt_rule(c, 4, "no_such_set", false, 0, 0, 0, "ns/bad", 3);
	nt_pod(bad, "ns/x", "vx", "10.0.0.9", "in_x", NULL);
	nt_plan_finish(bad);
	rc = pf_nft_sync(e.n, bad);
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(pf_nft_error(e.n), "rule 3 of policy ns/bad in chain in_x") != NULL,
		      "error does not name the rule: %s", pf_nft_error(e.n));
	assert_kernel_is(e.n, p);
	env_down(&e);
	pf_ir_plan_free(bad);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_generation_conflict)
{
	struct pf_ir_plan *p = nt_plan_g1();
	struct nftnl_table *t;
	struct nft_txn *txn;
	struct pf_nft_stats st;
	struct env e;
	uint32_t gen;

	env_up(&e, "gen", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	ck_assert_int_eq(pf_nft_generation(e.n, &gen), 0);
	/* someone else commits after our read */
	ck_assert_int_eq(kt_sh("ip netns exec %s nft add table inet other", e.ns), 0);
	txn = nft_txn_new(e.n, true, gen);
	t = nft_build_table("third");
	ck_assert_int_eq(nft_txn_add_table(txn, NFT_MSG_NEWTABLE, 0, t, "table third"), 0);
	pf_nft_reset_stats(e.n);
	ck_assert_int_eq(nft_txn_commit(txn), -ERESTART);
	pf_nft_get_stats(e.n, &st);
	ck_assert_uint_eq(st.gen_conflicts, 1);
	ck_assert_int_ne(kt_sh("ip netns exec %s nft list table inet third >/dev/null 2>&1", e.ns), 0);
	nft_txn_free(txn);
	nftnl_table_free(t);
	/* sync reads again and is not confused by the other table */
	assert_nothing_to_do(e.n, p);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

/* One pod whose ingress chain matches one set of n addresses (10.64.0.0 on). */
static struct pf_ir_plan *big_set_plan(size_t n)
{
	struct pf_ir_plan *p = nt_plan();
	struct pf_ir_set *s = nt_set(p, "p_big", PF_IR_SET_ADDR4, "big", NULL, 0);
	struct pf_ir_chain *c;

	for (size_t i = 0; i < n; i++) {
		struct pf_addr a = { .family = 4, .bytes = { 10, (uint8_t)(64 + (i >> 16)), (uint8_t)(i >> 8), (uint8_t)i } };

		nt_set_add_addr(s, &a);
	}
	c = nt_chain(p, "in_a", PF_IR_INGRESS, "ns/a");
	nt_rule(c, 4, "p_big", false, 0, 0, 0, "ns/big", 0);
	nt_pod(p, "ns/a", "va", NULL, "in_a", NULL);
	nt_plan_finish(p);
	return p;
}

/* Another program committing to its own table in namespace ns all the time
 * (kube-proxy does): script runs under sh -c there until neighbour_stop. */
static pid_t neighbour_start(const char *ns, const char *script)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execlp("ip", "ip", "netns", "exec", ns, "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	usleep(100 * 1000);
	return pid;
}

static void neighbour_stop(pid_t pid, const char *ns)
{
	int status;

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	kt_sh("for p in $(ip netns pids %s); do kill -9 $p; done", ns);
}

START_TEST(test_sync_under_concurrent_changes)
{
	/* another program keeps committing to its own table in the same
	 * namespace (kube-proxy does): a chunked cold start still converges,
	 * its commits refused and redone whenever the generation moved */
	struct pf_ir_plan *p = nt_synth_plan(3000, 300, 30, "cc");
	struct pf_nft_stats st;
	struct env e;
	pid_t pid;
	int rc;

	env_up(&e, "busy", 40);
	pid = neighbour_start(e.ns, "i=0; while :; do nft add table inet other$((i%4)); "
				    "nft delete table inet other$((i%4)); i=$((i+1)); done");
	pf_nft_reset_stats(e.n);
	rc = pf_nft_sync(e.n, p);
	neighbour_stop(pid, e.ns);
	ck_assert_msg(rc == 0, "sync: %d %s", rc, pf_nft_error(e.n));
	pf_nft_get_stats(e.n, &st);
	fprintf(stderr, "concurrent: %llu transactions, %llu generation conflicts, %llu read retries\n",
		(unsigned long long)st.transactions, (unsigned long long)st.gen_conflicts,
		(unsigned long long)st.read_retries);
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_read_interrupted_dump)
{
	/* A read-back whose multi-part dumps race with a neighbour committing
	 * to its own table all the time (the kernel flags them NLM_F_DUMP_INTR
	 * and the generation moves under every read): the change monitor
	 * shows our table untouched, so every read stands, and each returns
	 * the whole table. Before the monitor, every read here gave up. */
	struct pf_ir_plan *p = big_set_plan(60000), *got;
	struct pf_nft_stats st;
	struct env e;
	pid_t pid;
	int reads = 0, failed = 0;
	char *want;

	env_up(&e, "intr", 1000000);
	ck_assert_int_eq(pf_nft_sync(e.n, p), 0);
	assert_kernel_is(e.n, p);
	want = nt_plan_kernel_text(p);
	/* one nft process, a commit per line: thousands a second */
	pid = neighbour_start(e.ns, "while :; do echo add table inet other; echo delete table inet other; done | nft -i");
	pf_nft_reset_stats(e.n);
	/* Until the kernel has interrupted a dump a few times, or 200 reads;
	 * on a loaded machine (each read of 60k elements can take a second)
	 * one interruption seen after 30 s is enough, and 75 s ends it. */
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; reads < 200; reads++) {
		pf_nft_get_stats(e.n, &st);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (st.dump_intr >= 3 || (st.dump_intr >= 1 && now.tv_sec - t0.tv_sec > 30) ||
		    now.tv_sec - t0.tv_sec > 75)
			break;
		got = NULL;
		int rc = pf_nft_read(e.n, &got);

		if (rc != 0) {
			if (failed++ == 0)
				fprintf(stderr, "read %d: %d %s\n", reads, rc, pf_nft_error(e.n));
			continue;
		}
		char *text = nt_plan_kernel_text(got);

		ck_assert_msg(strcmp(text, want) == 0, "read %d differs from the table", reads);
		free(text);
		pf_ir_plan_free(got);
	}
	neighbour_stop(pid, e.ns);
	pf_nft_get_stats(e.n, &st);
	fprintf(stderr, "interrupted dumps: %llu in %d reads (%llu stood across commits, %llu redone, %d failed)\n",
		(unsigned long long)st.dump_intr, reads, (unsigned long long)st.reads_across_commits,
		(unsigned long long)st.read_retries, failed);
#ifdef PF_SANITIZED
	/* see tests/nft/CMakeLists.txt: every read above still had to stand
	 * and equal the table; the interruption itself is required in the
	 * release build */
	if (st.dump_intr == 0)
		fprintf(stderr, "sanitizer build: no dump was interrupted in %d reads (not required here)\n", reads);
#else
	ck_assert_msg(st.dump_intr > 0, "no dump was interrupted in %d reads", reads);
#endif
	ck_assert_uint_gt(st.reads_across_commits, 0);
	ck_assert_int_eq(failed, 0);
	free(want);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_repairs_foreign_changes)
{
	struct pf_ir_plan *p = nt_plan_g1();
	struct env e;

	env_up(&e, "repair", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	ck_assert_int_eq(kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			       "add rule inet " TABLE " in_a tcp dport 22 accept\n"
			       "add element inet " TABLE " p_web { 10.9.9.9 }\n"
			       "delete element inet " TABLE " ingress_dispatch { \"vb\" }\n"
			       "delete element inet " TABLE " egress_dispatch { \"va\" }\n"
			       "add element inet " TABLE " egress_dispatch { \"va\" : accept }\n"
			       "add element inet " TABLE " egress_dispatch { \"vz\" : accept }\n"
			       "add chain inet " TABLE " stray\n"
			       "EOF",
			       e.ns),
			 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	/* a base chain rewritten by someone else is restored in place */
	ck_assert_int_eq(kt_sh("ip netns exec %s nft flush chain inet " TABLE " forward", e.ns), 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	assert_nothing_to_do(e.n, p);
	ck_assert_int_eq(kt_sh("ip netns exec %s nft list chain inet " TABLE " forward | grep -q 'oifname vmap'",
			       e.ns),
			 0);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

/* "<c x n>" */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Names of the longest lengths Kubernetes accepts (namespace 63, policy and
 * pod 253): their rule and chain comments are longer than the kernel keeps.
 * Before, nft_rule_comment refused the rule (ENAMETOOLONG) and every sync
 * failed for good. Now they are programmed, read back equal, and a second
 * sync sends nothing; two policies sharing a long prefix stay apart. */
START_TEST(test_longest_names)
{
	static const char *const web[] = { "10.0.0.5" };
	char *ns = repeat('n', 63), *pol = repeat('p', 253), *pod = repeat('q', 253);
	char pol_key[400], pol2_key[400], pod_key[400];
	struct pf_ir_plan *p = nt_plan(), *p2;
	struct pf_ir_chain *c;
	struct env e;
	char *out;

	snprintf(pol_key, sizeof(pol_key), "%s/%s", ns, pol);
	snprintf(pol2_key, sizeof(pol2_key), "%s/%.252sx", ns, pol);
	snprintf(pod_key, sizeof(pod_key), "%s/%s", ns, pod);
	nt_set(p, "p_web", PF_IR_SET_ADDR4, "pod{app=web}", web, 1);
	c = nt_chain(p, "in_long", PF_IR_INGRESS, pod_key);
	nt_rule(c, 4, "p_web", false, 6, 80, 80, pol_key, 4294967295u);
	nt_rule(c, 4, "p_web", false, 6, 81, 81, pol2_key, 0);
	c = nt_chain(p, "out_long", PF_IR_EGRESS, pod_key);
	nt_rule(c, 0, NULL, false, 17, 53, 53, pol_key, 0);
	nt_pod(p, pod_key, "vlong", "10.0.0.2", "in_long", "out_long");
	nt_plan_finish(p);

	env_up(&e, "longnames", 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	out = kt_sh_out("ip netns exec %s nft list chain inet " TABLE " in_long", e.ns);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(strstr(out, "#4294967295\"") && strstr(out, "~"), "%s", out);
	free(out);
	/* a rule moving to the other long policy is a change */
	p2 = pf_ir_plan_dup(p);
	ck_assert_ptr_nonnull(p2);
	free(p2->chains[0].rules[0].policy);
	p2->chains[0].rules[0].policy = strdup(pol2_key);
	ck_assert_uint_gt(sync_msgs(e.n, p2), 0);
	assert_kernel_is(e.n, p2);
	assert_nothing_to_do(e.n, p2);
	env_down(&e);
	pf_ir_plan_free(p);
	pf_ir_plan_free(p2);
	free(ns);
	free(pol);
	free(pod);
}
END_TEST

/* Audit mode (docs/engine.md): an audit chain's end (accept / return) and a
 * staged rule (drop) are programmed, read back equal and converge (a second
 * sync sends nothing), with the flow log off and on (then the end logs
 * "pf wd", the staged rule "pf wa"); a mode switch is one chain replacement. */
START_TEST(test_audit_and_staged)
{
	static const char *const web[] = { "10.0.0.5" };
	struct pf_ir_plan *p = nt_plan(), *p2;
	struct pf_ir_chain *c;
	struct pf_ir_diff *d = NULL;
	struct env e;
	char *out;

	nt_set(p, "p_web", PF_IR_SET_ADDR4, "pod{app=web}", web, 1);
	c = nt_chain(p, "in_a", PF_IR_INGRESS, "ns/a");
	nt_rule(c, 4, "p_web", false, 6, 80, 80, "ns/allow", 0);
	nt_rule(c, 4, "p_web", false, 6, 81, 81, "ns/staged", 0);
	c->rules[1].verdict = PF_IR_DROP;
	c = nt_chain(p, "out_a", PF_IR_EGRESS, "ns/a");
	nt_rule(c, 4, "p_web", false, 17, 53, 53, "ns/staged", 1);
	c->rules[0].verdict = PF_IR_DROP;
	c->audit = true;
	nt_pod(p, "ns/a", "va", "10.0.0.2", "in_a", "out_a");
	nt_plan_finish(p);
	for (int logging = 0; logging < 2; logging++) {
		struct pf_nft_opts o = { .table = TABLE, .log_group = logging ? 100 : 0 };

		ck_assert_int_eq(kt_ns_new("audit", e.ns, sizeof(e.ns)), 0);
		snprintf(e.path, sizeof(e.path), "/run/netns/%s", e.ns);
		ck_assert_int_eq(pf_nft_new_in_netns(e.path, &o, &e.n), 0);
		ck_assert_uint_gt(sync_msgs(e.n, p), 0);
		assert_kernel_is(e.n, p);
		assert_nothing_to_do(e.n, p);
		out = kt_sh_out("ip netns exec %s nft list table inet " TABLE, e.ns);
		ck_assert_ptr_nonnull(out);
		ck_assert_msg(strstr(out, "tcp dport 81 counter packets 0 bytes 0 drop comment \"ns/staged#0\"") &&
				      strstr(out, "return comment \"podfence: audit\""),
			      "%s", out);
		ck_assert_msg(!logging || (strstr(out, "log prefix \"pf wd ") && strstr(out, "log prefix \"pf wa ") &&
					   strstr(out, "log prefix \"pf d ")),
			      "%s", out);
		if (logging) {
			/* the staged rule's log records the deny too (the closing drop is not reached) */
			char *wa = strstr(out, "log prefix \"pf wa "), *eol = wa ? strchr(wa, '\n') : NULL;

			ck_assert_ptr_nonnull(eol);
			*eol = '\0';
			ck_assert_msg(strstr(wa, "log prefix \"pf d "), "%s", wa);
		}
		free(out);
		/* switch: in_a audits, out_a enforces; one replacement each */
		p2 = pf_ir_plan_dup(p);
		ck_assert_ptr_nonnull(p2);
		p2->chains[0].audit = true;
		p2->chains[1].audit = false;
		ck_assert_int_eq(pf_ir_diff(p, p2, &d), 0);
		ck_assert_uint_eq(d->n_ops, 2);
		ck_assert_int_eq(d->ops[0].type, PF_IR_OP_CHAIN_REPLACE);
		ck_assert_int_eq(pf_nft_apply(e.n, d), 0);
		pf_ir_diff_free(d);
		assert_kernel_is(e.n, p2);
		assert_nothing_to_do(e.n, p2);
		pf_ir_plan_free(p2);
		env_down(&e);
	}
	pf_ir_plan_free(p);
}
END_TEST

static size_t count_of(const char *hay, const char *needle)
{
	size_t k = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		k++;
	return k;
}

/* podfence.io/flow-log: all (pf_ir_chain.log_allowed, docs/flowlog.md):
 * with the flow log on, only the marked chains' allow rules get the log
 * pair ("pf a"), their pairs' comments end in " all" so the read-back gives
 * the flag back (in_c has no allow rule: only its end's pair says it), and
 * a plan reads back equal and converges; with --log-allowed every allow
 * rule is logged and the flags still read back; with the flow log off
 * nothing is written for it and a sync sends nothing. A switch is one chain
 * replacement per chain, by diff or by a full sync. */
START_TEST(test_log_allowed_chains)
{
	static const char *const web[] = { "10.0.0.5" };
	struct pf_ir_plan *p = nt_plan(), *p2, *bare;
	struct pf_ir_chain *c;
	struct pf_ir_diff *d = NULL;
	struct env e;
	char *out;

	nt_set(p, "p_web", PF_IR_SET_ADDR4, "pod{app=web}", web, 1);
	c = nt_chain(p, "in_a", PF_IR_INGRESS, "all/a");
	nt_rule(c, 4, "p_web", false, 6, 80, 80, "all/allow", 0);
	c->log_allowed = true;
	c = nt_chain(p, "in_b", PF_IR_INGRESS, "deny/b");
	nt_rule(c, 4, "p_web", false, 6, 81, 81, "deny/allow", 0);
	c = nt_chain(p, "in_c", PF_IR_INGRESS, "all/c");
	c->log_allowed = true;
	nt_pod(p, "all/a", "va", "10.0.0.2", "in_a", NULL);
	nt_pod(p, "deny/b", "vb", "10.0.0.3", "in_b", NULL);
	nt_pod(p, "all/c", "vc", "10.0.0.4", "in_c", NULL);
	nt_plan_finish(p);
	/* what the kernel can hold without the flow log */
	bare = pf_ir_plan_dup(p);
	ck_assert_ptr_nonnull(bare);
	for (size_t i = 0; i < bare->n_chains; i++)
		bare->chains[i].log_allowed = false;
	for (int mode = 0; mode < 3; mode++) {
		struct pf_nft_opts o = { .table = TABLE, .log_group = mode ? 100 : 0, .log_allowed = mode == 2 };

		ck_assert_int_eq(kt_ns_new("logall", e.ns, sizeof(e.ns)), 0);
		snprintf(e.path, sizeof(e.path), "/run/netns/%s", e.ns);
		ck_assert_int_eq(pf_nft_new_in_netns(e.path, &o, &e.n), 0);
		ck_assert_uint_gt(sync_msgs(e.n, p), 0);
		assert_kernel_is(e.n, mode ? p : bare);
		assert_nothing_to_do(e.n, p);
		out = kt_sh_out("ip netns exec %s nft list table inet " TABLE, e.ns);
		ck_assert_ptr_nonnull(out);
		ck_assert_msg(count_of(out, "log prefix \"pf a ") == (mode == 0 ? 0u : mode == 1 ? 1u : 2u), "%s", out);
		/* in_a, in_c: the end's pair; in_a: its rule's pair too */
		ck_assert_msg(count_of(out, " r20 all\"") == (mode ? 6u : 0u), "%s", out);
		ck_assert_msg(count_of(out, "podfence: log") == (mode == 0 ? 0u : mode == 1 ? 8u : 10u), "%s", out);
		free(out);
		/* switch: a stops, b starts; one replacement each */
		p2 = pf_ir_plan_dup(p);
		ck_assert_ptr_nonnull(p2);
		ck_assert_str_eq(p2->chains[0].name, "in_a");
		ck_assert_str_eq(p2->chains[1].name, "in_b");
		p2->chains[0].log_allowed = false;
		p2->chains[1].log_allowed = true;
		ck_assert_int_eq(pf_ir_diff(p, p2, &d), 0);
		ck_assert_uint_eq(d->n_ops, 2);
		ck_assert_int_eq(d->ops[0].type, PF_IR_OP_CHAIN_REPLACE);
		ck_assert_int_eq(d->ops[1].type, PF_IR_OP_CHAIN_REPLACE);
		ck_assert_int_eq(pf_nft_apply(e.n, d), 0);
		pf_ir_diff_free(d);
		if (mode) {
			assert_kernel_is(e.n, p2);
			out = kt_sh_out("ip netns exec %s nft list table inet " TABLE, e.ns);
			ck_assert_ptr_nonnull(out);
			ck_assert_msg(count_of(out, "log prefix \"pf a ") == (mode == 1 ? 1u : 2u), "%s", out);
			free(out);
		}
		assert_nothing_to_do(e.n, p2);
		/* and back by a full sync (a restart over the switched kernel) */
		if (mode)
			ck_assert_uint_gt(sync_msgs(e.n, p), 0);
		assert_kernel_is(e.n, mode ? p : bare);
		assert_nothing_to_do(e.n, p);
		pf_ir_plan_free(p2);
		env_down(&e);
	}
	pf_ir_plan_free(bare);
	pf_ir_plan_free(p);
}
END_TEST

/* A set someone else made under one of our names, with another type: it is
 * replaced in the sync's transaction, not a reason to stop (before: every
 * sync failed with EEXIST "set p_web exists with another type"). */
START_TEST(test_replaces_foreign_set)
{
	struct pf_ir_plan *p = nt_plan_g1();
	struct env e;

	env_up(&e, "foreignset", 0);
	ck_assert_int_eq(kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			       "add table inet " TABLE "\n"
			       "add set inet " TABLE " p_web { type ipv6_addr; }\n"
			       "add element inet " TABLE " p_web { fd00::99 }\n"
			       "add set inet " TABLE " b_net { type inet_service; }\n"
			       "EOF",
			       e.ns),
			 0);
	ck_assert_uint_gt(sync_msgs(e.n, p), 0);
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

/* What one object breaks is named by object, for the daemon to isolate the
 * pods it concerns: a rule the builder refuses names its chain; a set the
 * kernel will not replace (a foreign rule uses the foreign set under our
 * name) names the set. */
START_TEST(test_error_names_object)
{
	struct pf_ir_plan *p = nt_plan_g1();
	struct pf_ir_chain *c = (struct pf_ir_chain *)pf_ir_plan_chain(p, "in_a");
	const char *name = NULL;
	struct env e;

	env_up(&e, "errobj", 0);
	ck_assert_ptr_nonnull(c);
	c->rules[0].port_lo = 90; /* above port_hi: cannot be expressed */
	ck_assert_int_lt(pf_nft_sync(e.n, p), 0);
	ck_assert_int_eq(pf_nft_error_object(e.n, &name), PF_NFT_OBJ_CHAIN);
	ck_assert_str_eq(name, "in_a");
	c->rules[0].port_lo = 80;
	ck_assert_int_eq(kt_sh("ip netns exec %s nft -f - <<'EOF'\n"
			       "add table inet " TABLE "\n"
			       "add set inet " TABLE " p_web { type ipv6_addr; }\n"
			       "add chain inet " TABLE " stray\n"
			       "add rule inet " TABLE " stray ip6 saddr @p_web drop\n"
			       "EOF",
			       e.ns),
			 0);
	ck_assert_int_lt(pf_nft_sync(e.n, p), 0);
	ck_assert_msg(pf_nft_error_object(e.n, &name) == PF_NFT_OBJ_SET, "%s", pf_nft_error(e.n));
	ck_assert_str_eq(name, "p_web");
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

START_TEST(test_large_set_paged)
{
	/* 100k elements: many element messages, several batch pages, one
	 * transaction (no chunking asked for) */
	struct pf_ir_plan *p = big_set_plan(100000);
	struct pf_nft_stats st;
	struct env e;

	env_up(&e, "big", 1000000);
	ck_assert_uint_gt(sync_msgs(e.n, p), 100000 / NFT_ELEMS_PER_MSG);
	pf_nft_get_stats(e.n, &st);
	ck_assert_uint_eq(st.transactions, 1);
	ck_assert_uint_gt(st.bytes, 128 * 1024); /* more than one page */
	assert_kernel_is(e.n, p);
	assert_nothing_to_do(e.n, p);
	env_down(&e);
	pf_ir_plan_free(p);
}
END_TEST

static void set_rcvbuf(struct pf_nft *n, int bytes)
{
	ck_assert_int_eq(setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)), 0);
}

/* The ACKs of a large batch overflow the socket's receive buffer (ENOBUFS):
 * the ACKs left queued must not be taken for the next batch's ("got 80656
 * ACKs for 12 messages"), and nothing may be committed on the assumption
 * that the lost batch did or did not commit until the table is read again. */
START_TEST(test_lost_acks_resync)
{
	struct pf_ir_plan *p1 = nt_plan_g1(), *p2 = plan_g2(), *big = big_set_plan(100000);
	struct pf_ir_diff *to_big = NULL, *to_p2 = NULL;
	struct env e;
	int rc;

	env_up(&e, "enobufs", 1000000);
	ck_assert_uint_gt(sync_msgs(e.n, p1), 0);
	ck_assert_int_eq(pf_ir_diff(p1, big, &to_big), 0);
	ck_assert_int_eq(pf_ir_diff(big, p2, &to_p2), 0);
	/* 250 element messages, one ACK each: far more than 4 KiB of skbs */
	set_rcvbuf(e.n, 4096);
	rc = pf_nft_apply(e.n, to_big);
	ck_assert_msg(rc == -ENOBUFS, "apply with a tiny receive buffer: %d %s", rc, pf_nft_error(e.n));
	ck_assert_msg(strstr(pf_nft_error(e.n), "ACKs"), "error: %s", pf_nft_error(e.n));
	set_rcvbuf(e.n, 32 * 1024 * 1024);
	/* Incremental work assumes a known kernel: refused, not guessed. */
	rc = pf_nft_apply(e.n, to_p2);
	ck_assert_msg(rc == -ESTALE, "apply after lost ACKs: %d %s", rc, pf_nft_error(e.n));
	/* The full sync reads the kernel, whatever the lost batch did. */
	rc = pf_nft_sync(e.n, p2);
	ck_assert_msg(rc == 0, "sync after lost ACKs: %d %s", rc, pf_nft_error(e.n));
	assert_kernel_is(e.n, p2);
	assert_nothing_to_do(e.n, p2);
	/* and the socket is in step again for the hot path */
	pf_ir_diff_free(to_p2);
	to_p2 = NULL;
	ck_assert_int_eq(pf_ir_diff(p2, p1, &to_p2), 0);
	rc = pf_nft_apply(e.n, to_p2);
	ck_assert_msg(rc == 0, "apply after resync: %d %s", rc, pf_nft_error(e.n));
	assert_kernel_is(e.n, p1);
	pf_ir_diff_free(to_big);
	pf_ir_diff_free(to_p2);
	env_down(&e);
	pf_ir_plan_free(p1);
	pf_ir_plan_free(p2);
	pf_ir_plan_free(big);
}
END_TEST

int main(int argc, char **argv)
{
	const TTest *const tests[] = {
		test_golden_sync,
		test_adopt_and_converge,
		test_apply_diff,
		test_apply_concatenated_diffs,
		test_chunked_cold_start,
		test_error_conflicting_element,
		test_error_missing_set,
		test_generation_conflict,
		test_repairs_foreign_changes,
		test_sync_under_concurrent_changes,
		test_read_interrupted_dump,
		test_large_set_paged,
		test_lost_acks_resync,
		test_longest_names,
		test_audit_and_staged,
		test_log_allowed_chains,
		test_replaces_foreign_set,
		test_error_names_object,
	};

	(void)argc;
	(void)argv;
	golden_dir = getenv("PF_NFT_GOLDEN_DIR") ? getenv("PF_NFT_GOLDEN_DIR") : PF_NFT_GOLDEN_DIR;
	return nt_run_suite("nft.kernel", 120, tests, sizeof(tests) / sizeof(tests[0]));
}
