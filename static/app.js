// The page talks to the gateway only through GraphQL fetch calls, and puts
// every text that came from a database into the page as text (textContent),
// never as HTML.

const $ = (id) => document.getElementById(id);

// The bearer token, when the gateway needs one (WRITE_TOKEN / READ_TOKEN); kept for this tab only.
const TOKEN_KEY = "grand-tour-token";

/** A GraphQL error answer: the messages, and the first error's code and extensions. */
class GatewayError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("\n"));
    this.name = "GatewayError";
    this.extensions = errors[0]?.extensions ?? {};
    this.code = this.extensions.code;
  }
}

/** Sends one GraphQL operation; returns data or throws an Error with a readable message. */
async function graphql(query, variables) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new Error("The gateway cannot be reached. Is the server running?");
  }
  const body = await response.json().catch(() => null);
  if (body?.errors?.length) throw new GatewayError(body.errors);
  if (!response.ok || !body?.data) throw new Error(`The gateway answered ${response.status}.`);
  return body.data;
}

function headers() {
  // the CSRF header tells the gateway this is the page's script, not a cross-site form or link
  const h = {
    "content-type": "application/json",
    accept: "application/json",
    "x-graphql-yoga-csrf": "1",
  };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

const WORD_FIELDS = "id word definition createdAt updatedAt";
const STORES = `{ stores { store configured healthy latencyMs message } }`;
const WORDS = `query Words($store: Store!, $search: String) {
  words(store: $store, search: $search, limit: 1000) { ${WORD_FIELDS} }
}`;
const ADD = `mutation Add($store: Store!, $word: String!, $definition: String!) {
  addWord(store: $store, word: $word, definition: $definition) { id }
}`;
const UPDATE = `mutation Update($store: Store!, $id: ID!, $word: String, $definition: String,
    $expectedUpdatedAt: String) {
  updateWord(store: $store, id: $id, word: $word, definition: $definition,
    expectedUpdatedAt: $expectedUpdatedAt) { ${WORD_FIELDS} }
}`;
const DELETE = `mutation Delete($store: Store!, $id: ID!, $expectedUpdatedAt: String) {
  deleteWord(store: $store, id: $id, expectedUpdatedAt: $expectedUpdatedAt) { id }
}`;

function currentStore() {
  return $("store").value || "SQLITE";
}

/** The version of a word as the gateway counts them: `updatedAt`, or `createdAt` if never edited. */
function revisionOf(w) {
  return w.updatedAt ?? w.createdAt;
}

/** Creates an element with a class and text (always as text, never as HTML). */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(text, onClick, type = "button") {
  const b = el("button", "", text);
  b.type = type;
  if (onClick) b.addEventListener("click", onClick);
  return b;
}

/** Says something in the status line under the search field (announced politely). */
function announce(text) {
  $("list-status").textContent = text;
}

async function loadStores() {
  const list = $("stores");
  const select = $("store");
  let stores;
  try {
    ({ stores } = await graphql(STORES));
  } catch (e) {
    $("list-error").textContent = e.message;
    return;
  }
  const chosen = select.value || new URLSearchParams(location.search).get("store") || "SQLITE";
  list.replaceChildren();
  select.replaceChildren();
  for (const s of stores) {
    const item = document.createElement("li");
    const state = !s.configured ? "off" : s.healthy ? "healthy" : "down";
    item.dataset.state = state;
    item.textContent = `${s.store}: ${
      state === "off" ? "not configured" : state === "healthy" ? "healthy" : "unavailable"
    }`;
    if (s.message && state === "down") item.title = s.message;
    list.append(item);

    const option = document.createElement("option");
    option.value = s.store;
    option.textContent = s.configured ? s.store : `${s.store} (not configured)`;
    select.append(option);
  }
  select.value = chosen;
}

// Every listed word's row, by id, for the shown store. A refresh updates the
// rows in place, so a row being edited keeps what was typed, and the focus
// stays where it was.
const rows = new Map();
let rowsStore;
// At most one list request at a time: a refresh asked for meanwhile runs
// once, after it (a slow store is not asked the same thing several times over).
let listLoading;
let listQueued;

/**
 * Refreshes the list; resolves once a list read after this call is shown.
 * The list is `aria-busy` while a read is in flight or queued.
 */
function loadWords() {
  if (!listLoading) {
    $("words").setAttribute("aria-busy", "true");
    listLoading = fetchWords().finally(() => {
      listLoading = undefined;
      if (!listQueued) $("words").removeAttribute("aria-busy");
    });
    return listLoading;
  }
  listQueued ??= listLoading.catch(() => {}).then(() => {
    listQueued = undefined;
    return loadWords();
  });
  return listQueued;
}

async function fetchWords() {
  const store = currentStore();
  $("words-store").textContent = store;
  if (rowsStore !== store) {
    rows.clear();
    rowsStore = store;
    $("words").replaceChildren();
    $("list-error").textContent = ""; // it was about the other store
  }
  const search = $("search").value;
  try {
    const { words } = await graphql(WORDS, { store, search: search || null });
    if (currentStore() !== store) return; // another store was picked: its list comes next
    $("list-error").textContent = "";
    const listed = words.map((w) => rows.get(w.id)?.listed(w) ?? new Row(store, w));
    // A row being edited, confirmed or reporting its word gone stays until the person leaves it,
    // even when a read (a live update's, say) no longer has its word: it says what happened.
    const fresh = new Set(words.map((w) => w.id));
    const kept = [...rows.values()].filter((r) => r.mode !== "view" && !fresh.has(r.word.id));
    if (kept.length) {
      listed.push(...kept);
      listed.sort((a, b) => a.word.id < b.word.id ? -1 : a.word.id > b.word.id ? 1 : 0);
    }
    rows.clear();
    for (const row of listed) rows.set(row.word.id, row);
    const list = $("words");
    const items = listed.map((row) => row.item);
    if (items.length !== list.children.length || items.some((e, i) => list.children[i] !== e)) {
      const focus = focusInside(list);
      list.replaceChildren(...items);
      focus?.();
    }
    $("empty").hidden = listed.length > 0;
  } catch (e) {
    if (currentStore() !== store) return;
    rows.clear();
    $("words").replaceChildren();
    $("empty").hidden = true;
    $("list-error").textContent = e.message;
  }
}

/**
 * When the focus is inside `container`, returns a function that puts it
 * (and the caret) back where it was, for after the container's children
 * were moved.
 */
function focusInside(container) {
  const active = document.activeElement;
  if (!active || active === container || !container.contains(active)) return undefined;
  const caret = "selectionStart" in active && typeof active.selectionStart === "number"
    ? [active.selectionStart, active.selectionEnd, active.selectionDirection]
    : undefined;
  return () => {
    if (!active.isConnected) return;
    active.focus();
    if (caret) active.setSelectionRange(...caret);
  };
}

/** One listed word: shown, edited in place, or asking to confirm its deletion. */
class Row {
  constructor(store, word) {
    this.store = store;
    // The word as this row last saw it: what an edit or deletion expects to change.
    this.word = word;
    this.item = el("li");
    this.item.dataset.id = word.id;
    this.item.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.mode !== "view") {
        e.preventDefault();
        this.cancel();
      }
    });
    this.message = el("p", "row-message");
    this.message.setAttribute("role", "alert");
    this.show();
  }

  /** The word with its definition and times, as text. */
  view() {
    const w = this.word;
    const time = el("time", "", new Date(w.createdAt).toLocaleString());
    time.dateTime = w.createdAt;
    const parts = [
      el("span", "word", w.word),
      document.createTextNode(": "),
      el("span", "definition", w.definition),
      time,
    ];
    if (w.updatedAt) {
      const edited = el("time", "edited", `edited ${new Date(w.updatedAt).toLocaleString()}`);
      edited.dateTime = w.updatedAt;
      parts.push(edited);
    }
    return parts;
  }

  /**
   * The word as a refresh lists it: a shown row shows it; a row being edited
   * or confirming keeps the version it started from (Save or Confirm then
   * tells about a change). Returns the row.
   */
  listed(w) {
    const now = this.word;
    const same = w.word === now.word && w.definition === now.definition &&
      revisionOf(w) === revisionOf(now);
    if (this.mode === "view" && !same) {
      const focused = document.activeElement === this.deleteButton ? "deleteButton" : "editButton";
      const refocus = this.item.contains(document.activeElement);
      this.word = w;
      this.show();
      if (refocus) this[focused].focus();
    }
    return this;
  }

  /** Shows the word with its Edit and Delete buttons. */
  show() {
    this.mode = "view";
    this.setBusy(undefined, false);
    this.item.className = "";
    const actions = el("span", "actions");
    this.editButton = button("Edit", () => this.edit());
    this.editButton.classList.add("edit-button");
    this.editButton.setAttribute("aria-label", `Edit ${this.word.word}`);
    this.deleteButton = button("Delete", () => this.confirm());
    this.deleteButton.classList.add("delete-button");
    this.deleteButton.setAttribute("aria-label", `Delete ${this.word.word}`);
    actions.append(this.editButton, this.deleteButton);
    this.say("");
    this.item.replaceChildren(...this.view(), actions, this.message);
  }

  /** Puts `parts` (strings and nodes) into the row's message; `kind` styles it. */
  say(kind, ...parts) {
    this.message.className = `row-message ${kind}`;
    this.message.replaceChildren(...parts);
  }

  /** The row becomes a form: the word and its definition in fields, with Save and Cancel. */
  edit() {
    this.mode = "edit";
    this.setBusy(undefined, false);
    announce("");
    this.item.className = "editing";
    const id = this.word.id;
    const form = el("form", "edit");
    this.form = form;
    form.noValidate = true;
    form.setAttribute("aria-label", `Edit ${this.word.word}`);
    const wordLabel = el("label", "", "Word");
    wordLabel.htmlFor = `edit-word-${id}`;
    this.wordField = el("input");
    this.wordField.id = wordLabel.htmlFor;
    this.wordField.autocomplete = "off";
    this.wordField.value = this.word.word;
    const definitionLabel = el("label", "", "Definition");
    definitionLabel.htmlFor = `edit-definition-${id}`;
    this.definitionField = el("textarea");
    this.definitionField.id = definitionLabel.htmlFor;
    this.definitionField.rows = 3;
    this.definitionField.value = this.word.definition;
    this.definitionField.addEventListener("keydown", (e) => {
      // Enter makes a new line in a definition; Ctrl+Enter (or ⌘+Enter) saves.
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    this.saveButton = button("Save", undefined, "submit");
    const buttons = el("div", "edit-actions");
    this.cancelButton = button("Cancel", () => this.cancel());
    buttons.append(this.saveButton, this.cancelButton);
    form.append(wordLabel, this.wordField, definitionLabel, this.definitionField, buttons);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    this.say("");
    this.item.replaceChildren(form, this.message);
    this.wordField.focus();
    this.wordField.setSelectionRange(this.wordField.value.length, this.wordField.value.length);
  }

  /** Leaves editing or confirming; the word is shown as this row last saw it. */
  cancel() {
    if (this.mode === "gone") {
      this.leave();
      return;
    }
    const back = this.mode === "confirm" ? "deleteButton" : "editButton";
    this.show();
    this[back].focus();
  }

  /** Sends the fields that changed, expecting the word to be as this row last saw it. */
  async save() {
    if (this.busy || this.mode !== "edit") return;
    const change = {};
    const word = this.wordField.value;
    const definition = this.definitionField.value;
    if (word.trim() !== this.word.word) change.word = word;
    if (definition.trim() !== this.word.definition) change.definition = definition;
    if (Object.keys(change).length === 0) {
      this.show();
      this.editButton.focus();
      announce(`Nothing changed in “${this.word.word}”.`);
      return;
    }
    // aria-disabled rather than disabled, so the focus stays on the button
    this.setBusy(this.saveButton, true);
    this.say("pending", "Saving…");
    try {
      const { updateWord } = await graphql(UPDATE, {
        store: this.store,
        id: this.word.id,
        ...change,
        expectedUpdatedAt: revisionOf(this.word),
      });
      const hadFocus = this.hasFocus();
      this.word = updateWord;
      this.show();
      if (hadFocus) this.editButton.focus();
      announce(`Saved “${updateWord.word}”.`);
      await loadWords();
      const listed = rows.get(updateWord.id) === this;
      if (!listed && rowsStore === this.store && $("list-error").textContent === "") {
        announce(`Saved “${updateWord.word}”; it no longer matches the search.`);
        if (hadFocus) $("search").focus();
      }
    } catch (e) {
      this.setBusy(this.saveButton, false);
      if (this.mode !== "edit") return;
      if (e.code === "CONFLICT" && e.extensions.current) {
        this.editConflict(e.extensions.current);
      } else if (e.code === "NOT_FOUND") {
        this.gone(
          "Someone else deleted this word while you were editing it, so your changes were not " +
            "saved. Copy them from the fields if you need them; Cancel closes this row.",
        );
        this.saveButton.disabled = true;
        this.cancelButton.focus();
      } else {
        this.say("error", e.message);
      }
    }
  }

  /**
   * Someone else changed the word meanwhile: says so with its new text, puts
   * the new text into every field this row has not changed, and expects
   * the new version from now on, so that Save applies the changes on top of it.
   */
  editConflict(current) {
    const before = this.word;
    if (this.wordField.value.trim() === before.word) this.wordField.value = current.word;
    if (this.definitionField.value.trim() === before.definition) {
      this.definitionField.value = current.definition;
    }
    this.word = current;
    this.form.setAttribute("aria-label", `Edit ${current.word}`);
    this.say(
      "conflict",
      "Someone else changed this word while you were editing it, so nothing was saved. " +
        "It now reads:",
      this.currentText(current),
      "Your changes are still in the fields: Save again to apply them to this version, " +
        "or Cancel to keep it as it is.",
    );
  }

  /** The word as it is now, as text, for a conflict message. */
  currentText(current) {
    const text = el("span", "current");
    text.append(
      el("span", "current-word", current.word),
      ": ",
      el("span", "current-definition", current.definition),
    );
    return text;
  }

  /** Marks `target` busy (aria-disabled, so it keeps the focus) and the row with it. */
  setBusy(target, busy) {
    this.busy = busy;
    if (busy) target.setAttribute("aria-disabled", "true");
    else target?.removeAttribute("aria-disabled");
    if (busy) this.item.setAttribute("aria-busy", "true");
    else this.item.removeAttribute("aria-busy");
  }

  /** Shows Confirm and Cancel next to the word, in the page. */
  confirm() {
    this.mode = "confirm";
    this.setBusy(undefined, false);
    announce("");
    this.item.className = "confirming";
    const group = el("span", "actions confirm");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", `Delete ${this.word.word}?`);
    this.confirmButton = button("Confirm", () => this.remove());
    this.confirmButton.classList.add("danger");
    const cancel = button("Cancel", () => this.cancel());
    group.append(el("span", "question", "Delete this word?"), this.confirmButton, cancel);
    this.say("");
    this.item.replaceChildren(...this.view(), group, this.message);
    cancel.focus();
  }

  /** Deletes the word, expecting it to be as this row last saw it. */
  async remove() {
    if (this.busy || this.mode !== "confirm") return;
    this.setBusy(this.confirmButton, true);
    this.say("pending", "Deleting…");
    try {
      await graphql(DELETE, {
        store: this.store,
        id: this.word.id,
        expectedUpdatedAt: revisionOf(this.word),
      });
      this.drop("deleteButton");
      announce(`Deleted “${this.word.word}”.`);
      await loadWords();
    } catch (e) {
      this.setBusy(this.confirmButton, false);
      if (this.mode !== "confirm") return;
      if (e.code === "CONFLICT" && e.extensions.current) {
        // the row shows the new version; Confirm now deletes that one
        this.word = e.extensions.current;
        this.confirm();
        this.say(
          "conflict",
          "Someone else changed this word since the list was loaded, so it was not deleted. " +
            "It now reads:",
          this.currentText(this.word),
          "Confirm again to delete this version, or Cancel to keep it.",
        );
      } else if (e.code === "NOT_FOUND") {
        const actions = el("span", "actions");
        const dismiss = button("Dismiss", () => this.leave());
        actions.append(dismiss);
        this.item.replaceChildren(...this.view(), actions, this.message);
        dismiss.focus();
        this.gone("Someone else deleted this word meanwhile; it is no longer in the store.");
      } else {
        this.say("error", e.message);
      }
    }
  }

  /** The word is no longer in the store: says so; Cancel or Dismiss then refreshes the list. */
  gone(text) {
    this.mode = "gone";
    this.item.className = "gone";
    this.say("error", text);
  }

  /** Closes a row whose word is gone, and refreshes the list without it. */
  async leave() {
    this.drop("editButton");
    await loadWords();
  }

  /**
   * Takes the row out of the list and puts the focus on the `which` button
   * of the row that took its place (else the one before; else the search field).
   */
  drop(which) {
    const next = this.item.nextElementSibling ?? this.item.previousElementSibling;
    const hadFocus = this.hasFocus();
    rows.delete(this.word.id);
    this.item.remove();
    $("empty").hidden = $("words").children.length > 0;
    if (!hadFocus) return;
    const row = next && rows.get(next.dataset.id);
    if (row?.mode === "view") row[which].focus();
    else $("search").focus();
  }

  /** Whether the focus is in this row (or nowhere, as after its focused button went away). */
  hasFocus() {
    const active = document.activeElement;
    return !active || active === document.body || this.item.contains(active);
  }
}

async function addWord(event) {
  event.preventDefault();
  const button = event.submitter ?? $("add-form").querySelector("button");
  const error = $("form-error");
  error.textContent = "";
  announce("");
  button.disabled = true;
  try {
    await graphql(ADD, {
      store: currentStore(),
      word: $("word").value,
      definition: $("definition").value,
    });
    $("word").value = "";
    $("definition").value = "";
    $("word").focus();
    await loadWords();
  } catch (e) {
    error.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// Live updates: one subscription to the selected store's wordEvents over Server-Sent Events,
// read with fetch so the token can go in a header (EventSource sends none). Each event re-reads
// the list (bursts coalesce in loadWords), and so does every (re)connect: the gateway replays
// nothing, so a write made while the page was not subscribed is only seen by reading again.
const WORD_EVENTS = `subscription Live($store: Store) { wordEvents(store: $store) { kind } }`;
/** The open subscription's abort controller. */
let live;
let liveRetry;

function liveStatus(text, state) {
  const status = $("live-status");
  status.textContent = text;
  status.dataset.state = state;
}

/** (Re)subscribes to the selected store; called at start, on a store or token change. */
function subscribeLive(attempt = 0) {
  live?.abort();
  clearTimeout(liveRetry);
  const controller = new AbortController();
  live = controller;
  const store = currentStore();
  const again = (why) => {
    if (controller.signal.aborted) return;
    controller.abort();
    const delay = Math.min(1000 * 2 ** attempt, 15_000);
    liveStatus(`Reconnecting… (${why})`, "reconnecting");
    liveRetry = setTimeout(() => subscribeLive(attempt + 1), delay);
  };
  liveStatus(attempt === 0 ? "Connecting…" : "Reconnecting…", "reconnecting");
  (async () => {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { ...headers(), accept: "text/event-stream" },
      body: JSON.stringify({ query: WORD_EVENTS, variables: { store } }),
      signal: controller.signal,
    });
    if (!response.ok || !response.body) {
      const code = response.status === 401
        ? "the gateway needs a token"
        : `HTTP ${response.status}`;
      return again(code);
    }
    let buffer = "";
    let connected = false;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!connected) {
        // the gateway's first ping: subscribed, so a read now misses nothing after it
        connected = true;
        attempt = 0;
        liveStatus("Live", "live");
        loadWords();
      }
      buffer += value;
      let at;
      while ((at = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (!/^event: next$/m.test(block)) continue;
        const data = block.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5)).join("\n");
        const payload = JSON.parse(data);
        if (payload.errors?.length) {
          return again(payload.errors[0].extensions?.code ?? payload.errors[0].message);
        }
        if (store === currentStore()) loadWords();
      }
    }
    again("the stream ended");
  })().catch((e) => {
    if (!controller.signal.aborted) {
      again(e.name === "TypeError" ? "gateway unreachable" : e.message);
    }
  });
}

let searchTimer;
document.addEventListener("DOMContentLoaded", async () => {
  $("add-form").addEventListener("submit", addWord);
  $("token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  $("token").addEventListener("change", async () => {
    const token = $("token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    await loadStores();
    await loadWords();
    subscribeLive();
  });
  $("store").addEventListener("change", () => {
    $("form-error").textContent = "";
    announce("");
    loadWords();
    subscribeLive();
  });
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(loadWords, 250);
  });
  await loadStores();
  await loadWords();
  subscribeLive();
  setInterval(loadStores, 10_000);
});
