/* http-server:distro:sys's access check, without sockets: whether a request
 * may reach the binding it matched (login, secure subdomain, local only),
 * decided from plain facts the server gathers beforehand. */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>

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
                   !sub_of_app(rule->app, sub)) {
            return HCN_HTTP_OTHER_PACKAGE;
        }
        if (!facts->logged_in)
            return HCN_HTTP_LOGIN;
    }
    if (rule->local_only && (!facts->loopback || facts->proxied))
        return HCN_HTTP_NOT_LOCAL;
    return HCN_HTTP_ALLOW;
}
