/* http-server:distro:sys authentication: the node password's hash, the JWT
 * secret, HS256 tokens with Hyperware's claims (libjwt), cookies, the login
 * page, and the limits on failed logins.
 *
 * The node keeps in <home>/http/: `jwt_secret` (32 random bytes, made at
 * first boot) and `password_hash` (argon2id of the node password, in
 * argon2's encoded form: from --password and its kin, else made at first
 * boot with a password shown once on the terminal of whoever started the
 * node, hc_node_first_password, never in the log).  The password itself is
 * never kept.  Hyperware derives its login secret from the keyfile; this
 * node has no keyfile, so the login takes the password itself ({"password":
 * ...}, what this node's login page sends, checked with argon2id_verify) or
 * Hyperware's browser-side hash of it ({"password_hash": "0x" + hex
 * argon2id(password, salt = node name padded to 8 bytes, t=2, m=19456 KiB,
 * p=1, 32 bytes)}, what Hyperware's login page sends, compared in constant
 * time).  The kept hash uses those same parameters and salt, so it serves
 * both.  Tokens are signed with HMAC-SHA256(jwt_secret, kept hash): a new
 * password ends every login made with the old one. */
#include "http_int.h"
#include "../kernel/kernel.h"

#include <argon2.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --------------------------------------------------------------- JWT */

