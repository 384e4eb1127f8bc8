// SPDX-License-Identifier: Apache-2.0
/* Realization status of NetworkPolicies on this node: which policies select
 * local pods, at which generation they reached the kernel, what could not be
 * programmed. Kubernetes has no status for v1 NetworkPolicy, so the answer
 * goes out as Events on the policy (aggregated: failures, and the first
 * success per policy generation on this node), through the `policies`
 * socket operation and as metrics.
 *
 * One entry per policy the source delivered (accepted or rejected), sorted
 * by "ns/name". Which of them select local pods is worked out from the
 * compiler's plan (its pods) and the model (the policies isolating each),
 * at the end of every sync and on every query: local pods are few. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/daemon-internal.h"
#include "podfence/log.h"

/* The kernel's SCTP support is looked at again after this long: the module
 * may be loaded later. */
#define SCTP_RECHECK_MS 60000

struct pol_entry {
	char *key; /* "ns/name" (sorted on) */
	char *ns, *name, *uid;
	int64_t generation;          /* metadata.generation of the latest version delivered */
	int64_t accepted_generation; /* ... of the version the model holds; -1: none */
	bool rejected;               /* the latest version was refused by the decoder */
	char *rejected_error;
	uint64_t want_plan_gen;      /* the plan generation holding the accepted version */
	int64_t pending_since_ns;    /* 0: the accepted version is in the kernel */
	uint64_t programmed_plan_gen;  /* valid once programmed */
	int64_t programmed_generation; /* -1: never programmed */
	char *failed_error;          /* the sync carrying its change failed; NULL: none */
	char *sctp_rules;            /* rules with SCTP ports ("ingress[0].ports[1] 5000/SCTP"), or NULL */
	/* worked out from the plan at each sync end and query */
	size_t n_local;     /* local pods it isolates */
	size_t last_pod;    /* pod index + 1 last counted, so a pod counts once */
	bool ns_local;      /* its namespace holds a local pod */
	/* Events already posted, by generation (-1: none) */
	int64_t ev_programmed, ev_rejected, ev_unsupported, ev_failed;
	char *ev_failed_error;
};

struct pf_polstat {
	size_t n, cap;
	struct pol_entry *v;
	int sctp; /* -1: not looked at yet */
	int64_t sctp_checked_ms;
};

enum pol_state { ST_PROGRAMMED, ST_PENDING, ST_REJECTED, ST_FAILED, ST_UNSUPPORTED, ST_MAX };

static const char *const state_names[ST_MAX] = {"programmed", "pending", "rejected", "failed", "unsupported"};

static void entry_done(struct pol_entry *e)
{
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e->uid);
	free(e->rejected_error);
	free(e->failed_error);
	free(e->sctp_rules);
	free(e->ev_failed_error);
}

void pf_daemon_polstat_free(struct pf_daemon *d)
{
	struct pf_polstat *ps = d->polstat;

	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		entry_done(&ps->v[i]);
	free(ps->v);
	free(ps);
	d->polstat = NULL;
}

static int set_str(char **slot, const char *s)
{
	char *c = NULL;

	if (s && !(c = strdup(s)))
		return -ENOMEM;
	free(*slot);
	*slot = c;
	return 0;
}

static struct pol_entry *entry_find(struct pf_polstat *ps, const char *key)
{
	bool found;
	size_t i;

	if (!ps)
		return NULL;
	i = pf_ir_name_search(ps->v, ps->n, sizeof(*ps->v), offsetof(struct pol_entry, key), key, &found);
	return found ? &ps->v[i] : NULL;
}

/* The entry of ns/name, created if new. Pointers into the array last until
 * the next insertion or removal. NULL: out of memory. */
static struct pol_entry *entry_get(struct pf_daemon *d, const char *ns, const char *name)
{
	struct pf_polstat *ps = d->polstat;
	struct pol_entry e = {0}, *v;
	char key[320];
	bool found;
	size_t i;

	if (!ps) {
		if (!(ps = calloc(1, sizeof(*ps))))
			return NULL;
		ps->sctp = -1;
		d->polstat = ps;
	}
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	i = pf_ir_name_search(ps->v, ps->n, sizeof(*ps->v), offsetof(struct pol_entry, key), key, &found);
	if (found)
		return &ps->v[i];
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 16;

