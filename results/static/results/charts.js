// Show or hide one agent's series in a chart (results/charts.py draws them; without this script
// every series stays shown). One listener for the page: buttons may come and go.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.series-toggle");
  if (!button) return;
  const chart = document.getElementById(button.dataset.chart);
  if (!chart) return;
  const shown = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(shown));
  for (const group of chart.querySelectorAll("g.series")) {
    if (group.dataset.series === button.dataset.series) group.style.display = shown ? "" : "none";
  }
});