char *hcn_http_jwt_make(const uint8_t *secret, size_t slen, const char *node,
                        const char *sub, uint64_t iat, uint64_t exp)
{
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    json_t *claims = json_object();
    json_object_set_new(claims, "username", json_string(node));
    json_object_set_new(claims, "subdomain",
                        sub && *sub ? json_string(sub) : json_null());
    json_object_set_new(claims, "expiration", json_integer((json_int_t)exp));
    json_object_set_new(claims, "iat", json_integer((json_int_t)iat));
    json_object_set_new(claims, "exp", json_integer((json_int_t)exp));
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

/* A claim as a non-negative integer into *v; false when it is not one. */
static bool claim_u64(json_t *g, const char *name, uint64_t *v)
{
    json_t *x = json_object_get(g, name);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return false;
    *v = (uint64_t)json_integer_value(x);
    return true;
}

bool hcn_http_jwt_valid(const uint8_t *secret, size_t slen, const char *token,
                        const char *node, const char *sub, uint64_t now,
                        uint64_t max_age)
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
        uint64_t expiration = 0, iat = 0, exp = 0;
        bool sub_ok = (sub == NULL) ? (s == NULL || json_is_null(s))
                                    : (json_is_string(s) &&
                                       strcmp(json_string_value(s), sub) == 0);
        ok = user && strcmp(user, node) == 0 && sub_ok &&
             claim_u64(g, "expiration", &expiration) && expiration > now &&
             claim_u64(g, "exp", &exp) && exp > now &&
             claim_u64(g, "iat", &iat) && iat <= now + 60 &&
             now - (iat < now ? iat : now) < max_age;
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

/* Whether one cookie entry (name=value, trimmed) is a login cookie of
 * `node`: hyperware-auth_<node> or hyperware-auth_<node>@<app>. */
static bool node_cookie(const char *p, size_t len, const char *node)
{
    static const char pre[] = "hyperware-auth_";
    size_t pl = sizeof pre - 1, nl = strlen(node);
    const char *eq = memchr(p, '=', len);
    size_t name = eq ? (size_t)(eq - p) : len;
    while (name && (p[name - 1] == ' ' || p[name - 1] == '\t'))
        name--;
    if (name < pl + nl || memcmp(p, pre, pl) != 0 ||
        memcmp(p + pl, node, nl) != 0)
        return false;
    return name == pl + nl || p[pl + nl] == '@';
}

char *hcn_http_cookie_strip(const char *header, const char *node)
{
    size_t hl = strlen(header);
    char *out = hcn_xmalloc(2 * hl + 1); /* "; " may replace ';' */
    size_t ol = 0;
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t trim = len;
        while (trim && (p[trim - 1] == ' ' || p[trim - 1] == '\t'))
            trim--;
        if (trim && !node_cookie(p, trim, node)) {
            if (ol) {
                out[ol++] = ';';
                out[ol++] = ' ';
            }
            memcpy(out + ol, p, trim);
            ol += trim;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    out[ol] = 0;
    return out;
}

/* ---------------------------------------------------------- password */

static bool ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

bool hcn_http_login_check(const hcn_http_auth *a, const char *body, size_t len,
                          char **subdomain)
{
    *subdomain = NULL;
    if (a->hash == NULL || a->hex == NULL)
        return false;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    const char *pw = json_string_value(json_object_get(j, "password"));
    const char *ph = json_string_value(json_object_get(j, "password_hash"));
    const char *sub = json_string_value(json_object_get(j, "subdomain"));
    bool ok = false;
    if (ph) {
        char *low = hcn_xstrdup(ph);
        for (char *c = low; *c; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
        ok = ct_equal(low, a->hex);
        free(low);
    } else if (pw) {
        /* argon2_verify recomputes and compares in constant time */
        ok = argon2id_verify(a->hash, pw, strlen(pw)) == ARGON2_OK;
    }
    if (ok && sub)
        *subdomain = hcn_xstrdup(sub);
    json_decref(j);
    return ok;
}

/* Hyperware's login page hashes in the browser: argon2id, salt the node
 * name (repeated past 8 bytes when shorter). */
#define HW_T 2
#define HW_M 19456
#define HW_P 1
#define HW_LEN 32

char *hcn_http_password_hash(const char *node, const char *password)
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
    size_t elen = argon2_encodedlen(HW_T, HW_M, HW_P, (uint32_t)strlen(salt),
                                    HW_LEN, Argon2_id);
    char *enc = hcn_xmalloc(elen);
    int rc = argon2id_hash_encoded(HW_T, HW_M, HW_P, password, strlen(password),
                                   salt, strlen(salt), HW_LEN, enc, elen);
    free(salt);
    if (rc != ARGON2_OK) {
        free(enc);
        return NULL;
    }
    return enc;
}

char *hcn_http_hash_hex(const char *encoded)
{
    /* $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>: the hash is 32 bytes
     * in unpadded base64, 43 characters */
    static const char params[] = "$argon2id$v=19$m=19456,t=2,p=1$";
    if (strncmp(encoded, params, sizeof params - 1) != 0)
        return NULL;
    const char *h = strrchr(encoded, '$');
    if (h == NULL || strlen(h + 1) != 43)
        return NULL;
    unsigned char b64[45], raw[36];
    memcpy(b64, h + 1, 43);
    b64[43] = '=';
    b64[44] = 0;
    if (EVP_DecodeBlock(raw, b64, 44) != 33)
        return NULL;
    char *hex = hcn_xmalloc(2 + 2 * HW_LEN + 1);
    hex[0] = '0';
    hex[1] = 'x';
    for (int i = 0; i < HW_LEN; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", raw[i]);
    return hex;
}

static int write_private(const char *path, const void *data, size_t len)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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
    if (fsync(fd) != 0) {
        close(fd);
        unlink(path);
        return -1;
    }
    return close(fd);
}

/* Replace `path` with `text` + "\n" (0600): a fresh file renamed over it,
 * so a reader sees the old hash or the new one, never half of one. */
static int replace_private(const char *path, const char *text)
{
    char *tmp = hcn_xasprintf("%s.new", path);
    char *line = hcn_xasprintf("%s\n", text);
    unlink(tmp);
    int rc = write_private(tmp, line, strlen(line));
    if (rc == 0 && rename(tmp, path) != 0) {
        unlink(tmp);
        rc = -1;
    }
    free(tmp);
    free(line);
    return rc;
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

/* The password hash kept at hpath: read (fresh, trimmed) into *out, or
 * NULL when there is none.  0, or -1 with a message in err. */
static int read_hash(const char *hpath, char **out, char *err, size_t errlen)
{
    size_t len = 0;
    char *h = hcn_read_file(hpath, &len);
    *out = NULL;
    if (h == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", hpath, strerror(errno));
        return -1;
    }
    while (len && (h[len - 1] == '\n' || h[len - 1] == '\r'))
        h[--len] = 0;
    char *hex = hcn_http_hash_hex(h);
    if (hex == NULL) {
        snprintf(err, errlen,
                 "%s does not hold an argon2id hash as this node makes it "
                 "(remove it and give --password-file to set the password)",
                 hpath);
        free(h);
        return -1;
    }
    free(hex);
    *out = h;
    return 0;
}

int hcn_http_auth_init(hcn_node *n, const char *password_opt, hcn_http_auth *a,
                       char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->lifetime_s = n->cfg.http_login_lifetime_s ? n->cfg.http_login_lifetime_s
                                                 : 30u * 24 * 3600;
    a->login_html = make_login_html(n->name, &a->login_len);
    if (n->cfg.http_port <= 0) {
        /* No server: no secrets on disk, no hash: no login succeeds. */
        for (int i = 0; i < 4; i++) {
            uint64_t r = hcn_random_u64();
            memcpy(a->key + 8 * i, &r, 8);
        }
        return 0;
    }
    char *dir = hcn_xasprintf("%s/http", n->home);
    char *spath = hcn_xasprintf("%s/jwt_secret", dir);
    char *hpath = hcn_xasprintf("%s/password_hash", dir);
    char *ppath = hcn_xasprintf("%s/password", dir);
    char *plain = NULL, *made = NULL;
    uint8_t secret[32];
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
    if (read_hash(hpath, &a->hash, err, errlen) != 0)
        goto out;
    /* An older node kept the password itself: hashed, then removed. */
    plain = hcn_read_file(ppath, &len);
    if (plain) {
        while (len && (plain[len - 1] == '\n' || plain[len - 1] == '\r'))
            plain[--len] = 0;
    }
    const char *given = password_opt && *password_opt ? password_opt : NULL;
    const char *from = "";
    if (given == NULL && a->hash == NULL && plain && *plain) {
        given = plain;
        from = " (from the plain http/password of an older node, now removed)";
    }
    if (given == NULL && a->hash == NULL) {
        static const char abc[] = "abcdefghijkmnpqrstuvwxyz23456789";
        made = hcn_xcalloc(21, 1);
        for (int i = 0; i < 20; i++)
            made[i] = abc[hcn_random_u64() % 32];
        given = made;
    }
    if (given) {
        char *h = hcn_http_password_hash(n->name, given);
        if (h == NULL) {
            snprintf(err, errlen, "argon2id failed (out of memory?)");
            goto out;
        }
        /* the same password hashes the same (the salt is the node name) */
        if (a->hash && strcmp(a->hash, h) == 0) {
            free(h);
        } else {
            if (replace_private(hpath, h) != 0) {
                snprintf(err, errlen, "cannot write %s: %s", hpath,
                         strerror(errno));
                free(h);
                goto out;
            }
            if (made)
                hcn_logf(n, 0,
                         "http-server: first boot: a node password was made "
                         "(only its hash is kept, in %s)",
                         hpath);
            else if (a->hash)
                hcn_logf(n, 0,
                         "http-server: the node password was changed%s; "
                         "logins made with the old one have ended",
                         from);
            else
                hcn_logf(n, 0, "http-server: the node password was set%s",
                         from);
            free(a->hash);
            a->hash = h;
        }
    }
    if (plain && unlink(ppath) != 0) {
        snprintf(err, errlen,
                 "cannot remove %s (a node password kept in plain text): %s",
                 ppath, strerror(errno));
        goto out;
    }
    a->hex = hcn_http_hash_hex(a->hash);
    unsigned klen = 0;
    if (a->hex == NULL ||
        HMAC(EVP_sha256(), secret, sizeof secret, (const uint8_t *)a->hash,
             strlen(a->hash), a->key, &klen) == NULL ||
        klen != sizeof a->key) {
        snprintf(err, errlen, "cannot derive the token key");
        goto out;
    }
    if (made) {
        /* shown once on the terminal by whoever started the node
         * (hc_node_first_password), never in the log */
        free(n->first_password);
        n->first_password = made;
        made = NULL;
    }
    rc = 0;
out:
    OPENSSL_cleanse(secret, sizeof secret);
    if (plain) {
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
    free(made);
    if (rc != 0)
        hcn_http_auth_fini(a);
    free(dir);
    free(spath);
    free(hpath);
    free(ppath);
    return rc;
}

void hcn_http_auth_fini(hcn_http_auth *a)
{
    free(a->hash);
    free(a->hex);
    free(a->login_html);
    OPENSSL_cleanse(a->key, sizeof a->key);
    memset(a, 0, sizeof *a);
}

/* ----------------------------------------------------- failed logins */

/* Addresses followed at most; when full, the one quiet the longest goes
 * (an attacker with more addresses than this gets its oldest forgotten,
 * never the table grown). */
#define LIM_MAX 4096
/* An address quiet this long after its last failure (and not refused) is
 * forgotten. */
#define LIM_FORGET_MS (3600 * 1000)

typedef struct lim_entry {
    UT_hash_handle hh;
    uint8_t key[17]; /* family, then 4 (IPv4) or 8 (IPv6 /64) bytes */
    char text[INET6_ADDRSTRLEN + 4];
    uint32_t fails;   /* failures in a row */
    uint32_t pending; /* checks under way (hcn_http_limiter_start) */
    int64_t until_ms; /* refused until then */
    int64_t last_ms;  /* last failure */
    uint32_t counted; /* failures and refusals in this summary */
    bool in_summary;  /* counted since the last summary */
    bool locked;      /* refused for a while since the last summary */
} lim_entry;

struct hcn_http_limiter {
    lim_entry *by_addr;
    unsigned count;
    /* since the last summary */
    uint64_t failed, refused;
    unsigned addrs, locked;
};

hcn_http_limiter *hcn_http_limiter_new(void)
{
    return hcn_xcalloc(1, sizeof(hcn_http_limiter));
}

void hcn_http_limiter_free(hcn_http_limiter *l)
{
    if (l == NULL)
        return;
    lim_entry *e, *t;
    HASH_ITER(hh, l->by_addr, e, t)
    {
        HASH_DEL(l->by_addr, e);
        free(e);
    }
    free(l);
}

/* The key of an address (hcn_http_addr_key: IPv4, or an IPv6 /64) and its
 * text. */
static void lim_key(const struct sockaddr *sa, uint8_t key[17], char *text,
                    size_t tn)
{
    hcn_http_addr_key(sa, key);
    snprintf(text, tn, "?");
    if (key[0] == 4) {
        inet_ntop(AF_INET, key + 1, text, (socklen_t)tn);
    } else if (key[0] == 6) {
        struct in6_addr net;
        memset(&net, 0, sizeof net);
        memcpy(net.s6_addr, key + 1, 8);
        inet_ntop(AF_INET6, &net, text, (socklen_t)tn);
        size_t k = strlen(text);
        snprintf(text + k, tn - k, "/64");
    }
}

static lim_entry *lim_find(hcn_http_limiter *l, const struct sockaddr *sa,
                           char *text, size_t tn)
{
    uint8_t key[17];
    lim_key(sa, key, text, tn);
    lim_entry *e = NULL;
    HASH_FIND(hh, l->by_addr, key, sizeof key, e);
    return e;
}

static void lim_drop(hcn_http_limiter *l, lim_entry *e)
{
    HASH_DEL(l->by_addr, e);
    free(e);
    l->count--;
}

/* Room for one more entry: forgotten ones go, else the quietest. */
static void lim_make_room(hcn_http_limiter *l, int64_t now_ms)
{
    if (l->count < LIM_MAX)
        return;
    lim_entry *e, *t, *oldest = NULL;
    HASH_ITER(hh, l->by_addr, e, t)
    {
        if (e->pending)
            continue; /* its result is still to come */
        int64_t quiet = e->until_ms > e->last_ms ? e->until_ms : e->last_ms;
        if (now_ms - quiet > LIM_FORGET_MS)
            lim_drop(l, e);
        else if (oldest == NULL ||
                 quiet < (oldest->until_ms > oldest->last_ms ? oldest->until_ms
                                                             : oldest->last_ms))
            oldest = e;
    }
    if (l->count >= LIM_MAX && oldest)
        lim_drop(l, oldest);
}

/* Count e in this summary's addresses (once). */
static void lim_count(hcn_http_limiter *l, lim_entry *e)
{
    e->counted++;
    if (!e->in_summary) {
        e->in_summary = true;
        l->addrs++;
    }
}

uint32_t hcn_http_limiter_check(hcn_http_limiter *l, const struct sockaddr *sa,
                                int64_t now_ms)
{
    char text[INET6_ADDRSTRLEN + 4];
    lim_entry *e = lim_find(l, sa, text, sizeof text);
    if (e == NULL)
        return 0;
    bool may_lock = e->pending && e->fails + e->pending >= HCN_LOGIN_FREE_FAILS;
    if (now_ms >= e->until_ms && !may_lock)
        return 0;
    l->refused++;
    lim_count(l, e);
    int64_t wait = (e->until_ms - now_ms + 999) / 1000;
    return wait < 1 ? 1 : (uint32_t)wait;
}

/* A new entry for sa's key (room made first). */
static lim_entry *lim_add(hcn_http_limiter *l, const struct sockaddr *sa,
                          int64_t now_ms)
{
    lim_make_room(l, now_ms);
    lim_entry *e = hcn_xcalloc(1, sizeof *e);
    lim_key(sa, e->key, e->text, sizeof e->text);
    HASH_ADD(hh, l->by_addr, key, sizeof e->key, e);
    l->count++;
    return e;
}

void hcn_http_limiter_start(hcn_http_limiter *l, const struct sockaddr *sa,
                            int64_t now_ms)
{
    char text[INET6_ADDRSTRLEN + 4];
    lim_entry *e = lim_find(l, sa, text, sizeof text);
    if (e == NULL) {
        e = lim_add(l, sa, now_ms);
    }
    e->pending++;
}

void hcn_http_limiter_result(hcn_http_limiter *l, const struct sockaddr *sa,
                             bool ok, int64_t now_ms)
{
    char text[INET6_ADDRSTRLEN + 4];
    lim_entry *e = lim_find(l, sa, text, sizeof text);
    if (e && e->pending)
        e->pending--;
    if (ok) {
        /* its failures so far stay in the summary's counts */
        if (e && !e->in_summary && e->pending == 0)
            lim_drop(l, e);
        else if (e) {
            e->fails = 0;
            e->until_ms = 0;
        }
        return;
    }
    if (e && now_ms - e->last_ms > LIM_FORGET_MS && now_ms >= e->until_ms)
        e->fails = 0; /* a failure long after the last: a fresh start */
    if (e == NULL) {
        e = lim_add(l, sa, now_ms);
    }
    e->fails++;
    e->last_ms = now_ms;
    l->failed++;
    lim_count(l, e);
    if (e->fails >= HCN_LOGIN_FREE_FAILS) {
        uint32_t extra = e->fails - HCN_LOGIN_FREE_FAILS;
        int64_t lock_s =
            extra >= 9 ? HCN_LOGIN_MAX_LOCK_S : (int64_t)1 << extra;
        if (lock_s > HCN_LOGIN_MAX_LOCK_S)
            lock_s = HCN_LOGIN_MAX_LOCK_S;
        if (!e->locked) {
            e->locked = true;
            l->locked++;
        }
        e->until_ms = now_ms + lock_s * 1000;
    }
}

bool hcn_http_limiter_summary(hcn_http_limiter *l, char *out, size_t n)
{
    if (l->failed == 0 && l->refused == 0)
        return false;
    lim_entry *e, *t, *most = NULL;
    HASH_ITER(hh, l->by_addr, e, t)
    {
        if (e->in_summary && (most == NULL || e->counted > most->counted))
            most = e;
    }
    snprintf(out, n,
             "login: %llu failed, %llu refused (too many failures) from %u "
             "address%s; %u address%s locked out for a while; most from %s "
             "(%u)",
             (unsigned long long)l->failed, (unsigned long long)l->refused,
             l->addrs, l->addrs == 1 ? "" : "es", l->locked,
             l->locked == 1 ? "" : "es", most ? most->text : "?",
             most ? most->counted : 0);
    HASH_ITER(hh, l->by_addr, e, t)
    {
        e->counted = 0;
        e->in_summary = false;
        e->locked = false;
        if (e->fails == 0 && e->until_ms == 0 && e->pending == 0)
            lim_drop(l, e);
    }
    l->failed = l->refused = 0;
    l->addrs = l->locked = 0;
    return true;
}
