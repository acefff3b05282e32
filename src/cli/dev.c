/* hyperc new / build / test: the developer's path.  `new` writes a package
 * that builds and passes its test at once; `build` configures and builds a
 * package with CMake against this hyperc; `test` builds it, then runs each
 * of its test scripts against a node of its own in a temporary home. */
#include "cli.h"

#include "hyperc/node.h"

#include "../gen/gen.h"

#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

/* Write `text` (heap; freed here) to root/rel, made executable if asked. */
static int put_file(const char *root, const char *rel, char *text,
                    bool executable)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    bool ok = f != NULL && fputs(text, f) >= 0;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (ok && executable)
        chmod(path, 0755);
    else if (!ok)
        fprintf(stderr, "hyperc: cannot write %s: %s\n", path, strerror(errno));
    free(text);
    return ok ? 0 : -1;
}

/* printf into a fresh heap string (aborts when out of memory). */
char *hcl_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

/* The folder of this hyperc executable. */
static char *exe_dir(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return strdup(".");
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    return strdup(exe);
}

/* Where find_package(hyperc) finds this hyperc: installed
 * (<prefix>/bin/hyperc -> <prefix>/lib/cmake/hyperc, or lib64) or a build
 * tree (the hyperc binary sits beside hypercConfig.cmake). */
static char *package_dir(void)
{
    char *d = exe_dir();
    const char *cands[] = {"%s/hypercConfig.cmake",
                           "%s/../lib/cmake/hyperc/hypercConfig.cmake",
                           "%s/../lib64/cmake/hyperc/hypercConfig.cmake"};
    for (size_t i = 0; i < 3; i++) {
        char *p = hcl_fmt(cands[i], d);
        if (access(p, R_OK) == 0) {
            char *slash = strrchr(p, '/');
            *slash = '\0';
            free(d);
            return p;
        }
        free(p);
    }
    free(d);
    return NULL;
}

char *hcl_self_exe(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    return strdup(exe);
}

static bool is_file(const char *dir, const char *name)
{
    char *p = hcl_fmt("%s/%s", dir, name);
    struct stat st;
    bool yes = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return yes;
}

static bool target_wasm32;

void hcl_set_target_wasm32(bool wasm32)
{
    target_wasm32 = wasm32;
}

int hcl_parse_target(const char *name)
{
    if (strcmp(name, "native") == 0)
        return 0;
    if (strcmp(name, "wasm32") == 0)
        return 1;
    fprintf(stderr, "hyperc: unknown target '%s' (native or wasm32)\n", name);
    return -1;
}

/* The build folder of a package's sources for the current target. */
static const char *build_folder(void)
{
    return target_wasm32 ? "build-wasm32" : "build";
}

char *hcl_package_resolve(const char *dir)
{
    if (!is_file(dir, "CMakeLists.txt")) {
        /* a built package: the node says what is wrong with it */
        char *real = realpath(dir, NULL);
        if (real == NULL)
            fprintf(stderr, "hyperc: %s: %s\n", dir, strerror(errno));
        return real;
    }
    char *pkgs = hcl_fmt("%s/%s/packages", dir, build_folder());
    DIR *d = opendir(pkgs);
    char *found = NULL;
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *cand = hcl_fmt("%s/%s", pkgs, e->d_name);
        if (is_file(cand, "metadata.json") && count++ == 0)
            found = cand;
        else
            free(cand);
    }
    if (d)
        closedir(d);
    char *out = NULL;
    if (count == 1)
        out = realpath(found, NULL);
    else if (count == 0)
        fprintf(stderr,
                "hyperc: %s holds a package's sources but no build of it: "
                "run `hyperc build %s%s` first\n",
                dir, target_wasm32 ? "--target wasm32 " : "", dir);
    else
        fprintf(stderr,
                "hyperc: %s builds %d packages: name one of the folders in "
                "%s\n",
                dir, count, pkgs);
    free(found);
    free(pkgs);
    return out;
}

