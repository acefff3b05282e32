/* http-client:distro:sys request parsing and checks (mod_http_client.c):
 * HttpClientAction as serde reads it (required and optional fields, u32
 * channel ids, WsMessageType), the checks Hyperware makes before sending
 * (method, URL, version) with its error shapes, and response header names
 * as Hyperware reports them.  The network side is in
 * tests/blackbox/test_http_client.py. */
#include "unit_helpers.h"
#include "node/http/http.h"

static int parse(const char *s, hcn_hc_request *r)
{
    return hcn_hc_parse(s, strlen(s), r);
}

static void test_parse_http(void **st)
{
    (void)st;
    hcn_hc_request r;
    assert_int_equal(parse("{\"Http\":{\"method\":\"POST\",\"version\":null,"
                           "\"url\":\"http://a.b/c\",\"headers\":{\"X-A\":"
                           "\"1\",\"Content-Type\":\"text/plain\"}}}",
                           &r),
                     0);
    assert_int_equal(r.kind, HCN_HC_HTTP);
    assert_string_equal(r.method, "POST");
    assert_null(r.version);
    assert_string_equal(r.url, "http://a.b/c");
    assert_int_equal(r.nheaders, 2);
    assert_string_equal(r.headers[0].name, "X-A");
    assert_string_equal(r.headers[0].value, "1");
    assert_false(r.has_timeout);
    assert_null(hcn_hc_check_http(&r));
    hcn_hc_request_fini(&r);
    /* version may be absent (an Option); unknown fields are ignored; the
     * optional timeout is read. */
    assert_int_equal(parse("{\"Http\":{\"method\":\"GET\",\"url\":\"https://"
                           "x.y\",\"headers\":{},\"extra\":1,\"timeout\":3,"
                           "\"version\":\"HTTP/1.1\"}}",
                           &r),
                     0);
    assert_string_equal(r.version, "HTTP/1.1");
    assert_true(r.has_timeout);
    assert_int_equal(r.timeout_s, 3);
    hcn_hc_request_fini(&r);
}

static void test_parse_malformed(void **st)
{
    (void)st;
    const char *bad[] = {
        "",
        "nope",
        "\"Http\"",
        "{}",
        "{\"Http\":{\"method\":\"GET\",\"url\":\"x\"}}", /* no headers */
        "{\"Http\":{\"url\":\"x\",\"headers\":{}}}",     /* no method */
        "{\"Http\":{\"method\":\"GET\",\"url\":\"x\",\"headers\":{\"a\":1}}}",
        "{\"Http\":{\"method\":\"GET\",\"url\":\"x\",\"headers\":{},"
        "\"version\":3}}",
        "{\"Http\":{\"method\":\"GET\",\"url\":\"x\",\"headers\":{},"
        "\"timeout\":-1}}",
        "{\"Http\":{},\"WebSocketClose\":{\"channel_id\":1}}",
        "{\"WebSocketClose\":{\"channel_id\":-1}}",
        "{\"WebSocketClose\":{\"channel_id\":4294967296}}",
        "{\"WebSocketClose\":{}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1}}",
        "{\"WebSocketOpen\":{\"url\":\"ws://a\",\"channel_id\":1}}",
        "{\"Nope\":{\"channel_id\":1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hcn_hc_request r;
        if (parse(bad[i], &r) == 0)
            fail_msg("parsed: %s", bad[i]);
    }
}

static void test_parse_websocket(void **st)
{
    (void)st;
    hcn_hc_request r;
    assert_int_equal(parse("{\"WebSocketOpen\":{\"url\":\"wss://h/p\","
                           "\"headers\":{\"A\":\"b\"},\"channel_id\":"
                           "4294967295}}",
                           &r),
                     0);
    assert_int_equal(r.kind, HCN_HC_WS_OPEN);
    assert_string_equal(r.url, "wss://h/p");
    assert_int_equal(r.channel_id, 4294967295u);
    assert_int_equal(r.nheaders, 1);
    hcn_hc_request_fini(&r);
    static const char *types[] = {"Text", "Binary", "Ping", "Pong", "Close"};
    for (int i = 0; i < 5; i++) {
        char buf[128];
        snprintf(buf, sizeof buf,
                 "{\"WebSocketPush\":{\"channel_id\":9,\"message_type\":"
                 "\"%s\"}}",
                 types[i]);
        assert_int_equal(parse(buf, &r), 0);
        assert_int_equal(r.kind, HCN_HC_WS_PUSH);
        assert_int_equal(r.channel_id, 9);
        assert_int_equal(r.message_type, i);
        hcn_hc_request_fini(&r);
    }
    assert_int_equal(parse("{\"WebSocketClose\":{\"channel_id\":0}}", &r), 0);
    assert_int_equal(r.kind, HCN_HC_WS_CLOSE);
    hcn_hc_request_fini(&r);
}

static void check(const char *method, const char *url, const char *version,
                  const char *want)
{
    hcn_hc_request r = {.kind = HCN_HC_HTTP,
                        .method = (char *)method,
                        .url = (char *)url,
                        .version = (char *)version};
    char *got = hcn_hc_check_http(&r);
    if (want == NULL) {
        if (got)
            fail_msg("%s %s: %s", method, url, got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
    free(got);
}

static void test_checks(void **st)
{
    (void)st;
    check("GET", "http://127.0.0.1:8080/a?b=c", NULL, NULL);
    check("PURGE", "https://example.com", "HTTP/2.0", NULL);
    check("get", "http://x/", NULL, NULL); /* an extension method */
    check("", "http://x/", NULL, "{\"Err\":{\"BadMethod\":{\"method\":\"\"}}}");
    check("GE T", "http://x/", NULL,
          "{\"Err\":{\"BadMethod\":{\"method\":\"GE T\"}}}");
    check("G(", "http://x/", NULL,
          "{\"Err\":{\"BadMethod\":{\"method\":\"G(\"}}}");
    check("GET", "relative/path", NULL,
          "{\"Err\":{\"BadUrl\":{\"url\":\"relative/path\"}}}");
    check("GET", "http://", NULL,
          "{\"Err\":{\"BadUrl\":{\"url\":\"http://\"}}}");
    check("GET", "http://x/", "HTTP/1.2",
          "{\"Err\":{\"BadVersion\":{\"version\":\"HTTP/1.2\"}}}");
    check("GET", "http://x/", "HTTP/0.9", NULL);
    check("GET", "http://x/", "HTTP/3.0", NULL);
}

static void test_header_case(void **st)
{
    (void)st;
    const char *cases[][2] = {
        {"content-type", "Content-Type"},
        {"CONTENT-LENGTH", "Content-Length"},
        {"x-a-b", "X-A-B"},
        {"etag", "Etag"},
        {"www-authenticate", "Www-Authenticate"},
        {"a--b", "A--B"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *s = hcn_hc_header_case(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(s, cases[i][1]);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_http),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_parse_websocket),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_header_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
