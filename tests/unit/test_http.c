/* http-server:distro:sys without sockets (http/util.c, http/auth.c): the
 * router as route_recognizer matches, Hyperware's path formatting, query
 * decoding, lossy UTF-8, the WebSocketPush body (common/ws_push.c),
 * loopback peers, JWTs, cookies, the login check and the access check. */
#include "unit_helpers.h"

#include "node/http/http_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static const char *match(hcn_http_router *r, const char *path, json_t *p)
{
    const hcn_http_route *rt = hcn_http_router_match(r, path, p);
    return rt ? rt->data : NULL;
}

static void router_matches_like_route_recognizer(void **state)
{
    (void)state;
    hcn_http_router r = {0};
    assert_null(hcn_http_router_add(&r, "/a:b:c", "root"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/api", "api"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/item/:id", "item"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/item/new", "new"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/f/*rest", "files"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/:x/:y", "two"));
    json_t *p = json_object();
    assert_string_equal(match(&r, "/a:b:c/api", p), "api");
    assert_int_equal(json_object_size(p), 0);
    assert_string_equal(match(&r, "a:b:c", NULL), "root"); /* no '/' */
    assert_string_equal(match(&r, "/a:b:c/item/7", p), "item");
    assert_string_equal(json_string_value(json_object_get(p, "id")), "7");
    /* a static segment ranks above a dynamic one */
    assert_string_equal(match(&r, "/a:b:c/item/new", NULL), "new");
    json_object_clear(p);
    assert_string_equal(match(&r, "/a:b:c/f/x/y.txt", p), "files");
    assert_string_equal(json_string_value(json_object_get(p, "rest")),
                        "x/y.txt");
    /* a star needs at least one character; two dynamics rank above it */
    assert_string_equal(match(&r, "/a:b:c/f/x", NULL), "two");
    assert_null(match(&r, "/a:b:c/f/", NULL));
    assert_null(match(&r, "/a:b:c/api/more/deep", NULL));
    assert_null(match(&r, "/other", NULL));
    /* re-adding replaces and hands back the old data */
    assert_string_equal(hcn_http_router_add(&r, "/a:b:c/api", "api2"), "api");
    assert_string_equal(match(&r, "/a:b:c/api", NULL), "api2");
    assert_int_equal(r.len, 6);
    json_decref(p);
    hcn_http_router_fini(&r, NULL);
}

static void paths_are_formatted_as_hyperware(void **state)
{
    (void)state;
    char *s = hcn_http_format_path("a:b:c", "/api/");
    assert_string_equal(s, "/a:b:c/api");
    free(s);
    s = hcn_http_format_path("a:b:c", "api");
    assert_string_equal(s, "/a:b:c/api");
    free(s);
    s = hcn_http_format_path("a:b:c", "/");
    assert_string_equal(s, "/a:b:c");
    free(s);
    s = hcn_http_format_path("homepage:homepage:sys", "/x/");
    assert_string_equal(s, "/x");
    free(s);
    s = hcn_http_secure_subdomain("app:my-pkg:pub.os");
    assert_string_equal(s, "my-pkg-pub-os");
    free(s);
}

static void queries_and_utf8(void **state)
{
    (void)state;
    json_t *q = json_object();
    const char *qs = "a=1&b=x%20y+z&a=2&empty&bad=%zz%4&u=%C3%A9%FF";
    hcn_http_parse_query(qs, strlen(qs), q);
    assert_string_equal(json_string_value(json_object_get(q, "a")), "2");
    assert_string_equal(json_string_value(json_object_get(q, "b")), "x y z");
    assert_string_equal(json_string_value(json_object_get(q, "empty")), "");
    assert_string_equal(json_string_value(json_object_get(q, "bad")), "%zz%4");
    assert_string_equal(json_string_value(json_object_get(q, "u")),
                        "\xC3\xA9\xEF\xBF\xBD");
    json_decref(q);
    size_t n;
    char *s = hcn_http_utf8_lossy(
        (const uint8_t *)"ok\xE2\x82 \xF0\x9F\x98\x80", 10, &n);
    assert_string_equal(s, "ok\xEF\xBF\xBD \xF0\x9F\x98\x80");
    assert_true(hcc_utf8_valid((const uint8_t *)s, strlen(s)));
    free(s);
    assert_false(
        hcc_utf8_valid((const uint8_t *)"ok\xE2\x82 \xF0\x9F\x98\x80", 10));
    assert_false(hcc_utf8_valid((const uint8_t *)"\xED\xA0\x80", 3));
    assert_false(hcc_utf8_valid((const uint8_t *)"\xC0\x80", 2));
    assert_true(hcc_utf8_valid((const uint8_t *)"", 0));
}

/* The server's own JSON strings are jansson's, byte for byte: what
 * processes parsed when the server built its JSON with jansson. */
static void json_strings_as_jansson_writes_them(void **state)
{
    (void)state;
    char s[160];
    size_t n = 0;
    for (int ch = 1; ch < 128; ch++)
        s[n++] = (char)ch;
    const char *u = "\xC3\xA9\xE2\x80\xA8\xF0\x9F\x98\x80/</";
    memcpy(s + n, u, strlen(u));
    n += strlen(u);
    json_t *j = json_stringn(s, n);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    hcn_http_out o = {0};
    hcn_http_out_jstr(&o, s, n);
    assert_string_equal(o.buf, want);
    free(want);
    json_decref(j);
    o.len = 0;
    json_t *obj = json_object();
    hcn_http_out_json(&o, obj);
    assert_string_equal(o.buf, "{}");
    json_object_set_new(obj, "id", json_string("7"));
    o.len = 0;
    hcn_http_out_json(&o, obj);
    assert_string_equal(o.buf, "{\"id\":\"7\"}");
    json_decref(obj);
    o.len = 0;
    hcn_http_out_u64(&o, 0);
    hcn_http_out_raw(&o, " ", 1);
    hcn_http_out_u64(&o, UINT64_MAX);
    assert_string_equal(o.buf, "0 18446744073709551615");
    free(o.buf);
}

/* The word-at-a-time paths of the string writer and the UTF-8 check: a
 * byte that needs an escape, or is not ASCII, at every place in and around
 * a word, as jansson writes and judges it. */
static void strings_by_words(void **state)
{
    (void)state;
    static const char specials[] = {'\x01', '\x1f', '"', '\\',   ' ', '!',
                                    '#',    '[',    ']', '\x7f', '\n'};
    for (size_t k = 0; k < sizeof specials; k++) {
        for (size_t at = 0; at < 20; at++) {
            char s[24];
            memset(s, 'a', sizeof s);
            s[at] = specials[k];
            json_t *j = json_stringn(s, sizeof s);
            char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
            hcn_http_out o = {0};
            hcn_http_out_jstr(&o, s, sizeof s);
            assert_string_equal(o.buf, want);
            free(want);
            json_decref(j);
            free(o.buf);
        }
    }
    for (size_t at = 0; at < 20; at++) {
        uint8_t s[24];
        memset(s, 'a', sizeof s);
        s[at] = 0xC3; /* a lead byte: valid only with its continuation */
        assert_false(hcc_utf8_valid(s, at + 1));
        s[at + 1] = 0xA9;
        assert_true(hcc_utf8_valid(s, sizeof s));
        s[at + 1] = 'a';
        assert_false(hcc_utf8_valid(s, sizeof s));
    }
}

static bool push_read(const char *body, uint32_t *ch, int *type)
{
    *ch = 12345;
    *type = -7;
    return hcc_ws_push_read(body, strlen(body), ch, type);
}

/* The WebSocketPush body written as snprintf wrote it, and read without a
 * tree: the one shape taken, everything else left to jansson. */
static void ws_push_bodies(void **state)
{
    (void)state;
    char b[HCC_WS_PUSH_BODY_MAX];
    size_t bl = hcc_ws_push_body(b, 7, HCC_WS_TEXT);
    assert_int_equal(bl, strlen(b));
    assert_string_equal(
        b, "{\"WebSocketPush\":{\"channel_id\":7,\"message_type\":\"Text\"}}");
    hcc_ws_push_body(b, UINT32_MAX, HCC_WS_BINARY);
    assert_string_equal(b, "{\"WebSocketPush\":{\"channel_id\":4294967295,"
                           "\"message_type\":\"Binary\"}}");
    hcc_ws_push_body(b, 0, 99);
    assert_string_equal(
        b, "{\"WebSocketPush\":{\"channel_id\":0,\"message_type\":\"Close\"}}");
    uint32_t ch;
    int type;
    assert_true(push_read(b, &ch, &type));
    assert_int_equal(ch, 0);
    assert_int_equal(type, HCC_WS_CLOSE);
    assert_true(
        push_read(" {\"WebSocketPush\" :\n{\"message_type\":\"P\\u006fng\","
                  "\"channel_id\":4294967295}}\r\n",
                  &ch, &type));
    assert_int_equal(ch, UINT32_MAX);
    assert_int_equal(type, HCC_WS_PONG);
    static const char *const others[] = {
        "",
        "{}",
        "[]",
        "{\"WebSocketPush\":{\"channel_id\":1}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"},"
        "\"x\":1}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"},"
        "\"WebSocketPush\":{\"channel_id\":2,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"channel_id\":2,"
        "\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\","
        "\"extra\":null}}",
        "{\"WebSocketPush\":{\"channel_id\":4294967296,\"message_type\":"
        "\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":-1,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1.0,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1e2,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":01,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":\"1\",\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\\u0000\"}"
        "}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"}} x",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"}}{}",
        /* an unterminated string after the object, ending as one would */
        "{\"WebSocketPush\":{\"channel_id\":7,\"message_type\":\"Text\"}}"
        "\"WebSock]",
        "{\"WebSocketPush\":{\"channel_id\":7,\"message_type\":\"Text\"}} "
        "\"x\\\"}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"}",
        "{\"WebSocketPush\":\f{\"channel_id\":1,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"}}\v",
        "/**/{\"WebSocketPush\":{\"channel_id\":1,\"message_type\":\"Text\"}}",
        "{\"WebSocketPush\":[1,\"Text\"]}",
        "{\"WebSocketClose\":1}",
        "{\"Bind\":{\"path\":\"/\"}}",
    };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        if (push_read(others[i], &ch, &type))
            fail_msg("taken: %s", others[i]);
    }
    assert_false(hcc_ws_push_read(NULL, 0, &ch, &type));
    /* every body as written, read back (matched byte for byte) */
    static const uint32_t ids[] = {0, 9, 10, 123456789, UINT32_MAX};
    for (int k = 0; k < HCC_WS_TYPE_COUNT; k++) {
        for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
            hcc_ws_push_body(b, ids[i], k);
            assert_true(push_read(b, &ch, &type));
            assert_int_equal(ch, ids[i]);
            assert_int_equal(type, k);
        }
    }
}