/* Run argv, output passing through; the exit status (-1: not run). */
static int run_cmd(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        sigset_t none; /* watch blocks these; the tools take Ctrl-C */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "hyperc: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ----------------------------------------------------------------- new */

/* A package and process name: lowercase letters in words joined by '-'
 * (hypermap-safe, and a WIT name: no digits). */
static bool valid_name(const char *n)
{
    if (!n[0] || !(n[0] >= 'a' && n[0] <= 'z') || n[strlen(n) - 1] == '-')
        return false;
    for (const char *c = n; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c == '-' && c[1] != '-')))
            return false;
    return true;
}

static void usage_new(FILE *f)
{
    fprintf(f,
            "usage: hyperc new [--dir DIR] [--publisher P] NAME\n"
            "\n"
            "Write a package NAME (lowercase words joined by '-', no digits)\n"
            "in DIR/NAME: CMakeLists.txt, metadata.json, pkg/manifest.json,\n"
            "NAME.c with '_' for '-' (a hyperprocess with state, init, an\n"
            "HTTP and a local handler), pkg/ui/index.html and test/basic.sh.\n"
            "It builds with `hyperc build DIR/NAME` and passes `hyperc test\n"
            "DIR/NAME` at once.\n"
            "\n"
            "  --dir DIR        where to create it (default .; made if "
            "missing)\n"
            "  --publisher P    publisher node (default hyperc.os)\n");
}

/* The text of the template `name` (src/cli/templates), compiled in. */
static const char *template_text(const char *name)
{
    for (const hcl_template *t = hcl_templates; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t->text;
    fprintf(stderr, "hyperc: no template %s in this build\n", name);
    abort();
}

/* `text` with each {{key}} of vars (key and value pairs, then NULL)
 * replaced by its value; the rest, unknown keys included, as is.  A heap
 * string (aborts when out of memory). */
static char *fill_template(const char *text, const char *const *vars)
{
    char *out = NULL;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        abort();
    const char *open;
    while ((open = strstr(text, "{{")) != NULL) {
        fwrite(text, 1, (size_t)(open - text), f);
        const char *key = open + 2, *value = NULL;
        size_t klen = 0;
        for (const char *const *v = vars; *v && value == NULL; v += 2) {
            klen = strlen(v[0]);
            if (strncmp(key, v[0], klen) == 0 &&
                strncmp(key + klen, "}}", 2) == 0)
                value = v[1];
        }
        if (value) {
            fputs(value, f);
            text = key + klen + 2;
        } else {
            fputs("{{", f);
            text = key;
        }
    }
    fputs(text, f);
    if (fclose(f) != 0)
        abort();
    return out;
}

/* The files of a new package: template, path in the package (a template
 * too), executable. */
static const struct {
    const char *tmpl, *path;
    bool executable;
} new_files[] = {
    {"CMakeLists.txt.in", "CMakeLists.txt", false},
    {"metadata.json.in", "metadata.json", false},
    {"manifest.json.in", "pkg/manifest.json", false},
    {"process.c.in", "{{snake}}.c", false},
    {"index.html.in", "pkg/ui/index.html", false},
    {"basic.sh.in", "test/basic.sh", true},
};

/* Make dir (and the folders above it, as `mkdir -p`), then the package
 * folder dir/name, which must be new, with pkg, pkg/ui and test in it.  The
 * package folder (heap), or NULL (said on stderr). */
static char *new_make_folders(const char *dir, const char *name)
{
    char *parent = strdup(dir);
    for (char *k = parent + (parent[0] != '\0'); *k; k++)
        if (*k == '/') {
            *k = '\0';
            mkdir(parent, 0777);
            *k = '/';
        }
    mkdir(parent, 0777);
    free(parent);
    char *root = hcl_fmt("%s/%s", dir, name);
    if (mkdir(root, 0777) != 0) {
        fprintf(stderr, "hyperc new: cannot create %s: %s\n", root,
                strerror(errno));
        free(root);
        return NULL;
    }
    char *paths[] = {hcl_fmt("%s/pkg", root), hcl_fmt("%s/pkg/ui", root),
                     hcl_fmt("%s/test", root)};
    for (size_t i = 0; i < 3; i++) {
        mkdir(paths[i], 0777);
        free(paths[i]);
    }
    return root;
}

/* Write every file of new_files into root from its template.  0, or -1
 * when one could not be written (said on stderr; the others are written). */
static int new_write_files(const char *root, const char *const *vars)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof new_files / sizeof *new_files; i++) {
        char *rel = fill_template(new_files[i].path, vars);
        rc |= put_file(root, rel,
                       fill_template(template_text(new_files[i].tmpl), vars),
                       new_files[i].executable);
        free(rel);
    }
    return rc;
}

