/* The operator portal: an API key, single look-ups, scrubs and the change list.
 *
 * The key is kept in sessionStorage (this tab, until it closes) and sent only in the
 * Authorization header; never in a URL, never in localStorage.
 */
"use strict";

(function () {
  const api = window.DNC;
  const KEY = "dnc-portal-key";
  const PREVIEW_ROWS = 10;
  /** Every sentence this page's script shows, in the page's language (api.lang). */
  const SAY = {
    en: {
      reasons: {
        not_registered: "not on the register",
        channel_not_blocked: "registered, but the subscriber does not block this channel",
        category_allowed: "registered, but the subscriber accepts offers of this category",
        consent: "registered, but you hold the subscriber's consent",
        registered: "on the register: do not call or write",
      },
      statuses: { callable: "Callable", blocked: "Blocked", invalid: "Invalid" },
      verdict: (number, why) => ": " + number + " is " + why + ".",
      notValid: (number, why) => ": " + number + " is not a valid number: " + why + ".",
      regionAdvice: " Write it with + and the country code, or choose its region.",
      keyInUse: (last4) => "A key ending in " + last4 + " is in use in this tab.",
      noKey: "No key in use.",
      pasteKeyFirst: "Paste your API key above first, then try again.",
      pasteKey: "Paste the API key you were given.",
      enterNumber: "Enter the phone number to look up.",
      enterList: "Paste some numbers or choose a file to scrub.",
      fileChanged: "The file changed since you chose it. Choose it again, then scrub.",
      noReceipt: "The scrub answered without a receipt; its counts are unknown.",
      added: "added",
      removed: "removed",
      changes: (n, next) =>
        (n === 1 ? "1 change" : n + " changes") +
        ". The cursor for the next page is filled in above: " + (next || "(none)") + ".",
    },
    zh: {
      reasons: {
        not_registered: "不在拒收名单中",
        channel_not_blocked: "已登记，但用户未拒收这种方式",
        category_allowed: "已登记，但用户接收此类别的营销",
        consent: "已登记，但您持有该用户的同意",
        registered: "在拒收名单中：不得拨打或发送",
      },
      statuses: { callable: "可拨打", blocked: "已拒收", invalid: "无效" },
      verdict: (number, why) => "：" + number + " " + why + "。",
      notValid: (number, why) => "：" + number + " 不是有效号码：" + why + "。",
      regionAdvice: "请带 + 和国家代码填写，或选择号码所属地区。",
      keyInUse: (last4) => "本标签页正在使用尾号为 " + last4 + " 的密钥。",
      noKey: "未使用密钥。",
      pasteKeyFirst: "请先在上方粘贴您的 API 密钥，然后重试。",
      pasteKey: "请粘贴发给您的 API 密钥。",
      enterNumber: "请填写要查询的电话号码。",
      enterList: "请粘贴号码或选择要清洗的文件。",
      fileChanged: "选择文件后文件已被修改。请重新选择文件，再清洗。",
      noReceipt: "清洗结果没有回执，无法得知各项数目。",
      added: "加入",
      removed: "移出",
      changes: (n, next) =>
        n + " 条变更。下一页的游标已填在上方：" + (next || "（无）") + "。",
    },
  };
  const say = SAY[api.lang];
  const REASONS = say.reasons;

  function byId(id) {
    return document.getElementById(id);
  }

  function value(form, name) {
    const field = form.elements.namedItem(name);
    return field ? field.value.trim() : "";
  }

  function storedKey() {
    try {
      return window.sessionStorage.getItem(KEY) || "";
    } catch (err) {
      return "";
    }
  }

  function showKeyState() {
    const key = storedKey();
    byId("key-state").textContent = key ? say.keyInUse(key.slice(-4)) : say.noKey;
  }

  /** The key for a request, or a problem shown in that form telling the operator to paste it. */
  function requireKey() {
    const key = storedKey();
    if (!key) {
      throw new api.Problem(0, "input", say.pasteKeyFirst);
    }
    return key;
  }

  const keyForm = byId("key-form");
  keyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const error = byId("key-error");
    api.clear(error);
    const key = value(keyForm, "key");
    if (!key) {
      api.showError(error, new api.Problem(0, "input", say.pasteKey, { field: "key" }));
      return;
    }
    window.sessionStorage.setItem(KEY, key);
    keyForm.reset();
    showKeyState();
  });
  byId("key-forget").addEventListener("click", function () {
    window.sessionStorage.removeItem(KEY);
    keyForm.reset();
    showKeyState();
    // On a shared computer the next person must not find this account's numbers on screen:
    // not its answers, nor what was typed or pasted to ask, nor an error about them.
    ["lookup-result", "scrub-result", "changes-result"].forEach(function (id) {
      byId(id).hidden = true;
    });
    [lookupForm, scrubForm, changesForm].forEach(function (form) {
      form.reset();
    });
    ["key-error", "lookup-error", "scrub-error", "changes-error"].forEach(function (id) {
      api.clear(byId(id));
    });
    byId("lookup-result").replaceChildren();
    byId("scrub-preview").querySelector("thead").replaceChildren();
    byId("scrub-preview").querySelector("tbody").replaceChildren();
    byId("changes-table").querySelector("tbody").replaceChildren();
    if (downloadUrl) {
      URL.revokeObjectURL(downloadUrl);
      downloadUrl = null;
    }
    byId("scrub-download").removeAttribute("href");
  });
  showKeyState();

  /** Run `work` for a form: errors into its alert box, its buttons disabled meanwhile. */
  function handle(form, errorId, work) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const error = byId(errorId);
      api.clear(error);
      api.busy(form, true);
      try {
        await work();
      } catch (problem) {
        api.showError(error, problem);
      } finally {
        api.busy(form, false);
      }
    });
  }

  const lookupForm = byId("lookup-form");
  handle(lookupForm, "lookup-error", async function () {
    const result = byId("lookup-result");
    result.hidden = true;
    const number = value(lookupForm, "number");
    if (!number) {
      throw new api.Problem(0, "input", say.enterNumber, { field: "number" });
    }
    const key = requireKey();
    const answer = await api.call(
      "GET",
      "/v1/numbers/" + api.segment(number) + api.query({
        channel: value(lookupForm, "channel"),
        category: value(lookupForm, "category"),
        region: value(lookupForm, "region").toUpperCase(),
      }),
      { key: key }
    );
    const data = answer.data;
    const verdict = document.createElement("strong");
    verdict.textContent = say.statuses[data.status] || data.status;
    const why = REASONS[data.reason] || api.INVALID_REASONS[data.reason] || data.reason;
    const line = api.paragraph(verdict, say.verdict(data.number || number, why));
    if (data.status === "invalid") {
      line.lastChild.textContent = say.notValid(number, why);
      if (data.reason === "invalid_for_region") {
        line.lastChild.textContent += say.regionAdvice;
      }
    }
    line.className = "outcome status-" + data.status;
    result.dataset.status = data.status;
    result.hidden = false; // before it is filled, so that its live region is read
    result.replaceChildren(line);
  });

  let downloadUrl = null;

  /**
   * The first `most` rows of CSV text, each a list of cells (quotes as the scrub writes
   * them: a quoted cell may hold commas, doubled quotes and line breaks). `cut`: the text
   * stops mid-file, so its last row may be partial and is left out.
   */
  function csvRows(text, most, cut) {
    const rows = [];
    let row = [];
    let cell = "";
    let quoted = false;
    let i = 0;
    for (; i < text.length && rows.length < most; i += 1) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"' && text[i + 1] === '"') {
          cell += '"';
          i += 1;
        } else if (ch === '"') {
          quoted = false;
        } else {
          cell += ch;
        }
      } else if (ch === '"') {
        quoted = true;
      } else if (ch === ",") {
        row.push(cell);
        cell = "";
      } else if (ch === "\n") {
        row.push(cell.replace(/\r$/, ""));
        rows.push(row);
        row = [];
        cell = "";
      } else {
        cell += ch;
      }
    }
    if (i >= text.length && !cut && (cell !== "" || row.length) && rows.length < most) {
      row.push(cell);
      rows.push(row);
    }
    return rows;
  }

  async function preview(blob) {
    const limit = 64 * 1024;
    const head = await blob.slice(0, limit).text();
    const rows = csvRows(head, 1 + PREVIEW_ROWS, blob.size > limit);
    const table = byId("scrub-preview");
    const thead = table.querySelector("thead");
    const tbody = table.querySelector("tbody");
    thead.replaceChildren();
    tbody.replaceChildren();
    if (rows.length === 0) {
      return;
    }
    const top = document.createElement("tr");
    rows[0].forEach(function (name) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      top.appendChild(th);
    });
    thead.appendChild(top);
    rows.slice(1).forEach(function (cellsOfRow) {
      const tr = document.createElement("tr");
      cellsOfRow.forEach(function (text) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  const scrubForm = byId("scrub-form");
  // The list scrubbed is the one given last: numbers typed or pasted after a file was
  // chosen unchoose the file (else the old file would be scrubbed again, silently).
  byId("scrub-text").addEventListener("input", function () {
    byId("scrub-file").value = "";
  });
  handle(scrubForm, "scrub-error", async function () {
    const result = byId("scrub-result");
    result.hidden = true;
    const file = byId("scrub-file").files[0];
    const text = byId("scrub-text").value;
    const format = value(scrubForm, "format");
    let body;
    let kind;
    if (file) {
      body = file;
      const looksCsv = /\.csv$/i.test(file.name) || file.type === "text/csv";
      kind = format === "auto" ? (looksCsv ? "text/csv" : "text/plain") : format;
    } else if (text.trim()) {
      body = text;
      kind = format === "text/csv" ? "text/csv" : "text/plain";
    } else {
      throw new api.Problem(0, "input", say.enterList, { field: "text" });
    }
    const key = requireKey();
    const path = "/v1/scrub" + api.query({
      channel: value(scrubForm, "channel"),
      category: value(scrubForm, "category"),
      region: value(scrubForm, "region").toUpperCase(),
      column: kind === "text/csv" ? value(scrubForm, "column") : "",
      only: byId("scrub-only").checked ? "callable" : "",
    });
    let answer;
    try {
      answer = await api.call("POST", path, {
        body: body,
        contentType: kind + "; charset=utf-8",
        key: key,
        asBlob: true,
      });
    } catch (problem) {
      // A file saved again since it was chosen (fixed after a refusal) cannot be sent, and
      // the browser says only "failed to fetch": not the network's fault.
      if (file && problem instanceof api.Problem && problem.code === "network" &&
          !(await readable(file))) {
        throw new api.Problem(0, "input", say.fileChanged);
      }
      throw problem;
    }
    const csv = new Blob([answer.data], { type: "text/csv" });
    const receiptId = answer.headers.get("X-Scrub-Receipt") || "";
    if (downloadUrl) {
      URL.revokeObjectURL(downloadUrl);
    }
    downloadUrl = URL.createObjectURL(csv);
    const link = byId("scrub-download");
    link.href = downloadUrl;
    link.download = "scrubbed" + (receiptId ? "-" + receiptId : "") + ".csv";
    await preview(csv);
    ["total", "callable", "blocked", "invalid"].forEach(function (name) {
      byId("count-" + name).textContent = "";
    });
    ["receipt-id", "receipt-created", "receipt-version", "receipt-sha256"].forEach(function (id) {
      byId(id).replaceChildren();
    });
    result.hidden = false;
    if (!receiptId) {
      throw new api.Problem(0, "input", say.noReceipt);
    }
    const receipt = (await api.call("GET", "/v1/scrubs/" + api.segment(receiptId), { key: key })).data;
    ["total", "callable", "blocked", "invalid"].forEach(function (name) {
      byId("count-" + name).textContent = String(receipt.counts[name]);
    });
    byId("receipt-id").textContent = receipt.receipt_id;
    byId("receipt-created").replaceChildren(api.time(receipt.created_at));
    byId("receipt-version").textContent = String(receipt.registry_version);
    byId("receipt-sha256").textContent = receipt.sha256;
    result.dataset.receipt = receipt.receipt_id;
  });

  /** Whether the browser can still read a chosen file (not changed or moved since). */
  async function readable(file) {
    try {
      await file.slice(0, 1).arrayBuffer();
      return true;
    } catch (err) {
      return false;
    }
  }

  const changesForm = byId("changes-form");
  handle(changesForm, "changes-error", async function () {
    const result = byId("changes-result");
    result.hidden = true;
    const key = requireKey();
    const answer = await api.call(
      "GET",
      "/v1/changes" + api.query({ since: value(changesForm, "since"), limit: value(changesForm, "limit") }),
      { key: key }
    );
    const data = answer.data;
    const tbody = byId("changes-table").querySelector("tbody");
    tbody.replaceChildren();
    data.changes.forEach(function (change) {
      const tr = document.createElement("tr");
      const number = document.createElement("td");
      number.textContent = change.number;
      const op = document.createElement("td");
      op.textContent = change.op === "add" ? say.added : say.removed;
      const at = document.createElement("td");
      at.appendChild(api.time(change.at));
      tr.append(number, op, at);
      tbody.appendChild(tr);
    });
    result.hidden = false; // before its summary is written, so that it is read out
    byId("changes-since").value = data.next || "";
    byId("changes-summary").textContent = say.changes(data.changes.length, data.next);
  });

  // The page ships its submit buttons disabled: without this script a form would post
  // the pasted key to the page itself and get an error back. Enabled once it runs.
  document.querySelectorAll('button[type="submit"][disabled]').forEach(function (button) {
    button.disabled = false;
  });
})();