		if (!(v = realloc(ps->v, cap * sizeof(*v))))
			return NULL;
		ps->v = v;
		ps->cap = cap;
	}
	e.key = strdup(key);
	e.ns = strdup(ns);
	e.name = strdup(name);
	if (!e.key || !e.ns || !e.name) {
		entry_done(&e);
		return NULL;
	}
	e.accepted_generation = e.programmed_generation = -1;
	e.ev_programmed = e.ev_rejected = e.ev_unsupported = e.ev_failed = -1;
	memmove(ps->v + i + 1, ps->v + i, (ps->n - i) * sizeof(*ps->v));
	ps->v[i] = e;
	ps->n++;
	return &ps->v[i];
}

static void entry_del(struct pf_polstat *ps, const char *key)
{
	struct pol_entry *e = entry_find(ps, key);
	size_t i;

	if (!e)
		return;
	i = (size_t)(e - ps->v);
	entry_done(e);
	memmove(ps->v + i, ps->v + i + 1, (ps->n - i - 1) * sizeof(*ps->v));
	ps->n--;
}

/* ---- SCTP on this kernel */

static bool file_has(const char *path, const char *needle)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* Pods can carry SCTP only if the kernel has the protocol: loaded or built
 * in (/proc/net/protocols, /sys/module/sctp), or a module the first SCTP
 * socket would load (modules.dep, where the host's /lib/modules is
 * visible). Conntrack's SCTP support alone does not make an SCTP socket. */
static bool sctp_supported(struct pf_polstat *ps)
{
	int64_t now = pf_now_ms();
	char path[300], rel[128] = "";
	FILE *f;

	if (ps->sctp >= 0 && now - ps->sctp_checked_ms < SCTP_RECHECK_MS)
		return ps->sctp;
	ps->sctp = file_has("/proc/net/protocols", "SCTP") || access("/sys/module/sctp", F_OK) == 0;
	if (!ps->sctp && (f = fopen("/proc/sys/kernel/osrelease", "re"))) {
		if (fgets(rel, sizeof(rel), f))
			rel[strcspn(rel, "\n")] = '\0';
		fclose(f);
		snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", rel);
		ps->sctp = *rel && file_has(path, "/sctp.ko");
	}
	ps->sctp_checked_ms = now;
	return ps->sctp;
}

/* The rules of pol that name SCTP ports, as text; NULL when none. */
static char *sctp_rules_text(const struct pf_policy *pol)
{
	struct pf_text t = {0};
	bool any = false;

	for (int dir = 0; pol && dir < 2; dir++) {
		const struct pf_rule *rules = dir ? pol->egress : pol->ingress;
		size_t n = dir ? pol->n_egress : pol->n_ingress;

		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < rules[i].n_ports; j++) {
				const struct pf_port *p = &rules[i].ports[j];
				char port[80] = "every port";

				if (p->proto != PF_PROTO_SCTP)
					continue;
				if (p->name)
					snprintf(port, sizeof(port), "port %s", p->name);
				else if (p->has_port && p->end_port)
					snprintf(port, sizeof(port), "ports %u-%u", p->port, p->end_port);
				else if (p->has_port)
					snprintf(port, sizeof(port), "port %u", p->port);
				pf_text_printf(&t, "%s%s[%zu].ports[%zu] (SCTP %s)", any ? ", " : "", dir ? "egress" : "ingress",
					       i, j, port);
				any = true;
			}
		}
	}
	if (!any) {
		free(pf_text_take(&t));
		return NULL;
	}
	return pf_text_take(&t);
}

/* ---- which policies select local pods */

struct mark_ctx {
	struct pf_polstat *ps;
	size_t pod;          /* index + 1 */
	const char *pod_key;
	json_t *pods_by_key; /* optional: "ns/name" -> [pod keys] */
};

static int mark_policy(const struct pf_policy *pol, void *ud)
{
	struct mark_ctx *c = ud;
	char key[320];
	struct pol_entry *e;

	snprintf(key, sizeof(key), "%s/%s", pol->ns, pol->name);
	e = entry_find(c->ps, key);
	if (!e || e->last_pod == c->pod)
		return 0;
	e->last_pod = c->pod;
	e->n_local++;
	if (c->pods_by_key) {
		json_t *a = json_object_get(c->pods_by_key, key);

		if (!a && json_object_set_new(c->pods_by_key, key, a = json_array()) < 0)
			return 0;
		json_array_append_new(a, json_string(c->pod_key));
	}
	return 0;
}