int hcl_cmd_new(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"publisher", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *dir = ".", *pub = "hyperc.os";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'p': pub = optarg; break;
        case 'h': usage_new(stdout); return 0;
        default: usage_new(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage_new(stderr);
        return 2;
    }
    const char *name = argv[optind];
    if (!valid_name(name)) {
        fprintf(stderr,
                "hyperc new: '%s': a name is lowercase words joined by "
                "'-' (no digits: WIT names have none)\n",
                name);
        return 2;
    }
    char *root = new_make_folders(dir, name);
    if (root == NULL)
        return 1;
    char *snake = strdup(name); /* the C spelling */
    for (char *k = snake; *k; k++)
        if (*k == '-')
            *k = '_';
    const char *vars[] = {"name", name, "snake", snake, "publisher", pub, NULL};
    int rc = new_write_files(root, vars);
    if (rc == 0)
        printf("created %s: `hyperc build %s` then `hyperc test %s`\n", root,
               root, root);
    free(snake);
    free(root);
    return rc ? 1 : 0;
}

/* --------------------------------------------------------------- build */

static void usage_build(FILE *f)
{
    fprintf(f, "usage: hyperc build [--target native|wasm32] [DIR]\n"
               "\n"
               "Build the package in DIR (default .) with CMake against this "
               "hyperc:\n"
               "configure (first time) into DIR/build, then build; the "
               "package is\n"
               "DIR/build/packages/<name>.  Incremental; errors in compiler "
               "format.\n"
               "As `kit b --hyperapp`, every build also writes DIR/api/ (the "
               "WIT of the\n"
               "package's hyperprocesses) and DIR/target/ui/caller-utils.ts "
               "(the\n"
               "TypeScript client of their http handlers, from every WIT file "
               "of api/).\n"
               "\n"
               "  --target wasm32   build the processes as wasm32 components "
               "(a package\n"
               "                    a Hyperware node installs) into "
               "DIR/build-wasm32\n");
}

/* Write text to path unless it holds it already (no rebuild of what
 * watches it); the parent folders are created.  0, or -1 with a message. */
static int write_if_changed(const char *path, const char *text)
{
    char *old = hcg_read_file(path);
    bool same = old && strcmp(old, text) == 0;
    free(old);
    if (same)
        return 0;
    char *dirs = strdup(path);
    for (char *p = dirs + 1; dirs && *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(dirs, 0755);
            *p = '/';
        }
    free(dirs);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "hyperc build: cannot write %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .wit files of folder d, sorted (malloc'd names; *n of them). */
static char **wit_names(const char *d, size_t *n)
{
    *n = 0;
    DIR *dd = opendir(d);
    char **v = NULL;
    struct dirent *e;
    while (dd && (e = readdir(dd)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".wit") != 0)
            continue;
        char **g = realloc(v, (*n + 1) * sizeof *v);
        if (g == NULL)
            abort();
        v = g;
        v[(*n)++] = strdup(e->d_name);
    }
    if (dd)
        closedir(dd);
    if (*n)
        qsort(v, *n, sizeof *v, cmp_names);
    return v;
}

/* What `kit b --hyperapp` leaves in a package's folder, after every build:
 * api/ with the WIT of its hyperprocesses (from the built package), and
 * target/ui/caller-utils.ts, the TypeScript client kit derives from every
 * WIT file of api/ (none when no process has an http handler). */
