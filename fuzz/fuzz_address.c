/* libFuzzer: address and process-id validation on arbitrary bytes.
 * Checks that hc_address_check and hw_address_parse agree, that a parsed
 * address formats back to the input, and that the process-id part of a
 * valid address is a valid process id. */
#include "hyperc/abi.h"
#include "hyperc/node.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    size_t len = strlen(s); /* up to the first NUL */

    int rc = hc_address_check(s);
    if (rc > 0 || hc_err_name(rc) == NULL || hc_strerror(rc) == NULL)
        abort();
    int prc = hc_process_id_check(s);
    if (prc > 0)
        abort();

    hw_address a;
    memset(&a, 0, sizeof a);
    int parsed = hw_address_parse(s, &a);
    if ((parsed == 0) != (rc == 0))
        abort(); /* parse and check disagree */
    if (parsed == 0) {
        char buf[64];
        size_t need = hw_address_format(&a, buf, sizeof buf);
        if (need != len)
            abort();
        char *full = malloc(need + 1);
        if (full == NULL)
            abort();
        if (hw_address_format(&a, full, need + 1) != need ||
            strcmp(full, s) != 0)
            abort(); /* no round trip */
        /* The process id after '@' is valid on its own; a valid address
         * is never a valid process id ('@' is not hypermap-safe). */
        const char *at = strchr(s, '@');
        if (at == NULL || hc_process_id_check(at + 1) != 0 || prc == 0)
            abort();
        if (strcmp(a.node, "") == 0 || strchr(a.process.process_name, '.') ||
            strchr(a.process.package_name, '.'))
            abort();
        free(full);
        hw_address_fini(&a);
    } else if (a.node != NULL) {
        abort(); /* written on failure */
    }
    free(s);
    return 0;
}
