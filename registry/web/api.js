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

  const INVALID_REASONS = {
    empty: "it is empty",
    not_a_number: "it does not look like a phone number",
    invalid_country_code: "the country code is not one we know",
    too_short: "it has too few digits",
    too_long: "it has too many digits",
    invalid_length: "it has the wrong number of digits",
    invalid_for_region:
      "no phone number like it exists in the region it was read in (without a region " +
      "given, the registry's own); write it with + and the country code, or choose its region",
    not_subscribed: "it is outside the prefixes your account subscribes to",
  };

  /** "wait 40 seconds", "wait 12 minutes": a 429's Retry-After in words. */
  function waitWords(problem) {
    const wait = Number(problem.retryAfter || problem.details.retry_after);
    if (!(wait > 0)) {
      return "wait a little";
    }
    if (wait < 120) {
      return "wait " + wait + (wait === 1 ? " second" : " seconds");
    }
    if (wait < 7200) {
      return "wait " + Math.ceil(wait / 60) + " minutes";
    }
    return "wait about " + Math.ceil(wait / 3600) + " hours";
  }

  /** What went wrong, in words a subscriber or an operator can act on. */
  function explain(problem) {
    if (!(problem instanceof Problem)) {
      return "Something went wrong in this page: " + String(problem && problem.message);
    }
    const status = problem.status;
    switch (problem.code) {
      case "network":
        return "We could not reach the registry. Check your internet connection and try again.";
      case "invalid_number": {
        const why = INVALID_REASONS[problem.details.reason];
        return (
          "That phone number is not valid" + (why ? ": " + why : "") + ". " +
          "Enter it with its country code (such as +1 212 555 1234), " +
          "or choose the region it belongs to."
        );
      }
      case "invalid_region":
        return "That region is not one we know. Use a two-letter country code such as US, GB or IN.";
      case "wrong_code": {
        const left = problem.details.tries_left;
        if (left === 0) {
          return "That code is not right, and that was the last try. Please start again.";
        }
        return (
          "That code is not right. Check the message we sent you and type the six digits again." +
          (typeof left === "number" ? " Tries left: " + left + "." : "")
        );
      }
      case "invalid_code":
        return "The code is the six digits in the message we sent you.";
      case "request_not_found":
        return "We no longer know this request. Please start again to get a new code.";
      case "notifier_unavailable":
        return "We could not send the code to your phone just now. Please try again later.";
      case "invalid_caller":
        return (
          "We could not read the caller. Enter the phone number that called or wrote to you, " +
          "a short code (3 to 8 digits), or the sender name shown in the message."
        );
      case "invalid_time":
        return "The time is not right: " + problem.message + ".";
      case "text_too_long":
        return "What was said is too long: " + problem.message + ".";
      case "rate_limited": {
        if (problem.details.per === "number") {
          // Anyone may ask for codes to any number: say the way in that needs none.
          return (
            "Too many codes have been asked for this number (not necessarily by you). " +
            "Please " + waitWords(problem) + " and try again, or text STOP from that phone " +
            "to your carrier's opt-out number, which registers it with no code."
          );
        }
        return "Too many requests from your connection. Please " + waitWords(problem) + " and try again.";
      }
      case "not_registered":
        return "This number is not on the register, so there is nothing to remove.";
      case "prefix_not_subscribed":
        return "This number is outside the prefixes your account subscribes to.";
      default:
        break;
    }
    if (problem.code === "request_used") {
      return "This code was already used, so the request went through: check the number's status to see it.";
    }
    if (status === 410) {
      return "This request has expired or had too many wrong codes. Please start again.";
    }
    if (status === 401) {
      return (
        "The API key was not accepted. Check that you pasted all of it, " +
        "or ask the registry administrator for a new one."
      );
    }
    if (status === 403) {
      const why = String(problem.message || "");
      return "Your account is not allowed to do this. " +
        why.charAt(0).toUpperCase() + why.slice(1) + (/[.!?]$/.test(why) ? "" : ".");
    }
    if (status === 413) {
      return "That is too much for one request: " + problem.message + ".";
    }
    if (status === 429) {
      return "Too many requests. Please " + waitWords(problem) + " and try again.";
    }
    if (status >= 500) {
      return "The registry is unavailable for a moment. Nothing was changed; please try again shortly.";
    }
    if (status === 404 && problem.code === "not_found") {
      return "This service is not available on this server.";
    }
    if (problem.code === "invalid_request") {
      return "Some details are missing or not in the expected form: " + problem.message + ".";
    }
    // Any other refusal: the server's own message says what to send instead.
    const text = problem.message.charAt(0).toUpperCase() + problem.message.slice(1);
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  /** Put an error in the form's alert region; the code is kept for support calls. */
  function showError(box, problem) {
    // Shown before it is filled: a live region that appears already full is often not read.
    box.hidden = false;
    box.replaceChildren();
    const text = document.createElement("p");
    text.textContent = explain(problem);
    box.appendChild(text);
    if (problem instanceof Problem && problem.status) {
      const ref = document.createElement("p");
      ref.className = "reference";
      ref.textContent = "Error " + problem.status + ", " + problem.code;
      box.appendChild(ref);
    }
    box.hidden = false;
  }

  function clear(box) {
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
      : when.toLocaleString(undefined, { dateStyle: "long", timeStyle: "short" });
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
  };
})();
