/* `hyperc gen`: the front end so far.  --check reports every rule
 * violation of a hyperprocess source in compiler style; --model prints the
 * model the code generators will read.  Generating code is the next step
 * of this milestone (docs/gen-design.md). */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hcg_main(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(
        f, "usage: hyperc gen (--check | --model) [-I DIR]... [-D NAME[=V]]... "
           "FILE.c\n"
           "\n"
           "Read a hyperprocess source (HYPERPROCESS(...) and annotated "
           "handlers) with\n"
           "libclang and check it against the framework's rules, reporting "
           "every problem\n"
           "as file:line:col: error: ... in one run.\n"
           "\n"
           "  --check   only report problems (exit 1 if there are errors)\n"
           "  --model   also print the model (JSON) on stdout\n"
           "  -I DIR, -D NAME[=V]  passed to the C front end\n"
           "  -h, --help\n");
}

int hcg_main(int argc, char **argv)
{
    bool model = false, check = false;
    const char *file = NULL;
    const char **args = calloc((size_t)argc + 4, sizeof *args);
    char **owned = calloc((size_t)argc + 4, sizeof *owned);
    if (args == NULL || owned == NULL)
        abort();
    int nargs = 0, nowned = 0;
    args[nargs++] = "-std=c11";
    args[nargs++] = "-I" HYPERC_INCLUDE_DIR;
    args[nargs++] = "-DHYPERC_GEN=1";
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--model") == 0) {
            model = true;
        } else if (strcmp(a, "--check") == 0) {
            check = true;
        } else if ((strcmp(a, "-I") == 0 || strcmp(a, "-D") == 0) &&
                   i + 1 < argc) {
            char *s = malloc(strlen(argv[i + 1]) + 3);
            if (s == NULL)
                abort();
            sprintf(s, "%s%s", a, argv[++i]);
            owned[nowned++] = s;
            args[nargs++] = s;
        } else if (strncmp(a, "-I", 2) == 0 || strncmp(a, "-D", 2) == 0) {
            args[nargs++] = a;
        } else if (a[0] == '-' || file) {
            usage(stderr);
            goto out;
        } else {
            file = a;
        }
    }
    if (file == NULL || (!model && !check)) {
        usage(stderr);
        goto out;
    }
    hcg_diags d = {0};
    json_t *m = hcg_frontend(file, args, nargs, &d);
    hcg_diags_print(&d, stderr);
    rc = d.errors ? 1 : 0;
    if (m && model) {
        char *s = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
    }
    json_decref(m);
    hcg_diags_fini(&d);
out:
    for (int i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(args);
    return rc;
}