/* The entries of namespace ns: a range of the array, sorted by "ns/name". */
static void mark_ns(struct pf_polstat *ps, const char *ns)
{
	char prefix[260];
	size_t len, i;
	bool found;

	len = (size_t)snprintf(prefix, sizeof(prefix), "%s/", ns);
	i = pf_ir_name_search(ps->v, ps->n, sizeof(*ps->v), offsetof(struct pol_entry, key), prefix, &found);
	for (; i < ps->n && strncmp(ps->v[i].key, prefix, len) == 0; i++)
		ps->v[i].ns_local = true;
}

/* Counts, for every entry, the pods of the compiler's plan it isolates
 * (pods_by_key, when given, gets their names). */
static void mark_local(struct pf_daemon *d, json_t *pods_by_key)
{
	const struct pf_ir_plan *plan = pf_compiler_plan(d->compiler);
	struct mark_ctx c = {.ps = d->polstat, .pods_by_key = pods_by_key};

	for (size_t i = 0; i < c.ps->n; i++) {
		c.ps->v[i].n_local = 0;
		c.ps->v[i].last_pod = 0;
		c.ps->v[i].ns_local = false;
	}
	for (size_t i = 0; i < plan->n_pods; i++) {
		const char *key = plan->pods[i].key, *slash = strchr(key, '/');
		char ns[256];
		const struct pf_pod *pod;

		if (!slash || (size_t)(slash - key) >= sizeof(ns))
			continue;
		memcpy(ns, key, (size_t)(slash - key));
		ns[slash - key] = '\0';
		mark_ns(c.ps, ns);
		pod = pf_model_pod(d->model, ns, slash + 1);
		if (!pod)
			continue;
		c.pod = i + 1;
		c.pod_key = key;
		/* staged policies too: they judge (log) the pods they select */
		pf_model_each_judging_policy(d->model, pod, false, mark_policy, &c);
		pf_model_each_judging_policy(d->model, pod, true, mark_policy, &c);
	}
}

/* "audit" for a staged policy or one in an audit namespace, else "enforce". */
static const char *policy_mode(struct pf_daemon *d, const char *ns, const char *name)
{
	const struct pf_policy *p = pf_model_policy(d->model, ns, name);
	const struct pf_namespace *n = pf_model_namespace(d->model, ns);

	return (p && p->staged) || (n && n->audit) ? "audit" : "enforce";
}

/* This node has something to say about e: it isolates local pods, or it
 * was refused and its namespace has pods here. */
static bool relevant(const struct pol_entry *e)
{
	return e->n_local > 0 || (e->rejected && e->ns_local);
}

static enum pol_state entry_state(struct pf_polstat *ps, const struct pol_entry *e)
{
	if (e->rejected)
		return ST_REJECTED;
	if (e->pending_since_ns && e->failed_error)
		return ST_FAILED;
	if (e->pending_since_ns)
		return ST_PENDING;
	if (e->sctp_rules && !sctp_supported(ps))
		return ST_UNSUPPORTED;
	return ST_PROGRAMMED;
}

/* ---- Events */

static void post(struct pf_daemon *d, const struct pol_entry *e, const char *type, const char *reason,
		 const char *action, int64_t gen, const char *extra_key, const char *note)
{
	char dedup[300];
	struct pf_kube_event ev = {
		.type = type, .reason = reason, .action = action, .note = note, .kind = "NetworkPolicy",
		.api_version = "networking.k8s.io/v1", .namespace_ = e->ns, .name = e->name, .uid = e->uid,
		.dedup_key = dedup,
	};

	/* The client merges Events of one object and reason for 5 minutes; a
	 * new generation (or a new failure) is news. */
	snprintf(dedup, sizeof(dedup), "g%lld/%.200s", (long long)gen, extra_key ? extra_key : "");
	pf_daemon_post_kube_event(d, &ev);
}

/* Posts what is due for e: each kind of Event at most once per policy
 * generation on this node (a failure again when its reason changes). */
