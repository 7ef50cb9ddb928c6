/** A located finding about the fleet repository (Terraform's tfdiags, in short). */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  /** Path relative to the repository root, e.g. `sites/berlin.yaml`. */
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted path inside the file, e.g. `providers[1].gateway`. */
  readonly path: string;
  readonly message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message}`;
}

export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** Stable order: by file, then position, then message. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message),
  );
}
