// The playground page: one conversation with the API, exactly as any client would talk to it.
//
// - POST /chat through fetch (EventSource cannot POST) and read the SSE body as it arrives.
// - The API key lives in sessionStorage only: it is gone when the tab closes, and it is never
//   put in local storage or a cookie, where it would outlive the tab or ride along on requests.
// - Replies are rendered by markdown.js, which builds nodes and never parses model text as HTML.

import { renderMarkdown } from "./markdown.js";
import { readEventBatches } from "./sse.js";

const KEY_STORAGE = "aura-agent.api-key";

const $ = (id) => document.getElementById(id);
const ui = {
  key: $("api-key"),
  model: $("model"),
  session: $("session-id"),
  newConversation: $("new-conversation"),
  transcript: $("transcript"),
  empty: $("empty"),
  error: $("error"),
  composer: $("composer"),
  message: $("message"),
  send: $("send"),
  stop: $("stop"),
  version: $("version"),
};

const state = { sessionId: null, controller: null };

function readStoredKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? "";
  } catch {
    return ""; // storage disabled: the key then lasts as long as the page
  }
}

function storeKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: nothing to do
  }
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

function setSession(id) {
  state.sessionId = id;
  ui.session.textContent = id ?? "new";
}

function setStreaming(streaming) {
  ui.send.disabled = streaming;
  ui.stop.disabled = !streaming;
  ui.transcript.setAttribute("aria-busy", String(streaming)); // announce replies once complete
}

function nearBottom() {
  const t = ui.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

function scrollDown() {
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Appends the user's message and an empty reply; returns handles to fill the reply in. */
function addTurn(message, model) {
  ui.empty.hidden = true;
  const user = element("article", "turn user");
  user.append(element("div", "role", "you"), element("div", "text", message));
  const assistant = element("article", "turn assistant");
  assistant.dataset.state = "streaming";
  const reply = element("div", "reply");
  const note = element("div", "note");
  assistant.append(element("div", "role", model ? `assistant · ${model}` : "assistant"), reply, note);
  ui.transcript.append(user, assistant);
  scrollDown();
  return {
    render(text) {
      const follow = nearBottom();
      reply.replaceChildren(renderMarkdown(text));
      if (follow) scrollDown();
    },
    finish(outcome, detail) {
      assistant.dataset.state = outcome;
      note.textContent = detail ?? "";
    },
  };
}

/** The readable part of an HTTP error: a problem+json `detail`, else the status line. */
async function describeHttpError(response) {
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      const problem = await response.json();
      if (problem && typeof problem.detail === "string") {
        const title = typeof problem.title === "string" ? problem.title : "Error";
        return `${title} (${response.status}): ${problem.detail}`;
      }
    } catch {
      // not JSON after all: fall through to the status line
    }
  }
  return `HTTP ${response.status} ${response.statusText}`.trim();
}

async function send(event) {
  event.preventDefault();
  if (state.controller) return; // one reply at a time
  const message = ui.message.value;
  if (!message.trim()) return;
  const key = ui.key.value.trim();
  if (!key) {
    showError("Enter the API key (the server's INTERNAL_API_KEY) first.");
    ui.key.focus();
    return;
  }
  clearError();
  const model = ui.model.value;
  const turn = addTurn(message, model);
  ui.message.value = "";
  const controller = new AbortController();
  state.controller = controller;
  setStreaming(true);

  const body = { message };
  if (state.sessionId) body.session_id = state.sessionId;
  if (model) body.model = model;
  let text = "";
  let outcome = null;
  try {
    const response = await fetch("/chat", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        "x-api-key": key,
      },
      body: JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
    });
    if (!response.ok) {
      const detail = await describeHttpError(response);
      showError(detail);
      turn.finish("error", "No reply: the request was refused.");
      return;
    }
    const sessionId = response.headers.get("x-session-id");
    if (sessionId) setSession(sessionId);
    for await (const events of readEventBatches(response.body)) {
      let grew = false;
      for (const sse of events) {
        if (sse.event === "message") {
          text += sse.data;
          grew = true;
        } else if (sse.event === "done") {
          outcome = "done";
        } else if (sse.event === "error") {
          outcome = "error";
          showError(sse.data);
        }
      }
      if (grew) turn.render(text);
    }
    if (outcome === "error") turn.finish("error", "The reply failed; it was not saved.");
    else if (outcome === "done") turn.finish("done");
    else {
      showError("The connection closed before the reply finished.");
      turn.finish("error", "Cut off: the reply was not saved.");
    }
  } catch (error) {
    if (error?.name === "AbortError") {
      turn.finish("stopped", "Stopped. The unfinished reply was not saved.");
    } else {
      showError(`Could not reach the server: ${error?.message ?? error}`);
      turn.finish("error", "No reply.");
    }
  } finally {
    state.controller = null;
    setStreaming(false);
    ui.message.focus();
  }
}

function newConversation() {
  state.controller?.abort();
  setSession(null);
  clearError();
  ui.transcript.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  ui.message.focus();
}

async function loadConfig() {
  try {
    const response = await fetch("/playground/config", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const config = await response.json();
    for (const name of config.models) {
      const option = element("option", "", name);
      option.value = name;
      option.selected = name === config.default_model;
      ui.model.append(option);
    }
    ui.version.textContent = `v${config.version}`;
  } catch (error) {
    const option = element("option", "", "server default");
    option.value = "";
    ui.model.append(option);
    showError(`Could not load the model list (${error.message}); using the server default.`);
  }
}

function init() {
  ui.key.value = readStoredKey();
  ui.key.addEventListener("input", () => storeKey(ui.key.value.trim()));
  ui.composer.addEventListener("submit", send);
  ui.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.stop.addEventListener("click", () => state.controller?.abort());
  ui.newConversation.addEventListener("click", newConversation);
  setSession(null);
  setStreaming(false);
  (ui.key.value ? ui.message : ui.key).focus();
  loadConfig().finally(() => {
    document.body.dataset.ready = "true"; // lets tests wait for the model list
  });
}

init();