/* A process's plain HttpResponse read without a tree, in order; anything
 * else left to jansson. */
static void answers_read_without_a_tree(void **state)
{
    (void)state;
    static hcn_http_answer a;
    const char *ok =
        " {\"headers\":{\"Content-Type\":\"text/plain\",\"X-B\":"
        "\"caf\xC3\xA9 \\\"q\\\"\",\"x-a\":\"\"},\"status\":404}\n";
    assert_true(hcn_http_answer_read(ok, strlen(ok), &a));
    assert_int_equal(a.status, 404);
    assert_int_equal(a.nheaders, 3);
    assert_string_equal(a.names[0], "Content-Type");
    assert_string_equal(a.values[0], "text/plain");
    assert_string_equal(a.names[1], "X-B");
    assert_string_equal(a.values[1], "caf\xC3\xA9 \"q\"");
    assert_string_equal(a.names[2], "x-a");
    assert_string_equal(a.values[2], "");
    const char *empty = "{\"status\":200,\"headers\":{}}";
    assert_true(hcn_http_answer_read(empty, strlen(empty), &a));
    assert_int_equal(a.nheaders, 0);
    /* the plain shape with JSON's blanks everywhere (read by hand) */
    const char *blanks = "\t{ \"status\" : 201 ,\r\n \"headers\" : { \"A\" "
                         ": \"1\" , \"b\":\"x y\" } }\n";
    assert_true(hcn_http_answer_read(blanks, strlen(blanks), &a));
    assert_int_equal(a.status, 201);
    assert_int_equal(a.nheaders, 2);
    assert_string_equal(a.names[1], "b");
    assert_string_equal(a.values[1], "x y");
    static const char *const others[] = {
        "",
        "{}",
        "[]",
        "{\"status\":200}",
        "{\"headers\":{}}",
        "{\"status\":200,\"headers\":{},\"body\":null}",
        "{\"status\":200,\"status\":201,\"headers\":{}}",
        "{\"status\":200,\"headers\":{\"A\":\"1\",\"A\":\"2\"}}",
        "{\"status\":200,\"headers\":{\"A\":1}}",
        "{\"status\":200,\"headers\":{\"A\":null}}",
        "{\"status\":200,\"headers\":{\"A\":[\"1\"]}}",
        "{\"status\":200,\"headers\":[]}",
        "{\"status\":-1,\"headers\":{}}",
        "{\"status\":200.0,\"headers\":{}}",
        "{\"status\":2e2,\"headers\":{}}",
        "{\"status\":\"200\",\"headers\":{}}",
        "{\"status\":1234567890123456789,\"headers\":{}}",
        "{\"status\":9922222222222222222991,\"headers\":{}}",
        "{\"status\":200,\"headers\":{\"A\":\"\\u0041\"}}",
        "{\"status\":200,\"headers\":{\"A\":\"\\ud800\"}}",
        "{\"status\":200,\"headers\":{\"A\":\"\xED\xA0\x80\"}}",
        "{\"status\":200,\"headers\":{\"A\":\"\xC0\x80\"}}",
        "{\"status\":200,\"headers\":{}} []",
        "{\"status\":200,\"headers\":{}}\f",
        "{\"status\":200,\"headers\":{\"A\":\"1\"}",
        "{\"status\":0200,\"headers\":{}}",
        "{\"status\":200,\"headers\":{\"A\":\"1\",}}",
        "{\"status\":200,,\"headers\":{}}",
        "{\"status\":200,\"headers\":{},}",
        "{\"status\":200,\"headers\":{\"A\":\"a\x01\"}}",
        "{\"status\":200,\"headers\":{\"A\":\"1\"\"B\":\"2\"}}",
        "{\"status\":200 \"headers\":{}}",
        "{\"status\":200,\"headers\":{}}}",
    };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        if (hcn_http_answer_read(others[i], strlen(others[i]), &a))
            fail_msg("taken: %s", others[i]);
    }
    /* more headers than the reader keeps: jansson's */
    char many[1024] = "{\"status\":200,\"headers\":{";
    for (int i = 0; i <= HCN_HTTP_ANSWER_HEADERS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s\"h%d\":\"v\"", i ? "," : "", i);
    strcat(many, "}}");
    assert_false(hcn_http_answer_read(many, strlen(many), &a));
}

