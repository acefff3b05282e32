/* libFuzzer: the message parsers of the runtime modules state:distro:sys,
 * timer:distro:sys and homepage:homepage:sys (src/node/modules/), each
 * through its module's own handler on a node (not started: the harness
 * calls the handlers on its own thread), and the node's home
 * page, which shows the homepage tiles processes add.  The first byte
 * picks the module (bits 0-1), a blob with the request (bit 2: the bytes
 * after the first 0xff, where the body ends), and the sender (bit 3: a
 * process of another package, which state refuses; bit 4: with the
 * homepage's RemoveOther capability); the rest is the request's body.
 * Answers go to the fake sender and are dropped; timers set are fired at
 * once, so none outlives its input. */
#include "fuzz_node.h"
#include "node/http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hcn_proc *sys_src, *app_src, *mods[3];
static const char *const mod_pids[3] = {"state:distro:sys", "timer:distro:sys",
                                        "homepage:homepage:sys"};

static void setup(void)
{
    /* not started: the modules' threads stay out of the harness's way */
    hcn_node *n = fz_boot(NULL, false);
    sys_src = fz_proc("fuzz:distro:sys", true);
    app_src = fz_proc("app:fuzz:sys", true);
    for (int i = 0; i < 3; i++) {
        mods[i] = hcn_node_find(n, mod_pids[i]);
        if (mods[i] == NULL || mods[i]->ops == NULL)
            abort();
        hcn_proc_unref(mods[i]);
        /* their answers need messaging back to the senders */
        hcn_grant_messaging(n, mods[i], "fuzz:distro:sys");
        hcn_grant_messaging(n, mods[i], "app:fuzz:sys");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (sys_src == NULL)
        setup();
    uint8_t flags = data[0];
    int which = (flags & 3) % 3;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    hcn_blob *blob = NULL;
    const uint8_t *ff = memchr(body, 0xff, len);
    if ((flags & 4) && ff) {
        blob = hcn_blob_new(NULL, ff + 1, len - (size_t)(ff - body) - 1);
        len = (size_t)(ff - body);
    }
    hcn_proc *src = (flags & 8) ? app_src : sys_src;
    /* the capability {issuer: homepage, params: "RemoveOther"} */
    hcn_cap cap = {.issuer = mods[2]->addr, .params = "\"RemoveOther\""};
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 1, .source = src->addr,
                    .target = mods[which]->addr, .has_expects = true,
                    .expects = 5, .body = body, .body_len = len, .caps = &cap,
                    .ncaps = (flags & 16) ? 1 : 0, .blob = blob);
    hcn_blob_unref(blob);
    hcn_proc *mod = mods[which];
    mod->ops->handle(mod, m); /* consumes m */
    if (which == 1 && mod->ops->on_deadline)
        mod->ops->on_deadline(mod, INT64_MAX);
    if (which == 2) {
        size_t plen = 0;
        json_t *uis = json_array();
        char *page = hcn_http_home_page((hcn_node *)fz_node, uis, &plen);
        json_decref(uis);
        free(page);
    }
    fz_drain(sys_src, NULL, NULL);
    fz_drain(app_src, NULL, NULL);
    return 0;
}
