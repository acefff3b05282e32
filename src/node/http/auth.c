/* http-server:distro:sys authentication: the node password, the JWT secret,
 * HS256 tokens with Hyperware's claims (libjwt), cookies, the login page.
 *
 * The node keeps in <home>/http/: `jwt_secret` (32 random bytes, made at
 * first boot) and `password` (the node password: from --password, else
 * the file, else made at first boot and shown once on the terminal of
 * whoever started the node: hc_node_first_password).  Hyperware
 * derives its login secret from the keyfile; this node has no keyfile, so
 * the login takes the password itself ({"password": ...}, what this node's
 * login page sends) or Hyperware's browser-side hash of it ({"password_hash":
 * "0x" + hex argon2id(password, salt = node name padded to 8 bytes, t=2,
 * m=19456 KiB, p=1, 32 bytes)}, what Hyperware's login page sends). */
#include "http_int.h"
#include "../kernel/kernel.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --------------------------------------------------------------- JWT */

char *hcn_http_jwt_make(const uint8_t *secret, size_t slen, const char *node,
                        const char *sub, uint64_t expiration)
{
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    json_t *claims = json_object();
    json_object_set_new(claims, "username", json_string(node));
    json_object_set_new(claims, "subdomain",
                        sub && *sub ? json_string(sub) : json_null());
    json_object_set_new(claims, "expiration",
                        json_integer((json_int_t)expiration));
    char *cj = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    char *tok = NULL;
    if (cj && jwt_add_grants_json(jwt, cj) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, secret, (int)slen) == 0) {
        char *t = jwt_encode_str(jwt);
        if (t) {
            tok = hcn_xstrdup(t);
            free(t);
        }
    }
    free(cj);
    jwt_free(jwt);
    return tok;
}

static bool b64url_part(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool hcn_http_jwt_valid(const uint8_t *secret, size_t slen, const char *token,
                        const char *node, const char *sub, uint64_t now)
{
    /* header.payload.signature, base64url parts (Hyperware's regex). */
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d1 == NULL || d2 == NULL || !b64url_part(token, (size_t)(d1 - token)) ||
        !b64url_part(d1 + 1, (size_t)(d2 - d1 - 1)) ||
        !b64url_part(d2 + 1, strlen(d2 + 1)))
        return false;
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, secret, (int)slen) != 0)
        return false;
    bool ok = false;
    if (jwt_get_alg(jwt) == JWT_ALG_HS256) {
        char *gj = jwt_get_grants_json(jwt, NULL);
        json_error_t je;
        json_t *g = gj ? json_loads(gj, 0, &je) : NULL;
        const char *user = json_string_value(json_object_get(g, "username"));
        json_t *s = json_object_get(g, "subdomain");
        json_t *exp = json_object_get(g, "expiration");
        bool sub_ok = (sub == NULL) ? (s == NULL || json_is_null(s))
                                    : (json_is_string(s) &&
                                       strcmp(json_string_value(s), sub) == 0);
        ok = user && strcmp(user, node) == 0 && sub_ok &&
             json_is_integer(exp) && json_integer_value(exp) >= 0 &&
             (uint64_t)json_integer_value(exp) > now;
        json_decref(g);
        if (gj)
            free(gj);
    }
    jwt_free(jwt);
    return ok;
}

char *hcn_http_cookie(const char *header, const char *name)
{
    size_t nl = strlen(name);
    const char *p = header;
    while (p && *p) {
        const char *end = strstr(p, "; ");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* Hyperware splits on '=' and wants exactly two parts. */
        const char *eq = memchr(p, '=', len);
        if (eq && (size_t)(eq - p) == nl && strncmp(p, name, nl) == 0 &&
            memchr(eq + 1, '=', len - nl - 1) == NULL && len > nl + 1)
            return hcn_xstrndup(eq + 1, len - nl - 1);
        p = end ? end + 2 : NULL;
    }
    return NULL;
}

/* ---------------------------------------------------------- password */

static bool ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

