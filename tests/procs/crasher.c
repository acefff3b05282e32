/* crasher: counts its starts in its state, prints "crasher start #N", and
 * exits at once, to exercise on-exit Restart, backoff and give-up. */
#include <hyperc/abi.h>

#include <stdio.h>
#include <string.h>

void hw_init(const char *our)
{
    (void)our;
    unsigned starts = 0;
    hw_bytes b;
    if (hw_get_state(&b)) {
        if (b.len == sizeof starts)
            memcpy(&starts, b.ptr, sizeof starts);
        hw_bytes_fini(&b);
    }
    starts++;
    hw_set_state((const uint8_t *)&starts, sizeof starts);
    char line[64];
    snprintf(line, sizeof line, "crasher start #%u", starts);
    hw_print_to_terminal(0, line);
}
