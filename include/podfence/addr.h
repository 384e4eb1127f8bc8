/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_ADDR_H
#define PODFENCE_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An IPv4 or IPv6 address. IPv4 lives in bytes[0..3]; the rest is zero.
 * Plain data: compare with pf_addr_cmp, copy by assignment. */
struct pf_addr {
	uint8_t family; /* 4 or 6; 0 = unset */
	uint8_t bytes[16];
};

/* A prefix. Host bits are always zero (parsing masks them, as Kubernetes
 * grandfathers non-canonical CIDRs such as "10.244.1.7/4"). */
struct pf_cidr {
	struct pf_addr addr;
	uint8_t prefix; /* 0..32 or 0..128 */
};

#define PF_ADDR_STRLEN 46  /* INET6_ADDRSTRLEN */
#define PF_CIDR_STRLEN 50

static inline size_t pf_addr_len(const struct pf_addr *a)
{
	return a->family == 4 ? 4 : 16;
}

/* "10.1.2.3" or "fd00::3". Returns 0 or -EINVAL. */
int pf_addr_parse(const char *s, struct pf_addr *ret);
/* "10.0.0.0/8"; a bare address is a /32 or /128. Host bits are masked.
 * Returns 0, or -EINVAL for a malformed string or out-of-range prefix. */
int pf_cidr_parse(const char *s, struct pf_cidr *ret);
/* Formats into buf (PF_ADDR_STRLEN / PF_CIDR_STRLEN bytes). Returns buf. */
char *pf_addr_format(const struct pf_addr *a, char *buf);
char *pf_cidr_format(const struct pf_cidr *c, char *buf);

/* Total order: family first, then bytes (network order). */
int pf_addr_cmp(const struct pf_addr *a, const struct pf_addr *b);
bool pf_cidr_contains(const struct pf_cidr *c, const struct pf_addr *a);
/* inner lies fully inside outer (same family, prefix >= outer's). */
bool pf_cidr_covers(const struct pf_cidr *outer, const struct pf_cidr *inner);
/* First and last address of a prefix. */
void pf_cidr_first(const struct pf_cidr *c, struct pf_addr *ret);
void pf_cidr_last(const struct pf_cidr *c, struct pf_addr *ret);
/* a+1 / a-1 within the family; return false on wrap-around. */
bool pf_addr_inc(struct pf_addr *a);
bool pf_addr_dec(struct pf_addr *a);

#endif