static void report(struct pf_daemon *d, struct pol_entry *e)
{
	const char *dry = d->cfg.dry_run ? " (dry run: the kernel is untouched)" : "";
	char note[1024];

	if (!d->kube || !relevant(e))
		return;
	if (e->rejected && e->ev_rejected != e->generation) {
		snprintf(note, sizeof(note), "node %s: policy refused: %s; %s", d->node_name,
			 e->rejected_error ? e->rejected_error : "?",
			 e->accepted_generation >= 0 ? "the previous version stays in force" : "nothing of it is enforced");
		post(d, e, "Warning", "Rejected", "Validate", e->generation, NULL, note);
		e->ev_rejected = e->generation;
	}
	if (e->n_local == 0 || e->pending_since_ns)
		return;
	if (e->ev_programmed != e->programmed_generation) {
		snprintf(note, sizeof(note),
			 "node %s: the policy's rules for %zu local pod%s reached the kernel at plan generation %llu "
			 "(policy generation %lld)%s",
			 d->node_name, e->n_local, e->n_local == 1 ? "" : "s", (unsigned long long)e->programmed_plan_gen,
			 (long long)e->programmed_generation, dry);
		post(d, e, "Normal", "Programmed", "Program", e->programmed_generation, NULL, note);
		e->ev_programmed = e->programmed_generation;
	}
	if (e->sctp_rules && e->ev_unsupported != e->programmed_generation && !sctp_supported(d->polstat)) {
		snprintf(note, sizeof(note),
			 "node %s: this kernel has no SCTP (not in /proc/net/protocols, no sctp module): %.700s cannot "
			 "carry traffic here; the rest of the policy is enforced",
			 d->node_name, e->sctp_rules);
		post(d, e, "Warning", "PartiallyUnsupported", "Program", e->programmed_generation, NULL, note);
		e->ev_unsupported = e->programmed_generation;
	}
}

/* ---- hooks */

static int64_t meta_generation(json_t *meta, int64_t prev)
{
	json_t *g = json_object_get(meta, "generation");

	/* Sources without a generation (manifests): count the versions. */
	return json_is_integer(g) ? (int64_t)json_integer_value(g) : prev + 1;
}

void pf_daemon_policy_seen(struct pf_daemon *d, const char *type, json_t *obj, bool changed)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	struct pol_entry *e;
	char key[320];

	if (!ns || !name)
		return;
	if (type && strcmp(type, "DELETED") == 0) {
		snprintf(key, sizeof(key), "%s/%s", ns, name);
		entry_del(d->polstat, key);
		return;
	}
	if (!(e = entry_get(d, ns, name))) {
		pf_warn("policy status not tracked", "policy=%s/%s error=\"out of memory\"", ns, name);
		return;
	}
	e->generation = meta_generation(meta, e->generation);
	if (set_str(&e->uid, json_string_value(json_object_get(meta, "uid"))) < 0)
		pf_debug("policy uid not kept", "policy=%s/%s", ns, name);
	e->rejected = false;
	set_str(&e->rejected_error, NULL);
	free(e->sctp_rules);
	e->sctp_rules = sctp_rules_text(pf_model_policy(d->model, ns, name));
	e->accepted_generation = e->generation;
	if (changed) {
		/* The compiler has it (notified before this call): the sync of
		 * this plan generation or a later one programs it. */
		e->want_plan_gen = pf_compiler_plan(d->compiler)->generation;
		if (!e->pending_since_ns)
			e->pending_since_ns = pf_now_ns();
		return;
	}
	/* Nothing the kernel holds changed: the new generation is in force as
	 * soon as the old one is. */
	if (!e->pending_since_ns && e->programmed_generation >= 0) {
		e->programmed_generation = e->generation;
		if (d->ready) {
			mark_local(d, NULL);
			report(d, e);
		}
	}
}

void pf_daemon_policy_rejected(struct pf_daemon *d, json_t *obj, const char *err)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	struct pol_entry *e;

	if (!ns || !name || !(e = entry_get(d, ns, name)))
		return;
	e->generation = meta_generation(meta, e->generation);
	if (set_str(&e->uid, json_string_value(json_object_get(meta, "uid"))) < 0 ||
	    set_str(&e->rejected_error, err) < 0)
		pf_debug("policy status incomplete", "policy=%s/%s error=\"out of memory\"", ns, name);
	e->rejected = true;
	if (!d->ready)
		return; /* the first sync's end reports it */
	mark_local(d, NULL);
	report(d, entry_find(d->polstat, e->key));
}

void pf_daemon_policies_synced(struct pf_daemon *d, uint64_t plan_gen, int r)
{
	struct pf_polstat *ps = d->polstat;

	if (!ps)
		return;
	mark_local(d, NULL);
	for (size_t i = 0; i < ps->n; i++) {
		struct pol_entry *e = &ps->v[i];
		char note[1024];

		if (r >= 0) {
			if (e->pending_since_ns && plan_gen >= e->want_plan_gen) {
				e->pending_since_ns = 0;
				e->programmed_plan_gen = plan_gen;
				e->programmed_generation = e->accepted_generation;
				if (e->failed_error) {
					/* In force after a failure: news even at the same generation. */
					e->ev_programmed = -1;
					set_str(&e->failed_error, NULL);
				}
			}
			report(d, e);
			continue;
		}
		if (!e->pending_since_ns || !relevant(e))
			continue;
		set_str(&e->failed_error, d->last_error);
		if (!d->kube || (e->ev_failed == e->accepted_generation && e->ev_failed_error &&
				 strcmp(e->ev_failed_error, d->last_error) == 0))
			continue; /* the same failure retried: said once */
		snprintf(note, sizeof(note),
			 "node %s: programming the policy's rules for %zu local pod%s failed (policy generation %lld): %.800s",
			 d->node_name, e->n_local, e->n_local == 1 ? "" : "s", (long long)e->accepted_generation,
			 d->last_error);
		post(d, e, "Warning", "Failed", "Program", e->accepted_generation, d->last_error, note);
		e->ev_failed = e->accepted_generation;
		set_str(&e->ev_failed_error, d->last_error);
	}
}

