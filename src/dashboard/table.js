// The parts every table of the dashboard shares: its header row and its figure cells.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';

/** A column of figures, right-aligned: `tableHead(['stage', numeric('runs')])`. */
export const numeric = (label) => ({ label, numeric: true });

/** A header row of column labels (strings, or `numeric(label)`). */
export function tableHead(columns) {
  return html`<thead>
    <tr>
      ${columns.map((column) =>
        typeof column === 'string'
          ? html`<th scope="col">${column}</th>`
          : html`<th scope="col" class=${column.numeric ? 'number' : ''}>${column.label}</th>`,
      )}
    </tr>
  </thead>`;
}

/** A cell holding a figure, right-aligned. */
export const numberCell = (text) => html`<td class="number">${text}</td>`;
