/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_TESTS_KUBE_FIXTURE_H
#define PODFENCE_TESTS_KUBE_FIXTURE_H

/* Runs tests/fixtures/apiserver.py as a child process on a free loopback
 * port and talks to its admin API. The child gets SIGKILL if the test
 * process dies (PR_SET_PDEATHSIG), so a failed assertion leaves nothing. */

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

struct fixture {
	pid_t pid;
	int port;
	char url[128];   /* http(s)://127.0.0.1:PORT */
	char admin[128]; /* always the same as url; admin calls skip TLS verification */
	bool tls;
};

/* argv: extra arguments for apiserver.py, NULL-terminated. port 0 = free port.
 * Returns 0 or -errno. */
int fixture_start(struct fixture *f, int port, const char *const *argv);
/* SIGTERM (the fixture saves its --data file), then wait. */
void fixture_stop(struct fixture *f);
/* Admin/REST call: returns the HTTP status (or -errno); *ret (may be NULL) gets the JSON body. */
long fixture_call(const struct fixture *f, const char *method, const char *path, const char *body, json_t **ret);
/* Convenience: POST, asserts 2xx. */
void fixture_post(const struct fixture *f, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* GET /_admin/stats -> requests["verb:res"] */
long fixture_count(const struct fixture *f, const char *what);
long fixture_rv(const struct fixture *f);

/* A fresh temporary directory (mkdtemp), removed recursively by tmpdir_rm. */
int tmpdir_make(char *buf, size_t size);
void tmpdir_rm(const char *dir);
int write_file(const char *path, const char *text);

#endif
