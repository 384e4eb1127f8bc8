// SPDX-License-Identifier: Apache-2.0
/* Not a test: fills the conntrack table of the calling network namespace
 * with COUNT entries made with the ctnetlink NEW message (no packet needed),
 * for daemon.revoke and bench/ct/bench_cut.py. Entry i is SRC:sport -> DST:
 * dport with sport = 1024 + i % 64512 and dport = DPORT + i / 64512 (TCP
 * ones ESTABLISHED), so any COUNT fits one address pair; an hour's timeout.
 * Prints "created=N ms=T". Root only.
 * usage: pf_ct_fill COUNT SRC DST DPORT [tcp|udp] */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ct/ct.h"

#define SPORTS (65536 - 1024)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct pf_ct_entry *v = NULL;
	struct pf_addr src, dst;
	struct pf_ct *ct = NULL;
	unsigned long count, dport;
	uint8_t proto = IPPROTO_TCP;
	char *end;
	double t0;
	int r;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: %s COUNT SRC DST DPORT [tcp|udp]\n", argv[0]);
		return 2;
	}
	count = strtoul(argv[1], &end, 10);
	if (*end || count == 0 || count > 4000000) {
		fprintf(stderr, "bad COUNT %s\n", argv[1]);
		return 2;
	}
	dport = strtoul(argv[4], &end, 10);
	if (*end || dport == 0 || dport + (count - 1) / SPORTS > 65535) {
		fprintf(stderr, "bad DPORT %s for %lu entries\n", argv[4], count);
		return 2;
	}
	if (pf_addr_parse(argv[2], &src) < 0 || pf_addr_parse(argv[3], &dst) < 0 || src.family != dst.family) {
		fprintf(stderr, "bad SRC/DST %s %s\n", argv[2], argv[3]);
		return 2;
	}
	if (argc == 6 && strcmp(argv[5], "udp") == 0)
		proto = IPPROTO_UDP;
	else if (argc == 6 && strcmp(argv[5], "tcp") != 0) {
		fprintf(stderr, "bad protocol %s\n", argv[5]);
		return 2;
	}
	if (!(v = calloc(count, sizeof(*v)))) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	for (unsigned long i = 0; i < count; i++) {
		struct pf_ct_entry *e = &v[i];

		e->orig.src = e->reply.dst = src;
		e->orig.dst = e->reply.src = dst;
		e->orig.proto = e->reply.proto = proto;
		e->orig.sport = e->reply.dport = (uint16_t)(1024 + i % SPORTS);
		e->orig.dport = e->reply.sport = (uint16_t)(dport + i / SPORTS);
	}
	if ((r = pf_ct_new(&ct)) < 0) {
		fprintf(stderr, "ctnetlink: %s\n", strerror(-r));
		free(v);
		return 1;
	}
	t0 = now_ms();
	r = pf_ct_create(ct, v, count, 3600);
	pf_ct_free(ct);
	free(v);
	if (r < 0) {
		fprintf(stderr, "creating entries: %s\n", strerror(-r));
		return 1;
	}
	printf("created=%d ms=%.0f\n", r, now_ms() - t0);
	return (unsigned long)r == count ? 0 : 1;
}
