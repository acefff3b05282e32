/* A small valid app with custom types, for the WIT golden files. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef enum status { STATUS_OPEN, STATUS_DONE } status;

typedef struct item {
    char *title;
    status state;
} item;

typedef HP_LIST(item) item_list;

typedef struct tasks_state {
    item_list items;
    uint64_t next_id;
} tasks_state;

HYPERPROCESS(tasks_state, .name = "Tasks", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_ON_DIFF, .wit_world = "tasks-dot-os-v0");

HP_LOCAL HP_REMOTE
static item_list list_items(const tasks_state *s)
{
    return s->items;
}

HP_HTTP
static uint64_t add_item(tasks_state *s, const item *it)
{
    (void)it;
    return s->next_id++;
}
