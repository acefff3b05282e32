/* libFuzzer: the request parser of vfs:distro:sys (vfs.c) and its path
 * normalizer.  The input is a request body.  A parsed request's paths, and
 * the input itself taken as a path, must normalize to something that
 * cannot leave the vfs root: no empty, "." or ".." component, no leading
 * or trailing '/', never longer than the input, and normalizing it again
 * changes nothing. */
#include "node/modules/modules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *path)
{
    char *n = hcn_vfs_normalize(path);
    if (n == NULL)
        return;
    size_t len = strlen(n);
    bool bad =
        len > strlen(path) || (len && (n[0] == '/' || n[len - 1] == '/'));
    for (const char *c = n; !bad && *c;) {
        const char *e = strchr(c, '/');
        size_t k = e ? (size_t)(e - c) : strlen(c);
        bad = k == 0 || (k == 1 && c[0] == '.') ||
              (k == 2 && c[0] == '.' && c[1] == '.');
        c += k + (e != NULL);
    }
    char *again = bad ? NULL : hcn_vfs_normalize(n);
    if (bad || again == NULL || strcmp(again, n) != 0) {
        fprintf(stderr, "bad normalization of '%s': '%s'\n", path, n);
        abort();
    }
    free(again);
    free(n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hcn_vfs_request r;
    if (hcn_vfs_parse_request(data, size, &r) == 0) {
        if (r.path == NULL || (size_t)r.action > HCN_VFS_HASH)
            abort();
        if ((r.action == HCN_VFS_RENAME || r.action == HCN_VFS_COPY_FILE) !=
            (r.new_path != NULL))
            abort();
        check_path(r.path);
        if (r.new_path)
            check_path(r.new_path);
        hcn_vfs_request_fini(&r);
    }
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    check_path(s);
    free(s);
    return 0;
}
