// SPDX-License-Identifier: Apache-2.0
/* Rendering of the live matrix: observed beside expected. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/matrix_table.h"

size_t pf_mx_mismatches(const struct pf_mx *m)
{
	size_t n = 0, cells = m->n_ports * m->n_rows * m->n_cols;

	for (size_t i = 0; i < cells; i++)
		n += pf_mx_mismatch(m, i) ? 1 : 0;
	return n;
}

static int digits(size_t n)
{
	int d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/* One grid row: each cell in a column as wide as the largest server number
 * plus one, the observed cell followed by '!' when it contradicts. Returns
 * the length written to line (at most n_cols * (w + 1)). */
static size_t grid_row(const struct pf_mx *m, size_t port, size_t row, const char *cells, int w, char *line)
{
	size_t n = 0;

	for (size_t c = 0; c < m->n_cols; c++) {
		size_t i = pf_mx_at(m, port, row, c);

		line[n] = cells[i];
		line[n + 1] = cells == m->observed && pf_mx_mismatch(m, i) ? '!' : ' ';
		memset(line + n + 2, ' ', (size_t)w - 1);
		n += (size_t)w + 1;
	}
	return n;
}

int pf_mx_print(const struct pf_mx *m, FILE *out)
{
	int w = digits(m->n_cols) + 1, kw = 1, gw = (int)m->n_cols * (w + 1);
	char *line = malloc(2 * (size_t)gw + 4);

	if (!line)
		return -ENOMEM;
	for (size_t r = 0; r < m->n_rows; r++)
		if ((int)strlen(m->rows[r]) > kw)
			kw = (int)strlen(m->rows[r]);
	for (size_t p = 0; p < m->n_ports; p++) {
		size_t bad = 0;

		for (size_t i = pf_mx_at(m, p, 0, 0); i < pf_mx_at(m, p + 1, 0, 0); i++)
			bad += pf_mx_mismatch(m, i) ? 1 : 0;
		fprintf(out, "%s%u/%s from node %s (rows: clients, columns: servers; '.' allowed, 'X' denied, '?' unknown)",
			p ? "\n" : "", m->ports[p].port, m->ports[p].proto, m->node);
		if (bad)
			fprintf(out, ": %zu mismatch%s marked '!'", bad, bad == 1 ? "" : "es");
		fputc('\n', out);
		fprintf(out, "%-*s   %-*s   %s\n", kw, "", gw, "observed", "expected");
		fprintf(out, "%-*s  ", kw, "");
		for (int g = 0; g < 2; g++) {
			fputc(' ', out);
			for (size_t c = 0; c < m->n_cols; c++) {
				if (g && c + 1 == m->n_cols)
					fprintf(out, "%zu", c + 1);
				else
					fprintf(out, "%-*zu ", w, c + 1);
			}
			if (!g)
				fputs("  ", out);
		}
		fputc('\n', out);
		for (size_t r = 0; r < m->n_rows; r++) {
			size_t n = grid_row(m, p, r, m->observed, w, line);

			memcpy(line + n, "   ", 3);
			n = n + 3 + grid_row(m, p, r, m->expected, w, line + n + 3);
			while (n && line[n - 1] == ' ')
				n--;
			fprintf(out, "%-*s   %.*s\n", kw, m->rows[r], (int)n, line);
		}
	}
	fputs("servers:", out);
	for (size_t c = 0; c < m->n_cols; c++)
		fprintf(out, "%s %zu %s", c ? "," : "", c + 1, m->cols[c]);
	fputc('\n', out);
	free(line);
	return ferror(out) ? -EIO : 0;
}

static json_t *rows_json(const struct pf_mx *m, size_t port, const char *cells)
{
	json_t *a = json_array();
	char *line = malloc(m->n_cols + 1);

	for (size_t r = 0; a && line && r < m->n_rows; r++) {
		memcpy(line, cells + pf_mx_at(m, port, r, 0), m->n_cols);
		line[m->n_cols] = '\0';
		json_array_append_new(a, json_string(line));
	}
	free(line);
	return a;
}

static json_t *names_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *pf_mx_json(const struct pf_mx *m)
{
	json_t *tables = json_array();

	for (size_t p = 0; tables && p < m->n_ports; p++) {
		size_t bad = 0;

		for (size_t i = pf_mx_at(m, p, 0, 0); i < pf_mx_at(m, p + 1, 0, 0); i++)
			bad += pf_mx_mismatch(m, i) ? 1 : 0;
		json_array_append_new(tables, json_pack("{s:i,s:s,s:o,s:o,s:I}", "port", m->ports[p].port, "protocol",
							m->ports[p].proto, "observed", rows_json(m, p, m->observed),
							"expected", rows_json(m, p, m->expected), "mismatches",
							(json_int_t)bad));
	}
	return json_pack("{s:s,s:o,s:o,s:o,s:I}", "node", m->node, "clients", names_json(m->rows, m->n_rows), "servers",
			 names_json(m->cols, m->n_cols), "tables", tables, "mismatches", (json_int_t)pf_mx_mismatches(m));
}
