/* `hyperc gen`: reads a hyperprocess source with the front end
 * (frontend.c), reports every rule violation in compiler style, and when
 * there is none writes what the options ask for: the whole process
 * (--process: the source, codecs, dispatch, descriptor and hw_init) or its
 * codecs alone (--codecs), the WIT files (--wit), the TypeScript client
 * (--ts), caller stubs (--callers), a libFuzzer harness (--fuzz) and a
 * depfile (--depfile).  --check only reports; --model prints the model as
 * JSON (docs/gen-design.md). */
#include "gen.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen_main.h"

/* The do-not-edit line of WIT and TypeScript files ("" with --kit-exact,
 * for output byte-identical with kit's). */
static char wit_notice[600];

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[4096];
    if (dir)
        snprintf(path, sizeof path, "%s/%s", dir, name);
    else
        snprintf(path, sizeof path, "%s", name);
    /* an unchanged file is left alone, so that builds depending on it do
     * not run again */
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = strlen(text);
        char *old = malloc(n + 2);
        size_t got = old ? fread(old, 1, n + 1, f) : 0;
        fclose(f);
        bool same = old && got == n && memcmp(old, text, n) == 0;
        free(old);
        if (same)
            return 0;
    }
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "hyperc gen: cannot write %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return 0;
}

/* How the generated file `out` includes the source `file`: the path from
 * out's folder to the source, so that the output names no absolute path
 * (the same bytes in every checkout).  Absolute when no relative path
 * exists.  The caller frees it. */
static char *include_path(const char *file, const char *out)
{
    char *src = realpath(file, NULL);
    char *o = strdup(out);
    if (o == NULL)
        abort();
    char *slash = strrchr(o, '/');
    if (slash)
        *slash = '\0';
    char *dir = realpath(slash ? (o[0] ? o : "/") : ".", NULL);
    free(o);
    if (src == NULL || dir == NULL) {
        free(dir);
        return src ? src : strdup(file);
    }
    /* the common folder prefix */
    size_t common = 0;
    for (size_t i = 0; src[i] && src[i] == dir[i]; i++)
        if (src[i] == '/')
            common = i;
    if (dir[strlen(src) > strlen(dir) ? strlen(dir) : 0] == '\0' &&
        strncmp(src, dir, strlen(dir)) == 0 && src[strlen(dir)] == '/')
        common = strlen(dir);
    hcg_buf b = {0};
    for (const char *d = dir + common; *d; d++)
        if (*d == '/')
            hcg_buf_add(&b, "../");
    hcg_buf_add(&b, "%s", src + common + 1);
    free(src);
    free(dir);
    return hcg_buf_take(&b);
}

/* -I for <hyperc/hyperprocess.h>: beside an installed hyperc
 * (<prefix>/bin/hyperc -> <prefix>/include), else the source tree's. */
static const char *include_flag(void)
{
    static char flag[4200];
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char probe[4200];
            snprintf(probe, sizeof probe, "%s/../include/hyperc/hyperprocess.h",
                     exe);
            if (access(probe, R_OK) == 0) {
                snprintf(flag, sizeof flag, "-I%s/../include", exe);
                return flag;
            }
        }
    }
    return "-I" HYPERC_INCLUDE_DIR;
}

/* mkdir -p: dir and its missing parents; 0 or -1 (errno). */
static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (p == NULL)
        return -1;
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *c = '/';
    }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

/* The whole of dir/name, or NULL when it cannot be read. */
static char *read_file(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return hcg_read_file(path);
}

/* A make-style depfile: the output depends on every file the front end
 * read (the source and the headers it includes). */
static int write_depfile(const hcg_model *m, const char *path,
                         const char *target)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "hyperc gen: cannot write %s\n", path);
        return -1;
    }
    fprintf(f, "%s:", target);
    for (size_t i = 0; i < m->ninputs; i++) {
        fputs(" \\\n ", f);
        for (const char *c = m->inputs[i]; *c; c++) {
            if (*c == ' ' || *c == '#' || *c == ':')
                fputc('\\', f);
            fputc(*c, f);
        }
    }
    fputc('\n', f);
    return fclose(f) == 0 ? 0 : -1;
}