static void loopback_peers(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.5", &in.sin_addr);
    assert_true(hcn_http_is_loopback((struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.1.2", &in.sin_addr);
    assert_false(hcn_http_is_loopback((struct sockaddr *)&in));
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    assert_true(hcn_http_is_loopback((struct sockaddr *)&in6));
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    assert_false(hcn_http_is_loopback((struct sockaddr *)&in6));
    in6.sin6_port = htons(80);
    char buf[80];
    hcn_http_format_addr((struct sockaddr *)&in6, buf, sizeof buf);
    assert_string_equal(buf, "[2001:db8::1]:80");
    assert_true(hcn_http_is_proxy_header("x-real-ip"));
    assert_false(hcn_http_is_proxy_header("x-custom"));
}

static void jwts_and_cookies(void **state)
{
    (void)state;
    uint8_t key[32] = {1, 2, 3}, other[32] = {9};
    /* issued at 1000, expiring at 2000 */
    char *t = hcn_http_jwt_make(key, 32, "n.os", NULL, 1000, 2000);
    assert_non_null(t);
    assert_true(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 1999, 5000));
    assert_false(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 2000, 5000));
    assert_false(hcn_http_jwt_valid(other, 32, t, "n.os", NULL, 1001, 5000));
    assert_false(hcn_http_jwt_valid(key, 32, t, "m.os", NULL, 1001, 5000));
    assert_false(hcn_http_jwt_valid(key, 32, t, "n.os", "a:b:c", 1001, 5000));
    /* a lifetime shortened since: the token is too old */
    assert_true(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 1099, 100));
    assert_false(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 1100, 100));
    /* issued in the future (past a minute's skew) */
    assert_false(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 900, 5000));
    char *s = hcn_http_jwt_make(key, 32, "n.os", "a:b:c", 1, 2000);
    assert_true(hcn_http_jwt_valid(key, 32, s, "n.os", "a:b:c", 1, 5000));
    assert_false(hcn_http_jwt_valid(key, 32, s, "n.os", NULL, 1, 5000));
    /* an unsigned token ("alg":"none") is refused */
    assert_false(hcn_http_jwt_valid(
        key, 32, "eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6Im4ub3MifQ.", "n.os",
        NULL, 1, 5000));
    char *hdr = hcn_xasprintf("x=1; hyperware-auth_n.os=%s; y=2", t);
    char *c = hcn_http_cookie(hdr, "hyperware-auth_n.os");
    assert_string_equal(c, t);
    free(c);
    assert_null(hcn_http_cookie(hdr, "hyperware-auth_m.os"));
    assert_null(hcn_http_cookie("a=1=2", "a"));
    free(hdr);
    free(t);
    free(s);
}

