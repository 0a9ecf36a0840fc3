// A small, safe Markdown subset for model replies.
//
// Model output is untrusted: it may contain HTML or script, on purpose or not. So this never
// parses HTML and never assigns markup: it builds DOM nodes from a fixed list of tags and puts
// every piece of model text in with createTextNode / textContent. Links become anchors only for
// absolute http(s) URLs; anything else stays text. Unclosed constructs (a fence or `**` still
// streaming in) simply render as code to the end, or as literal characters, until they close.
//
// Supported: paragraphs (single newlines are line breaks), `code`, fenced code blocks, **bold**,
// *italic*, [links](https://...), bullet and numbered lists (nested by indentation), headings,
// > quotes and --- rules. Backslash escapes keep a character literal.

const MAX_DEPTH = 8;
const ESCAPABLE = "\\`*_{}[]()#+-.!>~|\"'<&";
const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const BULLET = /^( {0,12})([-*+])[ \t]+(.*)$/;
const ORDERED = /^( {0,12})(\d{1,9})[.)][ \t]+(.*)$/;
const QUOTE = /^ {0,3}>[ ]?(.*)$/;
const LANGUAGE = /^[A-Za-z0-9_+#.-]{1,32}$/;

/** Renders `text` into a DocumentFragment of safe nodes. */
export function renderMarkdown(text, doc = document) {
  const fragment = doc.createDocumentFragment();
  renderBlocks(String(text).split(/\r\n|\r|\n/), fragment, doc, 0);
  return fragment;
}

/** An absolute http(s) URL, normalised; null for every other scheme or a relative URL. */
export function safeHref(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function isBlank(line) {
  return line.trim() === "";
}

function listMatch(line) {
  const bullet = BULLET.exec(line);
  if (bullet) return { ordered: false, indent: bullet[1].length, start: 1, body: bullet[3] };
  const ordered = ORDERED.exec(line);
  if (ordered) {
    return { ordered: true, indent: ordered[1].length, start: Number(ordered[2]), body: ordered[3] };
  }
  return null;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    (listMatch(line) !== null && indentOf(line) <= 3);
}

function renderBlocks(lines, parent, doc, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      i = renderFence(lines, i, fence, parent, doc);
      continue;
    }
    if (depth >= MAX_DEPTH) {
      // Deeply nested quotes or lists: show the rest as plain text rather than recurse further.
      appendParagraph(lines.slice(i).join("\n"), parent, doc);
      return;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(heading[1].length + 2, 6); // h1 in a chat bubble is too loud
      const element = doc.createElement(`h${level}`);
      renderInline(heading[2], element, doc, true);
      parent.appendChild(element);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      parent.appendChild(doc.createElement("hr"));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) {
        quoted.push(QUOTE.exec(lines[i])[1]);
        i++;
      }
      const quote = doc.createElement("blockquote");
      renderBlocks(quoted, quote, doc, depth + 1);
      parent.appendChild(quote);
      continue;
    }
    const item = listMatch(line);
    if (item && item.indent <= 3) {
      i = renderList(lines, i, item, parent, doc, depth);
      continue;
    }
    const paragraph = [line];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i])) {
      paragraph.push(lines[i]);
      i++;
    }
    appendParagraph(paragraph.join("\n"), parent, doc);
  }
}

function appendParagraph(text, parent, doc) {
  const p = doc.createElement("p");
  renderInline(text.trim(), p, doc, true);
  parent.appendChild(p);
}

