// durable UI: a few lines on top of htmx (pages work without either).
// The time slider's label follows the slider as it is dragged.
document.addEventListener("input", function (e) {
  var slider = e.target;
  if (slider.id !== "slider") return;
  var label = document.getElementById("slider-label");
  if (label) label.textContent = "event " + slider.value + " of " + slider.max;
});
