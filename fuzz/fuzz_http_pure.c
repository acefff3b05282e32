/* libFuzzer: the pure pieces of the node's HTTP code, where the bytes are
 * a client's or a process's: URL and query decoding, lossy UTF-8, path
 * normalizing, cookies, JWT verification, the login body, the access
 * decision, the router (util.c, auth.c, access.c), http-client's request
 * parser and header casing (client.c), and the WebSocketPush and
 * HttpResponse readers (common/ws_push.c, util.c).  The first byte picks the
 * piece; the rest is its input.  Checked beyond "no crash": decoded text is
 * valid UTF-8 and never longer than three times the input, the UTF-8 check
 * agrees with the lossy copy, a token the node made verifies, the access
 * decision never lets a request without a login reach an authenticated binding
 * nor a remote or proxied one reach a local-only binding, a WebSocketPush or an
 * HttpResponse the readers without a tree take reads the same with
 * jansson. */
#include "node/http/http.h"
#include "node/http/http_int.h"

#include <argon2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";

/* The login's check, against "fuzz-password" hashed with argon2id's
 * smallest parameters (the node's are Hyperware's, tens of ms a try: the
 * parser is what is fuzzed here, not argon2). */
static hcn_http_auth fz_auth;

static const hcn_http_auth *auth(void)
{
    static char encoded[128];
    if (fz_auth.hash == NULL) {
        if (argon2id_hash_encoded(1, 8, 1, "fuzz-password", 13, "fuzzsalt", 8,
                                  32, encoded, sizeof encoded) != ARGON2_OK)
            abort();
        fz_auth.hash = encoded;
        fz_auth.hex = "0xabcdef";
    }
    return &fz_auth;
}

static char *cstr(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, d, n);
    s[n] = 0;
    return s;
}

static void utf8_ok(const char *s, size_t n)
{
    size_t clean = 0;
    char *again = hcn_http_utf8_lossy((const uint8_t *)s, n, &clean);
    if (clean != n || memcmp(again, s, n) != 0) {
        fprintf(stderr, "not valid UTF-8 after decoding\n");
        abort();
    }
    free(again);
}

static void decoding(const uint8_t *d, size_t n)
{
    for (int plus = 0; plus < 2; plus++) {
        char *s = hcn_http_url_decode((const char *)d, n, plus);
        size_t len = strlen(s);
        if (len > 3 * n)
            abort();
        utf8_ok(s, len);
        free(s);
    }
    json_t *q = json_object();
    hcn_http_parse_query((const char *)d, n, q);
    const char *k;
    json_t *v;
    json_object_foreach(q, k, v) if (!json_is_string(v)) abort();
    json_decref(q);
    size_t ol = 0;
    char *l = hcn_http_utf8_lossy(d, n, &ol);
    utf8_ok(l, ol);
    if (hcc_utf8_valid(d, n) != (ol == n && memcmp(l, d, n) == 0)) {
        fprintf(stderr, "the UTF-8 check and the lossy copy disagree\n");
        abort();
    }
    free(l);
    char *p = hcn_http_normalize((const char *)d, n);
    free(p);
}

static void names(const uint8_t *d, size_t n)
{
    char *s = cstr(d, n);
    char *sub = hcn_http_secure_subdomain(s);
    free(sub);
    char *fp = hcn_http_format_path(s, "/api/");
    free(fp);
    hcn_http_is_proxy_header(s);
    char *cap = hcn_hc_header_case(s, n);
    free(cap);
    /* s as a Cookie header: its first name looked up, and another */
    const char *eq = strchr(s, '=');
    char *name = eq ? cstr(d, (size_t)(eq - s)) : NULL;
    char *c = hcn_http_cookie(s, name ? name : "hyperware-auth_fuzz.os");
    free(c);
    free(name);
    free(s);
}

static void tokens(const uint8_t *d, size_t n)
{
    char *s = cstr(d, n);
    hcn_http_jwt_valid(secret, sizeof secret, s, "fuzz.os", NULL, 1000, 86400);
    hcn_http_jwt_valid(secret, sizeof secret, s, "fuzz.os", "app-fuzz-sys",
                       1000, 86400);
    /* the input as a subdomain: a made token verifies, altered does not */
    char *t =
        hcn_http_jwt_make(secret, sizeof secret, "fuzz.os", s, 1000, 2000);
    if (t) {
        const char *want = *s ? s : NULL;
        bool ok = hcn_http_jwt_valid(secret, sizeof secret, t, "fuzz.os", want,
                                     1000, 86400);
        /* and not once expired */
        if (hcn_http_jwt_valid(secret, sizeof secret, t, "fuzz.os", want, 2001,
                               86400)) {
            fprintf(stderr, "an expired token verifies\n");
            abort();
        }
        /* (a subdomain is a JSON string or a process id: valid UTF-8) */
        size_t ul = 0;
        char *u = hcn_http_utf8_lossy(d, n, &ul);
        bool text = strchr(s, 0) == s + n && ul == n && memcmp(u, s, n) == 0;
        free(u);
        if (text && !ok) {
            fprintf(stderr, "a token the node made does not verify\n");
            abort();
        }
        free(t);
    }
    char *sub = NULL;
    hcn_http_login_check(auth(), (const char *)d, n, &sub);
    free(sub);
    free(s);
}

