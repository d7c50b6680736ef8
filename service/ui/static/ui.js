// Newsloom story browser: small enhancements; every page works without this script.
"use strict";

// Times: the server writes UTC; show them in the reader's own zone (the UTC stays in the title).
function localTimes(root) {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const time of root.querySelectorAll("time[datetime]")) {
    if (!/UTC$/.test(time.textContent.trim())) continue;  // relative ages ("3 h ago") stay as they are
    const moment = new Date(time.dateTime);
    if (isNaN(moment)) continue;
    time.title = time.textContent.trim();
    time.textContent = format.format(moment);
  }
}

// "Read the stored text": open it in place (the same request the link makes, the same key check).
function storedTexts(root) {
  for (const details of root.querySelectorAll("details.stored[data-src]")) {
    details.addEventListener("toggle", async () => {
      if (!details.open || details.dataset.loaded) return;
      details.dataset.loaded = "loading";
      const target = details.querySelector(".text");
      try {
        const response = await fetch(details.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) throw new Error(`the service answered ${response.status}`);
        target.innerHTML = await response.text();  // the service's own escaped fragment
        details.dataset.loaded = "yes";
      } catch (error) {
        delete details.dataset.loaded;
        const message = document.createElement("p");
        message.className = "error";
        message.setAttribute("role", "alert");
        message.textContent = `The text could not be loaded (${error.message}).`;
        target.prepend(message);
      }
    });
  }
}

localTimes(document);
storedTexts(document);
