// SPDX-License-Identifier: Apache-2.0
/* nft_driver: one run of the dataplane's apply path, as its own process, for
 * the restart tests and the cold-start benchmark.
 *
 *   nft_driver NETNS TABLE VARIANT MAX_TXN_MSGS [POD...]
 *     POD = ifname,ip,role  role: server | client | denied
 *   Syncs the deterministic plan VARIANT (a or b: same verdicts for the
 *   given pods, different content names, so going from one to the other is
 *   a large change) and prints its stats as one line of key=value.
 *   Exit 0 ok, 1 sync failed, 2 usage. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft/nft.h"
#include "tests/nft/nfttest.h"

int main(int argc, char **argv)
{
	struct pf_nft_opts opts = { 0 };
	struct pf_nft_stats st;
	struct pf_ir_plan *plan;
	struct pf_nft *n = NULL;
	int rc;

	if (argc < 5 || (strcmp(argv[3], "a") && strcmp(argv[3], "b")))
		return 2;
	opts.table = argv[2];
	opts.max_txn_msgs = strtoul(argv[4], NULL, 10);
	plan = nt_driver_plan(argv[3][0], argc - 5, (const char *const *)argv + 5);
	if (!plan)
		return 2;
	rc = pf_nft_new_in_netns(argv[1], &opts, &n);
	if (rc == 0)
		rc = pf_nft_sync(n, plan);
	if (rc < 0) {
		fprintf(stderr, "nft_driver: %s (%d)\n", n ? pf_nft_error(n) : "open failed", rc);
		pf_nft_free(n);
		pf_ir_plan_free(plan);
		return 1;
	}
	pf_nft_get_stats(n, &st);
	printf("msgs=%llu txns=%llu bytes=%llu longest_msgs=%llu longest_ns=%llu reads=%llu\n",
	       (unsigned long long)st.mutating_msgs, (unsigned long long)st.transactions,
	       (unsigned long long)st.bytes, (unsigned long long)st.longest_txn_msgs,
	       (unsigned long long)st.longest_txn_ns, (unsigned long long)st.reads);
	pf_nft_free(n);
	pf_ir_plan_free(plan);
	return 0;
}
