// The page's only script: shows UTC expiries in the browser's own time zone too, suggests that
// zone for the upload, lists a chosen workbook's sheets to pick from, and follows a run's
// progress, and the rows that need attention, through server-sent events.
"use strict";

document.querySelectorAll("time.utc").forEach((element) => {
  const instant = new Date(element.textContent);
  if (!Number.isNaN(instant.getTime())) {
    element.title = instant.toLocaleString();
    element.insertAdjacentText("afterend", " (" + instant.toLocaleString() + ")");
  }
});

const zone = document.getElementById("timezone");
if (zone && Intl.DateTimeFormat().resolvedOptions().timeZone) {
  zone.placeholder = Intl.DateTimeFormat().resolvedOptions().timeZone;
}

// A workbook chosen in a form: its sheets, as the server reads them, replace "The first sheet".
document.querySelectorAll("select.sheets").forEach((select) => {
  const picker = select.form.querySelector("input[type=file]");
  const first = () => new Option("The first sheet", "");
  picker.addEventListener("change", async () => {
    select.replaceChildren(first());
    delete select.dataset.listed;
    const file = picker.files[0];
    if (!file || !/\.(xlsx|xlsm|xlsb|xls|ods)$/i.test(file.name)) {
      return;
    }
    const body = new FormData();
    body.append("file", file);
    try {
      const answer = await fetch("/sheets", { method: "POST", body });
      const listed = await answer.json();
      if (!answer.ok) {
        select.replaceChildren(first(), new Option(listed.error, "", false, false));
        select.options[1].disabled = true;
        return;
      }
      select.replaceChildren(
        ...listed.sheets.map((name, index) => new Option(index + 1 + ". " + name, name)),
      );
      select.dataset.listed = "true";
    } catch {
      select.replaceChildren(first());
    }
  });
});

// Rows that need attention, appended to their table as the events bring them; `from` is the
// run's position of the first, so rows a reconnected stream sends again are not listed twice.
let attentionListed = 0;
function showAttention(rows, from) {
  const table = document.getElementById("attention");
  if (!table || !rows || rows.length === 0) {
    return;
  }
  const body = table.querySelector("tbody");
  for (const [offset, row] of rows.entries()) {
    if (from + offset < attentionListed) {
      continue;
    }
    attentionListed = from + offset + 1;
    const line = document.createElement("tr");
    line.className = row.status;
    const message = (row.error_code ? row.error_code + ": " : "") + row.error_message;
    for (const text of [row.row ?? "", row.status, row.user_id, message]) {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      line.appendChild(cell);
    }
    body.appendChild(line);
  }
  table.hidden = false;
}

const numbers = document.getElementById("numbers");
if (numbers && numbers.dataset.events) {
  const bar = document.getElementById("progress");
  const phase = document.getElementById("phase");
  const events = new EventSource(numbers.dataset.events);
  const ending = numbers.dataset.kind === "end";
  const started = Date.now();
  events.addEventListener("progress", (event) => {
    const p = JSON.parse(event.data);
    showAttention(p.attention, p.attention_from);
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? p.requests / seconds : 0;
    const rowsPerSecond = seconds > 0 ? p.rows_done / seconds : 0;
    const left = rowsPerSecond > 0 ? Math.max(p.total - p.rows_done, 0) / rowsPerSecond : NaN;
    bar.max = Math.max(p.total, 1);
    bar.value = p.rows_done;
    phase.textContent = "Running";
    numbers.textContent = p.rows_done + " of " + p.total + " rows, " + p.succeeded +
      (ending ? " ended or skipped, " : " succeeded, ") + p.need_attention + " need attention, " + rate.toFixed(1) +
      " requests/s" + (Number.isNaN(left) ? "" : ", about " + Math.ceil(left) + " s left");
  });
  events.addEventListener("done", (event) => {
    const done = JSON.parse(event.data);
    showAttention(done.attention, done.attention_from);
    const s = done.summary;
    bar.max = Math.max(s.total, 1);
    bar.value = s.total;
    if (done.died) {
      phase.textContent = "Died: " + done.died;
      numbers.textContent = "Its journal holds " + done.journal_rows + " of " + s.total +
        " rows (" + s.succeeded + (ending ? " ended" : " granted") +
        "); Resume finishes it without sending those again.";
    } else {
      phase.textContent = (done.exit_code === 130 ? "Stopped" : "Finished") +
        " (exit " + done.exit_code + ")";
      numbers.textContent = ending
        ? s.total + " rows: " + s.ended + " ended, " + s.skipped + " skipped, " + s.failed +
          " failed, " + s.invalid + " invalid, " + s.not_attempted + " not attempted"
        : s.total + " rows: " + s.succeeded + " succeeded, " + s.failed +
          " failed, " + s.invalid + " invalid, " + s.not_attempted + " not attempted";
      const end = document.getElementById("end");
      if (end && !ending && s.succeeded > 0) {
        end.hidden = false;
      }
      const audit = document.getElementById("audit");
      if (audit && (ending ? s.ended > 0 : s.succeeded > 0)) {
        audit.hidden = false;
      }
    }
    const stop = document.getElementById("stop");
    if (stop) {
      stop.form.hidden = true;
    }
    const resume = document.getElementById("resume");
    if (resume && (done.died || done.exit_code === 130 || done.exit_code === 1)) {
      resume.querySelector("button").textContent = ending
        ? "Resume (rows already ended are not read again)"
        : done.exit_code === 1
        ? "Retry the rows not granted (failed or not attempted)"
        : "Resume (rows already granted are not sent again)";
      resume.hidden = false;
    }
    document.body.dataset.finished = "true";
    events.close();
  });
}