static void cookies_stripped(void **state)
{
    (void)state;
    char *s = hcn_http_cookie_strip(
        "x=1; hyperware-auth_n.os=tok;y=2 ; hyperware-auth_n.os@a:b:c=t2; "
        "hyperware-auth_n.osx=keep; hyperware-auth_m.os=other",
        "n.os");
    assert_string_equal(s, "x=1; y=2; hyperware-auth_n.osx=keep; "
                           "hyperware-auth_m.os=other");
    free(s);
    s = hcn_http_cookie_strip("hyperware-auth_n.os=tok", "n.os");
    assert_string_equal(s, "");
    free(s);
    s = hcn_http_cookie_strip("", "n.os");
    assert_string_equal(s, "");
    free(s);
}

static void password_hashes_and_logins(void **state)
{
    (void)state;
    hcn_http_auth a = {0};
    a.hash = hcn_http_password_hash("n.os", "pw");
    assert_non_null(a.hash);
    assert_non_null(strstr(a.hash, "$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_null(strstr(a.hash, "pw"));
    a.hex = hcn_http_hash_hex(a.hash);
    assert_non_null(a.hex);
    assert_int_equal(strlen(a.hex), 66);
    /* deterministic: the salt is the node name, as Hyperware's */
    char *again = hcn_http_password_hash("n.os", "pw");
    assert_string_equal(again, a.hash);
    free(again);
    char *other = hcn_http_password_hash("m.os", "pw");
    assert_string_not_equal(other, a.hash);
    free(other);
    assert_null(hcn_http_hash_hex("pw"));
    assert_null(hcn_http_hash_hex("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$x"));
    char *sub = NULL;
    const char *ok = "{\"password\":\"pw\",\"subdomain\":\"a:b:c\"}";
    assert_true(hcn_http_login_check(&a, ok, strlen(ok), &sub));
    assert_string_equal(sub, "a:b:c");
    free(sub);
    char *up = hcn_xstrdup(a.hex);
    for (char *p = up + 2; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    char *h = hcn_xasprintf("{\"password_hash\":\"%s\"}", up);
    assert_true(hcn_http_login_check(&a, h, strlen(h), &sub));
    free(h);
    free(up);
    const char *bad = "{\"password\":\"pw2\"}";
    assert_false(hcn_http_login_check(&a, bad, strlen(bad), &sub));
    const char *badh = "{\"password_hash\":\"0xab\"}";
    assert_false(hcn_http_login_check(&a, badh, strlen(badh), &sub));
    assert_false(hcn_http_login_check(&a, "x", 1, &sub));
    free(a.hash);
    free(a.hex);
}

static void failed_logins_back_off(void **state)
{
    (void)state;
    hcn_http_limiter *l = hcn_http_limiter_new();
    struct sockaddr_in a = {.sin_family = AF_INET}, b = a;
    inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
    inet_pton(AF_INET, "10.0.0.2", &b.sin_addr);
    const struct sockaddr *sa = (struct sockaddr *)&a, *sb = (void *)&b;
    char line[512];
    assert_false(hcn_http_limiter_summary(l, line, sizeof line));
    int64_t t = 1000000;
    for (int i = 0; i < HCN_LOGIN_FREE_FAILS; i++) {
        assert_int_equal(hcn_http_limiter_check(l, sa, t), 0);
        hcn_http_limiter_result(l, sa, false, t);
    }
    /* locked for 1 s; another address is not */
    assert_int_equal(hcn_http_limiter_check(l, sa, t), 1);
    assert_int_equal(hcn_http_limiter_check(l, sb, t), 0);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 1000), 0);
    hcn_http_limiter_result(l, sa, false, t + 1000);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 1000), 2);
    hcn_http_limiter_result(l, sa, false, t + 3000);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 3000), 4);
    /* capped */
    int64_t now = t + 3000;
    for (int i = 0; i < 20; i++) {
        now += HCN_LOGIN_MAX_LOCK_S * 1000;
        hcn_http_limiter_result(l, sa, false, now);
    }
    assert_int_equal(hcn_http_limiter_check(l, sa, now), HCN_LOGIN_MAX_LOCK_S);
    assert_true(hcn_http_limiter_summary(l, line, sizeof line));
    assert_non_null(strstr(line, "login: 27 failed, 4 refused"));
    assert_non_null(strstr(line, "from 1 address;"));
    assert_non_null(strstr(line, "most from 10.0.0.1 (31)"));
    assert_false(hcn_http_limiter_summary(l, line, sizeof line));
    /* a success forgets the address */
    now += HCN_LOGIN_MAX_LOCK_S * 1000;
    hcn_http_limiter_result(l, sa, true, now);
    hcn_http_limiter_result(l, sa, false, now);
    assert_int_equal(hcn_http_limiter_check(l, sa, now), 0);
    /* IPv6: one /64 counts as one address */
    struct sockaddr_in6 x = {.sin6_family = AF_INET6}, y = x;
    inet_pton(AF_INET6, "2001:db8::1", &x.sin6_addr);
    inet_pton(AF_INET6, "2001:db8::2", &y.sin6_addr);
    for (int i = 0; i < HCN_LOGIN_FREE_FAILS; i++)
        hcn_http_limiter_result(l, (struct sockaddr *)(i % 2 ? &x : &y), false,
                                now);
    assert_int_equal(hcn_http_limiter_check(l, (struct sockaddr *)&y, now), 1);
    assert_true(hcn_http_limiter_summary(l, line, sizeof line));
    assert_non_null(strstr(line, "2001:db8::/64"));
    hcn_http_limiter_free(l);
}