static int kit_outputs(const char *dir, const char *b)
{
    char *pkgs = hcl_fmt("%s/packages", b);
    DIR *d = opendir(pkgs);
    struct dirent *e;
    int rc = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *api = hcl_fmt("%s/%s/api", pkgs, e->d_name);
        size_t n;
        char **names = wit_names(api, &n);
        for (size_t i = 0; i < n; i++) {
            char *from = hcl_fmt("%s/%s", api, names[i]);
            char *to = hcl_fmt("%s/api/%s", dir, names[i]);
            char *text = hcg_read_file(from);
            if (text && write_if_changed(to, text) != 0)
                rc = -1;
            free(text);
            free(from);
            free(to);
            free(names[i]);
        }
        free(names);
        free(api);
    }
    if (d)
        closedir(d);
    free(pkgs);
    char *api = hcl_fmt("%s/api", dir);
    size_t n;
    char **names = wit_names(api, &n);
    hcg_wit_file *files = calloc(n + 1, sizeof *files);
    char **stems = calloc(n + 1, sizeof *stems);
    if (files == NULL || stems == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        char *path = hcl_fmt("%s/%s", api, names[i]);
        stems[i] = strndup(names[i], strlen(names[i]) - 4);
        files[i] =
            (hcg_wit_file){.stem = stems[i], .text = hcg_read_file(path)};
        if (files[i].text == NULL)
            files[i].text = "";
        free(path);
    }
    char *err = NULL;
    char *ts = n ? hcg_ts_from_wit(files, n, false, &err) : NULL;
    if (err) {
        fprintf(stderr, "hyperc build: no TypeScript client: %s\n", err);
    } else if (ts) {
        char *text = hcl_fmt(
            "// Generated by hyperc build from api/; do not edit.\n%s", ts);
        char *to = hcl_fmt("%s/target/ui/caller-utils.ts", dir);
        if (write_if_changed(to, text) != 0)
            rc = -1;
        free(to);
        free(text);
    }
    for (size_t i = 0; i < n; i++) {
        if (files[i].text[0])
            free((char *)files[i].text);
        free(stems[i]);
        free(names[i]);
    }
    free(err);
    free(ts);
    free(files);
    free(stems);
    free(names);
    free(api);
    return rc;
}

int hcl_build_dir(const char *dir, bool quiet)
{
    char *pkgdir = package_dir();
    if (pkgdir == NULL) {
        fprintf(stderr, "hyperc build: no hypercConfig.cmake beside this "
                        "hyperc (install it, or run the hyperc of a build "
                        "tree)\n");
        return 1;
    }
    char *b = hcl_fmt("%s/%s", dir, build_folder());
    char *def = hcl_fmt("-Dhyperc_DIR=%s", pkgdir);
    char *tc = target_wasm32
                   ? hcl_fmt("-DCMAKE_TOOLCHAIN_FILE=%s/wasm32-toolchain.cmake",
                             pkgdir)
                   : NULL;
    printf("[1/2] configure %s\n", b);
    fflush(stdout);
#ifdef HYPERC_APP_CC
    char *cc = "-DCMAKE_C_COMPILER=" HYPERC_APP_CC;
#else
    char *cc = "-Wno-dev";
#endif
    if (tc)
        cc = tc; /* the toolchain names the compiler */
    char *cfg[] = {"cmake", "-S", (char *)dir, "-B",
                   b,       def,  cc,          quiet ? "-Wno-dev" : "-Wdev",
                   NULL};
    int rc = run_cmd(cfg);
    if (rc == 0) {
        printf("[2/2] build\n");
        fflush(stdout);
        char *bld[] = {"cmake", "--build", b, "-j2", NULL};
        rc = run_cmd(bld);
    }
    if (rc == 0 && kit_outputs(dir, b) != 0)
        rc = 1;
    if (rc != 0)
        fprintf(stderr, "hyperc build: failed (%d)\n", rc);
    free(b);
    free(def);
    free(tc);
    free(pkgdir);
    return rc == 0 ? 0 : 1;
}

