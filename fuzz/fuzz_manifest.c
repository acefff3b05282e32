/* libFuzzer: hc_package_parse on arbitrary metadata.json and
 * pkg/manifest.json texts.  The input is split at its first NUL (or in
 * half when it has none): metadata before, manifest after.  Never a crash
 * or leak; errors name a file; accepted packages satisfy the rules. */
#include "hyperc/node.h"
#include "node/package/package.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool safe(const char *s, bool dot)
{
    return hcc_name_safe(s, strlen(s), dot);
}

static void check_caps(const hc_manifest_cap *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hc_process_id_check(c[i].process) != 0)
            abort();
        char *canon = hcn_json_canonical(c[i].params);
        if (canon == NULL || strcmp(canon, c[i].params) != 0)
            abort(); /* params must be canonical JSON */
        free(canon);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t mlen = nul ? (size_t)(nul - data) : size / 2;
    size_t rest = nul ? size - mlen - 1 : size - mlen;
    const uint8_t *man_start = data + (nul ? mlen + 1 : mlen);
    char *meta = malloc(mlen + 1);
    char *man = malloc(rest + 1);
    if (meta == NULL || man == NULL)
        abort();
    memcpy(meta, data, mlen);
    meta[mlen] = 0;
    memcpy(man, man_start, rest);
    man[rest] = 0;

    hc_package p;
    char err[256];
    err[0] = 0;
    int rc = hc_package_parse(meta, man, &p, err, sizeof err);
    if (rc == 0) {
        if (!safe(p.package_name, false) || !safe(p.publisher, true) ||
            p.version == NULL || (p.entries_len > 0 && p.entries == NULL))
            abort();
        for (size_t i = 0; i < p.entries_len; i++) {
            const hc_manifest_entry *e = &p.entries[i];
            if (!safe(e->process_name, false) || e->process_wasm_path == NULL)
                abort();
            if (e->on_exit < HW_ON_EXIT_NONE ||
                e->on_exit > HW_ON_EXIT_REQUESTS ||
                (e->on_exit == HW_ON_EXIT_REQUESTS) !=
                    (e->on_exit_requests != NULL))
                abort();
            for (size_t k = 0; k < i; k++)
                if (strcmp(p.entries[k].process_name, e->process_name) == 0)
                    abort(); /* duplicates must be refused */
            check_caps(e->request_capabilities, e->request_capabilities_len);
            check_caps(e->grant_capabilities, e->grant_capabilities_len);
        }
        hc_package_fini(&p);
    } else {
        if (rc != -1 || err[0] == 0 || strstr(err, ".json") == NULL)
            abort(); /* every error names the file */
        if (p.package_name != NULL || p.entries != NULL || p.entries_len)
            abort(); /* output left zeroed */
    }
    free(meta);
    free(man);
    return 0;
}