/* api/<iface>.wit, api/<world>.wit and api/types-<world>.wit into dir. */
static int write_wit(const hcg_model *m, const char *dir)
{
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "hyperc gen: cannot create %s: %s\n", dir,
                strerror(errno));
        return -1;
    }
    char *iface = hcg_wit_interface_name(m);
    char *text = hcg_wit_interface(m);
    const char *world = m->process.wit_world;
    char n0[512], n1[512], n2[512];
    snprintf(n0, sizeof n0, "%s.wit", iface);
    snprintf(n1, sizeof n1, "%s.wit", world);
    snprintf(n2, sizeof n2, "types-%s.wit", world);
    /* world files already there are merged into, as kit does */
    char *old1 = read_file(dir, n1), *old2 = read_file(dir, n2);
    char *w1 = old1 ? hcg_wit_world_merge(old1, world, iface, false)
                    : hcg_wit_world(world, iface, false);
    char *w2 = old2 ? hcg_wit_world_merge(old2, world, iface, true)
                    : hcg_wit_world(world, iface, true);
    free(old1);
    free(old2);
    hcg_buf t0 = {0}, t1 = {0}, t2 = {0};
    hcg_buf_add(&t0, "%s%s", wit_notice, text);
    hcg_buf_add(&t1, "%s%s", wit_notice, w1);
    hcg_buf_add(&t2, "%s%s", wit_notice, w2);
    int rc = write_file(dir, n0, t0.s) || write_file(dir, n1, t1.s) ||
                     write_file(dir, n2, t2.s)
                 ? -1
                 : 0;
    free(t0.s);
    free(t1.s);
    free(t2.s);
    free(iface);
    free(text);
    free(w1);
    free(w2);
    return rc;
}

/* caller-utils.ts for this process, or nothing when kit would write
 * nothing. */
static int write_ts(const hcg_model *m, const char *path, bool kit_exact)
{
    char *err = NULL;
    char *text = hcg_ts(&m, 1, kit_exact, &err);
    int rc = 0;
    if (err) {
        fprintf(stderr, "hyperc gen: %s\n", err);
        rc = -1;
    } else if (text == NULL) {
        bool http = false;
        for (size_t i = 0; i < m->nhandlers; i++)
            http |= hcg_handler_has(&m->handlers[i], HCG_H_HTTP);
        fprintf(stderr,
                http ? "hyperc gen: warning: the interface's WIT contains "
                       "\"world \" (a name ending in 'world', or the HTTP "
                       "path), and kit takes such a file for a world file: "
                       "no TypeScript client; %s not written\n"
                     : "hyperc gen: no http handler, so no TypeScript client "
                       "(kit writes none); %s not written\n",
                path);
    } else {
        hcg_buf t = {0};
        hcg_buf_add(&t, "%s%s", wit_notice, text);
        rc = write_file(NULL, path, t.s);
        free(t.s);
    }
    free(err);
    free(text);
    return rc;
}

/* The caller-stub folders of the source's package, searched after every
 * other include folder (-idirafter), so that a process calling another of
 * its package needs no -I: the package is the nearest folder above the
 * source (up to 4 levels) with a metadata.json, and its stubs are where
 * builds put them, kit's layout target/caller-utils/<lib>/ under the
 * package, build/ and build-wasm32/.  Appends malloc'd flags to args. */
