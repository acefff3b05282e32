/* hyperc new / build / test: the developer's path.  `new` writes a package
 * that builds and passes its test at once; `build` configures and builds a
 * package with CMake against this hyperc; `test` builds it, then runs each
 * of its test scripts against a node of its own in a temporary home. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int hcl_cmd_new(int argc, char **argv);
int hcl_cmd_build(int argc, char **argv);
int hcl_cmd_test(int argc, char **argv);

/* ------------------------------------------------------------- helpers */

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "hyperc: cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    return 0;
}

/* printf into a fresh heap string (aborts when out of memory). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
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
        char *p = fmt(cands[i], d);
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

/* Run argv, output passing through; the exit status (-1: not run). */
static int run_cmd(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
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
    fprintf(
        f, "usage: hyperc new [--dir DIR] [--publisher P] NAME\n"
           "\n"
           "Write a package NAME (lowercase words joined by '-') in DIR/NAME:\n"
           "CMakeLists.txt, metadata.json, pkg/manifest.json, NAME.c (a\n"
           "hyperprocess with state, init, an HTTP and a local handler),\n"
           "pkg/ui/index.html and test/basic.sh.  It builds with `hyperc\n"
           "build DIR/NAME` and passes `hyperc test DIR/NAME` at once.\n"
           "\n"
           "  --dir DIR        where to create it (default .)\n"
           "  --publisher P    publisher node (default hyperc.os)\n");
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
    char *root = fmt("%s/%s", dir, name);
    if (mkdir(root, 0777) != 0) {
        fprintf(stderr, "hyperc new: cannot create %s: %s\n", root,
                strerror(errno));
        free(root);
        return 1;
    }
    char *snake = strdup(name); /* the C spelling */
    for (char *k = snake; *k; k++)
        if (*k == '-')
            *k = '_';
    char *paths[] = {fmt("%s/pkg", root), fmt("%s/pkg/ui", root),
                     fmt("%s/test", root)};
    for (size_t i = 0; i < 3; i++) {
        mkdir(paths[i], 0777);
        free(paths[i]);
    }
    int rc = 0;
    char *p, *t;
    p = fmt("%s/CMakeLists.txt", root);
    t = fmt("# Built with `hyperc build` (or cmake with hyperc_DIR set).\n"
            "cmake_minimum_required(VERSION 3.25)\n"
            "project(%s C)\n"
            "find_package(hyperc 0.1 REQUIRED)\n"
            "hyperc_add_process(%s HYPERPROCESS %s.c)\n"
            "hyperc_add_package(%s SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR} "
            "PROCESSES %s)\n",
            snake, name, snake, name, name);
    rc |= write_text(p, t);
    free(p);
    free(t);
    p = fmt("%s/metadata.json", root);
    t = fmt("{\n  \"name\": \"%s\",\n  \"description\": \"\",\n"
            "  \"image\": \"\",\n  \"external_url\": \"\",\n"
            "  \"animation_url\": \"\",\n  \"properties\": {\n"
            "    \"package_name\": \"%s\",\n"
            "    \"current_version\": \"0.1.0\",\n"
            "    \"publisher\": \"%s\",\n    \"mirrors\": [],\n"
            "    \"code_hashes\": {},\n    \"wit_version\": 1,\n"
            "    \"dependencies\": []\n  }\n}\n",
            name, name, pub);
    rc |= write_text(p, t);
    free(p);
    free(t);
    p = fmt("%s/pkg/manifest.json", root);
    t = fmt("[\n  {\n    \"process_name\": \"%s\",\n"
            "    \"process_wasm_path\": \"/%s.so\",\n"
            "    \"on_exit\": \"Restart\",\n"
            "    \"request_networking\": false,\n"
            "    \"request_capabilities\": [\"vfs:distro:sys\", "
            "\"http-server:distro:sys\", \"homepage:homepage:sys\"],\n"
            "    \"grant_capabilities\": [\"http-server:distro:sys\"],\n"
            "    \"public\": true\n  }\n]\n",
            name, name);
    rc |= write_text(p, t);
    free(p);
    free(t);
    p = fmt("%s/%s.c", root, snake);
    t = fmt("/* %s: a hyperprocess.  `hyperc build .` builds it, `hyperc "
            "test .` runs\n * the scripts in test/ against a node, `hyperc "
            "run --port "
            "8080 build/packages/%s`\n * serves it at "
            "http://localhost:8080/%s:%s:%s/ */\n"
            "#include <hyperc/hyperprocess.h>\n\n#include <stdint.h>\n\n"
            "typedef struct %s_state {\n    uint64_t count;\n} %s_state;\n\n"
            "HYPERPROCESS(%s_state, .name = \"%s\",\n"
            "             .ui = HP_UI(.authenticated = false),\n"
            "             .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING(\"/api\", "
            ".authenticated = false)),\n"
            "             .save_config = HP_SAVE_EVERY_MESSAGE,\n"
            "             .wit_world = \"%s-v0\");\n\n"
            "HP_INIT\nstatic void init(%s_state *s)\n{\n"
            "    hp_log_info(\"starting at %%llu\", (unsigned long "
            "long)s->count);\n}\n\n"
            "/* POST /api {\"Increment\": 2}, or a local request */\n"
            "HP_HTTP HP_LOCAL\nstatic uint64_t increment(%s_state *s, "
            "uint64_t by)\n{\n    return s->count += by;\n}\n\n"
            "/* GET /api/count */\n"
            "HP_HTTP_ROUTE(\"GET\", \"/api/count\") HP_LOCAL\n"
            "static uint64_t get_count(const %s_state *s)\n{\n"
            "    return s->count;\n}\n",
            name, name, name, name, pub, snake, snake, snake, name, name, snake,
            snake, snake);
    rc |= write_text(p, t);
    free(p);
    free(t);
    p = fmt("%s/pkg/ui/index.html", root);
    t = fmt("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            "<title>%s</title></head>\n<body>\n<h1>%s</h1>\n"
            "<p>count: <span id=\"count\">?</span> "
            "<button id=\"inc\">+1</button></p>\n<script>\n"
            "const api = location.pathname.replace(/\\/[^/]*$/, '') + "
            "'/api';\n"
            "async function show() {\n"
            "  const r = await fetch(api + '/count');\n"
            "  document.getElementById('count').textContent = await "
            "r.json();\n}\n"
            "document.getElementById('inc').onclick = async () => {\n"
            "  await fetch(api, {method: 'POST', body: "
            "JSON.stringify({Increment: 1})});\n  show();\n};\n"
            "show();\n</script>\n</body></html>\n",
            name, name);
    rc |= write_text(p, t);
    free(p);
    free(t);
    p = fmt("%s/test/basic.sh", root);
    t = fmt("#!/bin/sh\n"
            "# Run by `hyperc test` against a fresh node with this "
            "package:\n"
            "# $HYPERC is the hyperc command, $HYPERC_HOME the node's "
            "home,\n# $HYPERC_PORT its HTTP port.\nset -e\n"
            "p=%s:%s:%s\n"
            "out=$(\"$HYPERC\" inject --home \"$HYPERC_HOME\" $p "
            "'{\"Increment\": 2}')\n"
            "[ \"$out\" = 2 ] || { echo \"Increment: got $out\"; exit 1; "
            "}\n"
            "out=$(curl -s http://127.0.0.1:$HYPERC_PORT/$p/api/count)\n"
            "[ \"$out\" = 2 ] || { echo \"GET /api/count: got $out\"; exit "
            "1; }\n",
            name, name, pub);
    rc |= write_text(p, t);
    chmod(p, 0755);
    free(p);
    free(t);
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
    fprintf(f, "usage: hyperc build [DIR]\n"
               "\n"
               "Build the package in DIR (default .) with CMake against this "
               "hyperc:\n"
               "configure (first time) into DIR/build, then build; the "
               "package is\n"
               "DIR/build/packages/<name>.  Incremental; errors in compiler "
               "format.\n");
}

