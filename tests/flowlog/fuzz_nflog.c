// SPDX-License-Identifier: Apache-2.0
/* Fuzz harness for the NFLOG message parser (controller/flowlog/packet.c):
 * the input is one netlink message as the kernel would deliver it; the
 * payload's IPv4/IPv6 and transport headers are parsed too, and the prefix
 * through the attribution key parser. Built as a libFuzzer target with
 * -DPODFENCE_FUZZ=ON (clang); every build replays the seed corpus through it
 * (tests/support/replay_main.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowlog/flowlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_flow_pkt p = { 0 };
	/* netlink messages are 4-byte aligned in the receive buffer */
	uint8_t *copy = malloc(size ? size : 1);
	enum pf_flow_verdict v;
	uint32_t ch, rh;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (pf_flow_parse_nflog(copy, size, &p) == 0) {
		if (strlen(p.prefix) >= sizeof(p.prefix))
			abort();
		(void)pf_flow_prefix_parse(p.prefix, &v, &ch, &rh);
	}
	(void)pf_flow_parse_l3(copy, size, &p);
	free(copy);
	return 0;
}