static void logins_under_way_count_as_failures(void **state)
{
    (void)state;
    hcn_http_limiter *l = hcn_http_limiter_new();
    struct sockaddr_in a = {.sin_family = AF_INET}, b = a;
    inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
    inet_pton(AF_INET, "10.0.0.2", &b.sin_addr);
    const struct sockaddr *sa = (struct sockaddr *)&a, *sb = (void *)&b;
    int64_t t = 1000000;
    /* a fresh address: five at once may be checked, not a sixth */
    for (int i = 0; i < HCN_LOGIN_FREE_FAILS; i++) {
        assert_int_equal(hcn_http_limiter_check(l, sb, t), 0);
        hcn_http_limiter_start(l, sb, t);
    }
    assert_int_equal(hcn_http_limiter_check(l, sb, t), 1);
    for (int i = 0; i < HCN_LOGIN_FREE_FAILS; i++)
        hcn_http_limiter_result(l, sb, false, t);
    /* four failures: one more may be checked, but not two at once */
    for (int i = 0; i < HCN_LOGIN_FREE_FAILS - 1; i++) {
        assert_int_equal(hcn_http_limiter_check(l, sa, t), 0);
        hcn_http_limiter_start(l, sa, t);
        hcn_http_limiter_result(l, sa, false, t);
    }
    assert_int_equal(hcn_http_limiter_check(l, sa, t), 0);
    hcn_http_limiter_start(l, sa, t);
    assert_int_equal(hcn_http_limiter_check(l, sa, t), 1);
    hcn_http_limiter_result(l, sa, false, t);
    assert_int_equal(hcn_http_limiter_check(l, sa, t), 1); /* locked, 1 s */
    /* after the wait, one at a time */
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 1000), 0);
    hcn_http_limiter_start(l, sa, t + 1000);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 1000), 1);
    hcn_http_limiter_result(l, sa, false, t + 1000);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 1000), 2);
    /* a success forgives, once nothing is under way */
    hcn_http_limiter_start(l, sa, t + 4000);
    hcn_http_limiter_start(l, sa, t + 4000);
    hcn_http_limiter_result(l, sa, true, t + 4000);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 4000), 0);
    hcn_http_limiter_result(l, sa, false, t + 4000);
    assert_int_equal(hcn_http_limiter_check(l, sa, t + 4000), 0);
    /* a summary keeps an address whose only news is a check under way */
    struct sockaddr_in c = a;
    inet_pton(AF_INET, "10.0.0.3", &c.sin_addr);
    const struct sockaddr *sc = (struct sockaddr *)&c;
    hcn_http_limiter_start(l, sc, t);
    char line[512];
    assert_true(hcn_http_limiter_summary(l, line, sizeof line));
    for (int i = 1; i < HCN_LOGIN_FREE_FAILS; i++)
        hcn_http_limiter_start(l, sc, t);
    assert_int_equal(hcn_http_limiter_check(l, sc, t), 1);
    hcn_http_limiter_free(l);
}