static void access_rule(const uint8_t *d, size_t n)
{
    uint8_t b = n ? d[0] : 0;
    char *s = cstr(d + (n > 0), n - (n > 0));
    hcn_http_rule rule = {.authenticated = b & 1,
                          .local_only = b & 2,
                          .secure_sub = (b & 4) ? "app-fuzz-sys" : NULL,
                          .app = "app:fuzz:sys"};
    hcn_http_facts facts = {.subdomain = s,
                            .subdomain_secure = b & 8,
                            .logged_in = b & 16,
                            .loopback = b & 32,
                            .proxied = b & 64};
    hcn_http_access a = hcn_http_access_check(&rule, &facts);
    if (a == HCN_HTTP_ALLOW && rule.authenticated && !facts.logged_in)
        abort();
    if (a == HCN_HTTP_ALLOW && rule.local_only &&
        (!facts.loopback || facts.proxied))
        abort();
    hcn_http_login_sub(&rule, b & 128);
    free(s);
}

/* Lines: patterns to bind until a line "-", then paths to match. */
static void routing(const uint8_t *d, size_t n)
{
    char *s = cstr(d, n);
    hcn_http_router r = {0};
    char *save = NULL;
    bool paths = false;
    int bound = 0;
    for (char *line = strtok_r(s, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "-") == 0) {
            paths = true;
            continue;
        }
        if (!paths && bound < 64) {
            char *data = strdup(line);
            free(hcn_http_router_add(&r, line, data));
            bound++;
            continue;
        }
        json_t *params = json_object();
        const hcn_http_route *rt = hcn_http_router_match(&r, line, params);
        if (rt && rt->data == NULL)
            abort();
        json_decref(params);
    }
    hcn_http_router_fini(&r, free);
    free(s);
}

static void client_request(const uint8_t *d, size_t n)
{
    hcn_hc_request r;
    if (hcn_hc_parse(d, n, &r) == 0) {
        if (r.kind == HCN_HC_HTTP)
            free(hcn_hc_check_http(&r));
        hcn_hc_request_fini(&r);
    }
}

/* The HttpResponse reader without a tree (util.c) against jansson: an
 * answer it takes, jansson reads with the same status and the same headers
 * in the same order. */
static void answer_body(const uint8_t *d, size_t n)
{
    static hcn_http_answer a;
    if (!hcn_http_answer_read((const char *)d, n, &a))
        return;
    json_error_t je;
    json_t *j = json_loadb((const char *)d, n, 0, &je);
    json_t *st = json_object_get(j, "status");
    json_t *hd = json_object_get(j, "headers");
    bool same = json_is_object(j) && json_object_size(j) == 2 &&
                json_is_integer(st) && json_integer_value(st) == a.status &&
                json_is_object(hd) && json_object_size(hd) == a.nheaders;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(hd, k, v)
    {
        same = same && i < a.nheaders && strcmp(k, a.names[i]) == 0 &&
               json_is_string(v) &&
               strcmp(json_string_value(v), a.values[i]) == 0;
        i++;
    }
    if (!same) {
        fprintf(stderr, "HttpResponse read unlike jansson: %.*s\n", (int)n,
                (const char *)d);
        abort();
    }
    json_decref(j);
}

/* The WebSocketPush reader without a tree (common/ws_push.c) against
 * jansson, the full parse it stands in for: a body it takes, jansson reads
 * as the same one-key object with the same channel and type; the body
 * written for that channel and type reads back the same.  And the same
 * bytes as an HttpResponse (answer_body). */
static void ws_push_body(const uint8_t *d, size_t n)
{
    answer_body(d, n);
    uint32_t ch = 0;
    int type = -1;
    if (!hcc_ws_push_read((const char *)d, n, &ch, &type))
        return;
    json_error_t je;
    json_t *j = json_loadb((const char *)d, n, JSON_DECODE_ANY, &je);
    json_t *in = json_object_get(j, "WebSocketPush");
    json_t *cid = json_object_get(in, "channel_id");
    const char *t = json_string_value(json_object_get(in, "message_type"));
    if (!json_is_object(j) || json_object_size(j) != 1 || !json_is_object(in) ||
        json_object_size(in) != 2 || !json_is_integer(cid) ||
        json_integer_value(cid) != (json_int_t)ch || t == NULL ||
        strcmp(t, hcc_ws_type_name(type)) != 0) {
        fprintf(stderr, "WebSocketPush read unlike jansson: %.*s\n", (int)n,
                (const char *)d);
        abort();
    }
    json_decref(j);
    char body[HCC_WS_PUSH_BODY_MAX];
    size_t bl = hcc_ws_push_body(body, ch, type);
    uint32_t ch2 = 0;
    int type2 = -1;
    if (bl != strlen(body) || !hcc_ws_push_read(body, bl, &ch2, &type2) ||
        ch2 != ch || type2 != type)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 7) {
    case 0: decoding(d, n); break;
    case 1: names(d, n); break;
    case 2: tokens(d, n); break;
    case 3: access_rule(d, n); break;
    case 4: routing(d, n); break;
    case 5: client_request(d, n); break;
    default: ws_push_body(d, n); break;
    }
    return 0;
}
