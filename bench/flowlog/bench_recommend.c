// SPDX-License-Identifier: Apache-2.0
/* Not a test: the recommendation for N flow records (default 1000; goal
 * <= 100 ms for 1000, docs/bench-flowlog.md). Records: 200 workloads in 50
 * namespaces reaching each other and outside addresses, parsed from JSON
 * lines as podfencectl recommend reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowlog/recommend.h"

/* CPU time of this process: the machine the numbers come from is shared,
 * wall time mostly measures the neighbours. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000, len = 0, cap, policies = 0;
	char *text, *yaml = NULL;
	struct pf_err err = {0};
	struct pf_recommend *r = NULL;
	double t0, t1, t2;

	cap = n * 400 + 1;
	text = malloc(cap);
	if (!text)
		return 1;
	srand(42);
	for (size_t i = 0; i < n; i++) {
		unsigned s = (unsigned)rand() % 200, d = (unsigned)rand() % 200, port = 8000 + (unsigned)rand() % 20;

		if (i % 10 == 9)
			len += (size_t)snprintf(text + len, cap - len,
				"{\"src\":{\"namespace\":\"ns%u\",\"pod\":\"w%u-5c6d7f8b9-abcde\",\"labels\":{\"app\":\"w%u\","
				"\"pod-template-hash\":\"5c6d7f8b9\"}},\"dst\":{\"ip\":\"203.0.113.%u\"},\"protocol\":\"TCP\","
				"\"port\":443,\"direction\":\"egress\",\"verdict\":\"would-deny\"}\n", s % 50, s, s, d);
		else
			len += (size_t)snprintf(text + len, cap - len,
				"{\"src\":{\"namespace\":\"ns%u\",\"pod\":\"w%u-5c6d7f8b9-abcde\",\"labels\":{\"app\":\"w%u\","
				"\"pod-template-hash\":\"5c6d7f8b9\"}},\"dst\":{\"namespace\":\"ns%u\",\"pod\":"
				"\"w%u-7d9f8c6b5-x2x4q\",\"labels\":{\"app\":\"w%u\",\"pod-template-hash\":\"7d9f8c6b5\"}},"
				"\"protocol\":\"TCP\",\"port\":%u,\"direction\":\"ingress\",\"verdict\":\"would-deny\"}\n",
				s % 50, s, s, d % 50, d, d, port);
	}
	t0 = now_ms();
	if (pf_recommend_new(&r) < 0 || pf_recommend_add_lines(r, "bench", text, len, &err) < 0) {
		fprintf(stderr, "bench_recommend: %s\n", err.msg[0] ? err.msg : "out of memory");
		return 1;
	}
	t1 = now_ms();
	if (pf_recommend_yaml(r, NULL, &yaml, &policies) < 0)
		return 1;
	t2 = now_ms();
	printf("records=%zu policies=%zu yaml_bytes=%zu parse_cpu_ms=%.2f recommend_cpu_ms=%.2f total_cpu_ms=%.2f\n", n, policies,
	       strlen(yaml), t1 - t0, t2 - t1, t2 - t0);
	free(yaml);
	free(text);
	pf_recommend_free(r);
	return 0;
}
