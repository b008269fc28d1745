// Small DOM helpers. Every value that comes from the API reaches the page through textContent
// or attributes set with setAttribute (see el()); nothing is ever parsed as HTML.

export const byId = (id) => document.getElementById(id);

/**
 * createElement with attributes and children. `text` sets textContent, `class` the class
 * list, `testid` data-testid, `on<event>` a listener; anything else goes through setAttribute.
 * Children may be nodes, strings (text nodes), arrays, or null/false (skipped).
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'class') node.className = v;
    else if (k === 'testid') node.setAttribute('data-testid', v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function show(node, visible) {
  node.hidden = !visible;
}

export function setNotice(node, text, kind) {
  node.replaceChildren();
  if (!text) {
    node.hidden = true;
    return;
  }
  node.className = 'notice' + (kind ? ` notice-${kind}` : '');
  append(node, [text]);
  node.hidden = false;
}

let announceTimer = null;
/** Polite screen-reader announcement (also visible to sighted users where it matters). */
export function announce(text) {
  const a = byId('announcer');
  clearTimeout(announceTimer);
  a.textContent = '';
  // A fresh text node after a tick makes repeated messages announce again.
  announceTimer = setTimeout(() => {
    a.textContent = text;
  }, 50);
}

/**
 * A table cell labelled for the phone layout (where each row becomes a card and the label is
 * drawn from data-label); the content is wrapped so it stays together on one line of the card.
 */
export function cell(tag, label, attrs, ...kids) {
  return el(tag, { ...attrs, 'data-label': label }, el('span', { class: 'cell-v' }, ...kids));
}

