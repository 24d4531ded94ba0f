/*
 * cmd_hsa.c - `intygsgw hsa lookup|check`: loads the configured extract, prints one unit's tag
 * with the chain that decided it, or every problem found plus per-region resolution counts.
 *
 * Owns: the struct hsa_dir it loads, freed before returning. Main thread of the CLI only.
 */
#include "cmd_hsa.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
        fprintf(stderr, "usage: intygsgw hsa lookup [-c FILE] HSA-ID [--provider VG-HSA-ID]\n"
                        "       intygsgw hsa check  [-c FILE]\n"
                        "hsa commands: lookup, check\n");
        return 2;
}

static const char *resolution_text(enum tag_resolution r)
{
        switch (r) {
        case TAG_MAPPING:
                return "the region-agreed mapping table names it";
        case TAG_LEVEL:
                return "the nearest unit (itself or above) at the follow-up level";
        case TAG_COARSER:
                return "no unit at the follow-up level: the nearest vårdenhet, coarser";
        case TAG_UNRESOLVED:
                break;
        }
        return "neither mapping, level nor vårdenhet: the unit itself, unresolved";
}

static struct hsa_dir *load(const struct hsa_opts *o, struct hsa_load_report *rep)
{
        char err[400];
        struct hsa_dir *d = hsa_dir_load(o, rep, err, sizeof err);
        if (!d)
                fprintf(stderr, "intygsgw hsa: %s\n", err);
        return d;
}

static const char *name_of(const struct hsa_dir *d, const char *id)
{
        struct hsa_unit_info u;
        if (id && *id && hsa_dir_find(d, id, &u))
                return u.name;
        return "";
}

static int do_lookup(const struct hsa_opts *o, const char *id, const char *provider, FILE *out)
{
        struct hsa_load_report rep;
        struct hsa_dir *d = load(o, &rep);
        if (!d)
                return 2;
        struct intyg_tags t;
        hsa_tag(d, id, provider, &t);
        struct hsa_unit_info u;
        bool known = hsa_dir_find(d, id, &u);
        fprintf(out, "unit          %s", t.unit_hsa);
        if (known)
                fprintf(out, "  %s  (%s line %lu)", u.name, o->ldif, u.line);
        fprintf(out, "\nin directory  %s\n", known ? "yes" : "no");
        if (known) {
                fprintf(out, "dn            %s\n", u.dn);
                fprintf(out, "kind          %s%s%s%s\n", u.is_provider ? "vårdgivare " : "",
                        u.is_care_unit ? "vårdenhet " : "",
                        u.at_level ? "at-follow-up-level" : "below-or-beside-the-level",
                        u.dangling ? " (parent entry missing)" : "");
                fprintf(out, "business      %s\n",
                        *u.business_classification ? u.business_classification : "-");
                fprintf(out, "care type     %s\n", *u.care_type ? u.care_type : "-");
                fprintf(out, "parent unit   %s  %s\n", *u.parent_hsa ? u.parent_hsa : "-",
                        name_of(d, u.parent_hsa));
                fprintf(out, "vårdenhet     %s  %s\n", *u.vardenhet_hsa ? u.vardenhet_hsa : "-",
                        name_of(d, u.vardenhet_hsa));
                fprintf(out, "organisation  %s%s%s%s\n", *u.organisation ? u.organisation : "-",
                        *u.organisation_hsa ? " (" : "", u.organisation_hsa,
                        *u.organisation_hsa ? ")" : "");
                fprintf(out, "valid         %s .. %s\n", *u.start_date ? u.start_date : "-",
                        *u.end_date ? u.end_date : "-");
        }
        const char *mapped = hsa_dir_mapping(d, id);
        if (mapped)
                fprintf(out, "mapping       %s  (%s)\n", mapped, o->mapping ? o->mapping : "");
        fprintf(out, "follow-up     %s  %s\n", t.followup_hsa, name_of(d, t.followup_hsa));
        fprintf(out, "resolution    %s: %s\n", tag_resolution_name(t.resolution),
                resolution_text(t.resolution));
        fprintf(out, "provider      %s  %s%s\n", *t.provider_hsa ? t.provider_hsa : "-",
                name_of(d, t.provider_hsa), known || mapped ? "" : "(not from the directory)");
        fprintf(out, "county        %s\n", *t.county ? t.county : "-");
        fprintf(out, "municipality  %s\n", *t.municipality ? t.municipality : "-");
        if (provider)
                fprintf(out, "mismatch      %s (intyg names %s)\n",
                        t.provider_mismatch ? "yes" : "no", provider);
        hsa_dir_free(d);
        return known ? 0 : 1;
}

struct region {
        const char *name, *id;
        size_t units, by_res[4];
};

