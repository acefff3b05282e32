/* ponger: answers every request with a response carrying the request's body
 * (the benchmark sends 8 bytes).  Half of the ping-pong benchmark; see
 * pinger.c and docs/benchmarks.md. */
#include <hyperc/abi.h>

void hw_init(const char *our)
{
    (void)our;
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            hw_response resp = {0};
            resp.body = r.message.request.body;
            hw_send_response(&resp, NULL);
        }
        hw_receive_result_fini(&r);
    }
}
