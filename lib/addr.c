// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podfence/addr.h"

int pf_addr_parse(const char *s, struct pf_addr *ret)
{
	struct pf_addr a = {0};

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, a.bytes) == 1)
		a.family = 4;
	else if (inet_pton(AF_INET6, s, a.bytes) == 1)
		a.family = 6;
	else
		return -EINVAL;
	*ret = a;
	return 0;
}

static void mask_host_bits(struct pf_cidr *c)
{
	size_t len = pf_addr_len(&c->addr);

	for (size_t i = 0; i < len; i++) {
		int bits = (int)c->prefix - (int)(i * 8);
		if (bits >= 8)
			continue;
		c->addr.bytes[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

int pf_cidr_parse(const char *s, struct pf_cidr *ret)
{
	char buf[PF_CIDR_STRLEN + 1];
	struct pf_cidr c = {0};
	const char *slash;
	size_t n;
	int r;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	r = pf_addr_parse(buf, &c.addr);
	if (r < 0)
		return r;
	if (slash) {
		char *end;
		long p;

		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (errno || *end || p < 0 || p > (c.addr.family == 4 ? 32 : 128))
			return -EINVAL;
		c.prefix = (uint8_t)p;
	} else {
		c.prefix = c.addr.family == 4 ? 32 : 128;
	}
	mask_host_bits(&c);
	*ret = c;
	return 0;
}

char *pf_addr_format(const struct pf_addr *a, char *buf)
{
	if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->bytes, buf, PF_ADDR_STRLEN))
		strcpy(buf, "?");
	return buf;
}

char *pf_cidr_format(const struct pf_cidr *c, char *buf)
{
	char a[PF_ADDR_STRLEN];

	snprintf(buf, PF_CIDR_STRLEN, "%s/%u", pf_addr_format(&c->addr, a), c->prefix);
	return buf;
}

int pf_addr_cmp(const struct pf_addr *a, const struct pf_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, 16);
}

bool pf_cidr_contains(const struct pf_cidr *c, const struct pf_addr *a)
{
	struct pf_cidr probe;

	if (c->addr.family != a->family)
		return false;
	probe.addr = *a;
	probe.prefix = c->prefix;
	mask_host_bits(&probe);
	return memcmp(probe.addr.bytes, c->addr.bytes, 16) == 0;
}

bool pf_cidr_covers(const struct pf_cidr *outer, const struct pf_cidr *inner)
{
	return inner->addr.family == outer->addr.family && inner->prefix >= outer->prefix &&
	       pf_cidr_contains(outer, &inner->addr);
}

void pf_cidr_first(const struct pf_cidr *c, struct pf_addr *ret)
{
	*ret = c->addr;
}

void pf_cidr_last(const struct pf_cidr *c, struct pf_addr *ret)
{
	struct pf_addr a = c->addr;
	size_t len = pf_addr_len(&a);

	for (size_t i = 0; i < len; i++) {
		int bits = (int)c->prefix - (int)(i * 8);
		if (bits >= 8)
			continue;
		a.bytes[i] |= bits <= 0 ? 0xff : (uint8_t)(0xff >> bits);
	}
	*ret = a;
}

bool pf_addr_inc(struct pf_addr *a)
{
	for (size_t i = pf_addr_len(a); i-- > 0;) {
		if (++a->bytes[i] != 0)
			return true;
	}
	return false;
}

bool pf_addr_dec(struct pf_addr *a)
{
	for (size_t i = pf_addr_len(a); i-- > 0;) {
		if (a->bytes[i]-- != 0)
			return true;
	}
	return false;
}