/* The decision for a binding (flags, secure subdomain) and request facts. */
static hcn_http_access decide(bool auth, bool local, const char *secure,
                              const char *sub, bool sub_secure, bool logged_in,
                              bool loopback, bool proxied)
{
    hcn_http_rule rule = {.authenticated = auth,
                          .local_only = local,
                          .secure_sub = secure,
                          .app = "chat:my-pkg:pub.os"};
    hcn_http_facts facts = {.subdomain = sub,
                            .subdomain_secure = sub_secure,
                            .logged_in = logged_in,
                            .loopback = loopback,
                            .proxied = proxied,
                            .host_local = true};
    return hcn_http_access_check(&rule, &facts);
}

static void open_paths_need_nothing(void **state)
{
    (void)state;
    /* no login, a remote peer behind a proxy, any subdomain: served */
    assert_int_equal(
        decide(false, false, NULL, "localhost", false, false, false, true),
        HCN_HTTP_ALLOW);
    assert_int_equal(decide(false, false, NULL, "", false, false, false, false),
                     HCN_HTTP_ALLOW);
    /* another package's secure subdomain only matters with a login */
    assert_int_equal(
        decide(false, false, NULL, "other-pkg-os", true, false, true, false),
        HCN_HTTP_ALLOW);
}

static void authenticated_paths_need_a_login(void **state)
{
    (void)state;
    assert_int_equal(
        decide(true, false, NULL, "localhost", false, true, false, true),
        HCN_HTTP_ALLOW);
    assert_int_equal(
        decide(true, false, NULL, "localhost", false, false, true, false),
        HCN_HTTP_LOGIN);
    /* another package's secure subdomain: refused, logged in or not */
    assert_int_equal(
        decide(true, false, NULL, "other-pkg-os", true, true, true, false),
        HCN_HTTP_OTHER_PACKAGE);
    assert_int_equal(
        decide(true, false, NULL, "other-pkg-os", true, false, true, false),
        HCN_HTTP_OTHER_PACKAGE);
    /* its own package's secure subdomain ("my-pkg:pub.os" -> my-pkg-pub-os) */
    assert_int_equal(
        decide(true, false, NULL, "my-pkg-pub-os", true, true, true, false),
        HCN_HTTP_ALLOW);
    assert_int_equal(
        decide(true, false, NULL, "my-pkg-pub-os", true, false, true, false),
        HCN_HTTP_LOGIN);
    /* a label no binding uses as its secure subdomain is no subdomain */
    assert_int_equal(decide(true, false, NULL, "www", false, true, true, false),
                     HCN_HTTP_ALLOW);
    assert_int_equal(decide(true, false, NULL, "", true, true, true, false),
                     HCN_HTTP_ALLOW);
    /* the node's own page (no app, e.g. its home) through a package's
     * secure subdomain: refused, not a crash */
    hcn_http_rule home = {.authenticated = true};
    hcn_http_facts f = {.subdomain = "my-pkg-pub-os",
                        .subdomain_secure = true,
                        .logged_in = true,
                        .loopback = true,
                        .host_local = true};
    assert_int_equal(hcn_http_access_check(&home, &f), HCN_HTTP_OTHER_PACKAGE);
    f.subdomain = "";
    assert_int_equal(hcn_http_access_check(&home, &f), HCN_HTTP_ALLOW);
}

