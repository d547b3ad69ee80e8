/* The subscriber page: register, check, deregister, complain.
 *
 * Every form is sent by fetch with its values in the request body (or the API path),
 * never in this page's URL; request ids live in this script's memory only.
 */
"use strict";

(function () {
  const api = window.DNC;
  /** Every sentence this page's script shows, in the page's language (api.lang). */
  const SAY = {
    en: {
      channels: { voice: "calls", sms: "text messages" },
      and: " and ",
      list: "; ",
      minutes: (n) => (n === 1 ? "1 minute" : n + " minutes"),
      codeSent: (number, minutes) =>
        "We sent a six-digit code to " + number + ". It is valid for " + minutes + ".",
      codeDigits: "The code is the six digits in the message we sent.",
      enterNumber: "Enter the phone number.",
      tickChannel: "Tick calls, text messages or both: what should stop?",
      isRegistered: (number) => number + " is registered.",
      blocked: (what) => "Blocked: " + what + ".",
      stillAccepted: (what) => "Offers you still accept: " + what + ".",
      allBlocked: "Every kind of telemarketing is blocked.",
      registeredOn: ["Registered on ", "."],
      // What the registration blocks: calls, texts or both.
      liableFrom: (what) => [
        "Telemarketers who still " +
          { voice: "call", sms: "write", both: "call or write" }[what] + " after ",
        " can be reported below and held to account.",
      ],
      removed: (number) => number + " is not on the register now.",
      mayCallAgain: "Telemarketers may call it again once their lists are updated.",
      inForceFrom: ["Fully in force from ", "."],
      notRegistered: (number) => number + " is not registered.",
      enterYourNumber: "Enter your phone number.",
      enterCaller: "Enter the number that called or wrote to you.",
      enterTime: "Enter the date and time it happened.",
      thanks: "Thank you: your report was recorded.",
      reference: (id) => "Its reference is " + id + ".",
      followLink: "follow the report",
      follow: ["Keep it to ", ": what was done about it, once it is dealt with."],
      notRegisteredThen:
        "When this happened your registration did not cover it (the number was not " +
        "registered then, or not for this kind of contact), so the caller broke no rule.",
      withinGrace:
        "This happened within the grace period after your registration, when " +
        "telemarketers may not yet have updated their lists. We keep the report all the same.",
    },
    zh: {
      channels: { voice: "电话", sms: "短信" },
      and: "和",
      list: "；",
      minutes: (n) => n + " 分钟",
      codeSent: (number, minutes) =>
        "我们已向 " + number + " 发送六位验证码，" + minutes + "内有效。",
      codeDigits: "验证码是我们发送的短信中的六位数字。",
      enterNumber: "请填写手机号码。",
      tickChannel: "请勾选电话、短信或两者：要拒绝哪一种？",
      isRegistered: (number) => number + " 已登记。",
      blocked: (what) => "已拒绝：" + what + "。",
      stillAccepted: (what) => "仍接收的营销类别：" + what + "。",
      allBlocked: "已拒绝所有类别的营销。",
      registeredOn: ["登记时间：", "。"],
      liableFrom: (what) => [
        "",
        " 之后仍" + { voice: "来电", sms: "发短信", both: "来电或发短信" }[what] +
          "的营销方，可在下方举报并追究责任。",
      ],
      removed: (number) => number + " 已不在登记名单中。",
      mayCallAgain: "营销方更新名单后，可能会再次联系该号码。",
      inForceFrom: ["", " 起全面生效。"],
      notRegistered: (number) => number + " 未登记。",
      enterYourNumber: "请填写您的手机号码。",
      enterCaller: "请填写来电或发信的号码。",
      enterTime: "请填写发生的日期和时间。",
      thanks: "谢谢：您的举报已记录。",
      reference: (id) => "举报编号为 " + id + "。",
      followLink: "查询举报进展",
      follow: ["请保存编号，处理完毕后可", "，了解处理结果。"],
      notRegisteredThen:
        "发生时您的登记并不涵盖此事（当时号码尚未登记，或登记未拒绝这类联系方式），" +
        "因此按本登记处的规则，对方不构成违规。",
      withinGrace: "此事发生在您登记后的宽限期内，营销方可能尚未更新名单。我们仍会保留这份举报。",
    },
  };
  const say = SAY[api.lang];
  const CHANNEL_WORDS = say.channels;

  function byId(id) {
    return document.getElementById(id);
  }

  function value(form, name) {
    const field = form.elements.namedItem(name);
    return field ? field.value.trim() : "";
  }

  function ticked(form, name) {
    return Array.prototype.slice
      .call(form.querySelectorAll('input[name="' + name + '"]:checked'))
      .map(function (box) {
        return box.value;
      });
  }

  /** A mistake caught before sending, shown like an API error; `field` names the field. */
  function localProblem(message, field) {
    return new api.Problem(0, "input", message, { field: field });
  }

  function categoryNames() {
    const names = {};
    document.querySelectorAll('#register-categories input').forEach(function (box) {
      names[box.value] = box.parentNode.textContent.trim();
    });
    return names;
  }

  function minutes(secondsLeft) {
    return say.minutes(Math.max(1, Math.round(Number(secondsLeft) / 60)));
  }

  /** A paragraph with a time from the API between the two halves of `words`. */
  function around(words, iso) {
    return api.paragraph(words[0], api.time(iso), words[1]);
  }

  function showResult(box, parts) {
    box.hidden = false; // before it is filled, so that its live region is read
    box.replaceChildren.apply(box, parts);
    box.focus();
  }

  /**
   * A request confirmed by a code sent to the number: registration and deregistration.
   * `start` builds the first request's body from the form, or throws a Problem.
   */
  function twoStep(name, path, start, done) {
    const form = byId(name + "-form");
    const confirm = byId(name + "-confirm");
    const error = byId(name + "-error");
    const confirmError = byId(name + "-confirm-error");
    const result = byId(name + "-result");
    let requestId = null;
    // The code step survives a reload (on a phone the tab is often reloaded while the
    // subscriber reads the text): kept in this tab's sessionStorage until the request is
    // confirmed, over or past its expiry, never in localStorage or the address.
    const pendingKey = "dnc.pending." + name;

    // The number as typed, not the sentence: the step comes back in the page's language,
    // whichever of the two pages the tab reloads.
    function remember(id, number, expiresIn) {
      const until = Date.now() + expiresIn * 1000;
      try {
        sessionStorage.setItem(pendingKey, JSON.stringify({ id: id, number: number, until: until }));
      } catch (ignored) {
        // Storage refused (a private window's quota): the step lives in memory only.
      }
    }

    function forget() {
      try {
        sessionStorage.removeItem(pendingKey);
      } catch (ignored) {
        // Nothing was kept.
      }
    }

    function showCodeStep(id, sent) {
      requestId = id;
      byId(name + "-sent").textContent = sent;
      form.hidden = true;
      confirm.hidden = false;
      byId(name + "-code").value = "";
    }

    function restart() {
      requestId = null;
      forget();
      confirm.hidden = true;
      form.hidden = false;
      api.clear(confirmError);
      byId(name + "-number").focus();
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      api.clear(error);
      result.hidden = true;
      let body;
      try {
        body = start(form);
      } catch (problem) {
        api.showError(error, problem);
        return;
      }
      api.busy(form, true);
      try {
        const answer = await api.call("POST", path, { json: body });
        const sent = say.codeSent(body.number, minutes(answer.data.expires_in));
        showCodeStep(answer.data.request_id, sent);
        remember(answer.data.request_id, body.number, answer.data.expires_in);
        byId(name + "-code").focus();
      } catch (problem) {
        api.showError(error, problem);
      } finally {
        api.busy(form, false);
      }
    });

    confirm.addEventListener("submit", async function (event) {
      event.preventDefault();
      api.clear(confirmError);
      // As the API reads it: "123 456", "123-456", and full-width digits from a Chinese
      // input method (NFKC folds them to ASCII).
      const code = value(confirm, "code").normalize("NFKC").replace(/[\s-]+/g, "");
      if (!/^[0-9]{6}$/.test(code)) {
        api.showError(confirmError, localProblem(say.codeDigits, "code"));
        return;
      }
      api.busy(confirm, true);
      try {
        const answer = await api.call(
          "POST", path + "/" + api.segment(requestId) + "/confirm", { json: { code: code } }
        );
        requestId = null;
        forget();
        confirm.hidden = true;
        form.hidden = false;
        form.reset();
        showResult(result, done(answer.data));
      } catch (problem) {
        const over =
          problem.status === 410 ||
          problem.code === "request_not_found" ||
          (problem.code === "wrong_code" && problem.details.tries_left === 0);
        if (over) {
          restart();
          api.showError(error, problem);
        } else {
          api.showError(confirmError, problem);
        }
      } finally {
        api.busy(confirm, false);
      }
    });

    byId(name + "-restart").addEventListener("click", restart);

    let kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(pendingKey) || "null");
    } catch (ignored) {
      kept = null;
    }
    if (kept && typeof kept.id === "string" && typeof kept.number === "string" &&
        Number(kept.until) > Date.now()) {
      showCodeStep(kept.id, say.codeSent(kept.number, minutes((kept.until - Date.now()) / 1000)));
    } else if (kept) {
      forget();
    }
  }

  function numberAndRegion(form) {
    const body = { number: value(form, "number") };
    if (!body.number) {
      throw localProblem(say.enterNumber, "number");
    }
    const region = value(form, "region").toUpperCase();
    if (region) {
      body.region = region;
    }
    return body;
  }

  twoStep(
    "register",
    "/v1/registrations",
    function (form) {
      const body = numberAndRegion(form);
      body.channels = ticked(form, "channels");
      if (body.channels.length === 0) {
        throw localProblem(say.tickChannel, "channels");
      }
      body.allow_categories = ticked(form, "allow_categories").map(Number);
      return body;
    },
    function (data) {
      const names = categoryNames();
      const blocked = (data.channels || []).map(function (c) {
        return CHANNEL_WORDS[c] || c;
      });
      const allowed = (data.allow_categories || []).map(function (c) {
        return names[String(c)] || String(c);
      });
      const parts = [
        api.paragraph(say.isRegistered(data.number)),
        api.paragraph(say.blocked(blocked.join(say.and))),
        api.paragraph(allowed.length ? say.stillAccepted(allowed.join(say.list)) : say.allBlocked),
      ];
      if (data.registered_at) {
        parts.push(around(say.registeredOn, data.registered_at));
      }
      if (data.effective_at) {
        const channels = data.channels || [];
        const what = channels.length === 1 ? channels[0] : "both";
        parts.push(around(say.liableFrom(what), data.effective_at));
      }
      parts[0].className = "outcome outcome-registered";
      return parts;
    }
  );

  twoStep("deregister", "/v1/deregistrations", numberAndRegion, function (data) {
    // True whether or not it was registered: the API answers both alike.
    const p = api.paragraph(say.removed(data.number));
    p.className = "outcome";
    return [p, api.paragraph(say.mayCallAgain)];
  });

  const statusForm = byId("status-form");
  statusForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const error = byId("status-error");
    const result = byId("status-result");
    api.clear(error);
    result.hidden = true;
    let body;
    try {
      body = numberAndRegion(statusForm);
    } catch (problem) {
      api.showError(error, problem);
      return;
    }
    api.busy(statusForm, true);
    try {
      const answer = await api.call(
        "GET",
        "/v1/registrations/" + api.segment(body.number) + api.query({ region: body.region })
      );
      const data = answer.data;
      const parts = [];
      if (data.registered) {
        parts.push(api.paragraph(say.isRegistered(data.number)));
        parts[0].className = "outcome outcome-registered";
        if (data.registered_at) {
          parts.push(around(say.registeredOn, data.registered_at));
        }
        if (data.effective_at) {
          parts.push(around(say.inForceFrom, data.effective_at));
        }
      } else {
        parts.push(api.paragraph(say.notRegistered(data.number)));
        parts[0].className = "outcome";
      }
      showResult(result, parts);
    } catch (problem) {
      api.showError(error, problem);
    } finally {
      api.busy(statusForm, false);
    }
  });

  const complainForm = byId("complain-form");
  const when = byId("complain-when");
  // The latest moment a report can be about: now, in the local time the field shows.
  function localNow() {
    const now = new Date();
    return new Date(now.getTime() - now.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }
  when.max = localNow();

  complainForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const error = byId("complain-error");
    const result = byId("complain-result");
    api.clear(error);
    result.hidden = true;
    const body = {
      number: value(complainForm, "number"),
      caller: value(complainForm, "caller"),
      channel: value(complainForm, "channel") || "voice",
    };
    const occurred = new Date(value(complainForm, "occurred_at"));
    try {
      if (!body.number) {
        throw localProblem(say.enterYourNumber, "number");
      }
      if (!body.caller) {
        throw localProblem(say.enterCaller, "caller");
      }
      if (isNaN(occurred.getTime())) {
        throw localProblem(say.enterTime, "occurred_at");
      }
    } catch (problem) {
      api.showError(error, problem);
      return;
    }
    body.occurred_at = occurred.toISOString();
    const category = value(complainForm, "category");
    if (category) {
      body.category = Number(category);
    }
    const region = value(complainForm, "region").toUpperCase();
    if (region) {
      body.region = region;
    }
    const text = value(complainForm, "text");
    if (text) {
      body.text = text;
    }
    api.busy(complainForm, true);
    try {
      const answer = await api.call("POST", "/v1/complaints", { json: body });
      const data = answer.data;
      const parts = [api.paragraph(say.thanks)];
      parts[0].className = "outcome";
      parts.push(api.paragraph(say.reference(data.complaint_id)));
      const follow = document.createElement("a");
      follow.href = "/complaints/" + encodeURIComponent(data.complaint_id) + "?lang=" + api.lang;
      follow.textContent = say.followLink;
      parts.push(api.paragraph(say.follow[0], follow, say.follow[1]));
      const at = data.registered_at_time;
      if (at === false || at === null) {
        parts.push(api.paragraph(say.notRegisteredThen));
      } else if (data.within_grace) {
        parts.push(api.paragraph(say.withinGrace));
      }
      complainForm.reset();
      when.max = localNow();
      showResult(result, parts);
    } catch (problem) {
      api.showError(error, problem);
    } finally {
      api.busy(complainForm, false);
    }
  });
})();
