/* The node's home page (http-server's `GET /` when no process binds it):
 * the installed apps, each with its homepage tile (icon, label, widget) and
 * a link to its UI, as Hyperware's home page shows them.  Tiles come from
 * homepage:homepage:sys (hcn_homepage_apps); apps without a tile but with
 * a UI are listed by their process name.  Server-side HTML: no script of
 * its own; a widget (an app's HTML) runs in a sandboxed iframe. */
#include "http_int.h"
#include "../modules/modules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(FILE *b, const char *s)
{
    fputs(s, b);
}

/* Append s to b, escaped for HTML text and attribute values. */
static void esc(FILE *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': add(b, "&amp;"); break;
        case '<': add(b, "&lt;"); break;
        case '>': add(b, "&gt;"); break;
        case '"': add(b, "&quot;"); break;
        case '\'': add(b, "&#39;"); break;
        default: fputc(*s, b);
        }
    }
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* One app's entry. */
static void app_item(FILE *b, const char *id, const char *label,
                     const char *icon, const char *href, const char *widget)
{
    add(b, "<li class=\"app\" data-id=\"");
    esc(b, id);
    add(b, "\">");
    add(b, href ? "<a class=\"open\" href=\"" : "<span class=\"open\"");
    if (href) {
        esc(b, href);
        add(b, "\"");
    }
    add(b, ">");
    if (icon && *icon) {
        /* Hyperware's base64_icon is an image's data URL; a bare base64
         * text is taken for a PNG */
        add(b, "<img class=\"icon\" alt=\"\" src=\"");
        if (strncmp(icon, "data:", 5) != 0)
            add(b, "data:image/png;base64,");
        esc(b, icon);
        add(b, "\">");
    } else {
        add(b, "<span class=\"icon none\"></span>");
    }
    add(b, "<span class=\"label\">");
    esc(b, label);
    add(b, href ? "</span></a>" : "</span></span>");
    add(b, "<span class=\"pid\">");
    esc(b, id);
    add(b, "</span>");
    if (widget && *widget) {
        add(b, "<iframe class=\"widget\" sandbox=\"allow-scripts\" "
               "title=\"");
        esc(b, label);
        add(b, " widget\" srcdoc=\"");
        esc(b, widget);
        add(b, "\"></iframe>");
    }
    add(b, "</li>\n");
}

char *hcn_http_home_page(hcn_node *n, json_t *uis, size_t *len)
{
    char *out = NULL;
    size_t olen = 0;
    FILE *b = open_memstream(&out, &olen);
    if (b == NULL)
        abort();
    add(b, "<!doctype html>\n<html lang=\"en\"><head><meta "
           "charset=\"utf-8\"><meta name=\"viewport\" "
           "content=\"width=device-width, initial-scale=1\">"
           "<title>");
    esc(b, n->name);
    add(b,
        "</title><style>"
        "body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f6;"
        "color:#222}header{padding:1.5rem 2rem;background:#1f2430;color:#fff}"
        "header h1{margin:0;font-size:1.4rem}header p{margin:.3rem 0 0;"
        "opacity:.7}main{padding:1.5rem 2rem}ul.apps{list-style:none;"
        "margin:0;padding:0;display:grid;grid-template-columns:repeat("
        "auto-fill,minmax(14rem,1fr));gap:1rem}li.app{background:#fff;"
        "border-radius:.6rem;padding:1rem;box-shadow:0 1px 3px #0002}"
        ".open{display:flex;align-items:center;gap:.7rem;color:inherit;"
        "text-decoration:none;font-weight:600}.icon{width:2.5rem;"
        "height:2.5rem;border-radius:.5rem;background:#dde}.pid{display:"
        "block;font-size:.75rem;opacity:.6;margin-top:.4rem}"
        "iframe.widget{width:100%;height:8rem;border:0;margin-top:.6rem;"
        "background:#fafafa;border-radius:.4rem}"
        "</style></head><body><header><h1>");
    esc(b, n->name);
    add(b, "</h1><p>the apps of this node</p></header><main>\n"
           "<ul class=\"apps\">\n");
    size_t count = 0;
    /* the tiles, then apps that have a UI but no tile */
    char *tiles_text = hcn_homepage_apps(n);
    json_t *tiles = tiles_text ? json_loads(tiles_text, 0, NULL) : NULL;
    free(tiles_text);
    size_t i;
    json_t *t;
    json_array_foreach(tiles, i, t)
    {
        const char *id = str(t, "id"), *href = str(t, "path");
        if (id == NULL)
            continue;
        if (href == NULL) {
            /* no path in the tile: the app's UI when it has one */
            size_t k;
            json_t *u;
            json_array_foreach(uis, k, u) if (strcmp(str(u, "app"), id) == 0)
                href = str(u, "path");
        }
        app_item(b, id, str(t, "label"), str(t, "base64_icon"), href,
                 str(t, "widget"));
        count++;
    }
    size_t k;
    json_t *u;
    json_array_foreach(uis, k, u)
    {
        const char *id = str(u, "app");
        bool tiled = false;
        json_array_foreach(tiles, i, t) tiled |= strcmp(str(t, "id"), id) == 0;
        if (tiled)
            continue;
        /* listed by its process name */
        const char *colon = strchr(id, ':');
        char *label =
            hcn_xstrndup(id, colon ? (size_t)(colon - id) : strlen(id));
        app_item(b, id, label, NULL, str(u, "path"), NULL);
        free(label);
        count++;
    }
    json_decref(tiles);
    add(b, "</ul>\n");
    if (count == 0)
        add(b, "<p class=\"empty\">No app on this node has a "
               "homepage tile or a UI yet.</p>\n");
    add(b, "</main></body></html>\n");
    fclose(b);
    *len = olen;
    return out;
}
