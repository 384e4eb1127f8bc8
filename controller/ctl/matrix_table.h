/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CTL_MATRIX_TABLE_H
#define PODFENCE_CTL_MATRIX_TABLE_H

/* The live matrix's tables, observed beside expected, as text or JSON. Pure
 * (stdio, jansson): `podfencectl matrix` fills it, tests render it. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Cell marks, the upstream e2e's notation plus '?'. */
#define PF_MX_ALLOWED '.'
#define PF_MX_DENIED 'X'
#define PF_MX_SELF '-'
#define PF_MX_UNKNOWN '?' /* not probed (UDP without a declared server, no shared family) or the probe failed */

struct pf_mx_port {
	uint16_t port;
	const char *proto; /* "TCP", "UDP", "SCTP" */
};

/* rows: the clients probed from (local pods); cols: the servers. Cells are
 * [port][row][col] in observed and expected. */
struct pf_mx {
	const char *node;
	size_t n_rows, n_cols, n_ports;
	const char *const *rows;
	const char *const *cols;
	const struct pf_mx_port *ports;
	const char *observed;
	const char *expected;
};

static inline size_t pf_mx_at(const struct pf_mx *m, size_t port, size_t row, size_t col)
{
	return (port * m->n_rows + row) * m->n_cols + col;
}

/* A cell whose observation contradicts its expectation (unknown never does). */
static inline int pf_mx_mismatch(const struct pf_mx *m, size_t i)
{
	char o = m->observed[i], e = m->expected[i];

	return o != PF_MX_UNKNOWN && e != PF_MX_UNKNOWN && o != e;
}

/* One table per port: the observed grid, then the expected grid, a '!' after
 * each mismatching observed cell; servers are numbered under the grids. */
int pf_mx_print(const struct pf_mx *m, FILE *out);
/* {"node", "servers": [...], "clients": [...], "tables": [{port, protocol,
 *  observed: [row strings], expected: [...], mismatches: n}]} */
json_t *pf_mx_json(const struct pf_mx *m);
/* Number of mismatching cells. */
size_t pf_mx_mismatches(const struct pf_mx *m);

#endif