int hcl_cmd_build(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage_build(stdout);
        return 0;
    }
    int a = 1;
    if (argc > a + 1 && strcmp(argv[a], "--target") == 0) {
        int t = hcl_parse_target(argv[a + 1]);
        if (t < 0)
            return 2;
        hcl_set_target_wasm32(t == 1);
        a += 2;
    }
    if (argc > a + 1 || (argc == a + 1 && argv[a][0] == '-')) {
        usage_build(stderr);
        return 2;
    }
    return hcl_build_dir(argc == a + 1 ? argv[a] : ".", true);
}

/* ---------------------------------------------------------------- test */

#define TEST_MAX_NODES 8

static void usage_test(FILE *f)
{
    fprintf(f,
            "usage: hyperc test [--target native|wasm32] [--dep DIR]... [DIR]\n"
            "\n"
            "Build the package in DIR (default .) and the packages it "
            "depends on,\n"
            "then run each test/*.sh against nodes of its own: each node has "
            "a\n"
            "temporary home, an HTTP port, the package and its dependencies.  "
            "A\n"
            "script gets one node, or N (up to %d) when one of its first "
            "lines\n"
            "says `# hyperc-test: nodes=N`.  It sees $HYPERC (this command), "
            "$HYPERC_NODES,\n"
            "and for node i (1..N) $HYPERC_HOME_i, $HYPERC_PORT_i, "
            "$HYPERC_NODE_i (its\n"
            "name) and $HYPERC_PID_i (a test may stop or kill it: the others "
            "run on);\n"
            "$HYPERC_HOME, $HYPERC_PORT and $HYPERC_NODE are node 1's.  A "
            "script passes\n"
            "by exiting 0 within 120 s.  Prints PASS/FAIL per test; exit 1 if "
            "any\n"
            "failed.  Every node is stopped afterwards.\n"
            "\n"
            "Dependencies: metadata.json's properties.dependencies lists "
            "package ids\n"
            "(\"name:publisher\"); each must be one of the packages found in "
            "the folders\n"
            "named by --dep and by test/dependencies (one folder per line, "
            "relative to\n"
            "DIR; '#' starts a comment).  A folder is a package's sources "
            "(built with\n"
            "`hyperc build`) or a built package.\n"
            "\n"
            "  --dep DIR   a package (or its sources) to install beside this "
            "one\n"
            "  --target wasm32   build and run the processes as wasm32 "
            "components\n",
            TEST_MAX_NODES);
}

/* A TCP port free right now (the kernel's pick for port 0). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Whether the node's output so far contains `what` (its ready line). */
static bool log_says(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[1024];
    bool yes = false;
    while (!yes && fgets(line, sizeof line, f))
        yes = strstr(line, what) != NULL;
    fclose(f);
    return yes;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The package id ("name:publisher") of a built package folder (heap), or
 * NULL. */
static char *package_id(const char *pkg)
{
    char *path = hcl_fmt("%s/metadata.json", pkg);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    free(path);
    json_t *props = json_object_get(m, "properties");
    const char *name =
        json_string_value(json_object_get(props, "package_name"));
    const char *pub = json_string_value(json_object_get(props, "publisher"));
    char *id = name && pub ? hcl_fmt("%s:%s", name, pub) : NULL;
    json_decref(m);
    return id;
}

typedef struct strv {
    char **v;
    size_t n;
} strv;

static void strv_push(strv *s, char *x)
{
    char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (nv == NULL)
        abort();
    s->v = nv;
    s->v[s->n++] = x;
}

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* The folders of test/dependencies, relative to dir, appended to out. */
static void read_dep_file(const char *dir, strv *out)
{
    char *path = hcl_fmt("%s/test/dependencies", dir);
    FILE *f = fopen(path, "r");
    free(path);
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t')
            s++;
        while (e > s && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t' ||
                         e[-1] == '\r'))
            *--e = '\0';
        if (*s)
            strv_push(out, s[0] == '/' ? strdup(s) : hcl_fmt("%s/%s", dir, s));
    }
    if (f)
        fclose(f);
}

