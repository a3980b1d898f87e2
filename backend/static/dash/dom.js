//# allFunctionsCalledOnLoad
// Building HTML without innerHTML: every text goes in as a text node.
export const $ = (id) => document.getElementById(id);

/** h("td", {class: "num", dataset: {value: 3}}, "3", otherNode) */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  appendAll(node, children);
  return node;
}

/** Append children (nested arrays flattened; null, undefined and false skipped; the rest as text). */
function appendAll(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) appendAll(node, c);
    else node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A panel's body: `state` is loading | ready | empty | error; a message replaces the content. */
export function setPanel(id, state, content) {
  const panel = $(id);
  panel.dataset.state = state;
  panel.dataset.generation = document.body.dataset.generation || "";
  const body = panel.querySelector(".body");
  if (typeof content === "string") body.replaceChildren(h("p", { class: `note ${state}` }, content));
  else if (content) body.replaceChildren(...[content].flat());
  panel.setAttribute("aria-busy", state === "loading" ? "true" : "false");
}

export function setScope(id, text) {
  const node = $(id).querySelector(".scope");
  node.textContent = text || "";
  node.hidden = !text;
}

export function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers)), h("tbody", {}, rows));
}
