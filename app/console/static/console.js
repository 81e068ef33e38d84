/* Sentinel operations console: sign-in, sources, live events, episodes, alerts, LLM, cache, health.
   Plain JS, no build step, nothing loaded from another host. Every API call carries the
   user's bearer token (the live feed uses fetch() streaming because EventSource cannot send
   an Authorization header). */
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "sentinel.console.token";
const LANG_KEY = "sentinel.console.lang";
const FEED_MAX = 200;
const REFRESH_MS = 5000;

const I18N = {
  en: {
    console: "console", signIn: "Sign in", signOut: "Sign out", email: "Email", password: "Password",
    devMode: "Development mode: the API is open, no sign-in needed.",
    overview: "Overview", sources: "Sources", live: "Live", episodes: "Episodes", alerts: "Alerts",
    health: "Health", llmModels: "LLM models", cache: "Answer cache", liveFeed: "Live events",
    source: "Source", state: "State", lastSeen: "Last seen", lastEvent: "Last event", openEpisode: "Open episode",
    online: "online", offline: "offline", none: "none", component: "Component", status: "Status", detail: "Detail",
    model: "Model", cooldown: "Cooldown", until: "until", available: "available", cooling: "cooling",
    disabled: "disabled", calls: "Calls", successes: "Successes", fallbacks: "Fallbacks", tokens: "Tokens in/out",
    exactHits: "Exact hits", semanticHits: "Semantic hits", misses: "Misses", hitRate: "Hit rate",
    localAnswers: "Local answers", adminOnly: "Usage counters are for administrators.",
    noModels: "No LLM configured: answers are extracted locally.",
    started: "Started", ended: "Ended", decision: "Verdict", score: "Score", label: "Label", events: "Events",
    alert: "Alert", event: "Event", episode: "Episode closed", attempts: "Attempts", lastError: "Last error", created: "Created", sent: "Sent",
    empty: "Nothing yet.", connecting: "connecting", connected: "live", reconnecting: "reconnecting",
    badLogin: "Sign-in failed: check your email and password.", sessionEnded: "Your session ended; sign in again.",
    loadFailed: "Could not load", ago: "ago", s: "s", m: "min", h: "h", d: "d",
    open: "open", closed: "closed", normal: "normal", abnormal: "abnormal", unknown: "unknown",
    pending: "pending", sending: "sending", failed: "failed", suppressed: "suppressed",
    undeliverable: "undeliverable", healthy: "healthy", degraded: "degraded", down: "down", unhealthy: "unhealthy",
    ok: "ok",
  },
  ko: {
    console: "운영 콘솔", signIn: "로그인", signOut: "로그아웃", email: "이메일", password: "비밀번호",
    devMode: "개발 모드: API가 열려 있어 로그인하지 않아도 됩니다.",
    overview: "개요", sources: "소스", live: "실시간", episodes: "에피소드", alerts: "알림",
    health: "상태", llmModels: "LLM 모델", cache: "답변 캐시", liveFeed: "실시간 이벤트",
    source: "소스", state: "상태", lastSeen: "마지막 수신", lastEvent: "마지막 이벤트", openEpisode: "진행 중 에피소드",
    online: "온라인", offline: "오프라인", none: "없음", component: "구성 요소", status: "상태", detail: "세부",
    model: "모델", cooldown: "쿨다운", until: "종료", available: "사용 가능", cooling: "쿨다운 중",
    disabled: "비활성", calls: "호출", successes: "성공", fallbacks: "대체", tokens: "토큰 입력/출력",
    exactHits: "정확 일치", semanticHits: "의미 일치", misses: "미스", hitRate: "적중률",
    localAnswers: "로컬 답변", adminOnly: "사용량 통계는 관리자만 볼 수 있습니다.",
    noModels: "설정된 LLM이 없습니다: 답변은 로컬에서 추출됩니다.",
    started: "시작", ended: "종료", decision: "판정", score: "점수", label: "라벨", events: "이벤트",
    alert: "알림", event: "이벤트", episode: "에피소드 종료", attempts: "시도", lastError: "마지막 오류", created: "생성", sent: "발송",
    empty: "아직 없습니다.", connecting: "연결 중", connected: "연결됨", reconnecting: "재연결 중",
    badLogin: "로그인 실패: 이메일과 비밀번호를 확인하세요.", sessionEnded: "세션이 끝났습니다. 다시 로그인하세요.",
    loadFailed: "불러오지 못함", ago: "전", s: "초", m: "분", h: "시간", d: "일",
    open: "진행 중", closed: "종료", normal: "정상", abnormal: "이상", unknown: "알 수 없음",
    pending: "대기", sending: "발송 중", failed: "실패", suppressed: "억제됨",
    undeliverable: "발송 불가", healthy: "정상", degraded: "저하", down: "중단", unhealthy: "비정상",
    ok: "정상",
  },
};