static void secure_subdomains_are_checked_before_the_login(void **state)
{
    (void)state;
    const char *sec = "my-pkg-pub-os";
    assert_int_equal(decide(true, false, sec, sec, true, true, false, true),
                     HCN_HTTP_ALLOW);
    assert_int_equal(decide(true, false, sec, sec, true, false, true, false),
                     HCN_HTTP_LOGIN);
    /* the wrong host: sent to the right one, logged in or not */
    assert_int_equal(
        decide(true, false, sec, "localhost", false, true, true, false),
        HCN_HTTP_TO_SECURE_SUB);
    assert_int_equal(
        decide(true, false, sec, "other-pkg-os", true, false, true, false),
        HCN_HTTP_TO_SECURE_SUB);
    /* no label at all (a Host such as ".x" or ":8080") */
    assert_int_equal(decide(true, false, sec, "", false, true, true, false),
                     HCN_HTTP_NO_SUBDOMAIN);
    assert_int_equal(decide(true, false, sec, "", false, false, true, false),
                     HCN_HTTP_NO_SUBDOMAIN);
}

static void local_only_paths_need_a_direct_loopback_peer(void **state)
{
    (void)state;
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, true, false),
        HCN_HTTP_ALLOW);
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, false, false),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, true, true),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, false, true),
        HCN_HTTP_NOT_LOCAL);
}