struct check_ctx {
        FILE *out;
        size_t by_kind[HSA_PROBLEM_KINDS];
};

static void print_problem(void *ctx, const struct hsa_problem *p)
{
        struct check_ctx *c = ctx;
        c->by_kind[p->kind]++;
        fprintf(c->out, "  line %lu: %s: %s%s%s\n", p->line, hsa_problem_name(p->kind),
                *p->hsa_id ? p->hsa_id : "", *p->hsa_id ? ": " : "", p->detail);
}

static int do_check(const struct hsa_opts *o, FILE *out)
{
        struct hsa_load_report rep;
        struct hsa_dir *d = load(o, &rep);
        if (!d)
                return 2;
        fprintf(out, "extract   %s: %zu entries, %zu units, %zu skipped\n", o->ldif, rep.entries,
                rep.units, rep.skipped);
        if (o->mapping && *o->mapping)
                fprintf(out, "mapping   %s: %zu rows\n", o->mapping, rep.mappings);
        fprintf(out, "level     %s\n", o->level);
        struct check_ctx c = {.out = out};
        fprintf(out, "problems  %zu\n", rep.problems);
        size_t np = hsa_dir_problems(d, print_problem, &c);
        for (int k = 0; k < HSA_PROBLEM_KINDS; k++)
                if (c.by_kind[k])
                        fprintf(out, "  %-28s %zu\n", hsa_problem_name((enum hsa_problem_kind)k),
                                c.by_kind[k]);

        struct region *regions = NULL;
        size_t n_regions = 0, cap = 0;
        size_t n = hsa_dir_n_units(d);
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                struct hsa_unit_info u;
                if (!hsa_dir_unit(d, i, &u))
                        continue;
                size_t r = 0;
                while (r < n_regions && !(strcmp(regions[r].name, u.organisation) == 0 &&
                                          strcmp(regions[r].id, u.organisation_hsa) == 0))
                        r++;
                if (r == n_regions) {
                        if (n_regions == cap) {
                                size_t nc = cap ? cap * 2 : 8;
                                void *p = realloc(regions, nc * sizeof *regions);
                                if (!p) {
                                        fprintf(stderr, "intygsgw hsa: out of memory\n");
                                        rc = 2;
                                        goto done;
                                }
                                regions = p;
                                cap = nc;
                        }
                        memset(&regions[r], 0, sizeof regions[r]);
                        regions[r].name = u.organisation;
                        regions[r].id = u.organisation_hsa;
                        n_regions++;
                }
                regions[r].units++;
                regions[r].by_res[u.tags.resolution]++;
        }
        fprintf(out, "follow-up resolution per region (organisation):\n");
        fprintf(out, "  %-40s %7s %7s %7s %7s %10s\n", "region", "units", "mapping", "level",
                "coarser", "unresolved");
        for (size_t r = 0; r < n_regions; r++) {
                char label[64];
                snprintf(label, sizeof label, "%s", *regions[r].name ? regions[r].name : "(no o=)");
                fprintf(out, "  %-40s %7zu %7zu %7zu %7zu %10zu\n", label, regions[r].units,
                        regions[r].by_res[TAG_MAPPING], regions[r].by_res[TAG_LEVEL],
                        regions[r].by_res[TAG_COARSER], regions[r].by_res[TAG_UNRESOLVED]);
        }
        rc = np ? 1 : 0;
        fprintf(out, "%s\n", np ? "result    problems found" : "result    OK");
done:
        free(regions);
        hsa_dir_free(d);
        return rc;
}

int cmd_hsa(int argc, char **argv, const struct hsa_opts *o, FILE *out)
{
        if (argc < 2 || !o)
                return usage();
        const char *sub = argv[1];
        const char *id = NULL, *provider = NULL;
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
                        i++;
                } else if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc) {
                        provider = argv[++i];
                } else if (argv[i][0] == '-') {
                        fprintf(stderr, "intygsgw hsa: unknown option '%s'\n", argv[i]);
                        return usage();
                } else if (!id) {
                        id = argv[i];
                } else {
                        fprintf(stderr, "intygsgw hsa: unexpected argument '%s'\n", argv[i]);
                        return usage();
                }
        }
        if (strcmp(sub, "lookup") == 0) {
                if (!id) {
                        fprintf(stderr, "intygsgw hsa lookup: HSA-ID missing\n");
                        return usage();
                }
                return do_lookup(o, id, provider, out);
        }
        if (strcmp(sub, "check") == 0) {
                if (id || provider)
                        return usage();
                return do_check(o, out);
        }
        fprintf(stderr, "intygsgw hsa: unknown command '%s'\n", sub);
        return usage();
}
