// Enhancement only: every page reads without it. Changing a date re-opens the report for
// the new range at once, and clicking a column title of a table sorts it in place (the
// title's link sorts on the server without JavaScript).
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("form.range input[type=date]")) {
    input.addEventListener("change", () => input.form.requestSubmit());
  }
  for (const table of document.querySelectorAll("table.sortable")) {
    table.querySelectorAll("thead th").forEach((th, column) => {
      th.addEventListener("click", (event) => {
        event.preventDefault();
        const body = table.tBodies[0];
        const descending = th.dataset.sorted !== "desc";
        table.querySelectorAll("thead th").forEach((other) => delete other.dataset.sorted);
        th.dataset.sorted = descending ? "desc" : "asc";
        const key = (row) => {
          const cell = row.cells[column];
          const raw = cell && cell.dataset.raw;
          return raw !== undefined && raw !== "" && !isNaN(Number(raw)) ? Number(raw) : (cell ? cell.textContent : "");
        };
        const rows = [...body.rows].sort((a, b) => {
          const [x, y] = [key(a), key(b)];
          const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
          return descending ? -order : order;
        });
        rows.forEach((row) => body.appendChild(row));
      });
    });
  }
});
