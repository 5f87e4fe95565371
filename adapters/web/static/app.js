// 다리 콘솔: 봇 고르기, 대화(Server-Sent Events로 답이 흘러들어와요), 상태 보기.
// No build step and no external library: plain browser JavaScript.
"use strict";

const $ = (id) => document.getElementById(id);
const SESSION_KEY = "dari.console.session";
let bots = [];
let busy = false;

function newSessionId() {
  // getRandomValues works on plain http too (randomUUID needs a secure context).
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function session() {
  let id = sessionStorage.getItem(SESSION_KEY);
  if (!id) {
    id = newSessionId();
    sessionStorage.setItem(SESSION_KEY, id);
  }
  return id;
}

function bubble(kind, text) {
  const el = document.createElement("div");
  el.className = "msg " + kind;
  el.textContent = text;
  $("log").appendChild(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    location.reload(); // the login form
    throw new Error("로그인이 필요해요.");
  }
  return response;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error.message;
  } catch (_) {
    return `요청이 실패했어요 (HTTP ${response.status}).`;
  }
}

function selectedBot() {
  return bots.find((b) => b.id === $("bot").value) || bots[0];
}

function greet() {
  $("log").replaceChildren();
  $("quick").replaceChildren();
  const bot = selectedBot();
  if (!bot) return;
  bubble("assistant", bot.greeting).dataset.state = "greeting";
  for (const label of bot.quick_replies) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.addEventListener("click", () => send(label));
    $("quick").appendChild(button);
  }
}

async function loadBots() {
  const response = await api("/console/api/bots");
  if (!response.ok) {
    bubble("error", await errorMessage(response));
    return;
  }
  const body = await response.json();
  bots = body.bots;
  $("bot").replaceChildren(
    ...bots.map((b) => new Option(`${b.name} (${b.id})`, b.id, b.id === body.default, b.id === body.default)),
  );
  greet();
}

const MARKS = { on: ["✅", "state-ok"], open: ["⚠️", "state-warn"], local: ["🏠", "state-warn"], off: ["—", ""] };
const STATE_NAMES = { on: "켜짐", open: "보호 안 됨", local: "로컬 전용", off: "꺼짐" };
const CHECK_NAMES = { store: "저장소", llm: "언어 모델(LLM)" };

function item(mark, cls, title, detail) {
  const li = document.createElement("li");
  const head = document.createElement("span");
  head.className = cls;
  head.textContent = `${mark} ${title}`;
  const small = document.createElement("small");
  small.textContent = detail;
  li.append(head, small);
  return li;
}

async function loadStatus() {
  const response = await api("/console/api/status");
  if (!response.ok) {
    $("checks").replaceChildren(item("❌", "state-bad", "상태를 가져오지 못했어요", await errorMessage(response)));
    return;
  }
  const body = await response.json();
  $("checks").replaceChildren(
    ...Object.entries(body.checks).map(([name, c]) =>
      item(c.ok ? "✅" : "❌", c.ok ? "state-ok" : "state-bad", CHECK_NAMES[name] || name, c.detail),
    ),
  );
  $("doors").replaceChildren(
    ...body.doors.map((d) => {
      const [mark, cls] = MARKS[d.state] || ["?", ""];
      return item(mark, cls, `${d.name}: ${STATE_NAMES[d.state] || d.state}`, d.detail);
    }),
  );
  const web = body.doors.find((d) => d.id === "web");
  $("logout").hidden = !(web && web.state === "on");
}

// Parses "event: x\ndata: {...}\n\n" blocks; returns the unparsed tail.
function parseEvents(buffer, onEvent) {
  let cut;
  while ((cut = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, cut);
    buffer = buffer.slice(cut + 2);
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length) onEvent(name, JSON.parse(data.join("\n")));
  }
  return buffer;
}

async function send(text) {
  text = text.trim();
  if (!text || busy) return;
  busy = true;
  $("send").disabled = true;
  bubble("user", text);
  const answer = bubble("assistant", "");
  answer.dataset.state = "streaming";
  answer.dataset.updates = "0";
  let shown = "";
  try {
    const response = await api("/console/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ bot: selectedBot().id, text, session: session() }),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder("utf-8");
    let buffer = "";
    let finished = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), (name, data) => {
        if (name === "delta") shown += data.text;
        else if (name === "done") { shown = data.text; finished = true; }
        else if (name === "error") throw new Error(data.message);
      });
      if (answer.textContent !== shown) {
        // One update per piece that arrived: the browser test counts these to see streaming.
        answer.textContent = shown;
        answer.dataset.updates = String(Number(answer.dataset.updates) + 1);
        answer.scrollIntoView({ block: "end" });
      }
    }
    if (!finished) throw new Error("답변이 중간에 끊겼어요. 다시 시도해 주세요.");
    answer.dataset.state = "done";
  } catch (error) {
    answer.dataset.state = "error";
    if (!shown) answer.remove();
    bubble("error", error.message);
  } finally {
    busy = false;
    $("send").disabled = false;
    $("text").focus();
  }
}

function main() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    const text = $("text").value;
    $("text").value = "";
    send(text);
  });
  $("text").addEventListener("keydown", (event) => {
    // isComposing: Enter that finishes a Hangul syllable must not send the message.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("bot").addEventListener("change", greet);
  $("new-chat").addEventListener("click", () => {
    sessionStorage.setItem(SESSION_KEY, newSessionId());
    greet();
  });
  $("refresh").addEventListener("click", loadStatus);
  loadBots();
  loadStatus();
  setInterval(loadStatus, 30000);
}

document.addEventListener("DOMContentLoaded", main);
