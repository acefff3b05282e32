/* HTTP handlers of every shape (0, 1 and n parameters, methods and paths,
 * result returns, keyword names), for the TypeScript client's golden file. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef enum priority { PRIORITY_LOW, PRIORITY_VERY_HIGH } priority;

typedef HP_OPTION(char *) maybe_text;
typedef HP_LIST(uint32_t) id_list;
typedef HP_LIST(maybe_text) maybe_texts;
typedef HP_MAP(int64_t) totals;
typedef HP_TUPLE2(uint32_t, maybe_text) tagged;

typedef struct flags {
    bool urgent;
    priority level;
} flags;

typedef struct note {
    char *body;
    id_list tags;
    hw_bytes blob;
    hw_address author;
    maybe_texts lines;
    totals sums;
    tagged pair;
    flags type;
    double score;
} note;

typedef HP_LIST(note) note_list;
typedef HP_RESULT(note, char *) note_result;
typedef HP_RESULT(hp_unit, char *) done_result;
typedef HP_RESULT(uint64_t, hp_unit) count_result;
typedef HP_RESULT(hp_unit, hp_unit) bare_result;

typedef struct web_state {
    note_list notes;
} web_state;

HYPERPROCESS(web_state, .name = "web",
             .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api")),
             .save_config = HP_SAVE_NEVER, .wit_world = "web-v0");

HP_HTTP_ROUTE("GET", "/notes")
static note_list list_notes(const web_state *s)
{
    return s->notes;
}

HP_HTTP
static note_result get_note(web_state *s, uint64_t note_id)
{
    (void)s; (void)note_id;
    note_result r = {0};
    return r;
}

HP_HTTP_METHOD("PUT")
static done_result update_note(web_state *s, uint64_t note_id, note body,
                               flags type)
{
    (void)s; (void)note_id; (void)body; (void)type;
    done_result r = {0};
    return r;
}

HP_HTTP HP_LOCAL
static count_result count(web_state *s, tagged t, maybe_texts m)
{
    (void)s; (void)t; (void)m;
    count_result r = {0};
    return r;
}

HP_HTTP_PATH("/api/ping")
static bare_result ping(web_state *s)
{
    (void)s;
    bare_result r = {0};
    return r;
}

HP_LOCAL
static uint64_t size(web_state *s)
{
    return s->notes.len;
}