const state = {
  lang: pickLanguage(),
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  open: false, // development mode: the API needs no token
  view: "overview",
  stream: null,
  timer: null,
};

function pickLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === "ko" || saved === "en") return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const l of langs) {
    const base = String(l).toLowerCase().slice(0, 2);
    if (base === "ko" || base === "en") return base;
  }
  return "en";
}

function t(key) {
  return (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
}

function $(id) { return document.getElementById(id); }

/** Build an element; children are nodes or strings (always text, never HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function pill(value, kind) {
  return el("span", { class: "pill " + (kind || "") }, t(value));
}

function statusKind(value) {
  if (["healthy", "ok", "online", "sent", "normal", "available", "closed", "disabled_by_config"].includes(value)) return "ok";
  if (["degraded", "pending", "sending", "cooling", "open", "suppressed", "unknown"].includes(value)) return "warn";
  if (["down", "unhealthy", "offline", "failed", "undeliverable", "abnormal", "disabled"].includes(value)) return "bad";
  return "";
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return "—";
  return d.toLocaleString(state.lang === "ko" ? "ko-KR" : "en-GB", { hour12: false });
}

function fmtAgo(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  let text;
  if (s < 60) text = s + t("s");
  else if (s < 3600) text = Math.floor(s / 60) + t("m");
  else if (s < 86400) text = Math.floor(s / 3600) + t("h");
  else text = Math.floor(s / 86400) + t("d");
  return state.lang === "ko" ? text + " " + t("ago") : text + " " + t("ago");
}

function pct(part, total) {
  return total > 0 ? (100 * part / total).toFixed(1) + "%" : "—";
}

/** A table whose cells carry their column label (shown on phone width). */
function table(columns, rows) {
  if (!rows.length) return el("p", { class: "empty" }, t("empty"));
  const head = el("tr", {}, columns.map((c) => el("th", {}, t(c))));
  const body = rows.map((cells) =>
    el("tr", {}, cells.map((cell, i) => el("td", { "data-label": t(columns[i]) }, cell))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
}

function fill(id, node) {
  const target = $(id);
  target.replaceChildren(node);
}

// --- API ---------------------------------------------------------------------------------

class AuthError extends Error {}

function headers(extra) {
  const h = Object.assign({ "Accept-Language": state.lang }, extra || {});
  if (state.token) h.Authorization = "Bearer " + state.token;
  return h;
}

async function api(path, options) {
  const response = await fetch(path.startsWith("/") ? path : API + "/" + path, Object.assign({ headers: headers() }, options || {}));
  if (response.status === 401) throw new AuthError(t("sessionEnded"));
  if (!response.ok) {
    let detail = response.status + "";
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    const err = new Error(detail);
    err.status = response.status;
    throw err;
  }
  return response.json();
}

function failed(id, err) {
  if (err instanceof AuthError) return signOut(t("sessionEnded"));
  fill(id, el("p", { class: "error" }, t("loadFailed") + ": " + err.message));
}

// --- views -------------------------------------------------------------------------------

async function loadHealth() {
  try {
    const report = await api("/health");
    const rows = Object.entries(report.services || {}).map(([name, info]) => {
      const bits = [];
      if (info.latency_ms !== undefined) bits.push(info.latency_ms + " ms");
      if (info.error) bits.push(info.error);
      if (info.pending !== undefined) bits.push(t("pending") + " " + info.pending);
      return [name, pill(info.status, info.status === "disabled" ? "" : statusKind(info.status)), el("span", { class: "muted" }, bits.join(" · "))];
    });
    fill("health", el("div", {},
      el("p", {}, pill(report.status, statusKind(report.status)), " ", el("span", { class: "muted" }, report.version + " · " + report.environment)),
      table(["component", "status", "detail"], rows)));
    return report;
  } catch (err) { failed("health", err); return null; }
}

async function loadLlm(report) {
  const fetchedAt = Date.now();
  let stats = null;
  let forbidden = false;
  try { stats = await api("admin/llm/stats"); } catch (err) {
    if (err instanceof AuthError) return signOut(t("sessionEnded"));
    forbidden = err.status === 403;
  }
  const llm = (report && report.services && report.services.llm) || {};
  const chain = stats ? stats.chain : (llm.chain || []);
  const cooling = llm.cooling_down || {};
  const disabled = llm.disabled || {};
  const byKey = {};
  for (const m of (stats ? stats.models : [])) byKey[m.provider + ":" + m.model] = m;
  if (!chain.length) fill("llm", el("p", { class: "empty" }, t("noModels")));
  else {
    const rows = chain.map((key) => {
      const m = byKey[key] || {};
      const left = m.cooldown_remaining_secs || cooling[key] || 0;
      let st = "available";
      if (m.disabled || disabled[key]) st = "disabled";
      else if (left > 0) st = "cooling";
      const until = left > 0 ? t("until") + " " + fmtTime(new Date(fetchedAt + left * 1000).toISOString()) + " (" + Math.ceil(left) + t("s") + ")" : "—";
      return [key, pill(st, statusKind(st)), until,
        stats ? String(m.calls || 0) : "—", stats ? String(m.fallbacks || 0) : "—",
        stats ? (m.tokens_in || 0) + " / " + (m.tokens_out || 0) : "—"];
    });
    fill("llm", table(["model", "state", "cooldown", "calls", "fallbacks", "tokens"], rows));
  }
  if (stats) {
    const c = stats.cache || {};
    const total = (c.exact_hits || 0) + (c.semantic_hits || 0) + (c.misses || 0);
    fill("cache", table(["cache", "calls", "hitRate"], [
      [t("exactHits"), String(c.exact_hits || 0), pct(c.exact_hits || 0, total)],
      [t("semanticHits"), String(c.semantic_hits || 0), pct(c.semantic_hits || 0, total)],
      [t("misses"), String(c.misses || 0), pct(c.misses || 0, total)],
      [t("localAnswers"), String(stats.local_answers || 0), "—"],
    ]));
  } else {
    fill("cache", el("p", { class: "muted" }, forbidden ? t("adminOnly") : t("loadFailed")));
  }
}

async function loadOverview() {
  const report = await loadHealth();
  await loadLlm(report);
}

async function loadSources() {
  try {
    const [sources, open] = await Promise.all([api("sources"), api("episodes?status=open&limit=500")]);
    const openBySource = {};
    for (const ep of open.items) if (!openBySource[ep.source_id]) openBySource[ep.source_id] = ep;
    const rows = sources.items.map((s) => {
      const ep = openBySource[s.source_id];
      return [
        el("strong", { class: "source-id" }, s.source_id),
        pill(s.online ? "online" : "offline", s.online ? "ok" : "bad"),
        el("span", { title: fmtTime(s.last_seen) }, fmtAgo(s.seconds_since_seen)),
        s.last_event_type || "—",
        ep ? el("span", {}, fmtTime(ep.started_at) + " · " + ep.event_count + " " + t("events")) : el("span", { class: "muted" }, t("none")),
      ];
    });
    fill("sources", table(["source", "state", "lastSeen", "lastEvent", "openEpisode"], rows));
  } catch (err) { failed("sources", err); }
}

async function loadEpisodes() {
  try {
    const page = await api("episodes?limit=50");
    const rows = page.items.map((e) => [
      e.source_id,
      pill(e.status, statusKind(e.status)),
      e.decision ? pill(e.decision, statusKind(e.decision)) : "—",
      e.anomaly_score === null ? "—" : e.anomaly_score.toFixed(3) + (e.threshold === null ? "" : " / " + e.threshold.toFixed(3)),
      e.top_label || "—",
      String(e.event_count),
      fmtTime(e.started_at),
      fmtTime(e.ended_at),
      e.alert_status ? pill(e.alert_status, statusKind(e.alert_status)) : "—",
    ]);
    fill("episodes", table(["source", "status", "decision", "score", "label", "events", "started", "ended", "alert"], rows));
  } catch (err) { failed("episodes", err); }
}

async function loadAlerts() {
  try {
    const page = await api("alerts?limit=50");
    const rows = page.items.map((a) => [
      a.source_id,
      pill(a.status, statusKind(a.status)),
      a.label || "—",
      a.score === null ? "—" : a.score.toFixed(3),
      String(a.attempts),
      a.last_error ? el("span", { class: "muted" }, a.last_error) : "—",
      fmtTime(a.created_at),
      fmtTime(a.sent_at),
    ]);
    fill("alerts", table(["source", "status", "label", "score", "attempts", "lastError", "created", "sent"], rows));
  } catch (err) { failed("alerts", err); }
}

const LOADERS = { overview: loadOverview, sources: loadSources, episodes: loadEpisodes, alerts: loadAlerts, live: async () => {} };

function refresh() {
  return LOADERS[state.view]();
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  refresh();
}

// --- live feed (fetch streaming with the Authorization header) ---------------------------

function setStreamState(key) {
  const node = $("stream-state");
  node.textContent = t(key);
  node.dataset.state = key;
  node.className = "pill " + (key === "connected" ? "ok" : "warn");
}

function addFeedItem(kind, data) {
  const feed = $("feed");
  const when = data.timestamp || data.received_at || new Date().toISOString();
  let summary = "";
  if (kind === "event") summary = data.event_type + (data.probs ? " " + topProb(data.probs) : "");
  else if (kind === "episode_closed") summary = t(data.decision || "unknown") + (data.anomaly_score != null ? " (" + Number(data.anomaly_score).toFixed(3) + ")" : "");
  else if (kind === "alert") summary = t(data.status);
  const item = el("li", { class: "feed-item", "data-kind": kind, "data-id": data.id || "" },
    el("time", {}, fmtTime(when)),
    pill(kind === "event" ? "event" : kind === "alert" ? "alert" : "episode", kind === "alert" ? "bad" : kind === "event" ? "" : "warn"),
    el("strong", {}, data.source_id || ""),
    el("span", {}, summary),
    el("code", {}, data.id || ""));
  feed.prepend(item);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

function topProb(probs) {
  let best = null;
  for (const [k, v] of Object.entries(probs)) if (best === null || v > best[1]) best = [k, v];
  return best ? best[0] + " " + Number(best[1]).toFixed(2) : "";
}

async function runStream() {
  let delay = 1000;
  while (state.stream) {
    const controller = new AbortController();
    state.stream.controller = controller;
    setStreamState(delay === 1000 ? "connecting" : "reconnecting");
    try {
      const response = await fetch(API + "/events/stream", { headers: headers({ Accept: "text/event-stream" }), signal: controller.signal, cache: "no-store" });
      if (response.status === 401) return signOut(t("sessionEnded"));
      if (!response.ok || !response.body) throw new Error("stream " + response.status);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          handleBlock(block);
          delay = 1000;
        }
      }
    } catch (err) {
      if (!state.stream) return;
    }
    if (!state.stream) return;
    setStreamState("reconnecting");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

function handleBlock(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  if (kind === "ready") { setStreamState("connected"); return; }
  if (!data.length || kind === "message" || kind === "ping") return;
  let payload;
  try { payload = JSON.parse(data.join("\n")); } catch (e) { return; }
  addFeedItem(kind, payload);
  // Sources, episodes and alerts change with events: refresh the visible table soon.
  if (state.view !== "live" && state.view !== "overview") scheduleRefresh();
}

let refreshPending = null;
function scheduleRefresh() {
  if (refreshPending) return;
  refreshPending = setTimeout(() => { refreshPending = null; refresh(); }, 300);
}

function startStream() {
  stopStream();
  state.stream = { controller: null };
  runStream();
}

function stopStream() {
  if (state.stream && state.stream.controller) state.stream.controller.abort();
  state.stream = null;
}

// --- sign-in -------------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  if ($("stream-state").dataset.state) setStreamState($("stream-state").dataset.state);
}

function enter(who) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("devmode").hidden = !state.open;
  $("signout").hidden = state.open && !state.token;
  $("who").textContent = who || "";
  startStream();
  show(state.view);
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function signOut(message) {
  stopStream();
  clearInterval(state.timer);
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const body = new URLSearchParams({ username: $("email").value.trim(), password: $("password").value });
  try {
    const response = await fetch(API + "/auth/login", { method: "POST", body, headers: { "Accept-Language": state.lang } });
    if (!response.ok) {
      let detail = t("badLogin");
      if (response.status !== 401) { try { detail = (await response.json()).detail || detail; } catch (e) { /* keep */ } }
      $("login-error").textContent = typeof detail === "string" ? detail : t("badLogin");
      return;
    }
    const data = await response.json();
    state.token = data.access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("password").value = "";
    enter($("email").value.trim());
  } catch (err) {
    $("login-error").textContent = t("loadFailed") + ": " + err.message;
  }
}

async function boot() {
  applyLanguage();
  $("lang").addEventListener("change", (e) => {
    state.lang = e.target.value;
    localStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
    if (!$("app").hidden) refresh();
  });
  $("login-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut(""));
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  if (state.token) {
    try {
      const me = await api("users/me");
      return enter(me.email);
    } catch (err) {
      state.token = "";
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  // Without a token: an open API means development mode; otherwise sign in.
  const probe = await fetch(API + "/sources", { headers: headers() }).catch(() => null);
  if (probe && probe.ok) { state.open = true; return enter(""); }
  signOut("");
}

document.addEventListener("DOMContentLoaded", boot);
