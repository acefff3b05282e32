// The chat page: HTTP calls through the generated client (caller-utils.ts),
// live updates through the process's WebSocket.
import { ApiError, Chat } from './caller-utils.js';

const BASE = '/chat:chat:hyperc.os';
const SHOWN_MAX = 200;

type ServerEvent =
  | { History: Chat.ChatMessage[] }
  | { Message: Chat.ChatMessage }
  | { Error: string };

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`no #${id}`);
  return e as T;
}

const list = byId<HTMLUListElement>('messages');
const form = byId<HTMLFormElement>('composer');
const author = byId<HTMLInputElement>('author');
const text = byId<HTMLInputElement>('text');
const status = byId<HTMLSpanElement>('status');
const error = byId<HTMLParagraphElement>('error');

function setStatus(state: 'connecting' | 'live' | 'offline'): void {
  status.dataset.state = state;
  status.textContent = state;
}

function showError(message: string | null): void {
  error.hidden = message === null;
  error.textContent = message ?? '';
}

// Messages are shown once each, in id order, whichever way they came.
function show(m: Chat.ChatMessage): void {
  if (list.querySelector(`li[data-id="${m.id}"]`) !== null) return;
  const li = document.createElement('li');
  li.dataset.id = String(m.id);
  const who = document.createElement('span');
  who.className = 'author';
  who.textContent = m.author;
  const what = document.createElement('span');
  what.className = 'text';
  what.textContent = m.text;
  li.append(who, what);
  let next: Element | null = null;
  for (const other of Array.from(list.children)) {
    if (Number((other as HTMLElement).dataset.id) > m.id) {
      next = other;
      break;
    }
  }
  list.insertBefore(li, next);
  while (list.children.length > SHOWN_MAX) list.firstElementChild?.remove();
  if (next === null) li.scrollIntoView({ block: 'end' });
}

async function loadHistory(): Promise<void> {
  try {
    for (const m of await Chat.history()) show(m);
  } catch (e) {
    showError(`could not load the history: ${(e as Error).message}`);
  }
}

let retry = 500;
function connect(): void {
  setStatus('connecting');
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${window.location.host}${BASE}/ws`);
  ws.onopen = () => {
    retry = 500;
    setStatus('live');
  };
  ws.onmessage = (ev: MessageEvent) => {
    const e = JSON.parse(String(ev.data)) as ServerEvent;
    if ('History' in e) e.History.forEach(show);
    else if ('Message' in e) show(e.Message);
    else if ('Error' in e) showError(e.Error);
  };
  ws.onclose = () => {
    setStatus('offline');
    window.setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  };
}

form.addEventListener('submit', async (ev: SubmitEvent) => {
  ev.preventDefault();
  const body = text.value.trim();
  if (body === '') return;
  try {
    // kit's parseResponse hands an {"Err": ...} answer back as it came
    const r = (await Chat.send_message(author.value.trim(), body)) as
      Chat.ChatMessage | { Err: string };
    if ('Err' in r) {
      showError(r.Err);
      return;
    }
    showError(null);
    localStorage.setItem('chat-author', author.value);
    text.value = '';
    show(r);
  } catch (e) {
    showError(e instanceof ApiError ? e.message : String(e));
  }
});

author.value = localStorage.getItem('chat-author') ?? '';
connect();
void loadHistory();
