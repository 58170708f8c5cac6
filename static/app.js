// The page talks to the gateway only through GraphQL fetch calls, and puts
// every text that came from a database into the page as text (textContent),
// never as HTML.

const $ = (id) => document.getElementById(id);

// The bearer token, when the gateway needs one (WRITE_TOKEN / READ_TOKEN); kept for this tab only.
const TOKEN_KEY = "grand-tour-token";

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
  if (body?.errors?.length) throw new Error(body.errors.map((e) => e.message).join("\n"));
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

const STORES = `{ stores { store configured healthy latencyMs message } }`;
const WORDS = `query Words($store: Store!, $search: String) {
  words(store: $store, search: $search, limit: 1000) { id word definition createdAt }
}`;
const ADD = `mutation Add($store: Store!, $word: String!, $definition: String!) {
  addWord(store: $store, word: $word, definition: $definition) { id }
}`;

function currentStore() {
  return $("store").value || "SQLITE";
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

async function loadWords() {
  const store = currentStore();
  $("words-store").textContent = store;
  const search = $("search").value;
  try {
    const { words } = await graphql(WORDS, { store, search: search || null });
    $("list-error").textContent = "";
    const list = $("words");
    list.replaceChildren(...words.map(renderWord));
    $("empty").hidden = words.length > 0;
  } catch (e) {
    $("words").replaceChildren();
    $("empty").hidden = true;
    $("list-error").textContent = e.message;
  }
}

function renderWord(w) {
  const item = document.createElement("li");
  const word = document.createElement("span");
  word.className = "word";
  word.textContent = w.word;
  const definition = document.createElement("span");
  definition.className = "definition";
  definition.textContent = w.definition;
  const time = document.createElement("time");
  time.dateTime = w.createdAt;
  time.textContent = new Date(w.createdAt).toLocaleString();
  item.append(word, document.createTextNode(": "), definition, time);
  return item;
}

async function addWord(event) {
  event.preventDefault();
  const button = event.submitter ?? $("add-form").querySelector("button");
  const error = $("form-error");
  error.textContent = "";
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
  });
  $("store").addEventListener("change", () => {
    $("form-error").textContent = "";
    loadWords();
  });
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(loadWords, 250);
  });
  await loadStores();
  await loadWords();
  setInterval(loadStores, 10_000);
});
