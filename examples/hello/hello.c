/* hello: a process written against the raw process ABI (include/hyperc/abi.h).
 *
 * It answers every request with a greeting and keeps the number of greetings
 * in its persisted state, so the count survives restarts of the node:
 *
 *   hyperc inject hello:hello:hyperc.os 'Ada'   ->  Hello, Ada! (greeting 1)
 *
 * Until `hyperc gen` exists (the next milestone), this is what a process looks
 * like underneath: receive a message, answer it, repeat. */
#include <hyperc/abi.h>

#include <stdio.h>
#include <string.h>

static unsigned long long greetings;

static void load_state(void)
{
    hw_bytes b;
    if (hw_get_state(&b)) {
        if (b.len == sizeof greetings)
            memcpy(&greetings, b.ptr, sizeof greetings);
        hw_bytes_fini(&b);
    }
}

static void answer(const char *text)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, NULL);
}

void hw_init(const char *our)
{
    load_state();
    char line[256];
    snprintf(line, sizeof line, "%s started; %llu greetings so far", our,
             greetings);
    hw_print_to_terminal(0, line);
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *body = &r.message.request.body;
            char name[128];
            int n = body->len < sizeof name - 1 ? (int)body->len
                                                : (int)sizeof name - 1;
            memcpy(name, body->ptr, (size_t)n);
            name[n] = 0;
            greetings++;
            hw_set_state((const uint8_t *)&greetings, sizeof greetings);
            char reply[256];
            snprintf(reply, sizeof reply, "Hello, %s! (greeting %llu)",
                     n ? name : "stranger", greetings);
            answer(reply);
        }
        hw_receive_result_fini(&r);
    }
}
