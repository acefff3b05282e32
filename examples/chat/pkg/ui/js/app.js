// The chat page: HTTP calls through the generated client (caller-utils.ts),
// live updates through the process's WebSocket.
import { ApiError, Chat } from './caller-utils.js';
const BASE = '/chat:chat:hyperc.os';
const SHOWN_MAX = 200;
function byId(id) {
    const e = document.getElementById(id);
    if (e === null)
        throw new Error(`no #${id}`);
    return e;
}
const list = byId('messages');
const form = byId('composer');
const author = byId('author');
const text = byId('text');
const status = byId('status');
const error = byId('error');
function setStatus(state) {
    status.dataset.state = state;
    status.textContent = state;
}
function showError(message) {
    error.hidden = message === null;
    error.textContent = message ?? '';
}
// Messages are shown once each, in id order, whichever way they came.
function show(m) {
    if (list.querySelector(`li[data-id="${m.id}"]`) !== null)
        return;
    const li = document.createElement('li');
    li.dataset.id = String(m.id);
    const who = document.createElement('span');
    who.className = 'author';
    who.textContent = m.author;
    const what = document.createElement('span');
    what.className = 'text';
    what.textContent = m.text;
    li.append(who, what);
    let next = null;
    for (const other of Array.from(list.children)) {
        if (Number(other.dataset.id) > m.id) {
            next = other;
            break;
        }
    }
    list.insertBefore(li, next);
    while (list.children.length > SHOWN_MAX)
        list.firstElementChild?.remove();
    if (next === null)
        li.scrollIntoView({ block: 'end' });
}
async function loadHistory() {
    try {
        for (const m of await Chat.history())
            show(m);
    }
    catch (e) {
        showError(`could not load the history: ${e.message}`);
    }
}
let retry = 500;
function connect() {
    setStatus('connecting');
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${window.location.host}${BASE}/ws`);
    ws.onopen = () => {
        retry = 500;
        setStatus('live');
    };
    ws.onmessage = (ev) => {
        const e = JSON.parse(String(ev.data));
        if ('History' in e)
            e.History.forEach(show);
        else if ('Message' in e)
            show(e.Message);
        else if ('Error' in e)
            showError(e.Error);
    };
    ws.onclose = () => {
        setStatus('offline');
        window.setTimeout(connect, retry);
        retry = Math.min(retry * 2, 10000);
    };
}
form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = text.value.trim();
    if (body === '')
        return;
    try {
        // kit's parseResponse hands an {"Err": ...} answer back as it came
        const r = (await Chat.send_message(author.value.trim(), body));
        if ('Err' in r) {
            showError(r.Err);
            return;
        }
        showError(null);
        localStorage.setItem('chat-author', author.value);
        text.value = '';
        show(r);
    }
    catch (e) {
        showError(e instanceof ApiError ? e.message : String(e));
    }
});
author.value = localStorage.getItem('chat-author') ?? '';
connect();
void loadHistory();
