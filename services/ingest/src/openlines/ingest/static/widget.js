/* openlines website widget: one <script> tag, no build step, no dependencies.
 *
 *   <script src="https://chat.example.com/widget/<channel_id>.js" async></script>
 *
 * It draws a chat button; the box it opens sends the visitor's messages to the visitor
 * endpoints of the origin it was loaded from (POST /widget/<channel>/messages, with a visitor
 * token that names this one conversation), and shows the operators' replies and typing live
 * over the visitor socket (GET /widget/<channel>/socket). The token is kept in localStorage,
 * so a visitor who comes back (or reloads) sees the conversation so far. No secret is here.
 */
(function () {
  "use strict";
  var CONFIG = /*{{CONFIG}}*/ null;
  if (!CONFIG || window["__openlinesWidget_" + CONFIG.channel]) return;
  window["__openlinesWidget_" + CONFIG.channel] = true;

  var script = document.currentScript;
  var src = new URL(script ? script.src : "/widget/" + CONFIG.channel + ".js", location.href);
  var base = src.origin + src.pathname.replace(/\/widget\/[^/]*$/, "");
  var api = base + "/widget/" + encodeURIComponent(CONFIG.channel);
  var storeKey = "openlines-widget:" + CONFIG.channel;

  var session = null;
  var socket = null;
  var retry = 500;
  var failures = 0;
  var shown = {};
  var unreadReceipts = { delivered: [], read: [] };
  var receiptTimer = null;
  var typingTimer = null;
  var lastTypingSent = 0;
  var open = false;

  // -- the box -----------------------------------------------------------------------------
  var css =
    ".ol-w{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.4 system-ui,sans-serif}" +
    ".ol-btn{background:#2563eb;color:#fff;border:0;border-radius:24px;padding:12px 18px;cursor:pointer;box-shadow:0 2px 8px #0003}" +
    ".ol-box{display:none;flex-direction:column;width:320px;height:420px;background:#fff;border-radius:12px;box-shadow:0 4px 24px #0004;overflow:hidden}" +
    ".ol-open .ol-box{display:flex}.ol-open .ol-btn{display:none}" +
    ".ol-head{background:#2563eb;color:#fff;padding:10px 12px;display:flex;justify-content:space-between}" +
    ".ol-head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}" +
    ".ol-list{flex:1;overflow-y:auto;padding:10px;background:#f8fafc}" +
    ".ol-msg{margin:4px 0;padding:6px 10px;border-radius:10px;max-width:80%;white-space:pre-wrap;word-wrap:break-word}" +
    ".ol-in{background:#2563eb;color:#fff;margin-left:auto}" +
    ".ol-out{background:#e2e8f0;color:#0f172a}" +
    ".ol-note{color:#64748b;font-size:12px;text-align:center}" +
    ".ol-typing{color:#64748b;font-size:12px;padding:0 12px;height:18px}" +
    ".ol-form{display:flex;border-top:1px solid #e2e8f0}" +
    ".ol-form input{flex:1;border:0;padding:10px;font:inherit;outline:none}" +
    ".ol-form button{border:0;background:#2563eb;color:#fff;padding:0 14px;cursor:pointer}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  var root = el("div", "ol-w");
  root.id = "openlines-widget";
  var button = el("button", "ol-btn", CONFIG.title || "Chat");
  button.id = "openlines-widget-button";
  var box = el("div", "ol-box");
  var head = el("div", "ol-head");
  head.appendChild(el("span", "ol-title", CONFIG.title || "Chat"));
  var close = el("button", "ol-close", "\u00d7");
  close.setAttribute("aria-label", "close");
  head.appendChild(close);
  var list = el("div", "ol-list");
  var typing = el("div", "ol-typing");
  var form = el("form", "ol-form");
  var input = el("input", "ol-input");
  input.placeholder = "Write a message\u2026";
  input.maxLength = 4096;
  var send = el("button", "ol-send", "Send");
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  box.appendChild(head);
  box.appendChild(list);
  box.appendChild(typing);
  box.appendChild(form);
  root.appendChild(button);
  root.appendChild(box);
  (document.body || document.documentElement).appendChild(root);
  if (CONFIG.greeting) list.appendChild(el("div", "ol-msg ol-out ol-greeting", CONFIG.greeting));

  button.addEventListener("click", function () {
    open = true;
    root.classList.add("ol-open");
    input.focus();
    start();
    markRead();
  });
  close.addEventListener("click", function () {
    open = false;
    root.classList.remove("ol-open");
  });
  document.addEventListener("visibilitychange", markRead);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    var id = "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    render({ id: id, direction: "in", text: text });
    write(text, id, 0);
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (socket && socket.readyState === 1 && now - lastTypingSent > 3000) {
      lastTypingSent = now;
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function render(message) {
    var known = shown[message.id];
    if (known) {
      if (message.text != null) known.textContent = message.text;
      return;
    }
    var node = el("div", "ol-msg " + (message.direction === "out" ? "ol-out" : "ol-in"), message.text || "");
    node.setAttribute("data-id", message.id);
    shown[message.id] = node;
    list.appendChild(node);
    list.scrollTop = list.scrollHeight;
    if (message.direction === "out") {
      typing.textContent = "";
      acknowledge(message.id);
    }
  }

  function note(text) {
    list.appendChild(el("div", "ol-note", text));
    list.scrollTop = list.scrollHeight;
  }

  // -- the session: a visitor token kept across visits -----------------------------------
  function stored() {
    try {
      var saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      if (saved && saved.token && new Date(saved.expires_at).getTime() > Date.now() + 60000) return saved;
    } catch (e) {}
    return null;
  }

  var pendingSession = null;

  function ensureSession() {
    session = session || stored();
    if (session) return Promise.resolve(session);
    // One request however many callers (opening the box and the first message race).
    pendingSession =
      pendingSession ||
      fetch(api + "/sessions", { method: "POST" })
        .then(function (r) {
          if (!r.ok) throw new Error("session " + r.status);
          return r.json();
        })
        .then(function (answer) {
          session = answer;
          try {
            localStorage.setItem(storeKey, JSON.stringify(answer));
          } catch (e) {}
          return session;
        })
        .finally(function () {
          pendingSession = null;
        });
    return pendingSession;
  }

  function forget() {
    session = null;
    try {
      localStorage.removeItem(storeKey);
    } catch (e) {}
  }

  function call(path, body) {
    return fetch(api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + session.token },
      body: JSON.stringify(body),
    });
  }

  function write(text, id, attempt) {
    ensureSession()
      .then(function () {
        return call("/messages", { text: text, client_message_id: id, page_url: location.href });
      })
      .then(function (r) {
        if (r.status === 401) {
          forget();
          throw new Error("token");
        }
        if (r.status === 429 || r.status >= 500) throw new Error("retry " + r.status);
        if (!r.ok) note("Message not sent (" + r.status + ")");
      })
      .catch(function () {
        // The same client_message_id: a retry that did arrive is not a second message.
        if (attempt < 5) setTimeout(function () { write(text, id, attempt + 1); }, 1000 * (attempt + 1));
        else note("Message not sent");
      });
  }

  // -- receipts: delivered when the socket brought it, read when the visitor saw it -------
  // What this browser already reported, kept across reloads (bounded): a reconnect's
  // history is not reported again.
  var ackKey = storeKey + ":acked";
  var acked = {};
  try {
    acked = JSON.parse(localStorage.getItem(ackKey) || "{}") || {};
  } catch (e) {}

  function remember(ids, status) {
    ids.forEach(function (id) {
      if (acked[id] !== "read") acked[id] = status;
    });
    var keys = Object.keys(acked);
    keys.slice(0, Math.max(0, keys.length - 300)).forEach(function (k) {
      delete acked[k];
    });
    try {
      localStorage.setItem(ackKey, JSON.stringify(acked));
    } catch (e) {}
  }

  function acknowledge(id) {
    if (acked[id] === "read") return;
    if (!acked[id]) unreadReceipts.delivered.push(id);
    if (open && document.visibilityState === "visible") unreadReceipts.read.push(id);
    else (acknowledge.pendingRead = acknowledge.pendingRead || []).push(id);
    flushSoon();
  }

  function markRead() {
    if (!open || document.visibilityState !== "visible") return;
    var pending = acknowledge.pendingRead || [];
    acknowledge.pendingRead = [];
    Array.prototype.push.apply(unreadReceipts.read, pending);
    flushSoon();
  }

  function flushSoon() {
    if (receiptTimer) return;
    receiptTimer = setTimeout(function () {
      receiptTimer = null;
      ["delivered", "read"].forEach(function (status) {
        var ids = unreadReceipts[status].splice(0, 50);
        if (!ids.length || !session) return;
        call("/receipts", { status: status, message_ids: ids })
          .then(function (r) {
            if (r.ok) remember(ids, status);
          })
          .catch(function () {});
      });
      if (unreadReceipts.delivered.length || unreadReceipts.read.length) flushSoon();
    }, 200);
  }

  // -- the socket: history, replies, typing ----------------------------------------------
  function start() {
    if (socket) return;
    ensureSession().then(connect, function () {
      note("Chat unavailable, retrying\u2026");
      setTimeout(start, 3000);
    });
  }

  function connect() {
    var url = api.replace(/^http/, "ws") + "/socket?token=" + encodeURIComponent(session.token);
    socket = new WebSocket(url);
    var opened = false;
    socket.onopen = function () {
      opened = true;
      failures = 0;
      retry = 500;
      root.setAttribute("data-connected", "true");
    };
    socket.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame.type === "history") frame.messages.forEach(render);
      else if (frame.type === "message" || frame.type === "edited") render(frame.message);
      else if (frame.type === "deleted" && shown[frame.id]) shown[frame.id].remove();
      else if (frame.type === "typing") {
        typing.textContent = (frame.name || "Operator") + " is typing\u2026";
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { typing.textContent = ""; }, 5000);
      }
    };
    socket.onclose = function (event) {
      socket = null;
      root.setAttribute("data-connected", "false");
      // 4001: the token expired. A handshake refused again and again may be a token no
      // longer valid (a rotated channel secret: browsers report its 401 as 1006) or an
      // outage: ask ingest (an empty receipt: 401 for a bad token, 422 for a good one).
      failures = opened ? 0 : failures + 1;
      if (event.code === 4001) forget();
      else if (failures >= 3 && session) {
        failures = 0;
        call("/receipts", { status: "read", message_ids: [] })
          .then(function (r) {
            if (r.status === 401) forget();
          })
          .catch(function () {});
      }
      setTimeout(start, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  if (stored()) start(); // a returning visitor: connect at once, the box shows it all
})();
