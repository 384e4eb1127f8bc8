/* SPDX-License-Identifier: Apache-2.0 */
#ifndef PODFENCE_CTL_H
#define PODFENCE_CTL_H

/* podfencectl's offline commands (no daemon, no socket). */

extern const char pf_ctl_simulate_usage[];
extern const char pf_ctl_lint_usage[];

/* argv[0] is "simulate". Returns the exit code: 0 ok, 1 an expectation
 * failed, 2 bad usage or input. */
int pf_ctl_simulate(int argc, char **argv);
/* argv[0] is "lint". Returns the exit code: 0 no finding at or above
 * --fail-on, 1 some, 2 bad usage or input. */
int pf_ctl_lint(int argc, char **argv);

#endif
