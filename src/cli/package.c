/* `hyperc package`: the zip a Hyperware node installs.
 *
 * As kit lays it out: the contents of the package's pkg/ folder (the
 * manifest, the components, the UI, and api.zip holding the package's WIT
 * files), entries sorted by path, deflated, each with the same fixed time so
 * that the same package always gives the same bytes (and the same hash,
 * which the app store keys versions by).  The zip goes to
 * DIR/target/<package>:<publisher>.zip beside metadata.json's folder, as
 * kit's `target/` does. */
#include "cli.h"

#include <dirent.h>
#include <unistd.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zip.h>

/* The time every entry carries: kit's (2023-06-19 00:00). */
static time_t entry_time(void)
{
    struct tm tm = {
        .tm_year = 2023 - 1900, .tm_mon = 5, .tm_mday = 19, .tm_isdst = -1};
    return mktime(&tm);
}

typedef struct paths {
    char **v;
    size_t n, cap;
} paths;

static void paths_push(paths *p, char *s)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->v = realloc(p->v, p->cap * sizeof *p->v);
        if (p->v == NULL)
            abort();
    }
    p->v[p->n++] = s;
}

/* kit's order: paths compared name by name (a folder before "ui-x" and
 * "ui.txt" beside it), as '/' sorting before every other byte gives. */
static int cmp_path(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    for (; *x && *x == *y; x++, y++)
        ;
    int cx = *x == '/' ? 1 : *x ? *x + 1 : 0;
    int cy = *y == '/' ? 1 : *y ? *y + 1 : 0;
    return cx - cy;
}

/* Every file and folder under root/rel (relative paths, folders with a
 * trailing '/'), into out.  0, or -1 with errno. */
static int walk(const char *root, const char *rel, const char *skip, paths *out)
{
    char *dir = rel[0] ? hcl_fmt("%s/%s", root, rel) : hcl_fmt("%s", root);
    DIR *d = opendir(dir);
    free(dir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *r = rel[0] ? hcl_fmt("%s/%s", rel, e->d_name)
                         : hcl_fmt("%s", e->d_name);
        if (skip && strcmp(r, skip) == 0) {
            free(r);
            continue;
        }
        char *full = hcl_fmt("%s/%s", root, r);
        struct stat st;
        if (stat(full, &st) != 0) {
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            paths_push(out, hcl_fmt("%s/", r));
            rc = walk(root, r, skip, out);
        } else if (S_ISREG(st.st_mode)) {
            paths_push(out, hcl_fmt("%s", r));
        }
        free(full);
        free(r);
    }
    closedir(d);
    return rc;
}

/* Zip the files and folders under `root` (all but `skip`, relative) into
 * `zip_path`, plus `extra` (a file outside root) under `extra_name`.
 * 0, or -1 said on stderr. */