static void package_stub_dirs(const char *file, const char **args, int *nargs,
                              char **owned, int *nowned, int max)
{
    char *real = realpath(file, NULL);
    if (real == NULL)
        return;
    char *slash = strrchr(real, '/');
    for (int up = 0; slash && up < 4; up++) {
        *slash = '\0';
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/metadata.json", real);
        struct stat st;
        if (stat(probe, &st) != 0) {
            slash = strrchr(real, '/');
            continue;
        }
        static const char *const bases[] = {"target/caller-utils",
                                            "build/target/caller-utils",
                                            "build-wasm32/target/caller-utils"};
        for (size_t b = 0; b < 3; b++) {
            char dir[4300];
            snprintf(dir, sizeof dir, "%s/%s", real, bases[b]);
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL && *nargs + 2 < max) {
                if (e->d_name[0] == '.')
                    continue;
                char *flag = malloc(strlen(dir) + strlen(e->d_name) + 16);
                if (flag == NULL)
                    abort();
                sprintf(flag, "-idirafter%s/%s", dir, e->d_name);
                owned[(*nowned)++] = flag;
                args[(*nargs)++] = flag;
            }
            if (d)
                closedir(d);
        }
        break;
    }
    free(real);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: hyperc gen (--check | --model) [-I DIR]... [-D NAME[=V]]... "
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
        "  --wit DIR write the WIT files as kit writes them: <iface>.wit,\n"
        "            <wit_world>.wit and types-<wit_world>.wit\n"
        "  --kit-exact  write WIT and TypeScript exactly as kit does, without\n"
        "            the do-not-edit first line (and, as kit's, a GET sends\n"
        "            no parameters)\n"
        "  --ts OUT.ts  write the TypeScript client of the http handlers\n"
        "            as kit writes target/ui/caller-utils.ts, a GET's\n"
        "            parameters in the query string\n"
        "  --callers DIR  write DIR/<iface>_caller_utils.h and .c: typed\n"
        "            <fn>_local_rpc / <fn>_remote_rpc stubs for callers\n"
        "  --fuzz OUT.c  write a libFuzzer harness over every generated\n"
        "            decoder (decode, encode, decode again: a fixed point)\n"
        "  --process OUT.c write the whole process: the source, codecs,\n"
        "            dispatcher and hw_init (build OUT.c as the process)\n"
        "  --depfile F  with --process/--codecs: write a make depfile\n"
        "            listing every file read (for incremental builds)\n"
        "  --codecs OUT.c  write the JSON codecs of every type (compile\n"
        "            them in the same translation unit, after FILE.c)\n"
        "  -I DIR, -D NAME[=V]  passed to the C front end\n"
        "  -h, --help\n");
}