static int build_dir(const char *dir, bool quiet)
{
    char *pkgdir = package_dir();
    if (pkgdir == NULL) {
        fprintf(stderr, "hyperc build: no hypercConfig.cmake beside this "
                        "hyperc (install it, or run the hyperc of a build "
                        "tree)\n");
        return 1;
    }
    char *b = fmt("%s/build", dir);
    char *def = fmt("-Dhyperc_DIR=%s", pkgdir);
    printf("[1/2] configure %s\n", b);
    fflush(stdout);
#ifdef HYPERC_APP_CC
    char *cc = "-DCMAKE_C_COMPILER=" HYPERC_APP_CC;
#else
    char *cc = "-Wno-dev";
#endif
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
    if (rc != 0)
        fprintf(stderr, "hyperc build: failed (%d)\n", rc);
    free(b);
    free(def);
    free(pkgdir);
    return rc == 0 ? 0 : 1;
}

int hcl_cmd_build(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage_build(stdout);
        return 0;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        usage_build(stderr);
        return 2;
    }
    return build_dir(argc == 2 ? argv[1] : ".", true);
}

/* ---------------------------------------------------------------- test */

static void usage_test(FILE *f)
{
    fprintf(f, "usage: hyperc test [DIR]\n"
               "\n"
               "Build the package in DIR (default .), then run each test/*.sh "
               "against\n"
               "a node of its own: a temporary home, the package, an HTTP "
               "port.  A\n"
               "script sees $HYPERC (this command), $HYPERC_HOME and "
               "$HYPERC_PORT,\n"
               "and passes by exiting 0 within 120 s.  Prints PASS/FAIL per "
               "test;\n"
               "exit 1 if any failed.  Every node is stopped afterwards.\n");
}

