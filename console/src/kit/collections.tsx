/** Lists and tables with their empty states; the table sorts by a column and filters by text. */
import type { ComponentChildren } from "preact";
import { useId, useState } from "preact/hooks";

/** Attributes put on a row or item as they are: `data-testid` and the other `data-` hooks, `class`. */
export type Hooks = Record<string, string | number | boolean | undefined>;

export interface ListProps<T> {
  items: readonly T[];
  itemKey: (item: T) => string;
  render: (item: T) => ComponentChildren;
  /** Shown above the (empty) list when there are no items. */
  empty?: ComponentChildren;
  itemHooks?: (item: T) => Hooks;
  class?: string;
  label?: string;
}

/** A `<ul>` of items, with a line saying so when there are none. */
export function List<T>({ items, itemKey, render, empty, itemHooks, class: className, label }: ListProps<T>) {
  return (
    <>
      {items.length === 0 && empty !== undefined && <p class="empty">{empty}</p>}
      <ul class={className} aria-label={label}>
        {items.map((item) => (
          <li key={itemKey(item)} {...itemHooks?.(item)}>
            {render(item)}
          </li>
        ))}
      </ul>
    </>
  );
}

export interface Column<T> {
  key: string;
  label: string;
  /** What sorting and filtering read (a column without it is neither sorted nor searched). */
  value?: (row: T) => string | number;
  /** The cell (default: `value`). */
  cell?: (row: T) => ComponentChildren;
  /** The header is read by screen readers only (e.g. a column of buttons). */
  hiddenLabel?: boolean;
}

export interface Sort {
  key: string;
  descending: boolean;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** The rows in the column's order (stable: equal values keep their order); unchanged without a sort. */
export function sortRows<T>(rows: readonly T[], columns: readonly Column<T>[], sort: Sort | null): T[] {
  const value = sort ? columns.find((c) => c.key === sort.key)?.value : undefined;
  if (!sort || !value) return [...rows];
  const sign = sort.descending ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index, v: value(row) }))
    .sort((a, b) => {
      const order = typeof a.v === "number" && typeof b.v === "number" ? a.v - b.v : collator.compare(String(a.v), String(b.v));
      return order * sign || a.index - b.index;
    })
    .map((x) => x.row);
}

/** The rows whose searchable columns contain every word of `query` (case-insensitive). */
export function filterRows<T>(rows: readonly T[], columns: readonly Column<T>[], query: string): T[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [...rows];
  const searched = columns.flatMap((c) => (c.value ? [c.value] : []));
  return rows.filter((row) => {
    const text = searched.map((value) => String(value(row)).toLowerCase()).join("\n");
    return words.every((word) => text.includes(word));
  });
}

export interface DataTableProps<T> {
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey: (row: T) => string;
  rowHooks?: (row: T) => Hooks;
  /** Headers of the columns with a `value` become sort buttons. */
  sortable?: boolean;
  initialSort?: Sort;
  /** A text filter above the table, with this label. */
  filterLabel?: string;
  /** Shown in the body when there are no rows at all. */
  empty?: ComponentChildren;
  caption?: string;
  class?: string;
  testId?: string;
}

/** A table; sortable by its valued columns and filtered by text when asked. */
export function DataTable<T>(props: DataTableProps<T>) {
  const { columns, rows, sortable = false } = props;
  const [sort, setSort] = useState<Sort | null>(props.initialSort ?? null);
  const [query, setQuery] = useState("");
  const filterId = useId();
  const shown = sortRows(filterRows(rows, columns, query), columns, sort);
  const toggle = (key: string) =>
    setSort(sort?.key === key ? { key, descending: !sort.descending } : { key, descending: false });
  const note = rows.length === 0 ? props.empty : shown.length === 0 ? "Nothing matches the filter." : undefined;
  return (
    <>
      {props.filterLabel && (
        <div class="table-filter">
          <label for={filterId}>{props.filterLabel}</label>
          <input id={filterId} type="search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
        </div>
      )}
      <table class={props.class} data-testid={props.testId}>
        {props.caption && <caption>{props.caption}</caption>}
        <thead>
          <tr>
            {columns.map((column) => {
              const label = column.hiddenLabel ? <span class="visually-hidden">{column.label}</span> : column.label;
              if (!sortable || !column.value) {
                return (
                  <th key={column.key} scope="col">
                    {label}
                  </th>
                );
              }
              const direction = sort?.key === column.key ? (sort.descending ? "descending" : "ascending") : "none";
              return (
                <th key={column.key} scope="col" aria-sort={direction}>
                  <button type="button" class="sort" onClick={() => toggle(column.key)}>
                    {label}
                    <span class="sort-mark" aria-hidden="true">
                      {direction === "ascending" ? "▲" : direction === "descending" ? "▼" : "↕"}
                    </span>
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {note !== undefined && (
            <tr class="empty-row">
              <td class="empty" colSpan={columns.length}>
                {note}
              </td>
            </tr>
          )}
          {shown.map((row) => (
            <tr key={props.rowKey(row)} {...props.rowHooks?.(row)}>
              {columns.map((column) => (
                <td key={column.key}>{column.cell ? column.cell(row) : column.value?.(row)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
