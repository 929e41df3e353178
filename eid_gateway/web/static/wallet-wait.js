// The wallet page: continue by itself once the wallet has answered. The server holds each status
// request until the answer is there (or a while has passed), so this is no tight polling loop; without
// JavaScript the "Continue" button does the same (the page works without this file).
(function () {
  "use strict";
  var form = document.getElementById("wallet-continue");
  if (!form || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-status-url");
  function ask() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) {
          return { waiting: false }; // the sign-in has ended: the page says how
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (answer) {
        if (answer.waiting) {
          ask();
        } else {
          form.submit();
        }
      })
      .catch(function () {
        window.setTimeout(ask, 5000);
      });
  }
  ask();
})();