static int free_port(void)
{
    /* a port from a wide range, checked by binding it */
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    return 20000 + rand() % 20000;
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

int hcl_cmd_test(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage_test(stdout);
        return 0;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        usage_test(stderr);
        return 2;
    }
    const char *dir = argc == 2 ? argv[1] : ".";
    if (build_dir(dir, true) != 0)
        return 1;
    /* the package: the one folder under build/packages */
    char *pkgs = fmt("%s/build/packages", dir);
    DIR *d = opendir(pkgs);
    char *pkg = NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && pkg == NULL)
            pkg = fmt("%s/%s", pkgs, e->d_name);
    if (d)
        closedir(d);
    char *tdir = fmt("%s/test", dir);
    char **tests = NULL;
    size_t nt = 0;
    d = opendir(tdir);
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".sh") == 0) {
            tests = realloc(tests, (nt + 1) * sizeof *tests);
            if (tests == NULL)
                abort();
            tests[nt++] = strdup(e->d_name);
        }
    }
    if (d)
        closedir(d);
    if (pkg == NULL || nt == 0) {
        fprintf(stderr, "hyperc test: %s\n",
                pkg ? "no test/*.sh scripts" : "no package was built");
        free(pkgs);
        free(tdir);
        free(pkg);
        return 1;
    }
    qsort(tests, nt, sizeof *tests, cmp_str);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    size_t failed = 0;
    for (size_t i = 0; i < nt; i++) {
        char tmpl[] = "/tmp/hyperc-test-XXXXXX";
        char *home = mkdtemp(tmpl);
        int port = free_port() + (int)i;
        char ports[16];
        snprintf(ports, sizeof ports, "%d", port);
        char *hdir = fmt("%s/home", home ? home : "/tmp");
        char *log = fmt("%s/node.out", home ? home : "/tmp");
        /* the node, in its own process group, so that it alone is
         * stopped */
        pid_t node = fork();
        if (node == 0) {
            setpgid(0, 0);
            FILE *o = freopen(log, "w", stdout);
            (void)o;
            dup2(1, 2);
            execl(exe, exe, "run", "--home", hdir, "--name", "test.os",
                  "--port", ports, pkg, (char *)NULL);
            _exit(127);
        }
        /* ready when the control socket answers */
        bool ready = false;
        bool gone = false;
        for (int k = 0; k < 400 && !ready && !gone; k++) {
            ready = log_says(log, " ready (control socket ");
            if (!ready) {
                gone = waitpid(node, NULL, WNOHANG) == node;
                usleep(50000);
            }
        }
        if (gone)
            node = 0;
        usleep(300000); /* the processes' start (bindings) */
        int rc = -1;
        if (ready) {
            pid_t t = fork();
            if (t == 0) {
                setenv("HYPERC", exe, 1);
                setenv("HYPERC_HOME", hdir, 1);
                setenv("HYPERC_PORT", ports, 1);
                char *script = fmt("%s/%s", tdir, tests[i]);
                alarm(120);
                execl("/bin/sh", "sh", script, (char *)NULL);
                _exit(127);
            }
            int st;
            waitpid(t, &st, 0);
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (node)
            kill(node, SIGINT);
        for (int k = 0; node && k < 100; k++) {
            if (waitpid(node, NULL, WNOHANG) == node) {
                node = 0;
                break;
            }
            usleep(50000);
        }
        if (node) {
            kill(node, SIGKILL);
            waitpid(node, NULL, 0);
        }
        printf("%s %s%s\n", rc == 0 ? "PASS" : "FAIL", tests[i],
               ready ? "" : " (the node did not start)");
        if (rc != 0) {
            failed++;
            printf("  node output: %s\n", log);
        } else if (home) {
            char *rm[] = {"rm", "-rf", home, NULL};
            run_cmd(rm);
        }
        fflush(stdout);
        free(hdir);
        free(log);
        free(tests[i]);
    }
    printf("%zu passed, %zu failed\n", nt - failed, failed);
    free(tests);
    free(pkgs);
    free(tdir);
    free(pkg);
    return failed ? 1 : 0;
}
