/* Calls to the registry's API and its errors put in plain words; shared by both pages.
 *
 * No framework and no build step: one global, DNC. Phone numbers and keys travel only
 * in request bodies, API paths and headers, never in the page's own URL or storage.
 */
"use strict";

window.DNC = (function () {
  /** An answer that was not a success: the contract's {"error": {code, message, details}}. */
  class Problem extends Error {
    constructor(status, code, message, details, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
      this.retryAfter = retryAfter;
    }
  }

  /**
   * One API call. Resolves to {status, headers, data} (data parsed as JSON when the answer
   * is JSON, a Blob when `asBlob`); rejects with a Problem for any error status.
   */
  async function call(method, path, options) {
    const opts = options || {};
    const headers = {};
    let body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      headers["Content-Type"] = opts.contentType || "text/plain";
      body = opts.body;
    }
    if (opts.key) {
      headers.Authorization = "Bearer " + opts.key;
    }
    let answer;
    try {
      answer = await fetch(path, {
        method: method,
        headers: headers,
        body: body,
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (err) {
      throw new Problem(0, "network", "the registry could not be reached");
    }
    const kind = answer.headers.get("Content-Type") || "";
    if (!answer.ok) {
      let error = {};
      if (kind.indexOf("application/json") === 0) {
        try {
          error = (await answer.json()).error || {};
        } catch (err) {
          error = {};
        }
      }
      throw new Problem(
        answer.status,
        error.code || "http_" + answer.status,
        error.message || answer.statusText || "the request failed",
        error.details,
        answer.headers.get("Retry-After")
      );
    }
    let data = null;
    if (opts.asBlob) {
      data = await answer.blob();
    } else if (kind.indexOf("application/json") === 0) {
      data = await answer.json();
    } else {
      data = await answer.text();
    }
    return { status: answer.status, headers: answer.headers, data: data };
  }

  /** A number (or receipt id) as one path segment: `+` becomes %2B, `/` cannot split it. */
  function segment(value) {
    return encodeURIComponent(value.trim());
  }

  /** A query string from the fields that have a value. */
  function query(values) {
    const parts = [];
    Object.keys(values).forEach(function (name) {
      const value = values[name];
      if (value !== undefined && value !== null && String(value).trim() !== "") {
        parts.push(encodeURIComponent(name) + "=" + encodeURIComponent(String(value).trim()));
      }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  // The page's language, from its <html lang>: "zh" on the Chinese subscriber page.
  const LANG = /^zh\b/i.test(document.documentElement.lang || "") ? "zh" : "en";

  /** Capitalized, with a full stop: an API message as a sentence. */
  function sentence(text) {
    const t = String(text || "");
    const s = t.charAt(0).toUpperCase() + t.slice(1);
    return /[.!?]$/.test(s) ? s : s + ".";
  }

  /** Every sentence this file shows, in each language; explain() picks and fills them. */
  const SAY = {
    en: {
      reasons: {
        empty: "it is empty",
        not_a_number: "it does not look like a phone number",
        invalid_country_code: "the country code is not one we know",
        too_short: "it has too few digits",
        too_long: "it has too many digits",
        invalid_length: "it has the wrong number of digits",
        invalid_for_region:
          "no phone number like it exists in the region it was read in (without a region " +
          "given, the registry's own)",
        not_subscribed: "it is outside the prefixes your account subscribes to",
      },
      waitLittle: "wait a little",
      waitSeconds: (n) => "wait " + n + (n === 1 ? " second" : " seconds"),
      waitMinutes: (n) => "wait " + n + " minutes",
      waitHours: (n) => "wait about " + n + " hours",
      broken: (m) => "Something went wrong in this page: " + m,
      network: "We could not reach the registry. Check your internet connection and try again.",
      invalidNumber: (why) =>
        "That phone number is not valid" + (why ? ": " + why : "") + ". " +
        "Enter it with its country code (such as +1 212 555 1234), " +
        "or choose the region it belongs to.",
      invalidRegion:
        "That region is not one we know. Use a two-letter country code such as US, GB or IN.",
      lastTry: "That code is not right, and that was the last try. Please start again.",
      wrongCode: (left) =>
        "That code is not right. Check the message we sent you and type the six digits again." +
        (typeof left === "number" ? " Tries left: " + left + "." : ""),
      invalidCode: "The code is the six digits in the message we sent you.",
      requestNotFound: "We no longer know this request. Please start again to get a new code.",
      notifierUnavailable:
        "We could not send the code to your phone just now. Please try again later.",
      invalidCaller:
        "We could not read the caller. Enter the phone number that called or wrote to you, " +
        "a short code (3 to 8 digits), or the sender name shown in the message.",
      invalidTime: () =>
        "The time is not right: enter the date and time it happened, no later than now.",
      textTooLong: (m) => "What was said is too long: " + m + ".",
      tooManyCodes: (wait, leaving) =>
        "Too many codes have been asked for this number (not necessarily by you). " +
        "Please " + wait + " and try again, or text " + (leaving ? "START" : "STOP") +
        " from that phone to your carrier's opt-out number, which " +
        (leaving ? "takes it off the registry" : "registers it") + " with no code.",
      tooManyFromYou: (wait) =>
        "Too many requests from your connection. Please " + wait + " and try again.",
      notRegistered: "This number is not on the register, so there is nothing to remove.",
      prefixNotSubscribed: "This number is outside the prefixes your account subscribes to.",
      requestUsed:
        "This code was already used, so the request went through: check the number's status to see it.",
      requestBusy:
        "This code is being confirmed right now (in another tab?). Send it again in a moment to see how it ended.",
      expired: "This request has expired or had too many wrong codes. Please start again.",
      badKey:
        "The API key was not accepted. Check that you pasted all of it, " +
        "or ask the registry administrator for a new one.",
      forbidden: (m) => "Your account is not allowed to do this. " + sentence(m),
      tooLarge: (m) => "That is too much for one request: " + m + ".",
      tooMany: (wait) => "Too many requests. Please " + wait + " and try again.",
      unavailable:
        "The registry is unavailable for a moment. Nothing was changed; please try again shortly.",
      // A write the backup servers did not confirm in time: it may stand all the same.
      notReplicated:
        "The registry could not confirm in time that this change was saved. " +
        "Check the number's status in a moment before you try again.",
      noService: "This service is not available on this server.",
      invalidRequest: (m) => "Some details are missing or not in the expected form: " + m + ".",
      // Any other refusal: the server's own message says what to send instead.
      other: (m) => sentence(m),
      reference: (status, code) => "Error " + status + ", " + code,
    },
    zh: {
      reasons: {
        empty: "号码为空",
        not_a_number: "看起来不像电话号码",
        invalid_country_code: "国家代码无法识别",
        too_short: "位数太少",
        too_long: "位数太多",
        invalid_length: "位数不对",
        invalid_for_region: "所选地区（未选时为本登记处默认地区）没有这样的号码",
        not_subscribed: "不在您账户订阅的号段内",
      },
      waitLittle: "稍等片刻",
      waitSeconds: (n) => n + " 秒后",
      waitMinutes: (n) => n + " 分钟后",
      waitHours: (n) => "在约 " + n + " 小时后",
      broken: (m) => "本页面出错：" + m,
      network: "无法连接登记处。请检查网络连接后重试。",
      invalidNumber: (why) =>
        "号码无效" + (why ? "：" + why : "") + "。请带国家代码填写（例如 +86 138 0013 8000），" +
        "或选择号码所属地区。",
      invalidRegion: "无法识别该地区。请填写两个字母的代码，例如 CN、US 或 IN。",
      lastTry: "验证码不正确，且已无剩余次数。请重新开始。",
      wrongCode: (left) =>
        "验证码不正确。请核对我们发送的短信，重新输入六位数字。" +
        (typeof left === "number" ? "剩余次数：" + left + "。" : ""),
      invalidCode: "验证码是我们发送的短信中的六位数字。",
      requestNotFound: "该申请已失效。请重新开始，获取新的验证码。",
      notifierUnavailable: "暂时无法向您的手机发送验证码。请稍后再试。",
      invalidCaller: "无法识别来电或发信方。请填写对方的电话号码、短信端口号（3 至 8 位数字）或短信中显示的签名。",
      invalidTime: () => "时间不正确：请填写发生的日期和时间，且不能晚于现在。",
      textTooLong: () => "“对方说了什么”过长，请缩短后再提交。",
      tooManyCodes: (wait, leaving) =>
        "该号码申请验证码的次数过多（不一定是您本人申请的）。请" + wait + "再试；" +
        "也可以用该手机向运营商公布的拒收名单短信号码发送" +
        (leaving ? "“START”，无需验证码即可取消登记。" : "“退订”或“TD”，无需验证码即可登记。"),
      tooManyFromYou: (wait) => "来自您网络的请求过多。请" + wait + "再试。",
      notRegistered: "该号码未登记，无需取消。",
      prefixNotSubscribed: "该号码不在您账户订阅的号段内。",
      requestUsed: "该验证码已使用，申请已完成：可查询号码状态确认。",
      requestBusy: "该验证码正在确认中（是否在另一个页面提交过？）。请稍候再提交一次，查看结果。",
      expired: "该申请已过期或错误次数过多。请重新开始。",
      badKey: "API 密钥无效。请检查是否完整粘贴，或向登记处管理员申请新密钥。",
      forbidden: (m) => "您的账户无权执行此操作（" + m + "）。",
      tooLarge: (m) => "单次请求内容过多（" + m + "）。",
      tooMany: (wait) => "请求过多。请" + wait + "再试。",
      unavailable: "登记处暂时无法使用，请稍后再试。",
      notReplicated: "登记处未能及时确认这项更改已经保存。请稍后查询号码状态，再决定是否重试。",
      noService: "本服务器未提供此服务。",
      invalidRequest: (m) => "部分信息缺失或格式不对（" + m + "）。",
      other: (m) => "请求未被接受（" + m + "）。",
      reference: (status, code) => "错误 " + status + "，" + code,
    },
  };
  const say = SAY[LANG];
  const INVALID_REASONS = say.reasons;

  /** "wait 40 seconds", "wait 12 minutes": a 429's Retry-After in words. */
  function waitWords(problem) {
    const wait = Number(problem.retryAfter || problem.details.retry_after);
    if (!(wait > 0)) {
      return say.waitLittle;
    }
    if (wait < 120) {
      return say.waitSeconds(wait);
    }
    if (wait < 7200) {
      return say.waitMinutes(Math.ceil(wait / 60));
    }
    return say.waitHours(Math.ceil(wait / 3600));
  }

  /** What went wrong, in words a subscriber or an operator can act on. */
  function explain(problem) {
    if (!(problem instanceof Problem)) {
      return say.broken(String(problem && problem.message));
    }
    const status = problem.status;
    switch (problem.code) {
      case "input":
        // Caught in the page before any request: already a sentence in the page's words.
        return problem.message;
      case "network":
        return say.network;
      case "invalid_number":
        return say.invalidNumber(INVALID_REASONS[problem.details.reason]);
      case "invalid_region":
        return say.invalidRegion;
      case "wrong_code":
        return problem.details.tries_left === 0
          ? say.lastTry
          : say.wrongCode(problem.details.tries_left);
      case "invalid_code":
        return say.invalidCode;
      case "request_not_found":
        return say.requestNotFound;
      case "notifier_unavailable":
        return say.notifierUnavailable;
      case "invalid_caller":
        return say.invalidCaller;
      case "invalid_time":
        return say.invalidTime(problem.message);
      case "text_too_long":
        return say.textTooLong(problem.message);
      case "rate_limited":
        // Anyone may ask for codes to any number: say the way in that needs none.
        return problem.details.per === "number"
          ? say.tooManyCodes(waitWords(problem), problem.details.request === "deregistration")
          : say.tooManyFromYou(waitWords(problem));
      case "not_registered":
        return say.notRegistered;
      case "prefix_not_subscribed":
        return say.prefixNotSubscribed;
      case "request_used":
        return say.requestUsed;
      case "request_busy":
        return say.requestBusy;
      case "not_replicated":
        return say.notReplicated;
      default:
        break;
    }
    if (status === 410) {
      return say.expired;
    }
    if (status === 401) {
      return say.badKey;
    }
    if (status === 403) {
      return say.forbidden(String(problem.message || ""));
    }
    if (status === 413) {
      return say.tooLarge(problem.message);
    }
    if (status === 429) {
      return say.tooMany(waitWords(problem));
    }
    if (status >= 500) {
      return say.unavailable;
    }
    if (status === 404 && problem.code === "not_found") {
      return say.noService;
    }
    if (problem.code === "invalid_request") {
      return say.invalidRequest(problem.message);
    }
    return say.other(problem.message);
  }

  /**
   * The form field an API error is about, by the field's name: the one the error box's
   * form marks invalid. A mistake caught in the page names its field in details.field.
   */
  const FIELD_OF = {
    invalid_number: "number",
    empty_number: "number",
    invalid_region: "region",
    wrong_code: "code",
    invalid_code: "code",
    invalid_caller: "caller",
    invalid_time: "occurred_at",
    text_too_long: "text",
    invalid_preferences: "channels",
    unknown_column: "column",
    ambiguous_column: "column",
    invalid_cursor: "since",
  };
  // The fields each error box marked, to unmark when the box is cleared or refilled.
  const marked = new WeakMap();

  function fieldsInError(box, problem) {
    const form = box.closest("form");
    const name = problem instanceof Problem && (problem.details.field || FIELD_OF[problem.code] ||
      queryField(problem));
    if (!form || !name) {
      return [];
    }
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name === name && field.type !== "hidden";
    });
  }

  /** The query parameter a 400 invalid_request names first ("query.limit": limit). */
  function queryField(problem) {
    const first = (problem.details.problems || [])[0];
    const where = first && typeof first.where === "string" ? first.where.split(".") : [];
    return where.length === 2 && where[0] === "query" ? where[1] : null;
  }

  function describedBy(field) {
    return (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  }

  /** aria-invalid on the fields in error, and the error box among their descriptions. */
  function mark(box, fields) {
    fields.forEach(function (field) {
      field.setAttribute("aria-invalid", "true");
      const ids = describedBy(field);
      if (ids.indexOf(box.id) < 0) {
        field.setAttribute("aria-describedby", ids.concat([box.id]).join(" "));
      }
    });
    marked.set(box, fields);
  }

  function unmark(box) {
    (marked.get(box) || []).forEach(function (field) {
      field.removeAttribute("aria-invalid");
      const ids = describedBy(field).filter(function (id) {
        return id !== box.id;
      });
      if (ids.length) {
        field.setAttribute("aria-describedby", ids.join(" "));
      } else {
        field.removeAttribute("aria-describedby");
      }
    });
    marked.delete(box);
  }

  /**
   * Put an error in the form's alert region; the code is kept for support calls. The field
   * it is about (see FIELD_OF) is marked aria-invalid and described by the region.
   */
  function showError(box, problem) {
    unmark(box);
    mark(box, fieldsInError(box, problem));
    // Shown before it is filled: a live region that appears already full is often not read.
    box.hidden = false;
    box.replaceChildren();
    const text = document.createElement("p");
    text.textContent = explain(problem);
    box.appendChild(text);
    if (problem instanceof Problem && problem.status) {
      const ref = document.createElement("p");
      ref.className = "reference";
      ref.textContent = say.reference(problem.status, problem.code);
      box.appendChild(ref);
    }
    box.hidden = false;
  }

  function clear(box) {
    unmark(box);
    box.replaceChildren();
    box.hidden = true;
  }

  /** While a request runs, its form's buttons are disabled so it is not sent twice. */
  /**
   * A form waiting for its answer. Its buttons are marked, not disabled: a disabled button
   * drops the keyboard focus to the page's start. A second submit meanwhile is stopped
   * below, before the form's own handler sees it.
   */
  function busy(form, on) {
    form.setAttribute("aria-busy", on ? "true" : "false");
    form.querySelectorAll("button").forEach(function (button) {
      button.setAttribute("aria-disabled", on ? "true" : "false");
    });
  }

  document.addEventListener(
    "submit",
    function (event) {
      if (event.target.getAttribute && event.target.getAttribute("aria-busy") === "true") {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  /** A date from the API, readable, with the exact time kept in <time datetime>. */
  function time(iso) {
    const node = document.createElement("time");
    node.dateTime = iso;
    const when = new Date(iso);
    node.textContent = isNaN(when.getTime())
      ? iso
      : when.toLocaleString(LANG === "zh" ? "zh-CN" : undefined, {
          dateStyle: "long",
          timeStyle: "short",
        });
    return node;
  }

  /** A paragraph from strings and nodes, so no API value is ever parsed as HTML. */
  function paragraph() {
    const p = document.createElement("p");
    Array.prototype.forEach.call(arguments, function (part) {
      p.append(part);
    });
    return p;
  }

  return {
    Problem: Problem,
    call: call,
    segment: segment,
    query: query,
    explain: explain,
    showError: showError,
    clear: clear,
    busy: busy,
    time: time,
    paragraph: paragraph,
    INVALID_REASONS: INVALID_REASONS,
    lang: LANG,
  };
})();
