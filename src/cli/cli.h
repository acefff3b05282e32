/* Internal to the hyperc command (src/cli): what its files share.  Not an
 * installed header. */
#ifndef HYPERC_CLI_H
#define HYPERC_CLI_H

#include <jansson.h>
#include <stdbool.h>

/* The commands (argv[0] is the command's name). */
int hcl_cmd_new(int argc, char **argv);
int hcl_cmd_build(int argc, char **argv);
int hcl_cmd_test(int argc, char **argv);
int hcl_cmd_package(int argc, char **argv);
int hcl_cmd_watch(int argc, char **argv);
int hcl_cmd_install(int argc, char **argv);
int hcl_cmd_ps(int argc, char **argv);
int hcl_cmd_logs(int argc, char **argv);

/* One request to the node whose home is `home` over its control socket
 * (frames and their limit: node/control/frame.h); the reply (caller frees),
 * or NULL when no node answers (said on stderr unless quiet) or the exchange
 * fails (said on stderr).  Blocks until the node answers. */
json_t *hcl_ctl_call(const char *home, json_t *req, bool quiet);

/* printf into a new heap string (aborts when out of memory). */
char *hcl_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* What hcl_build_dir builds and hcl_package_resolve finds: native shared
 * objects (false, the default: dir/build) or wasm32 components (true:
 * dir/build-wasm32, with hyperc's wasm32 toolchain file).  Set once from
 * `--target wasm32`, before building. */
void hcl_set_target_wasm32(bool wasm32);
/* Whether "--target X" names a target: 0 (native), 1 (wasm32), or -1
 * (unknown, said on stderr). */
int hcl_parse_target(const char *name);

/* Configure (first time) and build the package whose sources are in dir
 * with CMake against this hyperc.  0 or 1 (the compiler said why). */
int hcl_build_dir(const char *dir, bool quiet);

/* The package folder to run for `dir` (heap string, absolute): the one
 * package dir/build/packages/<name> its build made when dir holds sources
 * (CMakeLists.txt), else dir itself (a built package; loading it says what
 * is wrong with it).  NULL, said on stderr, when there is none. */
char *hcl_package_resolve(const char *dir);

/* The path of this hyperc executable (heap string). */
char *hcl_self_exe(void);

/* The templates of `hyperc new` (src/cli/templates/NAME.in), compiled in by
 * embed_templates.cmake: each file's text, NUL-terminated, under its file
 * name; the table ends with a {NULL, NULL} entry. */
typedef struct hcl_template {
    const char *name;
    const char *text;
} hcl_template;
extern const hcl_template hcl_templates[];

#endif