static int zip_tree(const char *root, const char *skip, const char *extra,
                    const char *extra_name, const char *zip_path)
{
    paths p = {0};
    if (walk(root, "", skip, &p) != 0) {
        fprintf(stderr, "hyperc package: cannot read %s: %s\n", root,
                strerror(errno));
        return -1;
    }
    if (extra)
        paths_push(&p, strdup(extra_name));
    qsort(p.v, p.n, sizeof *p.v, cmp_path);
    int zerr;
    zip_t *z = zip_open(zip_path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (z == NULL) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        fprintf(stderr, "hyperc package: cannot write %s: %s\n", zip_path,
                zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    time_t t = entry_time();
    int rc = 0;
    for (size_t i = 0; i < p.n && rc == 0; i++) {
        const char *name = p.v[i];
        size_t len = strlen(name);
        zip_int64_t idx;
        /* kit's modes: rwxr-xr-x, a folder's with its type bit */
        bool folder = name[len - 1] == '/';
        zip_uint32_t mode = folder ? 040755 : 0100755;
        if (folder) {
            char *bare = strndup(name, len - 1);
            idx = zip_dir_add(z, bare, ZIP_FL_ENC_UTF_8);
            free(bare);
        } else {
            char *file = extra && strcmp(name, extra_name) == 0
                             ? strdup(extra)
                             : hcl_fmt("%s/%s", root, name);
            zip_source_t *src = zip_source_file(z, file, 0, -1);
            free(file);
            idx = src ? zip_file_add(z, name, src, ZIP_FL_ENC_UTF_8) : -1;
            if (idx < 0 && src)
                zip_source_free(src);
            if (idx >= 0)
                zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_DEFLATE,
                                         0);
        }
        if (idx < 0 || zip_file_set_mtime(z, (zip_uint64_t)idx, t, 0) != 0 ||
            zip_file_set_external_attributes(z, (zip_uint64_t)idx, 0,
                                             ZIP_OPSYS_UNIX, mode << 16) != 0) {
            fprintf(stderr, "hyperc package: %s: %s\n", name, zip_strerror(z));
            rc = -1;
        }
    }
    if (rc == 0 && zip_close(z) != 0) {
        fprintf(stderr, "hyperc package: cannot write %s: %s\n", zip_path,
                zip_strerror(z));
        rc = -1;
    }
    if (rc != 0)
        zip_discard(z);
    for (size_t i = 0; i < p.n; i++)
        free(p.v[i]);
    free(p.v);
    return rc;
}

/* The sha256 of a file, in hex (65 bytes with the NUL); false on error. */
static bool file_sha256(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    unsigned char buf[65536], md[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(c, buf, n);
    unsigned mdlen = 0;
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    bool ok = !ferror(f);
    fclose(f);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return ok;
}

/* A name kit's start-package takes for a process or its component file:
 * a-z, 0-9 and '-' (hypermap's names). */
static bool kit_safe(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-'))
            return false;
    return true;
}

/* Every process of pkg/manifest.json is a component (a native package
 * cannot go to Hyperware).  0, or -1 said on stderr.  A name kit would
 * refuse is said as a warning: the node itself installs it. */
static int check_manifest(const char *pkg)
{
    char *path = hcl_fmt("%s/pkg/manifest.json", pkg);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    int rc = 0;
    if (!json_is_array(m)) {
        fprintf(stderr, "hyperc package: %s: not a manifest (%s)\n", path,
                je.text);
        rc = -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(m, i, e)
    {
        const char *w =
            json_string_value(json_object_get(e, "process_wasm_path"));
        size_t n = w ? strlen(w) : 0;
        if (n < 5 || strcmp(w + n - 5, ".wasm") != 0) {
            fprintf(stderr,
                    "hyperc package: %s: process_wasm_path %s is not a "
                    "component (build with --target wasm32)\n",
                    path, w ? w : "(missing)");
            rc = -1;
            continue;
        }
        const char *name =
            json_string_value(json_object_get(e, "process_name"));
        if (!kit_safe(name ? name : "", name ? strlen(name) : 0) ||
            w[0] != '/' || !kit_safe(w + 1, n - 6))
            fprintf(stderr,
                    "hyperc package: warning: %s: process %s (%s): kit "
                    "start-package takes only names of a-z, 0-9 and '-'\n",
                    path, name ? name : "(missing)", w);
    }
    json_decref(m);
    free(path);
    return rc;
}

static void usage_package(FILE *f)
{
    fprintf(f,
            "usage: hyperc package [-o FILE] [DIR]\n"
            "\n"
            "Build the package in DIR (default .) as wasm32 components "
            "(`hyperc build\n"
            "--target wasm32`) and write the zip a Hyperware node installs, "
            "as kit\n"
            "writes it: pkg/'s contents (manifest.json, the components, the "
            "UI) and\n"
            "api.zip (the WIT files of api/), to "
            "DIR/target/<package>:<publisher>.zip.\n"
            "Prints the zip's path and sha256.  DIR may also be a built wasm "
            "package.\n"
            "\n"
            "  -o FILE   write the zip to FILE instead\n");
}

int hcl_cmd_package(int argc, char **argv)
{
    const char *out = NULL, *dir = ".";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage_package(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && i == argc - 1) {
            dir = argv[i];
        } else {
            usage_package(stderr);
            return 2;
        }
    }
    hcl_set_target_wasm32(true);
    char *cml = hcl_fmt("%s/CMakeLists.txt", dir);
    struct stat st;
    bool sources = stat(cml, &st) == 0;
    free(cml);
    if (sources && hcl_build_dir(dir, true) != 0)
        return 1;
    char *pkg = hcl_package_resolve(dir);
    if (pkg == NULL)
        return 1;
    int rc = 1;
    char *meta_path = hcl_fmt("%s/metadata.json", pkg);
    json_error_t je;
    json_t *meta = json_load_file(meta_path, 0, &je);
    json_t *props = json_object_get(meta, "properties");
    const char *name =
        json_string_value(json_object_get(props, "package_name"));
    const char *pub = json_string_value(json_object_get(props, "publisher"));
    char *zip_path = NULL, *pkg_dir = hcl_fmt("%s/pkg", pkg);
    char *api_dir = hcl_fmt("%s/api", pkg);
    char *api_zip = hcl_fmt("%s/.api.zip", pkg);
    if (name == NULL || pub == NULL) {
        fprintf(stderr,
                "hyperc package: %s: no properties.package_name and "
                "publisher\n",
                meta_path);
        goto done;
    }
    if (check_manifest(pkg) != 0)
        goto done;
    /* pkg/api.zip: the package's WIT files (api/), as kit adds them */
    bool has_api = stat(api_dir, &st) == 0 && S_ISDIR(st.st_mode);
    if (has_api && zip_tree(api_dir, NULL, NULL, NULL, api_zip) != 0)
        goto done;
    if (out) {
        zip_path = strdup(out);
    } else {
        char *target = hcl_fmt("%s/target", sources ? dir : pkg);
        mkdir(target, 0755);
        zip_path = hcl_fmt("%s/%s:%s.zip", target, name, pub);
        free(target);
    }
    if (zip_tree(pkg_dir, "api.zip", has_api ? api_zip : NULL, "api.zip",
                 zip_path) != 0)
        goto done;
    char hash[65];
    if (!file_sha256(zip_path, hash)) {
        fprintf(stderr, "hyperc package: cannot read %s back\n", zip_path);
        goto done;
    }
    printf("%s\nsha256 %s\n", zip_path, hash);
    rc = 0;
done:
    unlink(api_zip);
    json_decref(meta);
    free(meta_path);
    free(zip_path);
    free(pkg_dir);
    free(api_dir);
    free(api_zip);
    free(pkg);
    return rc;
}
