/*
 * Progressive enhancement for the hosted pages. Every page works without this file.
 *
 *  - Focuses the error summary ([data-error-summary]) on load, so screen readers announce it (its
 *    autofocus does it without this file; this covers browsers that skip autofocus).
 *  - [data-copy-target="ID"] buttons copy the text of #ID to the clipboard; the label reads
 *    "Copied" for a moment, and a polite live region announces it.
 *  - [data-download-target="ID"][data-filename="codes.txt"] buttons save the text of #ID as a file.
 *  - Elements with [data-js-only] (render them with the hidden attribute) are revealed, so
 *    copy/download buttons appear only where they work.
 */
// The words the scripts below show or announce, in the page's language: data-page-words on <body>.
var pageWords = (function () {
  "use strict";
  try {
    return JSON.parse(document.body.getAttribute("data-page-words") || "{}");
  } catch (e) {
    return {};
  }
})();

(function () {
  "use strict";

  var COPIED_MS = 2000;
  var liveRegion = null;

  function announce(message) {
    if (!liveRegion) {
      liveRegion = document.createElement("div");
      liveRegion.className = "visually-hidden";
      liveRegion.setAttribute("role", "status");
      liveRegion.setAttribute("aria-live", "polite");
      document.body.appendChild(liveRegion);
    }
    liveRegion.textContent = "";
    window.setTimeout(function () {
      liveRegion.textContent = message;
    }, 50);
  }

  // Text of an element: list items one per line (backup codes), otherwise its visible text.
  function textOf(element) {
    var items = element.querySelectorAll("li");
    if (items.length) {
      return Array.prototype.map
        .call(items, function (li) {
          return li.textContent.trim();
        })
        .join("\n");
    }
    return (element.innerText || element.textContent).trim();
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () {
          return true;
        },
        function () {
          return fallbackCopy(text);
        }
      );
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function flashLabel(button, label) {
    if (!button.hasAttribute("data-original-label")) {
      button.setAttribute("data-original-label", button.textContent);
    }
    button.textContent = label;
    window.clearTimeout(button._pagesTimer);
    button._pagesTimer = window.setTimeout(function () {
      button.textContent = button.getAttribute("data-original-label");
    }, COPIED_MS);
  }

  function onCopy(event) {
    var button = event.currentTarget;
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) {
      return;
    }
    event.preventDefault();
    copyText(textOf(target)).then(function (ok) {
      if (ok) {
        flashLabel(button, button.getAttribute("data-copied-label") || pageWords.copied || "Copied");
        announce(pageWords.copiedToClipboard || "Copied to the clipboard");
      } else {
        announce(pageWords.copyFailed || "Copying did not work. Select the text and copy it instead.");
      }
    });
  }

  function onDownload(event) {
    var button = event.currentTarget;
    var target = document.getElementById(button.getAttribute("data-download-target"));
    if (!target) {
      return;
    }
    event.preventDefault();
    var name = button.getAttribute("data-filename") || "download.txt";
    if (!/\.txt$/i.test(name)) {
      name += ".txt";
    }
    var blob = new Blob([textOf(target) + "\n"], { type: "text/plain;charset=utf-8" });
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    window.setTimeout(function () {
      URL.revokeObjectURL(url);
    }, 1000);
    announce((pageWords.downloaded || "Downloaded {name}").replace("{name}", name));
  }

  function init() {
    var each = function (selector, fn) {
      Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
    };

    each("[data-js-only]", function (el) {
      el.hidden = false;
    });
    each("[data-copy-target]", function (button) {
      button.hidden = false;
      button.addEventListener("click", onCopy);
    });
    each("[data-download-target]", function (button) {
      button.hidden = false;
      button.addEventListener("click", onDownload);
    });

    var summary = document.querySelector("[data-error-summary]");
    if (summary) {
      if (!summary.hasAttribute("tabindex")) {
        summary.setAttribute("tabindex", "-1");
      }
      summary.focus();
    }

    // Error summary links: move focus to the field itself (not just scroll), keeping its label in view.
    each("[data-error-summary] a[href^='#']", function (link) {
      link.addEventListener("click", function (event) {
        var field = document.getElementById(link.getAttribute("href").slice(1));
        if (!field) {
          return;
        }
        event.preventDefault();
        var label = field.labels && field.labels.length ? field.labels[0] : null;
        (label || field).scrollIntoView({ block: "start" });
        field.focus({ preventScroll: true });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

/*
 * ---------------------------------------------------------------------------------------------
 * Live password checklist (registration, reset and change of password).
 *
 *   <ul data-password-checklist="INPUT_ID" data-min-length="8" hidden>
 *     <li data-rule="length|upper|lower|digit|symbol">Text<span data-rule-state></span></li>
 *   </ul>
 *
 * Reveals the list and, as the user types in #INPUT_ID, marks each met rule with .is-met and a
 * visually hidden "done" / "not yet". Only a guide: the server checks the policy (including the
 * list of common passwords) and explains what is wrong next to the field.
 * ---------------------------------------------------------------------------------------------
 */
(function () {
  "use strict";

  // Unicode classes where the browser has them (the server counts any letter, not only A-Z).
  function pattern(unicode, fallback) {
    try {
      return new RegExp(unicode, "u");
    } catch (e) {
      return fallback;
    }
  }

  var UPPER = pattern("\\p{Lu}", /[A-Z]/);
  var LOWER = pattern("\\p{Ll}", /[a-z]/);
  var DIGIT = pattern("\\p{Nd}", /[0-9]/);
  var SYMBOL = /[^A-Za-z0-9]/; // as the server (and the old service): anything but A-Z, a-z, 0-9

  function length(value) {
    return Array.from ? Array.from(value).length : value.length;
  }

  function checks(minLength) {
    return {
      length: function (v) { return length(v) >= minLength; },
      upper: function (v) { return UPPER.test(v); },
      lower: function (v) { return LOWER.test(v); },
      digit: function (v) { return DIGIT.test(v); },
      symbol: function (v) { return SYMBOL.test(v); }
    };
  }

  function setUp(list) {
    var input = document.getElementById(list.getAttribute("data-password-checklist"));
    if (!input) {
      return;
    }
    var rules = checks(parseInt(list.getAttribute("data-min-length"), 10) || 8);
    var items = list.querySelectorAll("li[data-rule]");

    function update() {
      Array.prototype.forEach.call(items, function (item) {
        var check = rules[item.getAttribute("data-rule")];
        if (!check) {
          return;
        }
        var met = check(input.value);
        item.classList.toggle("is-met", met);
        var state = item.querySelector("[data-rule-state]");
        if (state) {
          state.textContent = met ? pageWords.done || ": done" : pageWords.notYet || ": not yet";
        }
      });
    }

    // The list describes the field for screen readers too.
    if (!list.id) {
      list.id = input.id + "-checklist";
    }
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf(list.id) === -1) {
      described.push(list.id);
      input.setAttribute("aria-describedby", described.join(" "));
    }
    input.addEventListener("input", update);
    update();
    list.hidden = false;
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-password-checklist]"), setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
