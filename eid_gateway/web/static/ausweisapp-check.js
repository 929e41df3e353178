/* No dead end on the start page (progressive enhancement: without JavaScript the link works as before).
   Before following "Sign in with the AusweisApp" to AusweisApp's local activation URL, ask AusweisApp's
   status endpoint (TR-03124-1: GET http://127.0.0.1:24727/eID-Client?Status; the CSP allows it as
   connect-src). No answer: the page shows how to start or get AusweisApp instead of letting the browser
   end on "This site can't be reached". The check runs on the click, not on load, so a browser that asks
   before letting a page reach this computer asks in the context of the citizen's own action. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("ausweisapp-missing");
    var button = document.getElementById("signin-desktop");
    if (!box || !button || !window.fetch) {
      return;
    }
    var statusUrl = box.getAttribute("data-status-url");
    var checking = false;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (checking) {
        return;
      }
      checking = true;
      var target = button.href;
      var controller = window.AbortController ? new AbortController() : null;
      var timer = controller ? window.setTimeout(function () { controller.abort(); }, 3000) : null;
      var options = { mode: "no-cors", cache: "no-store", credentials: "omit" };
      if (controller) {
        options.signal = controller.signal;
      }
      window.fetch(statusUrl, options).then(function () {
        document.body.setAttribute("data-ausweisapp", "found");
        window.location.href = target;
      }, function () {
        document.body.setAttribute("data-ausweisapp", "missing");
        box.hidden = false;
        box.scrollIntoView({ block: "nearest" });
        var heading = box.querySelector("h2");
        if (heading) {
          heading.setAttribute("tabindex", "-1");
          heading.focus();
        }
      }).then(function () {
        checking = false;
        if (timer) {
          window.clearTimeout(timer);
        }
      });
    });
  });
}());
