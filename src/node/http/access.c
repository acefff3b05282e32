/* http-server:distro:sys's access check, without sockets: whether a request
 * may reach the binding it matched (login, secure subdomain, local only),
 * decided from plain facts the server gathers beforehand. */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *hcn_http_login_sub(const hcn_http_rule *rule, bool localhost)
{
    return rule->secure_sub && localhost ? rule->app : NULL;
}

/* Whether `sub` is the secure subdomain of process `app`. */
static bool sub_of_app(const char *app, const char *sub)
{
    char *expected = hcn_http_secure_subdomain(app);
    bool same = strcmp(expected, sub) == 0;
    free(expected);
    return same;
}

hcn_http_access hcn_http_access_check(const hcn_http_rule *rule,
                                      const hcn_http_facts *facts)
{
    const char *sub = facts->subdomain;
    if (rule->authenticated) {
        if (rule->secure_sub) {
            if (*sub == 0)
                return HCN_HTTP_NO_SUBDOMAIN;
            if (strcmp(sub, rule->secure_sub) != 0)
                return HCN_HTTP_TO_SECURE_SUB;
        } else if (*sub && facts->subdomain_secure &&
                   (rule->app == NULL || !sub_of_app(rule->app, sub))) {
            /* no app: the node's own page (its home), no package's */
            return HCN_HTTP_OTHER_PACKAGE;
        }
        if (!facts->logged_in)
            return HCN_HTTP_LOGIN;
    }
    if (rule->local_only && hcn_http_not_local_reason(facts))
        return HCN_HTTP_NOT_LOCAL;
    return HCN_HTTP_ALLOW;
}

const char *hcn_http_not_local_reason(const hcn_http_facts *facts)
{
    if (!facts->loopback)
        return "the peer is not on this machine";
    if (facts->proxied)
        return "the request came through a proxy (a Forwarded, Via or "
               "X-Forwarded-* header)";
    if (!facts->host_local)
        return "the Host header names neither this node nor localhost";
    if (facts->cross_site)
        return "a page of another origin sent it (Origin or "
               "Sec-Fetch-Site)";
    return NULL;
}

/* Whether s[0..n) is a dotted quad 127.x.y.z. */
static bool loopback_v4(const char *s, size_t n)
{
    if (n < 9 || strncmp(s, "127.", 4) != 0)
        return false;
    int dots = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0 || digits > 3)
                return false;
            dots++;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            digits++;
        } else {
            return false;
        }
    }
    return dots == 3 && digits > 0 && digits <= 3;
}

bool hcn_http_host_is_local(const char *host, const char *node)
{
    if (host == NULL || *host == 0)
        return true;
    size_t n = strlen(host);
    /* the port: digits after the last ':' outside brackets */
    const char *colon = strrchr(host, ':');
    const char *bracket = strrchr(host, ']');
    if (colon && (bracket == NULL || colon > bracket)) {
        if (colon[1] == 0 ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1))
            return false;
        n = (size_t)(colon - host);
    }
    static const char sub[] = ".localhost";
    size_t sl = sizeof sub - 1;
    return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (n > sl && strncasecmp(host + n - sl, sub, sl) == 0) ||
           (n == 5 && strncmp(host, "[::1]", 5) == 0) || loopback_v4(host, n) ||
           (n == strlen(node) && strncasecmp(host, node, n) == 0);
}

bool hcn_http_cross_site(const char *origin, const char *sec_fetch_site,
                         const char *host)
{
    if (sec_fetch_site && (strcasecmp(sec_fetch_site, "cross-site") == 0 ||
                           strcasecmp(sec_fetch_site, "same-site") == 0))
        return true;
    if (origin == NULL)
        return false;
    const char *rest = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    return rest == NULL || host == NULL || strcasecmp(rest, host) != 0;
}