/* Build every dependency folder and check that they cover what
 * metadata.json asks for; the built package folders into pkgs (after the
 * package itself).  0, or 1 having said why. */
static int gather_deps(const char *dir, const char *pkg, const strv *flags,
                       strv *pkgs)
{
    strv folders = {0};
    for (size_t i = 0; i < flags->n; i++)
        strv_push(&folders, strdup(flags->v[i]));
    read_dep_file(dir, &folders);
    strv ids = {0};
    int rc = 0;
    for (size_t i = 0; i < folders.n && rc == 0; i++) {
        const char *f = folders.v[i];
        char *cm = hcl_fmt("%s/CMakeLists.txt", f);
        bool sources = access(cm, R_OK) == 0;
        free(cm);
        printf("dependency %s\n", f);
        fflush(stdout);
        if (sources && hcl_build_dir(f, true) != 0) {
            rc = 1;
            break;
        }
        char *built = hcl_package_resolve(f);
        char *id = built ? package_id(built) : NULL;
        if (id == NULL) {
            if (built)
                fprintf(stderr,
                        "hyperc test: %s: no package id in its "
                        "metadata.json\n",
                        built);
            free(built);
            rc = 1;
            break;
        }
        strv_push(pkgs, built);
        strv_push(&ids, id);
    }
    /* what the package says it needs */
    char *path = hcl_fmt("%s/metadata.json", pkg);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    free(path);
    json_t *deps =
        json_object_get(json_object_get(m, "properties"), "dependencies");
    size_t k;
    json_t *d;
    json_array_foreach(deps, k, d)
    {
        const char *want = json_string_value(d);
        bool have = false;
        for (size_t i = 0; want && i < ids.n && !have; i++)
            have = strcmp(ids.v[i], want) == 0;
        if (rc == 0 && !have) {
            fprintf(stderr,
                    "hyperc test: the package depends on %s, which none of "
                    "the dependency folders holds (give it with --dep DIR "
                    "or a line in test/dependencies)\n",
                    want ? want : "(not a string)");
            rc = 1;
        }
    }
    json_decref(m);
    strv_free(&ids);
    strv_free(&folders);
    return rc;
}

/* How many nodes a script asks for (`# hyperc-test: nodes=N` in its first
 * ten lines); 1 when it does not say, -1 when it says nonsense. */
static int script_nodes(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 1;
    for (int i = 0; f && i < 10 && fgets(line, sizeof line, f); i++) {
        char *t = strstr(line, "hyperc-test:");
        char *v = t ? strstr(t, "nodes=") : NULL;
        if (v == NULL)
            continue;
        char *end;
        long x = strtol(v + 6, &end, 10);
        n = x >= 1 && x <= TEST_MAX_NODES && end != v + 6 ? (int)x : -1;
        break;
    }
    if (f)
        fclose(f);
    return n;
}

typedef struct tnode {
    pid_t pid;
    int port;
    int net_port; /* net:distro:sys over loopback TCP */
    char name[32];
    char *home; /* the node's home */
    char *out;  /* its output */
} tnode;

/* Boot a node for a test (networked with the others through the peers
 * file); false when it did not come up. */
static bool tnode_boot(tnode *t, const char *exe, const strv *pkgs,
                       const char *peers)
{
    char ports[16], net_port[16];
    snprintf(ports, sizeof ports, "%d", t->port);
    snprintf(net_port, sizeof net_port, "%d", t->net_port);
    t->pid = fork();
    if (t->pid == 0) {
        setpgid(0, 0); /* its own group: stopped alone */
        FILE *o = freopen(t->out, "w", stdout);
        (void)o;
        dup2(1, 2);
        char **argv = calloc(pkgs->n + 14, sizeof *argv);
        if (argv == NULL)
            _exit(127);
        size_t k = 0;
        argv[k++] = (char *)exe;
        argv[k++] = "run";
        argv[k++] = "--home";
        argv[k++] = t->home;
        argv[k++] = "--name";
        argv[k++] = t->name;
        argv[k++] = "--port";
        argv[k++] = ports;
        argv[k++] = "--net-port";
        argv[k++] = net_port;
        argv[k++] = "--peers";
        argv[k++] = (char *)peers;
        for (size_t i = 0; i < pkgs->n; i++)
            argv[k++] = pkgs->v[i];
        execv(exe, argv);
        _exit(127);
    }
    return t->pid > 0;
}