/* ---- the `policies` operation and the metrics */

void pf_daemon_op_policies(struct pf_daemon *d, uint64_t conn, const struct pf_req *q)
{
	struct pf_polstat *ps = d->polstat;
	json_t *out = json_array(), *pods_by_key = json_object();

	if (!out || !pods_by_key)
		goto done;
	if (ps)
		mark_local(d, pods_by_key);
	for (size_t i = 0; ps && i < ps->n; i++) {
		struct pol_entry *e = &ps->v[i];
		enum pol_state st = entry_state(ps, e);
		json_t *pods = json_object_get(pods_by_key, e->key), *errors, *p;

		if (!relevant(e) || (q->ns && strcmp(q->ns, e->ns) != 0))
			continue;
		errors = json_array();
		if (e->rejected)
			json_array_append_new(errors, json_sprintf("rejected: %s", e->rejected_error ? e->rejected_error : "?"));
		if (e->failed_error && e->pending_since_ns)
			json_array_append_new(errors, json_sprintf("kernel: %s", e->failed_error));
		if (e->sctp_rules && !sctp_supported(ps))
			json_array_append_new(errors, json_sprintf("unsupported: this kernel has no SCTP: %s", e->sctp_rules));
		p = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:I,s:o,s:o,s:o,s:o}", "namespace", e->ns, "name", e->name, "uid",
			      e->uid, "mode", policy_mode(d, e->ns, e->name), "state", state_names[st], "generation", (json_int_t)e->generation,
			      "programmedGeneration",
			      e->programmed_generation >= 0 ? json_integer(e->programmed_generation) : json_null(),
			      "programmedPlanGeneration",
			      e->programmed_generation >= 0 ? json_integer((json_int_t)e->programmed_plan_gen) : json_null(), "pods",
			      pods ? json_incref(pods) : json_array(), "errors", errors);
		if (p && e->pending_since_ns)
			json_object_set_new(p, "pendingSeconds",
					    json_real((double)(pf_now_ns() - e->pending_since_ns) / 1e9));
		json_array_append_new(out, p);
	}
done:
	json_decref(pods_by_key);
	pf_daemon_reply(d, conn, out ? json_pack("{s:o,s:I}", "policies", out, "programmedGeneration",
						 (json_int_t)d->programmed_gen)
				     : NULL);
}

void pf_daemon_policies_metrics(struct pf_daemon *d, struct pf_text *t)
{
	struct pf_polstat *ps = d->polstat;
	size_t counts[ST_MAX] = {0};
	int64_t oldest = d->n_stamps ? d->event_stamps[0] : 0;
	char lbl[40];

	if (ps) {
		mark_local(d, NULL);
		for (size_t i = 0; i < ps->n; i++) {
			const struct pol_entry *e = &ps->v[i];

			if (e->pending_since_ns && (!oldest || e->pending_since_ns < oldest))
				oldest = e->pending_since_ns;
			if (relevant(e))
				counts[entry_state(ps, e)]++;
		}
	}
	pf_metric_header(t, "podfence_policies", "gauge",
			 "NetworkPolicies that select pods on this node (or were refused in a namespace with pods here), by state.");
	for (int s = 0; s < ST_MAX; s++) {
		snprintf(lbl, sizeof(lbl), "state=\"%s\"", state_names[s]);
		pf_metric_sample(t, "podfence_policies", lbl, (double)counts[s]);
	}
	pf_metric_header(t, "podfence_oldest_unprogrammed_change_seconds", "gauge",
			 "Age of the oldest change not yet in the kernel; 0 when none.");
	pf_metric_sample(t, "podfence_oldest_unprogrammed_change_seconds", NULL,
			 oldest ? (double)(pf_now_ns() - oldest) / 1e9 : 0.0);
}