function renderFence(lines, at, fence, parent, doc) {
  const marker = fence[1];
  const closing = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}[ \\t]*$`);
  const body = [];
  let i = at + 1;
  while (i < lines.length && !closing.test(lines[i])) {
    body.push(lines[i]);
    i++;
  }
  const pre = doc.createElement("pre");
  const code = doc.createElement("code");
  if (LANGUAGE.test(fence[2])) {
    code.className = `language-${fence[2]}`;
    pre.dataset.language = fence[2];
  }
  code.textContent = body.join("\n");
  pre.appendChild(code);
  parent.appendChild(pre);
  return i + 1; // past the closing fence (or the end, while it is still streaming)
}

function renderList(lines, at, first, parent, doc, depth) {
  const list = doc.createElement(first.ordered ? "ol" : "ul");
  if (first.ordered && first.start !== 1) list.start = first.start;
  let i = at;
  while (i < lines.length) {
    const item = listMatch(lines[i]);
    if (!item || item.ordered !== first.ordered || item.indent > 3) break;
    // The item's own lines: its first line, then every following line indented past the
    // marker (nested lists, code, continued text) and blank lines between them.
    const content = [item.body];
    i++;
    while (i < lines.length) {
      const next = lines[i];
      if (isBlank(next)) {
        let j = i;
        while (j < lines.length && isBlank(lines[j])) j++;
        if (j < lines.length && indentOf(lines[j]) >= 2) {
          content.push(...lines.slice(i, j));
          i = j;
          continue;
        }
        break;
      }
      if (indentOf(next) < 2) break;
      content.push(dedent(next));
      i++;
    }
    const li = doc.createElement("li");
    if (content.length === 1) {
      renderInline(item.body.trim(), li, doc, true);
    } else {
      renderBlocks(content, li, doc, depth + 1);
    }
    list.appendChild(li);
    // A blank line may separate items of one list.
    let j = i;
    while (j < lines.length && isBlank(lines[j])) j++;
    const following = j < lines.length ? listMatch(lines[j]) : null;
    if (j > i && following && following.ordered === first.ordered && following.indent <= 3) {
      i = j;
    }
  }
  parent.appendChild(list);
  return i;
}

function dedent(line) {
  const spaces = Math.min(indentOf(line), 4);
  return line.slice(spaces);
}

function isWordChar(ch) {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

function isSpace(ch) {
  return ch === undefined || /\s/.test(ch);
}

/** Finds the closing emphasis delimiter for an opener at `from`; -1 when there is none. */
function closingDelimiter(src, from, delimiter) {
  const single = delimiter.length === 1;
  let j = src.indexOf(delimiter, from);
  while (j !== -1) {
    const ok = !isSpace(src[j - 1]) &&
      (!single || (src[j + 1] !== delimiter && src[j - 1] !== delimiter)) &&
      (delimiter[0] !== "_" || !isWordChar(src[j + delimiter.length]));
    if (ok && j > from) return j;
    j = src.indexOf(delimiter, j + 1);
  }
  return -1;
}

/** Parses inline Markdown of `src` into children of `parent`; text only ever as text nodes. */
function renderInline(src, parent, doc, allowLinks) {
  let text = "";
  const flush = () => {
    if (!text) return;
    const parts = text.split("\n");
    parts.forEach((part, index) => {
      if (index > 0) parent.appendChild(doc.createElement("br"));
      if (part) parent.appendChild(doc.createTextNode(part));
    });
    text = "";
  };
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    if (ch === "\\" && i + 1 < src.length && ESCAPABLE.includes(src[i + 1])) {
      text += src[i + 1];
      i += 2;
      continue;
    }
    if (ch === "`") {
      let run = 1;
      while (src[i + run] === "`") run++;
      const ticks = "`".repeat(run);
      let close = src.indexOf(ticks, i + run);
      while (close !== -1 && src[close + run] === "`") {
        let end = close;
        while (src[end] === "`") end++;
        close = src.indexOf(ticks, end);
      }
      if (close === -1) {
        text += ticks;
        i += run;
        continue;
      }
      flush();
      let body = src.slice(i + run, close).replace(/\n/g, " ");
      if (body.length > 2 && body.startsWith(" ") && body.endsWith(" ") && body.trim()) {
        body = body.slice(1, -1);
      }
      const code = doc.createElement("code");
      code.textContent = body;
      parent.appendChild(code);
      i = close + run;
      continue;
    }
    if (ch === "[" && allowLinks) {
      // [label](url) or [label](url "title"); the URL may hold one level of (parentheses)
      const link = /^\[([^\]\n]+)\]\(((?:[^\s()]|\([^\s()]*\))+)(?:[ \t]+"[^"\n]*")?\)/.exec(
        src.slice(i),
      );
      const href = link ? safeHref(link[2]) : null;
      if (link && href) {
        flush();
        const anchor = doc.createElement("a");
        anchor.setAttribute("href", href);
        anchor.setAttribute("rel", "noopener noreferrer");
        anchor.setAttribute("target", "_blank");
        renderInline(link[1], anchor, doc, false);
        parent.appendChild(anchor);
        i += link[0].length;
        continue;
      }
    }
    if (ch === "*" || ch === "_") {
      let run = 1;
      while (src[i + run] === ch) run++;
      const delimiter = run <= 3 ? ch.repeat(run) : "";
      const opensAt = i + run;
      const canOpen = delimiter !== "" && !isSpace(src[opensAt]) &&
        (ch !== "_" || !isWordChar(src[i - 1]));
      const close = canOpen ? closingDelimiter(src, opensAt, delimiter) : -1;
      if (close !== -1) {
        flush();
        // *em*, **strong**, ***both***
        const outer = doc.createElement(run === 1 ? "em" : "strong");
        const inner = run === 3 ? outer.appendChild(doc.createElement("em")) : outer;
        renderInline(src.slice(opensAt, close), inner, doc, allowLinks);
        parent.appendChild(outer);
        i = close + run;
        continue;
      }
      text += src.slice(i, i + run);
      i += run;
      continue;
    }
    text += ch;
    i++;
  }
  flush();
}