/* Wait for the node's ready line: 20 s, or 5 minutes once it says it is
 * translating components to native code (their first start: the
 * compiler's time, which a busy machine makes long). */
static bool tnode_wait_ready(tnode *t)
{
    int limit = 400; /* 50-ms steps */
    for (int k = 0; k < limit; k++) {
        if (log_says(t->out, " ready (control socket "))
            return true;
        if (limit == 400 &&
            log_says(t->out, "translating components to native code"))
            limit = 6000;
        if (waitpid(t->pid, NULL, WNOHANG) == t->pid) {
            t->pid = 0;
            return false;
        }
        usleep(50000);
    }
    return false;
}

/* Stop the node if it still runs (SIGINT, then SIGKILL after 5 s). */
static void tnode_stop(tnode *t)
{
    if (t->pid <= 0)
        return;
    kill(t->pid, SIGINT);
    for (int k = 0; k < 100; k++) {
        if (waitpid(t->pid, NULL, WNOHANG) == t->pid) {
            t->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
}

static void set_env_i(const char *name, int i, const char *value)
{
    char key[64];
    snprintf(key, sizeof key, "%s_%d", name, i);
    setenv(key, value, 1);
}

/* Run one script against n fresh nodes; its exit status (-1: the nodes did
 * not start).  The work folder goes into *work. */
static int run_one(const char *exe, const char *script, int n, const strv *pkgs,
                   char **work)
{
    char tmpl[] = "/tmp/hyperc-test-XXXXXX";
    char *base = mkdtemp(tmpl);
    if (base == NULL)
        return -1;
    *work = strdup(base);
    tnode nodes[TEST_MAX_NODES] = {0};
    bool ready = true;
    /* every node knows every other: names, networking keys (made now, as
     * a first boot would) and ports in one peers file */
    char *peers = hcl_fmt("%s/peers.json", base);
    json_t *entries = json_array();
    for (int i = 0; i < n && ready; i++) {
        tnode *t = &nodes[i];
        t->port = free_port();
        t->net_port = free_port();
        snprintf(t->name, sizeof t->name, i == 0 ? "test.os" : "test%d.os",
                 i + 1);
        t->home = hcl_fmt("%s/home%d", base, i + 1);
        t->out = hcl_fmt("%s/node%d.out", base, i + 1);
        char hex[65], err[256];
        if (t->port <= 0 || t->net_port <= 0 ||
            hc_node_net_key(t->home, hex, err, sizeof err) != 0) {
            ready = false;
            break;
        }
        json_array_append_new(
            entries, json_pack("{sssss[s]s{si}s[]}", "name", t->name,
                               "public_key", hex, "ips", "127.0.0.1", "ports",
                               "tcp", t->net_port, "routers"));
    }
    ready = ready && json_dump_file(entries, peers, JSON_INDENT(2)) == 0;
    json_decref(entries);
    for (int i = 0; i < n && ready; i++)
        ready = tnode_boot(&nodes[i], exe, pkgs, peers);
    for (int i = 0; i < n && ready; i++)
        ready = tnode_wait_ready(&nodes[i]);
    int rc = -1;
    if (ready) { /* (the ready line comes once the processes started) */
        pid_t pid = fork();
        if (pid == 0) {
            char v[32];
            setenv("HYPERC", exe, 1);
            snprintf(v, sizeof v, "%d", n);
            setenv("HYPERC_NODES", v, 1);
            for (int i = 0; i < n; i++) {
                snprintf(v, sizeof v, "%d", nodes[i].port);
                set_env_i("HYPERC_PORT", i + 1, v);
                if (i == 0)
                    setenv("HYPERC_PORT", v, 1);
                snprintf(v, sizeof v, "%d", nodes[i].net_port);
                set_env_i("HYPERC_NET_PORT", i + 1, v);
                snprintf(v, sizeof v, "%d", (int)nodes[i].pid);
                set_env_i("HYPERC_PID", i + 1, v);
                set_env_i("HYPERC_HOME", i + 1, nodes[i].home);
                set_env_i("HYPERC_NODE", i + 1, nodes[i].name);
            }
            setenv("HYPERC_HOME", nodes[0].home, 1);
            setenv("HYPERC_NODE", nodes[0].name, 1);
            alarm(120);
            execl("/bin/sh", "sh", script, (char *)NULL);
            _exit(127);
        }
        int st;
        while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        rc = pid < 0         ? -1
             : WIFEXITED(st) ? WEXITSTATUS(st)
                             : 128 + WTERMSIG(st);
    }
    for (int i = 0; i < n; i++) {
        tnode_stop(&nodes[i]);
        free(nodes[i].home);
        free(nodes[i].out);
    }
    free(peers);
    return rc;
}

int hcl_cmd_test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dep", required_argument, NULL, 'd'},
        {"target", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    strv flags = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': strv_push(&flags, strdup(optarg)); break;
        case 't': {
            int t = hcl_parse_target(optarg);
            if (t < 0) {
                strv_free(&flags);
                return 2;
            }
            hcl_set_target_wasm32(t == 1);
            break;
        }
        case 'h':
            usage_test(stdout);
            strv_free(&flags);
            return 0;
        default:
            usage_test(stderr);
            strv_free(&flags);
            return 2;
        }
    }
    if (optind < argc - 1) {
        usage_test(stderr);
        strv_free(&flags);
        return 2;
    }
    const char *dir = optind == argc - 1 ? argv[optind] : ".";
    strv pkgs = {0}, tests = {0};
    int status = 1;
    char *tdir = hcl_fmt("%s/test", dir);
    char *exe = hcl_self_exe();
    if (hcl_build_dir(dir, true) != 0)
        goto out;
    char *pkg = hcl_package_resolve(dir);
    if (pkg == NULL)
        goto out;
    strv_push(&pkgs, pkg);
    if (gather_deps(dir, pkg, &flags, &pkgs) != 0)
        goto out;
    DIR *d = opendir(tdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".sh") == 0)
            strv_push(&tests, strdup(e->d_name));
    }
    if (d)
        closedir(d);
    if (tests.n == 0) {
        fprintf(stderr, "hyperc test: no test/*.sh scripts in %s\n", dir);
        goto out;
    }
    qsort(tests.v, tests.n, sizeof *tests.v, cmp_str);
    size_t failed = 0;
    for (size_t i = 0; i < tests.n; i++) {
        char *script = hcl_fmt("%s/%s", tdir, tests.v[i]);
        int n = script_nodes(script);
        char *work = NULL;
        int rc = n < 1 ? -2 : run_one(exe, script, n, &pkgs, &work);
        const char *why = rc == -2   ? " (bad `# hyperc-test: nodes=N` line: "
                                       "N is 1..8)"
                          : rc == -1 ? " (a node did not start)"
                                     : "";
        printf("%s %s%s\n", rc == 0 ? "PASS" : "FAIL", tests.v[i], why);
        if (rc != 0) {
            failed++;
            if (work)
                printf("  node output: %s/node*.out\n", work);
        } else if (work) {
            char *rm[] = {"rm", "-rf", work, NULL};
            run_cmd(rm);
        }
        fflush(stdout);
        free(work);
        free(script);
    }
    printf("%zu passed, %zu failed\n", tests.n - failed, failed);
    status = failed ? 1 : 0;
out:
    strv_free(&tests);
    strv_free(&pkgs);
    strv_free(&flags);
    free(tdir);
    free(exe);
    return status;
}