int hcg_main(int argc, char **argv)
{
    bool model = false, check = false, kit_exact = false;
    const char *wit_dir = NULL, *codecs = NULL, *process = NULL,
               *depfile = NULL, *ts = NULL, *callers = NULL, *fuzz = NULL;
    const char *file = NULL;
    int max = argc + 5 + 256; /* and the package's stub folders */
    const char **args = calloc((size_t)max, sizeof *args);
    char **owned = calloc((size_t)max, sizeof *owned);
    if (args == NULL || owned == NULL)
        abort();
    int nargs = 0, nowned = 0;
    args[nargs++] = "-std=gnu11"; /* as CMake compiles C11 by default */
    args[nargs++] = include_flag();
    args[nargs++] = "-DHYPERC_GEN=1";
    args[nargs++] = "-ferror-limit=0"; /* every problem, in one run */
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--kit-exact") == 0) {
            kit_exact = true;
        } else if (strcmp(a, "--model") == 0) {
            model = true;
        } else if (strcmp(a, "--check") == 0) {
            check = true;
        } else if (strcmp(a, "--wit") == 0 && i + 1 < argc) {
            wit_dir = argv[++i];
        } else if (strcmp(a, "--fuzz") == 0 && i + 1 < argc) {
            fuzz = argv[++i];
        } else if (strcmp(a, "--callers") == 0 && i + 1 < argc) {
            callers = argv[++i];
        } else if (strcmp(a, "--ts") == 0 && i + 1 < argc) {
            ts = argv[++i];
        } else if (strcmp(a, "--codecs") == 0 && i + 1 < argc) {
            codecs = argv[++i];
        } else if (strcmp(a, "--process") == 0 && i + 1 < argc) {
            process = argv[++i];
        } else if (strcmp(a, "--depfile") == 0 && i + 1 < argc) {
            depfile = argv[++i];
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
    if (file == NULL || (!model && !check && !wit_dir && !ts && !codecs &&
                         !process && !callers && !fuzz)) {
        usage(stderr);
        goto out;
    }
    package_stub_dirs(file, args, &nargs, owned, &nowned, max);
    if (kit_exact) {
        wit_notice[0] = '\0';
    } else {
        const char *base = strrchr(file, '/');
        snprintf(wit_notice, sizeof wit_notice,
                 "// Generated by hyperc gen from %s; do not edit.\n",
                 base ? base + 1 : file);
    }
    hcg_diags d = {0};
    hcg_model *m = hcg_frontend(file, args, nargs, &d);
    hcg_diags_print(&d, stderr);
    rc = d.errors ? 1 : 0;
    if (m && wit_dir && d.errors == 0 && write_wit(m, wit_dir) != 0)
        rc = 1;
    if (m && ts && d.errors == 0 && write_ts(m, ts, kit_exact) != 0)
        rc = 1;
    if (m && callers && d.errors == 0) {
        char *base = hcg_callers_basename(m);
        char name[600];
        snprintf(name, sizeof name, "%s.h", base);
        if (mkdir_p(callers) != 0)
            fprintf(stderr, "hyperc gen: cannot create %s: %s\n", callers,
                    strerror(errno));
        char *h = hcg_callers_h(m);
        char *c = hcg_callers_c(m, name);
        if (write_file(callers, name, h) != 0)
            rc = 1;
        snprintf(name, sizeof name, "%s.c", base);
        if (write_file(callers, name, c) != 0)
            rc = 1;
        /* a fixed name for build systems, which know no interface names */
        char unity[700];
        snprintf(unity, sizeof unity,
                 "/* Generated by hyperc gen; do not edit. */\n#include "
                 "\"%s\"\n",
                 name);
        if (write_file(callers, "caller_utils.c", unity) != 0)
            rc = 1;
        free(h);
        free(c);
        free(base);
    }
    if (m && fuzz && d.errors == 0) {
        char *rel = include_path(file, fuzz);
        char *text = hcg_fuzz(m, rel);
        if (write_file(NULL, fuzz, text) != 0)
            rc = 1;
        free(text);
        free(rel);
    }
    if (m && process && d.errors == 0) {
        char *rel = include_path(file, process);
        char *text = hcg_process(m, rel);
        if (write_file(NULL, process, text) != 0)
            rc = 1;
        free(text);
        free(rel);
    }
    char unity_path[4200] = "";
    if (callers)
        snprintf(unity_path, sizeof unity_path, "%s/caller_utils.c", callers);
    const char *rule_out = process ? process : codecs ? codecs : unity_path;
    if (m && depfile && (process || codecs || callers) &&
        write_depfile(m, depfile, rule_out))
        rc = 1;
    if (m && codecs && d.errors == 0) {
        char *text = hcg_codecs(m);
        if (write_file(NULL, codecs, text) != 0)
            rc = 1;
        free(text);
    }
    /* Run by a build rule (a depfile asked for): the rule's output is newer
     * than its inputs now, even when its text did not change (write_file
     * left it alone), or make would run the rule again at every build.
     * The other files it wrote (the stubs' header) keep their times, so
     * what includes them builds again when their text changes. */
    if (m && depfile && rc == 0 && d.errors == 0 && rule_out[0] != '\0')
        (void)utimensat(AT_FDCWD, rule_out, NULL, 0);
    if (m && model) {
        json_t *j = hcg_model_json(m);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
        json_decref(j);
    }
    hcg_model_free(m);
    hcg_diags_fini(&d);
out:
    for (int i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(args);
    return rc;
}
