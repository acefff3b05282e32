/* fragile: a process that starts, or refuses to, as its stored state says,
 * for what a reinstall and `hyperc ps` report (test_operability.py):
 *
 *   state "segv"   it crashes (SIGSEGV) as it starts;
 *   state "quit"   it says why at level 0 and returns before it receives;
 *   otherwise      it serves: "set WORD" stores WORD as its state and
 *                  answers "ok"; anything else is answered as it came.
 */
#include <hyperc/abi.h>

#include <string.h>

static void answer(const uint8_t *p, size_t n)
{
    hw_response r;
    memset(&r, 0, sizeof r);
    r.body.ptr = (uint8_t *)p;
    r.body.len = n;
    hw_send_response(&r, NULL);
}

static bool state_is(const hw_bytes *b, const char *s)
{
    return b->len == strlen(s) && memcmp(b->ptr, s, b->len) == 0;
}

void hw_init(const char *our)
{
    (void)our;
    hw_bytes st;
    if (hw_get_state(&st)) {
        bool segv = state_is(&st, "segv"), quit = state_is(&st, "quit");
        hw_bytes_fini(&st);
        if (segv) {
            volatile int *volatile nowhere = NULL;
            *nowhere = 1;
        }
        if (quit) {
            hw_print_to_terminal(0, "fragile: my state says quit; not "
                                    "starting");
            return;
        }
    }
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *b = &r.message.request.body;
            if (b->len > 4 && memcmp(b->ptr, "set ", 4) == 0) {
                hw_set_state(b->ptr + 4, b->len - 4);
                answer((const uint8_t *)"ok", 2);
            } else {
                answer(b->ptr, b->len);
            }
        }
        hw_receive_result_fini(&r);
    }
}
