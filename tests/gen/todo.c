/* A small valid app with custom types, for the WIT golden files. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef enum status { STATUS_OPEN, STATUS_DONE } status;

typedef struct item {
    char *title;
    status state;
} item;

typedef HP_LIST(item) item_list;

typedef struct todo_state {
    item_list items;
    uint64_t next_id;
} todo_state;

HYPERPROCESS(todo_state, .name = "Todo", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_ON_DIFF, .wit_world = "todo-dot-os-v0");

HP_LOCAL HP_REMOTE
static item_list list_items(const todo_state *s)
{
    return s->items;
}

HP_HTTP
static uint64_t add_item(todo_state *s, const item *it)
{
    (void)it;
    return s->next_id++;
}
