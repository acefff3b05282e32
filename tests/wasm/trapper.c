/* trapper: a raw-ABI process for the wasm target's crash handling.  It
 * answers each request: "ping" with "pong <n>" (n counts the requests of
 * this instance), "trap" by executing `unreachable`, "exit" by calling
 * exit(3) (a trap too: src/guest/wasi_shim.c), "print" by printf to stdout
 * and stderr before answering. */
#include <hyperc/abi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void answer(const char *text)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, NULL);
}

__attribute__((noinline)) static void trap_here(void)
{
    __builtin_trap();
}

void hw_init(const char *our)
{
    unsigned n = 0;
    hw_print_to_terminal(0, "trapper: started");
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *b = &r.message.request.body;
            char body[32] = {0};
            memcpy(body, b->ptr, b->len < sizeof body - 1 ? b->len : sizeof body - 1);
            n++;
            if (strcmp(body, "trap") == 0)
                trap_here();
            if (strcmp(body, "exit") == 0)
                exit(3);
            if (strcmp(body, "print") == 0) {
                printf("trapper: to stdout %u\n", n);
                fprintf(stderr, "trapper: to stderr %u\n", n);
            }
            char reply[64];
            snprintf(reply, sizeof reply, "pong %u", n);
            answer(reply);
        }
        hw_receive_result_fini(&r);
    }
    (void)our;
}