static void the_login_comes_before_local_only(void **state)
{
    (void)state;
    /* authenticated and local only: the login page before the 403 */
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, false, false, false),
        HCN_HTTP_LOGIN);
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, true, false, false),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, true, true, true),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, true, true, false),
        HCN_HTTP_ALLOW);
    /* the subdomain comes first too */
    assert_int_equal(
        decide(true, true, NULL, "other-pkg-os", true, true, false, false),
        HCN_HTTP_OTHER_PACKAGE);
    assert_int_equal(decide(true, true, "my-pkg-pub-os", "localhost", false,
                            false, false, true),
                     HCN_HTTP_TO_SECURE_SUB);
    assert_int_equal(decide(true, true, "my-pkg-pub-os", "my-pkg-pub-os", true,
                            true, false, false),
                     HCN_HTTP_NOT_LOCAL);
}

static void the_login_cookie_that_counts(void **state)
{
    (void)state;
    hcn_http_rule secure = {.authenticated = true,
                            .secure_sub = "my-pkg-pub-os",
                            .app = "chat:my-pkg:pub.os"};
    hcn_http_rule plain = {.authenticated = true, .app = "chat:my-pkg:pub.os"};
    assert_string_equal(hcn_http_login_sub(&secure, true),
                        "chat:my-pkg:pub.os");
    assert_null(hcn_http_login_sub(&secure, false));
    assert_null(hcn_http_login_sub(&plain, true));
    assert_null(hcn_http_login_sub(&plain, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(router_matches_like_route_recognizer),
        cmocka_unit_test(paths_are_formatted_as_hyperware),
        cmocka_unit_test(queries_and_utf8),
        cmocka_unit_test(json_strings_as_jansson_writes_them),
        cmocka_unit_test(strings_by_words),
        cmocka_unit_test(ws_push_bodies),
        cmocka_unit_test(answers_read_without_a_tree),
        cmocka_unit_test(loopback_peers),
        cmocka_unit_test(jwts_and_cookies),
        cmocka_unit_test(cookies_stripped),
        cmocka_unit_test(password_hashes_and_logins),
        cmocka_unit_test(failed_logins_back_off),
        cmocka_unit_test(logins_under_way_count_as_failures),
        cmocka_unit_test(open_paths_need_nothing),
        cmocka_unit_test(authenticated_paths_need_a_login),
        cmocka_unit_test(secure_subdomains_are_checked_before_the_login),
        cmocka_unit_test(local_only_paths_need_a_direct_loopback_peer),
        cmocka_unit_test(the_login_comes_before_local_only),
        cmocka_unit_test(the_login_cookie_that_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
