/* The subscriber page: register, check, deregister, complain.
 *
 * Every form is sent by fetch with its values in the request body (or the API path),
 * never in this page's URL; request ids live in this script's memory only.
 */
"use strict";

(function () {
  const api = window.DNC;
  const CHANNEL_WORDS = { voice: "calls", sms: "text messages" };

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

  /** A mistake caught before sending, shown like an API error. */
  function localProblem(message) {
    return new api.Problem(0, "input", message);
  }

  function categoryNames() {
    const names = {};
    document.querySelectorAll('#register-categories input').forEach(function (box) {
      names[box.value] = box.parentNode.textContent.trim();
    });
    return names;
  }

  function minutes(secondsLeft) {
    const n = Math.max(1, Math.round(Number(secondsLeft) / 60));
    return n === 1 ? "1 minute" : n + " minutes";
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

    function remember(id, sent, expiresIn) {
      const until = Date.now() + expiresIn * 1000;
      try {
        sessionStorage.setItem(pendingKey, JSON.stringify({ id: id, sent: sent, until: until }));
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
        const sent =
          "We sent a six-digit code to " + body.number + ". It is valid for " +
          minutes(answer.data.expires_in) + ".";
        showCodeStep(answer.data.request_id, sent);
        remember(answer.data.request_id, sent, answer.data.expires_in);
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
        api.showError(confirmError, localProblem("The code is the six digits in the message we sent."));
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
    if (kept && typeof kept.id === "string" && typeof kept.sent === "string" &&
        Number(kept.until) > Date.now()) {
      showCodeStep(kept.id, kept.sent);
    } else if (kept) {
      forget();
    }
  }

  function numberAndRegion(form) {
    const body = { number: value(form, "number") };
    if (!body.number) {
      throw localProblem("Enter the phone number.");
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
        throw localProblem("Tick calls, text messages or both: what should stop?");
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
        api.paragraph(data.number + " is registered."),
        api.paragraph("Blocked: " + blocked.join(" and ") + "."),
        api.paragraph(
          allowed.length
            ? "Offers you still accept: " + allowed.join("; ") + "."
            : "Every kind of telemarketing is blocked."
        ),
      ];
      if (data.registered_at) {
        parts.push(api.paragraph("Registered on ", api.time(data.registered_at), "."));
      }
      if (data.effective_at) {
        parts.push(
          api.paragraph(
            "Telemarketers who still call or write after ", api.time(data.effective_at),
            " can be reported below and held to account."
          )
        );
      }
      parts[0].className = "outcome outcome-registered";
      return parts;
    }
  );

  twoStep("deregister", "/v1/deregistrations", numberAndRegion, function (data) {
    // True whether or not it was registered: the API answers both alike.
    const p = api.paragraph(data.number + " is not on the register now.");
    p.className = "outcome";
    return [p, api.paragraph("Telemarketers may call it again once their lists are updated.")];
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
        parts.push(api.paragraph(data.number + " is registered."));
        parts[0].className = "outcome outcome-registered";
        if (data.registered_at) {
          parts.push(api.paragraph("Registered on ", api.time(data.registered_at), "."));
        }
        if (data.effective_at) {
          parts.push(api.paragraph("Fully in force from ", api.time(data.effective_at), "."));
        }
      } else {
        parts.push(api.paragraph(data.number + " is not registered."));
        parts[0].className = "outcome";
      }
      result.replaceChildren.apply(result, parts);
      result.hidden = false;
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
        throw localProblem("Enter your phone number.");
      }
      if (!body.caller) {
        throw localProblem("Enter the number that called or wrote to you.");
      }
      if (isNaN(occurred.getTime())) {
        throw localProblem("Enter the date and time it happened.");
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
      const parts = [api.paragraph("Thank you: your report was recorded.")];
      parts[0].className = "outcome";
      parts.push(api.paragraph("Its reference is " + data.complaint_id + "."));
      const follow = document.createElement("a");
      follow.href = "/complaints/" + encodeURIComponent(data.complaint_id);
      follow.textContent = "follow the report";
      parts.push(api.paragraph("Keep it to ", follow, ": what was done about it, once it is dealt with."));
      const at = data.registered_at_time;
      if (at === false || at === null) {
        parts.push(
          api.paragraph("Your number was not registered when this happened, so the caller broke no rule.")
        );
      } else if (data.within_grace) {
        parts.push(
          api.paragraph(
            "This happened within the grace period after your registration, when " +
              "telemarketers may not yet have updated their lists. We keep the report all the same."
          )
        );
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
