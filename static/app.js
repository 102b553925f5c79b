/* Community Favorite: small extras over plain HTML forms. Every page works without it. */
(() => {
  "use strict";
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => [...r.querySelectorAll(s)];
  const root = document.documentElement;
  const lang = root.lang || "en";
  const fold = (s) => s.normalize("NFD").replace(/\p{Mn}/gu, "").toLowerCase();
  root.classList.add("js");

  // Instant search and filters (the same matching as the server's, see public.Filters).
  const form = $("form.filters");
  const list = $("ul.cards");
  if (form && list) {
    const count = $("#count");
    const cards = $$(":scope > li", list);
    // A card is h2 (title), p (team and members), p (category and theme chips), p (summary).
    const text = cards.map((c) => fold($$("h2, p:not(.own)", c).map((e) => e.textContent).join(" ")));
    const chips = cards.map((c) => $$("p:nth-of-type(2) span", c).map((e) => e.textContent));
    const field = (name) => (form.elements[name] ? form.elements[name].value : "");
    const clear = $("#clear");
    const bar = $("#ballot .bar");
    if (clear) {
      clear.addEventListener("click", (e) => {
        e.preventDefault();
        form.reset();
        for (const k of ["q", "category", "theme"]) if (form.elements[k]) form.elements[k].value = "";
        apply();
        if (form.elements.q) form.elements.q.focus();
      });
    }
    const apply = () => {
      const words = fold(field("q")).split(/\s+/).filter(Boolean);
      const cat = field("category");
      const theme = field("theme");
      let shown = 0;
      cards.forEach((card, i) => {
        const ok = (!cat || chips[i][0] === cat) && (!theme || chips[i][1] === theme) && words.every((w) => text[i].includes(w));
        card.hidden = !ok;
        shown += ok;
      });
      const d = count.dataset;
      count.textContent = shown === cards.length ? d.all : shown ? d.some.replace("{n}", shown) : d.none;
      if (clear) clear.hidden = !["q", "category", "theme"].some((k) => field(k).trim());
      if (bar) bar.hidden = !shown && !$$("input[name=choice]:checked").length;
      const url = new URL(location.href);
      for (const k of ["q", "category", "theme"]) {
        const v = field(k).trim();
        if (v) url.searchParams.set(k, v); else url.searchParams.delete(k);
      }
      url.searchParams.delete("lang");
      history.replaceState(history.state, "", url);
    };
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  }

  // Approval ballots: how many picks are left; no more boxes than allowed.
  const left = $("#left");
  if (left) {
    const max = Number(left.dataset.max);
    const boxes = $$("input[name=choice]");
    const rules = new Intl.PluralRules(lang);
    const update = () => {
      const rest = max - boxes.filter((b) => b.checked).length;
      left.textContent = (left.dataset[rules.select(rest)] || left.dataset.other).replace("{n}", rest);
      boxes.forEach((b) => { b.disabled = !b.checked && rest <= 0; });
    };
    boxes.forEach((b) => b.addEventListener("change", update));
    update();
  }

  // Countdowns: data-secs is relative to page load, so a wrong phone clock does not matter.
  $$("[data-secs]").forEach((el) => {
    const end = Date.now() + 1000 * Number(el.dataset.secs);
    const two = (n) => String(n).padStart(2, "0");
    const tick = () => {
      const s = Math.max(0, Math.round((end - Date.now()) / 1000));
      if (s < 86400) {
        const h = Math.floor(s / 3600);
        const m = Math.floor((s % 3600) / 60);
        el.textContent = (h ? h + ":" + two(m) : m) + ":" + two(s % 60);
      }
      if (!s) {
        clearInterval(timer);
        if (el.dataset.done === "reload") setTimeout(() => location.reload(), 1500);
      }
    };
    const timer = setInterval(tick, 1000);
    tick();
  });

  // The receipt's copy button.
  $$("button[data-copy]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const target = $(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
      } catch {
        const range = document.createRange();
        range.selectNodeContents(target);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        document.execCommand("copy");
      }
      $("#copied").textContent = button.dataset.done;
    });
  });

  // Demo videos load from their host only after a tap.
  $$("button[data-embed]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => {
      const frame = document.createElement("iframe");
      frame.src = button.dataset.embed;
      frame.title = button.dataset.title;
      frame.allow = "autoplay; encrypted-media; picture-in-picture; fullscreen";
      frame.allowFullscreen = true;
      frame.referrerPolicy = "strict-origin-when-cross-origin";
      const box = document.createElement("div");
      box.className = "frame";
      box.append(frame);
      button.replaceWith(box);
      frame.focus();
    });
  });

  // "Back" links return to the gallery as it was (filters, picks, scroll) when we came from it.
  $$("a[data-back]").forEach((a) => a.addEventListener("click", (e) => {
    const from = document.referrer && new URL(document.referrer);
    if (from && from.origin === location.origin && from.pathname === new URL(a.href).pathname && history.length > 1) {
      e.preventDefault();
      history.back();
    }
  }));

  // One tap casts one ballot: a second tap while the first is on its way does nothing.
  $$("form[method=post]").forEach((f) => f.addEventListener("submit", () => {
    setTimeout(() => $$("button", f).forEach((b) => { b.disabled = true; }));
  }));
  addEventListener("pageshow", () => $$("form[method=post] button").forEach((b) => { b.disabled = false; }));
})();