bool hcn_http_login_check(const char *password, const char *password_hash,
                          const char *body, size_t len, char **subdomain)
{
    *subdomain = NULL;
    if (password == NULL)
        return false;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    const char *pw = json_string_value(json_object_get(j, "password"));
    const char *ph = json_string_value(json_object_get(j, "password_hash"));
    const char *sub = json_string_value(json_object_get(j, "subdomain"));
    bool ok = false;
    if (ph && password_hash) {
        char *low = hcn_xstrdup(ph);
        for (char *c = low; *c; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
        ok = ct_equal(low, password_hash);
        free(low);
    } else if (pw) {
        ok = ct_equal(pw, password);
    }
    if (ok && sub)
        *subdomain = hcn_xstrdup(sub);
    json_decref(j);
    return ok;
}

/* Hyperware's login page hashes in the browser: argon2id, salt the node
 * name (repeated past 8 bytes when shorter). */
static char *hyperware_hash(const char *node, const char *password)
{
    size_t nl = strlen(node);
    char *salt;
    if (nl >= 8) {
        salt = hcn_xstrdup(node);
    } else {
        size_t times = 1 + 8 / (nl ? nl : 1);
        salt = hcn_xcalloc(nl * times + 1, 1);
        for (size_t i = 0; i < times; i++)
            memcpy(salt + i * nl, node, nl);
    }
    uint8_t out[32];
    int rc = argon2id_hash_raw(2, 19456, 1, password, strlen(password), salt,
                               strlen(salt), out, sizeof out);
    free(salt);
    if (rc != ARGON2_OK)
        return NULL;
    char *hex = hcn_xmalloc(2 + 64 + 1);
    hex[0] = '0';
    hex[1] = 'x';
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", out[i]);
    return hex;
}

static int write_private(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

static const char login_page[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Log in to @NODE@</title><style>"
    "body{font-family:system-ui,sans-serif;background:#f4f4f5;display:flex;"
    "align-items:center;justify-content:center;min-height:100vh;margin:0}"
    "form{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px "
    "12px #0002;display:flex;flex-direction:column;gap:.8rem;width:18rem}"
    "input,button{font-size:1rem;padding:.5rem}#err{color:#b91c1c;"
    "display:none}</style></head><body>"
    "<form id=\"login\"><h2>@NODE@</h2><div id=\"sub\"></div>"
    "<input id=\"password\" type=\"password\" placeholder=\"node password\" "
    "autofocus required><button type=\"submit\">Log in</button>"
    "<div id=\"err\">Wrong password.</div></form><script>\n"
    "function secureSubdomain(pid){const p=pid.split(':');"
    "return [p[1],p[2]].join('-').replace(/[^a-zA-Z0-9]/g,'-');}\n"
    "const first=window.location.pathname.split('/')[1]||'';\n"
    "const isSecure=first.includes(':')&&"
    "secureSubdomain(first)===window.location.host.split('.')[0];\n"
    "if(isSecure)document.getElementById('sub').innerText="
    "'Authenticate for secure subdomain app '+first;\n"
    "document.getElementById('login').addEventListener('submit',async e=>{"
    "e.preventDefault();const r=await fetch('/login',{method:'POST',"
    "headers:{'Content-Type':'application/json'},body:JSON.stringify({"
    "password:document.getElementById('password').value,"
    "subdomain:isSecure?first:''})});"
    "if(r.status<399){window.location.reload();return;}"
    "document.getElementById('err').style.display='block';"
    "document.getElementById('password').value='';});\n"
    "</script></body></html>\n";

static char *make_login_html(const char *node, size_t *len)
{
    const char *tag = "@NODE@";
    size_t tl = strlen(tag), nl = strlen(node);
    char *out = NULL;
    size_t ol = 0;
    const char *p = login_page;
    for (;;) {
        const char *q = strstr(p, tag);
        size_t chunk = q ? (size_t)(q - p) : strlen(p);
        char *no = realloc(out, ol + chunk + nl + 1);
        if (no == NULL)
            abort();
        out = no;
        memcpy(out + ol, p, chunk);
        ol += chunk;
        if (q == NULL)
            break;
        memcpy(out + ol, node, nl);
        ol += nl;
        p = q + tl;
    }
    out[ol] = 0;
    *len = ol;
    return out;
}

int hcn_http_auth_init(hcn_node *n, const char *password_opt, uint8_t *secret,
                       char **password, char **password_hash, char **html,
                       size_t *html_len, char *err, size_t errlen)
{
    *password = NULL;
    *password_hash = NULL;
    *html = make_login_html(n->name, html_len);
    if (n->cfg.http_port <= 0) {
        /* No server: no secrets on disk; tokens cannot be checked. */
        for (int i = 0; i < 4; i++) {
            uint64_t r = hcn_random_u64();
            memcpy(secret + 8 * i, &r, 8);
        }
        return 0;
    }
    char *dir = hcn_xasprintf("%s/http", n->home);
    char *spath = hcn_xasprintf("%s/jwt_secret", dir);
    char *ppath = hcn_xasprintf("%s/password", dir);
    int rc = -1;
    if (hcn_mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    size_t len = 0;
    char *s = hcn_read_file(spath, &len);
    if (s == NULL) {
        for (int i = 0; i < 4; i++) {
            uint64_t r = hcn_random_u64();
            memcpy(secret + 8 * i, &r, 8);
        }
        if (write_private(spath, secret, 32) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", spath,
                     strerror(errno));
            goto out;
        }
    } else if (len != 32) {
        snprintf(err, errlen, "%s must hold 32 bytes (it has %zu)", spath, len);
        free(s);
        goto out;
    } else {
        memcpy(secret, s, 32);
        free(s);
    }
    if (password_opt && *password_opt) {
        *password = hcn_xstrdup(password_opt);
    } else {
        char *p = hcn_read_file(ppath, &len);
        if (p) {
            while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
                p[--len] = 0;
            if (len == 0) {
                snprintf(err, errlen, "%s is empty", ppath);
                free(p);
                goto out;
            }
            *password = p;
        } else {
            static const char abc[] = "abcdefghijkmnpqrstuvwxyz23456789";
            char pw[21];
            for (int i = 0; i < 20; i++)
                pw[i] = abc[hcn_random_u64() % 32];
            pw[20] = 0;
            char line[32];
            snprintf(line, sizeof line, "%s\n", pw);
            if (write_private(ppath, line, strlen(line)) != 0) {
                snprintf(err, errlen, "cannot write %s: %s", ppath,
                         strerror(errno));
                goto out;
            }
            *password = hcn_xstrdup(pw);
            /* shown once on the terminal by whoever started the node
             * (hc_node_first_password), never in the log */
            free(n->first_password);
            n->first_password = hcn_xstrdup(pw);
            hcn_logf(n, 0,
                     "http-server: first boot: a node password was made "
                     "(kept in %s)",
                     ppath);
        }
    }
    *password_hash = hyperware_hash(n->name, *password);
    if (*password_hash == NULL) {
        snprintf(err, errlen, "argon2id failed");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        free(*password);
        *password = NULL;
        free(*html);
        *html = NULL;
    }
    free(dir);
    free(spath);
    free(ppath);
    return rc;
}
