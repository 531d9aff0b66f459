// The replies page: count what is left of an answer while it is typed, as the server counts
// it (Mastodon: a link counts 23; Bluesky: graphemes). The page works without this script:
// the server shows what is left when it renders, and refuses what is too long.
(function () {
  "use strict";
  var LINK = /https?:\/\/\S+?(?=[.,;:!?)\]'"]*(?:\s|$))/g;
  var segmenter = window.Intl && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  function measure(area) {
    var text = area.value;
    if (area.dataset.unit === "graphemes") {
      if (segmenter) { var n = 0; for (var _ of segmenter.segment(text)) { n++; } return n; }
      return Array.from(text).length;
    }
    var weight = area.dataset.urlWeight;
    if (weight) { text = text.replace(LINK, "x".repeat(parseInt(weight, 10))); }
    return text.length;
  }
  document.querySelectorAll("form.answer textarea[data-max]").forEach(function (area) {
    var shown = document.getElementById(area.getAttribute("aria-describedby").split(" ")[0]);
    if (!shown) { return; }
    var number = shown.querySelector(".n");
    function update() {
      var left = parseInt(area.dataset.max, 10) - measure(area);
      number.textContent = String(left);
      shown.classList.toggle("over", left < 0);
    }
    area.addEventListener("input", update);
    update();
  });
  // A saved reply picked fills the answer box with its text, placeholders filled by the
  // server, for the person to edit; it replaces only an empty box or the last one it filled.
  document.querySelectorAll("form.answer select[name=saved_reply_id]").forEach(function (picker) {
    var area = document.getElementById(picker.dataset.for);
    if (!area) { return; }
    var filled = "";
    picker.addEventListener("change", function () {
      var option = picker.options[picker.selectedIndex];
      var text = option && option.dataset.text ? option.dataset.text : "";
      if (area.value !== "" && area.value !== filled) { return; }
      area.value = text;
      filled = text;
      area.dispatchEvent(new Event("input"));
      area.focus();
    });
  });
})();
